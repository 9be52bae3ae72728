"""The ``wasmplug`` command line.

Subcommands:

``bindgen WIT_PATH --world NAME [-o MODULE] [--check]``
    Writes the typed Python module for a WIT world (:func:`wasmplug.generate_bindings`)
    to ``MODULE``, or to standard output. With ``--check`` it writes nothing and exits
    with status 1 when ``MODULE`` differs from what would be generated.

``inspect PLUGIN [--wit]``
    Prints what a ``.wasm`` plugin is (:func:`wasmplug.inspect`): component or core
    module, its world's imports and exports, the capabilities its manifest declares;
    with ``--wit`` the WIT of its world's package.

``call PLUGIN FUNCTION [ARG ...] --wit WIT_PATH --world NAME [--policy FILE] [--name N]``
    Loads the plugin under a policy (from a policy file, :func:`wasmplug.load_policies`,
    the entry named ``--name``, default the file's stem; else the default policy:
    nothing granted) and calls ``FUNCTION`` with each ``ARG`` parsed as JSON and mapped
    through the WIT types as :meth:`wasmplug.Plugin.call` maps Python values (records
    as objects with snake_case keys, enums by case name, flags as lists of names,
    options as ``null`` or the value, a variant case as ``{"case": payload}`` or,
    without payload, ``"case"``, a result as ``{"Ok": payload}`` or ``{"Err": payload}``:
    wasmplug's one JSON mapping, :mod:`wasmplug._jsonvalue`). Prints the result as
    JSON on standard output in the same forms (a function's ``err`` as
    ``{"Err": ...}``, exit status 1)
    and the call's stats on standard error.

``bench PLUGIN FUNCTION [ARG ...] --wit WIT_PATH --world NAME [--policy FILE] [--calls N]``
    Times ``N`` calls (after a warm-up) of ``FUNCTION`` with the same arguments, as
    ``call`` loads and calls it: median and 99th percentile in µs, calls per second,
    fuel units per call.

``new NAME --wit WIT_PATH --world NAME [-o DIR] [--sdk DIR] [--force]``
    Creates a Rust plugin crate for a WIT world (``_scaffold.new_plugin``): the guest
    SDK as a dependency, the WIT, a stub per export and native unit tests against the
    SDK's fake host. Refuses a non-empty ``DIR`` unless ``--force``.

Exit status: 0 on success; 1 when ``--check`` finds a stale module, the WIT cannot be
used, the plugin cannot be loaded or the call fails (the error on standard error);
2 for a usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._bindgen import generate_bindings
from ._checks import Mismatch
from ._exceptions import GuestError, WasmplugError, WitError
from ._jsonvalue import from_json, to_json
from ._version import __version__

if TYPE_CHECKING:
    from ._plugin import Plugin

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasmplug",
        description="Tools for hosting sandboxed WebAssembly plugins with wasmplug.",
    )
    parser.add_argument("--version", action="version", version=f"wasmplug {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bindgen = commands.add_parser(
        "bindgen",
        help="generate typed Python bindings for a WIT world",
        description=(
            "Generate a typed Python module for a WIT world: attrs classes and enums for "
            "its types, a class with one typed method per export, a Protocol per host "
            "interface it imports. The module needs no WIT at run time."
        ),
    )
    bindgen.add_argument(
        "wit_path",
        metavar="WIT_PATH",
        help="a .wit file, or a directory of them with dependencies in deps/",
    )
    bindgen.add_argument(
        "--world",
        required=True,
        metavar="NAME",
        help="the world: its name in the main package, or ns:pkg/name@version",
    )
    bindgen.add_argument(
        "-o",
        "--output",
        metavar="MODULE",
        type=Path,
        help="the .py file to write (default: standard output)",
    )
    bindgen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if MODULE differs from what would be generated",
    )
    inspect = commands.add_parser(
        "inspect",
        help="show a plugin's kind, world, imports, exports and declared needs",
        description="Show what a .wasm plugin is, without running any of its code.",
    )
    inspect.add_argument("plugin", metavar="PLUGIN", type=Path, help="the .wasm file")
    inspect.add_argument(
        "--wit", action="store_true", help="print the WIT of the plugin's world package"
    )
    call = commands.add_parser(
        "call",
        help="call a function of a plugin with JSON arguments",
        description=(
            "Load a plugin under a policy and call one export. Each ARG is JSON, mapped "
            "through the WIT types; the result is printed as JSON, the call's stats on "
            "standard error."
        ),
    )
    _plugin_options(call)
    bench = commands.add_parser(
        "bench",
        help="time calls of a plugin's function",
        description=(
            "Load a plugin under a policy and time repeated calls of one export with the "
            "same JSON arguments (checked and converted once): median and 99th "
            "percentile in µs, and fuel per call. Absolute times vary with the "
            "machine's load; compare side by side in one run."
        ),
    )
    _plugin_options(bench)
    bench.add_argument(
        "--calls", type=int, default=10_000, metavar="N", help="calls to time (default 10,000)"
    )
    new = commands.add_parser(
        "new",
        help="create a Rust plugin crate for a WIT world",
        description=(
            "Create a Rust plugin crate for a host's WIT world: Cargo.toml with the "
            "guest SDK, the WIT (with deps/), src/lib.rs with a stub per export that "
            "returns an empty value, and native unit tests against the SDK's fake host. "
            "Build it with wasmplug's scripts/build-wasm.sh (see the crate's README.md)."
        ),
    )
    new.add_argument("name", metavar="NAME", help="the crate name, e.g. my-rules")
    new.add_argument(
        "--wit",
        required=True,
        metavar="WIT_PATH",
        help="the host's WIT: a directory with deps/, or a .wit file",
    )
    new.add_argument(
        "--world",
        required=True,
        metavar="NAME",
        help="the world to implement: its name in the main package, or ns:pkg/name@version",
    )
    new.add_argument(
        "-o", "--output", metavar="DIR", type=Path, help="the crate directory (default: ./NAME)"
    )
    new.add_argument(
        "--sdk",
        metavar="DIR",
        help="the guest SDK (guest-sdk-rust/ of a wasmplug checkout; not on crates.io); "
        "default: $WASMPLUG_GUEST_SDK, else the one next to this wasmplug",
    )
    new.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR (replaces wit/, overwrites the generated files)",
    )
    return parser


def _new(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ._scaffold import new_plugin

    try:
        crate = new_plugin(
            args.name, args.wit, args.world, args.output, sdk=args.sdk, force=args.force
        )
    except ValueError as e:
        if not isinstance(e, WitError):
            parser.error(str(e))
        print(f"wasmplug new: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"wasmplug new: error: {e}", file=sys.stderr)
        return 1
    print(f"wasmplug new: created {crate} (world {args.world}); next: see {crate / 'README.md'}")
    return 0


def _plugin_options(command: argparse.ArgumentParser) -> None:
    """The arguments ``call`` and ``bench`` share: the plugin, the function and its
    JSON arguments, the world and the policy."""
    command.add_argument("plugin", metavar="PLUGIN", type=Path, help="the .wasm file")
    command.add_argument("function", metavar="FUNCTION", help="the export, e.g. evaluate")
    command.add_argument("args", metavar="ARG", nargs="*", help="one JSON value per parameter")
    command.add_argument(
        "--wit",
        required=True,
        metavar="WIT_PATH",
        help="the world's WIT: a .wit file, or a directory with deps/",
    )
    command.add_argument("--world", required=True, metavar="NAME", help="the world's name")
    command.add_argument(
        "--policy",
        metavar="FILE",
        type=Path,
        help="a policy file (TOML, as wasmplug.load_policies reads); default: nothing "
        "granted, default limits",
    )
    command.add_argument(
        "--name", metavar="N", help="the plugin's name (and policy entry); default its stem"
    )


def _inspect(args: argparse.Namespace) -> int:
    from ._inspect import inspect

    try:
        info = inspect(args.plugin)
    except (OSError, WasmplugError) as e:
        print(f"wasmplug inspect: error: {e}", file=sys.stderr)
        return 1
    if args.wit and info.world is None:
        print(
            f"wasmplug inspect: error: {args.plugin} is an Extism plugin: it carries no WIT "
            "(describe its exports in a WIT world of your own, docs/extism.md)",
            file=sys.stderr,
        )
        return 1
    print(info.wit if args.wit else info)
    return 0


class _Failed(Exception):
    """A command's error, already worded for standard error."""


def _typed_args(plugin: Plugin, function: str, values: list[Any]) -> list[Any]:
    """``values`` mapped by :func:`~wasmplug._jsonvalue.from_json` (the one JSON
    mapping, shared with the Extism backend) through ``function``'s parameter types
    (unchanged when there is no such export or the count is wrong: the call says so).

    Raises:
        _Failed: a value does not fit its parameter's type (the message names the
            argument, the place inside it, what was expected and what was found).
    """
    export = plugin.world.exports.get(function)
    if export is None or len(export.wit.params) != len(values):
        return values
    typed = []
    for i, (v, p) in enumerate(zip(values, export.wit.params, strict=True)):
        try:
            typed.append(from_json(v, p.type, plugin.world.types))
        except Mismatch as e:
            raise _Failed(e.describe(f"argument {i + 1} ({p.name})")) from None
    return typed


def _json_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """Each ``ARG`` parsed as JSON (a usage error, exit status 2, if one is not)."""
    values = []
    for i, text in enumerate(args.args):
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as e:
            parser.error(f"argument {i + 1} is not JSON ({e.msg}): {text!r}")
    return values


def _load(args: argparse.Namespace) -> Plugin:
    """Loads ``args.plugin`` with its world and policy, as ``call`` and ``bench`` do.

    Raises:
        _Failed: the policy file has no entry for the plugin.
        OSError, WasmplugError: the files cannot be read or used.
    """
    from ._plugin import load
    from ._policy import Policy
    from ._policyfile import load_policies
    from ._world import load_world

    name = args.name or args.plugin.stem
    policy = Policy()
    if args.policy is not None:
        policies = load_policies(args.policy)
        if name not in policies:
            known = ", ".join(policies) or "none"
            raise _Failed(
                f"{args.policy} has no policy for plugin {name!r} (plugins there: {known}); "
                "pass --name"
            )
        policy = policies[name]
    return load(args.plugin, world=load_world(args.wit, args.world), policy=policy, name=name)


def _call(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    values = _json_args(args, parser)
    try:
        with _load(args) as plugin:
            types = plugin.world.types
            values = _typed_args(plugin, args.function, values)
            try:
                result = plugin.call(args.function, *values)
            except GuestError as e:
                print(json.dumps({"Err": to_json(e.value, types)}))
                print(f"wasmplug call: {e}", file=sys.stderr)
                return 1
            finally:
                if plugin.last_call is not None:
                    print(f"stats: {plugin.last_call}", file=sys.stderr)
    except (_Failed, OSError, WasmplugError) as e:
        print(f"wasmplug call: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(result, types)))
    return 0


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.calls < 1:
        parser.error(f"--calls must be >= 1, found {args.calls}")
    values = _json_args(args, parser)
    try:
        with _load(args) as plugin:
            values = _typed_args(plugin, args.function, values)
            prepared = plugin.world.prepare(args.function, *values, plugin=plugin.name)
            for _ in range(min(args.calls, 100)):  # warm-up: caches, branch predictors
                plugin.call_prepared(prepared)
            times: list[float] = []
            fuel = 0
            clock = time.perf_counter_ns
            for _ in range(args.calls):
                start = clock()
                plugin.call_prepared(prepared)
                times.append((clock() - start) / 1000)
                stats = plugin.last_call
                fuel += stats.fuel_consumed if stats is not None else 0
    except (_Failed, OSError, WasmplugError) as e:
        print(f"wasmplug bench: error: {e}", file=sys.stderr)
        return 1
    times.sort()
    median = statistics.median(times)
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    print(
        f"{plugin.name} {args.function} ({plugin.kind}): {args.calls:,} calls, "
        f"median {median:.1f} µs, p99 {p99:.1f} µs, {1e6 / median:,.0f} calls/s at the "
        f"median, {fuel / args.calls:,.0f} fuel units per call"
    )
    return 0


def _bindgen(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    output: Path | None = args.output
    if args.check and output is None:
        parser.error("bindgen --check needs -o MODULE, the module to compare")
    try:
        source = generate_bindings(args.wit_path, args.world)
    except WitError as e:
        print(f"wasmplug bindgen: error: {e}", file=sys.stderr)
        return 1
    if output is None:
        sys.stdout.write(source)
        return 0
    if args.check:
        try:
            current = output.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"wasmplug bindgen: {output} does not exist", file=sys.stderr)
            return 1
        if current == source:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            source.splitlines(keepends=True),
            fromfile=str(output),
            tofile=f"generated from {args.wit_path}",
            n=1,
        )
        print(
            f"wasmplug bindgen: {output} is out of date with {args.wit_path} "
            f"(world {args.world}); regenerate it with "
            f"`wasmplug bindgen {args.wit_path} --world {args.world} -o {output}`:",
            file=sys.stderr,
        )
        sys.stderr.writelines(list(diff)[:60])
        return 1
    output.write_text(source, encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``wasmplug`` command.

    Args:
        argv: The arguments after the program name; default ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 on a failed check, unusable WIT, a plugin
        that cannot be loaded or a failed call (argparse exits with 2 on a usage
        error).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args, parser)
    except BrokenPipeError:  # the reader went away (`wasmplug inspect x | head`)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "bindgen":
        return _bindgen(args, parser)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "call":
        return _call(args, parser)
    if args.command == "bench":
        return _bench(args, parser)
    if args.command == "new":
        return _new(args, parser)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse checks


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
