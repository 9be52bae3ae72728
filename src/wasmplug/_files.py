"""Open files and disk space in a plugin's preopens (``Limits.open_files``,
``Preopen.max_bytes``).

What the guest opens through WASI holds a descriptor of the host process, and what
it writes into a writable preopen lands on the host's disk. Two mechanisms bound
them, one per backend:

- On the fast path (WASI preview 1) the functions that open, close, renumber,
  write, grow or create are served by :class:`WasiFiles`: a host function checks
  the request, refuses it with a WASI errno (``EMFILE``, ``EDQUOT``) past a limit,
  and otherwise forwards it to wasmtime's own implementation, unchanged, through
  a small trampoline instance (WASI preview 1 reads and writes the *caller's*
  exported memory, so the forwarder is a wasm function of an instance that
  exports the guest's memory as its own). Exact, and nothing is added to calls
  that do not touch files.
- On the component path both are checked before each request too, when the
  plugin's ``wasi:filesystem`` can be served through wasmplug's forwarder component
  (:mod:`wasmplug._wasiforward`): the ``open-at`` past ``open_files`` is refused in
  the guest, and each growing request reserves its bytes with :meth:`FileLimits.reserve`
  as on the fast path.
- What cannot be checked before the request (a component that imports
  ``wasi:sockets/tcp``, which cannot be served; the Extism backend) is measured after
  the fact by :meth:`FileLimits.over`: the bytes each writable preopen holds (a walk
  of its tree) and the host's descriptors that point under its preopens
  (``/proc/self/fd``), after every call and while a call runs (every 50 ms slice).
  A breach fails the call and replaces the instance, which closes its files.

See "Open files and disk space" in ``docs/security.md`` for what each guarantees.
"""

from __future__ import annotations

import os
import struct
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import wasmtime

from . import _native
from ._policy import Limits, Preopen

__all__ = [
    "ENTRY_BYTES",
    "TRAMPOLINE_NEEDS",
    "FileBreach",
    "FileLimits",
    "WasiFiles",
    "tree_bytes",
]

#: What each entry of a preopen's tree (file, directory, symbolic link) counts against
#: ``Preopen.max_bytes`` besides its size: one block of a common file system, so that
#: a flood of empty files fills the budget as it would fill a disk's inodes.
ENTRY_BYTES = 4096
#: Where Linux lists the process's descriptors.
FD_DIR = "/proc/self/fd"

WASI_P1 = "wasi_snapshot_preview1"
# WASI preview 1 errno values (witx `errno`).
ERRNO_DQUOT = 19
ERRNO_MFILE = 33
_O_CREAT = 1
_U32 = struct.Struct("<I")
_IOVEC = struct.Struct("<II")


# How many descriptors the live Stores of this process hold for each preopened host
# directory (a WASI context opens each of its preopens once): subtracted when the
# component path counts descriptors, so that plugins (and pool instances) sharing a
# directory do not count each other's preopens.
_PREOPENED: Counter[str] = Counter()
_PREOPENED_LOCK = threading.Lock()


def _unregister(roots: tuple[str, ...]) -> None:
    with _PREOPENED_LOCK:
        _PREOPENED.subtract(roots)


class FileBreach(NamedTuple):
    """A limit found breached: ``limit`` is ``"open_files"`` or ``"max_bytes"``;
    ``allowed`` its value, ``used`` what was counted (or what the refused request
    would have made), ``preopen`` the guest path of the preopen for ``max_bytes``."""

    limit: str
    allowed: int
    used: int
    preopen: str | None = None


def tree_bytes(root: str) -> int:
    """What a directory tree counts against ``Preopen.max_bytes``: the sizes of its
    regular files plus :data:`ENTRY_BYTES` per entry below ``root`` (symbolic links
    are not followed; entries that vanish during the walk are skipped).

    Returns:
        Bytes.
    """
    total = 0
    stack = [root]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                total += ENTRY_BYTES
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    return total


class FileLimits:
    """One plugin's file limits, from its preopens and ``Limits.open_files``.

    Attributes:
        open_files: ``Limits.open_files`` (``None``: no limit).
        roots: Each preopen's host directory, resolved (symbolic links followed).
        guest_paths: Each preopen's guest path.
        budgets: Each preopen's ``max_bytes``; ``None`` for a read-only preopen or
            one without a budget.
        watched: Whether there is anything to check (some preopen, and a limit).
        counted: Whether open files are counted exactly as they are opened (the fast
            path, and the component path when it serves ``wasi:filesystem``,
            :mod:`wasmplug._wasiforward`): :meth:`over` then leaves them out.
        bytes_counted: Whether preopen bytes are reserved before each request
            (:meth:`reserve`): :meth:`over` then leaves them out.
        breach: The first breach of the current call (reset when a call starts).
    """

    def __init__(self, preopens: Sequence[Preopen], limits: Limits) -> None:
        self.open_files = limits.open_files
        self.roots = tuple(os.path.realpath(p.host_path) for p in preopens)
        self.guest_paths = tuple(p.guest_path for p in preopens)
        self.budgets = tuple(p.max_bytes if p.writable else None for p in preopens)
        self.watched = bool(preopens) and (
            self.open_files is not None or any(b is not None for b in self.budgets)
        )
        self.counted = False
        self.bytes_counted = False
        self.breach: FileBreach | None = None
        #: Called with the first refusal of a call (the fast path's audit record).
        self.on_refusal: Callable[[FileBreach], None] | None = None
        # Fast path: each budgeted preopen's usage as last measured plus what was
        # let through since (an upper bound; None until first needed).
        self._estimate: list[int | None] = [None] * len(preopens)
        # Component path: each budgeted preopen's usage at the last measurement, and
        # its file system's free blocks and inodes at the last check.
        self._measured: list[int | None] = [None] * len(preopens)
        self._free: list[tuple[int, int] | None] = [None] * len(preopens)
        # Component path: each descriptor (its number, as text) seen at the last
        # count, and whether it pointed into a preopen then.
        self._seen: dict[str, bool] = {}
        self._prefixes = tuple(root.rstrip("/") + "/" for root in self.roots)

    def preopened_by(self, store: object) -> None:
        """Records that ``store`` (a new Store whose WASI context preopens this
        plugin's directories) holds a descriptor for each, until it is dropped."""
        roots = self.roots
        if not roots:
            return
        with _PREOPENED_LOCK:
            _PREOPENED.update(roots)
        weakref.finalize(store, _unregister, roots)

    # -- the component path: measured ---------------------------------------------------

    @property
    def measured(self) -> bool:
        """Whether something is left to measure after the fact: open files that are not
        :attr:`counted`, or a disk budget whose bytes are not :attr:`bytes_counted`."""
        if not self.watched:
            return False
        return (self.open_files is not None and not self.counted) or (
            not self.bytes_counted and any(b is not None for b in self.budgets)
        )

    def held(self) -> int:
        """Descriptors of this process that point into a preopen (the directories
        themselves, files and directories below them), less those the live Stores'
        WASI contexts hold for their preopens (this plugin's and any other's with the
        same directories). On a system without ``/proc/self/fd``, 0.

        Each descriptor's target is read when its number is new since the last count,
        or pointed into a preopen then; a number that pointed elsewhere is taken to
        still do so (one the host closed and the guest got again in between is
        missed, so the count can fall short by the host's own closes since the last
        count)."""
        try:
            fds = os.listdir(FD_DIR)
        except OSError:
            return 0
        roots, prefixes = self.roots, self._prefixes
        seen = self._seen
        now: dict[str, bool] = {}
        count = 0
        for fd in fds:
            inside = seen.get(fd)
            if inside is None or inside:
                try:
                    target = os.readlink(f"{FD_DIR}/{fd}")
                except OSError:  # closed since the listing (the listing's own, say)
                    continue
                inside = target.startswith(prefixes) or target in roots
            now[fd] = inside
            count += inside
        self._seen = now
        with _PREOPENED_LOCK:
            preopens = sum(_PREOPENED[root] for root in set(roots))
        return max(0, count - preopens)

    def _disk_used(self, index: int) -> bool:
        """Whether the file system of preopen ``index`` has fewer free blocks or
        inodes than at the last check (or was never checked): only then can the
        preopen have grown, and is it walked again."""
        try:
            st = os.statvfs(self.roots[index])
        except OSError:
            return True
        free = (st.f_bfree, st.f_ffree)
        before = self._free[index]
        self._free[index] = free
        return before is None or free[0] < before[0] or free[1] < before[1]

    def baseline(self) -> None:
        """Measures each budgeted preopen's usage now (at load, for :meth:`over`)."""
        for i, (root, budget) in enumerate(zip(self.roots, self.budgets, strict=True)):
            if budget is not None:
                self._disk_used(i)
                self._measured[i] = tree_bytes(root)

    def over(self) -> FileBreach | None:
        """The first limit found breached now: open descriptors (:meth:`held`) past
        ``open_files``; then a budgeted preopen (:func:`tree_bytes`) past its budget
        that grew since it was last measured (so a preopen already over budget
        fails the calls that add to it, not those that only read or delete). A
        preopen is walked only when its file system lost free blocks or inodes since
        the last check (``statvfs``): writes that allocate nothing (overwrites,
        sparse files) are seen at the next walk. ``None`` within all."""
        if self.open_files is not None and not self.counted:
            held = self.held()
            if held > self.open_files:
                return FileBreach("open_files", self.open_files, held)
        found = None
        for i, budget in enumerate(self.budgets):
            if budget is None or self.bytes_counted or not self._disk_used(i):
                continue
            used = tree_bytes(self.roots[i])
            before = self._measured[i]
            self._measured[i] = used
            if found is None and used > budget and (before is None or used > before):
                found = FileBreach("max_bytes", budget, used, self.guest_paths[i])
        return found

    # -- the fast path: checked before each request ---------------------------------------

    def reserve(self, index: int, n: int) -> bool:
        """Whether preopen ``index`` has room for ``n`` more bytes; if so they are
        counted. The count is an upper bound (overwrites and deletions are not
        subtracted); near the budget the tree is measured again, exactly, before a
        request is refused. A refusal is recorded in :attr:`breach`."""
        budget = self.budgets[index]
        if budget is None:
            return True
        estimate = self._estimate[index]
        if estimate is None or estimate + n > budget:
            estimate = tree_bytes(self.roots[index])
            if estimate + n > budget:
                self._estimate[index] = estimate
                self._refused(
                    FileBreach("max_bytes", budget, estimate + n, self.guest_paths[index])
                )
                return False
        self._estimate[index] = estimate + n
        return True

    def refuse_open(self, held: int) -> bool:
        """Whether an instance holding ``held`` opened descriptors may not open one
        more; a refusal is recorded in :attr:`breach`."""
        limit = self.open_files
        if limit is None or held < limit:
            return False
        self._refused(FileBreach("open_files", limit, held + 1))
        return True

    def _refused(self, breach: FileBreach) -> None:
        if self.breach is None:
            self.breach = breach
            if self.on_refusal is not None:
                self.on_refusal(breach)


# WASI preview 1 functions served by WasiFiles: their core parameters (all return an
# errno as i32).
_SIGNATURES = {
    "path_open": "i32 i32 i32 i32 i32 i64 i64 i32 i32",
    "fd_close": "i32",
    "fd_renumber": "i32 i32",
    "fd_write": "i32 i32 i32 i32",
    "fd_pwrite": "i32 i32 i32 i64 i32",
    "fd_allocate": "i32 i64 i64",
    "fd_filestat_set_size": "i32 i64",
    "path_create_directory": "i32 i32 i32",
    "path_symlink": "i32 i32 i32 i32 i32",
    "path_link": "i32 i32 i32 i32 i32 i32 i32",
}
#: Functions that only write or grow: served only when some preopen has a budget.
_DISK_ONLY = frozenset(
    {
        "fd_write",
        "fd_pwrite",
        "fd_allocate",
        "fd_filestat_set_size",
        "path_create_directory",
        "path_symlink",
        "path_link",
    }
)


#: What the trampoline adds to a Store: core instances, tables, memories (it imports
#: the guest's memory). The Store's limits are raised by these.
TRAMPOLINE_NEEDS = (1, 0, 0)


def _trampoline_wat() -> str:
    """A core module that imports the guest's memory and wasmtime's WASI preview 1
    functions, exports the memory as its own ``memory``, and exports one wasm
    function per WASI function that calls it with the same arguments."""
    parts = ['(module (import "env" "memory" (memory 0))']
    for name, params in _SIGNATURES.items():
        parts.append(f'(import "{WASI_P1}" "{name}" (func ${name} (param {params}) (result i32)))')
    parts.append('(export "memory" (memory 0))')
    for name, params in _SIGNATURES.items():
        gets = " ".join(f"local.get {i}" for i in range(len(params.split())))
        parts.append(f'(func (export "{name}") (param {params}) (result i32) {gets} call ${name})')
    parts.append(")")
    return "\n".join(parts)


_TRAMPOLINES: weakref.WeakKeyDictionary[wasmtime.Engine, wasmtime.Module] = (
    weakref.WeakKeyDictionary()
)


def _trampoline(engine: wasmtime.Engine) -> wasmtime.Module:
    """The trampoline module compiled for ``engine`` (once per engine)."""
    module = _TRAMPOLINES.get(engine)
    if module is None:
        module = _TRAMPOLINES[engine] = wasmtime.Module(engine, _trampoline_wat())
    return module


class _Forwarder:
    """One Store's trampoline instance: wasmtime's WASI functions, callable on the
    unchecked path with the guest's raw slots."""

    __slots__ = ("_keep", "funcs")

    def __init__(self, store: wasmtime.Store, memory: wasmtime.Memory, real: wasmtime.Linker):
        imports: list[Any] = [memory]
        imports += [real.get(store, WASI_P1, name) for name in _SIGNATURES]
        instance = wasmtime.Instance(store, _trampoline(store.engine), imports)
        exports = instance.exports(store)
        funcs = {name: exports[name] for name in _SIGNATURES}
        self._keep = (instance, funcs)
        self.funcs = {
            name: _native.func_address(f)
            for name, f in funcs.items()
            if isinstance(f, wasmtime.Func)
        }


class InstanceFiles:
    """What one fast-path instance has open: which preopen each descriptor it can
    name is in, and which it opened itself (these count against
    ``Limits.open_files``).

    Attributes:
        owner: Descriptor -> index of the preopen it lies in (the preopens' own
            descriptors, 3 onwards in grant order, and those opened below them).
        opened: Descriptors the guest opened and has not closed.
        forwarder: The Store's trampoline, made at the first request that needs it.
    """

    __slots__ = ("forwarder", "opened", "owner")

    def __init__(self, preopens: int) -> None:
        self.owner: dict[int, int] = {3 + i: i for i in range(preopens)}
        self.opened: set[int] = set()
        self.forwarder: _Forwarder | None = None


class WasiFiles:
    """Serves the WASI preview 1 functions that open, close, write or grow files for
    one fast-path plugin: checks each request against :class:`FileLimits`, refuses it
    with ``EMFILE`` or ``EDQUOT`` past a limit, else forwards it to wasmtime's own.

    Args:
        limits: The plugin's file limits.
        engine: The plugin's engine (a linker with wasmtime's WASI is made for it).
        instance: Returns the live instance's ``(store, context, memory, files)``:
            its Store, its context's address, the address of its exported memory's
            ``wasmtime_memory_t`` and its :class:`InstanceFiles`; ``None`` when
            there is none.
        view: Returns a view of the live instance's memory.
        failed: Turns a failed forwarded call (wasmtime's message) into the exception
            to raise (it unwinds the guest).
    """

    def __init__(
        self,
        limits: FileLimits,
        engine: wasmtime.Engine,
        instance: Callable[[], tuple[wasmtime.Store, int, int, InstanceFiles] | None],
        view: Callable[[], memoryview],
        failed: Callable[[str], BaseException],
    ) -> None:
        self._limits = limits
        self._engine = engine
        self._instance = instance
        self._view = view
        self._failed = failed
        self._real: wasmtime.Linker | None = None
        self._trap = _native.TrapSlot()

    def serves(self, imported: set[str]) -> list[str]:
        """The WASI functions among ``imported`` that this serves (none when the
        plugin has no file limit to check)."""
        limits = self._limits
        if not limits.watched:
            return []
        disk = any(b is not None for b in limits.budgets)
        return [
            name for name in _SIGNATURES if name in imported and (disk or name not in _DISK_ONLY)
        ]

    def _live(self) -> tuple[int, InstanceFiles, _Forwarder]:
        live = self._instance()
        if live is None:  # pragma: no cover - WASI is called by a running instance
            raise RuntimeError("no live instance")
        store, context, memory, files = live
        forwarder = files.forwarder
        if forwarder is None:
            if self._real is None:
                real = wasmtime.Linker(self._engine)
                real.define_wasi()
                self._real = real
            forwarder = files.forwarder = _Forwarder(
                store, _native.memory_object(memory), self._real
            )
        return context, files, forwarder

    def _forward(self, name: str, context: int, forwarder: _Forwarder, raw: int, n: int) -> int:
        """Runs wasmtime's ``name`` on the guest's raw slots; returns its errno."""
        trap = self._trap
        err = _native.call_unchecked(context, forwarder.funcs[name], raw, n, trap.address)
        if err or trap.ptr.value:
            raise self._failed(_native.failure(err, trap))
        return int(_U32.unpack_from(_native.raw_view(raw, n), 0)[0])

    def function(self, name: str) -> Callable[[int, int], None]:
        """The raw host function serving WASI's ``name`` (``run(raw, n)``)."""
        check = getattr(self, f"_check_{name}")
        after = getattr(self, f"_after_{name}", None)
        forward = self._forward

        def run(raw: int, n: int) -> None:
            context, files, forwarder = self._live()
            buf = _native.raw_view(raw, n)
            args = check(buf, files)
            if isinstance(args, int):  # refused with this errno
                _U32.pack_into(buf, 0, args)
                return
            errno = forward(name, context, forwarder, raw, n)
            if errno == 0 and after is not None:
                after(args, files)

        return run

    # Each _check_<name>(buf, files) returns the arguments _after_<name> needs, or an
    # errno (int) to refuse the request with.

    def _budget_of(self, files: InstanceFiles, fd: int) -> int | None:
        index = files.owner.get(fd)
        if index is None or self._limits.budgets[index] is None:
            return None
        return index

    def _check_path_open(self, buf: Any, files: InstanceFiles) -> tuple[int, int] | int:
        dirfd, _flags, _path, _len, oflags = struct.unpack_from("<I12xI12xI12xI12xI", buf, 0)
        out = struct.unpack_from("<I", buf, 16 * 8)[0]
        if self._limits.refuse_open(len(files.opened)):
            return ERRNO_MFILE
        index = self._budget_of(files, dirfd)
        if oflags & _O_CREAT and index is not None and not self._limits.reserve(index, ENTRY_BYTES):
            return ERRNO_DQUOT
        return dirfd, out

    def _after_path_open(self, args: tuple[int, int], files: InstanceFiles) -> None:
        dirfd, out = args
        view = self._view()
        if out + 4 > len(view):  # pragma: no cover - WASI checked it before writing
            return
        fd = int(_U32.unpack_from(view, out)[0])
        files.opened.add(fd)
        index = files.owner.get(dirfd)
        if index is not None:
            files.owner[fd] = index

    def _check_fd_close(self, buf: Any, files: InstanceFiles) -> int | tuple[int]:
        return (int(_U32.unpack_from(buf, 0)[0]),)

    def _after_fd_close(self, args: tuple[int], files: InstanceFiles) -> None:
        (fd,) = args
        files.opened.discard(fd)
        files.owner.pop(fd, None)

    def _check_fd_renumber(self, buf: Any, files: InstanceFiles) -> tuple[int, int]:
        source, target = struct.unpack_from("<I12xI", buf, 0)
        return int(source), int(target)

    def _after_fd_renumber(self, args: tuple[int, int], files: InstanceFiles) -> None:
        source, target = args
        if source == target:
            return
        # `target` was closed and now holds what `source` held; `source` is gone.
        if source in files.opened:
            files.opened.discard(source)
            files.opened.add(target)
        else:
            files.opened.discard(target)
        index = files.owner.pop(source, None)
        if index is None:
            files.owner.pop(target, None)
        else:
            files.owner[target] = index

    def _written(self, iovs: int, count: int) -> int | None:
        """The bytes an ``iovec`` array in guest memory asks to write (all of its
        buffers, though wasmtime may write fewer); ``None`` if the array lies outside
        memory (wasmtime then answers ``EFAULT`` and writes nothing)."""
        view = self._view()
        if iovs + 8 * count > len(view):
            return None
        return sum(int(n) for _, n in _IOVEC.iter_unpack(view[iovs : iovs + 8 * count]))

    def _check_writes(self, files: InstanceFiles, fd: int, iovs: int, count: int) -> int | None:
        index = self._budget_of(files, fd)
        if index is None:
            return None
        n = self._written(iovs, count)
        if n is not None and not self._limits.reserve(index, n):
            return ERRNO_DQUOT
        return None

    def _check_fd_write(self, buf: Any, files: InstanceFiles) -> int | None:
        fd, iovs, count = struct.unpack_from("<I12xI12xI", buf, 0)
        return self._check_writes(files, fd, iovs, count)

    def _check_fd_pwrite(self, buf: Any, files: InstanceFiles) -> int | None:
        fd, iovs, count = struct.unpack_from("<I12xI12xI", buf, 0)
        return self._check_writes(files, fd, iovs, count)

    def _grow(self, files: InstanceFiles, fd: int, n: int) -> int | None:
        index = self._budget_of(files, fd)
        if index is not None and not self._limits.reserve(index, n):
            return ERRNO_DQUOT
        return None

    def _check_fd_allocate(self, buf: Any, files: InstanceFiles) -> int | None:
        fd, offset, length = struct.unpack_from("<I12xQ8xQ", buf, 0)
        return self._grow(files, fd, offset + length)

    def _check_fd_filestat_set_size(self, buf: Any, files: InstanceFiles) -> int | None:
        fd, size = struct.unpack_from("<I12xQ", buf, 0)
        return self._grow(files, fd, size)

    def _check_path_create_directory(self, buf: Any, files: InstanceFiles) -> int | None:
        return self._grow(files, int(_U32.unpack_from(buf, 0)[0]), ENTRY_BYTES)

    def _check_path_symlink(self, buf: Any, files: InstanceFiles) -> int | None:
        _old, old_len, fd = struct.unpack_from("<I12xI12xI", buf, 0)
        return self._grow(files, fd, ENTRY_BYTES + old_len)

    def _check_path_link(self, buf: Any, files: InstanceFiles) -> int | None:
        fd = int(_U32.unpack_from(buf, 16 * 4)[0])
        return self._grow(files, fd, ENTRY_BYTES)
