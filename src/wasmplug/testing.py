"""wasmplug's pytest plugin: fixtures and assertions for hosts testing their plugin
systems.

Installed with wasmplug (entry point ``pytest11``), so the fixtures are there in any
pytest run of an environment that has wasmplug; the assertions are imported from
here::

    from wasmplug.testing import assert_breach, assert_denied, assert_within

    def test_rules_stay_in_their_sandbox(wasmplug_load, world):
        plugin = wasmplug_load("rules.wasm", world=world,
                               policy=wasmplug.Policy(limits=wasmplug.Limits(fuel=1_000_000)))
        assert_denied(plugin, "kv", "remember", "key")      # kv was not granted
        assert_breach(plugin, "fuel", "spin")                # an endless loop is stopped
        plugin.call("evaluate", flight)
        assert_within(plugin, fuel=50_000, memory_bytes=2 << 20)

Fixtures:

- ``wasmplug_engine`` (session): a :class:`~wasmplug.Engine` whose compile cache is a
  directory private to the session, so tests neither read nor fill the user's cache.
- ``wasmplug_load``: ``wasmplug_load(source, *, world, policy=None, **load_options)``
  loads a plugin on that engine as :func:`wasmplug.load` does and closes it when the
  test ends. Every denial and breach of the plugins it loaded is collected in
  ``wasmplug_audit``.
- ``wasmplug_audit``: the :class:`~wasmplug.AuditEvent` list of the test's plugins, in
  order. The same events are logged on the ``wasmplug.policy`` logger, so ``caplog``
  sees them too.

The assertions raise :class:`AssertionError` saying what was expected and what was
found, so pytest reports them like a failed ``assert``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._exceptions import GuestError, LimitExceeded

# Only what a fixture or assertion runs imports wasmtime: pytest loads this module in
# every run of an environment that has wasmplug, used or not.
if TYPE_CHECKING:
    from ._audit import AuditEvent
    from ._engine import Engine
    from ._plugin import Plugin
    from ._policy import Policy
    from ._stats import CallStats
    from ._world import World

__all__ = [
    "assert_breach",
    "assert_denied",
    "assert_within",
    "wasmplug_audit",
    "wasmplug_engine",
    "wasmplug_load",
]

#: What ``wasmplug_load`` is: ``(source, *, world, policy=None, **load options)``.
Loader = Callable[..., "Plugin"]


@pytest.fixture(scope="session")
def wasmplug_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine for the test session, its compile cache in a session directory."""
    from ._engine import Engine

    engine = Engine(cache_dir=tmp_path_factory.mktemp("wasmplug-compile-cache"))
    yield engine
    engine.close()


@pytest.fixture
def wasmplug_audit() -> list[AuditEvent]:
    """The denials and breaches of the plugins ``wasmplug_load`` loaded in this test."""
    return []


@pytest.fixture
def wasmplug_load(wasmplug_engine: Engine, wasmplug_audit: list[AuditEvent]) -> Iterator[Loader]:
    """A loader of plugins on ``wasmplug_engine``, each closed at the end of the test,
    its audit events collected in ``wasmplug_audit`` (an ``audit=`` given to the
    loader is called too)."""
    from ._plugin import load

    loaded: list[Plugin] = []

    def load_plugin(
        source: str | os.PathLike[str] | bytes,
        *,
        world: World,
        policy: Policy | None = None,
        **options: Any,
    ) -> Plugin:
        theirs = options.pop("audit", None)

        def audit(event: AuditEvent) -> None:
            wasmplug_audit.append(event)
            if theirs is not None:
                theirs(event)

        options.setdefault("engine", wasmplug_engine)
        plugin = load(
            Path(source) if isinstance(source, str) else source,
            world=world,
            policy=policy,
            audit=audit,
            **options,
        )
        loaded.append(plugin)
        return plugin

    yield load_plugin
    for plugin in loaded:
        plugin.close()


def assert_denied(plugin: Plugin, capability: str, function: str, *args: Any) -> object:
    """Calls ``plugin.call(function, *args)``, during which the policy must deny
    ``capability`` at least once.

    Args:
        plugin: The plugin.
        capability: The denied capability as the audit trail names it: ``"log"``,
            ``"config"``, ``"kv"``, ``"http"``, or a refused WASI function as
            ``<interface>#<function>`` (:attr:`AuditEvent.name
            <wasmplug.AuditEvent.name>`).
        function: The export to call.
        *args: Its arguments.

    Returns:
        What the call returned, or the :class:`~wasmplug.GuestError` it raised (a guest
        that hands the denial on as its ``err``).

    Raises:
        AssertionError: the call made no such denial.
        wasmplug.CallError: the call trapped or breached a limit (not a denial).
    """
    key = f"denial:{capability}"
    before = plugin.audit_counts.get(key, 0)
    result: object
    try:
        result = plugin.call(function, *args)
    except GuestError as e:
        result = e
    if plugin.audit_counts.get(key, 0) <= before:
        denials = {k: n for k, n in plugin.audit_counts.items() if k.startswith("denial:")}
        raise AssertionError(
            f"plugin {plugin.name!r}: {function} was expected to be denied {capability!r}; "
            f"it was not (denials so far: {denials or 'none'}; the call gave {result!r})"
        )
    return result


def assert_breach(plugin: Plugin, limit: str, function: str, *args: Any) -> LimitExceeded:
    """Calls ``plugin.call(function, *args)``, which must be stopped by the policy's
    limit ``limit``.

    Args:
        plugin: The plugin.
        limit: The :class:`~wasmplug.Limits` field: ``"fuel"``, ``"deadline_ms"``,
            ``"memory_bytes"``, ``"output_bytes"``, ...
        function: The export to call.
        *args: Its arguments.

    Returns:
        The :class:`~wasmplug.LimitExceeded` raised (``allowed``, ``used``, ``stats``).

    Raises:
        AssertionError: the call returned, or failed otherwise (another limit, a trap,
            a guest error), or the error names another plugin.
    """
    try:
        result = plugin.call(function, *args)
    except LimitExceeded as e:
        if e.limit != limit or e.plugin != plugin.name:
            raise AssertionError(
                f"plugin {plugin.name!r}: {function} was expected to breach {limit!r}; "
                f"it breached {e.limit!r} of plugin {e.plugin!r}: {e}"
            ) from e
        return e
    except Exception as e:
        raise AssertionError(
            f"plugin {plugin.name!r}: {function} was expected to breach {limit!r}; "
            f"it raised {type(e).__name__}: {e}"
        ) from e
    raise AssertionError(
        f"plugin {plugin.name!r}: {function} was expected to breach {limit!r}; "
        f"it returned {result!r}"
    )


def assert_within(
    plugin: Plugin,
    *,
    fuel: int | None = None,
    memory_bytes: int | None = None,
    wall_time_us: float | None = None,
    host_calls: int | None = None,
) -> CallStats:
    """Checks that the plugin's last call stayed within a budget (each bound given is
    checked; ``None`` skips it).

    Args:
        plugin: The plugin.
        fuel: Most fuel units the call may have consumed (not measured on the Extism
            backend: asking for it there is an error).
        memory_bytes: Most linear memory, in bytes, it may have had (all its linear
            memories together; measured on the component path and the fast path, not
            on the Extism backend nor on an engine with
            ``measure_component_memory=False``, where asking for it is an error).
        wall_time_us: Most wall-clock time, in µs (timings vary with the machine's
            load: keep such a bound generous).
        host_calls: Most host function calls.

    Returns:
        The call's :class:`~wasmplug.CallStats`.

    Raises:
        AssertionError: a bound was exceeded, the plugin made no call yet, or
            ``memory_bytes`` or ``fuel`` was asked of a plugin that does not measure
            it.
    """
    stats = plugin.last_call
    if stats is None:
        raise AssertionError(f"plugin {plugin.name!r} has made no call to check")
    if fuel is not None and plugin.kind == "extism":
        raise AssertionError(
            f"plugin {plugin.name!r} (extism) does not measure fuel_consumed: libextism "
            "enforces Limits.fuel but cannot tell how much a call used"
        )
    over: list[str] = []
    if fuel is not None and stats.fuel_consumed > fuel:
        over.append(f"fuel {stats.fuel_consumed:,} > {fuel:,}")
    if memory_bytes is not None:
        if stats.memory_bytes is None:
            raise AssertionError(
                f"plugin {plugin.name!r} ({plugin.kind}) does not measure memory_bytes "
                "(the Extism backend never does; components do unless their engine has "
                "measure_component_memory=False)"
            )
        if stats.memory_bytes > memory_bytes:
            over.append(f"memory {stats.memory_bytes:,} bytes > {memory_bytes:,}")
    if wall_time_us is not None and stats.wall_time_us > wall_time_us:
        over.append(f"wall time {stats.wall_time_us:,.0f} µs > {wall_time_us:,.0f}")
    if host_calls is not None and stats.host_calls > host_calls:
        over.append(f"host calls {stats.host_calls:,} > {host_calls:,}")
    if over:
        raise AssertionError(
            f"plugin {plugin.name!r}: {stats.function} went over its budget: " + "; ".join(over)
        )
    return stats
