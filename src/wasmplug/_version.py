"""Versions: wasmplug's own (kept apart so that private modules can name it) and the
wasmtime it runs on (part of every compile-cache key).

``import wasmplug`` imports this module and nothing else: it must stay free of
imports.
"""

__version__ = "0.1.0"

#: ``"wasmtime"``: the version, once looked up.
_found: dict[str, str] = {}


def wasmtime_version() -> str:
    """The installed wasmtime-py version, e.g. ``50.0.1``, looked up once per process.

    It is read from the name of the ``wasmtime-<version>.dist-info`` directory beside
    the ``wasmtime`` package when there is exactly one (a wheel install), else from
    ``importlib.metadata``: importing that costs tens of milliseconds (it imports the
    ``email`` package), which a process loading a plugin from the compile cache
    should not pay.

    Raises:
        importlib.metadata.PackageNotFoundError: wasmtime-py is not installed as a
            distribution.
    """
    version = _found.get("wasmtime")
    if version is None:
        version = _found["wasmtime"] = _from_dist_info() or _from_metadata()
    return version


def _from_dist_info() -> str | None:
    """The version in the name of the only ``wasmtime-*.dist-info`` directory next to
    the imported ``wasmtime`` package, or ``None`` when there is not exactly one."""
    import os

    import wasmtime

    if wasmtime.__file__ is None:
        return None
    site = os.path.dirname(os.path.dirname(os.path.abspath(wasmtime.__file__)))
    try:
        names = os.listdir(site)
    except OSError:
        return None
    found = [
        n[len("wasmtime-") : -len(".dist-info")]
        for n in names
        if n.startswith("wasmtime-") and n.endswith(".dist-info")
    ]
    if len(found) != 1 or not found[0] or "-" in found[0]:
        return None
    return found[0]


def _from_metadata() -> str:
    import importlib.metadata

    return importlib.metadata.version("wasmtime")
