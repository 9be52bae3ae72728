"""Plain-Python reference implementations of the well-behaved tenants' rules.

These are written independently of the Rust plugins in ``tenants/`` from the same
specification, so that the tests can check the sandboxed plugins against them alert
for alert. They work on the flight dicts of :mod:`flightdata`.

Each tenant is a class with ``evaluate(flight) -> list[AlertTuple]``; the tuples are
``(rule, severity, message)`` with severity one of ``"info"``, ``"warning"``,
``"critical"``, in the order the tenant's rules are listed. Tenants whose rules keep
state (route-watch, night-owl's counter) keep it on the instance: feed one instance
every flight in order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Protocol

from flightdata import AirportRow, FlightRow, load_airports

__all__ = [
    "AlertTuple",
    "ConfigError",
    "NightOwl",
    "OpsThresholds",
    "ReferenceTenant",
    "RouteWatch",
    "reference_tenants",
]

#: ``(rule, severity, message)``.
AlertTuple = tuple[str, str, str]


class ReferenceTenant(Protocol):
    """What every reference tenant offers."""

    name: str

    def evaluate(self, flight: FlightRow) -> list[AlertTuple]:
        """Returns the alerts this tenant raises for ``flight``."""
        ...


class ConfigError(ValueError):
    """A configuration value is missing or malformed (the WIT ``bad-config`` case).

    Attributes:
        key: The configuration key.
        reason: What is wrong with it.
    """

    key: str
    reason: str

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def _cf(flight: FlightRow) -> str:
    return f"{flight['carrier']}{flight['flight']}"


class OpsThresholds:
    """Tenant ``ops-thresholds``: delays, visibility and cancellations against thresholds."""

    name = "ops-thresholds"

    def __init__(
        self,
        *,
        min_dep_delay: int,
        min_arr_delay: int,
        min_visibility: float,
        watch_dests: Iterable[str],
    ) -> None:
        self.min_dep_delay = min_dep_delay
        self.min_arr_delay = min_arr_delay
        self.min_visibility = min_visibility
        self.watch_dests = frozenset(watch_dests)

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> OpsThresholds:
        """Builds the tenant from the string configuration the host grants.

        Raises:
            ConfigError: A key is missing or its value is malformed.
        """

        # As strict as Rust's `str::parse`: no surrounding spaces, no `_` separators.
        def need(key: str) -> str:
            if key not in config:
                raise ConfigError(key, "missing")
            return config[key]

        def minutes(key: str) -> int:
            text = need(key)
            try:
                if text != text.strip() or "_" in text:
                    raise ValueError(text)
                value = int(text)
            except ValueError:
                raise ConfigError(key, f"not an integer: {text!r}") from None
            if not -(2**31) <= value < 2**31:
                raise ConfigError(key, f"out of range: {text!r}")
            return value

        # Checked in the order the plugin checks them, so both name the same first bad key.
        min_dep_delay = minutes("min-dep-delay")
        min_arr_delay = minutes("min-arr-delay")
        text = need("min-visibility")
        try:
            if text != text.strip() or "_" in text:
                raise ValueError(text)
            min_visibility = float(text)
        except ValueError:
            raise ConfigError("min-visibility", f"not a number: {text!r}") from None
        if not math.isfinite(min_visibility):
            raise ConfigError("min-visibility", "not a finite number")
        dests = [d.strip() for d in need("watch-dests").split(",")]
        if not all(dests):
            raise ConfigError("watch-dests", "empty airport code")
        return cls(
            min_dep_delay=min_dep_delay,
            min_arr_delay=min_arr_delay,
            min_visibility=min_visibility,
            watch_dests=dests,
        )

    def evaluate(self, flight: FlightRow) -> list[AlertTuple]:
        """Returns the alerts for ``flight``: late-departure, late-arrival,
        low-visibility, cancelled-watched, in that order."""
        alerts: list[AlertTuple] = []
        cf, origin, dest = _cf(flight), flight["origin"], flight["dest"]

        dep_delay = flight["dep_delay"]
        if dep_delay is not None and dep_delay >= self.min_dep_delay:
            severity = "critical" if dep_delay >= 2 * self.min_dep_delay else "warning"
            alerts.append(
                ("late-departure", severity, f"{cf} {origin}->{dest} departed {dep_delay} min late")
            )

        arr_delay = flight["arr_delay"]
        if arr_delay is not None and arr_delay >= self.min_arr_delay:
            severity = "critical" if arr_delay >= 2 * self.min_arr_delay else "warning"
            alerts.append(
                ("late-arrival", severity, f"{cf} {origin}->{dest} arrived {arr_delay} min late")
            )

        weather = flight["weather"]
        if weather is not None and weather["visib"] < self.min_visibility:
            alerts.append(
                (
                    "low-visibility",
                    "warning",
                    f"{cf} departs {origin} with visibility {weather['visib']:.2f} mi",
                )
            )

        if flight["dep_time"] is None and dest in self.watch_dests:
            alerts.append(("cancelled-watched", "info", f"{cf} to {dest} cancelled"))
        return alerts


class RouteWatch:
    """Tenant ``route-watch``: per-route delay streaks and rates, per-carrier cancellations.

    State: per route ``[seen, delayed, streak]``, per carrier a cancellation count.
    """

    name = "route-watch"

    def __init__(self) -> None:
        self.routes: dict[str, list[int]] = {}
        self.cancelled: dict[str, int] = {}

    def evaluate(self, flight: FlightRow) -> list[AlertTuple]:
        """Returns the alerts for ``flight`` and updates the tenant's state."""
        alerts: list[AlertTuple] = []
        dep_delay = flight["dep_delay"]
        if dep_delay is None:
            carrier = flight["carrier"]
            count = self.cancelled.get(carrier, 0) + 1
            self.cancelled[carrier] = count
            if count % 100 == 0:
                alerts.append(
                    ("carrier-cancellations", "warning", f"{carrier}: {count} cancellations")
                )
            return alerts

        route = f"{flight['origin']}-{flight['dest']}"
        state = self.routes.setdefault(route, [0, 0, 0])
        state[0] += 1
        if dep_delay >= 60:
            state[1] += 1
            state[2] += 1
        else:
            state[2] = 0
        seen, delayed, streak = state

        if streak == 3:
            alerts.append(("delay-streak", "warning", f"{route}: 3 delayed departures in a row"))
        elif streak == 5:
            alerts.append(("delay-streak", "critical", f"{route}: 5 delayed departures in a row"))
        if seen % 500 == 0 and delayed * 100 >= 25 * seen:
            alerts.append(
                ("route-delay-rate", "info", f"{route}: {delayed} of {seen} departures delayed")
            )
        return alerts


class NightOwl:
    """Tenant ``night-owl``: overnight arrivals, implausibly fast flights, early arrivals,
    far time zones and unknown destinations (the last two from the airport directory).

    Args:
        airports: The airport directory by FAA code (what the host serves the plugin).
    """

    name = "night-owl"

    def __init__(self, airports: Mapping[str, AirportRow]) -> None:
        self.evaluated = 0
        self.airports = airports

    def evaluate(self, flight: FlightRow) -> list[AlertTuple]:
        """Returns the alerts for ``flight``: overnight-arrival, fast-flight,
        early-arrival, then far-time-zone or unknown-airport, in that order."""
        self.evaluated += 1
        alerts: list[AlertTuple] = []
        cf, origin, dest = _cf(flight), flight["origin"], flight["dest"]

        dep_time, arr_time = flight["dep_time"], flight["arr_time"]
        if dep_time is not None and arr_time is not None and arr_time < dep_time:
            alerts.append(
                (
                    "overnight-arrival",
                    "info",
                    f"{cf} {origin}->{dest} lands the next day at {arr_time:04d}",
                )
            )

        air_time, distance = flight["air_time"], flight["distance"]
        if air_time is not None and air_time > 0 and distance * 60 > 550 * air_time:
            mph = distance * 60 // air_time
            alerts.append(("fast-flight", "warning", f"{cf} {origin}->{dest} averaged {mph} mph"))

        arr_delay = flight["arr_delay"]
        if arr_delay is not None and arr_delay <= -60:
            alerts.append(("early-arrival", "info", f"{cf} arrived {-arr_delay} min early"))

        home, there = self.airports.get(origin), self.airports.get(dest)
        if there is None:
            alerts.append(
                (
                    "unknown-airport",
                    "warning",
                    f"{cf} {origin}->{dest}: {dest} is not in the airport directory",
                )
            )
        elif home is not None and home["tz"] - there["tz"] >= 4:
            zone = there["tzone"] or "an unknown time zone"
            hours = home["tz"] - there["tz"]
            alerts.append(
                (
                    "far-time-zone",
                    "info",
                    f"{cf} {origin}->{dest} lands {hours} h behind, in {zone}",
                )
            )
        return alerts


def reference_tenants(
    ops_config: Mapping[str, str], airports: Mapping[str, AirportRow] | None = None
) -> dict[str, ReferenceTenant]:
    """Returns a fresh reference instance of each well-behaved tenant, by name.

    Args:
        ops_config: The configuration granted to ``ops-thresholds``.
        airports: The airport directory; default the data set's
            (:func:`flightdata.load_airports`).
    """
    tenants: list[ReferenceTenant] = [
        OpsThresholds.from_config(ops_config),
        RouteWatch(),
        NightOwl(load_airports() if airports is None else airports),
    ]
    return {tenant.name: tenant for tenant in tenants}
