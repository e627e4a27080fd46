"""What the hidden checks of several labs share: naming a known mistake, and the
warehouses of lab02-lab05."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdplab.checks.common import known_mistake
from mdplab.checks.warehouses import COURSE, Warehouse, random_demand


def close(a, b) -> bool:
    return bool(np.allclose(a, b))


MISTAKES = [
    (None, "cannot be computed here"),
    (np.array([1.0, 2.0]), "the same as the right answer here"),
    (np.array([-1.0, -2.0]), "the wrong sign"),
    (np.array([-1.0, -2.0]), "a later mistake with the same answer"),
]


def test_the_first_matching_mistake_is_named():
    assert known_mistake(np.array([-1.0, -2.0]), np.array([1.0, 2.0]), MISTAKES, close) == (
        "the wrong sign"
    )


def test_a_mistake_that_gives_the_right_answer_here_is_passed_over():
    assert known_mistake(np.array([1.0, 2.0]), np.array([1.0, 2.0]), MISTAKES, close) is None


def test_an_unknown_answer_names_nothing():
    assert known_mistake(np.array([5.0, 5.0]), np.array([1.0, 2.0]), MISTAKES, close) is None


def test_the_course_warehouse_in_the_labs_layout():
    R, P = COURSE.arrays()
    assert R.shape == (4, 5) and P.shape == (4, 5, 4)
    assert [sorted(COURSE.actions(s)) for s in range(4)] == [
        [2, 3, 4], [1, 2, 3], [0, 1, 2], [0, 1],
    ]  # fmt: skip
    np.testing.assert_array_equal(np.isfinite(R[0]), [False, False, True, True, True])
    assert R[0, 2] == 4 + 2 and R[2, 0] == 2  # setup + units; holding on the start stock
    np.testing.assert_array_equal(P[0, 2], [0.5, 0.5, 0.0, 0.0])
    assert COURSE.parameters_text() == (
        "capacity=3, setup_cost=4, unit_cost=1, holding_cost=1, demand_pmf={1: 0.5, 2: 0.5}"
    )


def test_arrays_are_fresh_copies():
    R, P = COURSE.arrays()
    R[:] = 0.0
    P[:] = 0.0
    again, _ = COURSE.arrays()
    assert np.isinf(again[0, 0])


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    capacity=st.integers(0, 10),
    k=st.integers(1, 3),
    values_below=st.integers(3, 7),
)
def test_random_demand_fits_the_capacity(seed, capacity, k, values_below):
    k = min(k, capacity + 1)
    demand = random_demand(np.random.default_rng(seed), k, capacity, values_below)
    values = [d for d, _ in demand]
    assert len(set(values)) == k and all(0 <= d < values_below for d in values)
    assert max(values) - min(values) <= capacity
    probabilities = np.array([p for _, p in demand])
    assert np.all(probabilities >= 0.1) and np.isclose(probabilities.sum(), 1.0)
    np.testing.assert_allclose(probabilities * 20, np.round(probabilities * 20))
    w = Warehouse(capacity, 1.0, 1.0, 1.0, demand, 0.9)
    R, P = w.arrays()
    feasible = np.isfinite(R)
    np.testing.assert_allclose(P[feasible].sum(axis=1), 1.0)
    assert np.all(P[~feasible] == 0.0)
    assert all(feasible[s].any() for s in range(w.n_states))
