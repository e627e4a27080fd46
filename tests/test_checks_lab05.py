"""The hidden checks of lab05 (value iteration): their instances agree with mdplab and with
the lab's dense layout, correct answers of every style pass, and the usual mistakes fail
with the advice that names them."""

from __future__ import annotations

import numpy as np
import pytest

from mdplab.checks import lab05
from mdplab.checks.common import HiddenCheckFailure

# --------------------------------------------------------------------------- instances


def test_course_warehouse_matches_the_lab():
    inst = lab05.course_warehouse()
    expected_r = np.array(
        [
            [np.inf, np.inf, 6, 7, 8],
            [np.inf, 6, 7, 8, np.inf],
            [2, 7, 8, np.inf, np.inf],
            [3, 8, np.inf, np.inf, np.inf],
        ]
    )
    np.testing.assert_array_equal(inst.R, expected_r)
    np.testing.assert_allclose(inst.P[0, 2], [0.5, 0.5, 0, 0])
    solution = lab05.reference_vi(inst, n_sweeps=100)
    np.testing.assert_allclose(solution.values, np.array([1290, 1290, 1130, 1115]) / 49)
    assert solution.policy.tolist() == [4, 3, 0, 0]
    assert lab05.reference_vi(inst, epsilon=1e-6).iterations == 80


def test_dense_sweep_agrees_with_mdplab():
    for inst, V in lab05.bellman_cases():
        values, policy = lab05.reference_bellman(inst, V)
        np.testing.assert_allclose(lab05.sweep_variant(inst, V), values, rtol=1e-12, atol=1e-12)
        assert lab05.greedy_ok(inst, V, policy).all()
        np.testing.assert_allclose(inst.P[inst.feasible].sum(axis=1), 1.0)
        assert np.all(inst.P[~inst.feasible] == 0)


def test_stopping_count_agrees_with_mdplab():
    for inst, epsilon, V0, solution in lab05.epsilon_cases():
        start = lab05._start(inst, V0)
        assert lab05.stopping_count(inst, epsilon, start) == solution.iterations


def test_every_mistake_changes_some_sweep():
    cases = lab05.bellman_cases()
    for kind in lab05.SWEEP_ADVICE:
        assert any(
            not np.allclose(lab05.sweep_variant(i, V, kind), lab05.sweep_variant(i, V))
            for i, V in cases
        ), kind


# --------------------------------------------------------------------------- answers


def bellman_update(R, P, beta, V):
    Q = R + beta * (P @ np.asarray(V, dtype=float))
    policy = np.argmin(Q, axis=1)
    return Q.min(axis=1), policy


def make_value_iteration(
    *,
    bellman=bellman_update,
    threshold="rule",
    change="sup",
    gauss_seidel=False,
    ignore_v0=False,
    policy_behind=False,
    alias=False,
    mutate_v0=False,
    count_shift=0,
    extra_sweep=False,
    sweep_shift=0,
):
    """A value iteration with the chosen mistakes."""

    def value_iteration(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
        if V0 is None or ignore_v0:
            V = np.zeros(R.shape[0])
        else:
            V = V0 if mutate_v0 else np.array(V0, dtype=float)
        limit = None
        if epsilon is not None:
            limit = {
                "rule": lambda: epsilon * (1 - beta) / (2 * beta),
                "safe": lambda: np.inf if beta == 0 else epsilon * (1 - beta) / (2 * beta),
                "epsilon": lambda: epsilon,
                "no_two": lambda: np.inf if beta == 0 else epsilon * (1 - beta) / beta,
                "global_beta": lambda: epsilon * (1 - 0.8) / (2 * 0.8),
            }[threshold]()
        history, older = [], V.copy()
        policy = bellman(R, P, beta, V)[1]
        target = None if n_sweeps is None else n_sweeps + sweep_shift
        while target is None or len(history) < target:
            before = V if alias else V.copy()
            if gauss_seidel:
                for s in range(len(V)):
                    ok = np.isfinite(R[s])
                    V[s] = np.min(R[s, ok] + beta * P[s, ok] @ V)
            else:
                new, policy = bellman(R, P, beta, V)
                V[:] = new
            if change == "sup":
                diff = np.max(np.abs(V - before))
            elif change == "signed":
                diff = np.max(V - before)
            elif change == "euclidean":
                diff = np.linalg.norm(V - before)
            else:
                diff = np.max(np.abs(V - older))
            older = before.copy()
            history.append(diff)
            if limit is not None and diff < limit:
                if extra_sweep:
                    V[:] = bellman(R, P, beta, V)[0]
                    history.append(0.0)
                break
        if not policy_behind:
            policy = bellman(R, P, beta, V)[1]
        return V, policy, len(history) + count_shift, history

    value_iteration.bellman = bellman
    return value_iteration


GOOD_VI = make_value_iteration(threshold="safe")


def lab_style_vi(bellman):
    """The lab's solution, on top of ``bellman``."""

    def value_iteration(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
        V = np.zeros(np.shape(R)[0]) if V0 is None else np.array(V0, dtype=float)
        threshold = None
        if epsilon is not None:
            threshold = np.inf if beta == 0 else epsilon * (1 - beta) / (2 * beta)
        history = []
        while n_sweeps is None or len(history) < n_sweeps:
            V_next, _ = bellman(R, P, beta, V)
            history.append(float(np.max(np.abs(V_next - V))))
            V = V_next
            if threshold is not None and history[-1] < threshold:
                break
        return V, bellman(R, P, beta, V)[1], len(history), history

    value_iteration.bellman = bellman
    return value_iteration


def history_before_sweeps(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
    V, policy, sweeps, history = GOOD_VI(R, P, beta, n_sweeps, epsilon, V0)
    return V, policy, history, sweeps


def no_sweep_at_beta_zero(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
    if beta == 0 and epsilon is not None:
        V = np.zeros(len(R)) if V0 is None else np.array(V0, dtype=float)
        return V, bellman_update(R, P, beta, V)[1], 0, []
    return GOOD_VI(R, P, beta, n_sweeps, epsilon, V0)


def float16_values(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
    V, policy, sweeps, history = GOOD_VI(R, P, beta, n_sweeps, epsilon, V0)
    return np.asarray(V).astype(np.float16), policy, sweeps, history


def loop_bellman(R, P, beta, V):
    """Loops, a dict per state, the largest action among ties, lists out."""
    values, policy = [], []
    for s in range(len(R)):
        q = {
            a: R[s][a] + beta * sum(P[s][a][t] * V[t] for t in range(len(R)))
            for a in range(len(R[s]))
            if R[s][a] != np.inf
        }
        best = min(q.values())
        values.append(best)
        policy.append(max(a for a, v in q.items() if v == best))
    return values, policy


def float32_bellman(R, P, beta, V):
    values, policy = bellman_update(R, P, beta, V)
    return {s: np.float32(v) for s, v in enumerate(values)}, policy.astype(np.int32)


def masked_bellman(R, P, beta, V):
    Q = np.ma.masked_invalid(R) + beta * np.tensordot(P, V, axes=([2], [0]))
    return Q.min(axis=1).filled(np.inf), Q.argmin(axis=1)


@pytest.mark.parametrize("bellman", [bellman_update, loop_bellman, float32_bellman, masked_bellman])
def test_correct_bellman_updates_pass(bellman):
    lab05.check_bellman_update(bellman)


@pytest.mark.parametrize("bellman", [bellman_update, loop_bellman, masked_bellman])
def test_correct_value_iterations_pass(bellman):
    vi = make_value_iteration(bellman=bellman, threshold="safe")
    lab05.check_value_iteration_sweeps(vi, bellman)
    lab05.check_value_iteration_epsilon(vi, bellman)


# --------------------------------------------------------------------------- mistakes


def no_discount(R, P, beta, V):
    return bellman_update(R, P, 1.0, V)


def maximum(R, P, beta, V):
    Q = np.where(np.isfinite(R), R + beta * (P @ V), -np.inf)
    return Q.max(axis=1), Q.argmax(axis=1)


def inf_as_zero(R, P, beta, V):
    Q = np.nan_to_num(R, posinf=0.0) + beta * (P @ V)
    return Q.min(axis=1), Q.argmin(axis=1)


def positions(R, P, beta, V):
    values, policy = [], []
    for s in range(len(R)):
        ok = np.flatnonzero(np.isfinite(R[s]))
        q = R[s, ok] + beta * P[s, ok] @ V
        values.append(q.min())
        policy.append(int(np.argmin(q)))
    return np.array(values), np.array(policy)


def swapped(R, P, beta, V):
    values, policy = bellman_update(R, P, beta, V)
    return policy, values


def argmax_policy(R, P, beta, V):
    values, _ = bellman_update(R, P, beta, V)
    Q = np.where(np.isfinite(R), R + beta * (P @ V), -np.inf)
    return values, Q.argmax(axis=1)


def changes_v(R, P, beta, V):
    values, policy = bellman_update(R, P, beta, V)
    V[:] = 0
    return values, policy


def no_future(R, P, beta, V):
    return bellman_update(R, P, 0.0, V)


def scales_v(R, P, beta, V):
    V *= beta
    Q = R + P @ V
    return Q.min(axis=1), Q.argmin(axis=1)


def discounted_cost(R, P, beta, V):
    Q = beta * (R + P @ V)
    return Q.min(axis=1), Q.argmin(axis=1)


def global_beta(R, P, beta, V):
    return bellman_update(R, P, 0.8, V)


def generator_policy(R, P, beta, V):
    values, policy = bellman_update(R, P, beta, V)
    return values, (int(a) for a in policy)


def float16_bellman(R, P, beta, V):
    values, policy = bellman_update(R, P, beta, V)
    return values.astype(np.float16), policy


@pytest.mark.parametrize(
    ("bellman", "advice"),
    [
        (no_discount, "not discounted"),
        (maximum, "largest Q-value"),
        (inf_as_zero, "as if they cost 0"),
        (no_future, "values V of the next states are not added"),
        (positions, "positions in the list of feasible actions"),
        (swapped, "wrong order, (policy, V_new)"),
        (argmax_policy, "most expensive action"),
        (changes_v, "changed its argument V in place"),
        (scales_v, "changed its argument V in place"),
        (discounted_cost, "cost of this period is discounted too"),
        (global_beta, "the notebook's BETA"),
        (generator_policy, "the policy is a generator"),
        (float16_bellman, "precision"),
    ],
)
def test_bellman_mistakes_are_named(bellman, advice):
    with pytest.raises(HiddenCheckFailure, match=advice.replace("(", r"\(").replace(")", r"\)")):
        lab05.check_bellman_update(bellman)


SWEEP_MISTAKES = [
    (make_value_iteration(threshold="safe", count_shift=-1), "off by one"),
    (make_value_iteration(threshold="safe", sweep_shift=-1, count_shift=1), "one sweep too early"),
    (make_value_iteration(threshold="safe", sweep_shift=1, count_shift=-1), "one sweep too many"),
    (make_value_iteration(threshold="safe", gauss_seidel=True), "Gauss-Seidel"),
    (make_value_iteration(threshold="safe", ignore_v0=True), "start from zeros"),
    (make_value_iteration(threshold="safe", policy_behind=True), "before the last sweep"),
    (make_value_iteration(threshold="safe", change="signed"), "without the absolute value"),
    (make_value_iteration(threshold="safe", change="two_back"), "two sweeps apart"),
    (make_value_iteration(threshold="safe", alias=True), "same array"),
    (make_value_iteration(threshold="safe", mutate_v0=True), "changed the array V0 .* in place"),
    (make_value_iteration(threshold="safe", bellman=maximum), "inherits"),
    (lab_style_vi(scales_v), "inherits .* V in place"),
    (make_value_iteration(threshold="safe", bellman=generator_policy), "inherits .* generator"),
    (make_value_iteration(threshold="safe", change="euclidean"), "Euclidean"),
    (history_before_sweeps, "other way round"),
    (float16_values, "precision"),
]


@pytest.mark.parametrize(("vi", "advice"), SWEEP_MISTAKES)
def test_fixed_sweep_mistakes_are_named(vi, advice):
    bellman = vi.bellman if advice.startswith("inherits") else bellman_update
    with pytest.raises(HiddenCheckFailure, match=advice):
        lab05.check_value_iteration_sweeps(vi, bellman)


EPSILON_MISTAKES = [
    (make_value_iteration(threshold="epsilon"), "epsilon itself"),
    (make_value_iteration(threshold="no_two"), "factor 2"),
    (make_value_iteration(threshold="safe", change="signed"), "without an absolute value"),
    (make_value_iteration(threshold="safe", change="two_back"), "two sweeps apart"),
    (make_value_iteration(threshold="safe", gauss_seidel=True), "Gauss-Seidel"),
    (make_value_iteration(threshold="safe", ignore_v0=True), "start from zeros"),
    (make_value_iteration(threshold="safe", count_shift=1), "off by one"),
    (make_value_iteration(threshold="safe", extra_sweep=True), "one sweep more than"),
    (make_value_iteration(threshold="safe", alias=True), "same array"),
    (make_value_iteration(threshold="rule"), r"\+inf"),
    (make_value_iteration(threshold="safe", bellman=maximum), "inherits"),
    (make_value_iteration(threshold="safe", bellman=global_beta), "inherits .* BETA"),
    (make_value_iteration(threshold="global_beta"), "notebook's BETA"),
    (make_value_iteration(threshold="safe", change="euclidean"), "Euclidean"),
    (make_value_iteration(threshold="safe", mutate_v0=True), "changed the array V0 .* in place"),
    (no_sweep_at_beta_zero, "beta = 0 the rule still does one sweep"),
    (history_before_sweeps, "other way round"),
]


@pytest.mark.parametrize(("vi", "advice"), EPSILON_MISTAKES)
def test_stopping_rule_mistakes_are_named(vi, advice):
    bellman = vi.bellman if advice.startswith("inherits") else bellman_update
    with pytest.raises(HiddenCheckFailure, match=advice):
        lab05.check_value_iteration_epsilon(vi, bellman)


def test_a_loop_that_never_stops_is_cut_short(monkeypatch):
    monkeypatch.setattr(lab05, "CALL_SECONDS", 0.5)
    vi = make_value_iteration(threshold="safe", bellman=no_discount)
    with pytest.raises(HiddenCheckFailure, match=r"inherits .* not discounted.* still running"):
        lab05.check_value_iteration_epsilon(vi, no_discount)


def test_messages_never_show_the_expected_values():
    """The instances' reference values never appear in a failure message."""
    vi = make_value_iteration(threshold="safe", gauss_seidel=True)
    with pytest.raises(HiddenCheckFailure) as failure:
        lab05.check_value_iteration_sweeps(vi, bellman_update)
    inst, n, V0 = lab05.sweep_cases()[0]
    expected = lab05.reference_vi(inst, n_sweeps=n, V0=V0).values
    assert not any(f"{v:.3g}" in str(failure.value) for v in expected if abs(v) > 1)
