"""Open files and disk space in preopens (``Limits.open_files``, ``Preopen.max_bytes``):
what stays allowed, what is refused or fails, on both backends, and how the limits go
through policy dicts and files. The attacks themselves are in ``test_hostile.py``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from conftest import fixture_world
from wasmplug import _files, _wasiforward

ATTACKS = fixture_world("attacks")
EDQUOT = "Quota exceeded (os error 19)"
EMFILE = "No file descriptors available (os error 33)"


@pytest.fixture
def load(plugin_dir: Path, engine: wasmplug.Engine) -> Any:
    """Loads the attacks plugin with the given preopens and limits."""
    loaded: list[wasmplug.Plugin] = []

    def load(*files: wasmplug.Preopen, **limits: Any) -> wasmplug.Plugin:
        policy = wasmplug.Policy(
            grants=wasmplug.Grants(files=files), limits=wasmplug.Limits(**limits)
        )
        plugin = wasmplug.load(
            plugin_dir / "attacks.wasm", world=ATTACKS, policy=policy, engine=engine, name="files"
        )
        loaded.append(plugin)
        return plugin

    yield load
    for plugin in loaded:
        plugin.close()


def core(plugin: wasmplug.Plugin) -> bool:
    return plugin.kind == "core-module"


def too_many_files(plugin: wasmplug.Plugin) -> str:
    """What the guest's refused open says: ``EMFILE`` on the fast path (WASI preview
    1); on the component path ``error-code.quota`` (WASI 0.2 has no code for EMFILE),
    which wasi-libc turns into ``EDQUOT``."""
    return EMFILE if core(plugin) else EDQUOT


def writable(path: Path, guest: str = "/data", **options: Any) -> wasmplug.Preopen:
    path.mkdir(exist_ok=True)
    return wasmplug.Preopen(host_path=path, guest_path=guest, writable=True, **options)


def test_defaults() -> None:
    """64 files open at once and 64 MiB per preopen unless the policy says otherwise."""
    assert wasmplug.Limits().open_files == 64
    assert wasmplug.Preopen(host_path="/tmp", guest_path="/t").max_bytes == 64 << 20


def test_files_and_bytes_within_the_limits_are_served(load: Any, tmp_path: Path) -> None:
    """Under both limits files open, close, hold across calls and fill the budget up
    to it: nothing is refused, nothing is audited."""
    data = tmp_path / "data"
    plugin = load(writable(data, max_bytes=1 << 20), open_files=8)
    assert plugin.call("hold-files", "/data", 8) == (8, "")
    assert plugin.call("release-files") == 8
    assert plugin.call("hold-files", "/data", 8) == (8, "")
    assert plugin.call("release-files") == 8
    # 8 entries of 4 KiB so far; 900 KiB more fits in 1 MiB.
    assert plugin.call("fill-file", "/data/f0", 4096, 900 << 10) == (900 << 10, "")
    assert (data / "f0").stat().st_size == 900 << 10
    assert plugin.audit_counts == {}


def test_none_disables_both(load: Any, tmp_path: Path) -> None:
    """``open_files=None`` and ``max_bytes=None`` bound nothing."""
    plugin = load(writable(tmp_path / "data", max_bytes=None), open_files=None)
    assert plugin.call("hold-files", "/data", 200) == (200, "")
    assert plugin.call("release-files") == 200
    assert plugin.call("fill-file", "/data/big", 1 << 20, 80 << 20) == (80 << 20, "")


def test_what_is_there_already_counts(load: Any, tmp_path: Path) -> None:
    """A preopen that holds more than its budget when the plugin loads takes no more:
    creating a file there is refused in the guest (EDQUOT), on both backends. Reading
    it is fine; deleting makes room."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "old").write_bytes(b"x" * (2 << 20))
    plugin = load(writable(data, max_bytes=1 << 20))
    assert plugin.call("read-file", "/data/old") == "x" * (2 << 20)
    assert plugin.call("fill-file", "/data/new", 10, 10) == (0, EDQUOT)
    assert plugin.audit_counts == {"breach:max_bytes": 1}
    assert not (data / "new").exists()
    assert plugin.call("read-file", "/data/old") == "x" * (2 << 20)
    plugin.call("remove-file", "/data/old")
    assert plugin.call("fill-file", "/data/new", 10, 10) == (10, "")


def test_each_preopen_has_its_own_budget(load: Any, tmp_path: Path) -> None:
    """Budgets are per preopen: a read-only preopen first (not counted), a writable one
    without a budget, and one with a small budget; only the last refuses."""
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "big").write_bytes(b"r" * (3 << 20))
    plugin = load(
        wasmplug.Preopen(host_path=ro, guest_path="/ro"),
        writable(tmp_path / "free", "/free", max_bytes=None),
        writable(tmp_path / "tight", "/tight", max_bytes=64 << 10),
    )
    assert plugin.call("fill-file", "/free/a", 65_536, 2 << 20) == (2 << 20, "")
    if core(plugin):
        written, refusal = plugin.call("fill-file", "/tight/a", 4096, 1 << 20)
        assert refusal == EDQUOT
        assert written == (64 << 10) - _files.ENTRY_BYTES
        assert plugin.audit_counts == {"breach:max_bytes": 1}
    else:  # a stream write has no error case for it: the call fails, exactly at it
        with pytest.raises(wasmplug.DiskLimitExceeded) as info:
            plugin.call("fill-file", "/tight/a", 4096, 1 << 20)
        assert info.value.preopen == "/tight"
        assert (tmp_path / "tight" / "a").stat().st_size == (64 << 10) - _files.ENTRY_BYTES
    assert plugin.call("fill-file", "/free/b", 65_536, 65_536) == (65_536, "")


def test_a_guest_that_fails_on_a_refusal(load: Any, tmp_path: Path) -> None:
    """A guest that panics when its write is refused fails the call with
    DiskLimitExceeded (not a bare Trap), audited once; the plugin continues on a fresh
    instance."""
    plugin = load(writable(tmp_path / "data", max_bytes=256 << 10))
    with pytest.raises(wasmplug.DiskLimitExceeded) as info:
        plugin.call("fill-or-panic", "/data/f", 1 << 20)
    e = info.value
    assert (e.plugin, e.limit, e.allowed, e.preopen) == ("files", "max_bytes", 256 << 10, "/data")
    assert e.used is not None
    assert e.used > 256 << 10
    assert plugin.audit_counts == {"breach:max_bytes": 1}
    plugin.call("remove-file", "/data/f")
    assert plugin.call("fill-file", "/data/g", 1024, 1024) == (1024, "")


def test_closing_and_reopening_frees_descriptors(load: Any, tmp_path: Path) -> None:
    """Closed files no longer count: 200 files opened, written and closed one after
    the other under a limit of 4 are all served; holding a fifth is refused in the
    guest, audited once, and the plugin goes on with its four."""
    plugin = load(writable(tmp_path / "data"), open_files=4, deadline_ms=60_000)
    assert plugin.call("many-files", "/data", 200, 1) == (200, "")
    assert plugin.call("hold-files", "/data", 4) == (4, "")
    assert plugin.call("hold-files", "/data", 1) == (0, too_many_files(plugin))
    assert plugin.audit_counts == {"breach:open_files": 1}
    assert plugin.call("release-files") == 4
    assert plugin.call("hold-files", "/data", 4) == (4, "")


def test_measured_open_files(tmp_path: Path) -> None:
    """Where open files cannot be counted as they are opened (a component that imports
    ``wasi:sockets/tcp``, whose streams wasmplug cannot serve), they are measured:
    the host's descriptors under the preopens, past ``open_files``."""
    data = tmp_path / "data"
    data.mkdir()
    preopen = wasmplug.Preopen(host_path=data, guest_path="/data", writable=True, max_bytes=None)
    limits = _files.FileLimits((preopen,), wasmplug.Limits(open_files=2))
    assert limits.measured
    held = [(data / f"f{i}").open("w") for i in range(3)]
    try:
        assert limits.over() == _files.FileBreach("open_files", 2, 3)
        held.pop().close()
        assert limits.over() is None
    finally:
        for f in held:
            f.close()
    limits.counted = True  # counted exactly instead: nothing left to measure
    assert not limits.measured


def test_limits_in_policy_dicts_and_files(tmp_path: Path) -> None:
    """``open_files`` and ``max_bytes`` go through the dict form and policy files; null
    disables them; nonsense is refused naming the key."""
    policy = wasmplug.Policy.from_dict(
        {
            "limits": {"open_files": 16},
            "grants": {
                "files": [
                    {"host_path": "/srv/a", "guest_path": "/a", "writable": True, "max_bytes": 4096}
                ]
            },
        }
    )
    assert policy.limits.open_files == 16
    assert policy.grants.files[0].max_bytes == 4096
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
    unbounded = wasmplug.Policy.from_dict(
        {
            "limits": {"open_files": None},
            "grants": {"files": [{"host_path": "/a", "guest_path": "/a", "max_bytes": None}]},
        }
    )
    assert unbounded.limits.open_files is None
    assert unbounded.grants.files[0].max_bytes is None
    for bad, key in (
        ({"limits": {"open_files": 0}}, "open_files"),
        ({"limits": {"open_files": "many"}}, "open_files"),
        (
            {"grants": {"files": [{"host_path": "/a", "guest_path": "/a", "max_bytes": -1}]}},
            "max_bytes",
        ),
        (
            {"grants": {"files": [{"host_path": "/a", "guest_path": "/a", "max_bytes": "1G"}]}},
            "max_bytes",
        ),
    ):
        with pytest.raises(wasmplug.PolicyError, match=key):
            wasmplug.Policy.from_dict(bad)
    path = tmp_path / "policies.toml"
    path.write_text(
        "[defaults]\nlimits = { open_files = 8 }\n"
        "[plugins.a.grants]\n"
        'files = [{ host_path = "out", guest_path = "/out", writable = true, '
        "max_bytes = 1048576 }]\n",
        encoding="utf-8",
    )
    a = wasmplug.load_policies(path)["a"]
    assert a.limits.open_files == 8
    assert a.grants.files[0] == wasmplug.Preopen(
        host_path=str(tmp_path / "out"), guest_path="/out", writable=True, max_bytes=1 << 20
    )


def test_tree_bytes_counts_sizes_and_entries(tmp_path: Path) -> None:
    """A preopen's usage: file sizes plus 4,096 bytes per file, directory and symbolic
    link, links not followed."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"a" * 10)
    (tmp_path / "b").write_bytes(b"")
    (tmp_path / "link").symlink_to("/etc/passwd")
    assert _files.tree_bytes(str(tmp_path)) == 4 * _files.ENTRY_BYTES + 10


def test_nothing_is_served_without_files(plugin_dir: Path, engine: wasmplug.Engine) -> None:
    """Without preopens (or without limits) wasmplug serves none of WASI's file
    functions itself: calls pay nothing for the file limits."""
    none = _files.FileLimits((), wasmplug.Limits())
    assert not none.watched
    preopen = wasmplug.Preopen(host_path="/tmp", guest_path="/t", writable=True, max_bytes=None)
    unlimited = _files.FileLimits((preopen,), wasmplug.Limits(open_files=None))
    assert not unlimited.watched
    counted = _files.FileLimits((preopen,), wasmplug.Limits())
    wasi = _files.WasiFiles(
        counted, engine.wasmtime_engine, lambda: None, lambda: memoryview(b""), Exception
    )
    assert wasi.serves({"path_open", "fd_close", "fd_write", "fd_read"}) == [
        "path_open",
        "fd_close",
    ]


def test_plugins_sharing_a_directory_do_not_count_each_others_preopens(
    load: Any, tmp_path: Path
) -> None:
    """Each live instance holds a descriptor for each of its preopens; on the
    component path, where descriptors are counted by host path, those of other
    plugins preopening the same directory are not counted as opened files."""
    data = tmp_path / "shared"
    plugins = [load(writable(data), open_files=2) for _ in range(6)]
    for plugin in plugins:
        assert plugin.call("host-call-storm", 0) == 0
        assert plugin.call("hold-files", "/data", 1) == (1, "")
        assert plugin.call("release-files") == 1


CAPS = fixture_world("caps")


def test_stdio_of_a_plugin_whose_files_are_counted(
    plugin_dir: Path, engine: wasmplug.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With open files counted (on the component path wasmplug then serves the
    plugin's streams, stdio's included, and a guest importing WASI 0.2.6 is served
    too), granted stdout and stderr reach the plugin's logger and
    ``Limits.stdio_bytes`` still holds; files read and write as before."""
    data = tmp_path / "data"
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(files=[writable(data)], stdio=True),
        limits=wasmplug.Limits(open_files=4, stdio_bytes=64),
    )
    plugin = wasmplug.load(
        plugin_dir / "caps.wasm", world=CAPS, policy=policy, engine=engine, name="printer"
    )
    try:
        with caplog.at_level(logging.INFO, logger="wasmplug.plugin.printer"):
            plugin.call("print", "to stdout\n", "to stderr\n")
        got = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.endswith("printer")]
        assert got == [(logging.INFO, "to stdout"), (logging.WARNING, "to stderr")]
        with pytest.raises(wasmplug.StdioLimitExceeded):
            plugin.call("print", "x" * 100, "")
        assert plugin.call("write-file", "/data/a.txt", "written") is None
        assert plugin.call("read-file", "/data/a.txt") == "written"
        assert (data / "a.txt").read_text() == "written"
    finally:
        plugin.close()


def test_counting_files_takes_nothing_from_the_plugins_limits(
    plugin_dir: Path, engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """The fewest core instances and tables the plugin loads with, without files, are
    enough with a preopen and ``open_files`` (wasmplug's forwarder on the component
    path is given its own), and files are counted there as everywhere."""

    def load(files: tuple[wasmplug.Preopen, ...], **limits: Any) -> wasmplug.Plugin:
        policy = wasmplug.Policy(
            grants=wasmplug.Grants(files=files),
            limits=wasmplug.Limits(open_files=2, **limits),
        )
        return wasmplug.load(
            plugin_dir / "attacks.wasm", world=ATTACKS, policy=policy, engine=engine
        )

    def fewest(field: str) -> int:
        for n in range(1, 64):
            try:
                load((), **{field: n}).close()
            except wasmplug.InstantiationError:
                continue
            return n
        raise AssertionError(f"the plugin does not load with 63 {field}")

    limits = {"instances": fewest("instances"), "tables": fewest("tables")}
    plugin = load((writable(tmp_path / "data"),), memories=1, **limits)
    try:
        assert plugin.call("hold-files", "/data", 3) == (2, too_many_files(plugin))
    finally:
        plugin.close()


def test_fuel_runs_out_inside_wasi(load: Any, tmp_path: Path) -> None:
    """A guest whose fuel runs out while wasmplug serves its file operations fails
    with FuelExhausted (not a host function's failure), and the plugin goes on."""
    plugin = load(writable(tmp_path / "data", max_bytes=None), open_files=8, fuel=2_000_000)
    with pytest.raises(wasmplug.FuelExhausted):
        plugin.call("many-files", "/data", 100_000, 0)
    assert plugin.call("write-file", "/data/after", "ok") is None


def test_which_interfaces_are_served() -> None:
    """wasmplug serves a component's WASI files and streams when it imports
    ``wasi:filesystem/types``, at the exact versions it imports (both of two), and not
    when it also imports ``wasi:sockets/tcp``, whose streams it cannot serve."""
    imports = [
        "wasi:io/streams@0.2.6",
        "wasi:io/streams@0.2.12",
        "wasi:io/poll@0.2.12",
        "wasi:filesystem/types@0.2.12",
        "wasi:cli/stdout@0.2.6",
        "wasmplug:host/log@0.1.0",
    ]
    assert _wasiforward.served_interfaces(imports) == (
        ("wasi:io/streams", "wasi:io/streams@0.2.6"),
        ("wasi:io/streams", "wasi:io/streams@0.2.12"),
        ("wasi:filesystem/types", "wasi:filesystem/types@0.2.12"),
        ("wasi:cli/stdout", "wasi:cli/stdout@0.2.6"),
    )
    assert _wasiforward.served_interfaces(["wasi:io/streams@0.2.6"]) is None
    assert _wasiforward.served_interfaces([*imports, "wasi:sockets/tcp@0.2.12"]) is None
