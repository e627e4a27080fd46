"""The hidden checks of lab04 (policy iteration): the reference answers pass, the correct
catalogue answers pass, and every wrong catalogue answer fails its hidden check with the
advice meant for it (the visible asserts, which often fail first, are bypassed here)."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
from course_helpers import LAYOUT

import mdplab
from mdplab.checks import lab04
from mdplab.checks.common import HiddenCheckFailure
from mdplab.checks.lab04_ending import check_ending_holding_costs
from mdplab.course.authoring import build_master
from mdplab.course.catalogue import load_catalogue
from mdplab.course.derive import reference_answers

pytest.importorskip("gurobipy")

LAB = LAYOUT.lab("lab04")
CHECKS = {
    "evaluate_policy": lab04.check_evaluate_policy,
    "evaluate_policy_gurobi": lab04.check_evaluate_policy_gurobi,
    "q_values": lab04.check_q_values,
    "improve_policy": lab04.check_improve_policy,
    "policy_iteration": lab04.check_policy_iteration,
    "policy_iteration_history": lab04.check_policy_iteration_history,
    "ending_holding_costs": check_ending_holding_costs,
    "modified_policy_iteration": lab04.check_modified_policy_iteration,
}
FUNCTION = {name: name for name in CHECKS} | {"policy_iteration_history": "policy_iteration"}

# Which hidden check each wrong answer trips first, and words its message must contain.
EXPECTED = {
    "wrong.eval_no_discount": ("evaluate_policy", "beta must multiply P_pi"),
    "wrong.eval_plus_sign": ("evaluate_policy", "(I - beta P_pi) V = r_pi, not (I + beta"),
    "wrong.eval_transposed": ("evaluate_policy", "transposed"),
    "wrong.eval_swapped_indices": ("evaluate_policy", "indices are swapped"),
    "wrong.eval_averages_all_actions": ("evaluate_policy", "averaged"),
    "wrong.eval_no_dictionaries": ("evaluate_policy", "given as a dictionary"),
    "wrong.eval_policy_before_beta": ("evaluate_policy", "takes the policy before beta"),
    "wrong.gurobi_holding_on_ending_inventory": ("evaluate_policy_gurobi", "ENDING inventory"),
    "wrong.gurobi_holding_after_production": ("evaluate_policy_gurobi", "after production"),
    "wrong.gurobi_no_discount": ("evaluate_policy_gurobi", "multiplied by beta"),
    "wrong.q_no_discount": ("q_values", "discount beta is missing"),
    "wrong.q_infeasible_zero": ("q_values", "+inf at infeasible pairs"),
    "wrong.improve_argmax": ("improve_policy", "takes the SMALLEST"),
    "wrong.improve_masks_infeasible_wrongly": ("improve_policy", "takes the SMALLEST"),
    "wrong.improve_immediate_cost_only": ("improve_policy", "only the immediate cost"),
    "wrong.pi_one_improvement": ("policy_iteration", "single improvement step"),
    "wrong.pi_stops_on_small_value_change": ("policy_iteration", "change in values"),
    "wrong.pi_history_not_copied": ("policy_iteration_history", "store a copy"),
    "wrong.pi_evaluates_final_policy_twice": ("policy_iteration_history", "the same policy"),
    "wrong.eval_cleans_R_in_place": ("evaluate_policy", "changed its argument R in place"),
    "wrong.eval_global_BETA": ("evaluate_policy", "the notebook's BETA"),
    "wrong.eval_values_as_generator": ("evaluate_policy", "is a generator"),
    "wrong.gurobi_setup_always": ("evaluate_policy_gurobi", "setup cost is charged even"),
    "wrong.gurobi_global_BETA": ("evaluate_policy_gurobi", "the notebook's BETA"),
    "wrong.q_current_state_value": ("q_values", "current state's V[s]"),
    "wrong.improve_returns_generator": ("improve_policy", "is a generator"),
    "wrong.pi_changes_policy0_in_place": ("policy_iteration", "argument policy0 in place"),
    "wrong.pi_returns_values_first": ("policy_iteration", "order (policy, V, history)"),
    "wrong.pi_history_values_one_step_ahead": ("policy_iteration_history", "not its own"),
    "wrong.pi_hard_coded_course_start": ("policy_iteration", "Start from policy0"),
    "wrong.mpi_threshold_epsilon": ("modified_policy_iteration", "epsilon (1 - beta) / (2 beta)"),
    "wrong.mpi_k_plus_one": ("modified_policy_iteration", "k + 1 partial evaluation sweeps"),
    "wrong.mpi_evaluate_from_old_values": ("modified_policy_iteration", "starts from u_0"),
    "wrong.mpi_sweeps_take_min": ("modified_policy_iteration", "minimum over actions again"),
    "wrong.mpi_in_place_sweeps": ("modified_policy_iteration", "Gauss-Seidel"),
    "wrong.mpi_returns_previous_values": ("modified_policy_iteration", "returns V_n"),
    "wrong.mpi_counts_from_zero": ("modified_policy_iteration", "count the improvement steps"),
    "wrong.mpi_counts_every_sweep": ("modified_policy_iteration", "counts every sweep"),
    "wrong.mpi_maximises": ("modified_policy_iteration", "costs are minimised"),
    "wrong.mpi_exact_evaluation": ("modified_policy_iteration", "partial evaluation sweeps"),
    "wrong.mpi_course_answers": ("modified_policy_iteration", "modified_policy_iteration(R, P"),
    "wrong.ending_same_as_starting": ("ending_holding_costs", "STARTING inventory"),
    "wrong.ending_after_production": ("ending_holding_costs", "stock after production"),
    "wrong.ending_worst_case_demand": ("ending_holding_costs", "s + a - max(D)"),
    "wrong.ending_plain_average": ("ending_holding_costs", "plain average"),
    "wrong.ending_infeasible_zero": ("ending_holding_costs", "np.inf at the infeasible pairs"),
    "wrong.ending_setup_always": ("ending_holding_costs", "even where nothing is produced"),
    "wrong.ending_pops_demand": ("ending_holding_costs", "demand_pmf in place"),
    "wrong.ending_course_costs": ("ending_holding_costs", "course's costs"),
    "wrong.ending_returns_pair": ("ending_holding_costs", "ending_holding_costs("),
}
# A check of a function that builds on others names the one that is wrong.
BLAMED = {
    ("wrong.q_current_state_value", "improve_policy"): "improve_policy uses your q_values",
    ("wrong.q_current_state_value", "policy_iteration"): "policy_iteration uses your q_values",
    ("wrong.eval_cleans_R_in_place", "policy_iteration"): "uses your evaluate_policy",
    ("wrong.eval_global_BETA", "policy_iteration_history"): "uses your evaluate_policy",
    ("wrong.improve_returns_generator", "policy_iteration"): "uses your improve_policy",
}
# The functions each check builds on, passed to it as the lab's hidden tests do.
COMPONENTS = {
    "improve_policy": ("q_values",),
    "policy_iteration": ("evaluate_policy", "q_values", "improve_policy"),
    "policy_iteration_history": ("evaluate_policy", "q_values", "improve_policy"),
}
ENTRIES = {entry.name: entry for entry in load_catalogue(LAYOUT, LAB)}


@cache
def _master_cells() -> tuple[str, list[tuple[str, str]]]:
    """The setup cell's code and the (grade_id, reference code) of every answer cell."""
    master = build_master(LAB, LAYOUT)
    answers = reference_answers(master)
    setup = next(c.source for c in master.cells if c.get("id") == "setup")
    ordered = [
        (c.id, answers[c.id])
        for c in master.cells
        if c.cell_type == "code" and c.get("id") in answers
    ]
    return setup, ordered


def namespace(answers: dict[str, str] | None = None) -> dict:
    """The notebook's globals after the setup cell and the answer cells (reference answers
    unless ``answers`` replaces some)."""
    setup, ordered = _master_cells()
    ns: dict = {}
    exec(setup, ns)
    for grade_id, code in ordered:
        exec((answers or {}).get(grade_id, code), ns)
    return ns


def run_check(check: str, ns: dict) -> None:
    CHECKS[check](ns[FUNCTION[check]], *(ns[name] for name in COMPONENTS.get(check, ())))


@pytest.mark.parametrize("check", list(CHECKS))
def test_reference_passes(check, capsys):
    run_check(check, namespace())
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", sorted(n for n in ENTRIES if n.startswith("correct.")))
def test_correct_answers_pass(name):
    ns = namespace(ENTRIES[name].answers)
    for check in CHECKS:
        run_check(check, ns)


def test_every_wrong_entry_has_an_expected_message():
    assert set(EXPECTED) == {n for n in ENTRIES if n.startswith("wrong.")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wrong_answers_fail_with_their_advice(name):
    check, words = EXPECTED[name]
    ns = namespace(ENTRIES[name].answers)
    with pytest.raises(HiddenCheckFailure) as failure:
        run_check(check, ns)
    assert words in str(failure.value), str(failure.value)


@pytest.mark.parametrize(("name", "check"), sorted(BLAMED))
def test_checks_name_the_function_that_is_wrong(name, check):
    ns = namespace(ENTRIES[name].answers)
    with pytest.raises(HiddenCheckFailure) as failure:
        run_check(check, ns)
    assert BLAMED[name, check] in str(failure.value), str(failure.value)


def test_endless_loop_is_stopped(monkeypatch):
    monkeypatch.setattr(lab04, "TIME_LIMIT", 0.3)

    def spins(R, P, beta, policy0):
        while True:
            pass

    with pytest.raises(HiddenCheckFailure, match="did not finish within"):
        lab04.check_policy_iteration(spins)


def test_notebook_helper_builds_the_same_arrays_as_the_checks():
    helper = namespace()["warehouse_arrays"]
    rng = np.random.default_rng(5)
    for w in [*lab04.FIXED, *(lab04.random_warehouse(rng) for _ in range(30))]:
        R, P = helper(w.capacity, w.setup_cost, w.unit_cost, w.holding_cost, w.pmf)
        R_ref, P_ref = w.arrays()
        np.testing.assert_array_equal(R, R_ref)
        np.testing.assert_allclose(P, P_ref, atol=1e-15)


def test_course_numbers():
    case = lab04.warehouse_case(lab04.COURSE)
    np.testing.assert_allclose(case.values([2, 1, 0, 0]), [30, 30, 26, 25.4])
    solution = mdplab.policy_iteration(case.mdp, [2, 1, 0, 0])
    assert solution.iterations == 2
    np.testing.assert_array_equal(solution.policy, [4, 3, 0, 0])
    np.testing.assert_allclose(solution.values, [26.3265, 26.3265, 23.0612, 22.7551], atol=1e-4)


def test_greedy_sets_contain_mdplab_greedy():
    for case, V, _ in lab04._value_cases(lab04.SEED + 3, 10, 12):
        allowed = lab04._greedy_sets(case.Q(V))
        chosen = [int(a) for a in mdplab.greedy(case.mdp, V)]
        assert all(a in allowed[s] for s, a in enumerate(chosen))


@pytest.mark.parametrize("index", range(len(lab04.CHAINS)))
def test_slow_chains_take_many_small_steps(index):
    case, start = lab04.CHAINS[index]
    solution = mdplab.policy_iteration(case.mdp, start)
    assert solution.iterations == case.n_states + 1
    values = [step.values for step in solution.history]
    changes = [np.max(np.abs(b - a)) for a, b in itertools.pairwise(values)]
    assert max(changes) < 1e-4
    # an allclose stopping rule would stop after the first improvement
    assert np.allclose(values[1], values[0])


def test_iteration_cases_include_long_runs():
    lengths = [
        mdplab.policy_iteration(case.mdp, start).iterations
        for case, start in lab04._iteration_cases(lab04.SEED + 4, 8, 10)
    ]
    assert sum(n >= 3 for n in lengths) >= 5, lengths


def test_infeasible_choices_are_told_apart():
    R = np.array([[1.0, 2.0], [np.inf, 0.0]])
    P = np.zeros((2, 2, 2))
    P[0, 0], P[0, 1], P[1, 1] = [1, 0], [0, 1], [1, 0]
    case = lab04.tabular_case(R, P, 0.5, "a two-state model")
    V = np.zeros(2)
    assert "MINIMISES" in lab04._improvement_problem([1, 0], case, V)  # argmax, inf included
    assert "masked with -inf" in lab04._improvement_problem([0, 0], case, V)
    assert "LARGEST" in lab04._improvement_problem([1, 1], case, V)
