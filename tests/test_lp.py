"""Primal and dual LPs, Gurobi/HiGHS, and the fallback when Gurobi cannot be used."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import mdplab.lp
from mdplab import (
    LPSolution,
    SolverFallbackWarning,
    evaluate,
    policy_iteration,
    solve_dual_lp,
    solve_lp,
    warehouse,
)

V_STAR = np.array([1290, 1290, 1130, 1115]) / 49


def flow_residual(mdp, x, alpha):
    r"""sum_a x(s', a) - beta sum_{s,a} P(s'|s,a) x(s,a) - alpha(s')."""
    own = np.bincount(mdp.pair_state, weights=x, minlength=mdp.n_states)
    return own - mdp.discount * (mdp.transitions.T @ x) - alpha


@pytest.mark.parametrize("solver", ["gurobi", "highs"])
def test_primal_lp_on_the_course_model(solver):
    mdp = warehouse()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverFallbackWarning)  # 11 pairs fit any licence
        result = solve_lp(mdp, solver=solver)
    assert isinstance(result, LPSolution)
    assert result.solver == solver
    assert result.method == "lp"
    np.testing.assert_allclose(result.values, V_STAR, atol=1e-8)
    np.testing.assert_array_equal(result.policy, [4, 3, 0, 0])
    assert result.objective == pytest.approx(V_STAR.sum())
    x = result.occupation
    assert x.shape == (mdp.n_pairs,)
    assert np.all(x >= 0)
    assert np.max(np.abs(flow_residual(mdp, x, np.ones(4)))) < 1e-8
    # Complementary slackness: frequencies only on the optimal actions.
    chosen = mdp.policy_pairs([4, 3, 0, 0])
    assert np.all(x[np.setdiff1d(np.arange(mdp.n_pairs), chosen)] < 1e-9)
    assert np.all(x[chosen] >= 1.0)


@pytest.mark.parametrize("solver", ["gurobi", "highs"])
def test_dual_lp_on_the_course_model(solver):
    mdp = warehouse()
    result = solve_dual_lp(mdp, solver=solver)
    assert result.solver == solver
    assert result.method == "dual_lp"
    np.testing.assert_allclose(result.values, V_STAR, atol=1e-8)
    np.testing.assert_array_equal(result.policy, [4, 3, 0, 0])
    assert np.max(np.abs(flow_residual(mdp, result.occupation, np.ones(4)))) < 1e-8
    # Total discounted frequency is sum(alpha) / (1 - beta).
    assert result.occupation.sum() == pytest.approx(4 / 0.2)
    assert result.x is result.occupation
    assert result.objective == pytest.approx(V_STAR.sum())


def test_dual_lp_with_initial_distribution():
    mdp = warehouse()
    alpha = {0: 0.7, 1: 0.1, 2: 0.1, 3: 0.1}
    result = solve_dual_lp(mdp, initial=alpha, solver="highs")
    weights = np.array([0.7, 0.1, 0.1, 0.1])
    assert result.objective == pytest.approx(weights @ V_STAR)
    np.testing.assert_allclose(result.values, V_STAR, atol=1e-8)
    assert np.max(np.abs(flow_residual(mdp, result.occupation, weights))) < 1e-8


def test_lp_input_errors():
    mdp = warehouse()
    with pytest.raises(ValueError, match="solver must be 'gurobi' or 'highs', got 'cplex'"):
        solve_lp(mdp, solver="cplex")
    with pytest.raises(ValueError, match="solver must be 'gurobi' or 'highs'"):
        solve_dual_lp(mdp, solver="glpk")
    with pytest.raises(
        ValueError, match=r"initial weights must be positive.*state 2 has weight 0\.0"
    ):
        solve_dual_lp(mdp, initial=[1, 1, 0, 1])
    with pytest.raises(ValueError, match=r"initial must have shape \(4,\)"):
        solve_dual_lp(mdp, initial=[1, 1])


def test_model_too_large_for_the_gurobi_licence_falls_back_to_highs():
    mdp = warehouse(capacity=70)
    assert mdp.n_pairs > 2000
    reference = policy_iteration(mdp)
    with pytest.warns(SolverFallbackWarning, match=r"error 10010.*solving the LP with HiGHS"):
        result = solve_lp(mdp, solver="gurobi")
    assert result.solver == "highs"
    np.testing.assert_allclose(result.values, reference.values, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(evaluate(mdp, result.policy).values, reference.values, atol=1e-8)
    with pytest.warns(SolverFallbackWarning, match="10010"):
        dual = solve_dual_lp(mdp, solver="gurobi")
    assert dual.solver == "highs"
    np.testing.assert_allclose(dual.values, reference.values, rtol=1e-9, atol=1e-8)


def test_missing_gurobipy_falls_back_to_highs(monkeypatch):
    monkeypatch.setitem(sys.modules, "gurobipy", None)  # makes `import gurobipy` fail
    with pytest.warns(SolverFallbackWarning, match="gurobipy cannot be imported"):
        result = solve_lp(warehouse(), solver="gurobi")
    assert result.solver == "highs"
    np.testing.assert_allclose(result.values, V_STAR, atol=1e-8)
    with pytest.warns(SolverFallbackWarning, match="gurobipy cannot be imported"):
        dual = solve_dual_lp(warehouse())
    assert dual.solver == "highs"


def test_other_gurobi_errors_are_not_swallowed(monkeypatch):
    gp = pytest.importorskip("gurobipy")

    def broken(*args, **kwargs):
        raise gp.GurobiError(10003, "Invalid argument")

    monkeypatch.setattr(mdplab.lp, "_gurobi_primal", broken)
    with pytest.raises(gp.GurobiError, match="Invalid argument"):
        solve_lp(warehouse(), solver="gurobi")
