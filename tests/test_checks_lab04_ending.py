"""lab04's Exercise 7 (holding on the ending inventory): the identity the lab explains, the
numbers it prints, and its hidden check, which must pass correct answers in any form and
name each usual mistake."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mdplab
from mdplab.checks.common import HiddenCheckFailure
from mdplab.checks.lab04_ending import _mistakes, check_ending_holding_costs, ending_cases
from mdplab.checks.warehouses import COURSE, Warehouse


def _reference(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    w = Warehouse(capacity, setup_cost, unit_cost, holding_cost, tuple(demand_pmf.items()), 0.8)
    return w.arrays("end")[0]


def _course(beta: float, holding_on: str, holding_cost: float = 1.0) -> mdplab.FiniteMDP:
    return mdplab.warehouse(
        capacity=3,
        setup_cost=4,
        unit_cost=1,
        holding_cost=holding_cost,
        demand={1: 0.5, 2: 0.5},
        discount=beta,
        holding_on=holding_on,
    )


def _optimum(mdp: mdplab.FiniteMDP) -> tuple[tuple[int, ...], np.ndarray]:
    solved = mdplab.policy_iteration(mdp)
    return tuple(int(a) for a in solved.policy), np.asarray(solved.values, dtype=float)


# ------------------------------------------------------------------ the lab's mathematics
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    beta=st.floats(0.05, 0.97),
    holding=st.sampled_from([0.5, 1.0, 2.0, 3.5]),
)
def test_ending_holding_h_is_starting_holding_h_over_beta_less_h_s_over_beta(seed, beta, holding):
    """V^{end,h}_pi(s) = V^{start,h/beta}_pi(s) - (h/beta) s for every policy pi: the
    identity of the lab's section 7, on random warehouses and random policies."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.integers(1, 8))
    values = sorted(int(v) for v in rng.choice(range(capacity + 1), size=2, replace=False))
    demand = {values[0]: 0.4, values[1]: 0.6}
    common = {"capacity": capacity, "setup_cost": 3.0, "unit_cost": 1.5, "demand": demand}
    end = mdplab.warehouse(**common, holding_cost=holding, discount=beta, holding_on="end")
    start = mdplab.warehouse(
        **common, holding_cost=holding / beta, discount=beta, holding_on="start"
    )
    policy = [int(rng.choice(list(end.actions_of(s)))) for s in range(capacity + 1)]
    V_end = np.asarray(mdplab.evaluate(end, policy).values, dtype=float)
    V_start = np.asarray(mdplab.evaluate(start, policy).values, dtype=float)
    shift = holding / beta * np.arange(capacity + 1)
    np.testing.assert_allclose(V_end, V_start - shift, rtol=1e-10, atol=1e-9)


def test_the_course_warehouse_keeps_its_optimum_under_either_convention():
    """The numbers the lab prints: (4, 3, 0, 0) both ways at beta = 0.8, with V*_end =
    (2749, 2651, 2209, 2091) / 98; the ending convention's optimum at h = 1 is the starting
    one's at h = 1.25."""
    start_policy, start_values = _optimum(_course(0.8, "start"))
    end_policy, end_values = _optimum(_course(0.8, "end"))
    assert start_policy == end_policy == (4, 3, 0, 0)
    np.testing.assert_allclose(start_values, np.array([1290, 1290, 1130, 1115]) / 49)
    np.testing.assert_allclose(end_values, np.array([2749, 2651, 2209, 2091]) / 98)
    assert [Fraction(v).limit_denominator(1000) for v in end_values] == [
        Fraction(2749, 98),
        Fraction(2651, 98),
        Fraction(2209, 98),
        Fraction(2091, 98),
    ]
    scaled_policy, _ = _optimum(_course(0.8, "start", holding_cost=1.25))
    assert scaled_policy == end_policy


def test_at_beta_six_tenths_the_conventions_part_ways_as_the_lab_says():
    """At beta = 0.6 holding on the ending inventory is in effect 1/0.6 per unit held, and
    the warehouse produces only what the largest demand requires: (2, 1, 0, 0). Charged
    on the starting inventory it still fills up: (4, 3, 0, 0)."""
    assert _optimum(_course(0.6, "start"))[0] == (4, 3, 0, 0)
    end_policy, end_values = _optimum(_course(0.6, "end"))
    assert end_policy == (2, 1, 0, 0)
    np.testing.assert_allclose(end_values, [15.5, 14.5, 9.5, 8.7])


def test_a_period_costs_no_less_than_zero_under_the_ending_convention():
    """Every feasible action meets the largest demand, so the expected ending inventory
    s + a - E[D] is never negative, and neither is a cost with non-negative K, c, h."""
    for w in ending_cases():
        R_end, _ = w.arrays("end")
        assert np.all(R_end[np.isfinite(R_end)] >= 0)


# ------------------------------------------------------------------ the hidden check
def test_the_reference_passes():
    check_ending_holding_costs(_reference)


@pytest.mark.parametrize(
    "convert",
    [
        lambda R: R.tolist(),
        lambda R: R.astype(np.float32),
        lambda R: np.matrix(R),
        lambda R: [tuple(row) for row in R],
    ],
    ids=["list", "float32", "matrix", "tuples"],
)
def test_correct_answers_in_other_containers_pass(convert):
    check_ending_holding_costs(lambda *args: convert(_reference(*args)))


def test_a_demand_pmf_with_unsorted_keys_is_handed_over():
    """The check hands the dictionary over with its keys in a random order, as a student's
    code meets it; some case must not list its keys in increasing order."""
    assert any(list(w.pmf) != sorted(w.pmf) for w in ending_cases())


MISTAKE_WORDS = [
    "STARTING inventory",
    "stock after production",
    "max(D)",
    "min(D)",
    "plain average",
    "even where nothing is produced",
    "setup cost is missing",
    "per unit produced is missing",
    "starting inventory s is missing",
    "wrong sign",
    "course's costs",
]


@pytest.mark.parametrize("index", range(len(MISTAKE_WORDS)), ids=MISTAKE_WORDS)
def test_each_usual_mistake_is_named(index):
    """A function that makes mistake ``index`` of the check's list (on every instance) fails
    with that mistake's words."""

    def wrong(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
        w = Warehouse(capacity, setup_cost, unit_cost, holding_cost, tuple(demand_pmf.items()), 0.8)
        answer, _ = _mistakes(w)[index]
        R_end, _ = w.arrays("end")
        return np.where(np.isinf(R_end), np.inf, answer)

    with pytest.raises(
        HiddenCheckFailure, match=MISTAKE_WORDS[index].replace("(", r"\(").replace(")", r"\)")
    ):
        check_ending_holding_costs(wrong)


def test_each_mistake_differs_from_the_reference_on_some_case():
    """The negative control of the diagnosis: no mistake of the list is invisible on every
    case of the check."""
    for index in range(len(MISTAKE_WORDS)):
        assert any(
            not np.allclose(
                _mistakes(w)[index][0][np.isfinite(w.arrays("end")[0])],
                w.arrays("end")[0][np.isfinite(w.arrays("end")[0])],
            )
            for w in ending_cases()
        ), MISTAKE_WORDS[index]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (lambda *args: None, "forget `return`"),
        (lambda *args: (_reference(*args), None), "layout|shape|return"),
        (lambda *args: np.nan_to_num(_reference(*args), posinf=0.0), "np.inf"),
        (lambda *args: np.where(np.isinf(_reference(*args)), np.nan, _reference(*args)), "nan"),
        (lambda *args: _reference(*args)[:, :-1], "shape"),
        (lambda *args: _reference(*args).astype(np.float16), "float16"),
    ],
    ids=["none", "pair", "zero-infeasible", "nan-infeasible", "one-column-short", "float16"],
)
def test_malformed_answers_are_told_apart(answer, words):
    with pytest.raises(HiddenCheckFailure, match=words):
        check_ending_holding_costs(answer)


def test_a_function_that_empties_demand_pmf_is_told_so():
    def popping(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
        R_end = _reference(capacity, setup_cost, unit_cost, holding_cost, dict(demand_pmf))
        demand_pmf.clear()
        return R_end

    with pytest.raises(HiddenCheckFailure, match="in place"):
        check_ending_holding_costs(popping)


def test_failure_messages_show_no_expected_cost():
    """The message names the call, never a cost of the reference array."""
    with pytest.raises(HiddenCheckFailure) as failure:
        check_ending_holding_costs(lambda *args: _reference(*args) + 0.25)
    message = str(failure.value)
    assert message.startswith("ending_holding_costs(3, 4, 1, 1, {1: 0.5, 2: 0.5})")
    R_end = COURSE.arrays("end")[0]
    for value in R_end[np.isfinite(R_end)]:
        if value not in (0.5, 1.0, 1.5, 2.0):  # numbers of the call itself
            assert f"{value:g}" not in message.split(")", 1)[1]
