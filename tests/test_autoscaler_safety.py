"""The operator's sanity rules (mdplab.autoscaler.safety): what breaks them, what does not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdplab.autoscaler.safety import HOARD, RETREAT, safety_violations, violation_table
from mdplab.autoscaler.states import state_index
from mdplab.autoscaler.telemetry import DOWN, HOLD, SPOT, UP

L, T, N = 5, 5, 8
LEVELS = np.array([20.0, 35.0, 57.0, 85.0, 120.0])  # req/s per throughput bin
GRID = {
    "n_latency": L,
    "n_throughput": T,
    "max_instances": N,
    "first_over_sla_bin": 2,
    "throughput_levels": LEVELS,
    "mean_work": 1.0,
    "capacity": 40.0,
}
S = L * T * N


def check(policy, visits):
    return safety_violations(np.asarray(policy), np.asarray(visits), **GRID)


def test_retreating_under_strain_is_a_violation():
    policy = np.full(S, HOLD)
    visits = np.zeros(S, dtype=int)
    strained = state_index(4, 4, 2, T, N)  # above 300 ms, above 100 req/s, 2 instances
    policy[strained], visits[strained] = SPOT, 18
    found = check(policy, visits)
    assert [(v.state, v.action, v.rule, v.visits) for v in found] == [
        (strained, "spot", RETREAT, 18)
    ]
    assert "spot" in violation_table(found) and "18" in violation_table(found)


def test_a_state_the_log_never_visited_is_not_judged():
    policy = np.full(S, DOWN)
    assert check(policy, np.zeros(S, dtype=int)) == []


def test_holding_spare_capacity_at_low_load_is_a_violation():
    policy = np.full(S, HOLD)
    visits = np.zeros(S, dtype=int)
    idle = state_index(0, 0, 4, T, N)  # fast, 20 req/s: one instance (40/s) would do
    busy = state_index(0, 0, 1, T, N)  # one instance: nothing to give back
    visits[[idle, busy]] = 30
    assert [(v.state, v.rule) for v in check(policy, visits)] == [(idle, HOARD)]
    policy[idle] = DOWN
    assert check(policy, visits) == []


def test_an_operators_policy_passes():
    """Scale up when over the SLA, down at low load with spare capacity, else hold."""
    s = np.arange(S)
    latency, tau, n = s // (T * N), (s // N) % T, s % N + 1
    policy = np.where(latency >= 2, UP, np.where((tau == 0) & (n > 1), DOWN, HOLD))
    assert check(policy, np.ones(S, dtype=int)) == []
    assert violation_table([]).startswith("no violations")


@given(st.lists(st.sampled_from([DOWN, HOLD, UP, SPOT]), min_size=S, max_size=S),
       st.lists(st.integers(0, 3), min_size=S, max_size=S))  # fmt: skip
def test_violations_are_visited_states_that_break_their_rule(actions, counts):
    policy, visits = np.array(actions), np.array(counts)
    for v in check(policy, visits):
        assert visits[v.state] > 0
        if v.rule == RETREAT:
            assert v.latency_bin >= 2 and v.throughput_bin == T - 1
            assert policy[v.state] in (DOWN, SPOT)
        else:
            assert v.latency_bin < 2 and v.throughput_bin == 0 and v.instances > 1
            assert policy[v.state] not in (DOWN, SPOT)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        check(np.zeros(S, dtype=int), np.zeros(S - 1, dtype=int))
