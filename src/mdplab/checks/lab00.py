"""Hidden checks of lab00_orientation: discounted costs and the geometric tail bound."""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import eq

import numpy as np

from mdplab.checks.common import (
    HiddenCheckFailure,
    as_float,
    call_student,
    instance_rng,
    known_mistake,
)
from mdplab.checks.numeric import VALUE_RTOL, describe_type, precision_note, values_close

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
    """Random streams (lists, tuples and arrays; negative costs; β in [0, 1)). A known
    mistake is named before the generic failure; a changed argument fails as such."""
    rng = instance_rng(SEED)
    cases = [(np.array([3.0, -1.0, 4.0, 1.0, -5.0]), 0.5), (np.array([]), 0.0)]
    for _ in range(40):
        length = int(rng.integers(1, 60))
        costs = np.round(rng.normal(5.0, 10.0, size=length), 3)
        cases.append((costs, float(rng.choice([0.0, rng.uniform(0, 0.99)]))))
    for index, (costs, beta) in enumerate(cases):
        label, container = (("list", list), ("tuple", tuple), ("numpy array", np.array))[index % 3]
        what = f"a stream of {costs.size} costs given as a {label}, beta={beta:.3g}"
        given = container(costs.tolist())
        try:
            got = call_student(discounted_cost, given, beta, what=what)
        except HiddenCheckFailure as failure:
            advice = _crash_advice(str(failure), failure.__cause__, costs, beta)
            raise HiddenCheckFailure(advice) from failure.__cause__
        if not np.array_equal(np.asarray(given, dtype=float), costs):
            raise HiddenCheckFailure(
                f"{what}: discounted_cost changed its argument costs in place; the caller's "
                f"{label} must stay as it was: work on a copy"
            )
        if np.ndim(got) != 0 and not isinstance(got, str):
            raise HiddenCheckFailure(
                f"{what}: discounted_cost returned {describe_type(got)} of {np.size(got)} "
                "numbers, not one number: return the sum of the discounted costs"
            )
        value = as_float(got, what=what)
        expected = reference_discounted_cost(costs, beta)
        if _close_sum(value, expected, costs, beta):
            continue
        mistake = known_mistake(value, expected, _mistakes(costs, beta), values_close)
        if mistake:
            raise HiddenCheckFailure(f"{what}: {mistake}")
        note = precision_note(got, expected)
        raise HiddenCheckFailure(f"{what}: {note or 'the discounted cost is wrong'}")


def _close_sum(got: float, expected: float, costs: np.ndarray, beta: float) -> bool:
    """The policy's tolerance (:func:`values_close`), measured, where positive and negative
    costs cancel, against the size of the terms added up rather than their small sum: a
    float32 sum is as exact as its largest terms allow."""
    scale = reference_discounted_cost(np.abs(costs), beta)
    return values_close(got, expected) or abs(got - expected) <= VALUE_RTOL * scale


def _mistakes(costs: np.ndarray, beta: float) -> list[tuple[float | None, str]]:
    """What the usual mistakes give for ``costs`` and ``beta``, with their descriptions."""
    later = reference_discounted_cost(costs[1:], beta) * beta if costs.size else None
    return [
        (float(costs.sum()), "the costs were added up without discounting"),
        (
            beta * reference_discounted_cost(costs, beta),
            "every cost is discounted once too often; period 0 has weight beta**0 = 1",
        ),
        (
            reference_discounted_cost(costs[::-1], beta),
            "the weights run backwards: the last cost is not discounted and the first is "
            "discounted most; the cost of period t has weight beta**t",
        ),
        (later, "the first cost (period t = 0, weight beta**0 = 1) is left out"),
        (
            reference_discounted_cost(costs, 0.8) if beta != 0.8 else None,
            "the weights use the course's 0.8 instead of the argument beta",
        ),
        (
            reference_discounted_cost(np.trunc(costs), beta),
            "the costs were cut to whole numbers (int): costs such as 2.5 keep their fraction",
        ),
    ]


def _crash_advice(message: str, cause: BaseException | None, costs: np.ndarray, beta: float):
    """The message for a call of discounted_cost that raised: what the stream had that the
    code did not expect, where the evidence says so."""
    if costs.size == 0 and isinstance(cause, IndexError):
        return (
            f"{message}. The stream is empty: there is no first cost to start from, and its "
            "discounted cost is 0"
        )
    if beta == 0 and isinstance(cause, ValueError | ZeroDivisionError):
        return (
            f"{message}. With beta = 0 the weights are 1, 0, 0, ... (beta**0 = 1); compute "
            "them as beta**t, since log(0) is undefined"
        )
    return message


def check_periods_needed(periods_needed: Callable[..., object]) -> None:
    """Random bounds, plus ties where the tail bound equals the tolerance exactly."""
    rng = instance_rng(SEED + 1)
    # Powers of two make the bound hit the tolerance exactly: the strict inequality matters.
    cases = [(1.0, 0.5, 2.0), (4.0, 0.5, 1.0), (3.0, 0.0, 3.0), (0.0, 0.0, 1e-9), (0.0, 0.7, 0.1)]
    while len(cases) < 44:
        c_max, beta = float(rng.uniform(0, 100)), float(rng.uniform(0, 0.99))
        case = (c_max, beta, float(10 ** rng.uniform(-6, 1)))
        if not _near_tie(*case):
            cases.append(case)
    for c_max, beta, tolerance in cases:
        what = f"c_max={c_max:.4g}, beta={beta:.4g}, tolerance={tolerance:.3g}"
        try:
            got = call_student(periods_needed, c_max, beta, tolerance, what=what)
        except HiddenCheckFailure as failure:
            if c_max == 0 and isinstance(failure.__cause__, ZeroDivisionError | ValueError):
                raise HiddenCheckFailure(
                    f"{failure}. With c_max = 0 every tail bound is 0, so the answer is T = 0: "
                    "handle c_max = 0 separately"
                ) from failure.__cause__
            raise
        if isinstance(got, bool) or not float(as_float(got, what=what)).is_integer():
            raise HiddenCheckFailure(f"{what}: expected a whole number of periods, got {got!r}")
        expected = reference_periods_needed(c_max, beta, tolerance)
        got = int(as_float(got, what=what))
        if got == expected:
            continue
        # At a tie the bound at T = expected - 1 equals the tolerance: one too few there is
        # the strict inequality, whatever else the answer would also fit.
        tie = expected > 0 and beta ** (expected - 1) * c_max / (1.0 - beta) == tolerance
        if got == expected - 1 and tie:
            raise HiddenCheckFailure(
                f"{what}: one period too few; the tail bound must be strictly below the "
                "tolerance, and equal is not enough"
            )
        mistake = known_mistake(got, expected, _period_mistakes(c_max, beta, tolerance), eq)
        if mistake:
            raise HiddenCheckFailure(f"{what}: {mistake}")
        if got == expected - 1:
            raise HiddenCheckFailure(
                f"{what}: one period too few; at T = {got} the tail bound is still at least "
                "the tolerance"
            )
        if got == expected + 1:
            raise HiddenCheckFailure(
                f"{what}: one period too many; T counts from 0, where the bound is c_max/(1-beta)"
            )
        raise HiddenCheckFailure(f"{what}: the number of periods is wrong")


def _first_below(bound: Callable[[int], float], tolerance: float) -> int | None:
    """The smallest T >= 0 with bound(T) < tolerance (None past 10 000 periods)."""
    for periods in range(10_000):
        if bound(periods) < tolerance:
            return periods
    return None


def _period_mistakes(c_max: float, beta: float, tolerance: float):
    """What the usual mistakes give, with their descriptions."""
    return [
        (
            _first_below(lambda t: beta**t * c_max, tolerance),
            "the bound beta**T * c_max misses the factor 1 / (1 - beta) of the geometric series",
        ),
        (
            _first_below(lambda t: beta**t / (1.0 - beta), tolerance) if c_max != 1 else None,
            "c_max is left out of the tail bound beta**T * c_max / (1 - beta)",
        ),
    ]


def _near_tie(c_max: float, beta: float, tolerance: float) -> bool:
    """Whether some tail bound is within rounding of the tolerance, where a correct
    closed-form answer and a correct loop may disagree."""
    periods = reference_periods_needed(c_max, beta, tolerance)
    bounds = [beta**t * c_max / (1.0 - beta) for t in (max(periods - 1, 0), periods)]
    return any(math.isclose(bound, tolerance, rel_tol=1e-9) for bound in bounds)
