"""Files of wasmplug's on-disk caches: where they live, who may have written them, how
they are written and bounded.

Two caches hold what the host later trusts: compiled machine code (``.cwasm`` files,
loaded without re-validation: whoever can write one runs native code in every host
that loads it) and resolved WIT (a rewritten entry would change the types a host
checks plugins against). So an entry is used only when it, its directory and the
cache root belong to the user running the host and nobody else can write them, and
the directories wasmplug creates are private (mode 0700). An entry that fails the
check is ignored with a warning and the work is done again; nothing is written into
a directory that fails it.

On platforms without POSIX ownership (Windows) the check only refuses symbolic
links.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["cache_root", "prune", "read_trusted", "touch", "write_atomically"]

logger = logging.getLogger("wasmplug")

_POSIX = hasattr(os, "getuid")


def cache_root() -> Path:
    """The default cache directory: ``$XDG_CACHE_HOME/wasmplug``, else
    ``~/.cache/wasmplug``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "wasmplug"


def _untrusted(st: os.stat_result) -> str | None:
    """Why a file or directory with this status cannot be trusted, or ``None``."""
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not _POSIX:
        return None
    if st.st_uid != os.getuid():
        return f"it belongs to uid {st.st_uid}, not to this process's uid {os.getuid()}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"others can write it (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _directory_problem(directory: Path) -> str | None:
    """Why entries in ``directory`` cannot be trusted, or ``None``: the directory and
    its parent (the cache root, or a directory of it) must pass the check."""
    for d in (directory, directory.parent):
        try:
            why = _untrusted(os.lstat(d))
        except OSError as e:
            return f"cannot inspect {d}: {e.strerror}"
        if why is not None:
            return f"{d}: {why}"
    return None


def read_trusted(path: Path) -> bytes | None:
    """Reads a cache entry, or returns ``None`` when there is none or it cannot be
    trusted (see the module docstring; that case is logged as a warning).

    The bytes are read, never mapped: a mapped file rewritten in place later would
    crash the process with SIGBUS when the code is touched.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        logger.warning("ignoring cache entry %s: %s", path, e.strerror)
        return None
    with os.fdopen(fd, "rb") as f:
        why = _untrusted(os.fstat(f.fileno()))
        if why is None:
            why = _directory_problem(path.parent)
        if why is not None:
            logger.warning("ignoring cache entry %s: %s", path, why)
            return None
        return f.read()


def _private_dirs(directory: Path) -> None:
    """Creates ``directory`` and any missing parents with mode 0700."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            d.mkdir(mode=0o700)


def write_atomically(path: Path, data: bytes) -> None:
    """Writes a cache entry: into a temporary file beside it, then renamed, so a reader
    never sees half an entry. Failures (a read-only or untrusted cache directory) are
    logged, never raised: the cache is an optimization."""
    import tempfile  # only when writing: a process served from the cache never needs it

    try:
        _private_dirs(path.parent)
        why = _directory_problem(path.parent)
        if why is not None:
            logger.warning("not writing cache entry %s: %s", path, why)
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        logger.warning("cannot write cache entry %s: %s", path, e)


def touch(path: Path) -> None:
    """Marks a cache entry as just used (its mtime orders eviction)."""
    with contextlib.suppress(OSError):  # a read-only cache: only the order suffers
        os.utime(path)


def prune(directory: Path, pattern: str, keep: int) -> None:
    """Deletes the least recently used files matching ``pattern`` in ``directory``
    beyond the ``keep`` newest, so the cache stays bounded. Errors only log: a cache
    that cannot be pruned still works."""
    try:
        entries = sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime)
        for old in entries[: max(0, len(entries) - keep)]:
            old.unlink(missing_ok=True)
    except OSError as e:
        logger.warning("cannot prune cache directory %s: %s", directory, e)
