"""Building the autoscaler MDP: bins, states, action labels, counts, P and C, by hand."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdplab.autoscaler import (
    DOWN,
    HOLD,
    LATENCY_EDGES_MS,
    SPOT,
    THROUGHPUT_EDGES,
    UP,
    at_risk_pairs,
    billed_cost_table,
    bin_levels,
    build_model,
    count_transitions,
    estimate_transitions,
    feasible_pairs,
    label_actions,
    latency_penalty,
    quantise,
    state_index,
    state_means,
    state_parts,
    successor_blocks,
)

# A tiny model: latency bins <=200 / >200, throughput bins <=50 / >50, 1 or 2 instances.
# s = (l * 2 + tau) * 2 + (n - 1), so 8 states.
TINY = {"n_latency": 2, "n_throughput": 2, "max_instances": 2}
TINY_TRACE = {
    "p95_latency_ms": np.array([150.0, 250.0, 180.0, 190.0, 120.0]),
    "request_rate": np.array([30.0, 60.0, 60.0, 40.0, 30.0]),
    "instances": np.array([1, 2, 2, 2, 1]),
    "spot_share": np.array([0.0, 0.0, 0.5, 0.0, 0.0]),
}


def tiny_states() -> np.ndarray:
    trace = TINY_TRACE
    return state_index(
        quantise(trace["p95_latency_ms"], (200.0,)),
        quantise(trace["request_rate"], (50.0,)),
        trace["instances"],
        2,
        2,
    )


# ------------------------------------------------------------------ bins and states
def test_bins_are_right_closed_and_the_sla_meets_the_sla():
    edges = LATENCY_EDGES_MS
    assert 200.0 in edges
    got = quantise([0.0, 175.0, 175.1, 200.0, 200.1, 250.0, 300.0, 300.1, 1500.0], edges)
    assert got.tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 4]
    assert quantise([25.0, 25.01, 100.0, 100.01], THROUGHPUT_EDGES).tolist() == [0, 1, 3, 4]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0, 1000, allow_nan=False), min_size=1, max_size=6, unique=True),
    st.floats(-10, 1100, allow_nan=False),
)
def test_quantise_is_bisect_left(edges, x):
    edges = sorted(edges)
    assert int(quantise(x, edges)) == bisect_left(edges, x)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_state_index_round_trip(data):
    n_latency = data.draw(st.integers(1, 7))
    n_throughput = data.draw(st.integers(1, 7))
    max_instances = data.draw(st.integers(1, 12))
    l = data.draw(st.integers(0, n_latency - 1))  # noqa: E741
    tau = data.draw(st.integers(0, n_throughput - 1))
    n = data.draw(st.integers(1, max_instances))
    s = int(state_index(l, tau, n, n_throughput, max_instances))
    assert 0 <= s < n_latency * n_throughput * max_instances
    assert tuple(int(x) for x in state_parts(s, n_throughput, max_instances)) == (l, tau, n)


def test_state_numbering_by_hand():
    # s = (l * T + tau) * N + (n - 1) with T = 5, N = 8
    assert state_index(0, 0, 1, 5, 8) == 0
    assert state_index(0, 0, 8, 5, 8) == 7
    assert state_index(0, 1, 1, 5, 8) == 8
    assert state_index(1, 0, 1, 5, 8) == 40
    assert state_index(4, 4, 8, 5, 8) == 199
    assert tiny_states().tolist() == [0, 7, 3, 1, 0]


def test_label_actions_on_hand_made_sequences():
    assert label_actions([1, 2, 2, 2, 1], [0, 0, 0.5, 0, 0]).tolist() == [UP, SPOT, HOLD, DOWN]
    # spot share of minute t does not matter, only that of t + 1; a change of count wins
    assert label_actions([3, 3, 3, 4, 4], [0.67, 0.67, 0, 0, 0.75]).tolist() == [
        SPOT,
        HOLD,
        UP,
        SPOT,
    ]
    assert label_actions([5, 4], [0.8, 0.75]).tolist() == [DOWN]
    assert label_actions([2], [0]).tolist() == []


def test_bin_levels_mean_or_fallback():
    levels = bin_levels([10.0, 20.0, 130.0, 260.0], (50.0, 100.0, 200.0))
    # bins: <=50 holds 10, 20; (50, 100] empty -> midpoint 75; (100, 200] holds 130; >200: 260
    np.testing.assert_allclose(levels, [15.0, 75.0, 130.0, 260.0])
    np.testing.assert_allclose(bin_levels([75.0], (50.0, 100.0)), [50.0, 75.0, 100.0])


# ------------------------------------------------------------------ counts and P
def test_count_transitions_of_the_tiny_trace():
    actions = label_actions(TINY_TRACE["instances"], TINY_TRACE["spot_share"])
    counts = count_transitions(tiny_states(), actions, 8, 4)
    assert counts.sum() == 4
    assert counts[0, UP, 7] == counts[7, SPOT, 3] == counts[3, HOLD, 1] == counts[1, DOWN, 0] == 1
    with pytest.raises(ValueError, match="one action fewer"):
        count_transitions([0, 1], [0, 0], 8, 4)


def test_feasibility_and_successor_blocks():
    feasible = feasible_pairs(**TINY)
    # n = 1 (even states): no down, no spot; n = 2 (odd states): no up
    assert feasible[0].tolist() == [False, True, True, False]
    assert feasible[1].tolist() == [True, True, False, True]
    blocks = successor_blocks(**TINY)
    assert np.flatnonzero(blocks[0, UP]).tolist() == [1, 3, 5, 7]  # n' = 2
    assert np.flatnonzero(blocks[0, HOLD]).tolist() == [0, 2, 4, 6]  # n' = 1
    assert np.flatnonzero(blocks[1, DOWN]).tolist() == [0, 2, 4, 6]
    assert np.flatnonzero(blocks[1, SPOT]).tolist() == [1, 3, 5, 7]
    assert not blocks[0, DOWN].any() and not blocks[1, UP].any()


def tiny_counts() -> np.ndarray:
    actions = label_actions(TINY_TRACE["instances"], TINY_TRACE["spot_share"])
    return count_transitions(tiny_states(), actions, 8, 4)


def test_smoothing_by_hand():
    P = estimate_transitions(tiny_counts(), **TINY, alpha=0.5, first_risky_bin=1)
    # (0, up): one count to 7, alpha = 0.5 on the 4 cells with n' = 2: (1.5, .5, .5, .5) / 3
    np.testing.assert_allclose(P[0, UP, [1, 3, 5, 7]], [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    # an unvisited pair: uniform on its block
    np.testing.assert_allclose(P[2, HOLD, [0, 2, 4, 6]], [0.25] * 4)
    feasible = feasible_pairs(**TINY)
    np.testing.assert_allclose(P.sum(axis=2), feasible.astype(float))
    assert np.all(P[~feasible] == 0)
    assert np.all(P[~successor_blocks(**TINY)] == 0)  # the instance part is deterministic


def test_risk_mass_by_hand():
    at_risk = np.zeros((8, 4), dtype=bool)
    at_risk[0, UP] = at_risk[2, HOLD] = True
    P = estimate_transitions(
        tiny_counts(), **TINY, alpha=0.5, at_risk=at_risk, kappa=2.0, first_risky_bin=1
    )
    # kappa = 2 in total over the h * T = 1 * 2 above-SLA cells (latency bin 1: s' = 5, 7):
    # masses (0.5, 0.5, 0.5 + 1, 1.5 + 1) / 5
    np.testing.assert_allclose(P[0, UP, [1, 3, 5, 7]], [0.1, 0.1, 0.3, 0.5])
    # unvisited: (0.5, 0.5, 1.5, 1.5) / 4
    np.testing.assert_allclose(P[2, HOLD, [0, 2, 4, 6]], [0.125, 0.125, 0.375, 0.375])
    # pairs not at risk are unchanged
    plain = estimate_transitions(tiny_counts(), **TINY, alpha=0.5, first_risky_bin=1)
    np.testing.assert_allclose(P[3, HOLD], plain[3, HOLD])


def test_risk_mass_is_a_total_over_every_above_sla_cell():
    # 3 latency bins, 2 above the SLA; 2 throughput bins; one instance (hold only): the 4
    # above-SLA cells share kappa = 4, one pseudo-count each, on top of alpha = 1 everywhere.
    shape = {"n_latency": 3, "n_throughput": 2, "max_instances": 1}
    at_risk = np.ones((6, 4), dtype=bool)
    P = estimate_transitions(
        np.zeros((6, 4, 6)), **shape, alpha=1.0, at_risk=at_risk, kappa=4.0, first_risky_bin=1
    )
    np.testing.assert_allclose(P[0, HOLD], [0.1, 0.1, 0.2, 0.2, 0.2, 0.2])
    assert np.all(P[:, [DOWN, UP, SPOT]] == 0)


def test_counts_outside_the_block_are_rejected():
    counts = np.zeros((8, 4, 8))
    counts[0, UP, 0] = 1  # up from n = 1 cannot end with n = 1
    with pytest.raises(ValueError, match="successor block"):
        estimate_transitions(counts, **TINY)
    with pytest.raises(ValueError, match="alpha"):
        estimate_transitions(np.zeros((8, 4, 8)), **TINY, alpha=0.0)


def test_risk_rule_by_hand():
    # confidence: state 7 (l=1, tau=1, n=2) unsure; top_bins=1 -> only tau = 1 counts as high
    confidence = np.full(8, 0.8)
    confidence[7] = 0.4
    risky = at_risk_pairs(
        **TINY,
        confidence=confidence,
        throughput_levels=np.array([30.0, 60.0]),
        mean_work=1.0,
        capacity=40.0,
        load=0.9,
        top_bins=1,
    )
    # capacity: 60 > 0.9 * 40 * n' only for n' = 1 -> (tau = 1, n = 1, hold/up?) up has n' = 2
    expected = np.zeros((8, 4), dtype=bool)
    for s in (2, 6):  # tau = 1, n = 1: hold keeps n' = 1
        expected[s, HOLD] = True
    for s in (3, 7):  # tau = 1, n = 2: down goes to n' = 1
        expected[s, DOWN] = True
    expected[7, [HOLD, SPOT]] = True  # unsure state: every feasible action
    np.testing.assert_array_equal(risky, expected)


def test_state_means_uses_default_for_unvisited():
    means = state_means(np.array([0, 0, 2]), np.array([0.2, 0.4, 0.9]), 4, default=0.7)
    np.testing.assert_allclose(means, [0.3, 0.7, 0.9, 0.7])


# ------------------------------------------------------------------ costs
def test_latency_penalty_by_hand():
    np.testing.assert_allclose(
        latency_penalty([150, 200, 225, 250, 300, 1500]), [0, 0, 5, 10, 20, 260]
    )
    assert latency_penalty(250.0) == pytest.approx(10.0)


def test_billed_cost_table_by_hand():
    # Prices 6 and 3 dollars an hour, k = 10 points per dollar, a spin-up of 0.5 dollars.
    C = billed_cost_table([150.0, 250.0], 2, 2, 10.0, 6.0, 3.0, 0.5)
    # state 7: latency bin 1 (level 250 -> penalty 10), n = 2
    assert C[7, DOWN] == pytest.approx(10.0 + 10 * 6 / 60)  # one instance on demand
    assert C[7, HOLD] == pytest.approx(10.0 + 10 * 12 / 60)
    assert C[7, SPOT] == pytest.approx(10.0 + 10 * (6 + 3) / 60)  # one stays on demand
    assert C[7, UP] == np.inf
    # state 0: level 150 -> no penalty, n = 1; scale up bills two instances and the spin-up
    assert C[0, HOLD] == pytest.approx(1.0) and C[0, UP] == pytest.approx(2.0 + 5.0)
    assert C[0, DOWN] == np.inf and C[0, SPOT] == np.inf


# ------------------------------------------------------------------ the model of a trace
def test_build_model_of_the_tiny_trace():
    trace = {
        **TINY_TRACE,
        "retrieval_confidence": np.full(5, 0.8),
        "query_length": np.full(5, 20.0),
    }
    model = build_model(
        trace,
        latency_edges=(200.0,),
        throughput_edges=(50.0,),
        alpha=0.5,
        cost_weight=10.0,
    )
    assert model.n_states == 32  # max_instances stays 8: 2 * 2 * 8
    s = int(model.state_of(250.0, 60.0, 2))
    assert s == (1 * 2 + 1) * 8 + 1
    assert model.counts[s, SPOT].sum() == 1
    np.testing.assert_allclose(model.latency_levels, [(150 + 180 + 190 + 120) / 4, 250])
    np.testing.assert_allclose(model.throughput_levels, [(30 + 40 + 30) / 3, 60])
    # 250 ms: 10 points; spot keeps 2 instances, one of them on spot: (1.80 + 0.63) / 60 $
    assert model.C[s, SPOT] == pytest.approx(10.0 + 10.0 * (1.80 + 0.63) / 60)
    # scale up from 1 instance: 2 on demand for a minute plus the $0.06 spin-up charge
    s1 = int(model.state_of(150.0, 30.0, 1))
    assert model.C[s1, UP] == pytest.approx(10.0 * (2 * 1.80 / 60 + 0.06))
    assert model.visits.sum() == 5 and model.visited[s] and model.visited.sum() == 4
    with pytest.raises(ValueError, match="SLA"):
        build_model(trace, latency_edges=(150.0, 250.0))


def test_the_shipped_model_is_well_formed(shipped_model):
    model = shipped_model
    feasible = np.isfinite(model.C)
    assert model.P.shape == (200, 4, 200) and feasible.sum() == 200 * 4 - 25 * 3
    np.testing.assert_allclose(model.P.sum(axis=2)[feasible], 1.0)
    assert np.all(model.P[~feasible] == 0)
    assert model.counts.sum() == 11_519
    assert model.cost_weight == 20.0 and model.visits.sum() == 11_520
    # demand is exogenous: one chain for every action and fleet, and no jump from the busiest
    # bin to the quietest in a minute (the uniform prior of old gave it 0.2)
    assert model.throughput_P[4, 0] < 0.01
    assert np.all(np.diff(model.latency_levels) > 0) and np.all(
        np.diff(model.throughput_levels) > 0
    )
