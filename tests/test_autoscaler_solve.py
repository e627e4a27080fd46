"""Value iteration on the autoscaler arrays: by hand, against mdplab's exact solvers, robust."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from mdplab import FiniteMDP, evaluate, policy_iteration
from mdplab.autoscaler import (
    robust_q_values,
    robust_value_iteration,
    value_iteration,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model(shipped_model):
    return shipped_model


@st.composite
def dense_mdps(draw, max_states: int = 5, max_actions: int = 3):
    """Random (C, P, gamma): some pairs infeasible (inf cost, zero row), every state has one."""
    n, m = draw(st.integers(1, max_states)), draw(st.integers(1, max_actions))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C = rng.uniform(0, 10, (n, m))
    feasible = rng.random((n, m)) < 0.7
    feasible[np.arange(n), rng.integers(0, m, n)] = True
    P = rng.random((n, m, n)) * (rng.random((n, m, n)) < 0.6)
    P[..., 0] += 1e-3  # no empty row
    P /= P.sum(axis=2, keepdims=True)
    C[~feasible], P[~feasible] = np.inf, 0.0
    return C, P, draw(st.sampled_from([0.0, 0.5, 0.9, 0.95]))


# ------------------------------------------------------------------ nominal
def test_value_iteration_by_hand():
    # One state, two identical actions of cost 1, gamma 1/2: V_k = 2 (1 - 2^-k), changes
    # 2^-(k-1); the first change below 0.01 is 2^-7, after sweep 8.
    C, P = np.ones((1, 2)), np.ones((1, 2, 1))
    V, policy, sweeps, errors = value_iteration(C, P, gamma=0.5, tol=0.01)
    assert sweeps == 8
    np.testing.assert_allclose(V, [2 * (1 - 2**-8)])
    np.testing.assert_allclose(errors, 2.0 ** -np.arange(8))
    assert policy.tolist() == [0]  # smallest action among ties


def test_value_iteration_skips_infeasible_actions_and_starts_from_v0():
    C = np.array([[np.inf, 1.0, 0.5]])
    P = np.array([[[0.0], [1.0], [1.0]]])
    V, policy, sweeps, _ = value_iteration(C, P, gamma=0.5, tol=1e-9, V0=np.array([1.0]))
    assert policy.tolist() == [2]
    np.testing.assert_allclose(V, [1.0], atol=1e-8)
    V, _, sweeps, errors = value_iteration(C, P, gamma=0.5, tol=0.01, V0=np.array([1.0]))
    assert sweeps == 1 and errors.tolist() == [0.0]  # V0 is the fixed point already


@SETTINGS
@given(dense_mdps())
def test_value_iteration_meets_its_bound_on_random_models(mdp):
    C, P, gamma = mdp
    tol = 0.01
    V, policy, sweeps, errors = value_iteration(C, P, gamma, tol)
    assert errors[-1] < tol and np.all(errors[:-1] >= tol) and len(errors) == sweeps
    finite = FiniteMDP.from_dense(C, P, gamma)
    bound = gamma * tol / (1 - gamma) + 1e-9
    optimal = policy_iteration(finite).values
    assert np.max(np.abs(V - optimal)) <= bound
    assert np.max(np.abs(evaluate(finite, policy).values - V)) <= bound
    assert np.all(np.isfinite(C[np.arange(len(V)), policy]))


def test_value_iteration_on_the_shipped_model(model):
    V, policy, sweeps, errors = value_iteration(model.C, model.P, model.gamma, 0.01)
    assert 100 <= sweeps <= 140
    finite = FiniteMDP.from_dense(model.C, model.P, model.gamma)
    bound = model.gamma * 0.01 / (1 - model.gamma)  # 0.19
    V_policy = evaluate(finite, policy).values
    V_star = policy_iteration(finite).values
    assert np.max(np.abs(V_policy - V)) <= bound
    assert np.max(np.abs(V - V_star)) <= bound
    assert np.all(V_policy >= V_star - 1e-9) and np.max(V_policy - V_star) <= 2 * bound
    # the sweeps shrink geometrically at least at the rate gamma
    assert np.all(errors[1:] <= model.gamma * errors[:-1] + 1e-9)


# ------------------------------------------------------------------ robust
def test_robust_inner_problem_by_hand():
    # p = (0.5, 0.3, 0.2) on values (0, 10, 20); delta = 0.4 moves 0.2 from the cheapest
    # successor to the dearest: q = (0.3, 0.3, 0.4), expected value 3 + 8 = 11 (nominal 7).
    C, P = np.zeros((1, 1)), np.array([[[0.5, 0.3, 0.2]]])
    V = np.array([0.0, 10.0, 20.0])
    support = P > 0
    assert robust_q_values(C, P, V, 1.0, 0.0, support)[0, 0] == pytest.approx(7.0)
    assert robust_q_values(C, P, V, 1.0, 0.4, support)[0, 0] == pytest.approx(11.0)
    # delta = 1.2 moves 0.6: all of the 0.5, then 0.1 of the 0.3: q = (0, 0.2, 0.8) -> 18
    assert robust_q_values(C, P, V, 1.0, 1.2, support)[0, 0] == pytest.approx(18.0)
    # mass may go to a successor of zero probability only when the support allows it
    P0 = np.array([[[0.5, 0.5, 0.0]]])
    assert robust_q_values(C, P0, V, 1.0, 0.4, P0 > 0)[0, 0] == pytest.approx(7.0)
    assert robust_q_values(C, P0, V, 1.0, 0.4, np.ones_like(P0, bool))[0, 0] == pytest.approx(9.0)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 2.0), st.integers(2, 6))
def test_robust_inner_problem_is_the_linear_programs_optimum(seed, delta, n):
    rng = np.random.default_rng(seed)
    support = rng.random(n) < 0.7
    support[0] = True
    p = rng.random(n) * support * (rng.random(n) < 0.8)
    p[0] += 1e-3
    p /= p.sum()
    V = rng.normal(0, 10, n)
    greedy = robust_q_values(np.zeros((1, 1)), p[None, None], V, 1.0, delta, support[None, None])
    # max V q  s.t.  q >= 0, sum q = 1, q = 0 off the support, sum |q - p| <= delta
    # variables (q, u) with u >= |q - p|
    c = np.concatenate([-V, np.zeros(n)])
    eye = np.eye(n)
    A_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, n)), np.ones((1, n))]])
    b_ub = np.concatenate([p, -p, [delta]])
    A_eq = np.concatenate([np.ones(n), np.zeros(n)])[None]
    bounds = [(0, None if s else 0) for s in support] + [(0, None)] * n
    # HiGHS's default feasibility tolerance (1e-7) let it overstep a budget delta of 6e-8
    # and overstate the optimum by 8e-7; with 1e-10 it matches the closed form exactly.
    tight = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    lp = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0], bounds=bounds, options=tight)
    assert lp.status == 0
    assert greedy[0, 0] == pytest.approx(-lp.fun, abs=1e-7)


@SETTINGS
@given(dense_mdps())
def test_robust_value_iteration_is_nominal_at_zero_and_grows_with_delta(mdp):
    C, P, gamma = mdp
    V, policy, sweeps, _ = value_iteration(C, P, gamma, 1e-6)
    V0, policy0, sweeps0 = robust_value_iteration(C, P, gamma, 0.0, 1e-6)
    np.testing.assert_allclose(V0, V, atol=1e-9)
    assert sweeps0 == sweeps and np.array_equal(policy0, policy)
    previous = V0
    for delta in (0.1, 0.5, 1.0, 2.0):
        V_delta, _, _ = robust_value_iteration(C, P, gamma, delta, 1e-6)
        assert np.all(V_delta >= previous - 1e-6)
        previous = V_delta


def test_robust_value_iteration_on_the_shipped_model(model):
    V, policy, sweeps, _ = value_iteration(model.C, model.P, model.gamma)
    support = model.support()
    V0, policy0, sweeps0 = robust_value_iteration(model.C, model.P, model.gamma, 0.0, 0.01, support)
    np.testing.assert_allclose(V0, V, atol=1e-9)
    assert np.array_equal(policy0, policy) and sweeps0 == sweeps
    means = [V.mean()]
    for delta in (0.02, 0.05, 0.1):
        V_delta, _, _ = robust_value_iteration(model.C, model.P, model.gamma, delta, 0.01, support)
        assert np.all(V_delta >= V - 0.2)  # both within 0.19 of their fixed points
        means.append(V_delta.mean())
    assert means == sorted(means) and means[-1] > means[0] + 50
    with pytest.raises(ValueError, match="delta"):
        robust_value_iteration(model.C, model.P, model.gamma, 2.5)
