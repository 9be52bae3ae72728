"""Policy files: the grants and limits of many plugins in one TOML file
(:func:`load_policies`).

The format is the dict form of :class:`~wasmplug.Policy` (:meth:`Policy.to_dict
<wasmplug.Policy.to_dict>`) as TOML tables, one per plugin under ``[plugins.<name>]``,
with an optional ``[defaults]`` table that every plugin starts from; see
``docs/manifest.md`` ("Policy files").
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._exceptions import PolicyError
from ._policy import Policy, policy_from_mapping

__all__ = ["load_policies"]

_TOP_LEVEL = ("defaults", "plugins")


def _merge(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's table over the defaults: ``grants`` and ``limits`` merged key by key,
    ``mode`` replaced."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in own.items():
        if key in ("grants", "limits") and isinstance(value, Mapping):
            base = defaults.get(key)
            merged[key] = {**(base if isinstance(base, Mapping) else {}), **value}
        else:
            merged[key] = value
    return merged


def load_policies(path: str | os.PathLike[str]) -> dict[str, Policy]:
    """Reads the policies of many plugins from a TOML file.

    The file holds an optional ``[defaults]`` table and one ``[plugins.<name>]`` table
    per plugin, each of the form ``{grants = {...}, limits = {...}, mode = "..."}``
    (the keys of :class:`~wasmplug.Grants`, :class:`~wasmplug.Limits` and
    :attr:`Policy.mode <wasmplug.Policy.mode>`). A plugin's ``grants`` and ``limits``
    are merged key by key over those of ``[defaults]``. Relative ``host_path`` values
    of ``files`` are resolved against the file's directory.

    Args:
        path: The TOML file.

    Returns:
        The policy of each plugin, by name (in file order).

    Raises:
        OSError: the file cannot be read.
        PolicyError: the file is not valid TOML, or a key is unknown, a value has the
            wrong type or is invalid. The message names the file, the key
            (``plugins.acme.grants.files[0].writable``), what was expected and what
            was found.
    """
    file = Path(os.fspath(path))
    with file.open("rb") as f:
        try:
            doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise PolicyError(f"{file}: not valid TOML: {e}") from None
    base_dir = str(file.resolve().parent)
    for key in doc:
        if key not in _TOP_LEVEL:
            raise PolicyError(
                f"{file}: unknown top-level key {key!r} (expected 'defaults' and 'plugins')"
            )
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise PolicyError(f"{file}: defaults: expected a table, found {type(defaults).__name__}")
    # Checked on its own, so that a mistake in it is reported where it is.
    policy_from_mapping(defaults, where=f"{file}: defaults", base_dir=base_dir)
    plugins = doc.get("plugins", {})
    if not isinstance(plugins, Mapping):
        raise PolicyError(f"{file}: plugins: expected a table, found {type(plugins).__name__}")
    policies: dict[str, Policy] = {}
    for name, own in plugins.items():
        where = f"{file}: plugins.{name}"
        if not isinstance(own, Mapping):
            raise PolicyError(
                f"{where}: expected a table (grants, limits, mode), found "
                f"{type(own).__name__} {own!r:.60}"
            )
        policies[name] = policy_from_mapping(_merge(defaults, own), where=where, base_dir=base_dir)
    return policies
