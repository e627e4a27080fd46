r"""Hidden checks of lab03's Exercise 5: a constrained MDP through the dual LP.

The dual LP over discounted state-action frequencies gets one more row, a budget on a
resource :math:`d(s, a) \ge 0`:

.. math:: \min_{x \ge 0} \sum_{s,a} r(s,a) x(s,a) \quad\text{s.t.}\quad
          \sum_a x(s',a) - \beta \sum_{s,a} P(s' \mid s,a) x(s,a) = \alpha(s'),\qquad
          \sum_{s,a} d(s,a) x(s,a) \le H.

Every feasible :math:`x` is the discounted frequency of the policy
:math:`\pi(a \mid s) = x(s,a) / \sum_{a'} x(s,a')`, so the optimum is the best policy within
the budget (Altman, 1999, ch. 3); a vertex has at most :math:`S + 1` positive entries, so
it randomises in at most one state. The budget row's dual value gives the shadow price
:math:`\lambda \ge 0`, the cost saved per unit of extra budget.

The reference is scipy's HiGHS (``linprog``), independent of the student's Gurobi. Cases:
the course's warehouse with a cap on the stock carried, then random MDPs (from
:mod:`mdplab.checks.lab03`) with random resources and budgets strictly between the least
usage any policy achieves and the usage of the unconstrained optimum, kept only where the
shadow price is the same a little left and right of the budget (so it is unique). The
optimum is judged by its cost, feasibility and the policy read from it (optimal ``x`` need
not be unique); the price by its value. Messages name the call, never an expected number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from mdplab.checks.common import HiddenCheckFailure, instance_seed
from mdplab.checks.lab03 import Case, _call, _dual_hint, random_tabular, warehouse_case
from mdplab.checks.warehouses import COURSE

SEED = 20261209
COURSE_BETA = 0.8
TOL = 1e-6


@dataclass(frozen=True)
class Constrained:
    """A constrained dual LP and its reference optimum (None when infeasible)."""

    case: Case
    alpha: np.ndarray
    D: np.ndarray
    budget: float
    cost: float | None
    price: float | None

    @property
    def feasible(self) -> bool:
        return self.cost is not None


def _lp_data(case: Case, beta: float, alpha: np.ndarray, D: np.ndarray):
    pairs = np.argwhere(case.feasible)
    A_eq = np.zeros((case.n_states, len(pairs)))
    for k, (s, a) in enumerate(pairs):
        A_eq[s, k] += 1.0
        A_eq[:, k] -= beta * case.P[s, a]
    costs = np.array([case.R[s, a] for s, a in pairs])
    usage = np.array([D[s, a] for s, a in pairs])
    return pairs, A_eq, costs, usage


def reference(
    case: Case, alpha: np.ndarray, D: np.ndarray, budget: float | None, *, beta: float | None = None
) -> tuple[float, float, np.ndarray] | None:
    """(least cost, shadow price, x) by HiGHS; the budget row left out when ``budget`` is
    None; None when infeasible."""
    b = case.beta if beta is None else beta
    pairs, A_eq, costs, usage = _lp_data(case, b, alpha, D)
    kwargs: dict[str, Any] = {}
    if budget is not None:
        kwargs = {"A_ub": usage[None, :], "b_ub": [budget]}
    result = linprog(costs, A_eq=A_eq, b_eq=alpha, bounds=(0, None), method="highs", **kwargs)
    if result.status != 0:
        return None
    x = np.zeros(case.R.shape)
    for k, (s, a) in enumerate(pairs):
        x[s, a] = result.x[k]
    price = 0.0 if budget is None else float(-result.ineqlin.marginals[0])
    return float(result.fun), max(price, 0.0), x


def least_usage(case: Case, alpha: np.ndarray, D: np.ndarray) -> float:
    """The least discounted usage of the resource that any policy achieves."""
    _, A_eq, _, usage = _lp_data(case, case.beta, alpha, D)
    result = linprog(usage, A_eq=A_eq, b_eq=alpha, bounds=(0, None), method="highs")
    return float(result.fun)


def _constrained(case: Case, alpha: np.ndarray, D: np.ndarray, budget: float) -> Constrained:
    found = reference(case, alpha, D, budget)
    if found is None:
        return Constrained(case, alpha, D, budget, None, None)
    return Constrained(case, alpha, D, budget, found[0], found[1])


def course_stock() -> tuple[Case, np.ndarray]:
    case = warehouse_case(COURSE)
    D = np.where(case.feasible, np.arange(case.n_states)[:, None] * 1.0, 0.0)
    return case, D


def constrained_cases(seed: int = SEED) -> list[Constrained]:
    """The course's warehouse (uneven start, caps that bind, do not bind and cannot be
    kept), then random MDPs with a binding budget and a unique shadow price. Drawn once per
    seed in force (both checks of the exercise use them)."""
    return _cases(instance_seed(seed))


@functools.cache
def _cases(key: int) -> list[Constrained]:
    rng = np.random.default_rng(key)
    course, stock = course_stock()
    start = np.array([0.1, 0.2, 0.3, 0.4])
    cases = [
        _constrained(course, start, stock, 4.5),
        _constrained(course, start, stock, 12.0),
        _constrained(course, np.full(4, 0.25), stock, 7.2),
    ]
    attempts = 0
    while len(cases) < 12 and attempts < 300:
        attempts += 1
        case = random_tabular(rng, beta=float(rng.choice([0.5, 0.7, 0.9])))
        weights = rng.integers(1, 5, size=case.n_states).astype(float)
        alpha = weights / weights.sum()
        D = np.where(case.feasible, rng.integers(0, 6, size=case.R.shape).astype(float), 0.0)
        free = reference(case, alpha, D, None)
        assert free is not None
        low, high = least_usage(case, alpha, D), float(np.sum(D * free[2]))
        if high - low < 0.2:
            continue
        budget = round(float(low + rng.uniform(0.2, 0.8) * (high - low)), 3)
        prices = [reference(case, alpha, D, budget + step) for step in (-1e-3, 0.0, 1e-3)]
        if any(p is None for p in prices):
            continue
        values = [p[1] for p in prices if p is not None]
        if values[1] > 1e-6 and max(values) - min(values) <= 1e-7 * (1 + values[1]):
            cases.append(_constrained(case, alpha, D, budget))
    cases.append(_constrained(course, start, stock, 3.0))  # no policy carries this little
    return cases


def _what(item: Constrained) -> str:
    alpha = "[" + ", ".join(f"{a:g}" for a in item.alpha) + "]"
    return (
        f"solve_constrained_dual_lp(R, P, beta, alpha={alpha}, D, budget={item.budget:g}) for "
        f"{item.case.label}"
    )


def _call_student(function: Callable[..., object], item: Constrained) -> Any:
    R, P, beta = item.case.inputs()
    return _call(
        function,
        R,
        P,
        beta,
        item.alpha.copy(),
        item.D.copy(),
        item.budget,
        what=_what(item),
        hint=_dual_hint,
        watch={0: "R", 1: "P", 3: "alpha", 4: "D"},
        name="solve_constrained_dual_lp",
    )


def _solve(function: Callable[..., object], item: Constrained) -> Any:
    """The student's answer on a case whose budget can be kept: a ValueError there is a
    mistake, named when the notebook's course_beta explains it."""
    try:
        return _call_student(function, item)
    except HiddenCheckFailure as failure:
        if not isinstance(failure.__cause__, ValueError):
            raise
        at_course_beta = reference(item.case, item.alpha, item.D, item.budget, beta=COURSE_BETA)
        if item.case.beta != COURSE_BETA and at_course_beta is None:
            raise HiddenCheckFailure(
                f"{failure}; this budget can be kept, but not in the LP of beta = 0.8: are the "
                "balance rows built with the notebook's course_beta instead of the argument?"
            ) from None
        raise HiddenCheckFailure(
            f"{failure}; this budget can be kept (some policy uses less), so the LP has an "
            "optimum: check the balance rows and the budget row"
        ) from None


def _triple(got: Any, item: Constrained) -> tuple[np.ndarray, np.ndarray, float]:
    what = _what(item)
    if not isinstance(got, tuple | list) or len(got) != 3:
        raise HiddenCheckFailure(f"{what}: return the triple (x, pi, shadow_price)")
    try:
        x = np.asarray(got[0], dtype=float)
        pi = np.asarray(got[1], dtype=float)
        price = float(got[2])
    except (TypeError, ValueError):
        raise HiddenCheckFailure(
            f"{what}: x and pi should be arrays of numbers and the shadow price a number"
        ) from None
    if x.shape != item.case.R.shape or pi.shape != item.case.R.shape:
        raise HiddenCheckFailure(f"{what}: x and pi have the shape of R")
    return x, pi, price


def _infeasible(function: Callable[..., object], item: Constrained) -> None:
    try:
        _call_student(function, item)
    except HiddenCheckFailure as failure:
        if isinstance(failure.__cause__, ValueError):
            return
        raise HiddenCheckFailure(
            f"{failure}; no policy keeps this budget, so the LP is infeasible: raise a "
            "ValueError that says so"
        ) from None
    raise HiddenCheckFailure(
        f"{_what(item)}: no policy keeps this budget, so the LP is infeasible: raise a "
        "ValueError that says so"
    )


def check_constrained_optimum(solve_constrained_dual_lp: Callable[..., object]) -> None:
    """x is feasible and optimal (least cost within the budget) and pi is x normalised per
    state; an infeasible budget raises ValueError."""
    for item in constrained_cases():
        if not item.feasible:
            _infeasible(solve_constrained_dual_lp, item)
            continue
        x, pi, _ = _triple(_solve(solve_constrained_dual_lp, item), item)
        problem = _optimum_problem(item, x, pi)
        if problem:
            raise HiddenCheckFailure(f"{_what(item)}: {problem}")


def _optimum_problem(item: Constrained, x: np.ndarray, pi: np.ndarray) -> str | None:
    case = item.case
    scale = 1.0 + float(np.max(np.abs(case.R[case.feasible]))) / max(1e-9, 1.0 - case.beta)
    feasible = case.feasible
    assert item.cost is not None
    cost = float(np.sum(x[feasible] * case.R[feasible]))
    used = float(np.sum(item.D * x))
    if np.any(x[~feasible] != 0) or np.any(x < -TOL):
        return "x must be >= 0, and 0 at infeasible pairs"
    balance = x.sum(axis=1) - case.beta * np.einsum("sa,sat->t", x, case.P) - item.alpha
    if np.max(np.abs(balance)) > TOL * scale:
        other = reference(case, item.alpha, item.D, item.budget, beta=COURSE_BETA)
        if other is not None and abs(cost - other[0]) <= TOL * scale and case.beta != 0.8:
            return "x solves the LP of beta = 0.8, the notebook's course_beta: use the argument"
        return "x does not satisfy the balance equations of the dual LP"
    if used > item.budget + TOL * scale:
        return "x uses more of the resource than the budget allows: the row is sum D x <= budget"
    if abs(cost - item.cost) > TOL * scale:
        equality = reference(case, item.alpha, item.D, None)
        if abs(used - item.budget) <= TOL * scale and cost > item.cost:
            return (
                "x uses the whole budget at a higher cost than needed: the budget row is an "
                "upper limit, sum D x <= budget, not an equality"
            )
        if equality is not None and abs(cost - equality[0]) <= TOL * scale:
            return "x is the unconstrained optimum: add the budget row sum D x <= budget"
        return "x keeps the budget but is not the cheapest x that does"
    rows = x.sum(axis=1)
    if not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
        return (
            "each row of pi is a distribution over actions and sums to 1: divide x by its row sums"
        )
    expected = x / np.where(rows > 0, rows, 1.0)[:, None]
    if not np.allclose(pi, expected, atol=1e-6):
        if np.all(np.isin(np.round(pi, 9), (0.0, 1.0))):
            return (
                "pi is a 0/1 choice of actions, but the optimum needs a randomised policy: "
                "pi[s, a] = x(s, a) / sum_a' x(s, a')"
            )
        return "pi should be x normalised state by state, pi[s, a] = x(s, a) / sum_a' x(s, a')"
    return None


def check_shadow_price(solve_constrained_dual_lp: Callable[..., object]) -> None:
    """The shadow price -Pi of the budget row (0 where it does not bind)."""
    for item in constrained_cases():
        if not item.feasible:
            continue
        _, _, price = _triple(_solve(solve_constrained_dual_lp, item), item)
        assert item.price is not None
        if abs(price - item.price) <= TOL * (1 + item.price):
            continue
        if item.price > 0 and abs(price + item.price) <= TOL * (1 + item.price):
            raise HiddenCheckFailure(
                f"{_what(item)}: the shadow price has the wrong sign: it is -Pi of the budget "
                "row, >= 0 (Gurobi's Pi of a <= row in a minimisation is <= 0)"
            )
        if item.price > 0 and abs(price) <= 1e-9:
            raise HiddenCheckFailure(
                f"{_what(item)}: the shadow price is 0, but the budget binds here: read the Pi "
                "of the budget row after optimize()"
            )
        raise HiddenCheckFailure(
            f"{_what(item)}: the shadow price should be -Pi of the budget row, the cost "
            "saved per unit of extra budget"
        )
