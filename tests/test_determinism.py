"""Clocks and randomness: what a guest sees through WASI, real by default and fixed
and seeded with ``Policy.determinism``, on both backends.

The ``attacks`` fixture's ``observe`` export reads, in this order: the wall clock, the
monotonic clock twice, then (as a component, WASI 0.2) the insecure seed, 8 random
bytes, a random u64 and an insecure u64, or (as a core module, WASI preview 1) five
draws of 8 ``random_get`` bytes; and std's ``SystemTime::now()``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import wasmplug
from conftest import fixture_world

WORLD = fixture_world("attacks")
WALL_NS = 1_700_000_000_123_456_789


def observe(plugin_dir: Path, engine: wasmplug.Engine, policy: wasmplug.Policy) -> list[int]:
    with wasmplug.load(
        plugin_dir / "attacks.wasm", world=WORLD, policy=policy, engine=engine, name="observer"
    ) as plugin:
        seen = plugin.call("observe")
    assert isinstance(seen, list)
    return seen


def expected(seed: int, plugin_dir: Path) -> list[int]:
    """What the guest must see with ``Determinism(seed=seed, wall_clock_ns=WALL_NS)``,
    computed independently: Python's generator drawn in the guest's order."""
    rng = random.Random(seed)
    seconds, nanos = divmod(WALL_NS, 1_000_000_000)
    if plugin_dir.name == "wasm-core":  # five random_get draws of 8 bytes
        draws = [int.from_bytes(rng.randbytes(8), "little") for _ in range(5)]
        return [seconds, nanos, 0, *draws, seconds]
    seed_pair = [rng.getrandbits(64), rng.getrandbits(64)]
    as_u64 = int.from_bytes(rng.randbytes(8), "little")
    u64s = [rng.getrandbits(64), rng.getrandbits(64)]
    return [seconds, nanos, 0, u64s[0], u64s[1], *seed_pair, as_u64, seconds]


def test_by_default_the_guest_sees_real_time_and_chance(
    plugin_dir: Path, engine: wasmplug.Engine
) -> None:
    before = time.time()
    first = observe(plugin_dir, engine, wasmplug.Policy())
    second = observe(plugin_dir, engine, wasmplug.Policy())
    assert before - 1 <= first[0] <= time.time() + 1  # the host's time of day
    assert first[8] == first[0]  # std's SystemTime reads the same clock
    assert first[3:8] != second[3:8]  # fresh randomness per instance


def test_determinism_fixes_the_clocks_and_seeds_randomness(
    plugin_dir: Path, engine: wasmplug.Engine
) -> None:
    policy = wasmplug.Policy(determinism=wasmplug.Determinism(seed=7, wall_clock_ns=WALL_NS))
    assert observe(plugin_dir, engine, policy) == expected(7, plugin_dir)
    # every run, every instance
    assert observe(plugin_dir, engine, policy) == expected(7, plugin_dir)
    other = wasmplug.Policy(determinism=wasmplug.Determinism(seed=8, wall_clock_ns=WALL_NS))
    assert observe(plugin_dir, engine, other) == expected(8, plugin_dir) != expected(7, plugin_dir)


def test_a_fresh_instance_restarts_the_sequence(plugin_dir: Path, engine: wasmplug.Engine) -> None:
    """Within one instance the sequence goes on; an instance replaced after a trap starts
    it again, as a new plugin would."""
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(log=True),
        determinism=wasmplug.Determinism(seed=7, wall_clock_ns=WALL_NS),
    )
    with wasmplug.load(
        plugin_dir / "attacks.wasm", world=WORLD, policy=policy, engine=engine
    ) as plugin:
        first = plugin.call("observe")
        assert first == expected(7, plugin_dir)
        assert plugin.call("observe") != first
        with pytest.raises(wasmplug.Trap):
            plugin.call("bad-utf8-to-host")
        assert plugin.call("observe") == first


def test_determinism_in_policy_data_and_validation(tmp_path: Path) -> None:
    policy = wasmplug.Policy(determinism=wasmplug.Determinism(seed=3, wall_clock_ns=5))
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
    assert wasmplug.Policy.from_dict(wasmplug.Policy().to_dict()).determinism is None
    path = tmp_path / "policies.toml"
    path.write_text("[plugins.acme.determinism]\nseed = 3\nwall_clock_ns = 5\n")
    assert wasmplug.load_policies(path)["acme"].determinism == policy.determinism
    path.write_text('[plugins.acme.determinism]\nseed = "three"\n')
    with pytest.raises(wasmplug.PolicyError, match=r"acme\.determinism\.seed: expected an integer"):
        wasmplug.load_policies(path)
    with pytest.raises(wasmplug.PolicyError, match="wall_clock_ns must be an int in"):
        wasmplug.Determinism(wall_clock_ns=-1)
