"""Open files counted exactly on the component path (``Limits.open_files``).

wasmtime-py offers no hook into wasmtime's ``wasi:filesystem``, and a component
Linker can replace a whole interface, not one of its functions. So for a plugin
whose open files are limited, wasmplug serves every interface that hands out file
descriptors or streams made from them -- ``wasi:filesystem/types``,
``wasi:filesystem/preopens``, ``wasi:io/streams`` and ``wasi:cli/stdin``, ``stdout``,
``stderr`` -- entirely, by forwarding each call to wasmtime's own implementation
through the *forwarder*: a small trusted component (``wasi_forwarder.wasm``, built
from ``tools/wasi-forwarder`` by ``scripts/build-wit-module.sh``) that imports those
interfaces from wasmtime and exports each function unchanged. It is instantiated in
the plugin's Store, against wasmtime's WASI and the Store's WASI context.

The guest holds wasmplug's host resources ``descriptor``, ``directory-entry-stream``,
``input-stream`` and ``output-stream``: each rep indexes a per-instance table of the
forwarder's handles (wasmtime's own resources, owned by the host). A host function
passes the guest's raw ``wasmtime_component_val_t`` arguments and results through to
the forwarder's export, swapping only those handles; everything else (``error``,
``pollable``, records, lists) is wasmtime's and passes untouched.

A file opened by ``open-at`` counts against ``Limits.open_files`` until its descriptor
and every stream made from it are dropped (wasmtime's file streams keep the file
open after its descriptor is gone). The ``open-at`` that would pass the limit is
refused inside the guest before anything is opened, with ``error-code.quota`` (WASI
0.2's ``error-code`` has no case for ``EMFILE``; guests built with wasi-libc see
``EDQUOT``), and audited like the fast path's refusal.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import wasmtime
import wasmtime.component as wc

from . import _native
from ._codec import K_ENUM, K_RESULT, VAL_SIZE, Arena
from ._component_host import HostCall, destructor, finalize, register, trampoline
from ._exceptions import LinkError
from ._files import ENTRY_BYTES, FileLimits
from ._host import HostContext
from ._sandbox import GuestFailure, host_call_entry

__all__ = [
    "FORWARDER_NEEDS",
    "FORWARDER_WASM",
    "SERVED",
    "InstanceFiles",
    "ServedFiles",
    "served_interfaces",
]

#: The forwarder component, shipped in the package.
FORWARDER_WASM = Path(__file__).with_name("wasi_forwarder.wasm")
#: What the forwarder's instance adds to a Store: core instances, tables, memories
#: (its linear memory is about 128 KiB). The Store's limits are raised by these.
FORWARDER_NEEDS = (3, 2, 1)

#: The interfaces served (unversioned), when the plugin imports them.
SERVED = (
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/streams",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
)
# Interfaces that hand out wasmtime's streams besides those: a plugin importing one
# cannot be served (its streams would not be the served type) and is measured instead.
_OTHER_STREAMS = ("wasi:sockets/tcp",)

# The served resources' wasmtime host resource type numbers (the world's own host
# resources are numbered from 1).
DESCRIPTOR = 0x7761_0001
DIRECTORY_ENTRY_STREAM = 0x7761_0002
INPUT_STREAM = 0x7761_0003
OUTPUT_STREAM = 0x7761_0004
_RESOURCES = {
    "wasi:filesystem/types": (
        ("descriptor", DESCRIPTOR),
        ("directory-entry-stream", DIRECTORY_ENTRY_STREAM),
    ),
    "wasi:io/streams": (("input-stream", INPUT_STREAM), ("output-stream", OUTPUT_STREAM)),
}
_FILESYSTEM = "wasmplug:wasi-forwarder/filesystem@0.1.0"
_STREAMS = "wasmplug:wasi-forwarder/streams@0.1.0"


class _Function(NamedTuple):
    """One served function.

    ``handles``: (argument position, resource type) of each served handle among the
    arguments. ``made``: the resource type of the handles in the result, and
    ``shape`` where they are: ``"ok"`` (``result<own<r>, _>``), ``"own"``
    (``own<r>``), ``"directories"`` (``list<tuple<own<r>, string>>``). ``counts``:
    ``"open"`` for a file opened now, ``"self"`` for a stream of argument 0's file.
    """

    interface: str
    name: str
    module: str
    export: str
    handles: tuple[tuple[int, int], ...]
    made: int | None = None
    shape: str = ""
    counts: str = ""


def _functions() -> tuple[_Function, ...]:
    types, streams = "wasi:filesystem/types", "wasi:io/streams"
    own = ((0, DESCRIPTOR),)
    found = [
        _Function(types, f"[method]descriptor.{name}", _FILESYSTEM, name, own)
        for name in (
            "advise",
            "sync-data",
            "get-flags",
            "get-type",
            "set-size",
            "set-times",
            "read",
            "write",
            "sync",
            "create-directory-at",
            "stat",
            "stat-at",
            "set-times-at",
            "readlink-at",
            "remove-directory-at",
            "symlink-at",
            "unlink-file-at",
            "metadata-hash",
            "metadata-hash-at",
        )
    ]
    for name, other in (("link-at", 3), ("rename-at", 2), ("is-same-object", 1)):
        found.append(
            _Function(
                types, f"[method]descriptor.{name}", _FILESYSTEM, name, (*own, (other, DESCRIPTOR))
            )
        )
    found += [
        _Function(
            types,
            "[method]descriptor.open-at",
            _FILESYSTEM,
            "open-at",
            own,
            DESCRIPTOR,
            "ok",
            "open",
        ),
        _Function(
            types,
            "[method]descriptor.read-directory",
            _FILESYSTEM,
            "read-directory",
            own,
            DIRECTORY_ENTRY_STREAM,
            "ok",
        ),
        _Function(
            types,
            "[method]descriptor.read-via-stream",
            _FILESYSTEM,
            "read-via-stream",
            own,
            INPUT_STREAM,
            "ok",
            "self",
        ),
    ]
    for name in ("write-via-stream", "append-via-stream"):
        found.append(
            _Function(
                types,
                f"[method]descriptor.{name}",
                _FILESYSTEM,
                name,
                own,
                OUTPUT_STREAM,
                "ok",
                "self",
            )
        )
    found += [
        _Function(
            types,
            "[method]directory-entry-stream.read-directory-entry",
            _FILESYSTEM,
            "read-directory-entry",
            ((0, DIRECTORY_ENTRY_STREAM),),
        ),
        _Function(types, "filesystem-error-code", _FILESYSTEM, "filesystem-error-code", ()),
        _Function(
            "wasi:filesystem/preopens",
            "get-directories",
            _FILESYSTEM,
            "get-directories",
            (),
            DESCRIPTOR,
            "directories",
        ),
    ]
    for name in ("read", "blocking-read", "skip", "blocking-skip", "subscribe"):
        found.append(
            _Function(
                streams,
                f"[method]input-stream.{name}",
                _STREAMS,
                f"input-{name}",
                ((0, INPUT_STREAM),),
            )
        )
    for name in (
        "check-write",
        "write",
        "blocking-write-and-flush",
        "flush",
        "blocking-flush",
        "subscribe",
        "write-zeroes",
        "blocking-write-zeroes-and-flush",
        "splice",
        "blocking-splice",
    ):
        handles: tuple[tuple[int, int], ...] = ((0, OUTPUT_STREAM),)
        if name.endswith("splice"):
            handles += ((1, INPUT_STREAM),)
        found.append(
            _Function(streams, f"[method]output-stream.{name}", _STREAMS, f"output-{name}", handles)
        )
    for std, made in (
        ("stdin", INPUT_STREAM),
        ("stdout", OUTPUT_STREAM),
        ("stderr", OUTPUT_STREAM),
    ):
        found.append(
            _Function(f"wasi:cli/{std}", f"get-{std}", _STREAMS, f"get-{std}", (), made, "own")
        )
    return tuple(found)


_FUNCTIONS = _functions()

#: Served functions that add bytes to a preopen, checked against its
#: ``Preopen.max_bytes`` before they are forwarded (an upper bound, as on the fast
#: path: what is written counts as growth, every entry made or opened 4,096 bytes):
#: what they add (``"list"``: the length of the ``list<u8>`` argument at ``at``;
#: ``"u64"``: the ``u64`` argument at ``at``; ``"entry"``: :data:`ENTRY_BYTES`;
#: ``"create"``: that, when the ``open-flags`` argument at ``at`` has ``create``), and
#: the argument whose handle names the preopen.
_GROWTH: dict[str, tuple[str, int, int]] = {
    "[method]output-stream.write": ("list", 1, 0),
    "[method]output-stream.blocking-write-and-flush": ("list", 1, 0),
    "[method]output-stream.write-zeroes": ("u64", 1, 0),
    "[method]output-stream.blocking-write-zeroes-and-flush": ("u64", 1, 0),
    "[method]output-stream.splice": ("u64", 2, 0),
    "[method]output-stream.blocking-splice": ("u64", 2, 0),
    "[method]descriptor.write": ("list", 1, 0),
    "[method]descriptor.set-size": ("u64", 1, 0),
    "[method]descriptor.open-at": ("create", 3, 0),
    "[method]descriptor.create-directory-at": ("entry", 0, 0),
    "[method]descriptor.symlink-at": ("entry", 0, 0),
    "[method]descriptor.link-at": ("entry", 0, 3),
}
#: What a stream write refused for ``Preopen.max_bytes`` fails the call with (streams
#: have no error case for it; the descriptor's functions answer ``error-code.quota``).
BYTES_REFUSED = "wasmplug: a write past the preopen's Preopen.max_bytes was refused"


def served_interfaces(imports: Iterable[str]) -> tuple[tuple[str, str], ...] | None:
    """The interfaces to serve for a component with these imports: ``(unversioned,
    exact name)`` of each (two versions of one interface are both served); ``None``
    when it imports no ``wasi:filesystem/types`` (nothing to count) or imports another
    interface that hands out wasmtime's streams (``wasi:sockets/tcp``: not
    servable)."""
    served: list[tuple[str, str]] = []
    for name in imports:
        unversioned = name.partition("@")[0]
        if unversioned in _OTHER_STREAMS:
            return None
        if unversioned in SERVED:
            served.append((unversioned, name))
    if not any(unversioned == "wasi:filesystem/types" for unversioned, _ in served):
        return None
    return tuple(served)


# -- per instance -------------------------------------------------------------------------

_PTR = struct.Struct("<Q")
_UNION = _native.COMPONENT_VAL_UNION
_NAME_SIZE = _native.NAME_SIZE
_component_call = _native.component_call


def _read_ptr(address: int) -> int:
    value: int = _PTR.unpack(ctypes.string_at(address, 8))[0]
    return value


def _string_at(slot: int) -> str:
    """The text of the component ``string`` value at ``slot``."""
    size, data = struct.unpack("<QQ", ctypes.string_at(slot + _UNION, 16))
    return ctypes.string_at(data, size).decode("utf-8", "replace") if size else ""


def _has_flag(slot: int, name: bytes) -> bool:
    """Whether the component ``flags`` value at ``slot`` has the flag ``name``."""
    count, names = struct.unpack("<QQ", ctypes.string_at(slot + _UNION, 16))
    for i in range(count):
        size, data = struct.unpack("<QQ", ctypes.string_at(names + i * _NAME_SIZE, 16))
        if ctypes.string_at(data, size) == name:
            return True
    return False


def _write_ptr(address: int, value: int) -> None:
    ctypes.memmove(address, _PTR.pack(value), 8)


class _OpenFile:
    """A file the guest opened: the handles (its descriptor, streams) that keep it open."""

    __slots__ = ("handles",)

    def __init__(self) -> None:
        self.handles = 0


class _Entry(NamedTuple):
    """A forwarder handle held for the guest: its ``resource_any`` (owned here), its
    resource type, the file it keeps open (``None``: a preopen, a directory stream,
    stdio), and the preopen it was reached from (its index in the plugin's grants;
    ``None`` for stdio), whose ``max_bytes`` its writes count against."""

    native: Any
    type_id: int
    file: _OpenFile | None
    preopen: int | None = None


class InstanceFiles:
    """One instance's forwarder and the handles it holds for the guest.

    Attributes:
        open_files: Files the guest holds open (each counted once, whatever number
            of handles keeps it open).
    """

    __slots__ = ("_keep", "context", "entries", "funcs", "next_rep", "open_files")

    def __init__(
        self, store: wasmtime.Store, instance: wc.Instance, indices: dict[str, wc.ExportIndex]
    ) -> None:
        self.context = _native.context_of(store)
        self.entries: dict[int, _Entry] = {}
        self.next_rep = 1
        self.open_files = 0
        funcs = _native.ComponentFuncs()
        for export, index in indices.items():
            func = instance.get_func(store, index)
            if func is None:  # pragma: no cover - checked by _export_indices
                raise RuntimeError(f"the WASI forwarder's {export} is not a function")
            funcs.add(export, func)
        self.funcs = funcs.addresses
        self._keep = funcs

    def hold(
        self,
        context: Any,
        slot: int,
        type_id: int,
        file: _OpenFile | None,
        preopen: int | None = None,
    ) -> None:
        """Takes the forwarder handle in the component value at ``slot`` (a resource)
        and puts a guest handle of host resource ``type_id`` in its place, owned by
        the value (wasmtime frees it). ``preopen``: as :class:`_Entry`'s."""
        native = _native.resource_any_at(_read_ptr(slot + _UNION))
        rep = self.next_rep
        self.next_rep += 1
        guest = _native.resource_to_guest(context, own=True, rep=rep, type_id=type_id)
        if isinstance(guest, str):  # pragma: no cover - a host type of this linker
            # The value still owns the forwarder's handle: wasmtime drops it.
            raise RuntimeError(f"cannot hand the guest a WASI handle: {guest}")
        self.entries[rep] = _Entry(native, type_id, file, preopen)
        if file is not None:
            file.handles += 1
        _write_ptr(slot + _UNION, _native.resource_any_address(guest))

    def release(self, context: Any, rep: int) -> None:
        """The guest dropped handle ``rep``: drops the forwarder's (wasmtime closes a
        file when its last handle goes).

        Raises:
            GuestFailure: wasmtime refused the drop (a stream whose pollables are still
                alive), with its message.
        """
        entry = self.entries.pop(rep)
        try:
            err = _native.resource_any_drop(context, entry.native)
        finally:
            _native.resource_any_delete(entry.native)
        file = entry.file
        if file is not None:
            file.handles -= 1
            if not file.handles:
                self.open_files -= 1
        if err is not None:
            raise GuestFailure(err)

    def close(self) -> None:
        """Frees every handle held (the Store is gone or going: nothing is dropped)."""
        for entry in self.entries.values():
            _native.resource_any_delete(entry.native)
        self.entries.clear()


def _export_indices(component: wc.Component) -> dict[str, wc.ExportIndex]:
    """The forwarder's export index of each function it forwards to, by export name.

    Raises:
        RuntimeError: it lacks one (not the forwarder this wasmplug ships).
    """
    indices: dict[str, wc.ExportIndex] = {}
    for fn in _FUNCTIONS:
        parent = component.get_export_index(fn.module)
        index = component.get_export_index(fn.export, parent) if parent is not None else None
        if index is None:
            raise RuntimeError(f"the WASI forwarder does not export {fn.module}#{fn.export}")
        indices[fn.export] = index
    return indices


def _refusal() -> tuple[Arena, int]:
    """``result<_, error-code>``'s ``err(quota)`` as a component value (in an arena
    that stays alive): the refused ``open-at``'s result."""
    arena = Arena()
    slot = arena.alloc(VAL_SIZE)
    code = arena.alloc(VAL_SIZE)
    name = b"quota"
    text = arena.add_bytes(name)
    struct.pack_into(f"<B{_UNION - 1}x?", arena.buf, slot, K_RESULT, False)
    arena.pointer(slot + _UNION + 8, code)
    struct.pack_into(f"<B{_UNION - 1}xQ", arena.buf, code, K_ENUM, len(name))
    arena.pointer(code + _UNION + 8, text)
    return arena, arena.finalize() + slot


_REFUSAL = _refusal()


# -- per plugin ---------------------------------------------------------------------------


class ServedFiles:
    """Serves a plugin's ``wasi:filesystem`` and the streams made from it through the
    forwarder, counting its open files exactly (see the module's docstring).

    Args:
        interfaces: The interfaces to serve, from :func:`served_interfaces`.
        limits: The plugin's file limits (``open_files``; refusals are recorded there).
        ctx: The plugin's host context (a failure is recorded there).
        forwarder: Returns the forwarder compiled for the plugin's engine.

    Attributes:
        instance: The live instance's :class:`InstanceFiles` (``None`` between).
    """

    def __init__(
        self,
        interfaces: tuple[tuple[str, str], ...],
        limits: FileLimits,
        ctx: HostContext,
        forwarder: Callable[[], wc.Component],
    ) -> None:
        self.interfaces = interfaces
        self._limits = limits
        self._ctx = ctx
        self._forwarder = forwarder
        self._real: wc.Linker | None = None
        self._indices: dict[str, wc.ExportIndex] | None = None
        self.instance: InstanceFiles | None = None

    def link(self, root: wc.LinkerInstance, plugin: str) -> None:
        """Defines the served interfaces in a linker (which allows shadowing).

        Raises:
            LinkError: wasmtime refused a definition.
        """
        for unversioned, name in self.interfaces:
            with root.add_instance(name) as inst:
                for resource, type_id in _RESOURCES.get(unversioned, ()):
                    qualified = f"{name}#[resource-drop]{resource}"
                    key = register(self._recorded(qualified, self._release))
                    err = _native.linker_add_resource(
                        inst,
                        resource,
                        type_id=type_id,
                        destructor=destructor,
                        data=key,
                        finalizer=finalize,
                    )
                    if err is not None:
                        raise LinkError(
                            f"cannot define resource {name}#{resource}: {err}",
                            [name],
                            plugin=plugin,
                        )
                for fn in _FUNCTIONS:
                    if fn.interface != unversioned:
                        continue
                    qualified = f"{name}#{fn.name}"
                    call = self._recorded(qualified, self._forwarding(fn))
                    err = _native.linker_add_func(
                        inst, fn.name, callback=trampoline, data=register(call), finalizer=finalize
                    )
                    if err is not None:
                        raise LinkError(
                            f"cannot define {qualified}: {err}", [qualified], plugin=plugin
                        )

    def instantiate(self, store: wasmtime.Store) -> None:
        """Instantiates the forwarder in a new Store (before the plugin's component, so
        that its start-up code can open files) and makes it the live one.

        Raises:
            wasmtime.WasmtimeError: it could not be instantiated (the Store's limits).
        """
        self.discard()
        component = self._forwarder()
        if self._real is None or self._indices is None:
            real = wc.Linker(store.engine)
            real.add_wasip2()
            self._real = real
            self._indices = _export_indices(component)
        instance = self._real.instantiate(store, component)
        self.instance = InstanceFiles(store, instance, self._indices)

    def discard(self) -> None:
        """Forgets the live instance's handles (its Store is being dropped)."""
        if self.instance is not None:
            self.instance.close()
            self.instance = None

    def _live(self) -> InstanceFiles:
        inst = self.instance
        if inst is None:  # pragma: no cover - WASI is called by a running instance
            raise RuntimeError("no live instance")
        return inst

    def _release(self, context: Any, rep: int) -> None:
        self._live().release(context, rep)

    def _recorded(self, qualified: str, run: HostCall) -> HostCall:
        """``run`` with its failure recorded in the host context before it propagates;
        not counted against ``Limits.host_calls`` (it is WASI, as on the fast path)."""
        return host_call_entry(self._ctx, qualified, run, counted=False)

    def _forwarding(self, fn: _Function) -> HostCall:
        """The raw host function serving ``fn``: swaps the guest's handles among the
        arguments for the forwarder's, calls its export, and swaps handles made in the
        result for new guest handles."""
        export, handles, made, shape, counts = fn.export, fn.handles, fn.made, fn.shape, fn.counts
        limits = self._limits
        refusal = _REFUSAL[1]
        growth = _GROWTH.get(fn.name) if limits.bytes_counted else None
        # The descriptor's functions answer error-code.quota; a stream's cannot.
        answers_quota = fn.name.startswith("[method]descriptor.")
        guest_paths = limits.guest_paths

        def run(context: Any, args: int, nargs: int, results: int) -> None:
            inst = self._live()
            entries = inst.entries
            file: _OpenFile | None = None
            preopens: dict[int, int | None] = {}
            swapped: list[tuple[int, int]] = []
            try:
                for position, type_id in handles:
                    at = args + position * VAL_SIZE + _UNION
                    guest = _read_ptr(at)
                    rep = _native.resource_host_rep(context, guest)
                    entry = entries.get(rep) if isinstance(rep, int) else None
                    if entry is None or entry.type_id != type_id:
                        raise RuntimeError(f"the guest passed an unknown WASI handle ({rep})")
                    if position == 0:
                        file = entry.file
                    preopens[position] = entry.preopen
                    swapped.append((at, guest))
                    _write_ptr(at, _native.resource_any_address(entry.native))
                if counts == "open" and limits.refuse_open(inst.open_files):
                    _native.val_clone(refusal, results)
                    return
                if growth is not None:
                    what, at, named = growth
                    preopen = preopens.get(named)
                    if preopen is not None:
                        slot = args + at * VAL_SIZE
                        if what == "entry":
                            n = ENTRY_BYTES
                        elif what == "create":
                            n = ENTRY_BYTES if _has_flag(slot, b"create") else 0
                        else:
                            n = _read_ptr(slot + _UNION)
                        if n and not limits.reserve(preopen, n):
                            if not answers_quota:
                                raise GuestFailure(BYTES_REFUSED)
                            _native.val_clone(refusal, results)
                            return
                err = _component_call(inst.funcs[export], inst.context, args, nargs, results, 1)
            finally:
                for at, guest in swapped:
                    _write_ptr(at, guest)
            if err:
                raise GuestFailure(_native.error_message(err))
            if made is None:
                return
            if counts == "open":
                file = _OpenFile()
            elif counts != "self":
                file = None
            preopen = preopens.get(0)
            if shape == "own":
                inst.hold(context, results, made, file)
            elif shape == "ok":
                if not ctypes.string_at(results + _UNION, 1)[0]:
                    return  # err(error-code)
                inst.hold(context, _read_ptr(results + _UNION + 8), made, file, preopen)
                if counts == "open":
                    inst.open_files += 1
            else:  # list<tuple<descriptor, string>>: the preopens, not counted
                count, data = struct.unpack("<QQ", ctypes.string_at(results + _UNION, 16))
                for i in range(count):
                    pair = data + i * VAL_SIZE
                    first = _read_ptr(pair + _UNION + 8)
                    path = _string_at(first + VAL_SIZE)
                    index = guest_paths.index(path) if path in guest_paths else None
                    inst.hold(context, first, made, None, index)

        return run
