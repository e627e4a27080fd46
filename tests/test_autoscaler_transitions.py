"""The factored transition model: exogenous demand, latency given load, a pessimistic prior."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdplab.autoscaler import SPOT, UP, Physics, label_actions, value_iteration
from mdplab.autoscaler.estimation import feasible_pairs
from mdplab.autoscaler.safety import safety_arguments, safety_violations
from mdplab.autoscaler.states import state_index
from mdplab.autoscaler.transitions import (
    FLEET_CHANGE,
    compose_transitions,
    effective_instances,
    latency_counts,
    latency_model,
    pessimistic_prior,
    throughput_chain,
)


def test_throughput_chain_by_hand():
    # moves 0->1, 1->1, 1->0, 0->1: row 0 has (0, 2) and row 1 (1, 1), plus 0.5 each
    P = throughput_chain([0, 1, 1, 0, 1], 2, alpha=0.5)
    np.testing.assert_allclose(P, [[0.5 / 3, 2.5 / 3], [0.5, 0.5]])
    with pytest.raises(ValueError, match="positive"):
        throughput_chain([0, 1], 2, alpha=0.0)


def test_latency_counts_by_hand():
    lat, tau, n = np.array([0, 1, 1, 0]), np.array([0, 1, 1, 0]), np.array([1, 2, 2, 1])
    actions = np.array([UP, SPOT, 0])  # up, spot, down
    counts = latency_counts(lat, tau, n, actions, n_latency=2, n_throughput=2, max_instances=2)
    assert counts.shape == (2, 4, 2, 2, 2) and counts.sum() == 3
    assert counts[0, UP, 1, 1, 1] == 1  # from fast, up: next minute busy, 2 instances, slow
    assert counts[1, SPOT, 1, 1, 1] == 1
    assert counts[1, 0, 0, 0, 0] == 1


def test_effective_instances():
    np.testing.assert_allclose(
        effective_instances([1, 4, 4], [False, False, True], 0.1), [1, 4, 3.7]
    )


def naive_prior(lat, tau, n, actions, levels, p, L, N, K):
    """The prior's definition, cell by cell, with nothing clever."""
    load_after = levels[tau[1:]] / effective_instances(n[1:], actions == SPOT, p)
    prior = np.zeros((L, 4, levels.size, N, L))
    for lb in range(L):
        for a in range(4):
            for t in range(levels.size):
                for fleet in range(1, N + 1):
                    load = levels[t] / effective_instances(fleet, a == SPOT, p)
                    pool = [
                        i
                        for i in range(lat.size - 1)
                        if load_after[i] >= load * (1 - 1e-12)
                        and lat[i] >= lb
                        and n[i + 1] - n[i] <= FLEET_CHANGE[a]
                    ]
                    pool.sort(key=lambda i: load_after[i])
                    picked = [lat[i + 1] for i in pool[:K]] or [L - 1] * K
                    shares = np.bincount(picked, minlength=L) + 1.0
                    prior[lb, a, t, fleet - 1] = shares / shares.sum()
    return prior


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_pessimistic_prior_is_its_definition(seed, neighbours):
    rng = np.random.default_rng(seed)
    T_minutes, L, T, N = 40, 3, 3, 4
    lat, tau = rng.integers(0, L, T_minutes), rng.integers(0, T, T_minutes)
    n = np.clip(np.cumsum(rng.integers(-1, 2, T_minutes)) + 2, 1, N)
    spot = (rng.random(T_minutes) < 0.3) & (n > 1)
    actions = label_actions(n, spot.astype(float))
    levels = np.array([10.0, 30.0, 60.0])
    got = pessimistic_prior(lat, tau, n, actions, levels, 0.1, L, N, neighbours)
    want = naive_prior(lat, tau, n, actions, levels, 0.1, L, N, neighbours)
    np.testing.assert_allclose(got, want)


def test_a_cell_nothing_is_worse_than_gets_the_slowest_bin():
    lat, tau, n = np.array([2, 2, 2]), np.array([0, 0, 0]), np.array([3, 3, 3])
    actions = label_actions(n, np.zeros(3))
    prior = pessimistic_prior(lat, tau, n, actions, np.array([10.0]), 0.06, 3, 3, 5)
    # one instance carries three times the load the log ever saw: nothing to borrow from,
    # so five neighbours in the slowest bin, plus Laplace's one per bin
    np.testing.assert_allclose(prior[0, 1, 0, 0], np.array([1, 1, 6]) / 8)
    # with three instances, the log's own two slow minutes are the worse-off ones
    np.testing.assert_allclose(prior[0, 1, 0, 2], np.array([1, 1, 3]) / 5)
    # fast minutes never come from this log's neighbours: only Laplace's pseudo-count
    assert np.all(prior[..., 0] > 0)


def test_latency_model_is_counts_plus_weighted_prior():
    counts = np.array([[0.0, 0.0], [30.0, 10.0]])
    prior = np.array([[0.2, 0.8], [0.2, 0.8]])
    P = latency_model(counts, prior, 0.5)
    np.testing.assert_allclose(P[0], [0.2, 0.8])  # never seen: the prior
    np.testing.assert_allclose(P[1], [(30 + 0.1) / 40.5, (10 + 0.4) / 40.5])
    with pytest.raises(ValueError, match="weight"):
        latency_model(counts, prior, 0.0)


def test_compose_factorises_and_keeps_the_fleet_deterministic():
    rng = np.random.default_rng(3)
    L, T, N = 2, 3, 3
    P_tau = rng.dirichlet(np.ones(T), size=T)
    P_lat = rng.dirichlet(np.ones(L), size=(L, 4, T, N))
    P = compose_transitions(P_tau, P_lat, N)
    feasible = feasible_pairs(L, T, N)
    np.testing.assert_allclose(P.sum(axis=2)[feasible], 1.0)
    assert not P[~feasible].any()
    s = state_index(1, 2, 2, T, N)
    s_next = state_index(0, 1, 3, T, N)
    assert P[s, UP, s_next] == pytest.approx(P_tau[2, 1] * P_lat[1, UP, 1, 2, 0])
    assert P[s, UP, state_index(0, 1, 2, T, N)] == 0.0  # up means 3 instances next


def test_the_uniform_prior_of_old_fails_the_safety_rules(shipped_trace, shipped_model):
    """The negative control of the safety test: the same counts with a uniform prior give a
    policy that retreats under strain in states the log visited."""
    model = shipped_model
    counts = latency_counts(
        *(
            np.digitize(shipped_trace[c], e, right=True)
            for c, e in (
                ("p95_latency_ms", model.latency_edges),
                ("request_rate", model.throughput_edges),
            )
        ),
        shipped_trace["instances"],
        label_actions(shipped_trace["instances"], shipped_trace["spot_share"]),
        model.n_latency,
        model.n_throughput,
        model.max_instances,
    )
    uniform = np.full(counts.shape, 1.0 / model.n_latency)
    P = compose_transitions(model.throughput_P, latency_model(counts, uniform, 5.0), 8)
    _, policy, _, _ = value_iteration(model.C, P, model.gamma)
    found = safety_violations(
        policy, model.visits, **safety_arguments(shipped_trace, model, Physics())
    )
    assert found, "a uniform prior should break the operator's rules somewhere"
