"""Property-based checks on random small MDPs and random warehouses.

All solvers must agree on the optimal values and return optimal policies; the numba kernel
must match the numpy reference; value iteration must keep its epsilon guarantee.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdplab import (
    FiniteMDP,
    backward_induction,
    bellman,
    bellman_update,
    evaluate,
    greedy,
    modified_policy_iteration,
    policy_iteration,
    solve_dual_lp,
    solve_lp,
    value_iteration,
    warehouse,
)
from mdplab.bellman import Sweeper, kernels, reference_sweep, uniform_width

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def random_mdps(
    draw, max_states: int = 6, max_actions: int = 4, densities: tuple[float, ...] = (0.3, 0.6, 1.0)
) -> FiniteMDP:
    """Random sizes, feasible action sets, costs, sparse transition rows and discount.

    Sometimes a pair is duplicated under another action label so that exact ties and
    near-ties (inside the tie tolerance) occur.
    """
    n = draw(st.integers(1, max_states))
    counts = draw(st.lists(st.integers(1, max_actions), min_size=n, max_size=n))
    seed = draw(st.integers(0, 2**32 - 1))
    beta = draw(st.floats(0.0, 0.99, exclude_max=True))
    density = draw(st.sampled_from(densities))
    with_ties = draw(st.booleans())
    rng = np.random.default_rng(seed)
    n_pairs = sum(counts)
    # Strictly positive weights when density is 1, so that every row has n entries.
    weights = (rng.random((n_pairs, n)) + 1e-3) * (rng.random((n_pairs, n)) < density)
    weights[np.arange(n_pairs), rng.integers(0, n, n_pairs)] += 0.1  # no empty row
    rows = weights / weights.sum(axis=1, keepdims=True)
    costs = np.round(rng.uniform(-10, 10, n_pairs), 3)
    pair_state = np.repeat(np.arange(n), counts)
    # Action labels: distinct per state, in random (not sorted) order.
    actions = np.concatenate([rng.permutation(10)[:c] for c in counts])
    if with_ties:
        # A copy of a pair, placed first or last in its state, with the same cost or one a
        # hair (1e-11, far inside the tie tolerance) above or below.
        p = int(rng.integers(n_pairs))
        s = pair_state[p]
        free = np.setdiff1d(np.arange(10), actions[pair_state == s])
        side = "left" if draw(st.booleans()) else "right"
        insert = int(np.searchsorted(pair_state, s, side=side))
        nudge = draw(st.sampled_from([0.0, 1e-11, -1e-11]))
        pair_state = np.insert(pair_state, insert, s)
        actions = np.insert(actions, insert, free[0])
        costs = np.insert(costs, insert, costs[p] + nudge)
        rows = np.insert(rows, insert, rows[p], axis=0)
    return FiniteMDP(pair_state, actions, costs, sp.csr_matrix(rows), beta)


@st.composite
def random_warehouses(draw) -> FiniteMDP:
    capacity = draw(st.integers(0, 7))
    low = draw(st.integers(0, 3))
    spread = draw(st.integers(0, capacity))
    support = sorted(
        {low, low + spread} | set(draw(st.lists(st.integers(low, low + spread), max_size=3)))
    )
    raw = draw(st.lists(st.integers(1, 20), min_size=len(support), max_size=len(support)))
    probs = np.array(raw, dtype=float) / sum(raw)
    return warehouse(
        capacity=capacity,
        setup_cost=draw(st.floats(0, 10)),
        unit_cost=draw(st.floats(-2, 5)),
        holding_cost=draw(st.floats(0, 3)),
        demand=dict(zip(support, probs.tolist(), strict=True)),
        discount=draw(st.floats(0.0, 0.97)),
        holding_on=draw(st.sampled_from(["start", "end"])),
    )


def scale(v: np.ndarray) -> float:
    return 1.0 + float(np.max(np.abs(v)))


def check_all_solvers_agree(mdp: FiniteMDP) -> None:
    exact = policy_iteration(mdp)
    assert exact.converged
    v_star = exact.values
    tol = 1e-9 * scale(v_star) / (1 - mdp.discount)
    # V* is the fixed point of T and PI's policy is greedy for it.
    tv, _ = bellman_update(mdp, v_star)
    assert np.max(np.abs(tv - v_star)) < tol
    np.testing.assert_allclose(evaluate(mdp, exact.policy).values, v_star, rtol=0, atol=tol)

    eps = 1e-7
    for approx in (
        value_iteration(mdp, epsilon=eps),
        modified_policy_iteration(mdp, k=5, epsilon=eps),
    ):
        assert approx.converged
        assert np.max(np.abs(approx.values - v_star)) < eps / 2 + tol, approx.method
        policy_values = evaluate(mdp, approx.policy).values
        assert np.max(np.abs(policy_values - v_star)) < eps + tol, approx.method

    lp_tol = 1e-6 * scale(v_star)
    for result in (
        solve_lp(mdp, solver="highs"),
        solve_lp(mdp, solver="gurobi"),
        solve_dual_lp(mdp, solver="highs"),
        solve_dual_lp(mdp, solver="gurobi"),
    ):
        assert np.max(np.abs(result.values - v_star)) < lp_tol, (result.method, result.solver)
        policy_values = evaluate(mdp, result.policy).values
        assert np.max(np.abs(policy_values - v_star)) < lp_tol / (1 - mdp.discount), (
            result.method,
            result.solver,
        )


@SETTINGS
@given(random_mdps())
def test_solvers_agree_on_random_mdps(mdp):
    check_all_solvers_agree(mdp)


@SETTINGS
@given(random_warehouses())
def test_solvers_agree_on_random_warehouses(mdp):
    check_all_solvers_agree(mdp)


@SETTINGS
@given(random_mdps(max_states=12, max_actions=6), st.integers(0, 2**32 - 1), st.booleans())
def test_numba_kernel_matches_numpy_reference(mdp, seed, keep_some):
    rng = np.random.default_rng(seed)
    v = rng.uniform(-50, 50, mdp.n_states)
    keep = None
    if keep_some:
        keep = mdp.state_ptr[:-1] + rng.integers(0, mdp.action_counts)
    beta = mdp.discount
    expected_v, expected_pairs = reference_sweep(mdp, v, beta, keep)
    out_v = np.empty(mdp.n_states)
    out_pairs = np.empty(mdp.n_states, dtype=np.int64)
    Sweeper(mdp, "numba").sweep(v, out_v, out_pairs, beta, keep)
    np.testing.assert_allclose(out_v, expected_v, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(out_pairs, expected_pairs)
    # The public functions agree across back-ends too.
    np.testing.assert_array_equal(greedy(mdp, v), greedy(mdp, v, backend="numpy"))
    # And the chosen pair is a minimiser under the documented tie rule.
    q = mdp.costs + beta * (mdp.transitions @ v)
    for s in range(mdp.n_states):
        lo, hi = mdp.state_ptr[s], mdp.state_ptr[s + 1]
        m = q[lo:hi].min()
        tied = np.flatnonzero(q[lo:hi] <= m + 1e-9 * (1 + abs(m))) + lo
        if keep is not None and keep[s] in tied:
            assert out_pairs[s] == keep[s]
        else:
            assert out_pairs[s] == tied[0]


@SETTINGS
@given(random_mdps(max_states=10, densities=(1.0,)), st.integers(0, 2**32 - 1))
def test_uniform_width_path_is_bit_identical_to_csr_path(mdp, seed):
    width = uniform_width(mdp)
    assert width == mdp.n_states
    rng = np.random.default_rng(seed)
    v = rng.uniform(-50, 50, mdp.n_states)
    keep = mdp.state_ptr[:-1] + rng.integers(0, mdp.action_counts)
    p = mdp.transitions
    outputs = []
    for layout in (p.indptr, width):
        out_v = np.empty(mdp.n_states)
        out_pairs = np.empty(mdp.n_states, dtype=np.int64)
        kernels().bellman_sweep(
            0,
            mdp.n_states,
            mdp.state_ptr,
            layout,
            p.indices,
            p.data,
            mdp.costs,
            mdp.discount,
            v,
            keep,
            1e-9,
            out_v,
            out_pairs,
        )
        outputs.append((out_v, out_pairs))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


@SETTINGS
@given(random_mdps(max_states=12, max_actions=6), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_threaded_sweep_matches_single_block(mdp, threads, seed):
    v = np.random.default_rng(seed).uniform(-50, 50, mdp.n_states)
    expected_v, expected_pairs = reference_sweep(mdp, v, mdp.discount)
    # Force the block-parallel path on a small model.
    with (
        mock.patch.object(bellman, "PARALLEL_MIN_WORK", 0),
        mock.patch.object(bellman, "default_threads", return_value=threads),
    ):
        sweeper = Sweeper(mdp)
        n_blocks = len(sweeper._blocks) - 1
        assert (n_blocks >= 2) == (mdp.n_states >= 2)
        assert n_blocks <= 4 * threads
        assert sweeper._blocks[0] == 0
        assert sweeper._blocks[-1] == mdp.n_states
        out_v = np.empty(mdp.n_states)
        out_pairs = np.empty(mdp.n_states, dtype=np.int64)
        sweeper.sweep(v, out_v, out_pairs, mdp.discount)
    np.testing.assert_allclose(out_v, expected_v, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(out_pairs, expected_pairs)


@SETTINGS
@given(random_mdps(), st.integers(0, 25))
def test_value_iteration_max_iter_is_repeated_bellman_updates(mdp, k):
    v = np.zeros(mdp.n_states)
    for _ in range(k):
        v, _ = bellman_update(mdp, v)
    result = value_iteration(mdp, max_iter=k)
    assert result.iterations == k
    np.testing.assert_array_equal(result.values, v)
    np.testing.assert_array_equal(result.policy, greedy(mdp, v))
    numpy_path = value_iteration(mdp, max_iter=k, backend="numpy")
    np.testing.assert_allclose(numpy_path.values, v, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(random_mdps(), st.sampled_from([1e-2, 1e-4, 1e-6]))
def test_value_iteration_epsilon_guarantee(mdp, eps):
    v_star = policy_iteration(mdp).values
    result = value_iteration(mdp, epsilon=eps)
    slack = 1e-10 * scale(v_star) / (1 - mdp.discount)
    assert np.max(np.abs(result.values - v_star)) < eps / 2 + slack
    assert np.max(np.abs(evaluate(mdp, result.policy).values - v_star)) < eps + slack
    # It stopped at the first step under the threshold.
    if mdp.discount > 0:
        threshold = eps * (1 - mdp.discount) / (2 * mdp.discount)
        assert result.history[-1] < threshold
        assert np.all(result.history[:-1] >= threshold)
    else:
        assert result.iterations == 1


@SETTINGS
@given(random_mdps(max_states=4), st.integers(0, 6))
def test_backward_induction_matches_value_iteration(mdp, horizon):
    terminal = np.linspace(-1, 1, mdp.n_states)
    result = backward_induction(mdp, horizon, terminal=terminal)
    np.testing.assert_array_equal(
        result.values[0], value_iteration(mdp, max_iter=horizon, v0=terminal).values
    )
    for n in range(horizon):
        np.testing.assert_array_equal(result.policy[n], greedy(mdp, result.values[n + 1]))


@SETTINGS
@given(random_mdps(max_states=5, max_actions=3))
def test_dense_round_trip(mdp):
    r, p = mdp.to_dense()
    again = FiniteMDP.from_dense(r, p, mdp.discount, action_labels=mdp.action_labels)
    assert again.n_pairs == mdp.n_pairs
    np.testing.assert_array_equal(again.pair_state, mdp.pair_state)
    # from_dense orders a state's actions by label, so compare through look-ups.
    for p_idx in range(mdp.n_pairs):
        s, a = mdp.pair_state[p_idx], mdp.pair_action[p_idx]
        assert again.cost(s, a) == mdp.costs[p_idx]
        np.testing.assert_allclose(
            again.transition_row(s, a), mdp.transitions[p_idx].toarray().ravel(), atol=0
        )
