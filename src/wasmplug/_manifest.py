"""Two-party grants: a plugin's manifest (what it asks for, and why) against the host's
policy (what it gets).

A plugin built with the Rust guest SDK's ``wasmplug_guest::manifest!`` carries a JSON
manifest in a custom section named ``wasmplug-manifest`` (in the core module its
component nests). :func:`read_manifest` finds and validates it; :func:`compare` sets it
against a :class:`~wasmplug.Grants` value item by item and returns a
:class:`CapabilityReport`. The comparison is table-driven (:data:`COMPARATORS`): one
entry per capability says whether a requested item is granted and which items the
grant offers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._exceptions import CapabilityError, ManifestError
from ._policy import Grants, HttpRule
from ._wit._official import ParserError, custom_sections

__all__ = [
    "COMPARATORS",
    "FORMAT",
    "SECTION",
    "CapabilityReport",
    "Denial",
    "Manifest",
    "Need",
    "NeedItem",
    "compare",
    "read_manifest",
]

logger = logging.getLogger("wasmplug")

#: The custom section that holds a plugin's manifest.
SECTION = "wasmplug-manifest"
#: The manifest format this version of wasmplug reads.
FORMAT = 1


@attrs.frozen
class NeedItem:
    """One item a plugin asks for within a capability.

    Attributes:
        name: A config key, a guest path (``files``), a variable name (``env``) or a
            URL pattern (``http``).
        access: Access words: ``"read"``/``"write"`` for ``files``, HTTP methods for
            ``http``; empty otherwise.
    """

    name: str
    access: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name} ({', '.join(self.access)})" if self.access else self.name


@attrs.frozen
class Need:
    """One need a plugin declares: a capability, the items of it, and the reason.

    Attributes:
        capability: ``"log"``, ``"config"``, ``"kv"``, ``"files"``, ``"env"``,
            ``"stdio"``, ``"http"``, or a name a newer SDK knows.
        items: The items asked for; empty for ``log``, ``kv`` and ``stdio``.
        reason: Why, in the plugin author's words.
    """

    capability: str
    items: tuple[NeedItem, ...]
    reason: str


@attrs.frozen
class Manifest:
    """What a plugin declares it needs (its ``wasmplug-manifest`` custom section).

    Attributes:
        format: The encoding's version (1).
        needs: The needs, in the order the plugin declared them.
    """

    format: int
    needs: tuple[Need, ...]

    def __str__(self) -> str:
        return "\n".join(f"{request}: {reason}" for request, reason in _requests(self) if request)


@attrs.frozen
class Denial:
    """A requested capability item that the policy does not grant.

    Attributes:
        request: What was asked for, by name: ``"kv"``, ``"config threshold"``,
            ``"files /out (read, write)"``.
        reason: Why the plugin asked (from its manifest).
        missing: What the policy lacks: ``"Grants.kv is None"``,
            ``"/out is granted read-only"`` ...
    """

    request: str
    reason: str
    missing: str

    def __str__(self) -> str:
        return f"{self.request} ({self.reason!r}): {self.missing}"


@attrs.frozen
class CapabilityReport:
    """The load-time comparison of a plugin's manifest with its policy's grants.

    Attributes:
        plugin: The plugin's name.
        manifest: Its manifest, or ``None`` when the binary has none (it is then
            treated as requesting nothing).
        requested: Every requested item by name (``"log"``, ``"config threshold"``,
            ``"files /data (read)"``), in manifest order.
        granted: The requested items the policy grants.
        denied: The requested items it does not grant, with the plugin's reason and
            what is missing; the plugin is loaded in permissive mode and its use of
            them is denied at run time, or refused in strict mode.
        unrequested: What the policy grants that the manifest does not ask for
            (``"env TENANT"``, ``"files /public (read)"``); empty when there is no
            manifest to compare with.
    """

    plugin: str
    manifest: Manifest | None
    requested: tuple[str, ...]
    granted: tuple[str, ...]
    denied: tuple[Denial, ...]
    unrequested: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether the policy grants everything the manifest asks for."""
        return not self.denied

    def summary(self) -> str:
        """One line: the counts, then the denied and unrequested items by name."""
        if self.manifest is None:
            return "no manifest (requests nothing)"
        parts = [
            f"requested {len(self.requested)}",
            f"granted {len(self.granted)}",
            f"denied {len(self.denied)}"
            + (f" [{', '.join(d.request for d in self.denied)}]" if self.denied else ""),
            f"unrequested {len(self.unrequested)}"
            + (f" [{', '.join(self.unrequested)}]" if self.unrequested else ""),
        ]
        return ", ".join(parts)

    def __str__(self) -> str:
        lines = [f"plugin {self.plugin!r}: {self.summary()}"]
        if self.manifest is not None:
            denied = {d.request: d for d in self.denied}
            for request, reason in _requests(self.manifest):
                mark = "denied " if request in denied else "granted"
                extra = f" -- {denied[request].missing}" if request in denied else ""
                lines.append(f"  {mark}  {request}: {reason!r}{extra}")
        lines.extend(f"  unrequested  {name}" for name in self.unrequested)
        return "\n".join(lines)


# -- the comparison table ---------------------------------------------------------------


@attrs.frozen
class Comparator:
    """How one capability's requests are compared with :class:`~wasmplug.Grants`.

    Attributes:
        check: ``check(grants, item)`` returns ``None`` when ``item`` (``None`` for a
            capability without items) is granted, else what the policy lacks.
        offered: ``offered(grants)`` lists what the grant gives, as items (``None``
            for a capability without items), for the *unrequested* part of a report.
        covers: ``covers(requested, offered)`` tells whether a requested item accounts
            for an offered one; default: same name.
    """

    check: Callable[[Grants, NeedItem | None], str | None]
    offered: Callable[[Grants], Iterable[NeedItem | None]]
    covers: Callable[[NeedItem, NeedItem], bool] = lambda req, off: req.name == off.name


def _plain(field: str, granted: Callable[[Grants], bool], missing: str) -> Comparator:
    return Comparator(
        check=lambda g, _: None if granted(g) else f"Grants.{field} {missing}",
        offered=lambda g: [None] if granted(g) else [],
    )


def _check_config(grants: Grants, item: NeedItem | None) -> str | None:
    assert item is not None
    if grants.config is None:
        return "Grants.config is None (configuration not granted)"
    return None if item.name in grants.config else "no such key in Grants.config"


def _check_env(grants: Grants, item: NeedItem | None) -> str | None:
    assert item is not None
    return None if item.name in grants.env else "no such variable in Grants.env"


def _inside(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def _check_files(grants: Grants, item: NeedItem | None) -> str | None:
    assert item is not None
    matches = [p for p in grants.files if _inside(item.name, p.guest_path)]
    if not matches:
        return "no preopen in Grants.files covers this guest path"
    best = max(matches, key=lambda p: len(p.guest_path))
    if "write" in item.access and not best.writable:
        return f"Grants.files preopens {best.guest_path} read-only"
    return None


def _http_target(pattern: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an http need's URL pattern (the path is not part of
    a grant), or ``None`` when it is not an ``http``/``https`` URL."""
    parts = urlsplit(pattern)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _rule_covers(rule: HttpRule, scheme: str, host: str, port: int) -> bool:
    if rule.scheme != scheme or rule.effective_port != port:
        return False
    if host.startswith("*."):  # a wildcard need needs a rule at least as wide
        return rule.host.startswith("*.") and (host == rule.host or host.endswith(rule.host[1:]))
    return rule.matches_host(host)


def _check_http(grants: Grants, item: NeedItem | None) -> str | None:
    assert item is not None
    if grants.http is None:
        return "Grants.http is None (outbound HTTP not granted)"
    target = _http_target(item.name)
    if target is None:
        return "not an http or https URL pattern"
    methods = set(item.access or ("GET",))
    for rule in grants.http.allow:
        if _rule_covers(rule, *target) and methods <= set(rule.methods):
            return None
    scheme, host, port = target
    return (
        f"no HttpRule in Grants.http.allow covers {scheme}://{host}:{port} "
        f"for {', '.join(sorted(methods))}"
    )


def _http_offered(grants: Grants) -> list[NeedItem]:
    rules = grants.http.allow if grants.http is not None else ()
    return [
        NeedItem(f"{r.scheme}://{r.host}:{r.effective_port}/*", tuple(r.methods)) for r in rules
    ]


def _http_covers(requested: NeedItem, offered: NeedItem) -> bool:
    want, have = _http_target(requested.name), _http_target(offered.name)
    if want is None or have is None:
        return False
    rule = HttpRule(host=have[1], scheme=have[0], port=have[2], methods=offered.access or ("GET",))
    return _rule_covers(rule, *want)


#: One :class:`Comparator` per capability a manifest may name. A request for a
#: capability missing here (one from a newer SDK) is reported denied: the host cannot
#: grant what it does not know.
COMPARATORS: dict[str, Comparator] = {
    "log": _plain("log", lambda g: g.log, "is False"),
    "config": Comparator(
        check=_check_config,
        offered=lambda g: [NeedItem(k) for k in g.config or {}],
    ),
    "kv": _plain("kv", lambda g: g.kv is not None, "is None"),
    "files": Comparator(
        check=_check_files,
        offered=lambda g: [
            NeedItem(p.guest_path, ("read", "write") if p.writable else ("read",)) for p in g.files
        ],
        covers=lambda req, off: _inside(req.name, off.name),
    ),
    "env": Comparator(check=_check_env, offered=lambda g: [NeedItem(k) for k in g.env]),
    "stdio": _plain("stdio", lambda g: g.stdio, "is False"),
    "http": Comparator(check=_check_http, offered=_http_offered, covers=_http_covers),
}

#: Per capability: ``True`` when its needs list items. Capabilities of newer SDKs are
#: read as given.
_ITEMIZED = {
    "log": False,
    "config": True,
    "kv": False,
    "files": True,
    "env": True,
    "stdio": False,
    "http": True,
}
_FILE_ACCESS = frozenset({"read", "write"})


def _label(capability: str, item: NeedItem | None) -> str:
    return capability if item is None else f"{capability} {item}"


def _requests(manifest: Manifest) -> list[tuple[str, str]]:
    """(request label, reason) for every requested item, in manifest order."""
    return [
        (_label(need.capability, item), need.reason)
        for need in manifest.needs
        for item in (need.items or (None,))
    ]


def compare(manifest: Manifest | None, grants: Grants, *, plugin: str) -> CapabilityReport:
    """Compares a plugin's manifest with the grants of its policy.

    Args:
        manifest: The plugin's manifest, or ``None`` (it requests nothing).
        grants: The policy's grants.
        plugin: The plugin's name, for the report.

    Returns:
        The report; nothing is raised.
    """
    if manifest is None:
        return CapabilityReport(plugin, None, (), (), (), ())
    requested: list[str] = []
    granted: list[str] = []
    denied: list[Denial] = []
    for need in manifest.needs:
        comparator = COMPARATORS.get(need.capability)
        for item in need.items or (None,):
            label = _label(need.capability, item)
            if label in requested:
                continue
            requested.append(label)
            missing: str | None
            if comparator is None:
                missing = f"this host has no {need.capability!r} capability to grant"
            else:
                missing = comparator.check(grants, item)
            if missing is None:
                granted.append(label)
            else:
                denied.append(Denial(label, need.reason, missing))
    unrequested: list[str] = []
    for capability, comparator in COMPARATORS.items():
        asked = [n for n in manifest.needs if n.capability == capability]
        for offered in comparator.offered(grants):
            if offered is None:
                covered = bool(asked)
            else:
                covered = any(comparator.covers(i, offered) for n in asked for i in n.items)
            if not covered:
                unrequested.append(_label(capability, offered))
    return CapabilityReport(
        plugin, manifest, tuple(requested), tuple(granted), tuple(denied), tuple(unrequested)
    )


# -- reading ----------------------------------------------------------------------------


def _expect(value: Any, kind: type, where: str, what: str, plugin: str | None) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(
            f"{where}: expected {what}, found {type(value).__name__} {value!r:.60}",
            plugin=plugin,
        )
    return value


def parse_manifest(data: bytes, *, plugin: str | None = None) -> Manifest:
    """Decodes and validates the contents of a ``wasmplug-manifest`` section.

    Args:
        data: The section's contents (UTF-8 JSON).
        plugin: The plugin's name, for errors.

    Returns:
        The manifest.

    Raises:
        ManifestError: the contents are not UTF-8 JSON of the documented schema, the
            format version is not :data:`FORMAT`, or a need is invalid (unknown key,
            empty reason, items where none belong, bad access word). The message says
            where (``needs[2].items[0].access``), what was expected and what was found.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        hint = " (two manifest! invocations?)" if b"}{" in data else ""
        raise ManifestError(
            f"the {SECTION} section is not UTF-8 JSON{hint}: {e}", plugin=plugin
        ) from None
    _expect(doc, dict, "manifest", "a JSON object", plugin)
    version = doc.get("wasmplug-manifest")
    if version != FORMAT or isinstance(version, bool):
        raise ManifestError(
            f'manifest: expected "wasmplug-manifest": {FORMAT} (the format this wasmplug '
            f"reads), found {version!r}",
            plugin=plugin,
        )
    _keys(doc, {"wasmplug-manifest", "needs"}, "manifest", plugin)
    needs = []
    for i, raw in enumerate(_expect(doc.get("needs"), list, "needs", "a JSON array", plugin)):
        where = f"needs[{i}]"
        _expect(raw, dict, where, "a JSON object", plugin)
        _keys(raw, {"capability", "items", "reason"}, where, plugin)
        capability = _expect(raw.get("capability"), str, f"{where}.capability", "a string", plugin)
        reason = _expect(raw.get("reason"), str, f"{where}.reason", "a string", plugin)
        if not reason.strip():
            raise ManifestError(
                f"{where}.reason: every need must give a reason, found an empty one ({capability})",
                plugin=plugin,
            )
        items = []
        raw_items = _expect(raw.get("items", []), list, f"{where}.items", "a JSON array", plugin)
        for j, raw_item in enumerate(raw_items):
            at = f"{where}.items[{j}]"
            _expect(raw_item, dict, at, "a JSON object", plugin)
            _keys(raw_item, {"name", "access"}, at, plugin)
            name = _expect(raw_item.get("name"), str, f"{at}.name", "a string", plugin)
            access = _expect(raw_item.get("access", []), list, f"{at}.access", "an array", plugin)
            for word in access:
                _expect(word, str, f"{at}.access", "strings", plugin)
            items.append(NeedItem(name, tuple(access)))
        _check_need(capability, items, where, plugin)
        needs.append(Need(capability, tuple(items), reason))
    return Manifest(FORMAT, tuple(needs))


def _keys(doc: Mapping[str, Any], allowed: set[str], where: str, plugin: str | None) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ManifestError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})",
            plugin=plugin,
        )


def _check_need(capability: str, items: list[NeedItem], where: str, plugin: str | None) -> None:
    itemized = _ITEMIZED.get(capability)
    if itemized is False and items:
        raise ManifestError(
            f"{where}: {capability} takes no items, found {len(items)}", plugin=plugin
        )
    if itemized and not items:
        raise ManifestError(
            f"{where}: {capability} needs a list of items, found none", plugin=plugin
        )
    for j, item in enumerate(items):
        at = f"{where}.items[{j}]"
        if not item.name:
            raise ManifestError(f"{at}.name: expected a non-empty name", plugin=plugin)
        if capability in ("config", "env") and item.access:
            raise ManifestError(
                f"{at}.access: {capability} takes no access words, found {list(item.access)}",
                plugin=plugin,
            )
        if capability == "files":
            if not item.name.startswith("/"):
                raise ManifestError(
                    f"{at}.name: expected an absolute guest path, found {item.name!r}",
                    plugin=plugin,
                )
            bad = [w for w in item.access if w not in _FILE_ACCESS]
            if bad or not item.access:
                raise ManifestError(
                    f"{at}.access: expected 'read' and/or 'write', found {list(item.access)}",
                    plugin=plugin,
                )


def read_manifest(
    wasm: bytes, *, sha256: str | None = None, plugin: str | None = None
) -> Manifest | None:
    """Reads and validates the manifest a plugin binary carries.

    The ``wasmplug-manifest`` custom section is looked for at any depth (a
    ``wasm32-wasip2`` component carries it in its nested core module) by
    ``wasmparser`` in wasmplug's sandboxed WIT module; the result is cached by the
    binary's sha256, so a binary is walked once per machine.

    Args:
        wasm: The binary.
        sha256: Its sha256 (lowercase hex), when known.
        plugin: The plugin's name, for errors.

    Returns:
        The manifest, or ``None`` when the binary has no such section.

    Raises:
        ManifestError: the section is malformed (see :func:`parse_manifest`), or there
            is more than one.
        InvalidWasmError: the binary cannot be walked.
    """
    from ._exceptions import InvalidWasmError

    try:
        sections = custom_sections(wasm, SECTION, sha256=sha256)
    except ParserError as e:
        raise InvalidWasmError(f"cannot read its custom sections: {e}", plugin=plugin) from None
    if not sections:
        return None
    if len(sections) > 1:
        raise ManifestError(
            f"expected one {SECTION} section, found {len(sections)} (at nesting depths "
            f"{', '.join(str(d) for d, _ in sections)}); a plugin declares its needs once",
            plugin=plugin,
        )
    return parse_manifest(sections[0][1], plugin=plugin)


def enforce(report: CapabilityReport, *, strict: bool) -> None:
    """Logs a load-time report (one INFO line; one WARNING line listing the denials)
    and, in strict mode, refuses a plugin the policy does not fully grant.

    Raises:
        CapabilityError: ``strict`` and the report has denials.
    """
    plugin = report.plugin
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "plugin %r capabilities: %s", plugin, report.summary(), extra={"plugin": plugin}
        )
    if not report.denied:
        return
    listed = "; ".join(str(d) for d in report.denied)
    if strict:
        raise CapabilityError(report)
    logger.warning(
        "plugin %r requests capabilities its policy does not grant (loaded; their use "
        "will be denied): %s",
        plugin,
        listed,
        extra={"plugin": plugin},
    )
