r"""Hidden check of lab04's Exercise 7: the warehouse's costs with holding charged on the
ending inventory.

The student's ``ending_holding_costs(capacity, setup_cost, unit_cost, holding_cost,
demand_pmf)`` returns, in the layout of the lab's ``warehouse_arrays`` (rows
:math:`s = 0, \dots, C`, columns :math:`a = 0, \dots, C + \min D`),

.. math::

    r^{\text{end}}(s, a) = K\,[a > 0] + c\,a + h\,(s + a - \mathbb{E}[D])

where :math:`a` is feasible in :math:`s`, and :math:`+\infty` elsewhere. The reference is
:func:`mdplab.warehouse` with ``holding_on="end"``, through
:meth:`~mdplab.checks.warehouses.Warehouse.arrays`.

Instances: the course's warehouse, two fixed ones whose demand values are not equally
likely (one with a demand of 0), and warehouses drawn from the lab's seed mixed with the
grading run's: capacity 1-9, one to three demand values in 0..5, a positive holding cost
(with :math:`h = 0` the conventions coincide and a mistake could hide). The demand
dictionary is handed over with its keys in a random order, and must come back unchanged.
Messages name the call and the mistake, never the expected costs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from mdplab.checks.common import HiddenCheckFailure, call_student, instance_rng, known_mistake
from mdplab.checks.numeric import VALUE_ATOL, VALUE_RTOL, as_values, precision_note
from mdplab.checks.warehouses import COURSE, Warehouse, random_demand

__all__ = ["check_ending_holding_costs", "ending_cases"]

SEED = 20261205
# The course's costs, which a function may write in instead of its arguments.
COURSE_COSTS = (4.0, 1.0, 1.0)


def ending_cases(seed: int = SEED, n_random: int = 10) -> list[Warehouse]:
    """The course's warehouse, two fixed ones with unequal demand probabilities, and
    ``n_random`` drawn ones (discount factors play no part in a cost array)."""
    rng = instance_rng(seed)
    cases = [
        COURSE,
        Warehouse(2, 3.0, 2.0, 1.0, ((1, 0.75), (0, 0.25)), 0.8),
        Warehouse(5, 6.5, 0.5, 2.0, ((2, 0.2), (4, 0.5), (3, 0.3)), 0.8),
    ]
    costs = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    for _ in range(n_random):
        capacity = int(rng.integers(1, 10))
        k = int(rng.integers(1, min(3, capacity + 1) + 1))
        cases.append(
            Warehouse(
                capacity=capacity,
                setup_cost=float(rng.choice([1.0, 2.0, 4.0, 7.5, 12.0])),
                unit_cost=float(rng.choice(costs)),
                holding_cost=float(rng.choice(costs[1:])),
                demand=random_demand(rng, k, capacity, values_below=6),
                discount=0.8,
            )
        )
    return cases


def _close(got: Any, expected: Any) -> bool:
    return bool(np.allclose(got, expected, rtol=VALUE_RTOL, atol=VALUE_ATOL))


def _what(w: Warehouse) -> str:
    return (
        f"ending_holding_costs({w.capacity}, {w.setup_cost:g}, {w.unit_cost:g}, "
        f"{w.holding_cost:g}, {w.pmf_text()})"
    )


def _mistakes(w: Warehouse) -> list[tuple[np.ndarray, str]]:
    """What the usual mistakes give on ``w``, as arrays of R's shape (only their feasible
    pairs count)."""
    R_start, _ = w.arrays()
    n_states, n_actions = R_start.shape
    s = np.arange(n_states, dtype=float)[:, None]
    a = np.arange(n_actions, dtype=float)[None, :]
    K, c, h = w.setup_cost, w.unit_cost, w.holding_cost
    setup = np.where(a > 0, K, 0.0)
    values = [d for d, _ in w.demand]
    plain_mean = sum(values) / len(values)
    course_K, course_c, course_h = COURSE_COSTS
    mistakes = [
        (
            R_start,
            "these are the costs with holding on the STARTING inventory s; this exercise "
            "charges the expected ending inventory s + a - E[D]",
        ),
        (
            setup + c * a + h * (s + a),
            "holding is charged on s + a, the stock after production; the period's demand "
            "leaves before its end: s + a - E[D]",
        ),
        (
            setup + c * a + h * (s + a - max(values)),
            "holding is charged on s + a - max(D), the smallest possible ending inventory; "
            "charge its expectation s + a - E[D]",
        ),
        (
            setup + c * a + h * (s + a - min(values)),
            "holding is charged on s + a - min(D), the largest possible ending inventory; "
            "charge its expectation s + a - E[D]",
        ),
        (
            setup + c * a + h * (s + a - plain_mean),
            "E[D] is the plain average of the demand values; weight each value d by its "
            "probability p_D(d)",
        ),
        (
            K + c * a + h * (s + a - w.mean_demand),
            "the setup cost is charged even where nothing is produced (a = 0)",
        ),
        (c * a + h * (s + a - w.mean_demand), "the setup cost is missing"),
        (setup + h * (s + a - w.mean_demand), "the cost per unit produced is missing"),
        (
            setup + c * a + h * (a - w.mean_demand),
            "the starting inventory s is missing from the ending inventory s + a - E[D]",
        ),
        (
            setup + c * a - h * (s + a - w.mean_demand),
            "the holding cost has the wrong sign; holding stock costs h per unit",
        ),
        (
            np.where(a > 0, course_K, 0.0) + course_c * a + course_h * (s + a - w.mean_demand),
            "these are the course's costs K = 4, c = 1, h = 1; use the arguments setup_cost, "
            "unit_cost and holding_cost",
        ),
    ]
    return [(np.broadcast_to(answer, R_start.shape), text) for answer, text in mistakes]


def check_ending_holding_costs(ending_holding_costs: Callable[..., object]) -> None:
    """R_end of every case: the shape, np.inf exactly at the infeasible pairs, the costs of
    the feasible ones (to the series' tolerance), and demand_pmf left as it was."""
    for w in ending_cases():
        what = _what(w)
        demand = w.pmf
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = call_student(
                ending_holding_costs,
                w.capacity,
                w.setup_cost,
                w.unit_cost,
                w.holding_cost,
                demand,
                what=what,
            )
        if demand != w.pmf:
            raise HiddenCheckFailure(
                f"{what}: your function changed its argument demand_pmf in place; read it, "
                "do not pop from it or write to it"
            )
        if got is None:
            raise HiddenCheckFailure(
                f"{what}: the function returned None; did you forget `return`?"
            )
        R_end = as_values(got, what=what)
        expected, _ = w.arrays("end")
        if R_end.shape != expected.shape:
            raise HiddenCheckFailure(
                f"{what}: R_end has the layout of warehouse_arrays' R, one row per state "
                f"0..capacity and one column per production 0..capacity + min(demand); got "
                f"shape {R_end.shape}"
            )
        infeasible = np.isinf(expected)
        if np.any(np.isnan(R_end)):
            raise HiddenCheckFailure(f"{what}: R_end holds nan; an infeasible pair costs np.inf")
        if not np.array_equal(np.isinf(R_end) & (R_end > 0), infeasible):
            raise HiddenCheckFailure(
                f"{what}: R_end must be np.inf at the infeasible pairs and only there, as in "
                "warehouse_arrays' R"
            )
        feasible = ~infeasible
        if _close(R_end[feasible], expected[feasible]):
            continue
        note = precision_note(got, expected)
        if note:
            raise HiddenCheckFailure(f"{what}: {note}")
        alternatives = [(answer[feasible], text) for answer, text in _mistakes(w)]
        mistake = known_mistake(R_end[feasible], expected[feasible], alternatives, _close)
        raise HiddenCheckFailure(
            f"{what}: "
            + (
                mistake
                or "the costs of some feasible pairs are wrong; R_end[s, a] = K [a > 0] + c a "
                "+ h (s + a - E[D])"
            )
        )
