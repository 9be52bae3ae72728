"""Two-party grants: the capability manifest a plugin carries (written with the guest
SDK's ``manifest!``), its comparison with the policy at load time (permissive and strict
modes), and policy files (:func:`wasmplug.load_policies`).

The fixture ``tests/fixtures/manifest`` asks for every capability wasmplug knows, plus
``http``; malformed manifests are made by appending a ``wasmplug-manifest`` custom
section to a built component (a component may carry custom sections at its top level).
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import attrs
import pytest

import wasmplug
from conftest import fixture_world
from wasmplug._manifest import COMPARATORS, compare, parse_manifest
from wasmplug._wit import _official

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Every item the fixture requests, as the report names them, in manifest order.
REQUESTED = (
    "log",
    "config threshold",
    "kv",
    "files /data (read)",
    "files /out (read, write)",
    "env TZ",
    "stdio",
    "http https://api.example.com/* (GET)",
)


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def with_section(wasm: bytes, data: bytes, name: str = "wasmplug-manifest") -> bytes:
    """``wasm`` with one more custom section at its top level."""
    payload = _leb128(len(name.encode())) + name.encode() + data
    return wasm + b"\x00" + _leb128(len(payload)) + payload


@pytest.fixture(scope="module")
def manifest_wasm(wasm_dir: Path) -> bytes:
    return (wasm_dir / "manifest.wasm").read_bytes()


@pytest.fixture(scope="module")
def plain_wasm(wasm_dir: Path) -> bytes:
    """A component without a manifest (same world as the fixture)."""
    return (wasm_dir / "log_only.wasm").read_bytes()


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("manifest")


def partial_policy(tmp_path: Path, *, mode: str = "permissive") -> wasmplug.Policy:
    """Grants part of what the fixture asks for (and one thing it does not)."""
    (tmp_path / "out").mkdir(exist_ok=True)
    return wasmplug.Policy(
        grants=wasmplug.Grants(
            log=True,
            config={"threshold": "7", "unused": "x"},
            files=[wasmplug.Preopen(host_path=tmp_path / "out", guest_path="/out", writable=True)],
            env={"TZ": "UTC"},
        ),
        mode=mode,
    )


def full_policy(tmp_path: Path) -> wasmplug.Policy:
    """Grants everything the fixture asks for that the host knows (all but http)."""
    for d in ("data", "out"):
        (tmp_path / d).mkdir(exist_ok=True)
    return wasmplug.Policy(
        grants=wasmplug.Grants(
            log=True,
            config={"threshold": "7"},
            kv=wasmplug.KvGrant(),
            files=[
                wasmplug.Preopen(host_path=tmp_path / "data", guest_path="/data"),
                wasmplug.Preopen(host_path=tmp_path / "out", guest_path="/out", writable=True),
            ],
            env={"TZ": "UTC"},
            stdio=True,
        ),
        mode="strict",
    )


# -- the manifest in the binary ---------------------------------------------------------


def test_sdk_macro_embeds_the_manifest_in_the_component(manifest_wasm: bytes) -> None:
    """The section written by ``manifest!`` survives linking and componentization: it
    sits in the core module the component nests (depth 1), and decodes to the needs
    and reasons of the fixture's source."""
    sections = _official.custom_sections(manifest_wasm, "wasmplug-manifest")
    assert [depth for depth, _ in sections] == [1]
    info = wasmplug.inspect(manifest_wasm)
    assert info.manifest is not None
    assert [n.capability for n in info.manifest.needs] == [
        "log",
        "config",
        "kv",
        "files",
        "env",
        "stdio",
        "http",
    ]
    files = info.manifest.needs[3]
    assert files.reason == "reads input, writes results"
    assert [(i.name, i.access) for i in files.items] == [
        ("/data", ("read",)),
        ("/out", ("read", "write")),
    ]
    assert "http https://api.example.com/* (GET): fetches reference data" in str(info)


def test_inspect_reports_no_manifest(plain_wasm: bytes) -> None:
    """A plugin built without ``manifest!`` has none, and inspect says so."""
    info = wasmplug.inspect(plain_wasm)
    assert info.manifest is None
    assert "manifest:\n  (none)" in str(info)


# -- permissive and strict loading ------------------------------------------------------


def test_permissive_load_reports_the_difference_and_denies_at_run_time(
    manifest_wasm: bytes,
    world: wasmplug.World,
    engine: wasmplug.Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In permissive mode the plugin loads; the report names what was requested,
    granted, denied (with the plugin's reason and what the policy lacks) and granted
    without being asked; one INFO and one WARNING record say the same; and the
    ungranted capability is denied when the plugin uses it."""
    caplog.set_level(logging.INFO, logger="wasmplug")
    policy = partial_policy(tmp_path)
    with wasmplug.load(
        manifest_wasm, world=world, policy=policy, engine=engine, name="asker"
    ) as plugin:
        report = plugin.capabilities
        assert plugin.manifest is report.manifest is not None
        assert report.requested == REQUESTED
        assert report.granted == ("log", "config threshold", "files /out (read, write)", "env TZ")
        assert {d.request: d.missing for d in report.denied} == {
            "kv": "Grants.kv is None",
            "files /data (read)": "no preopen in Grants.files covers this guest path",
            "stdio": "Grants.stdio is False",
            "http https://api.example.com/* (GET)": (
                "Grants.http is None (outbound HTTP not granted)"
            ),
        }
        assert {d.request: d.reason for d in report.denied}["kv"] == "counts the probes"
        assert report.unrequested == ("config unused",)
        assert not report.complete
        assert plugin.call("probe") == ["log ok", "config 7", "kv denied"]
    records = [r for r in caplog.records if r.name == "wasmplug" and "asker" in r.getMessage()]
    info = [r.getMessage() for r in records if r.levelno == logging.INFO]
    assert info == [f"plugin 'asker' capabilities: {report.summary()}"]
    warning = next(r.getMessage() for r in records if "does not grant (loaded" in r.getMessage())
    assert "kv ('counts the probes'): Grants.kv is None" in warning


def test_read_only_grant_of_a_writable_request_is_a_denial(
    manifest_wasm: bytes, world: wasmplug.World, engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """A preopen granted read-only does not satisfy a request to write there."""
    policy = partial_policy(tmp_path)
    grants = policy.grants
    read_only = [wasmplug.Preopen(host_path=tmp_path / "out", guest_path="/out")]
    report = compare(
        wasmplug.inspect(manifest_wasm).manifest,
        wasmplug.Grants(log=grants.log, files=read_only),
        plugin="p",
    )
    assert {d.request: d.missing for d in report.denied}["files /out (read, write)"] == (
        "Grants.files preopens /out read-only"
    )


def test_strict_refuses_naming_each_missing_grant(
    manifest_wasm: bytes, world: wasmplug.World, engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """In strict mode a plugin that asks for more than granted is not loaded:
    CapabilityError names each missing item with the plugin's reason and carries the
    report."""
    with pytest.raises(wasmplug.CapabilityError) as info:
        wasmplug.load(
            manifest_wasm,
            world=world,
            policy=partial_policy(tmp_path, mode="strict"),
            engine=engine,
            name="strict",
        )
    error = info.value
    assert isinstance(error, wasmplug.LoadError)
    assert error.plugin == "strict"
    assert [d.request for d in error.denied] == [
        "kv",
        "files /data (read)",
        "stdio",
        "http https://api.example.com/* (GET)",
    ]
    assert error.report.granted[0] == "log"
    message = str(error)
    assert "kv ('counts the probes'): Grants.kv is None" in message
    assert "stdio ('prints a banner'): Grants.stdio is False" in message


def test_http_needs_are_compared_with_the_http_grant(
    manifest_wasm: bytes, world: wasmplug.World, engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """Everything else granted, the fixture's ``https://api.example.com/*`` GET need is
    covered only by a rule for that scheme, host (or a wildcard over it), port and
    method: strict mode refuses the plugin otherwise, naming what no rule covers, and
    loads it once a rule does."""
    policy = full_policy(tmp_path)
    with pytest.raises(wasmplug.CapabilityError) as info:
        wasmplug.load(manifest_wasm, world=world, policy=policy, engine=engine)
    assert [d.request for d in info.value.denied] == ["http https://api.example.com/* (GET)"]
    near_misses = {
        "http scheme": wasmplug.HttpRule(host="api.example.com", scheme="http"),
        "another host": wasmplug.HttpRule(host="www.example.com"),
        "another port": wasmplug.HttpRule(host="api.example.com", port=8443),
        "POST only": wasmplug.HttpRule(host="api.example.com", methods=("POST",)),
    }
    for label, rule in near_misses.items():
        grants = attrs.evolve(policy.grants, http=wasmplug.HttpGrant(allow=(rule,)))
        near = attrs.evolve(policy, grants=grants)
        with pytest.raises(wasmplug.CapabilityError) as info:
            wasmplug.load(manifest_wasm, world=world, policy=near, engine=engine)
        (denial,) = info.value.denied
        assert denial.missing == (
            "no HttpRule in Grants.http.allow covers https://api.example.com:443 for GET"
        ), label
    for rule in (
        wasmplug.HttpRule(host="api.example.com"),
        wasmplug.HttpRule(host="*.example.com", methods=("GET", "POST")),
    ):
        grants = attrs.evolve(policy.grants, http=wasmplug.HttpGrant(allow=(rule,)))
        strict = attrs.evolve(policy, grants=grants)
        with wasmplug.load(manifest_wasm, world=world, policy=strict, engine=engine) as plugin:
            assert plugin.capabilities.complete
            assert plugin.capabilities.unrequested == ()
            assert plugin.call("probe") == ["log ok", "config 7", "kv ok"]


def test_strict_loads_a_plugin_whose_needs_are_all_granted(
    wasm_dir: Path, engine: wasmplug.Engine
) -> None:
    """A tenant of the rule engine asking for exactly what its strict policy grants
    loads, with a complete report."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "examples" / "rule-engine"))
    import run as rule_engine

    policy = rule_engine.POLICIES["route-watch"]
    assert policy.mode == "strict"
    world = wasmplug.load_world(REPO_ROOT / "examples" / "rule-engine" / "wit", "tenant")
    directory = rule_engine.AirportDirectory()
    with wasmplug.load(
        wasm_dir / "route_watch.wasm",
        world=world,
        policy=policy,
        engine=engine,
        imports={"airports": directory},
    ) as plugin:
        assert plugin.capabilities.complete
        assert plugin.capabilities.requested == ("kv",)


def test_no_manifest_requests_nothing(
    plain_wasm: bytes, engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """A plugin without a manifest loads in strict mode too (it asks for nothing); its
    report says so and lists nothing as unrequested (there is nothing to compare)."""
    world = fixture_world("log-only")
    policy = wasmplug.Policy(grants=wasmplug.Grants(log=True), mode="strict")
    with wasmplug.load(plain_wasm, world=world, policy=policy, engine=engine) as plugin:
        assert plugin.manifest is None
        report = plugin.capabilities
        assert (report.requested, report.denied, report.unrequested) == ((), (), ())
        assert report.summary() == "no manifest (requests nothing)"
        assert plugin.call("hello", "x") == "hello, x"


# -- malformed manifests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"{not json", "not UTF-8 JSON"),
        (b'{"wasmplug-manifest":1,"needs":[]}{"x":1}', "two manifest! invocations?"),
        (b"[]", "manifest: expected a JSON object, found list"),
        (b'{"wasmplug-manifest":2,"needs":[]}', 'expected "wasmplug-manifest": 1'),
        (b'{"wasmplug-manifest":1,"needs":[],"extra":0}', "unknown key 'extra'"),
        (b'{"wasmplug-manifest":1,"needs":{}}', "needs: expected a JSON array, found dict"),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":"log","items":[],"reason":" "}]}',
            "needs[0].reason: every need must give a reason",
        ),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":"kv","items":'
            b'[{"name":"x","access":[]}],"reason":"r"}]}',
            "needs[0]: kv takes no items, found 1",
        ),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":"env","items":[],"reason":"r"}]}',
            "needs[0]: env needs a list of items",
        ),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":"files","items":'
            b'[{"name":"/d","access":["exec"]}],"reason":"r"}]}',
            "needs[0].items[0].access: expected 'read' and/or 'write', found ['exec']",
        ),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":"files","items":'
            b'[{"name":"d","access":["read"]}],"reason":"r"}]}',
            "needs[0].items[0].name: expected an absolute guest path, found 'd'",
        ),
        (
            b'{"wasmplug-manifest":1,"needs":[{"capability":3,"items":[],"reason":"r"}]}',
            "needs[0].capability: expected a string, found int 3",
        ),
    ],
)
def test_malformed_manifest_is_a_clear_load_error(
    plain_wasm: bytes, engine: wasmplug.Engine, data: bytes, fragment: str
) -> None:
    """A malformed section refuses the plugin (in permissive mode too) with a
    ManifestError that names the plugin and says where and what was expected."""
    with pytest.raises(wasmplug.ManifestError) as info:
        wasmplug.load(
            with_section(plain_wasm, data),
            world=fixture_world("log-only"),
            engine=engine,
            name="bad",
        )
    assert isinstance(info.value, wasmplug.LoadError)
    assert info.value.plugin == "bad"
    assert fragment in str(info.value)


def test_two_manifests_are_refused(manifest_wasm: bytes) -> None:
    """A second section (here at the top level beside the nested one) is refused
    rather than one of them silently winning."""
    with pytest.raises(
        wasmplug.ManifestError,
        match=r"expected one wasmplug-manifest section, found 2 \(at nesting depths 1, 0\)",
    ):
        wasmplug.inspect(with_section(manifest_wasm, b'{"wasmplug-manifest":1,"needs":[]}'))


def test_unknown_capability_from_a_newer_sdk_is_denied() -> None:
    """A capability this host has no comparator for parses, and is reported denied:
    the host cannot grant what it does not know."""
    manifest = parse_manifest(
        b'{"wasmplug-manifest":1,"needs":[{"capability":"gpu","items":[],"reason":"r"}]}'
    )
    assert "gpu" not in COMPARATORS
    report = compare(manifest, wasmplug.Grants(log=True), plugin="p")
    assert [(d.request, d.missing) for d in report.denied] == [
        ("gpu", "this host has no 'gpu' capability to grant")
    ]
    assert report.unrequested == ("log",)


def test_manifest_is_read_once_per_binary(manifest_wasm: bytes) -> None:
    """The walk of a binary for its sections is cached by its sha256: a second read,
    even after the in-memory cache is cleared, never instantiates the parser module."""
    data = with_section(manifest_wasm, b"", name="wasmplug-test-cache")  # a binary of its own
    _official.custom_sections(data, "wasmplug-manifest")
    before = _official.stats.instantiations
    _official.clear_memory_cache()
    assert len(_official.custom_sections(data, "wasmplug-manifest")) == 1
    assert _official.custom_sections(data, "wasmplug-manifest")
    assert _official.stats.instantiations == before


# -- policy files -----------------------------------------------------------------------


def test_documented_policy_file_loads(tmp_path: Path) -> None:
    """The full example of docs/manifest.md loads into the policies it describes:
    defaults merged key by key, relative paths resolved against the file's directory."""
    doc = (REPO_ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    toml = doc.split("```toml\n# policies.toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "policies.toml").write_text(toml, encoding="utf-8")
    policies = wasmplug.load_policies(tmp_path / "policies.toml")
    assert list(policies) == ["acme", "globex"]
    acme, globex = policies["acme"], policies["globex"]
    assert acme.mode == "strict"
    assert globex.mode == "permissive"
    assert acme.limits.fuel == 5_000_000
    assert globex.limits.fuel == 20_000_000
    assert acme.limits.memory_bytes == globex.limits.memory_bytes == 16 << 20
    assert acme.grants.config == {"threshold": "120", "watch": "LAX,SFO"}
    assert acme.grants.kv == wasmplug.KvGrant(quota_bytes=65536)
    assert globex.grants.files == (
        wasmplug.Preopen(host_path=str(tmp_path / "shared"), guest_path="/data"),
        wasmplug.Preopen(host_path="/var/tmp/globex", guest_path="/out", writable=True),
    )
    assert globex.grants.env == {"TZ": "UTC"}
    assert globex.grants.log
    assert globex.grants.stdio


def test_policy_file_round_trips_through_the_dict_form(tmp_path: Path) -> None:
    """A file and ``Policy.from_dict`` share one mapping: the dict form of a loaded
    policy builds the same policy."""
    path = tmp_path / "p.toml"
    path.write_text('[plugins.a.grants]\nlog = true\nenv = { X = "1" }\n', encoding="utf-8")
    policy = wasmplug.load_policies(path)["a"]
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[plugins.a\n", "not valid TOML"),
        ("[plugin.a]\n", "unknown top-level key 'plugin' (expected 'defaults' and 'plugins')"),
        ("[plugins]\na = 3\n", "plugins.a: expected a table (grants, limits, mode), found int 3"),
        ("[plugins.a]\ngrant = {}\n", "plugins.a: unknown key 'grant' (expected one of: grants,"),
        ("[plugins.a.grants]\nnet = true\n", "plugins.a.grants: unknown key 'net'"),
        ("[plugins.a.grants]\nlog = 'yes'\n", "plugins.a.grants.log: expected true or false"),
        (
            "[plugins.a.grants]\nconfig = { k = 1 }\n",
            "plugins.a.grants.config.k: expected a string, found int 1",
        ),
        (
            "[plugins.a.grants]\nkv = { quota = 1 }\n",
            "plugins.a.grants.kv: unknown key 'quota' (expected one of: quota_bytes, namespace)",
        ),
        (
            "[plugins.a.grants]\nkv = { quota_bytes = -1 }\n",
            "plugins.a.grants.kv: KvGrant.quota_bytes must be an int >= 0, found -1",
        ),
        (
            "[[plugins.a.grants.files]]\nhost_path = '.'\nguest_path = '/d'\nwritable = 'yes'\n",
            "plugins.a.grants.files[0].writable: expected true or false, found str 'yes'",
        ),
        (
            "[[plugins.a.grants.files]]\nhost_path = '.'\nguest_path = 'd'\n",
            "plugins.a.grants.files[0]: Preopen.guest_path must be an absolute path",
        ),
        (
            "[[plugins.a.grants.files]]\nguest_path = '/d'\n",
            "plugins.a.grants.files[0].host_path: expected a string (a path), found null",
        ),
        ("[plugins.a.limits]\nfuel = '5'\n", "plugins.a.limits.fuel: expected an integer"),
        ("[plugins.a.limits]\nfuels = 5\n", "plugins.a.limits: unknown key 'fuels'"),
        ("[plugins.a.limits]\nmemories = 0\n", "Limits.memories must be a positive int"),
        ("[plugins.a]\nmode = 'lenient'\n", "plugins.a.mode: expected 'permissive' or 'strict'"),
        ("[defaults.limits]\nfuel = true\n", "defaults.limits.fuel: expected an integer"),
    ],
)
def test_policy_file_mistakes_name_file_key_and_expectation(
    tmp_path: Path, text: str, fragment: str
) -> None:
    """Every mistake in a policy file is a PolicyError naming the file, the key, what
    was expected and what was found."""
    path = tmp_path / "bad.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(wasmplug.PolicyError) as info:
        wasmplug.load_policies(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_rule_engine_policies_match_what_its_tenants_request(wasm_dir: Path) -> None:
    """Each well-behaved tenant's strict policy grants exactly its manifest (nothing
    denied, nothing unrequested); mallory's permissive one denies its probes."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "examples" / "rule-engine"))
    import run as rule_engine

    for spec in rule_engine.tenant_specs():
        manifest = wasmplug.inspect(wasm_dir / spec.wasm).manifest
        assert manifest is not None, spec.name
        report = compare(manifest, spec.policy.grants, plugin=spec.name)
        if spec.hostile:
            assert spec.policy.mode == "permissive"
            assert [d.request for d in report.denied] == [
                "config secret",
                "files /public (write)",
                "kv",
            ]
        else:
            assert spec.policy.mode == "strict"
            assert (report.denied, report.unrequested) == ((), ()), spec.name
