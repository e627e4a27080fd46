"""The simulated service and its trace: determinism, file format, patterns, hand-computed law."""

from __future__ import annotations

import ast
import sys
import types
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from course_helpers import SHIPPED_TRACE
from hypothesis import given, settings
from hypothesis import strategies as st

from mdplab.autoscaler import telemetry
from mdplab.autoscaler.telemetry import (
    COLUMNS,
    DOWN,
    HOLD,
    SPOT,
    UP,
    Physics,
    exogenous,
    generate_telemetry,
    logging_policy,
    next_fleet,
    p95_latency,
    read_csv,
    replay,
    valid_actions,
    write_csv,
)

QUIET = replace(Physics(), preemption=0.0, noise_sigma=0.0)  # the latency law without noise


@pytest.fixture(scope="module")
def trace(shipped_trace) -> dict[str, np.ndarray]:
    return shipped_trace


# ------------------------------------------------------------------ standalone module
def test_telemetry_imports_only_the_standard_library_and_numpy():
    tree = ast.parse(Path(telemetry.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - {"numpy", "__future__"} <= sys.stdlib_module_names, imported
    assert "mdplab" not in imported


def test_telemetry_source_runs_without_mdplab(monkeypatch):
    # The lab inlines the source into a notebook cell: it must work as a module of its own.
    cell = types.ModuleType("cell")
    monkeypatch.setitem(sys.modules, "cell", cell)
    source = Path(telemetry.__file__).read_text(encoding="utf-8")
    exec(compile(source, "cell", "exec"), cell.__dict__)
    inlined = cell.generate_telemetry(days=1, seed=3)["p95_latency_ms"]
    np.testing.assert_array_equal(inlined, generate_telemetry(1, 3)["p95_latency_ms"])


# ------------------------------------------------------------------ the shipped file
def test_shipped_file_is_the_generator_output_byte_for_byte(tmp_path):
    fresh = tmp_path / "trace.csv"
    write_csv(generate_telemetry(days=8, seed=20261130), fresh)
    assert fresh.read_bytes() == SHIPPED_TRACE.read_bytes(), "run `mdplab data` to regenerate"


def test_generation_is_deterministic_and_seeds_matter(tmp_path):
    first, second, other = (tmp_path / name for name in ("a.csv", "b.csv", "c.csv"))
    write_csv(generate_telemetry(days=1, seed=7), first)
    write_csv(generate_telemetry(days=1, seed=7), second)
    write_csv(generate_telemetry(days=1, seed=8), other)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_csv_round_trip_is_lossless(trace, tmp_path):
    again = tmp_path / "again.csv"
    write_csv(trace, again)
    assert again.read_bytes() == SHIPPED_TRACE.read_bytes()
    back = read_csv(again)
    assert list(back) == list(COLUMNS)
    for name in COLUMNS:
        np.testing.assert_array_equal(back[name], trace[name])
        assert back[name].dtype == trace[name].dtype


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 10**7), min_size=1, max_size=20), st.integers(1, 8))
def test_rounded_values_survive_the_file(tmp_path_factory, integers, instances):
    # Any value rounded to the column's decimals comes back as the same float.
    values = np.array(integers, dtype=float)
    columns = {
        "timestamp": np.array(["2026-03-02T00:00"] * len(values)),
        "request_rate": np.round(values / 100, 2),
        "query_length": np.round(values / 100, 2),
        "retrieval_confidence": np.round(values / 1e7, 3),
        "p95_latency_ms": np.round(values / 10, 1),
        "instances": np.full(len(values), instances),
        "spot_share": np.round(values / 1e7, 2),
    }
    path = tmp_path_factory.mktemp("rt") / "t.csv"
    write_csv(columns, path)
    back = read_csv(path)
    for name in COLUMNS:
        np.testing.assert_array_equal(back[name], columns[name])


def test_read_csv_rejects_other_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,rate\n2026-03-02T00:00,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected the columns"):
        read_csv(path)


def test_columns_count_and_ranges(trace):
    assert list(trace) == list(COLUMNS)
    assert all(len(column) == 11_520 for column in trace.values())
    assert trace["timestamp"][0] == "2026-03-02T00:00"
    assert trace["timestamp"][-1] == "2026-03-09T23:59"
    assert date.fromisoformat(trace["timestamp"][0][:10]).weekday() == 0  # a Monday
    assert np.all(trace["request_rate"] > 0) and trace["request_rate"].max() < 400
    assert np.all((trace["query_length"] > 5) & (trace["query_length"] < 80))
    confidence = trace["retrieval_confidence"]
    assert np.all((confidence > 0) & (confidence < 1))
    assert np.all((trace["p95_latency_ms"] > 50) & (trace["p95_latency_ms"] <= 1500))
    assert set(np.unique(trace["instances"])) == set(range(1, 9))
    n, share = trace["instances"], trace["spot_share"]
    on_spot = share > 0
    np.testing.assert_allclose(share[on_spot], np.round((n[on_spot] - 1) / n[on_spot], 2))
    assert not np.any(on_spot & (n == 1))
    # The fleet moves by at most one instance a minute.
    assert np.all(np.abs(np.diff(n)) <= 1)


def test_daily_and_weekly_pattern(trace):
    rate = trace["request_rate"].reshape(8, 1440)  # days x minutes
    hour = np.arange(1440) // 60
    afternoon, night = rate[:, (hour >= 12) & (hour < 16)], rate[:, hour < 5]
    assert afternoon.mean() > 3 * night.mean()
    weekdays, weekend = rate[[0, 1, 2, 3, 4, 7]], rate[[5, 6]]  # Mar 7 and 8: Sat, Sun
    assert weekdays.mean() > 1.3 * weekend.mean()
    assert np.argmax(rate[:5].mean(axis=0)) // 60 in range(11, 17)  # peak early afternoon


def test_bursts_raise_the_rate_and_lower_the_confidence(trace):
    rate = trace["request_rate"].reshape(8, 1440)
    weekdays = [0, 1, 2, 3, 4, 7]
    ratio = (rate / np.median(rate[weekdays], axis=0)).ravel()
    burst = ratio > 1.4  # 4 standard deviations of the 8 % noise
    onsets = np.sum(np.diff(burst.astype(int)) == 1)
    assert 15 <= onsets <= 100, onsets
    confidence, length = trace["retrieval_confidence"], trace["query_length"]
    assert confidence[burst].mean() < confidence.mean() - 0.1
    assert length[burst].mean() > length.mean() + 2


def test_exogenous_weekday_follows_start():
    saturday = exogenous(1, 1, start="2026-03-07T00:00")["request_rate"]
    monday = exogenous(1, 1, start="2026-03-09T00:00")["request_rate"]
    np.testing.assert_allclose(saturday, 0.65 * monday)  # same seed: the same noise
    stamps = exogenous(1, 1, start="2026-03-07T23:30")["timestamp"]
    assert stamps[29] == "2026-03-07T23:59" and stamps[30] == "2026-03-08T00:00"


# ------------------------------------------------------------------ the latency law
def test_latency_law_by_hand():
    # w = 0.4 + 0.025 * 20 + 0.5 * (1 - 0.6) = 1.1; rho = 20 * 1.1 / 40 = 0.55;
    # L = 70 + 2 * 20 + 35 * 0.55 / 0.45 = 152.777...
    rng = np.random.default_rng(0)
    assert p95_latency(20, 20, 0.6, 1, 0.0, QUIET, rng) == pytest.approx(110 + 35 * 0.55 / 0.45)
    # two instances: rho = 0.275
    assert p95_latency(20, 20, 0.6, 2, 0.0, QUIET, rng) == pytest.approx(110 + 35 * 0.275 / 0.725)
    # saturated (rho = 1.1): the cap
    assert p95_latency(40, 20, 0.6, 1, 0.0, QUIET, rng) == 1500.0
    assert QUIET.work(20, 0.6) == pytest.approx(1.1)


def test_preempted_spot_instances_do_not_serve():
    certain = replace(QUIET, preemption=1.0)
    rng = np.random.default_rng(0)
    one = p95_latency(20, 20, 0.6, 1, 0.0, certain, rng)
    assert p95_latency(20, 20, 0.6, 3, 2 / 3, certain, rng) == pytest.approx(one)
    assert p95_latency(20, 20, 0.6, 3, 0.0, certain, rng) < one  # on demand: kept


def test_latency_is_vectorised_and_draws_a_fixed_amount():
    rates = np.array([10.0, 20.0, 30.0])
    vector = p95_latency(
        rates, 20.0, 0.6, np.array([1, 2, 3]), 0.0, QUIET, np.random.default_rng(0)
    )
    scalars = [
        p95_latency(r, 20.0, 0.6, n, 0.0, QUIET, np.random.default_rng(0))
        for r, n in zip(rates, (1, 2, 3), strict=True)
    ]
    np.testing.assert_allclose(vector, scalars)
    # The random stream advances by the same amount whatever the fleet.
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    p95_latency(50, 20, 0.6, 1, 0.0, Physics(), a)
    p95_latency(50, 20, 0.6, 8, 7 / 8, Physics(), b)
    assert a.random() == b.random()


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(0.0, 400.0),
    length=st.floats(5.0, 80.0),
    confidence=st.floats(0.0, 1.0),
    fleet=st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    seed=st.integers(0, 2**32),
)
def test_a_replayed_minute_is_the_latency_law_bit_for_bit(rate, length, confidence, fleet, seed):
    """replay's scalar path (_minute_latency) and the array law give the same bits, and
    leave the random stream in the same place: the shipped trace depends on both."""
    n, spot = fleet
    spot_share = spot / n
    a, b = np.random.default_rng(seed), np.random.default_rng(seed)
    law = float(p95_latency(rate, length, confidence, n, spot_share, Physics(), a))
    minute = telemetry._minute_latency(rate, length, confidence, n, spot_share, Physics(), b)
    assert minute == law or (np.isnan(minute) and np.isnan(law))
    assert a.random() == b.random()


def test_prices():
    physics = Physics()
    assert physics.fleet_price(4, 0.0) == pytest.approx(4 * 1.80)
    assert physics.fleet_price(4, 0.75) == pytest.approx(1.80 + 3 * 0.63)


# ------------------------------------------------------------------ actions and replay
def test_valid_actions_and_next_fleet():
    assert valid_actions(1, 8) == [HOLD, UP]
    assert valid_actions(8, 8) == [DOWN, HOLD, SPOT]
    assert valid_actions(4, 8) == [DOWN, HOLD, UP, SPOT]
    assert next_fleet(3, UP, 8) == (4, 0.0)
    assert next_fleet(3, DOWN, 8) == (2, 0.0)
    assert next_fleet(4, SPOT, 8) == (4, 0.75)
    assert next_fleet(8, UP, 8) == (8, 0.0)  # invalid: holds
    assert next_fleet(1, DOWN, 8) == (1, 0.0)
    assert next_fleet(1, SPOT, 8) == (1, 0.0)


def test_replay_applies_actions_to_the_next_minute():
    exo = exogenous(1, 4)
    script = [UP, UP, SPOT, DOWN, HOLD, DOWN, DOWN, DOWN, DOWN]
    seen: list[int] = []
    run = replay(_scripted(script, seen), exo, Physics(), len(script), 1, start_instances=3)
    assert run["instances"].tolist() == [3, 4, 5, 5, 4, 4, 3, 2, 1]
    assert run["spot_share"].tolist() == [0, 0, 0, 0.8, 0, 0, 0, 0, 0]
    assert seen == run["instances"].tolist()
    assert run["action"].tolist() == script
    np.testing.assert_allclose(run["price"][3], 1.80 + 4 * 0.63)
    again = replay(_scripted(script, []), exo, Physics(), len(script), 1, start_instances=3)
    np.testing.assert_array_equal(again["p95_latency_ms"], run["p95_latency_ms"])


def _scripted(script: list[int], seen: list[int]):
    def decide(latency: float, rate: float, instances: int) -> int:
        seen.append(instances)
        return script[len(seen) - 1]

    return decide


def test_logging_policy_never_picks_an_invalid_move_and_explores():
    physics = Physics()
    decide = logging_policy(physics, seed=1)
    rng = np.random.default_rng(2)
    chosen = {n: set() for n in range(1, 9)}
    for _ in range(20_000):
        n = int(rng.integers(1, 9))
        action = decide(float(rng.uniform(100, 400)), 50.0, n)
        assert action in valid_actions(n, 8)
        chosen[n].add(action)
    assert all(chosen[n] == set(valid_actions(n, 8)) for n in chosen)


def test_trace_actions_cover_every_fleet_size(trace):
    from mdplab.autoscaler.states import label_actions

    actions = label_actions(trace["instances"], trace["spot_share"])
    n = trace["instances"][:-1]
    for size in range(1, 9):
        assert set(actions[n == size]) == set(valid_actions(size, 8)), size


def test_mdplab_data_writes_and_checks_the_file(tmp_path, monkeypatch, capsys):
    from mdplab.cli import main

    (tmp_path / "pyproject.toml").write_text("[tool.mdplab]\n", encoding="utf-8")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "data" / "autoscaler_telemetry.csv"
    assert main(["data", "--check"]) == 1 and not target.exists()
    assert main(["data"]) == 0
    assert target.read_bytes() == SHIPPED_TRACE.read_bytes()
    assert main(["data", "--check"]) == 0
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n", 1))
    assert main(["data", "--check"]) == 1
    assert "stale" in capsys.readouterr().out
