"""The alternatives the benchmark suite measures, one class each, and the cases they run.

Every alternative runs the same work: the ``benchcalls`` functions (``add``, ``noop``,
``blob-stats``, string and bytes echo; ``tests/fixtures/benchcalls`` as a component,
``benchmarks/plugins/`` as an Extism plugin and as a raw core module) and the
rule-engine tenant ``ops-thresholds``'s ``evaluate(flight)``.

An alternative's :meth:`Alternative.prepare` returns, for one case, a :class:`Prepared`:
a zero-argument ``call`` that does the whole operation (lowering the arguments, the
call, lifting the result) and is what gets timed, and ``lift``, which turns what ``call``
returned into plain Python's answer for the case (``(len, sum)``, ``bytes``, ``str``,
a list of ``(rule, severity, message)``) so the harness can check it. ``prepare``
returns ``None`` when the alternative cannot express the case.

To add a column: write one more subclass with a ``key``, a ``label`` and a
``prepare``, and append it to :func:`all_alternatives`. Nothing else in the harness
changes.
"""

from __future__ import annotations

import ctypes
import json
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULE_ENGINE = ROOT / "examples" / "rule-engine"
if str(RULE_ENGINE) not in sys.path:
    sys.path.insert(0, str(RULE_ENGINE))

#: Payload size of the bulk cases, bytes.
PAYLOAD_BYTES = 64 * 1024


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Prepared:
    """One case, ready to time: ``call()`` does it, ``lift(call())`` is plain Python's
    answer."""

    call: Callable[[], Any]
    lift: Callable[[Any], Any] = _identity


@dataclass(frozen=True)
class Inputs:
    """The arguments every alternative gets, built once.

    Attributes:
        a, b: ``add``'s operands.
        blob: :data:`PAYLOAD_BYTES` bytes for ``blob-stats`` and the bytes echo.
        text: a string of :data:`PAYLOAD_BYTES` UTF-8 bytes (not all ASCII).
        flight: one flight (a :mod:`flightdata` dict) that raises one ops-thresholds
            alert.
        sample: more flights, for the rule-engine equivalence check.
        ops_config: ops-thresholds' configuration.
    """

    a: int
    b: int
    blob: bytes
    text: str
    flight: Mapping[str, Any]
    sample: list[Mapping[str, Any]]
    ops_config: Mapping[str, str]


class Alternative:
    """One column of the table. Subclasses set ``key`` and ``label`` and implement
    :meth:`prepare`; :meth:`check` says why the alternative cannot run (or ``None``)."""

    key = ""
    label = ""
    #: Column header in the printed table (at most 12 characters).
    short = ""

    @classmethod
    def check(cls) -> str | None:
        """Returns why this alternative cannot run here, or ``None``."""
        return None

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        """Returns the timed callable for ``case``, or ``None`` if not expressible."""
        raise NotImplementedError

    def evaluate_many(self, inputs: Inputs) -> list[Any] | None:
        """Runs ``evaluate`` on every flight of ``inputs.sample`` (lifted), or ``None``."""
        prepared = [self.prepare_flight(f, inputs) for f in inputs.sample]
        if any(p is None for p in prepared):
            return None
        return [p.lift(p.call()) for p in prepared if p is not None]

    def prepare_flight(self, flight: Mapping[str, Any], inputs: Inputs) -> Prepared | None:
        """``evaluate`` of one given flight; ``None`` if not expressible."""
        return None


# ----------------------------------------------------------------------------- plain


class PlainPython(Alternative):
    """The same work written in Python, in the same process: the reference answers,
    and what a call costs without any sandbox. The echoes copy their payload once
    through ``bytearray`` (bytes) or an encode/decode round trip (string), the least a
    boundary crossing costs."""

    key = "python"
    short = "python"
    label = "plain Python"

    def __init__(self) -> None:
        from reference_rules import OpsThresholds

        self._ops_cls = OpsThresholds
        self._ops: Any = None

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text
        if case == "add":
            return Prepared(lambda: (a + b) & 0xFFFFFFFF)
        if case == "noop":
            return Prepared(lambda: None)
        if case == "blob_stats":
            return Prepared(lambda: (len(blob), sum(blob)))
        if case == "echo_string":
            return Prepared(lambda: text.encode("utf-8").decode("utf-8"))
        if case == "echo_bytes":
            return Prepared(lambda: bytes(bytearray(blob)))
        if case == "evaluate":
            return self.prepare_flight(inputs.flight, inputs)
        return None

    def prepare_flight(self, flight: Mapping[str, Any], inputs: Inputs) -> Prepared | None:
        if self._ops is None:
            self._ops = self._ops_cls.from_config(inputs.ops_config)
        ops = self._ops
        return Prepared(lambda: ops.evaluate(flight))


# -------------------------------------------------------------------------- wasmplug


def _alerts_from_records(alerts: Any) -> list[tuple[str, str, str]]:
    out = []
    for alert in alerts:
        severity = alert.severity
        out.append((alert.rule, getattr(severity, "value", severity), alert.message))
    return out


class Wasmplug(Alternative):
    """wasmplug today: the component path (``Plugin.call`` on a wasm32-wasip2
    component), with its default limits enforced on every call (fuel, epoch deadline,
    memory). ``evaluate`` goes to the rule engine's ops-thresholds tenant loaded as
    ``examples/rule-engine/run.py`` loads it (its policy, the airport directory). A
    fresh instance is a call of a plugin whose policy sets ``instance_per_call``: a
    new instance (pre-linked) for every call, dropped after it."""

    key = "wasmplug"
    short = "wasmplug"
    label = "wasmplug"
    #: Where the plugins are: ``build/<wasm_dir>/``.
    wasm_dir = "wasm"
    #: What the benchmark exports' names start with in the plugin's world.
    prefix = ""

    def __init__(self) -> None:
        import wasmplug

        self._wp = wasmplug
        self.wasm = ROOT / "build" / self.wasm_dir / "benchcalls.wasm"
        self.world = wasmplug.load_world(
            ROOT / "tests" / "fixtures" / "benchcalls" / "wit", "benchcalls"
        )
        self.policy = wasmplug.Policy()
        self.plugin = wasmplug.load(self.wasm, world=self.world, name="benchcalls")
        self._tenant: Any = None

    def _ops(self) -> Any:
        if self._tenant is None:
            from run import AirportDirectory, tenant_specs
            from tenant_bindings import WORLD

            spec = next(s for s in tenant_specs() if s.name == "ops-thresholds")
            self._tenant = self._wp.load(
                ROOT / "build" / self.wasm_dir / spec.wasm,
                world=WORLD,
                policy=spec.policy,
                name=spec.name,
                imports={"airports": AirportDirectory()},
            )
        return self._tenant

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        call, p = self.plugin.call, self.prefix
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text
        if case == "add":
            return Prepared(lambda: call(f"{p}add", a, b))
        if case == "noop":
            return Prepared(lambda: call(f"{p}noop"))
        if case == "blob_stats":
            return Prepared(lambda: call(f"{p}blob-stats", blob), tuple)
        if case == "echo_string":
            return Prepared(lambda: call(f"{p}echo-string", text))
        if case == "echo_bytes":
            return Prepared(lambda: call(f"{p}echo-bytes", blob), bytes)
        if case == "evaluate":
            return self.prepare_flight(inputs.flight, inputs)
        if case == "fresh_instance":
            fresh = self._wp.load(
                self.wasm,
                world=self.world,
                name="fresh",
                policy=self._wp.Policy(grants=self.policy.grants, instance_per_call=True),
            )
            return Prepared(lambda: fresh.call(f"{p}add", a, b))
        return None

    def prepare_flight(self, flight: Mapping[str, Any], inputs: Inputs) -> Prepared | None:
        from run import to_flight

        tenant = self._ops()
        record = to_flight(flight)  # type: ignore[arg-type]
        return Prepared(lambda: tenant.call("evaluate", record), _alerts_from_records)


class WasmplugFast(Wasmplug):
    """wasmplug's fast path: the same sources built as core modules for
    ``wasm32-wasip1`` (``scripts/build-wasm.sh --core``), called through wasmplug's
    own canonical ABI over wasmtime's core API, with the same default limits, the same
    API and the same checks as the component path."""

    key = "wasmplug_fast"
    short = "wp.fast"
    label = "wasmplug fast path (core module)"
    wasm_dir = "wasm-core"


# ---------------------------------------------------------------- wasmtime.component


class WasmtimeComponent(Alternative):
    """wasmtime-py's own component API (``wasmtime.component``) on the same component
    as wasmplug, no limits set. ``evaluate`` is not measured: the tenant imports the
    host's ``config`` and ``airports`` interfaces, which would mean writing a second
    host for this API alone."""

    key = "wasmtime_component"
    short = "wt.component"
    label = "wasmtime.component"

    def __init__(self) -> None:
        import wasmtime
        import wasmtime.component as wc

        self._wt, self._wc = wasmtime, wc
        self.engine = wasmtime.Engine()
        self.component = wc.Component.from_file(
            self.engine, str(ROOT / "build" / "wasm" / "benchcalls.wasm")
        )
        self.linker = wc.Linker(self.engine)
        self.linker.add_wasip2()
        self.store, self.instance = self._instantiate()

    def _instantiate(self) -> tuple[Any, Any]:
        store = self._wt.Store(self.engine)
        store.set_wasi(self._wt.WasiConfig())
        return store, self.linker.instantiate(store, self.component)

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        store, instance = self.store, self.instance
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text

        def func(name: str) -> Any:
            f = instance.get_func(store, name)
            assert f is not None, name
            return f

        if case == "add":
            add = func("add")
            return Prepared(lambda: add(store, a, b))
        if case == "noop":
            noop = func("noop")
            return Prepared(lambda: noop(store))
        if case == "blob_stats":
            stats = func("blob-stats")
            return Prepared(lambda: stats(store, blob), tuple)
        if case == "echo_string":
            echo_s = func("echo-string")
            return Prepared(lambda: echo_s(store, text))
        if case == "echo_bytes":
            echo_b = func("echo-bytes")
            return Prepared(lambda: echo_b(store, blob), bytes)
        if case == "fresh_instance":
            instantiate = self._instantiate

            def fresh() -> Any:
                store, instance = instantiate()
                return instance.get_func(store, "add")(store, a, b)

            return Prepared(fresh)
        return None


# ----------------------------------------------------------------------- raw wasmtime


class RawWasmtime(Alternative):
    """wasmtime-py's core API (``wasmtime.Func.__call__``, ``Memory.write`` /
    ``read``) on a hand-written core module (``benchmarks/plugins/raw-core``): no
    component model, no limits, no checks beyond wasmtime's own. Bulk input is one
    ``Memory.write`` into a buffer the module exposes, then the call."""

    key = "raw_wasmtime"
    short = "raw Func"
    label = "raw wasmtime Func"

    def __init__(self) -> None:
        import wasmtime

        self._wt = wasmtime
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module.from_file(
            self.engine, str(ROOT / "build" / "bench" / "wasm" / "raw_core.wasm")
        )
        self.store, self.instance = self._instantiate()
        exports: Any = self.instance.exports(self.store)
        self.exports = exports
        self.memory = exports["memory"]
        self.input = exports["input_buffer"](self.store)
        self.output = exports["output_buffer"](self.store)

    def _instantiate(self) -> tuple[Any, Any]:
        store = self._wt.Store(self.engine)
        return store, self._wt.Instance(store, self.module, [])

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        store, ex, memory = self.store, self.exports, self.memory
        inp, out = self.input, self.output
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text
        if case == "add":
            add = ex["add"]
            return Prepared(lambda: add(store, a, b) & 0xFFFFFFFF)
        if case == "noop":
            noop = ex["noop"]
            return Prepared(lambda: noop(store))
        if case == "blob_stats":
            blob_sum = ex["blob_sum"]

            def stats() -> Any:
                memory.write(store, blob, inp)
                return (len(blob), blob_sum(store, len(blob)))

            return Prepared(stats)
        if case in ("echo_bytes", "echo_string"):
            echo = ex["echo"]

            def echo_bytes(data: bytes) -> bytes:
                memory.write(store, data, inp)
                n = echo(store, len(data))
                return bytes(memory.read(store, out, out + n))

            if case == "echo_bytes":
                return Prepared(lambda: echo_bytes(blob))
            return Prepared(lambda: echo_bytes(text.encode("utf-8")).decode("utf-8"))
        if case == "fresh_instance":
            instantiate = self._instantiate

            def fresh() -> Any:
                store, instance = instantiate()
                return instance.exports(store)["add"](store, a, b) & 0xFFFFFFFF

            return Prepared(fresh)
        return None


class UncheckedFloor(Alternative):
    """The floor from Python: the raw core module called through wasmtime's
    ``wasmtime_func_call_unchecked`` with a reused argument buffer, bulk input by one
    ``ctypes.memmove`` into linear memory, output by one ``ctypes.string_at``. This is
    what the issue's targets call "one memmove plus one unchecked call"; no host can
    call from Python for less. wasmtime-py exposes that C function only through its
    private ``wasmtime._bindings``; this benchmark is the one place outside
    ``src/wasmplug/_component.py`` that touches it, to measure the floor."""

    key = "floor"
    short = "floor"
    label = "floor (memmove + unchecked call)"

    def __init__(self) -> None:
        import wasmtime
        from wasmtime import _bindings

        self._b = _bindings
        self.store = wasmtime.Store(wasmtime.Engine())
        module = wasmtime.Module.from_file(
            self.store.engine, str(ROOT / "build" / "bench" / "wasm" / "raw_core.wasm")
        )
        self.instance = wasmtime.Instance(self.store, module, [])
        exports: Any = self.instance.exports(self.store)
        self.exports = exports
        base = ctypes.addressof(exports["memory"].data_ptr(self.store).contents)
        self.input = base + exports["input_buffer"](self.store)
        self.output = base + exports["output_buffer"](self.store)

    def _raw(self, name: str, slots: int) -> tuple[Callable[[], None], Any]:
        b = self._b
        context = self.store._context()
        func = ctypes.byref(self.exports[name]._func)
        values = (b.wasmtime_val_raw * max(slots, 1))()
        trap = ctypes.POINTER(b.wasm_trap_t)()
        trap_ref = ctypes.byref(trap)
        call_unchecked = b.wasmtime_func_call_unchecked
        nslots = max(slots, 1)

        def call() -> None:
            error = call_unchecked(context, func, values, nslots, trap_ref)
            if error or trap:
                raise RuntimeError(f"floor: {name} trapped")

        return call, values

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text
        memmove, string_at = ctypes.memmove, ctypes.string_at
        inp, out = self.input, self.output
        if case == "add":
            add, v = self._raw("add", 2)

            def do_add() -> int:
                v[0].i32, v[1].i32 = a, b
                add()
                return int(v[0].i32) & 0xFFFFFFFF

            return Prepared(do_add)
        if case == "noop":
            noop, _ = self._raw("noop", 0)
            return Prepared(noop)
        if case == "blob_stats":
            blob_sum, v = self._raw("blob_sum", 1)
            n = len(blob)

            def stats() -> tuple[int, int]:
                memmove(inp, blob, n)
                v[0].i32 = n
                blob_sum()
                return (n, int(v[0].i64))

            return Prepared(stats)
        if case in ("echo_bytes", "echo_string"):
            echo, v = self._raw("echo", 1)

            def echo_bytes(data: bytes) -> bytes:
                memmove(inp, data, len(data))
                v[0].i32 = len(data)
                echo()
                return string_at(out, v[0].i32)

            if case == "echo_bytes":
                return Prepared(lambda: echo_bytes(blob))
            return Prepared(lambda: echo_bytes(text.encode("utf-8")).decode("utf-8"))
        return None


# ---------------------------------------------------------------------------- extism


class Extism(Alternative):
    """The Extism Python SDK (``extism``) on ``benchmarks/plugins/extism-bench``: bytes
    in, bytes out. ``add`` packs its two ``u32`` with ``struct``; ``evaluate`` sends the
    flight as JSON and parses the alerts from JSON, with ops-thresholds' configuration
    as the plugin's Extism config. A fresh instance is ``Plugin(compiled)`` + call on
    a ``CompiledPlugin`` made once (Extism's cheapest way to a new instance)."""

    key = "extism"
    short = "extism"
    label = "Extism Python SDK"

    @classmethod
    def check(cls) -> str | None:
        try:
            import extism  # noqa: F401
        except ImportError:
            return "the extism package is not installed (pip install -e '.[bench]')"
        return None

    def __init__(self) -> None:
        from run import OPS_CONFIG  # the rule engine's, examples/rule-engine/run.py

        self.wasm_path = ROOT / "build" / "bench" / "wasm" / "extism_bench.wasm"
        self.ops_config = dict(OPS_CONFIG)
        self._plugin: Any = None

    def _plugin_(self) -> Any:
        if self._plugin is None:
            import extism

            manifest = {"wasm": [{"path": str(self.wasm_path)}], "config": self.ops_config}
            self._plugin = extism.Plugin(manifest, wasi=False, functions=[])
        return self._plugin

    def prepare(self, case: str, inputs: Inputs) -> Prepared | None:
        plugin = self._plugin_()
        call = plugin.call
        a, b, blob, text = inputs.a, inputs.b, inputs.blob, inputs.text
        if case == "add":
            pack, unpack = struct.pack, struct.unpack
            return Prepared(lambda: unpack("<I", call("add", pack("<II", a, b)))[0])
        if case == "noop":
            return Prepared(lambda: call("noop", b""), lambda r: None if r == b"" else r)
        if case == "blob_stats":
            unpack = struct.unpack
            return Prepared(lambda: unpack("<IQ", call("blob_stats", blob)))
        if case == "echo_string":
            return Prepared(lambda: call("echo_string", text).decode("utf-8"))
        if case == "echo_bytes":
            return Prepared(lambda: call("echo_bytes", blob))
        if case == "evaluate":
            return self.prepare_flight(inputs.flight, inputs)
        if case == "fresh_instance":
            import extism
            from extism.extism import CompiledPlugin

            compiled = CompiledPlugin(self.wasm_path.read_bytes(), functions=[])
            pack, unpack = struct.pack, struct.unpack
            arg = pack("<II", a, b)

            def fresh() -> Any:
                return unpack("<I", extism.Plugin(compiled).call("add", arg))[0]

            return Prepared(fresh)
        return None

    def prepare_flight(self, flight: Mapping[str, Any], inputs: Inputs) -> Prepared | None:
        call = self._plugin_().call
        dumps, loads = json.dumps, json.loads

        def lift(alerts: Any) -> list[tuple[str, str, str]]:
            return [(x["rule"], x["severity"], x["message"]) for x in alerts]

        return Prepared(lambda: loads(call("evaluate", dumps(flight))), lift)


class WasmplugExtism(Wasmplug):
    """wasmplug's Extism backend (``Plugin.call``) on the same module as the Extism
    column, ``benchmarks/plugins/extism-bench``, through its JSON exports (the
    interface ``json`` of ``benchmarks/plugins/extism-bench/wit/bench.wit``): typed
    arguments checked against the WIT types and encoded as JSON, the JSON result
    decoded into typed values, under wasmplug's default limits. What a user pays for
    running an Extism plugin under wasmplug against the bare SDK. ``evaluate`` gets
    ops-thresholds' configuration as ``Grants.config``. A fresh instance is a call of
    a plugin whose policy sets ``instance_per_call``."""

    key = "wasmplug_extism"
    short = "wp.extism"
    label = "wasmplug Extism backend (JSON)"
    prefix = "json."

    @classmethod
    def check(cls) -> str | None:
        return Extism.check()

    def __init__(self) -> None:
        import wasmplug
        from run import OPS_CONFIG

        self._wp = wasmplug
        self.wasm = ROOT / "build" / "bench" / "wasm" / "extism_bench.wasm"
        self.world = wasmplug.load_world(
            ROOT / "benchmarks" / "plugins" / "extism-bench" / "wit", "extism-bench"
        )
        self.policy = wasmplug.Policy(grants=wasmplug.Grants(config=dict(OPS_CONFIG)))
        self.plugin = wasmplug.load(
            self.wasm, world=self.world, policy=self.policy, name="extism-bench"
        )

    def prepare_flight(self, flight: Mapping[str, Any], inputs: Inputs) -> Prepared | None:
        flight_type = self.world.types.Flight
        weather_type = self.world.types.Weather
        fields = dict(flight)
        if fields.get("weather") is not None:
            fields["weather"] = weather_type(**fields["weather"])
        record = flight_type(**fields)
        call = self.plugin.call
        return Prepared(lambda: call("json.evaluate", record), _alerts_from_records)


def all_alternatives() -> list[type[Alternative]]:
    """Every alternative, in table order; ``wasmplug`` is the reference column."""
    return [
        Wasmplug,
        WasmplugFast,
        WasmtimeComponent,
        RawWasmtime,
        UncheckedFloor,
        Extism,
        WasmplugExtism,
        PlainPython,
    ]
