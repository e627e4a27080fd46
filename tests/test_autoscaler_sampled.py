"""Posterior draws of P given a recent window, and the sampled study against robust VI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdplab.autoscaler import DOWN, HOLD, SPOT, UP, build_model, value_iteration
from mdplab.autoscaler.model import ALPHA, PRIOR_WEIGHT
from mdplab.autoscaler.robust import robust_value_iteration
from mdplab.autoscaler.sampled import (
    DrawOutcome,
    dirichlet_rows,
    policy_value,
    report,
    robust_policy_value,
    row_distances,
    sampled_study,
    window_concentrations,
    window_posterior,
)

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def trace(shipped_trace):
    return shipped_trace


@pytest.fixture(scope="module")
def model(shipped_model):
    return shipped_model


@pytest.fixture(scope="module")
def day(trace, model):
    """The posterior given the last day of the shipped trace."""
    return window_posterior(trace, model, 1440)


@pytest.fixture(scope="module")
def study(trace, model, day):
    return sampled_study(trace, model, draws=5, window_minutes=1440, seed=7, posterior=day)


def random_trace(seed: int, minutes: int) -> dict[str, np.ndarray]:
    """A small trace with every column build_model reads, fleets moving by at most one."""
    rng = np.random.default_rng(seed)
    n = np.clip(3 + np.cumsum(rng.integers(-1, 2, minutes)), 1, 8)
    spot = np.where((rng.random(minutes) < 0.3) & (n > 1), (n - 1) / n, 0.0)
    spot[1:][np.diff(n) != 0] = 0.0  # spot only when the fleet holds
    return {
        "p95_latency_ms": rng.uniform(100, 400, minutes),
        "request_rate": rng.uniform(5, 130, minutes),
        "instances": n,
        "spot_share": spot,
        "query_length": rng.uniform(15, 30, minutes),
        "retrieval_confidence": rng.uniform(0.3, 0.9, minutes),
    }


# ---------------------------------------------------------------- Dirichlet rows


def test_dirichlet_rows_by_hand():
    rng = np.random.default_rng(0)
    a = np.array([[[2.0, 0.0, 1.0], [0.0, 0.0, 5.0]]])
    p = dirichlet_rows(a, rng)
    assert p.shape == a.shape
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    assert np.all(p[a == 0] == 0) and np.all(p[a > 0] > 0)
    np.testing.assert_array_equal(p[0, 1], [0.0, 0.0, 1.0])  # one coordinate: a point mass
    # Gamma(1e-300) variates underflow to 0: the row's mass goes to its largest concentration
    np.testing.assert_array_equal(dirichlet_rows(np.array([1e-300, 2e-300]), rng), [0.0, 1.0])
    for bad in (np.array([1.0, -0.1]), np.array([[1.0, 1.0], [0.0, 0.0]])):
        with pytest.raises(ValueError, match="concentrations"):
            dirichlet_rows(bad, rng)
    with pytest.raises(ValueError, match="scale"):
        dirichlet_rows(a, rng, scale=0.0)


def test_dirichlet_rows_mean_and_variance():
    # Dir(a): mean a / A, variance m (1 - m) / (A + 1); scale k: variance m (1 - m) / (k A + 1)
    a = np.array([3.0, 1.0, 0.5, 0.5])
    m = a / a.sum()
    for scale in (1.0, 20.0):
        draws = dirichlet_rows(np.tile(a, (20_000, 1)), np.random.default_rng(1), scale)
        np.testing.assert_allclose(draws.mean(axis=0), m, atol=0.01)
        np.testing.assert_allclose(draws.var(axis=0), m * (1 - m) / (scale * a.sum() + 1), rtol=0.1)


# ---------------------------------------------------------------- the window posterior


def test_window_concentrations_and_mean_by_hand():
    # 2 latency bins, 2 throughput bins, up to 2 instances; a uniform latency prior
    lat, tau, n = [0, 1, 1, 0, 1], [0, 1, 1, 0, 0], [1, 2, 2, 2, 1]
    actions = [UP, HOLD, SPOT, DOWN]
    prior = np.full((2, 4, 2, 2, 2), 0.5)
    post = window_concentrations(lat, tau, n, actions, prior, 3, 2, alpha=0.5, prior_weight=0.5)
    # the last 3 minutes: (1, 1, 2) -spot-> (0, 0, 2) -down-> (1, 0, 1)
    np.testing.assert_array_equal(post.demand, [[1.5, 0.5], [1.5, 0.5]])  # moves 1->0, 0->0
    expected = np.full((2, 4, 2, 2, 2), 0.25)
    expected[1, SPOT, 0, 1, 0] += 1  # from slow, spot: next minute tau 0, 2 instances, fast
    expected[0, DOWN, 0, 0, 1] += 1  # from fast, down: next minute tau 0, 1 instance, slow
    np.testing.assert_array_equal(post.latency, expected)
    assert post.window_minutes == 3 and post.max_instances == 2
    P = post.mean()
    # s = (l T + tau) N + n - 1: (1, 1, 2) is 7; spot keeps 2 instances; (0, 0, 2) is 1
    # P_tau(0 | 1) = 1.5 / 2 and P_L(0 | 1, spot, 0, 2) = 1.25 / 1.5
    assert P[7, SPOT, 1] == pytest.approx(0.75 * 1.25 / 1.5)
    assert P[7, SPOT, 0] == 0.0  # a fleet of one is not reachable by spot from two
    np.testing.assert_allclose(P[7, SPOT].sum(), 1.0)
    for bad in (1, 6):
        with pytest.raises(ValueError, match="window_minutes"):
            window_concentrations(lat, tau, n, actions, prior, bad, 2)


def test_whole_trace_posterior_mean_is_the_model(trace, model):
    # the model's P is the posterior mean given the whole log
    post = window_posterior(trace, model, trace["instances"].size)
    throughput_P, latency_P = post.mean_factors()
    np.testing.assert_allclose(throughput_P, model.throughput_P, atol=1e-12)
    np.testing.assert_allclose(latency_P, model.latency_P, atol=1e-12)
    np.testing.assert_allclose(post.mean(), model.P, atol=1e-12)


def check_valid_draw(Q: np.ndarray, model) -> None:
    feasible = np.isfinite(model.C)
    np.testing.assert_allclose(Q.sum(axis=2)[feasible], 1.0, atol=1e-12)
    assert np.all(Q[~feasible] == 0) and np.all(Q >= 0)
    assert not np.any(Q[~model.support()])  # inside the successor blocks
    assert not np.any((Q > 0) & (model.P == 0))  # never where the model has no mass


def test_draws_are_valid_on_the_shipped_trace(model, day):
    rng = np.random.default_rng(3)
    for _ in range(3):
        check_valid_draw(day.draw(rng), model)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(2, 300), st.integers(0, 2**32 - 1))
def test_draws_are_valid_on_random_traces(trace_seed, window, draw_seed):
    small = random_trace(trace_seed, 300)
    small_model = build_model(small)
    post = window_posterior(small, small_model, window)
    check_valid_draw(post.draw(np.random.default_rng(draw_seed)), small_model)
    assert post.demand.sum() == pytest.approx(window - 1 + ALPHA * 25)  # moves + alpha T^2
    assert post.latency.sum() == pytest.approx(window - 1 + PRIOR_WEIGHT * 800)  # + w cells


def test_draws_are_reproducible_by_seed(day):
    first, again = day.draw(np.random.default_rng(5)), day.draw(np.random.default_rng(5))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - day.draw(np.random.default_rng(6))).max() > 0.01


def test_draws_concentrate_as_the_counts_grow(trace, model, day):
    visited_pairs = model.counts.sum(axis=2) > 0

    def spread(post, scale=1.0, draws=3):
        mean = post.mean()
        rng = np.random.default_rng(11)
        return np.mean(
            [row_distances(post.draw(rng, scale), mean)[visited_pairs] for _ in range(draws)]
        )

    spreads = [spread(day, scale) for scale in (1.0, 1e2, 1e4)]
    assert spreads[0] > 3 * spreads[1] > 9 * spreads[2]  # roughly 1 / sqrt(scale)
    # huge pseudo-counts: a draw is the posterior mean; of the whole trace: the model's P
    whole = window_posterior(trace, model, trace["instances"].size)
    huge = whole.draw(np.random.default_rng(0), scale=1e10)
    np.testing.assert_allclose(huge, model.P, atol=1e-3)
    # more minutes in the window, less spread (6 hours, 1 day, the whole trace)
    quarter = window_posterior(trace, model, 360)
    assert spread(quarter) > spread(day) > spread(whole)


# ---------------------------------------------------------------- exact and robust values


def test_policy_value_by_hand():
    # two states; policy 0 in state 0 moves to 1 (cost 1), state 1 absorbs (cost 2)
    C = np.array([[1.0, 5.0], [2.0, np.inf]])
    P = np.zeros((2, 2, 2))
    P[0, 0, 1] = P[0, 1, 0] = P[1, 0, 1] = 1.0
    np.testing.assert_allclose(policy_value(C, P, np.array([0, 0]), 0.5), [1 + 0.5 * 4, 4])
    with pytest.raises(ValueError, match="infeasible"):
        policy_value(C, P, np.array([0, 1]), 0.5)


def three_states():
    """s0 chooses: a0 (free) reaches the good s1 but may slip to the bad s2 (10 a minute);
    a1 costs 0.1 and reaches s1 surely. gamma 0.5: V(s1) = 0, V(s2) = 20."""
    C = np.array([[0.0, 0.1], [0.0, np.inf], [10.0, np.inf]])
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 1] = P[1, 0, 1] = P[2, 0, 2] = 1.0
    support = P > 0
    support[0, 0, 2] = True  # a0 can slip
    return C, P, support


def test_robust_bounds_by_hand():
    C, P, support = three_states()
    delta, gamma, tol = 0.1, 0.5, 1e-10
    V_star, pi_star, _, _ = value_iteration(C, P, gamma, tol)
    V_rob, pi_rob, _ = robust_value_iteration(C, P, gamma, delta, tol, support)
    assert pi_star[0] == 0 and V_star[0] == pytest.approx(0.0)
    # robust: a0 is worth 0.5 * (delta / 2) * 20 = 0.5 > 0.1, so the robust policy takes a1
    assert pi_rob[0] == 1 and V_rob[0] == pytest.approx(0.1)
    V_rob_star, _ = robust_policy_value(C, P, pi_star, gamma, delta, tol, support)
    assert V_rob_star[0] == pytest.approx(0.5)
    q = P.copy()
    q[0, 0, 1], q[0, 0, 2] = 0.95, 0.05  # L1 distance 0.1: on the ball's edge
    assert row_distances(q, P)[0, 0] == pytest.approx(delta)
    V_q, _, _, _ = value_iteration(C, q, gamma, tol)
    V_pi = policy_value(C, q, pi_star, gamma)
    assert V_q[0] <= V_rob[0] + 1e-9 and V_pi[0] <= V_rob_star[0] + 1e-9  # the two theorems
    assert V_pi[0] == pytest.approx(V_rob_star[0])  # attained on the edge: the bound is sharp
    assert V_pi[0] > V_rob[0] + 0.3  # but V_delta does not bound the nominal policy
    q[0, 0, 1], q[0, 0, 2] = 0.9, 0.1  # outside the ball: the policy's bound fails
    assert policy_value(C, q, pi_star, gamma)[0] > V_rob_star[0] + 0.4


@st.composite
def mdps_and_balls(draw):
    """A random (C, P, support, gamma, delta) and a q inside the ball: q = (1 - e) p + e r
    with r a random distribution on the support and e = delta / 2, so ||q - p||_1 <= delta."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, m = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    C = rng.uniform(0, 10, (n, m))
    support = rng.random((n, m, n)) < 0.6
    support[np.arange(n), :, rng.integers(0, n, n)] = True
    P = rng.random((n, m, n)) * support
    P[..., :] += support * 1e-3
    P /= P.sum(axis=2, keepdims=True)
    delta = draw(st.floats(0.0, 1.0))
    r = rng.random((n, m, n)) ** 3 * support + support * 1e-9
    r /= r.sum(axis=2, keepdims=True)
    q = (1 - delta / 2) * P + delta / 2 * r
    return C, P, support, draw(st.sampled_from([0.5, 0.9, 0.95])), delta, q


@SETTINGS
@given(mdps_and_balls())
def test_robust_value_bounds_draws_inside_the_ball(case):
    C, P, support, gamma, delta, q = case
    assert np.all(row_distances(q, P) <= delta + 1e-12)
    tol = 1e-9
    V_rob, pi_rob, _ = robust_value_iteration(C, P, gamma, delta, tol, support)
    V_q, _, _, _ = value_iteration(C, q, gamma, tol)
    pi_star = value_iteration(C, P, gamma, tol)[1]
    V_rob_star, _ = robust_policy_value(C, P, pi_star, gamma, delta, tol, support)
    slack = 1e-6
    assert np.all(V_q <= V_rob + slack)
    assert np.all(policy_value(C, q, pi_rob, gamma) <= V_rob + slack)
    assert np.all(policy_value(C, q, pi_star, gamma) <= V_rob_star + slack)
    assert np.all(V_rob_star >= V_rob - slack)  # the robust optimum is the best worst case


def test_robust_value_bounds_shipped_draws_shrunk_into_the_ball(model, day):
    # posterior draws pulled toward P until every row lies in the ball of radius 0.1
    C, P, gamma, support, delta, tol = model.C, model.P, model.gamma, model.support(), 0.1, 0.01
    V_rob, pi_rob, _ = robust_value_iteration(C, P, gamma, delta, tol, support)
    slack = 2 * gamma * tol / (1 - gamma)
    rng = np.random.default_rng(2)
    for _ in range(3):
        q = (1 - delta / 2) * P + delta / 2 * day.draw(rng)
        assert row_distances(q, P).max() <= delta + 1e-12
        V_q, _, _, _ = value_iteration(C, q, gamma, tol)
        assert np.all(V_q <= V_rob + slack)
        assert np.all(policy_value(C, q, pi_rob, gamma) <= V_rob + slack)


# ---------------------------------------------------------------- the study


def test_study_on_the_shipped_trace(model, study):
    visited_pairs = model.counts.sum(axis=2) > 0
    assert len(study.draws) == 5 and study.window_minutes == 1440
    distances = study.row_l1[:, visited_pairs]
    assert study.delta == pytest.approx(np.quantile(distances, 0.9, method="higher"))
    assert study.delta in distances
    assert np.mean(study.column("rows_in_ball")) >= 0.9  # the quantile, by construction
    assert study.nominal_violations == 0  # as in the acceptance figures
    assert np.all(study.column("regret") >= -study.slack)  # re-solving never loses
    assert np.all(study.column("value_sup") >= study.column("value_mean"))
    assert np.all(study.column("action_changes") <= model.visited.sum())
    assert study.robust_gap_mean >= 0 and study.robust_policy_gap_mean >= study.robust_gap_mean
    for d in study.draws:
        if d.certified:  # every row the robust policy uses is inside: a theorem
            assert d.optimal_over_robust <= study.slack
    text = report(study)
    assert "window mean" in text and "robust radius delta" in text
    assert len(text.splitlines()) == 1 + 1 + 5 + 3 + 4


def test_study_is_reproducible(trace, model, day, study):
    again = sampled_study(trace, model, draws=5, window_minutes=1440, seed=7, posterior=day)
    assert again == study
    assert isinstance(again.window_mean, DrawOutcome)


def test_study_with_huge_pseudo_counts_is_the_window_mean(trace, model, day):
    tight = sampled_study(trace, model, draws=2, seed=1, scale=1e10, posterior=day, delta=0.0)
    assert tight.delta == 0.0 and tight.seed == 1 and tight.scale == 1e10
    for d in tight.draws:
        assert d.value_sup == pytest.approx(tight.window_mean.value_sup, abs=0.05)
        assert d.nominal_mean == pytest.approx(tight.window_mean.nominal_mean, abs=0.05)
        assert d.violations == tight.window_mean.violations
    with pytest.raises(ValueError, match="draw"):
        sampled_study(trace, model, draws=0, posterior=day)
