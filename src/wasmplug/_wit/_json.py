"""The JSON of the official WIT parser, turned into the typed model of :mod:`._model`.

The document is what wasmplug's parser module (``wit.wasm``, built from
``tools/wit-wasm``) returns::

    {"format": 1, "package": 0, "world": null, "kind": null, "wit": null,
     "resolve": {...}}

where ``resolve`` is ``wit-parser``'s own serialization of its ``Resolve``: arenas of
worlds, interfaces, types and packages that refer to each other by index, and types
written as a primitive's name (``"u32"``) or a type index.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .._exceptions import WitError
from ._model import (
    PRIMITIVE_NAMES,
    AliasKind,
    Case,
    EnumCase,
    EnumKind,
    Field,
    FlagsKind,
    Function,
    HandleType,
    Interface,
    ListType,
    OptionType,
    Package,
    PackageName,
    Param,
    Primitive,
    RecordKind,
    Resolve,
    ResourceKind,
    ResultType,
    TupleType,
    TypeDef,
    TypeKind,
    Unsupported,
    VariantKind,
    WitType,
    World,
    WorldItem,
)

__all__ = ["FORMAT", "resolve_from_json"]

#: The version of the document format this module reads.
FORMAT = 1

_RESOURCE_FUNCTIONS = {"constructor", "method", "static", "async-method", "async-static"}


def resolve_from_json(text: str) -> Resolve:
    """Builds the typed model from the JSON the official WIT parser produced.

    Pure Python: no WebAssembly runs. Generated bindings embed this JSON and call this
    at import time.

    Args:
        text: A document from wasmplug's WIT parser module (``Resolve.source_json`` of
            a model gives one back).

    Returns:
        The model; its :attr:`~Resolve.source_json` is ``text``. A document from
        decoding a component or core module has the decoded world's package as
        :attr:`~Resolve.main`.

    Raises:
        WitError: ``text`` is not such a document (malformed JSON, another format
            version, dangling indices).
    """
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise WitError(
                f"not a wasmplug WIT document of format {FORMAT} "
                f"(found format {doc.get('format') if isinstance(doc, dict) else None!r})"
            )
        resolve = _Builder(doc["resolve"]).build(doc["package"])
    except WitError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise WitError(f"malformed WIT document: {type(e).__name__}: {e}") from None
    return attrs.evolve(resolve, source_json=text)


def _complete(typedef: TypeDef, kind: TypeKind) -> None:
    """Sets the kind of a named type under construction: a type is made before its kind
    so that types referring to it (a resource's methods, through handles) can be built.
    The model is read-only once :func:`resolve_from_json` returns it."""
    object.__setattr__(typedef, "kind", kind)


def _docs(item: dict[str, Any]) -> str:
    docs = item.get("docs")
    if not docs:
        return ""
    return str(docs.get("contents") or "")


def _package_name(text: str) -> PackageName:
    base, _, version = text.partition("@")
    namespace, _, name = base.partition(":")
    return PackageName(namespace, name, version or None)


class _Builder:
    def __init__(self, resolve: dict[str, Any]) -> None:
        self.raw_types: list[dict[str, Any]] = resolve["types"]
        self.raw_interfaces: list[dict[str, Any]] = resolve["interfaces"]
        self.raw_worlds: list[dict[str, Any]] = resolve["worlds"]
        self.raw_packages: list[dict[str, Any]] = resolve["packages"]
        self.package_names = [_package_name(p["name"]) for p in self.raw_packages]
        # Plain names of inline interfaces (declared in a world), by interface index.
        self.plain_names: dict[int, str] = {}
        for world in self.raw_worlds:
            for items in (world["imports"], world["exports"]):
                for key, item in items.items():
                    iface = item.get("interface")
                    if iface is not None and not key.startswith("interface-"):
                        self.plain_names.setdefault(iface["id"], key)
        self.named: dict[int, TypeDef] = {}
        self.anonymous: dict[int, WitType] = {}
        self.interfaces: list[Interface] = []

    # --- names ---------------------------------------------------------------------

    def interface_name(self, index: int) -> str:
        raw = self.raw_interfaces[index]
        if raw["name"] is None:
            return self.plain_names.get(index, "<anonymous interface>")
        if raw["package"] is None:
            return str(raw["name"])
        return self.package_names[int(raw["package"])].qualify(str(raw["name"]))

    def world_name(self, index: int) -> str:
        raw = self.raw_worlds[index]
        return self.package_names[int(raw["package"])].qualify(str(raw["name"]))

    def owner_name(self, owner: dict[str, int] | None) -> str:
        if owner is None:
            return ""
        if "interface" in owner:
            return self.interface_name(owner["interface"])
        return self.world_name(owner["world"])

    # --- types ---------------------------------------------------------------------

    def type(self, ref: str | int | None) -> WitType:
        if isinstance(ref, str):
            if ref in PRIMITIVE_NAMES:
                return Primitive(ref)
            return Unsupported(ref, ref)
        if not isinstance(ref, int):
            raise TypeError(f"not a type reference: {ref!r}")
        raw = self.raw_types[ref]
        if raw.get("name") is not None:
            return self.typedef(ref)
        cached = self.anonymous.get(ref)
        if cached is None:
            cached = self.structural(raw["kind"])
            self.anonymous[ref] = cached
        return cached

    def optional(self, ref: str | int | None) -> WitType | None:
        return None if ref is None else self.type(ref)

    def structural(self, kind: Any) -> WitType:
        """An unnamed type: list, option, result, tuple, handle, or unsupported."""
        (tag, body), *_ = kind.items()
        if tag == "list":
            return ListType(self.type(body))
        if tag == "option":
            return OptionType(self.type(body))
        if tag == "result":
            return ResultType(self.optional(body["ok"]), self.optional(body["err"]))
        if tag == "tuple":
            return TupleType(tuple(self.type(t) for t in body["types"]))
        if tag == "handle":
            (which, resource), *_ = body.items()
            target = self.typedef(resource)
            while isinstance(target.kind, AliasKind) and isinstance(target.kind.target, TypeDef):
                target = target.kind.target
            return HandleType(target, which == "borrow")
        if tag == "type":
            return self.type(body)
        return Unsupported(tag, self.unsupported_text(tag, body))

    def unsupported_text(self, tag: str, body: Any) -> str:
        if tag in ("future", "stream"):
            return tag if body is None else f"{tag}<{self.text(body)}>"
        if tag == "map":
            key, value = body
            return f"map<{self.text(key)}, {self.text(value)}>"
        if tag == "fixed-length-list":
            element, size = body
            return f"list<{self.text(element)}, {size}>"
        return tag

    def text(self, ref: str | int) -> str:
        """WIT-like text of a type reference, for messages: ``list<option<u8>>``."""
        if isinstance(ref, str):
            return ref
        raw = self.raw_types[ref]
        if raw.get("name") is not None:
            return str(raw["name"])
        kind = raw["kind"]
        (tag, body), *_ = kind.items()
        if tag in ("list", "option"):
            return f"{tag}<{self.text(body)}>"
        if tag == "result":
            ok = "_" if body["ok"] is None else self.text(body["ok"])
            return (
                f"result<{ok}>"
                if body["err"] is None
                else f"result<{ok}, {self.text(body['err'])}>"
            )
        if tag == "tuple":
            return "tuple<" + ", ".join(self.text(t) for t in body["types"]) + ">"
        if tag == "handle":
            (which, resource), *_ = body.items()
            return f"{which}<{self.text(resource)}>"
        if tag == "type":
            return self.text(body)
        return self.unsupported_text(tag, body)

    def typedef(self, index: int) -> TypeDef:
        """The named type at ``index``; a ``use`` resolves to the used type itself."""
        done = self.named.get(index)
        if done is not None:
            return done
        raw = self.raw_types[index]
        kind = raw["kind"]
        if isinstance(kind, dict) and isinstance(kind.get("type"), int):
            target = self.raw_types[kind["type"]]
            if target.get("name") is not None and target.get("owner") != raw.get("owner"):
                # Brought in by `use`: the very same type.
                result = self.typedef(kind["type"])
                self.named[index] = result
                return result
        typedef = TypeDef(
            raw["name"], self.owner_name(raw.get("owner")), ResourceKind(), _docs(raw)
        )
        self.named[index] = typedef
        _complete(typedef, self.kind(kind))
        return typedef

    def kind(self, kind: Any) -> TypeKind:
        if kind == "resource":
            return ResourceKind()
        (tag, body), *_ = kind.items()
        if tag == "record":
            return RecordKind(
                tuple(Field(f["name"], self.type(f["type"]), _docs(f)) for f in body["fields"])
            )
        if tag == "variant":
            return VariantKind(
                tuple(
                    Case(c["name"], self.optional(c.get("type")), _docs(c)) for c in body["cases"]
                )
            )
        if tag == "enum":
            return EnumKind(tuple(EnumCase(c["name"], _docs(c)) for c in body["cases"]))
        if tag == "flags":
            return FlagsKind(tuple(EnumCase(f["name"], _docs(f)) for f in body["flags"]))
        return AliasKind(self.structural(kind))

    # --- functions, interfaces, worlds ---------------------------------------------

    def function(self, raw: dict[str, Any]) -> Function:
        kind = raw["kind"]
        tag = kind if isinstance(kind, str) else next(iter(kind))
        return Function(
            raw["name"],
            tuple(Param(p["name"], self.type(p["type"])) for p in raw["params"]),
            self.optional(raw.get("result")),
            _docs(raw),
            tag.startswith("async-"),
        )

    def functions(self, raws: dict[str, dict[str, Any]]) -> dict[str, Function]:
        """Free functions by name; resource functions go to their resource's kind."""
        free: dict[str, Function] = {}
        for name, raw in raws.items():
            func = self.function(raw)
            kind = raw["kind"]
            if isinstance(kind, dict) and next(iter(kind)) in _RESOURCE_FUNCTIONS:
                resource = self.typedef(next(iter(kind.values())))
                if isinstance(resource.kind, ResourceKind):
                    _complete(resource, ResourceKind((*resource.kind.methods, func)))
                    continue
            free[name] = func
        return free

    def interface(self, index: int) -> Interface:
        raw = self.raw_interfaces[index]
        package = raw.get("package")
        return Interface(
            raw["name"],
            self.package_names[package] if package is not None else None,
            types={name: self.typedef(t) for name, t in raw["types"].items()},
            functions=self.functions(raw["functions"]),
            docs=_docs(raw),
            plain_name=self.plain_names.get(index) if raw["name"] is None else None,
        )

    def world(self, index: int) -> World:
        raw = self.raw_worlds[index]
        imports: dict[str, WorldItem] = {}
        exports: dict[str, WorldItem] = {}
        types: dict[str, TypeDef] = {}
        for which, target in (("imports", imports), ("exports", exports)):
            for key, item in raw[which].items():
                if "type" in item:
                    types[key] = self.typedef(item["type"])
                elif "interface" in item:
                    i = item["interface"]["id"]
                    name = self.interface_name(i) if key.startswith("interface-") else key
                    target[name] = self.interfaces[i]
                else:
                    # A resource function joins its resource instead.
                    target.update(self.functions({key: item["function"]}))
        return World(
            raw["name"],
            self.package_names[raw["package"]],
            imports=imports,
            exports=exports,
            types=types,
            docs=_docs(raw),
        )

    def build(self, main: int) -> Resolve:
        self.interfaces = [self.interface(i) for i in range(len(self.raw_interfaces))]
        worlds = [self.world(i) for i in range(len(self.raw_worlds))]
        packages: dict[str, Package] = {}
        for index, raw in enumerate(self.raw_packages):
            name = self.package_names[index]
            packages[str(name)] = Package(
                name,
                {n: self.interfaces[i] for n, i in raw["interfaces"].items()},
                {n: worlds[i] for n, i in raw["worlds"].items()},
                _docs(raw),
            )
        return Resolve(packages, self.package_names[main])
