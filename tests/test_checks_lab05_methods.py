"""The mathematics behind lab05's later sections, tested against independent computations.

- From V0 = 0, k sweeps of value iteration give the optimal expected discounted cost of a
  k-period problem with nothing owed at the end (the lab's sentence on Lab 01's backward
  recursion): here against a brute force over every k-stage Markov deterministic policy.
- Gauss-Seidel sweeps (the reference of the hidden check) stop within epsilon / 2 of V*.
- The switching points of the inverse question: 1/2 for the course, 2/K for setup cost K,
  and every policy that produces only below 2 units is optimal at beta = 1/2.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

import mdplab
from mdplab.checks.lab05 import course_warehouse, random_tabular, warehouse_instance
from mdplab.checks.lab05_gauss_seidel import gauss_seidel_cases, reference_gauss_seidel
from mdplab.checks.lab05_switching import (
    improvement_gap,
    policy_values,
    reference_is_optimal,
    reference_switch,
    switching_cases,
)
from mdplab.checks.warehouses import COURSE, Warehouse


def brute_force_k_period(R: np.ndarray, P: np.ndarray, beta: float, k: int) -> np.ndarray:
    """min over all sequences of k decision rules of the expected discounted k-period cost,
    per starting state, each sequence evaluated by its own backward pass."""
    n = R.shape[0]
    choices = [np.flatnonzero(np.isfinite(R[s])) for s in range(n)]
    rules = [np.array(rule) for rule in itertools.product(*choices)]
    states = np.arange(n)
    best = np.full(n, np.inf)
    for plan in itertools.product(rules, repeat=k):
        cost = np.zeros(n)
        for rule in reversed(plan):  # cost of stages t..k-1 under this plan
            cost = R[states, rule] + beta * P[states, rule] @ cost
        best = np.minimum(best, cost)
    return best


@pytest.mark.parametrize(
    "warehouse",
    [
        replace(COURSE, capacity=2),
        Warehouse(2, 3.0, 0.5, 1.5, ((0, 0.3), (1, 0.4), (2, 0.3)), 0.9),
        Warehouse(1, 1.0, 2.0, 0.5, ((1, 1.0),), 0.6),
    ],
)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_sweeps_from_zero_are_the_optimal_k_period_costs(warehouse, k):
    inst = warehouse_instance(warehouse)
    sweeps = mdplab.value_iteration(inst.mdp, max_iter=k, backend="numpy")
    assert np.allclose(sweeps.values, brute_force_k_period(inst.R, inst.P, inst.beta, k))


def test_k_period_costs_of_a_random_mdp():
    inst = random_tabular(np.random.default_rng(7), beta=0.7)
    sweeps = mdplab.value_iteration(inst.mdp, max_iter=2, backend="numpy")
    assert np.allclose(sweeps.values, brute_force_k_period(inst.R, inst.P, inst.beta, 2))


def test_gauss_seidel_stops_within_half_epsilon_of_the_optimum():
    for inst, epsilon, V0 in gauss_seidel_cases():
        V, _, _ = reference_gauss_seidel(inst, epsilon, V0)
        optimum = np.asarray(mdplab.policy_iteration(inst.mdp).values, dtype=float)
        assert np.max(np.abs(V - optimum)) < epsilon / 2 * (1 + 1e-9), inst.description


def test_gauss_seidel_halves_the_sweeps_on_the_course():
    inst = course_warehouse(0.8)
    assert reference_gauss_seidel(inst, 1e-6)[1] == 40
    assert mdplab.value_iteration(inst.mdp, epsilon=1e-6, backend="numpy").iterations == 80
    assert reference_gauss_seidel(inst, 1e-6, mistake="reverse")[1] == 48


def test_the_course_policy_switches_at_one_half():
    inst = course_warehouse(0.8)
    for policy in ((4, 3, 0, 0), (2, 1, 0, 0)):
        assert reference_switch(inst.R, inst.P, policy, 0.0, 0.8) == pytest.approx(0.5, abs=1e-7)


@pytest.mark.parametrize("setup_cost", [2.5, 3.0, 5.0, 6.0, 8.0, 10.0])
def test_the_switch_is_at_two_over_the_setup_cost(setup_cost):
    inst = warehouse_instance(replace(COURSE, setup_cost=setup_cost))
    point = reference_switch(inst.R, inst.P, (4, 3, 0, 0), 0.01, 0.99)
    assert point == pytest.approx(2 / setup_cost, abs=1e-7)


def test_every_policy_producing_only_below_two_is_optimal_at_one_half():
    inst = course_warehouse(0.5)
    for a0, a1 in itertools.product((2, 3, 4), (1, 2, 3)):
        assert reference_is_optimal(inst.R, inst.P, 0.5, (a0, a1, 0, 0))
        assert np.allclose(policy_values(inst.R, inst.P, 0.5, (a0, a1, 0, 0)), [12, 12, 8, 8])
    assert improvement_gap(inst.R, inst.P, 0.5, (2, 1, 1, 0)) > 0.1


def test_switching_cases_switch_once_between_their_ends():
    for case in switching_cases():
        R, P = case.inst.R, case.inst.P
        at_lo = reference_is_optimal(R, P, case.lo, case.policy)
        assert at_lo != reference_is_optimal(R, P, case.hi, case.policy)
        assert case.lo < case.point < case.hi
        for beta in np.linspace(case.lo, case.hi, 40):
            if abs(beta - case.point) > 1e-6:
                assert reference_is_optimal(R, P, beta, case.policy) == (
                    at_lo if beta < case.point else not at_lo
                )
