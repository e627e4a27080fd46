"""The warehouse model: published course numbers, both holding conventions, validation."""

from __future__ import annotations

import numpy as np
import pytest

from mdplab import (
    FiniteMDP,
    evaluate,
    modified_policy_iteration,
    policy_iteration,
    solve_dual_lp,
    solve_lp,
    value_iteration,
    warehouse,
)

V_STAR = np.array([1290, 1290, 1130, 1115]) / 49


def loop_warehouse(capacity, setup, unit, holding, demand, beta, holding_on):
    """Independent, literal construction of the warehouse from its definition."""
    pmf = {d: p for d, p in demand.items() if p > 0}
    mean = sum(d * p for d, p in pmf.items())
    pairs = []
    for s in range(capacity + 1):
        for a in range(0, capacity + max(pmf) + 1):
            if s + a < max(pmf) or s + a - min(pmf) > capacity:
                continue
            held = s if holding_on == "start" else s + a - mean
            cost = (setup if a > 0 else 0) + unit * a + holding * held
            law: dict[int, float] = {}
            for d, p in pmf.items():
                law[s + a - d] = law.get(s + a - d, 0.0) + p
            pairs.append((s, a, cost, law))
    return FiniteMDP.from_pairs(pairs, beta, state_labels=range(capacity + 1))


def test_structure_of_the_course_model():
    mdp = warehouse()
    assert [list(mdp.actions_of(s)) for s in range(4)] == [[2, 3, 4], [1, 2, 3], [0, 1, 2], [0, 1]]
    assert mdp.cost(0, 2) == 6
    assert mdp.cost(1, 1) == 6
    assert mdp.cost(2, 0) == 2
    assert mdp.cost(3, 0) == 3
    assert mdp.cost(3, 1) == 4 + 1 + 3
    np.testing.assert_array_equal(mdp.transition_row(0, 4), [0, 0, 0.5, 0.5])
    np.testing.assert_array_equal(mdp.transition_row(2, 0), [0.5, 0.5, 0, 0])
    assert mdp.discount == 0.8
    np.testing.assert_array_equal(mdp.state_labels, [0, 1, 2, 3])


def test_published_evaluation_of_policy_2100():
    result = evaluate(warehouse(), (2, 1, 0, 0))
    np.testing.assert_allclose(result.values, [30, 30, 26, 25.4], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(result.policy, [2, 1, 0, 0])


def test_published_improvement_step_and_optimum():
    result = policy_iteration(warehouse(), policy0=(2, 1, 0, 0))
    first, second = result.history
    np.testing.assert_array_equal(first.policy, [2, 1, 0, 0])
    np.testing.assert_allclose(first.values, [30, 30, 26, 25.4], atol=1e-9)
    np.testing.assert_array_equal(second.policy, [4, 3, 0, 0])
    np.testing.assert_array_equal(result.policy, [4, 3, 0, 0])
    np.testing.assert_allclose(result.values, V_STAR, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.values, [26.3265, 26.3265, 23.0612, 22.7551], atol=5e-5)
    assert result.iterations == 2
    assert result.converged


def test_every_method_finds_the_published_optimum():
    mdp = warehouse()
    for result in (
        policy_iteration(mdp),
        value_iteration(mdp, epsilon=1e-8),
        modified_policy_iteration(mdp, epsilon=1e-8),
        solve_lp(mdp, solver="highs"),
        solve_lp(mdp, solver="gurobi"),
        solve_dual_lp(mdp, solver="highs"),
        solve_dual_lp(mdp, solver="gurobi"),
    ):
        np.testing.assert_array_equal(result.policy, [4, 3, 0, 0], err_msg=result.method)
        np.testing.assert_allclose(result.values, V_STAR, atol=1e-7, err_msg=result.method)


def test_holding_on_end_charges_expected_ending_inventory():
    mdp = warehouse(holding_on="end")
    # State 0, produce 2: setup 4 + 2 units + E[2 - D] = 0.5 held.
    assert mdp.cost(0, 2) == pytest.approx(6.5)
    assert mdp.cost(1, 1) == pytest.approx(5.5)
    assert mdp.cost(3, 0) == pytest.approx(1.5)
    # Hand solution for (2, 1, 0, 0): V0 = 6.5 + .4(V0 + V1), V1 = 5.5 + .4(V0 + V1), ...
    result = evaluate(mdp, (2, 1, 0, 0))
    np.testing.assert_allclose(result.values, [30.5, 29.5, 24.5, 23.1], atol=1e-9)
    assert not np.allclose(result.values, evaluate(warehouse(), (2, 1, 0, 0)).values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"holding_on": "end"},
        {"capacity": 6, "demand": {0: 0.2, 2: 0.3, 3: 0.5}, "setup_cost": 2.5},
        {"capacity": 4, "demand": {3: 0.25, 5: 0.75}, "unit_cost": -1.0, "discount": 0.0},
        {"capacity": 0, "demand": {2: 1.0}},
        {"capacity": 5, "demand": {1: 0.5, 2: 0.0, 4: 0.5}, "holding_on": "end"},
    ],
)
def test_vectorised_builder_matches_literal_construction(kwargs):
    params = dict(
        capacity=3,
        setup_cost=4,
        unit_cost=1,
        holding_cost=1,
        demand={1: 0.5, 2: 0.5},
        discount=0.8,
        holding_on="start",
    )
    params.update(kwargs)
    fast = warehouse(**params)
    slow = loop_warehouse(
        params["capacity"],
        params["setup_cost"],
        params["unit_cost"],
        params["holding_cost"],
        params["demand"],
        params["discount"],
        params["holding_on"],
    )
    np.testing.assert_array_equal(fast.state_ptr, slow.state_ptr)
    np.testing.assert_array_equal(fast.pair_action, slow.pair_action)
    np.testing.assert_allclose(fast.costs, slow.costs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.transitions.toarray(), slow.transitions.toarray(), atol=0)


def test_large_instance_is_cheap_and_well_formed():
    mdp = warehouse(capacity=2000, discount=0.95)
    assert mdp.n_states == 2001
    # States 0 and 1 have C actions each, state s >= 2 has C + 2 - s.
    assert mdp.n_pairs == 2 * 2000 + sum(2002 - s for s in range(2, 2001))
    assert mdp.transitions.nnz == 2 * mdp.n_pairs
    assert mdp.transitions.indices.dtype == np.int32
    assert mdp.transitions.has_sorted_indices


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": -1}, "capacity must be >= 0, got -1"),
        ({"capacity": 2.5}, "capacity must be an integer"),
        ({"discount": 1.0}, r"discount must lie in \[0, 1\), got 1.0"),
        ({"discount": -0.2}, r"discount must lie in \[0, 1\)"),
        ({"demand": {1: 0.5, 2: 0.4}}, "demand probabilities sum to 0.9"),
        ({"demand": {1: 1.5, 2: -0.5}}, r"probability of demand 2 is negative \(-0.5\)"),
        ({"demand": {-1: 0.5, 2: 0.5}}, "demand value -1 must be a non-negative integer"),
        ({"demand": {1.5: 0.5, 2: 0.5}}, "demand value 1.5 must be a non-negative integer"),
        ({"demand": {}}, "demand must be a non-empty dict"),
        ({"demand": [1, 2]}, "demand must be a non-empty dict"),
        ({"demand": {1: float("nan")}}, "probability of demand 1 must be a real number"),
        ({"holding_on": "middle"}, "holding_on must be 'start' or 'end', got 'middle'"),
        ({"setup_cost": float("inf")}, "setup_cost must be finite"),
        ({"unit_cost": "1"}, "unit_cost must be a real number"),
        ({"holding_cost": float("nan")}, "holding_cost must be finite"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        warehouse(**kwargs)


def test_demand_spread_beyond_capacity_names_the_states():
    with pytest.raises(
        ValueError,
        match=r"demand spread max - min = 5 - 1 = 4 exceeds the capacity 3.*"
        r"in state\(s\) \[0, 1, 2, 3\]",
    ):
        warehouse(capacity=3, demand={1: 0.5, 5: 0.5})


def test_negative_costs_are_allowed():
    mdp = warehouse(setup_cost=-1, unit_cost=-2, holding_cost=-0.5)
    assert mdp.cost(0, 2) == -1 - 4
    assert np.all(np.isfinite(policy_iteration(mdp).values))


def test_integral_float_demand_values_are_accepted():
    np.testing.assert_array_equal(warehouse(demand={1.0: 0.5, 2.0: 0.5}).costs, warehouse().costs)
