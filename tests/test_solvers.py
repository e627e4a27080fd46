"""Solvers on hand-checkable models: tie rule, stopping rules, histories, bad input."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from mdplab import (
    ConvergenceWarning,
    FiniteMDP,
    PolicyIterationStep,
    Solution,
    backward_induction,
    bellman_update,
    evaluate,
    extract_policy,
    greedy,
    modified_policy_iteration,
    policy_iteration,
    q_values,
    value_iteration,
    warehouse,
)

V_STAR = np.array([1290, 1290, 1130, 1115]) / 49


def tied_model(gap: float = 0.0) -> FiniteMDP:
    """State 0: actions 'a' and 'b' identical except cost of 'b' is 1 + gap; state 1: 'c'."""
    return FiniteMDP(
        pair_state=[0, 0, 1],
        pair_action=["a", "b", "c"],
        costs=[1.0, 1.0 + gap, 2.0],
        transitions=[[0.5, 0.5], [0.5, 0.5], [0.0, 1.0]],
        discount=0.5,
    )


# ---------------------------------------------------------------------- Bellman operator
def test_q_values_of_the_warehouse_by_hand():
    mdp = warehouse()
    v = np.array([30, 30, 26, 25.4])
    q = q_values(mdp, v)
    # Q(0, 2) = 6 + 0.8 (V1 + V0) / 2 ; Q(0, 4) = 8 + 0.8 (V3 + V2) / 2
    assert q[mdp.pair_index(0, 2)] == pytest.approx(6 + 0.4 * 60)
    assert q[mdp.pair_index(0, 4)] == pytest.approx(8 + 0.4 * 51.4)
    new_v, policy = bellman_update(mdp, v)
    np.testing.assert_array_equal(policy, [4, 3, 0, 0])
    np.testing.assert_allclose(new_v, np.minimum.reduceat(q, mdp.state_ptr[:-1]))
    np.testing.assert_array_equal(greedy(mdp, v), policy)
    np.testing.assert_array_equal(extract_policy(mdp, v), policy)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_tie_rule_prefers_first_action_in_pair_order(backend):
    v = np.array([1.0, 2.0])
    assert greedy(tied_model(0.0), v, backend=backend)[0] == "a"
    assert greedy(tied_model(1e-12), v, backend=backend)[0] == "a"  # within 1e-9 (1 + |min|)
    assert greedy(tied_model(-1e-12), v, backend=backend)[0] == "a"
    assert greedy(tied_model(-1e-6), v, backend=backend)[0] == "b"  # genuinely better


def test_policy_iteration_keeps_a_tied_current_action():
    mdp = tied_model(1e-12)
    result = policy_iteration(mdp, policy0=["b", "c"])
    np.testing.assert_array_equal(result.policy, ["b", "c"])
    assert result.iterations == 1
    assert policy_iteration(mdp).policy[0] == "a"


def test_bellman_update_rejects_bad_values():
    mdp = warehouse()
    with pytest.raises(ValueError, match=r"values must have shape \(4,\)"):
        bellman_update(mdp, [0.0, 0.0])
    with pytest.raises(ValueError, match="values must be finite; entry 1 is nan"):
        q_values(mdp, [0.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="backend must be 'numba' or 'numpy'"):
        greedy(mdp, np.zeros(4), backend="cuda")


# ---------------------------------------------------------------------- evaluation
def test_evaluate_accepts_mapping_and_both_linear_solvers():
    mdp = warehouse()
    policy = {3: 0, 2: 0, 1: 3, 0: 4}
    for linear_solver in ("auto", "dense", "sparse"):
        result = evaluate(mdp, policy, linear_solver=linear_solver)
        np.testing.assert_allclose(result.values, V_STAR, atol=1e-9)
    assert isinstance(result, Solution)
    np.testing.assert_allclose(np.asarray(result), V_STAR, atol=1e-9)


def test_evaluate_large_sparse_model_matches_dense_solve():
    mdp = warehouse(capacity=600, discount=0.95)
    policy = policy_iteration(mdp).policy
    sparse = evaluate(mdp, policy, linear_solver="sparse").values
    dense = evaluate(mdp, policy, linear_solver="dense").values
    np.testing.assert_allclose(sparse, dense, rtol=1e-11)
    # v = r_pi + beta P_pi v holds for the answer.
    pairs = mdp.policy_pairs(policy)
    residual = mdp.costs[pairs] + 0.95 * (mdp.transitions[pairs] @ sparse) - sparse
    assert np.max(np.abs(residual)) < 1e-9


def test_evaluate_rejects_infeasible_actions():
    with pytest.raises(
        ValueError,
        match=r"policy action 1 is not feasible in state 0; feasible actions: \[2, 3, 4\]",
    ):
        evaluate(warehouse(), (1, 1, 0, 0))
    with pytest.raises(ValueError, match="linear_solver must be"):
        evaluate(warehouse(), (2, 1, 0, 0), linear_solver="magic")


def test_evaluate_with_zero_discount_is_the_cost():
    mdp = warehouse(discount=0.0)
    np.testing.assert_array_equal(evaluate(mdp, (2, 1, 0, 0)).values, [6, 6, 2, 3])


# ---------------------------------------------------------------------- policy iteration
def test_policy_iteration_defaults_to_first_feasible_actions():
    result = policy_iteration(warehouse())
    np.testing.assert_array_equal(result.history[0].policy, [2, 1, 0, 0])
    assert all(isinstance(step, PolicyIterationStep) for step in result.history)
    np.testing.assert_allclose(result.values, V_STAR, atol=1e-9)


def test_policy_iteration_cap_reports_no_convergence():
    result = policy_iteration(warehouse(), max_iter=1)
    assert not result.converged
    np.testing.assert_array_equal(result.policy, [2, 1, 0, 0])
    np.testing.assert_allclose(result.values, [30, 30, 26, 25.4], atol=1e-9)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        policy_iteration(warehouse(), max_iter=0)


# ---------------------------------------------------------------------- value iteration
def test_value_iteration_stops_at_first_step_under_threshold():
    mdp = warehouse()
    eps = 1e-3
    result = value_iteration(mdp, epsilon=eps)
    threshold = eps * 0.2 / 1.6
    diffs = result.history
    assert result.iterations == len(diffs)
    assert diffs[-1] < threshold
    assert np.all(diffs[:-1] >= threshold)
    assert result.converged
    assert result.epsilon == eps
    assert np.max(np.abs(result.values - V_STAR)) < eps / 2
    # Rerunning for exactly that many sweeps reproduces the values.
    again = value_iteration(mdp, max_iter=result.iterations)
    np.testing.assert_array_equal(again.values, result.values)
    assert not again.converged


def test_value_iteration_max_iter_counts_sweeps_exactly():
    mdp = warehouse()
    v = np.zeros(4)
    for _ in range(7):
        v, _ = bellman_update(mdp, v)
    result = value_iteration(mdp, max_iter=7)
    assert result.iterations == 7
    np.testing.assert_array_equal(result.values, v)
    np.testing.assert_array_equal(result.policy, greedy(mdp, v))
    zero = value_iteration(mdp, max_iter=0, v0={0: 1, 1: 1, 2: 1, 3: 1})
    np.testing.assert_array_equal(zero.values, np.ones(4))
    assert zero.iterations == 0


def test_value_iteration_default_epsilon_and_cap_combination():
    mdp = warehouse()
    result = value_iteration(mdp)
    assert result.epsilon == 1e-6
    assert result.converged
    with pytest.warns(ConvergenceWarning, match="not guaranteed to be epsilon-optimal"):
        capped = value_iteration(mdp, epsilon=1e-9, max_iter=5)
    assert capped.iterations == 5
    assert not capped.converged


def test_value_iteration_with_zero_discount_takes_one_sweep():
    mdp = warehouse(discount=0.0)
    result = value_iteration(mdp, epsilon=1e-9)
    assert result.iterations == 1
    np.testing.assert_array_equal(result.values, [6, 6, 2, 3])
    np.testing.assert_array_equal(result.policy, [2, 1, 0, 0])


def test_value_iteration_with_tiny_epsilon_stops_by_the_a_priori_bound():
    mdp = warehouse(capacity=30, discount=0.9)
    with warnings.catch_warnings():
        # Either rounding reaches an exact fixed point (converged) or the cap fires (warning).
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = value_iteration(mdp, epsilon=1e-300)
    threshold = 1e-300 * 0.1 / 1.8
    bound = 1 + np.log(threshold / result.history[0]) / np.log(0.9)
    assert result.iterations <= 1.1 * bound + 11
    assert result.converged == (result.history[-1] < threshold)


@pytest.mark.parametrize("solver", [value_iteration, modified_policy_iteration])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": 0.0}, "epsilon must be > 0, got 0.0"),
        ({"epsilon": -1e-3}, "epsilon must be > 0"),
        ({"epsilon": float("nan")}, "epsilon must be finite"),
        ({"max_iter": -1}, "max_iter must be >= 0, got -1"),
        ({"max_iter": 2.5}, "max_iter must be an integer"),
        ({"v0": [0.0, 1.0]}, r"v0 must have shape \(4,\)"),
    ],
)
def test_iterative_solvers_reject_nonsense(solver, kwargs, message):
    with pytest.raises(ValueError, match=message):
        solver(warehouse(), **kwargs)


# ---------------------------------------------------------------------- modified PI
def test_modified_policy_iteration_with_k0_is_value_iteration():
    mdp = warehouse(capacity=10, discount=0.9)
    vi = value_iteration(mdp, epsilon=1e-7)
    mpi = modified_policy_iteration(mdp, k=0, epsilon=1e-7)
    assert mpi.iterations == vi.iterations
    np.testing.assert_array_equal(mpi.values, vi.values)
    np.testing.assert_array_equal(mpi.policy, vi.policy)


def test_modified_policy_iteration_needs_fewer_improvement_steps():
    mdp = warehouse(capacity=10, discount=0.95)
    vi = value_iteration(mdp, epsilon=1e-7)
    mpi = modified_policy_iteration(mdp, k=10, epsilon=1e-7)
    assert mpi.converged
    assert mpi.iterations < vi.iterations / 3
    exact = policy_iteration(mdp)
    assert np.max(np.abs(mpi.values - exact.values)) < 1e-7 / 2
    assert np.max(np.abs(evaluate(mdp, mpi.policy).values - exact.values)) < 1e-7
    with pytest.raises(ValueError, match="k must be >= 0"):
        modified_policy_iteration(mdp, k=-1)


def test_modified_policy_iteration_max_iter_only():
    result = modified_policy_iteration(warehouse(), k=3, max_iter=4)
    assert result.iterations == 4
    assert len(result.history) == 4
    assert not result.converged


# ---------------------------------------------------------------------- backward induction
def production_stage(demand: int) -> FiniteMDP:
    """Deterministic stage: stock 0..3, produce x, stock s + x - demand in 0..3."""
    pairs = []
    for s in range(4):
        for x in range(0, 7):
            nxt = s + x - demand
            if 0 <= nxt <= 3:
                pairs.append((s, x, 3.0 * (x > 0) + x + 0.5 * nxt, {nxt: 1.0}))
    return FiniteMDP.from_pairs(pairs, discount=0.5, state_labels=range(4))


def test_backward_induction_deterministic_dp_matches_enumeration():
    demands = [2, 1, 3, 0]
    stages = [production_stage(d) for d in demands]
    terminal = np.array([0.0, -0.5, -1.0, -1.5])
    result = backward_induction(stages, terminal=terminal, discount=1.0)
    assert result.values.shape == (5, 4)
    assert result.policy.shape == (4, 4)
    assert result.horizon == 4
    np.testing.assert_array_equal(result.values[4], terminal)
    for s0 in range(4):
        best = np.inf
        for plan in itertools.product(range(7), repeat=4):
            s, total = s0, 0.0
            for n, x in enumerate(plan):
                nxt = s + x - demands[n]
                if not 0 <= nxt <= 3:
                    break
                total += 3.0 * (x > 0) + x + 0.5 * nxt
                s = nxt
            else:
                best = min(best, total + terminal[s])
        assert result.values[0, s0] == pytest.approx(best)
    # Following the decisions from any state reproduces f_0.
    for s0 in range(4):
        s, total = s0, 0.0
        for n in range(4):
            x = result.decisions[n, s]
            total += stages[n].cost(s, x)
            s = s + x - demands[n]
        assert total + terminal[s] == pytest.approx(result.values[0, s0])


def test_backward_induction_is_value_iteration_from_the_terminal_values():
    mdp = warehouse()
    terminal = {0: 5.0, 1: 4.0, 2: 3.0, 3: 2.0}
    result = backward_induction(mdp, 12, terminal=terminal)
    vi = value_iteration(mdp, max_iter=12, v0=terminal)
    np.testing.assert_array_equal(result.values[0], vi.values)
    for n in range(12):
        np.testing.assert_array_equal(result.policy[n], greedy(mdp, result.values[n + 1]))
    assert result.discount == 0.8
    long = backward_induction(mdp, 200)
    np.testing.assert_allclose(long.values[0], V_STAR, atol=1e-9)
    np.testing.assert_array_equal(long.policy[0], [4, 3, 0, 0])


def test_backward_induction_zero_horizon_and_errors():
    mdp = warehouse()
    empty = backward_induction(mdp, 0, terminal=[1, 2, 3, 4])
    assert empty.values.shape == (1, 4)
    assert empty.policy.shape == (0, 4)
    with pytest.raises(ValueError, match="horizon is required"):
        backward_induction(mdp)
    with pytest.raises(ValueError, match="horizon must be >= 0"):
        backward_induction(mdp, -1)
    with pytest.raises(ValueError, match=r"discount must lie in \[0, 1\], got 1.5"):
        backward_induction(mdp, 3, discount=1.5)
    with pytest.raises(ValueError, match=r"terminal must have shape \(4,\)"):
        backward_induction(mdp, 3, terminal=[0.0])
    with pytest.raises(ValueError, match="horizon is 2 but 3 stage models"):
        backward_induction([mdp, mdp, mdp], 2)
    with pytest.raises(ValueError, match="stage 1 has different states"):
        backward_induction([mdp, warehouse(capacity=4)])
    with pytest.raises(ValueError, match="stage 1 is not a FiniteMDP"):
        backward_induction([mdp, "x"])
    with pytest.raises(ValueError, match="non-empty sequence"):
        backward_induction([])


def test_results_are_frozen():
    result = value_iteration(warehouse())
    with pytest.raises(AttributeError):
        result.values = np.zeros(4)


def test_no_warnings_on_the_happy_path():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_iteration(warehouse())
        value_iteration(warehouse(), epsilon=1e-10)
        modified_policy_iteration(warehouse(), epsilon=1e-10)
