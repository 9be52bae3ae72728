"""Cold start: what ``import wasmplug`` loads, and what a new process that loads a
cached world and plugin touches.

These are behavioural checks in fresh interpreters (``python -X importtime`` lists
every module a process imports), never timings: the timings are the benchmark
suite's (``python -m benchmarks``, case ``new_process`` and ``import_time``).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import wasmplug
from conftest import FIXTURES

#: Modules a bare ``import wasmplug`` must not import: wasmtime-py (its ctypes
#: declarations of the whole C API), the HTTP client, attrs, the WIT front end (which
#: imports wasmtime), the bindings generator, the policy-file reader, and
#: ``importlib.metadata`` (tens of milliseconds for a version string).
HEAVY = [
    "wasmtime",
    "wasmtime.component",
    "httpx",
    "attrs",
    "attr",
    "cbor2",
    "importlib.metadata",
    "tomllib",
    "wasmplug._wit",
    "wasmplug._wit._official",
    "wasmplug._bindgen",
    "wasmplug._plugin",
]


def _run(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _imported(importtime_stderr: str) -> list[str]:
    """The modules named in ``-X importtime`` output, in import order."""
    return [
        line.rsplit("|", 1)[1].strip()
        for line in importtime_stderr.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("imported package")
    ]


def test_bare_import_loads_nothing_heavy() -> None:
    """``import wasmplug`` imports only the package and its version module: none of
    the heavy modules, none of wasmplug's other private modules; ``__version__``
    works without importing more."""
    proc = _run("import wasmplug; print(wasmplug.__version__)", "-X", "importtime")
    assert proc.stdout.strip() == wasmplug.__version__
    imported = _imported(proc.stderr)
    assert "wasmplug" in imported
    assert [m for m in imported if m in HEAVY] == []
    assert [m for m in imported if m.startswith("wasmplug")] == ["wasmplug._version", "wasmplug"]


def test_every_public_name_resolves_in_a_fresh_process() -> None:
    """In a new process every name of ``__all__`` resolves, both as an attribute and
    through ``from wasmplug import *``; ``dir()`` lists them before they are loaded;
    each reports ``wasmplug`` as its module. Only the names used are imported: looking
    up ``Policy`` does not import wasmtime."""
    code = """
import json, sys
import wasmplug
listed = set(dir(wasmplug)) >= set(wasmplug.__all__)
policy = wasmplug.Policy()
after_policy = sorted(m for m in ("wasmtime", "wasmplug._wit", "httpx") if m in sys.modules)
names = {n: getattr(wasmplug, n) for n in wasmplug.__all__}
star = {}
exec("from wasmplug import *", star)
print(json.dumps({
    "listed": listed,
    "after_policy": after_policy,
    "missing": [n for n, o in names.items() if o is None],
    "star_missing": [n for n in wasmplug.__all__ if star.get(n) is not names[n]],
    "wrong_module": [
        n for n, o in names.items()
        if (isinstance(o, type) or callable(o)) and o.__module__ != "wasmplug"
    ],
    "httpx": "httpx" in sys.modules,
}))
"""
    doc = json.loads(_run(code).stdout)
    assert doc == {
        "listed": True,
        "after_policy": [],
        "missing": [],
        "star_missing": [],
        "wrong_module": [],
        "httpx": False,
    }


def test_names_resolve_once_under_concurrent_first_use() -> None:
    """Eight threads of a fresh process looking up every public name at once, each in
    its own order, all get the very same objects, each reporting ``wasmplug`` as its
    module: a class is never made twice or seen half-imported."""
    code = """
import json, random, threading
import wasmplug
names = list(wasmplug.__all__)
seen = [None] * 8
barrier = threading.Barrier(8)
def run(i):
    order = names[:]
    random.Random(i).shuffle(order)
    barrier.wait()
    seen[i] = {n: id(getattr(wasmplug, n)) for n in order}
threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({
    "same": all(s == seen[0] for s in seen) and len(seen[0]) == len(names),
    "wrong_module": [
        n for n in names
        if (isinstance(getattr(wasmplug, n), type) or callable(getattr(wasmplug, n)))
        and getattr(wasmplug, n).__module__ != "wasmplug"
    ],
}))
"""
    assert json.loads(_run(code).stdout) == {"same": True, "wrong_module": []}


def test_a_pickled_policy_loads_in_a_fresh_process() -> None:
    """A pickle names ``wasmplug.Policy``; a process that has not imported wasmplug
    unpickles it through the lazy lookup, equal to the original."""
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=5, memory_bytes=1 << 20))
    code = f"""
import pickle, sys
p = pickle.loads({pickle.dumps(policy)!r})
print(type(p).__module__, type(p).__qualname__, p.limits.fuel, p.limits.memory_bytes)
"""
    assert _run(code).stdout.split() == ["wasmplug", "Policy", "5", str(1 << 20)]


def test_public_names_and_lazy_table_agree() -> None:
    """``__all__`` and the table of where each public name lives name the same
    names, so no public name is missing from ``__all__`` or unreachable."""
    assert sorted(wasmplug._SOURCE_OF) == wasmplug.__all__
    for name, source in wasmplug._SOURCE_OF.items():
        obj = getattr(wasmplug, name)
        assert obj is getattr(sys.modules[f"wasmplug.{source}"], name), name


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name that is neither public nor a submodule raises AttributeError naming it
    (so ``hasattr`` and ``getattr(..., default)`` behave)."""
    assert not hasattr(wasmplug, "no_such_name")
    with pytest.raises(AttributeError, match="no_such_name"):
        wasmplug.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_a_cached_world_and_plugin_never_touch_the_wit_parser(wasm_dir: Path) -> None:
    """A new process that loads a world and a plugin it has loaded before (the WIT
    result cache and the compile cache are warm) never opens the WIT parser module,
    never compiles or instantiates it, and does not import ``importlib.metadata``;
    the first call answers."""
    code = f"""
import json, sys
opened = []
sys.addaudithook(
    lambda event, args: opened.append(args[0])
    if event == "open" and isinstance(args[0], str) and args[0].endswith("wit.wasm")
    else None
)
import wasmplug
from wasmplug._wit import _official
world = wasmplug.load_world({str(FIXTURES / "benchcalls" / "wit")!r}, "benchcalls")
with wasmplug.load({str(wasm_dir / "benchcalls.wasm")!r}, world=world) as plugin:
    answer = plugin.call("add", 1, 2)
print(json.dumps({{
    "answer": answer,
    "opened": opened,
    "instantiations": _official.stats.instantiations,
    "compiles": _official.stats.compiles,
    "parser_loaded": _official._loaded.module is not None,
    "metadata": "importlib.metadata" in sys.modules,
}}))
"""
    _run(code)  # warms the caches (a no-op when another test already did)
    doc = json.loads(_run(code).stdout)
    assert doc == {
        "answer": 3,
        "opened": [],
        "instantiations": 0,
        "compiles": 0,
        "parser_loaded": False,
        "metadata": False,
    }


def test_wasmtime_version_matches_the_distribution_metadata() -> None:
    """The compile-cache key's wasmtime version, read without ``importlib.metadata``,
    is the one the installed distribution declares."""
    import importlib.metadata

    from wasmplug import _version

    assert _version.wasmtime_version() == importlib.metadata.version("wasmtime")
    assert _version._from_dist_info() in (None, importlib.metadata.version("wasmtime"))


def test_parser_identity_follows_the_module_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WIT result cache's name for the parser module changes when the module file
    is rewritten (other size or modification time), without reading the file."""
    from wasmplug._wit import _official

    module = tmp_path / "wit.wasm"
    module.write_bytes(b"\0asm-one")
    monkeypatch.setattr(_official, "_MODULE_PATH", module)
    monkeypatch.setattr(_official, "_loaded", _official._Loaded())
    first = _official.parser_identity()
    assert first == _official.parser_identity()
    module.write_bytes(b"\0asm-other")
    os.utime(module, ns=(1, 1))
    monkeypatch.setattr(_official, "_loaded", _official._Loaded())
    second = _official.parser_identity()
    assert second != first
    assert second.startswith(f"{wasmplug.__version__}:")
