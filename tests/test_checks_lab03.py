"""The hidden checks of lab03 (linear programming): their references agree with mdplab's LP
solvers, the lab's reference answers and the catalogue's correct answers pass, and every
wrong answer of the catalogue fails the hidden check of each cell it declares, with the
advice that names its mistake, and passes the others."""

from __future__ import annotations

import tomllib
import warnings
from functools import cache

import numpy as np
import pytest
from course_helpers import LAYOUT

from mdplab.checks import lab03, lab03_constrained
from mdplab.checks.common import HiddenCheckFailure
from mdplab.course.authoring import build_master
from mdplab.course.derive import reference_answers

gp = pytest.importorskip("gurobipy")

LAB = LAYOUT.lab("lab03")
CATALOGUE = LAYOUT.root / "tests" / "catalogue" / f"{LAB.name}.toml"

# answer cell -> the test cells (and their hidden checks) that call it
CHECKS = {
    "warehouse_lp": {"test_warehouse_lp": lab03.check_warehouse_lp},
    "solve_mdp_lp": {
        "test_solve_mdp_lp_values": lab03.check_solve_mdp_lp_values,
        "test_solve_mdp_lp_duals": lab03.check_solve_mdp_lp_duals,
    },
    "policy_from_lp": {"test_policy_from_lp": lab03.check_policy_from_lp},
    "solve_dual_lp": {
        "test_dual_frequencies": lab03.check_dual_frequencies,
        "test_dual_policy": lab03.check_dual_policy,
    },
    "solve_constrained_dual_lp": {
        "test_constrained_lp": lab03_constrained.check_constrained_optimum,
        "test_shadow_price": lab03_constrained.check_shadow_price,
    },
}

# wrong entry -> test cell -> a phrase its hidden failure must contain
ADVICE = {
    "minimises": {
        "test_solve_mdp_lp_values": "MAXIMISES",
        "test_solve_mdp_lp_duals": "MAXIMISES",
    },
    "reversed_inequality": {"test_warehouse_lp": "inequalities with >="},
    "no_discount": {
        "test_solve_mdp_lp_values": "leaving out the factor beta",
        "test_solve_mdp_lp_duals": "leaving out the factor beta",
    },
    "costliest_policy": {
        "test_solve_mdp_lp_values": "COSTLIEST",
        "test_solve_mdp_lp_duals": "COSTLIEST",
    },
    "lower_bound_zero": {
        "test_solve_mdp_lp_values": "lb=-GRB.INFINITY",
        "test_solve_mdp_lp_duals": "lb=-GRB.INFINITY",
    },
    "infeasible_actions": {"test_warehouse_lp": "infeasible action"},
    "holding_on_end": {"test_warehouse_lp": "ENDING inventory"},
    "duals_wrong_sign": {"test_solve_mdp_lp_duals": "wrong sign"},
    "duals_are_slacks": {"test_solve_mdp_lp_duals": "Slack"},
    "tight_exactly_zero": {"test_policy_from_lp": "at most tol"},
    "largest_slack": {"test_policy_from_lp": "LARGEST slack"},
    "position_in_feasible": {"test_policy_from_lp": "position"},
    "dual_no_beta": {
        "test_dual_frequencies": "the factor beta",
        "test_dual_policy": "the factor beta",
    },
    "dual_ignores_alpha": {"test_dual_frequencies": "equal to 1"},
    "dual_outflow_only": {"test_dual_frequencies": "mixed up", "test_dual_policy": "not optimal"},
    "dual_maximises": {"test_dual_frequencies": "COSTLIEST", "test_dual_policy": "not optimal"},
    "dual_policy_argmin": {"test_dual_policy": "LARGEST x"},
    "all_blank": {cell: "not implemented" for checks in CHECKS.values() for cell in checks},
    # issue 12
    "warehouse_pops_pmf": {"test_warehouse_lp": "demand_pmf in place"},
    "warehouse_returns_variables": {"test_warehouse_lp": "gurobipy variables"},
    "warehouse_setup_always": {"test_warehouse_lp": "nothing is produced"},
    "warehouse_course_beta": {"test_warehouse_lp": "use the argument beta"},
    "mdp_lp_course_beta": {
        "test_solve_mdp_lp_values": "use the argument beta",
        "test_solve_mdp_lp_duals": "use the argument beta",
    },
    "mdp_lp_big_cost_in_place": {"test_solve_mdp_lp_values": "R in place"},
    "mdp_lp_duals_per_pair": {"test_solve_mdp_lp_duals": "flat list"},
    "policy_nan_to_num_in_place": {"test_policy_from_lp": "R in place"},
    "policy_generator": {"test_policy_from_lp": "generator"},
    "dual_free_variables": {
        "test_dual_frequencies": "x >= 0",
        "test_dual_policy": "x >= 0",
    },
    "dual_normalises_alpha": {"test_dual_frequencies": "divided by its sum"},
    "dual_returns_policy_first": {"test_dual_frequencies": "order", "test_dual_policy": "order"},
    "dual_zeroes_inf_in_place": {"test_dual_frequencies": "R in place"},
    # issue 15: the constrained MDP
    "constrained_budget_as_equality": {
        "test_constrained_lp": "not an equality",
        "test_shadow_price": "-Pi of the budget row",
    },
    "constrained_budget_as_floor": {
        "test_constrained_lp": "sum D x <= budget",
        "test_shadow_price": "the budget binds",
    },
    "constrained_deterministic_policy": {"test_constrained_lp": "0/1 choice"},
    "constrained_pi_over_all_pairs": {"test_constrained_lp": "sums to 1"},
    "constrained_price_is_pi": {"test_shadow_price": "wrong sign"},
    "constrained_no_value_error": {"test_constrained_lp": "raise a ValueError"},
    "constrained_with_course_beta": {
        "test_constrained_lp": "course_beta",
        "test_shadow_price": "course_beta",
    },
}


@cache
def catalogue() -> dict:
    with CATALOGUE.open("rb") as handle:
        return tomllib.load(handle)


def define(source: str, name: str):
    """The function ``name`` defined by an answer cell, in the lab's namespace."""
    namespace = {"gp": gp, "GRB": gp.GRB, "np": np, "course_beta": 0.8}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace[name]


def run_quietly(check, function) -> None:
    """Run a check; a warning would reach stderr in a test cell and fail it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(function)


# --------------------------------------------------------------------------- references


def test_references_agree_with_mdplab_lp_solvers():
    for case in lab03.tabular_cases(lab03.SEED + 1, 6):
        mdp = lab03.mdplab.FiniteMDP.from_dense(case.R, case.P, case.beta)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            primal = lab03.mdplab.solve_lp(mdp, solver="highs")
            alpha = np.linspace(0.5, 2.0, case.n_states)
            dual = lab03.mdplab.solve_dual_lp(mdp, initial=alpha, solver="highs")
        np.testing.assert_allclose(primal.values, case.values, rtol=1e-7, atol=1e-7)
        x = np.zeros(case.R.shape)
        columns = mdp.pair_action
        x[mdp.pair_state, columns] = dual.occupation
        assert lab03._frequencies_problem(x, case, alpha, primal=False) is None
        x[mdp.pair_state, columns] = primal.occupation
        assert lab03._frequencies_problem(x, case, np.ones(case.n_states), primal=True) is None
        for s, a in enumerate(primal.policy):
            assert int(a) in case.optimal(s)


def test_course_numbers():
    case = lab03.warehouse_case(lab03.COURSE)
    np.testing.assert_allclose(case.values, np.array([1290, 1290, 1130, 1115]) / 49)
    assert [case.optimal(s) for s in range(4)] == [{4}, {3}, {0}, {0}]


def test_instances_include_what_the_diagnoses_need():
    cases = lab03.tabular_cases(lab03.SEED + 1, 10)
    assert any(case.values.min() < 0 for case in cases), "negative values (lb=0)"
    assert any(len(case.optimal(s)) > 1 for case in cases for s in range(case.n_states)), (
        "exact ties"
    )
    assert any(case.beta == 0 for case in cases)
    assert max(case.R.size for case in cases) <= 2000, "Gurobi's size-limited licence"


# --------------------------------------------------------------------------- answers


def test_reference_answers_pass():
    answers = reference_answers(build_master(LAB, LAYOUT))
    for name, checks in CHECKS.items():
        for check in checks.values():
            run_quietly(check, define(answers[name], name))


@pytest.mark.parametrize("entry", sorted(catalogue()["correct"]))
def test_correct_answers_pass(entry):
    for name, source in catalogue()["correct"][entry]["answers"].items():
        for check in CHECKS[name].values():
            run_quietly(check, define(source, name))


@pytest.mark.parametrize("entry", sorted(catalogue()["wrong"]))
def test_wrong_answers_fail_their_hidden_checks_with_advice(entry):
    spec = catalogue()["wrong"][entry]
    assert sorted(ADVICE[entry]) == sorted(spec["fails"]), entry
    for name, source in spec["answers"].items():
        function = define(source, name)
        for cell, check in CHECKS[name].items():
            if cell in spec["fails"]:
                with pytest.raises(HiddenCheckFailure) as failure:
                    run_quietly(check, function)
                assert ADVICE[entry][cell] in str(failure.value), str(failure.value)
            else:
                run_quietly(check, function)


def test_messages_show_no_expected_numbers():
    """A wrong answer's failure names the instance, never V*."""
    spec = catalogue()["wrong"]["holding_on_end"]
    function = define(spec["answers"]["warehouse_lp"], "warehouse_lp")
    with pytest.raises(HiddenCheckFailure) as failure:
        lab03.check_warehouse_lp(function)
    text = str(failure.value)
    for value in lab03.warehouse_case(lab03.COURSE).values:
        assert f"{value:.2f}" not in text and f"{value:.4g}" not in text


# --------------------------------------------------------------------------- issue 12


def _reference(name: str):
    return define(reference_answers(build_master(LAB, LAYOUT))[name], name)


def _raising(message: str, error: type[Exception] = RuntimeError):
    def function(*args, **kwargs):
        raise error(message)

    return function


@pytest.mark.parametrize(
    ("check", "message", "words"),
    [
        (lab03.check_dual_frequencies, "dual LP status 4", ["status 4", "factor beta", "x >= 0"]),
        (lab03.check_dual_frequencies, "dual LP status 3", ["infeasible", "factor beta"]),
        (lab03.check_dual_policy, "status = 5", ["unbounded", "x >= 0"]),
        (lab03.check_solve_mdp_lp_values, "LP status 5", ["unbounded", "MAXIMISES"]),
        (lab03.check_warehouse_lp, "no optimum (status 3)", ["infeasible", "<= r(s, a)"]),
    ],
)
def test_lp_statuses_are_worded_with_their_usual_causes(check, message, words):
    with pytest.raises(HiddenCheckFailure) as failure:
        check(_raising(message))
    text = str(failure.value)
    for word in words:
        assert word in text, text
    if "status 3" in message:
        assert "x >= 0" not in text and "MAXIMISES" not in text  # no unbounded causes


def test_a_broadcast_error_names_the_shapes():
    def policy(R, P, beta, V, tol=1e-6):
        R, P, V = np.asarray(R), np.asarray(P), np.asarray(V)
        return np.argmin(R + beta * P @ V - V, axis=1)

    with pytest.raises(HiddenCheckFailure, match=r"V\[:, None\]"):
        lab03.check_policy_from_lp(policy)


def test_numeric_policy_answers_pass():
    """float32, pandas, np.matrix, Fraction and float actions keep full marks."""
    from fractions import Fraction

    import pandas as pd

    warehouse_lp, solve_mdp_lp = _reference("warehouse_lp"), _reference("solve_mdp_lp")
    policy_from_lp, solve_dual_lp = _reference("policy_from_lp"), _reference("solve_dual_lp")
    lab03.check_warehouse_lp(lambda *a: pd.Series(warehouse_lp(*a)))
    lab03.check_warehouse_lp(lambda *a: [Fraction(v) for v in warehouse_lp(*a)])
    lab03.check_warehouse_lp(lambda *a: np.matrix(warehouse_lp(*a)).T)
    lab03.check_solve_mdp_lp_values(
        lambda *a: tuple(np.asarray(z, dtype=np.float32) for z in solve_mdp_lp(*a))
    )
    lab03.check_solve_mdp_lp_duals(
        lambda *a: tuple(np.asarray(z, dtype=np.float32) for z in solve_mdp_lp(*a))
    )
    lab03.check_policy_from_lp(lambda *a, **k: policy_from_lp(*a, **k).astype(float))
    lab03.check_dual_policy(lambda *a: (solve_dual_lp(*a)[0], solve_dual_lp(*a)[1].astype(float)))


def test_low_precision_values_fail_as_precision():
    warehouse_lp = _reference("warehouse_lp")
    with pytest.raises(HiddenCheckFailure, match="precision, not logic"):
        lab03.check_warehouse_lp(lambda *a: np.asarray(warehouse_lp(*a), dtype=np.float16))
