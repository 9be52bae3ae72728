"""The ``wasmplug`` command line.

Subcommands:

``bindgen WIT_PATH --world NAME [-o MODULE] [--check]``
    Writes the typed Python module for a WIT world (:func:`wasmplug.generate_bindings`)
    to ``MODULE``, or to standard output. With ``--check`` it writes nothing and exits
    with status 1 when ``MODULE`` differs from what would be generated.

Exit status: 0 on success, 1 when ``--check`` finds a stale module or the WIT cannot be
used, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from ._bindgen import generate_bindings
from ._exceptions import WitError
from ._version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasmplug",
        description="Tools for hosting sandboxed WebAssembly plugins with wasmplug.",
    )
    parser.add_argument("--version", action="version", version=f"wasmplug {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bindgen = commands.add_parser(
        "bindgen",
        help="generate typed Python bindings for a WIT world",
        description=(
            "Generate a typed Python module for a WIT world: attrs classes and enums for "
            "its types, a class with one typed method per export, a Protocol per host "
            "interface it imports. The module needs no WIT at run time."
        ),
    )
    bindgen.add_argument(
        "wit_path",
        metavar="WIT_PATH",
        help="a .wit file, or a directory of them with dependencies in deps/",
    )
    bindgen.add_argument(
        "--world",
        required=True,
        metavar="NAME",
        help="the world: its name in the main package, or ns:pkg/name@version",
    )
    bindgen.add_argument(
        "-o",
        "--output",
        metavar="MODULE",
        type=Path,
        help="the .py file to write (default: standard output)",
    )
    bindgen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if MODULE differs from what would be generated",
    )
    return parser


def _bindgen(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    output: Path | None = args.output
    if args.check and output is None:
        parser.error("bindgen --check needs -o MODULE, the module to compare")
    try:
        source = generate_bindings(args.wit_path, args.world)
    except WitError as e:
        print(f"wasmplug bindgen: error: {e}", file=sys.stderr)
        return 1
    if output is None:
        sys.stdout.write(source)
        return 0
    if args.check:
        try:
            current = output.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"wasmplug bindgen: {output} does not exist", file=sys.stderr)
            return 1
        if current == source:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            source.splitlines(keepends=True),
            fromfile=str(output),
            tofile=f"generated from {args.wit_path}",
            n=1,
        )
        print(
            f"wasmplug bindgen: {output} is out of date with {args.wit_path} "
            f"(world {args.world}); regenerate it with "
            f"`wasmplug bindgen {args.wit_path} --world {args.world} -o {output}`:",
            file=sys.stderr,
        )
        sys.stderr.writelines(list(diff)[:60])
        return 1
    output.write_text(source, encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``wasmplug`` command.

    Args:
        argv: The arguments after the program name; default ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 on a failed check or unusable WIT (argparse
        exits with 2 on a usage error).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "bindgen":
        return _bindgen(args, parser)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
