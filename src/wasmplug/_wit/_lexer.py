"""Tokenizer for WIT source text.

Produces identifiers (``%``-escaped ones included, never keywords), keywords, operators,
integers, semantic versions, string literals and an end-of-file token. Whitespace and
comments are dropped; ``///`` and ``/** */`` doc comments are attached to the token that
follows them. Identifiers are checked to be kebab-case here, so that a bad identifier is
reported where it is written.
"""

from __future__ import annotations

import bisect
import re

import attrs

from .._exceptions import WitError

__all__ = ["KEYWORDS", "Span", "Token", "check_identifier", "describe", "tokenize"]

#: Words that cannot be used as bare identifiers (write ``%word`` instead).
KEYWORDS = frozenset(
    {
        "as",
        "async",
        "bool",
        "borrow",
        "char",
        "constructor",
        "enum",
        "export",
        "f32",
        "f64",
        "flags",
        "from",
        "func",
        "future",
        "import",
        "include",
        "interface",
        "list",
        "map",
        "option",
        "own",
        "package",
        "record",
        "resource",
        "result",
        "s16",
        "s32",
        "s64",
        "s8",
        "static",
        "stream",
        "string",
        "tuple",
        "type",
        "u16",
        "u32",
        "u64",
        "u8",
        "use",
        "variant",
        "with",
        "world",
    }
)

_OPERATORS = frozenset("=,:;(){}<>*/.@")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:-(?!>)[A-Za-z0-9_]*)*")
_KEBAB_SEGMENT = re.compile(r"[a-z][a-z0-9]*|[A-Z][A-Z0-9]*")
_SEMVER = re.compile(
    r"(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_INTEGER = re.compile(r"[0-9]+")
_SPACE = re.compile(r"[ \t\r\n]+")
# Control codes other than tab, newline and carriage return, and the bidirectional
# formatting characters: WIT source must not contain them, not even in comments.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@attrs.frozen
class Span:
    """A position in WIT source.

    Attributes:
        path: The file name (or a ``<...>`` label for text given directly).
        line: 1-based line.
        column: 1-based column, in characters.
    """

    path: str
    line: int
    column: int

    def error(self, reason: str) -> WitError:
        """Returns a :class:`WitError` located here.

        Args:
            reason: What was expected and what was found.

        Returns:
            The error, to be raised by the caller.
        """
        return WitError(reason, path=self.path, line=self.line, column=self.column)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@attrs.frozen
class Token:
    """One token.

    Attributes:
        kind: ``"id"``, ``"int"``, ``"version"``, ``"string"``, ``"eof"``, ``"_"``, the
            keyword itself (``"record"``) or the operator itself (``"{"``, ``"->"``).
        value: The text: the identifier without its ``%``, the keyword, the number, the
            decoded string literal.
        span: Where the token starts.
        docs: The doc comments just before the token, joined with newlines, or ``""``.
    """

    kind: str
    value: str
    span: Span
    docs: str = ""


def describe(token: Token) -> str:
    """Describes a token for an error message.

    Args:
        token: The token found.

    Returns:
        For example ``'record'``, ``identifier 'foo'`` or ``end of file``.
    """
    if token.kind == "eof":
        return "end of file"
    if token.kind == "id":
        return f"identifier '{token.value}'"
    if token.kind == "int":
        return f"integer '{token.value}'"
    if token.kind == "version":
        return f"version '{token.value}'"
    if token.kind == "string":
        return "string literal"
    return f"'{token.value}'"


class _Lines:
    def __init__(self, text: str, path: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._path = path

    def span(self, pos: int) -> Span:
        index = bisect.bisect_right(self._starts, pos) - 1
        return Span(self._path, index + 1, pos - self._starts[index] + 1)


def check_identifier(word: str, span: Span) -> None:
    """Checks that ``word`` is a kebab-case WIT identifier.

    Args:
        word: The identifier, without a ``%``.
        span: Where it is written, for the error.

    Raises:
        WitError: ``word`` is not kebab-case.
    """
    for segment in word.split("-"):
        if not _KEBAB_SEGMENT.fullmatch(segment):
            raise span.error(
                f"invalid identifier '{word}': identifiers are kebab-case words separated "
                "by '-', each word all lowercase or all uppercase letters and digits, "
                "starting with a letter"
            )


def _block_doc(body: str) -> str:
    lines = []
    for raw in body.split("\n"):
        line = raw.rstrip("\r").lstrip(" \t")
        line = line.removeprefix("*")
        lines.append(line.removeprefix(" ").rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def tokenize(text: str, path: str) -> list[Token]:
    """Splits WIT source into tokens.

    Args:
        text: The source.
        path: The file name for error messages.

    Returns:
        The tokens, ending with one of kind ``"eof"``.

    Raises:
        WitError: A character that cannot start a token, a forbidden control or
            bidirectional-override character, an unterminated comment or string, or an
            identifier that is not kebab-case.
    """
    lines = _Lines(text, path)
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise lines.span(bad.start()).error(
            f"forbidden character U+{ord(bad.group()):04X} (control codes other than tab, "
            "newline and carriage return, and bidirectional overrides are not allowed)"
        )
    tokens: list[Token] = []
    docs: list[str] = []
    pos = 0
    end = len(text)

    def emit(kind: str, value: str, start: int) -> None:
        tokens.append(Token(kind, value, lines.span(start), "\n".join(docs)))
        docs.clear()

    while pos < end:
        ch = text[pos]
        if ch in " \t\r\n":
            space = _SPACE.match(text, pos)
            pos = space.end() if space else pos + 1
        elif text.startswith("//", pos):
            stop = text.find("\n", pos)
            stop = end if stop < 0 else stop
            if text.startswith("///", pos) and not text.startswith("////", pos):
                docs.append(text[pos + 3 : stop].rstrip("\r").removeprefix(" ").rstrip())
            pos = stop
        elif text.startswith("/*", pos):
            pos = _skip_block_comment(text, pos, lines, docs)
        elif ch == "%" or (ch.isascii() and (ch.isalpha() or ch == "_")):
            escaped = ch == "%"
            match = _WORD.match(text, pos + 1 if escaped else pos)
            if match is None:
                raise lines.span(pos).error("expected an identifier after '%'")
            word = match.group()
            if word == "_" and not escaped:
                emit("_", word, pos)
            else:
                check_identifier(word, lines.span(match.start()))
                emit(word if word in KEYWORDS and not escaped else "id", word, pos)
            pos = match.end()
        elif ch.isdigit():
            match = _SEMVER.match(text, pos) or _INTEGER.match(text, pos)
            assert match is not None
            kind = "version" if "." in match.group() else "int"
            emit(kind, match.group(), pos)
            pos = match.end()
        elif text.startswith("->", pos):
            emit("->", "->", pos)
            pos += 2
        elif ch in _OPERATORS:
            emit(ch, ch, pos)
            pos += 1
        elif ch == '"':
            value, stop = _string_literal(text, pos, lines)
            emit("string", value, pos)
            pos = stop
        else:
            raise lines.span(pos).error(f"unexpected character {ch!r}")
    emit("eof", "", end)
    return tokens


def _skip_block_comment(text: str, pos: int, lines: _Lines, docs: list[str]) -> int:
    start = pos
    depth = 0
    while pos < len(text):
        if text.startswith("/*", pos):
            depth += 1
            pos += 2
        elif text.startswith("*/", pos):
            depth -= 1
            pos += 2
            if depth == 0:
                is_doc = (
                    text.startswith("/**", start)
                    and not text.startswith("/**/", start)
                    and not text.startswith("/***", start)
                )
                if is_doc:
                    docs.append(_block_doc(text[start + 3 : pos - 2]))
                return pos
        else:
            pos += 1
    raise lines.span(start).error("unterminated block comment: expected '*/'")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _string_literal(text: str, pos: int, lines: _Lines) -> tuple[str, int]:
    start = pos
    pos += 1
    out: list[str] = []
    while pos < len(text):
        ch = text[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            pos += 1
            continue
        nxt = text[pos + 1 : pos + 2]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            pos += 2
        elif nxt == "u" and text.startswith("{", pos + 2):
            close = text.find("}", pos + 3)
            digits = text[pos + 3 : close] if close > 0 else ""
            if not re.fullmatch(r"[0-9A-Fa-f]{1,6}", digits):
                raise lines.span(pos).error("invalid '\\u{...}' escape in string literal")
            out.append(chr(int(digits, 16)))
            pos = close + 1
        elif re.fullmatch(r"[0-9A-Fa-f]{2}", text[pos + 1 : pos + 3]):
            out.append(chr(int(text[pos + 1 : pos + 3], 16)))
            pos += 3
        else:
            raise lines.span(pos).error("invalid escape in string literal")
    raise lines.span(start).error("unterminated string literal: expected '\"'")
