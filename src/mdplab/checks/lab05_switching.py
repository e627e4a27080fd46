r"""Hidden checks of lab05's Exercise 4: is a policy optimal, and where does it switch?

**The optimality test.** A stationary policy :math:`\pi` is optimal exactly when its values
solve the optimality equation, :math:`T V_\pi = V_\pi` (Puterman, 1994, §6.2): no feasible
action has :math:`Q_{V_\pi}(s, a) < V_\pi(s)`. The lab asks for the test with a relative
tolerance, so that policies tied with an optimal one pass. :func:`reference_is_optimal`
computes it with :math:`V_\pi` from :math:`(I - \beta P_\pi) V = r_\pi`.

**The switching point.** For a policy optimal at one end of :math:`[lo, hi]` and not at
the other, on an interval of discount factors that reaches that end, bisection on the test
finds the point :math:`\beta^\dagger` where it switches; the student's answer must be within
``tol`` of it (plus a margin for the tolerance of the test itself).

Cases are drawn from the lab's seed mixed with the grading run's: warehouses with other
setup, unit and holding costs and demand laws (whose policy switches once as
:math:`\beta` grows, found by a grid scan and kept only where the set of discount factors
that make it optimal is one interval), policies tied with the optimum at the switching
point, plainly suboptimal policies and random MDPs. Messages name the call, never an
expected answer.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import mdplab
from mdplab.checks.common import HiddenCheckFailure, instance_rng, instance_seed
from mdplab.checks.lab05 import (
    COURSE_BETA,
    Instance,
    _call,
    course_warehouse,
    random_tabular,
    warehouse_instance,
)
from mdplab.checks.warehouses import Warehouse, random_demand

SEED = 20261207
TOL = 1e-9  # the lab's default tolerance of is_optimal
CLEAR = 1e-6  # a policy counted as suboptimal improves by at least this, relatively
GRID = np.linspace(0.02, 0.97, 96)  # discount factors scanned for a single switch


def policy_values(R: np.ndarray, P: np.ndarray, beta: float, policy: Sequence[int]) -> np.ndarray:
    r""":math:`V_\pi` from :math:`(I - \beta P_\pi) V = r_\pi`."""
    states = np.arange(R.shape[0])
    chosen = np.asarray(policy, dtype=int)
    return np.linalg.solve(np.eye(states.size) - beta * P[states, chosen], R[states, chosen])


def improvement_gap(R: np.ndarray, P: np.ndarray, beta: float, policy: Sequence[int]) -> float:
    r"""The largest relative improvement :math:`(V_\pi(s) - \min_a Q(s, a)) /
    \max(1, |V_\pi(s)|)` over the states: :math:`\le 0` when :math:`\pi` is optimal."""
    V = policy_values(R, P, beta, policy)
    with np.errstate(invalid="ignore"):
        Q = np.where(np.isfinite(R), np.where(np.isfinite(R), R, 0.0) + beta * (P @ V), np.inf)
    return float(np.max((V - Q.min(axis=1)) / np.maximum(1.0, np.abs(V))))


def reference_is_optimal(
    R: np.ndarray, P: np.ndarray, beta: float, policy: Sequence[int], tol: float = TOL
) -> bool:
    """The lab's test: no feasible action improves by more than ``tol`` (relatively)."""
    return improvement_gap(R, P, beta, policy) <= tol


def reference_switch(
    R: np.ndarray, P: np.ndarray, policy: Sequence[int], lo: float, hi: float
) -> float:
    """The switching point, by bisection on the exact test to 1e-13."""
    return reference_bisection(R, P, policy, lo, hi, 1e-13, strict=True)


def optimal_policy(inst: Instance, beta: float) -> np.ndarray:
    """An optimal policy of ``inst`` at ``beta``, as action columns."""
    model = mdplab.FiniteMDP.from_dense(inst.R, inst.P, beta)
    return np.asarray(mdplab.policy_iteration(model).policy, dtype=int)


# ----------------------------------------------------------------------- Exercise 4a
@dataclass(frozen=True)
class OptimalityCase:
    inst: Instance
    beta: float
    policy: tuple[int, ...]
    optimal: bool
    tied: bool  # optimal, and another policy is too (an argmin may pick the other)


def optimality_cases(seed: int = SEED) -> list[OptimalityCase]:
    """Optimal, tied and suboptimal policies on warehouses and random MDPs."""
    rng = instance_rng(seed)
    cases: list[OptimalityCase] = []
    course = course_warehouse(0.5)
    for policy in ((4, 2, 0, 0), (3, 2, 0, 0)):  # tied with (4, 3, 0, 0) at beta = 1/2
        cases.append(OptimalityCase(course, 0.5, policy, True, True))
    for beta, policy, optimal in (
        (0.45, (2, 1, 0, 0), True),
        (0.45, (4, 3, 0, 0), False),
        (0.9, (4, 3, 1, 0), False),
        (0.9, (3, 3, 0, 0), False),
    ):
        cases.append(OptimalityCase(course, beta, policy, optimal, False))
    for switch in switching_cases(seed + 1)[:4]:  # ties at the switching point
        inst = switch.inst
        beta = float(switch.point)
        if reference_is_optimal(inst.R, inst.P, beta, switch.policy, tol=1e-12):
            cases.append(OptimalityCase(inst, beta, switch.policy, True, True))
    optimal_left, suboptimal_left = 5, 9
    while optimal_left or suboptimal_left:
        inst = random_tabular(rng) if rng.random() < 0.5 else _random_warehouse(rng)
        beta = round(float(rng.uniform(0.05, 0.97)), 3)
        policy = optimal_policy(inst, beta)
        if suboptimal_left:  # change one state's action to another feasible one
            s = int(rng.integers(inst.n_states))
            options = [a for a in np.flatnonzero(inst.feasible[s]) if a != policy[s]]
            if options:
                policy[s] = int(rng.choice(options))
        gap = improvement_gap(inst.R, inst.P, beta, policy)
        actions = tuple(int(a) for a in policy)
        if gap <= 1e-12 and optimal_left:
            cases.append(OptimalityCase(inst, beta, actions, True, False))
            optimal_left -= 1
        elif gap >= CLEAR and suboptimal_left:
            cases.append(OptimalityCase(inst, beta, actions, False, False))
            suboptimal_left -= 1
    return cases


def _answer(value: Any, what: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise HiddenCheckFailure(f"{what}: return True or False, not {type(value).__name__}")
    return bool(value)


def check_is_optimal(is_optimal: Callable[..., object]) -> None:
    """The test's answer on every case of :func:`optimality_cases`."""
    for case in optimality_cases():
        inst = case.inst
        R, P = inst.arrays()
        call = f"is_optimal(R, P, beta={case.beta:g}, policy={list(case.policy)})"
        what = f"{call} on {inst.description}"
        got = _answer(_call(is_optimal, R, P, case.beta, list(case.policy), what=what), what)
        if not (np.array_equal(R, inst.R) and np.array_equal(P, inst.P)):
            raise HiddenCheckFailure(f"{what}: is_optimal changed R or P in place")
        if got == case.optimal:
            continue
        if case.tied:
            raise HiddenCheckFailure(
                f"{what}: this policy is optimal, tied with another one (their Q-values are "
                "equal); a tied policy is optimal too. Compare min_a Q(s, a) with V_pi(s) "
                "using the tolerance, not with == or <, and not by comparing the policy with "
                "an argmin"
            )
        if case.beta != COURSE_BETA and got == reference_is_optimal(
            inst.R, inst.P, COURSE_BETA, case.policy
        ):
            raise HiddenCheckFailure(
                f"{what}: your answer is the one for beta = 0.8, the notebook's BETA: use the "
                "argument beta"
            )
        if case.optimal:
            raise HiddenCheckFailure(
                f"{what}: this policy is optimal (no action improves on V_pi), but your "
                "is_optimal says it is not"
            )
        raise HiddenCheckFailure(
            f"{what}: some feasible action improves on this policy (its Q-value under V_pi is "
            "below V_pi in some state), but your is_optimal says it is optimal. Compare every "
            "state and every feasible action, with V_pi solved exactly"
        )


# ----------------------------------------------------------------------- Exercise 4b
@dataclass(frozen=True)
class SwitchCase:
    inst: Instance
    policy: tuple[int, ...]
    lo: float
    hi: float
    point: float  # the switching point (nan when the test gives one answer at both ends)


def _random_warehouse(rng: np.random.Generator) -> Instance:
    capacity = int(rng.integers(2, 7))
    demand = random_demand(rng, int(rng.integers(1, 3)), capacity, values_below=4)
    setup = float(rng.integers(4, 21)) / 2
    unit = float(rng.integers(0, 5)) / 2
    holding = float(rng.integers(1, 5)) / 2
    return warehouse_instance(Warehouse(capacity, setup, unit, holding, demand, 0.5))


def _single_switch(inst: Instance, policy: Sequence[int]) -> bool:
    """Whether the discount factors of GRID that make ``policy`` optimal form one run
    that touches an end of the grid."""
    flags = [reference_is_optimal(inst.R, inst.P, beta, policy) for beta in GRID]
    changes = sum(a != b for a, b in itertools.pairwise(flags))
    return changes == 1


def switching_cases(seed: int = SEED) -> list[SwitchCase]:
    """Warehouses whose far- or short-sighted optimal policy switches once in [lo, hi],
    with the course's two policies first. Drawn once per seed in force (a grid scan per
    candidate takes seconds, and both checks of Exercise 4 use them)."""
    return _switching_cases(instance_seed(seed))


@functools.cache
def _switching_cases(key: int) -> list[SwitchCase]:
    rng = np.random.default_rng(key)
    course = course_warehouse(0.8)
    cases = [
        SwitchCase(course, (4, 3, 0, 0), 0.3, 0.9, 0.5),
        SwitchCase(course, (2, 1, 0, 0), 0.1, 0.95, 0.5),
    ]
    attempts = 0
    while len(cases) < 10 and attempts < 400:
        attempts += 1
        inst = _random_warehouse(rng)
        lo, hi = float(GRID[0]), float(GRID[-1])
        far, near = optimal_policy(inst, hi), optimal_policy(inst, lo)
        if np.array_equal(far, near):
            continue
        policy = tuple(int(a) for a in (far if len(cases) % 2 == 0 else near))
        if not _single_switch(inst, policy):
            continue
        point = reference_switch(inst.R, inst.P, policy, lo, hi)
        left = round(float(rng.uniform(lo, point - 0.02)), 3) if point - 0.02 > lo else lo
        right = round(float(rng.uniform(point + 0.02, hi)), 3) if point + 0.02 < hi else hi
        if not (left < point < right):
            continue
        cases.append(SwitchCase(inst, policy, left, right, point))
    return cases


def check_switching_beta(
    switching_beta: Callable[..., object], is_optimal: Callable[..., object]
) -> None:
    """The switching point within ``tol`` on every case of :func:`switching_cases`, and a
    ValueError where the policy is optimal at both ends or at neither."""
    tolerances = (1e-6, 1e-4, 1e-8)
    for index, case in enumerate(switching_cases()):
        tol = tolerances[index % len(tolerances)]
        inst = case.inst
        R, P = inst.arrays()
        what = (
            f"switching_beta(R, P, policy={list(case.policy)}, lo={case.lo:g}, hi={case.hi:g}, "
            f"tol={tol:g}) on {inst.description.split(' with beta=')[0]}"
        )
        _blame_is_optimal(is_optimal, case, what)
        got = _call(switching_beta, R, P, list(case.policy), case.lo, case.hi, tol=tol, what=what)
        if isinstance(got, bool) or not isinstance(got, float | int | np.floating | np.integer):
            raise HiddenCheckFailure(f"{what}: return the switching point as a float")
        found = float(got)
        if abs(found - case.point) <= 2 * tol + 1e-7:
            continue
        if found in (case.lo, case.hi):
            raise HiddenCheckFailure(
                f"{what}: it returned an end of the interval. Keep an interval whose ends get "
                "different answers from is_optimal, halve it until it is shorter than tol, "
                "and return its midpoint; here the policy may be optimal at lo or at hi"
            )
        at_found = reference_is_optimal(inst.R, inst.P, found, case.policy)
        at_lo = reference_is_optimal(inst.R, inst.P, case.lo, case.policy)
        side = "lo" if at_found == at_lo else "hi"
        raise HiddenCheckFailure(
            f"{what}: at the beta returned the policy is still {'' if at_found else 'not '}"
            f"optimal, as at {side}: the switch is further from {side}, more than tol away. "
            "Keep the half whose ends get different answers, and stop only when the "
            "interval is shorter than tol"
        )
    course = course_warehouse(0.8)
    _check_coarse(switching_beta, switching_cases()[2])
    for lo, hi in ((0.55, 0.9), (0.05, 0.45)):
        call = f"switching_beta(R, P, policy=[4, 3, 0, 0], lo={lo:g}, hi={hi:g})"
        what = f"{call} on {course.description}"
        R, P = course.arrays()
        try:
            _call(switching_beta, R, P, [4, 3, 0, 0], lo, hi, what=what)
        except HiddenCheckFailure as failure:
            if isinstance(failure.__cause__, ValueError):
                continue
            raise HiddenCheckFailure(
                f"{failure}; the policy gets the same answer at both ends, so there is "
                "nothing to find: raise a ValueError that says so"
            ) from None
        raise HiddenCheckFailure(
            f"{what}: the policy gets the same answer from is_optimal at both ends: raise a "
            "ValueError that says so"
        )


def reference_bisection(
    R: np.ndarray,
    P: np.ndarray,
    policy: Sequence[int],
    lo: float,
    hi: float,
    tol: float,
    *,
    strict: bool,
) -> float:
    """The midpoint the lab's bisection returns, stopping once ``hi - lo < tol`` (or
    ``<= tol`` when ``strict``, for a loop ``while hi - lo > tol``)."""
    at_lo = reference_is_optimal(R, P, lo, policy)
    while (hi - lo > tol) if strict else (hi - lo >= tol):
        mid = (lo + hi) / 2
        if reference_is_optimal(R, P, mid, policy) == at_lo:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _check_coarse(switching_beta: Callable[..., object], case: SwitchCase) -> None:
    """With a large tol the bisection must stop early: its answer is the midpoint of the
    first interval shorter than tol, not a far more precise one."""
    tol = 0.05
    inst = case.inst
    R, P = inst.arrays()
    what = (
        f"switching_beta(R, P, policy={list(case.policy)}, lo={case.lo:g}, hi={case.hi:g}, "
        f"tol={tol:g}) on {inst.description.split(' with beta=')[0]}"
    )
    got = _call(switching_beta, R, P, list(case.policy), case.lo, case.hi, tol=tol, what=what)
    try:
        found = float(got)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise HiddenCheckFailure(f"{what}: return the switching point as a float") from None
    expected = [
        reference_bisection(inst.R, inst.P, case.policy, case.lo, case.hi, tol, strict=strict)
        for strict in (False, True)
    ]
    if not any(abs(found - e) <= 1e-12 * (1 + abs(e)) for e in expected):
        raise HiddenCheckFailure(
            f"{what}: the answer is not the midpoint of the first interval shorter than tol "
            "that bisection reaches: halve [lo, hi] only until it is shorter than tol (use the "
            "argument tol), then return the midpoint"
        )


def _blame_is_optimal(is_optimal: Callable[..., object], case: SwitchCase, what: str) -> None:
    """Fail first when the student's is_optimal is wrong at the case's ends."""
    inst = case.inst
    for beta in (case.lo, case.hi):
        R, P = inst.arrays()
        expected = reference_is_optimal(inst.R, inst.P, beta, case.policy)
        call = f"is_optimal(R, P, beta={beta:g}, policy={list(case.policy)})"
        try:
            got = _call(is_optimal, R, P, beta, list(case.policy), what=call)
        except HiddenCheckFailure as failure:
            raise HiddenCheckFailure(
                f"{what}: switching_beta uses your is_optimal, which fails here: {failure}"
            ) from None
        if not isinstance(got, bool | np.bool_) or bool(got) != expected:
            raise HiddenCheckFailure(
                f"{what}: switching_beta uses your is_optimal, and {call} gives the wrong "
                "answer on this model: fix is_optimal first (Exercise 4a)"
            )
