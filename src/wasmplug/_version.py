"""Versions: wasmplug's own (kept apart so that private modules can name it) and the
wasmtime it runs on (part of every compile-cache key)."""

import functools

__version__ = "0.1.0"


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py version, e.g. ``50.0.1``. Looked up on first use:
    ``importlib.metadata`` costs tens of milliseconds, which ``import wasmplug`` should
    not pay (importing the module alone costs about as much)."""
    import importlib.metadata

    return importlib.metadata.version("wasmtime")
