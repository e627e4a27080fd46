"""The hidden checks of lab02 (the warehouse MDP, exact and simulated policy values): the
references are right, correct answers of several shapes pass, the usual mistakes fail with
the right advice, and the Monte Carlo checks do not depend on how a correct simulation
draws its random numbers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mdplab.checks import lab02
from mdplab.checks.common import HiddenCheckFailure
from mdplab.checks.lab02 import truncated_moments
from mdplab.checks.warehouses import COURSE, Warehouse

# --------------------------------------------------------------------------- answers


def feasible_actions(s, capacity, demand_pmf):
    return list(range(max(0, max(demand_pmf) - s), capacity + min(demand_pmf) - s + 1))


def cost(s, a, setup_cost, unit_cost, holding_cost):
    return setup_cost * (a > 0) + unit_cost * a + holding_cost * s


def transition_probabilities(s, a, capacity, demand_pmf):
    row = np.zeros(capacity + 1)
    for d, p in demand_pmf.items():
        row[s + a - d] += p
    return row


def build_model(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    R = np.full((capacity + 1, capacity + min(demand_pmf) + 1), np.inf)
    P = np.zeros((*R.shape, capacity + 1))
    for s in range(capacity + 1):
        for a in feasible_actions(s, capacity, demand_pmf):
            R[s, a] = cost(s, a, setup_cost, unit_cost, holding_cost)
            P[s, a] = transition_probabilities(s, a, capacity, demand_pmf)
    return R, P


def evaluate_policy(R, P, beta, policy):
    idx = np.arange(len(R))
    chosen = np.asarray(policy)
    return np.linalg.solve(np.eye(len(R)) - beta * np.asarray(P)[idx, chosen], R[idx, chosen])


def simulate_run(R, P, beta, policy, start, horizon, rng):
    s, total = start, 0.0
    for t in range(horizon):
        a = policy[s]
        total += beta**t * R[s, a]
        s = rng.choice(len(P[s, a]), p=P[s, a])
    return total


def policy_value_by_simulation(R, P, beta, policy, start, horizon, n_runs, rng):
    runs = np.array([simulate_run(R, P, beta, policy, start, horizon, rng) for _ in range(n_runs)])
    return runs.mean(), runs.std(ddof=1) / math.sqrt(n_runs)


def test_reference_arrays_reproduce_the_course_numbers():
    R, P = COURSE.arrays()
    assert R.shape == (4, 5) and P.shape == (4, 5, 4)
    for (s, a), value in {(0, 2): 6, (1, 1): 6, (2, 0): 2, (3, 0): 3}.items():
        assert R[s, a] == value
    assert [np.flatnonzero(np.isfinite(row)).tolist() for row in R] == [
        [2, 3, 4],
        [1, 2, 3],
        [0, 1, 2],
        [0, 1],
    ]
    np.testing.assert_allclose(evaluate_policy(R, P, 0.8, [2, 1, 0, 0]), [30, 30, 26, 25.4])


def test_reference_arrays_agree_with_a_plain_builder():
    for inst in lab02.instances(lab02.SEED, 30):
        R, P = inst.arrays()
        R2, P2 = build_model(
            inst.capacity, inst.setup_cost, inst.unit_cost, inst.holding_cost, inst.pmf
        )
        np.testing.assert_array_equal(np.isfinite(R), np.isfinite(R2))
        np.testing.assert_allclose(R[np.isfinite(R)], R2[np.isfinite(R2)])
        np.testing.assert_allclose(P, P2, atol=1e-15)


def test_instances_are_valid_and_varied():
    pool = lab02.instances(lab02.SEED, 60)
    assert {i.capacity for i in pool} == set(range(1, 9))
    assert {len(i.demand) for i in pool} == {1, 2, 3}
    assert any(list(i.pmf) != sorted(i.pmf) for i in pool), "some pmfs list keys unsorted"
    assert any(i.discount == 0 for i in pool)
    for inst in pool:
        assert math.isclose(sum(inst.pmf.values()), 1.0)
        assert inst.d_max - inst.d_min <= inst.capacity


def test_truncated_moments_match_an_enumeration_of_every_path():
    inst = Warehouse(2, 3.0, 1.0, 0.5, ((0, 0.3), (1, 0.5), (2, 0.2)), 0.7)
    R, P = inst.arrays()
    policy, horizon = [2, 1, 0], 5
    states = np.arange(3)
    mean, sd = truncated_moments(R[states, policy], P[states, policy], inst.discount, horizon)
    for start in range(3):
        outcomes = []  # (probability, discounted cost) of every demand sequence
        for demands in itertools.product(inst.pmf, repeat=horizon):
            s, prob, total = start, 1.0, 0.0
            for t, d in enumerate(demands):
                total += inst.discount**t * R[s, policy[s]]
                prob *= inst.pmf[d]
                s = s + policy[s] - d
            outcomes.append((prob, total))
        probs, totals = np.array(outcomes).T
        exact_mean = probs @ totals
        assert math.isclose(mean[start], exact_mean, rel_tol=1e-12)
        assert math.isclose(sd[start], math.sqrt(probs @ (totals - exact_mean) ** 2), rel_tol=1e-9)


CHECKS = {
    "feasible_actions": (lab02.check_feasible_actions, feasible_actions),
    "cost": (lab02.check_cost, cost),
    "transition_probabilities": (lab02.check_transition_probabilities, transition_probabilities),
    "build_model": (lab02.check_build_model, build_model),
    "evaluate_policy": (lab02.check_evaluate_policy, evaluate_policy),
    "simulate_run": (lab02.check_simulate_run, simulate_run),
    "policy_value_by_simulation": (
        lab02.check_policy_value_by_simulation,
        policy_value_by_simulation,
    ),
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_reference_answers_pass(name):
    check, answer = CHECKS[name]
    check(answer)


def test_other_correct_shapes_pass():
    lab02.check_feasible_actions(
        lambda s, c, pmf: np.arange(max(0, max(pmf) - s), c + min(pmf) - s + 1)
    )
    lab02.check_feasible_actions(lambda s, c, pmf: set(feasible_actions(s, c, pmf)))
    lab02.check_cost(lambda *args: np.float32(cost(*args)))
    lab02.check_transition_probabilities(lambda *args: list(transition_probabilities(*args)))
    lab02.check_build_model(lambda *args: [x.tolist() for x in build_model(*args)])
    lab02.check_evaluate_policy(lambda *args: dict(enumerate(evaluate_policy(*args))))
    lab02.check_evaluate_policy(lambda *args: evaluate_policy(*args).astype(np.float32))


class BurnIn:
    """A correct simulation that consumes the generator differently from the reference
    (``burn`` extra draws per run, inverse-CDF sampling): a different random stream."""

    def __init__(self, burn: int) -> None:
        self.burn = burn

    def __call__(self, R, P, beta, policy, start, horizon, rng):
        rng.random(self.burn)
        s, total = start, 0.0
        for t in range(horizon):
            a = policy[s]
            total += beta**t * R[s, a]
            cdf = np.cumsum(P[s, a])
            s = min(int(np.searchsorted(cdf, rng.random(), side="right")), cdf.size - 1)
        return total


@pytest.mark.parametrize("burn", [0, 1, 2, 5, 17])
def test_statistical_checks_accept_any_correct_random_stream(burn):
    run = BurnIn(burn)
    lab02.check_simulate_run(run)

    def estimate(R, P, beta, policy, start, horizon, n_runs, rng):
        runs = [run(R, P, beta, policy, start, horizon, rng) for _ in range(n_runs)]
        return np.mean(runs), np.std(runs, ddof=1) / math.sqrt(n_runs)

    lab02.check_policy_value_by_simulation(estimate)


def test_statistical_margin_is_wide():
    """Over 60 random streams the largest z-score stays far below the limit of six."""
    worst, run = 0.0, BurnIn(0)
    for inst, policy, start, horizon in lab02._stochastic_cases(lab02.SEED + 7, 3):
        R, P = inst.arrays()
        mean, sd = lab02._exact_truncated(inst, policy, start, horizon)
        for seed in range(20):
            rng = np.random.default_rng(1000 + seed)
            runs = [run(R, P, inst.discount, policy, start, horizon, rng) for _ in range(300)]
            worst = max(worst, abs(np.mean(runs) - mean) / (sd / math.sqrt(300)))
    assert worst < 4.5


# --------------------------------------------------------------------------- mistakes


def _holding_after_production(s, a, k, c, h):
    return k * (a > 0) + c * a + h * (s + a)


def _build_holding_on_end(capacity, k, c, h, pmf):
    R, P = build_model(capacity, k, c, h, pmf)
    mean = sum(d * p for d, p in pmf.items())
    a = np.arange(R.shape[1])[None, :]
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(R), R + h * (a - mean), np.inf), P


def _build_zero_cost_infeasible(*args):
    R, P = build_model(*args)
    return np.where(np.isfinite(R), R, 0.0), P


def _build_nan_rows(*args):
    R, P = build_model(*args)
    P[~np.isfinite(R)] = 1.0 / P.shape[2]
    return R, P


def _off_by_one(s, a, capacity, pmf):
    row = np.zeros(capacity + 1)
    for d, p in pmf.items():
        row[s + a - d - 1] += p
    return row


def _missing_probability(s, a, capacity, pmf):
    row = transition_probabilities(s, a, capacity, pmf)
    row[s + a - max(pmf)] = 0.0
    return row


def _global_random(R, P, beta, policy, start, horizon, rng):
    return simulate_run(R, P, beta, policy, start, horizon, np.random.default_rng())


MISTAKES = [
    (
        "feasible_actions",
        lambda s, c, pmf: [a for a in range(c + 1) if max(pmf) <= s + a <= c],
        "ENDING inventory",
    ),
    (
        "feasible_actions",
        lambda s, c, pmf: list(range(max(0, min(pmf) - s), c + min(pmf) - s + 1)),
        "largest possible demand",
    ),
    (
        "feasible_actions",
        lambda s, c, pmf: list(range(max(0, max(pmf) - s), c + max(pmf) - s + 1)),
        "exceeds the capacity",
    ),
    ("feasible_actions", lambda s, c, pmf: [0, *feasible_actions(s, c, pmf)][1:] * 2, "twice"),
    ("cost", _holding_after_production, "stock after production"),
    ("cost", lambda s, a, k, c, h: k + c * a + h * s, "even when nothing is produced"),
    ("cost", lambda s, a, k, c, h: c * a + h * s, "setup cost is missing"),
    ("cost", lambda s, a, k, c, h: -cost(s, a, k, c, h), "wrong sign"),
    ("transition_probabilities", _off_by_one, "off by one"),
    ("transition_probabilities", _missing_probability, "do not sum to 1"),
    (
        "transition_probabilities",
        lambda s, a, c, pmf: transition_probabilities(s, a, c, pmf)[:-1],
        "one entry per next state",
    ),
    ("build_model", _build_holding_on_end, "ENDING inventory"),
    ("build_model", _build_zero_cost_infeasible, "actions with a finite cost"),
    ("build_model", _build_nan_rows, "all zeros where a is infeasible"),
    ("build_model", lambda *args: build_model(*args)[0], r"pair \(R, P\)"),
    (
        "evaluate_policy",
        lambda R, P, beta, policy: evaluate_policy(R, P, -beta, policy),
        "a sign is wrong",
    ),
    ("evaluate_policy", lambda R, P, beta, policy: evaluate_policy(R, P, 1.0, policy), "singular"),
    (
        "evaluate_policy",
        lambda R, P, beta, policy: np.linalg.solve(
            np.eye(len(R)) - beta * np.asarray(P)[np.arange(len(R)), policy].T,
            R[np.arange(len(R)), policy],
        ),
        "transposed",
    ),
    (
        "evaluate_policy",
        lambda R, P, beta, policy: evaluate_policy(R, P, beta, policy)[:-1],
        "one value per state",
    ),
    (
        "simulate_run",
        lambda R, P, beta, policy, start, horizon, rng: simulate_run(
            R, P, 1.0, policy, start, horizon, rng
        ),
        "without the discount",
    ),
    (
        "simulate_run",
        lambda R, P, beta, policy, start, horizon, rng: simulate_run(
            R, P, beta, policy, start, horizon + 1, rng
        ),
        "one period too many",
    ),
    (
        "simulate_run",
        lambda R, P, beta, policy, start, horizon, rng: simulate_run(
            R, P, beta, policy, start, max(horizon - 1, 0), rng
        ),
        "one period too few",
    ),
    (
        "simulate_run",
        lambda R, P, beta, policy, start, horizon, rng: (
            beta * simulate_run(R, P, beta, policy, start, horizon, rng)
        ),
        "discounted once too often",
    ),
    ("simulate_run", _global_random, "same seed"),
    (
        "policy_value_by_simulation",
        lambda *args: (policy_value_by_simulation(*args)[0], 0.0),
        "standard error",
    ),
    (
        "policy_value_by_simulation",
        lambda *args: (
            policy_value_by_simulation(*args)[0],
            policy_value_by_simulation(*args)[1] * math.sqrt(args[6]),
        ),
        "standard deviation of one run",
    ),
]


@pytest.mark.parametrize(
    ("name", "answer", "advice"), MISTAKES, ids=[f"{m[0]}-{m[2]}" for m in MISTAKES]
)
def test_mistakes_fail_with_advice(name, answer, advice):
    check, _ = CHECKS[name]
    with pytest.raises(HiddenCheckFailure, match=advice):
        check(answer)


def test_failures_never_show_the_expected_values():
    """A wrong evaluate_policy's message names the instance but none of the exact values."""
    with pytest.raises(HiddenCheckFailure) as failure:
        lab02.check_evaluate_policy(lambda R, P, beta, policy: evaluate_policy(R, P, 0.5, policy))
    message = str(failure.value)
    R, P = COURSE.arrays()
    policy = [int(p) for p in message.split("policy=[")[1].split("]")[0].split(",")]
    for value in evaluate_policy(R, P, COURSE.discount, policy):
        for digits in (2, 3, 4):
            assert f"{value:.{digits}f}" not in message


# --------------------------------------------------------------------------- issue 12


def _popping_row(s, a, capacity, pmf):
    row = np.zeros(capacity + 1)
    while pmf:
        d, p = pmf.popitem()
        row[s + a - d] += p
    return row


def _float32_model(*args):
    R, P = build_model(*args)
    return R.astype(np.float32), P.astype(np.float32)


def _float16_model(*args):
    R, P = build_model(*args)
    return R.astype(np.float16), P.astype(np.float16)


def _build_with(row):
    def build(capacity, k, c, h, pmf):
        R = np.full((capacity + 1, capacity + min(pmf) + 1), np.inf)
        P = np.zeros((*R.shape, capacity + 1))
        for s in range(capacity + 1):
            for a in feasible_actions(s, capacity, pmf):
                R[s, a] = cost(s, a, k, c, h)
                P[s, a] = row(s, a, capacity, pmf)
        return R, P

    return build


def _zeroes_inf(R, P, beta, policy):
    R[np.isinf(R)] = 0.0
    return evaluate_policy(R, P, beta, policy)


def _fresh_generator(R, P, beta, policy, start, horizon, n_runs, rng):
    runs = [
        simulate_run(R, P, beta, policy, start, horizon, np.random.default_rng(0))
        for _ in range(n_runs)
    ]
    return np.mean(runs), np.std(runs, ddof=1) / math.sqrt(n_runs)


def _course_beta(R, P, beta, policy, start, horizon, n_runs, rng):
    return policy_value_by_simulation(R, P, 0.8, policy, start, horizon, n_runs, rng)


def test_numeric_policy_answers_pass():
    """float32 models and values, Fractions, Decimals, np.matrix, pandas: full marks."""
    from decimal import Decimal
    from fractions import Fraction

    import pandas as pd

    lab02.check_build_model(_float32_model)
    lab02.check_cost(lambda *args: Fraction(cost(*args)))
    lab02.check_cost(lambda *args: Decimal(str(cost(*args))))
    lab02.check_transition_probabilities(
        lambda *args: [Fraction(x) for x in transition_probabilities(*args)]
    )
    lab02.check_transition_probabilities(
        lambda *args: pd.Series(transition_probabilities(*args)).astype(np.float32)
    )
    lab02.check_evaluate_policy(lambda *args: np.matrix(evaluate_policy(*args)).T)
    lab02.check_evaluate_policy(lambda *args: pd.Series(evaluate_policy(*args)))


MUTATIONS = [
    ("transition_probabilities", _popping_row, ["demand_pmf", "in place"]),
    (
        "feasible_actions",
        lambda s, c, pmf: feasible_actions(s, c, pmf) + [pmf.clear()][:0],
        ["demand_pmf", "in place"],
    ),
    (
        "build_model",
        lambda c, k, u, h, pmf: build_model(c, k, u, h, pmf) + (pmf.clear(),)[:0],
        ["demand_pmf", "in place"],
    ),
    ("evaluate_policy", _zeroes_inf, ["argument R", "in place"]),
    (
        "simulate_run",
        lambda R, P, beta, policy, *rest: (
            simulate_run(R, P, beta, policy, *rest) + (policy.reverse() or 0)
        ),
        ["argument policy", "in place"],
    ),
]


@pytest.mark.parametrize(("name", "answer", "words"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_changing_an_argument_in_place_fails(name, answer, words):
    check, _ = CHECKS[name]
    with pytest.raises(HiddenCheckFailure) as failure:
        check(answer)
    for word in words:
        assert word in str(failure.value)


def test_build_model_names_the_function_at_fault():
    with pytest.raises(HiddenCheckFailure, match=r"transition_probabilities.*in place") as failure:
        lab02.check_build_model(
            _build_with(_popping_row),
            feasible_actions=feasible_actions,
            cost=cost,
            transition_probabilities=_popping_row,
        )
    assert "Fix transition_probabilities first" in str(failure.value)
    with pytest.raises(HiddenCheckFailure, match=r"relies on your cost.*swapped"):
        lab02.check_build_model(
            lambda c, k, u, h, pmf: build_model(c, u, k, h, pmf),
            feasible_actions=feasible_actions,
            cost=lambda s, a, k, u, h: cost(s, a, u, k, h),
            transition_probabilities=transition_probabilities,
        )


NEW_MISTAKES = [
    ("build_model", _float16_model, "precision"),
    (
        "feasible_actions",
        lambda s, c, pmf: list(range(max(0, max(pmf) - s), 3 + min(pmf) - s + 1)),
        "use the argument capacity",
    ),
    ("cost", lambda s, a, k, c, h: cost(s, a, c, k, h), "swapped"),
    ("cost", lambda s, a, k, c, h: cost(s, a, 4, 1, 1), "course's costs"),
    (
        "transition_probabilities",
        lambda s, a, c, pmf: (x for x in transition_probabilities(s, a, c, pmf)),
        "generator",
    ),
    (
        "transition_probabilities",
        lambda s, a, c, pmf: np.bincount(list(pmf), list(pmf.values()), c + 1)[: c + 1],
        "index d",
    ),
    (
        "evaluate_policy",
        lambda R, P, beta, policy: evaluate_policy(R, P, 0.8, policy),
        "beta = 0.8",
    ),
    (
        "evaluate_policy",
        lambda R, P, beta, policy: evaluate_policy(R, P, beta, policy) * (1 + 3e-4),
        "stops too early",
    ),
    (
        "evaluate_policy",
        lambda *args: evaluate_policy(*args).astype(np.float16),
        "precision",
    ),
    ("policy_value_by_simulation", lambda *args: policy_value_by_simulation(*args)[::-1], "order"),
    ("policy_value_by_simulation", _course_beta, "beta = 0.8"),
    ("policy_value_by_simulation", _fresh_generator, "identical"),
    (
        "evaluate_policy",
        lambda R, P, policy, beta: evaluate_policy(R, P, beta, policy),
        "takes the policy before beta",
    ),
    (
        "simulate_run",
        lambda R, P, policy, beta, *run: simulate_run(R, P, beta, policy, *run),
        "takes the policy before beta",
    ),
]


@pytest.mark.parametrize(
    ("name", "answer", "advice"), NEW_MISTAKES, ids=[f"{m[0]}-{m[2]}" for m in NEW_MISTAKES]
)
def test_new_mistakes_are_named(name, answer, advice):
    check, _ = CHECKS[name]
    with pytest.raises(HiddenCheckFailure, match=advice):
        check(answer)


def test_identical_runs_blame_simulate_run_when_it_never_varies():
    def stuck(R, P, beta, policy, start, horizon, rng):
        s, total = start, 0.0
        for t in range(horizon):
            total += beta**t * R[s, policy[s]]
            s = int(np.argmax(P[s, policy[s]]))
        return total

    def estimate(R, P, beta, policy, start, horizon, n_runs, rng):
        runs = [stuck(R, P, beta, policy, start, horizon, rng) for _ in range(n_runs)]
        return np.mean(runs), np.std(runs, ddof=1) / math.sqrt(n_runs)

    with pytest.raises(HiddenCheckFailure, match="fix simulate_run first"):
        lab02.check_policy_value_by_simulation(estimate, simulate_run=stuck)
    with pytest.raises(HiddenCheckFailure, match="rng you were given"):
        lab02.check_policy_value_by_simulation(_fresh_generator, simulate_run=simulate_run)
