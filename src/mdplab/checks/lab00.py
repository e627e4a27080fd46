"""Hidden checks of lab00_orientation: discounted costs and the geometric tail bound."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mdplab.checks.common import HiddenCheckFailure, as_float, call_student, instance_rng

SEED = 20261122


def reference_discounted_cost(costs: np.ndarray, beta: float) -> float:
    """sum_t beta^t c_t, by Horner's rule from the last period back."""
    total = 0.0
    for cost in reversed(np.asarray(costs, dtype=float)):
        total = cost + beta * total
    return total


def reference_periods_needed(c_max: float, beta: float, tolerance: float) -> int:
    """min { T >= 0 : beta^T c_max / (1 - beta) < tolerance }, searched upwards."""
    periods, bound = 0, c_max / (1.0 - beta)
    while bound >= tolerance:
        periods += 1
        bound *= beta
    return periods


def check_discounted_cost(discounted_cost: Callable[..., object]) -> None:
    """Random streams (lists, tuples and arrays; negative costs; β in [0, 1))."""
    rng = instance_rng(SEED)
    cases = [(np.array([3.0, -1.0, 4.0, 1.0, -5.0]), 0.5), (np.array([]), 0.0)]
    for _ in range(40):
        length = int(rng.integers(1, 60))
        costs = np.round(rng.normal(5.0, 10.0, size=length), 3)
        cases.append((costs, float(rng.choice([0.0, rng.uniform(0, 0.99)]))))
    for index, (costs, beta) in enumerate(cases):
        label, container = (("list", list), ("tuple", tuple), ("numpy array", np.asarray))[
            index % 3
        ]
        what = f"a stream of {costs.size} costs given as a {label}, beta={beta:.3g}"
        got = as_float(
            call_student(discounted_cost, container(costs.tolist()), beta, what=what), what=what
        )
        expected = reference_discounted_cost(costs, beta)
        if math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9):
            continue
        if math.isclose(got, float(costs.sum()), rel_tol=1e-9, abs_tol=1e-9):
            raise HiddenCheckFailure(f"{what}: the costs were added up without discounting")
        if math.isclose(got, beta * expected, rel_tol=1e-9, abs_tol=1e-9):
            raise HiddenCheckFailure(
                f"{what}: every cost is discounted once too often; period 0 has weight beta**0 = 1"
            )
        raise HiddenCheckFailure(f"{what}: the discounted cost is wrong")


def check_periods_needed(periods_needed: Callable[..., object]) -> None:
    """Random bounds, plus ties where the tail bound equals the tolerance exactly."""
    rng = instance_rng(SEED + 1)
    # Powers of two make the bound hit the tolerance exactly: the strict inequality matters.
    cases = [(1.0, 0.5, 2.0), (4.0, 0.5, 1.0), (3.0, 0.0, 3.0), (0.0, 0.0, 1e-9)]
    while len(cases) < 44:
        c_max, beta = float(rng.uniform(0, 100)), float(rng.uniform(0, 0.99))
        case = (c_max, beta, float(10 ** rng.uniform(-6, 1)))
        if not _near_tie(*case):
            cases.append(case)
    for c_max, beta, tolerance in cases:
        what = f"c_max={c_max:.4g}, beta={beta:.4g}, tolerance={tolerance:.3g}"
        got = call_student(periods_needed, c_max, beta, tolerance, what=what)
        if isinstance(got, bool) or not float(as_float(got, what=what)).is_integer():
            raise HiddenCheckFailure(f"{what}: expected a whole number of periods, got {got!r}")
        expected = reference_periods_needed(c_max, beta, tolerance)
        got = int(as_float(got, what=what))
        if got == expected:
            continue
        if got == expected - 1:
            raise HiddenCheckFailure(
                f"{what}: one period too few; the tail bound must be strictly below the "
                "tolerance, and equal is not enough"
            )
        if got == expected + 1:
            raise HiddenCheckFailure(
                f"{what}: one period too many; T counts from 0, where the bound is c_max/(1-beta)"
            )
        raise HiddenCheckFailure(f"{what}: the number of periods is wrong")


def _near_tie(c_max: float, beta: float, tolerance: float) -> bool:
    """Whether some tail bound is within rounding of the tolerance, where a correct
    closed-form answer and a correct loop may disagree."""
    periods = reference_periods_needed(c_max, beta, tolerance)
    bounds = [beta**t * c_max / (1.0 - beta) for t in (max(periods - 1, 0), periods)]
    return any(math.isclose(bound, tolerance, rel_tol=1e-9) for bound in bounds)
