r"""Hidden checks of lab03_linear_programming: the primal LP of the warehouse and of any finite
MDP, the policy read from the tight constraints, and the dual LP.

Instances are warehouses (capacities 1 to 8, one to three demand values in 0..5, costs on a
grid of halves, some zero, discounts in [0, 0.95]) and randomly drawn tabular MDPs (2 to 7
states, 1 to 5 action columns, infeasible pairs, costs that may be negative, transitions with
one to all next states), plus a few built to matter: negative values (a variable bound
``lb=0`` shows), exact ties between actions, ``beta = 0``.

References come from :mod:`mdplab`: :func:`mdplab.policy_iteration` for :math:`V^*` (exact up
to rounding: it solves linear systems) and the optimal actions, which are the actions whose
Bellman constraint has zero slack at :math:`V^*`. Frequencies and dual values are checked as
an optimality certificate (non-negative, zero on infeasible pairs, the balance equations, and
:math:`\sum r x = \sum_s \alpha(s) V^*(s)`), so any optimal answer passes where the LP has
several. The checks never run an LP solver themselves; the student's functions run gurobipy.

A failure names the function, the instance (its inputs) and, where the answer matches a usual
mistake, that mistake: the LP minimised, an inequality reversed or the discount missing (no
optimum), the costliest policy (max for min), the future term missing, holding charged on the
wrong inventory, variables bounded below by 0, infeasible actions added, constraints left out,
dual values with the wrong sign or read as slacks, the balance equations without beta or with
the wrong right-hand side, the policy read from the least tight constraint or the smallest
frequency. It never shows an expected number.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

import mdplab
from mdplab.checks.arguments import check_kept, snapshot
from mdplab.checks.common import (
    HiddenCheckFailure,
    as_float,
    call_student,
    instance_rng,
    student_error,
)
from mdplab.checks.numeric import describe_type, precision_note, values_close
from mdplab.checks.warehouses import COURSE, Warehouse, random_demand

SEED = 20260321
RTOL = 1e-6  # relative to the size of the values: solvers stop at tolerances near 1e-9
NOISE = 1e-9  # rounding added to V* before it is handed to policy_from_lp

# Gurobi's statuses of an LP without an optimum, in words.
STATUS_WORDS = {
    3: "infeasible: no solution satisfies every constraint",
    4: "infeasible or unbounded (Gurobi stopped before telling which)",
    5: "unbounded: the objective improves without limit",
}
NOT_SOLVED = (
    "Gurobi has no solution to read: the LP was not solved to optimality (check "
    "model.Status == GRB.OPTIMAL before reading .X or .Pi)"
)
PRIMAL_UNBOUNDED = (
    "the primal LP MAXIMISES sum V subject to V(s) - beta * sum_s' P(s'|s,a) V(s') <= "
    "r(s, a); minimising, writing the inequalities with >=, or leaving out the factor beta "
    "makes it unbounded"
)
PRIMAL_NEGATIVE = (
    "here some optimal values are negative: variables left at Gurobi's default bound lb=0 "
    "make this LP infeasible; use lb=-GRB.INFINITY"
)
PRIMAL_INFEASIBLE = (
    "no V satisfies all the constraints: check that each reads V(s) - beta * sum_s' "
    "P(s'|s,a) V(s') <= r(s, a), and that the variables are free (lb=-GRB.INFINITY)"
)
DUAL_INFEASIBLE = (
    "the balance equations cannot all hold without the factor beta on the inflow (added up "
    "over the states, their left-hand sides cancel, while the weights alpha add up to a "
    "positive number), nor without alpha[s'] on the right of the equation of s'"
)
DUAL_UNBOUNDED = (
    "the frequencies must satisfy x >= 0 (Gurobi's default lb=0); free variables "
    "(lb=-GRB.INFINITY) make the dual unbounded, and the objective MINIMISES sum r x"
)
# What a failure says when the values themselves show that the LP had no optimum.
NO_OPTIMUM = f"{NOT_SOLVED}. Usually {PRIMAL_UNBOUNDED}"


# --------------------------------------------------------------------------- instances
@dataclass
class Case:
    """A finite MDP as the lab's arrays, with its reference solution."""

    label: str
    R: np.ndarray
    P: np.ndarray
    beta: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return self.R.shape[0]

    @property
    def feasible(self) -> np.ndarray:
        return np.isfinite(self.R)

    def inputs(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Fresh copies of (R, P, beta), so that a student's function cannot spoil them."""
        return self.R.copy(), self.P.copy(), self.beta

    @cached_property
    def values(self) -> np.ndarray:
        return reference_values(self.R, self.P, self.beta)

    @cached_property
    def costliest(self) -> np.ndarray:
        """The values with max instead of min: the most expensive policy's."""
        negated = np.where(self.feasible, -self.R, np.inf)
        return -reference_values(negated, self.P, self.beta)

    @cached_property
    def slack(self) -> np.ndarray:
        return slack_table(self.R, self.P, self.beta, self.values)

    def optimal(self, s: int, tol: float = 0.0) -> set[int]:
        """Actions of state s whose slack at V* is within rounding (plus ``tol``)."""
        row = self.slack[s]
        limit = tol + 1e-9 * (1.0 + float(np.abs(self.values).max()))
        return {int(a) for a in np.flatnonzero(np.isfinite(self.R[s]) & (row <= limit))}


def warehouse_text(w: Warehouse) -> str:
    """The arguments of the student's warehouse_lp, as they would write them."""
    return f"{w.parameters_text()}, beta={w.discount:g}"


def warehouse_case(w: Warehouse) -> Case:
    R, P = w.arrays()
    return Case(f"the warehouse with {warehouse_text(w)}", R, P, w.discount)


def reference_values(R: np.ndarray, P: np.ndarray, beta: float) -> np.ndarray:
    """V* by mdplab's policy iteration on the dense arrays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdp = mdplab.FiniteMDP.from_dense(R, P, beta)
        return np.asarray(mdplab.policy_iteration(mdp).values, dtype=float)


def slack_table(R: np.ndarray, P: np.ndarray, beta: float, V: np.ndarray) -> np.ndarray:
    """r(s, a) + beta P(.|s, a) V - V(s) for feasible pairs, inf elsewhere."""
    feasible = np.isfinite(R)
    return np.where(feasible, np.where(feasible, R, 0.0) + beta * P @ V - V[:, None], np.inf)


def balance_residual(x: np.ndarray, P: np.ndarray, beta: float, alpha: np.ndarray) -> np.ndarray:
    """sum_a x(s', a) - beta sum_{s,a} P(s'|s,a) x(s,a) - alpha(s') for every s'."""
    return x.sum(axis=1) - beta * np.einsum("sat,sa->t", P, x) - alpha


FIXED_WAREHOUSES = [
    COURSE,
    Warehouse(5, 2.5, 0.5, 0.5, ((3, 0.3), (0, 0.7)), 0.9),  # demand 0; keys not sorted
    Warehouse(6, 3.0, 1.5, 0.5, ((4, 0.2), (1, 0.5), (2, 0.3)), 0.75),
    Warehouse(2, 6.0, 2.0, 1.5, ((2, 1.0),), 0.0),  # one demand value, beta = 0
    Warehouse(1, 1.0, 3.0, 2.0, ((1, 0.6), (0, 0.4)), 0.95),
    Warehouse(8, 5.0, 1.0, 1.0, ((5, 0.25), (3, 0.35), (4, 0.4)), 0.85),
    Warehouse(4, 8.0, 0.0, 2.0, ((1, 0.5), (3, 0.5)), 0.9),  # holding dominates
]


def random_warehouse(rng: np.random.Generator) -> Warehouse:
    """Capacity 1..8, 1-3 demand values in 0..5 whose spread fits, costs on a grid."""
    cap = int(rng.integers(1, 9))
    k = int(rng.choice([size for size in (1, 2, 3) if size <= cap + 1]))
    demand = random_demand(rng, k, cap, values_below=6)
    costs = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.5]
    return Warehouse(
        capacity=cap,
        setup_cost=float(rng.choice(costs[1:])),
        unit_cost=float(rng.choice(costs)),
        holding_cost=float(rng.choice(costs[1:])),
        demand=demand,
        discount=float(rng.choice([0.0, round(float(rng.uniform(0.3, 0.95)), 2)], p=[0.1, 0.9])),
    )


def warehouses(seed: int, count: int) -> list[Warehouse]:
    rng = instance_rng(seed)
    return FIXED_WAREHOUSES + [random_warehouse(rng) for _ in range(count)]


def random_tabular(
    rng: np.random.Generator,
    *,
    n_states: int | None = None,
    n_actions: int | None = None,
    costs: tuple[float, float] = (-4.0, 10.0),
    beta: float | None = None,
) -> Case:
    """A random MDP: every state has a feasible action, rows on 1..S next states."""
    S = int(rng.integers(2, 8)) if n_states is None else n_states
    A = int(rng.integers(1, 6)) if n_actions is None else n_actions
    feasible = rng.random((S, A)) < 0.7
    feasible[np.arange(S), rng.integers(0, A, size=S)] = True
    grid = np.arange(costs[0], costs[1] + 0.25, 0.5)
    R = np.where(feasible, rng.choice(grid, size=(S, A)), np.inf)
    P = np.zeros((S, A, S))
    for s, a in np.argwhere(feasible):
        k = int(rng.integers(1, S + 1))
        support = rng.choice(S, size=k, replace=False)
        weights = rng.integers(1, 6, size=k).astype(float)
        P[s, a, support] = weights / weights.sum()
    if beta is None:
        beta = float(rng.choice([0.0, 0.5, 0.9, 0.95, round(float(rng.uniform(0.3, 0.95)), 2)]))
    sign = "" if costs[0] >= 0 else ", costs of both signs" if costs[1] > 0 else ", negative costs"
    label = f"a random MDP with {S} states, {A} action columns, beta={beta:g}{sign}"
    return Case(label, R, P, beta)


def with_tie(case: Case) -> Case:
    """``case`` with a copy of its first action column appended: exact ties everywhere that
    column is optimal (and an infeasible copy where it is infeasible)."""
    R = np.concatenate([case.R, case.R[:, :1]], axis=1)
    P = np.concatenate([case.P, case.P[:, :1]], axis=1)
    return Case(case.label + ", with two identical action columns", R, P, case.beta)


def tabular_cases(seed: int, count: int) -> list[Case]:
    """Warehouses as arrays, MDPs with negative values and ties, and random MDPs."""
    rng = instance_rng(seed)
    cases = [warehouse_case(w) for w in FIXED_WAREHOUSES[:4]]
    cases.append(random_tabular(rng, n_states=4, n_actions=3, costs=(-6.0, -1.0), beta=0.9))
    cases.append(random_tabular(rng, n_states=5, n_actions=4, costs=(-3.0, 5.0), beta=0.95))
    cases.append(with_tie(random_tabular(rng, n_states=4, n_actions=3, beta=0.8)))
    cases.append(with_tie(warehouse_case(COURSE)))
    cases.append(random_tabular(rng, n_states=3, n_actions=1, beta=0.7))  # one action only
    cases.append(random_tabular(rng, n_states=6, n_actions=5, beta=0.0))
    cases += [random_tabular(rng) for _ in range(count)]
    cases += [warehouse_case(random_warehouse(rng)) for _ in range(count // 2)]
    return cases


# --------------------------------------------------------------------------- calling
def _call(
    function: Callable[..., Any],
    *args: Any,
    what: str,
    hint: Callable[[str, str], str | None] | None = None,
    watch: Mapping[int, str] | None = None,
    name: str = "your function",
    **kwargs: Any,
) -> Any:
    """Call student code with warnings silenced (a test cell that writes to stderr loses its
    points). When it raises, ``hint`` gets the exception's type name and message (as the
    student's kernel reported them) and may add advice in words: what an LP status means
    and what usually causes it, or where a shape mismatch comes from. ``watch`` maps the
    positions of arguments the function must leave as they were to their names."""
    kept = snapshot(args, watch)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            answer = call_student(function, *args, what=what, **kwargs)
    except HiddenCheckFailure as failure:
        check_kept(what, name, args, kept, watch)
        cause = failure.__cause__
        if hint is None or cause is None:
            raise
        error = student_error(function, cause)
        advice = hint(error.kind, error.message)
        if advice:
            raise HiddenCheckFailure(f"{failure}. {advice}") from cause
        raise
    check_kept(what, name, args, kept, watch)
    return answer


def _status(message: str) -> int | None:
    """The Gurobi status a student's error message quotes ("status 4"), if any."""
    found = re.search(r"status\D{0,12}(\d+)", message, flags=re.IGNORECASE)
    return int(found.group(1)) if found else None


def _no_optimum_advice(kind: str, message: str, lp: str, negative: bool = False) -> str | None:
    """An LP without an optimum in words, with the causes that fit its status; None when
    the error is not about a missing optimum. ``negative``: some optimal values are < 0."""
    status = _status(message)
    lowered = message.lower()
    if status in STATUS_WORDS:
        meaning = f"Gurobi's status {status} means the LP is {STATUS_WORDS[status]}"
        kinds = [k for k in ("infeasible", "unbounded") if k in STATUS_WORDS[status]]
    elif "unable to retrieve attribute" in lowered or kind == "GurobiError":
        meaning, kinds = NOT_SOLVED, ["infeasible", "unbounded"]
    elif any(word in lowered for word in ("unbounded", "infeasible", "optimal")):
        meaning, kinds = "the LP has no optimum", ["infeasible", "unbounded"]
    else:
        return None
    if lp == "dual":
        causes = [DUAL_INFEASIBLE if k == "infeasible" else DUAL_UNBOUNDED for k in kinds]
    else:
        causes = []
        if "unbounded" in kinds:
            causes.append(PRIMAL_UNBOUNDED)
        if "infeasible" in kinds:
            causes.append(PRIMAL_NEGATIVE if negative else PRIMAL_INFEASIBLE)
    return f"{meaning}. Usually " + "; or ".join(causes)


def _broadcast_advice(message: str, function: str) -> str | None:
    """Where a numpy shape mismatch in the student's arithmetic usually comes from."""
    if "could not be broadcast" not in message:
        return None
    advice = (
        "A shape mismatch in your array arithmetic: R is (S, A), P is (S, A, S) with P[s, a] "
        "the row over next states s'"
    )
    if function == "policy_from_lp":
        return (
            f"{advice}, and V has S entries: R + beta * P @ V is an (S, A) table, so subtract "
            "V(s) row by row with V[:, None] (or loop over the states)"
        )
    if function == "solve_dual_lp":
        return f"{advice}, and alpha has S entries, one per balance equation"
    return f"{advice}: check which axis each product runs over"


def _primal_hint(kind: str, message: str, case: Case | None = None) -> str | None:
    negative = case is not None and float(case.values.min()) < 0
    return _no_optimum_advice(kind, message, "primal", negative) or _broadcast_advice(
        message, "solve_mdp_lp"
    )


def _warehouse_hint(kind: str, message: str) -> str | None:
    if kind in ("KeyError", "IndexError"):
        return (
            "A next state s + a - d fell outside 0..capacity: does the LP include a "
            "production quantity that is infeasible (it must meet the LARGEST demand and fit "
            "after the SMALLEST one)?"
        )
    return _no_optimum_advice(kind, message, "primal")


def _dual_hint(kind: str, message: str) -> str | None:
    if "nan or inf" in message.lower() or "infinite" in message.lower():
        return (
            "An infinite cost reached the model: infeasible pairs (R = inf) get no variable "
            "in the dual LP"
        )
    return _no_optimum_advice(kind, message, "dual") or _broadcast_advice(message, "solve_dual_lp")


def _policy_hint(kind: str, message: str) -> str | None:
    if kind in ("IndexError", "ValueError") and "could not be broadcast" not in message:
        return (
            "If no action was found tight in some state: values from a solver are exact "
            "only up to rounding, so a constraint is tight when its slack is at most tol, "
            "not exactly 0"
        )
    return _broadcast_advice(message, "policy_from_lp")


def _returned(value: Any, what: str) -> None:
    if value is None:
        raise HiddenCheckFailure(f"{what}: the function returned None; did you forget `return`?")


def _pair(value: Any, what: str, names: str) -> tuple[Any, Any]:
    _returned(value, what)
    if isinstance(value, Mapping | str | bytes | np.ndarray):
        raise HiddenCheckFailure(f"{what}: return the pair {names}")
    try:
        parts = list(value)
    except TypeError as error:
        raise HiddenCheckFailure(f"{what}: return the pair {names}") from error
    if len(parts) != 2:
        raise HiddenCheckFailure(f"{what}: return the pair {names}, not {len(parts)} items")
    return parts[0], parts[1]


def _gurobi_objects(value: Any) -> bool:
    """Whether ``value`` holds gurobipy objects (variables, expressions) among its items."""
    try:
        items = list(np.ravel(np.asarray(value, dtype=object)))
    except (TypeError, ValueError):
        return False
    return any(type(item).__module__.split(".")[0] == "gurobipy" for item in items)


def _vector(value: Any, size: int, what: str, name: str = "the values") -> np.ndarray:
    """A vector of ``size`` floats from an array, a list, a pandas Series, a row or column
    matrix, or a dict {state: value}."""
    _returned(value, what)
    if isinstance(value, Iterator | set | frozenset):
        raise HiddenCheckFailure(
            f"{what}: {name} came back as {describe_type(value)}; return a numpy array"
        )
    if _gurobi_objects(value):
        raise HiddenCheckFailure(
            f"{what}: {name} are gurobipy variables (Var objects), not numbers; return their "
            "values, V[s].X, read after model.optimize()"
        )
    if isinstance(value, Mapping):
        try:
            value = [value[s] for s in range(size)]
        except KeyError as error:
            raise HiddenCheckFailure(
                f"{what}: {name} (a dictionary) have no entry for state {error}"
            ) from error
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be a numpy array of numbers, got {type(value).__name__}"
        ) from error
    if array.ndim == 2 and 1 in array.shape and array.size == size:
        array = array.reshape(size)  # a row or column matrix counts as a vector
    if array.shape != (size,):
        raise HiddenCheckFailure(
            f"{what}: {name} should have one entry per state, shape ({size},); got shape "
            f"{array.shape}"
        )
    return array


def _table(value: Any, shape: tuple[int, int], what: str, name: str) -> np.ndarray:
    """An (S, A) float table from an array, nested lists or a dict {(s, a): value}."""
    _returned(value, what)
    if isinstance(value, Mapping):
        table = np.zeros(shape)
        for key, entry in value.items():
            try:
                s, a = (int(k) for k in key)
                table[s, a] = float(entry)
            except (TypeError, ValueError, IndexError) as error:
                raise HiddenCheckFailure(
                    f"{what}: {name} as a dictionary needs keys (s, a) within the shape of R"
                ) from error
        return table
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be a numpy array of the shape of R, got {type(value).__name__}"
        ) from error
    if array.shape != shape:
        raise HiddenCheckFailure(
            f"{what}: {name} should have the shape of R, {shape}; got {array.shape}"
        )
    return array


def _actions(value: Any, size: int, what: str) -> list[int]:
    """A policy: ``size`` whole numbers (list, array or dict {state: action})."""
    _returned(value, what)
    if isinstance(value, Iterator | set | frozenset):
        raise HiddenCheckFailure(
            f"{what}: the policy came back as {describe_type(value)}; return a numpy array "
            "(a generator can be read only once)"
        )
    if isinstance(value, Mapping):
        try:
            value = [value[s] for s in range(size)]
        except KeyError as error:
            raise HiddenCheckFailure(
                f"{what}: the policy (a dictionary) has no action for state {error}"
            ) from error
    try:
        items = list(np.asarray(value).ravel()) if np.ndim(value) else None
    except (TypeError, ValueError):
        items = None
    if items is None or len(items) != size:
        raise HiddenCheckFailure(
            f"{what}: the policy should hold one action per state ({size} whole numbers)"
        )
    actions = []
    for item in items:
        number = as_float(item, what=what)
        if isinstance(item, bool | np.bool_) or not float(number).is_integer():
            raise HiddenCheckFailure(f"{what}: actions are whole numbers (column indices of R)")
        actions.append(int(number))
    return actions


def _close(got: np.ndarray, expected: np.ndarray, tol: float) -> bool:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    return got.shape == expected.shape and bool(np.all(np.abs(got - expected) <= tol))


def _value_tol(case: Case) -> float:
    return RTOL * (1.0 + float(np.abs(case.values).max()))


# --------------------------------------------------------------------------- diagnoses
def _values_problem(
    got: np.ndarray, case: Case, alternatives: list[tuple[np.ndarray, str]], raw: Any = None
) -> str | None:
    """Why ``got`` is not V* of ``case``, in words; None when it is. ``raw`` is what the
    student returned (its dtype may explain a small error: precision, not logic)."""
    V = case.values
    tol = _value_tol(case)
    if not np.all(np.isfinite(got)) or np.abs(got).max() > 1e12:
        return NO_OPTIMUM
    if _close(got, V, tol) or values_close(got, V):
        return None
    note = precision_note(raw, V) if raw is not None else None
    if note:
        return note
    other = _course_beta_case(case)
    if other is not None:
        alternatives = [*alternatives, (other.values, COURSE_BETA)]
    myopic = np.where(case.feasible, case.R, np.inf).min(axis=1)
    for alternative, message in [
        *alternatives,
        (
            case.costliest,
            "these are the values of the COSTLIEST policy: the LP minimises sum V subject to "
            "V(s) >= r(s, a) + beta * sum_s' P V(s') (a max over actions instead of the min); "
            "it should maximise sum V subject to <= constraints",
        ),
        (
            myopic,
            "these are the one-period costs min_a r(s, a): the future term beta * sum_s' "
            "P(s'|s,a) V(s') is missing from the constraints",
        ),
    ]:
        if not _close(alternative, V, tol) and _close(got, alternative, tol):
            return message
    if np.any(V + tol < 0) and np.all(got + tol >= 0):
        return (
            "the values never go below 0, but here some optimal values are negative (costs "
            "can be negative): Gurobi's variables have lb=0 unless you say otherwise; use "
            "lb=-GRB.INFINITY"
        )
    if np.all(got <= V + tol):
        return (
            "the values are too low in some state: the LP has a constraint too many or too "
            "tight, e.g. one for an infeasible action, or a cost or a transition that makes "
            "some action look cheaper than it is"
        )
    if np.all(got >= V - tol):
        return (
            "the values are too high in some state: the LP misses a constraint or has one too "
            "loose, e.g. a feasible action left out, or a cost or a transition that makes some "
            "action look dearer than it is"
        )
    return (
        "the values are wrong: the LP maximises sum V subject to V(s) - beta * sum_s' "
        "P(s'|s,a) V(s') <= r(s, a) for every feasible pair"
    )


def _warehouse_alternatives(inst: Warehouse) -> list[tuple[np.ndarray, str]]:
    R, P = inst.arrays()
    feasible = np.isfinite(R)
    after_production = np.where(
        feasible, R + inst.holding_cost * np.arange(R.shape[1])[None, :], np.inf
    )
    setup_always = np.where(feasible, R + inst.setup_cost * (np.arange(R.shape[1]) == 0), np.inf)
    return [
        (
            reference_values(setup_always, P, inst.discount),
            "the setup cost is charged even when nothing is produced (a = 0); it is paid only "
            "in a period with production",
        ),
        (
            reference_values(*inst.arrays("end"), inst.discount),
            "holding is charged on the (expected) ENDING inventory s + a - E[D]; this lab "
            "charges it on the STARTING inventory s",
        ),
        (
            reference_values(after_production, P, inst.discount),
            "holding is charged on the stock after production, s + a; this lab charges it on "
            "the STARTING inventory s",
        ),
    ]


def _frequencies_problem(
    x: np.ndarray, case: Case, alpha: np.ndarray, *, primal: bool
) -> str | None:
    """Why ``x`` is not an optimal solution of the dual LP with weights ``alpha``."""
    feasible = case.feasible
    scale = 1.0 + float(alpha.sum()) / max(1.0 - case.beta, 1e-12)
    tol = 1e-6 * scale
    name = "the dual values x" if primal else "x"
    if not np.all(np.isfinite(x)):
        return f"{name} {'hold' if primal else 'holds'} non-finite numbers"
    if np.any(np.abs(x[~feasible]) > tol):
        return (
            f"{name} {'are' if primal else 'is'} nonzero at an infeasible pair; an infeasible "
            "pair has no "
            f"{'constraint' if primal else 'variable'}, so its entry is 0"
        )
    slack = np.where(feasible, case.slack, 0.0)
    if primal and _close(x, slack, tol):
        return (
            "these are the constraints' slacks (the Slack attribute), not their dual values "
            "(the Pi attribute)"
        )
    if np.any(x < -tol):
        if (
            primal
            and np.all(x <= tol)
            and _frequencies_problem(-x, case, alpha, primal=True) is None
        ):
            return (
                "the dual values have the wrong sign: a constraint written with >= (e.g. "
                "r + beta * P V >= V) has Pi <= 0; write it as V(s) - beta * sum P V <= r(s, a), "
                "or flip the sign of its Pi"
            )
        if primal:
            return f"{name} have negative entries; dual values of <= rows in a max are >= 0"
        return (
            "x has negative entries, but frequencies are >= 0: keep Gurobi's default lb=0. If "
            "the variables have it, the X values read are no solution at all: check "
            "model.Status == GRB.OPTIMAL (without the factor beta, for one, the balance "
            "equations cannot all hold)"
        )
    residual = balance_residual(x, case.P, case.beta, alpha)
    if np.abs(residual).max() > tol:
        return _balance_problem(x, case, alpha, primal=primal)
    objective = float(np.sum(np.where(feasible, case.R, 0.0) * x))
    target = float(alpha @ case.values)
    if abs(objective - target) > tol * (1.0 + abs(target)):
        if abs(objective - float(alpha @ case.costliest)) <= tol * (1.0 + abs(target)):
            if primal:
                return (
                    "these are the dual values of an LP whose optimum is the COSTLIEST policy; "
                    "the primal maximises sum V subject to <= constraints"
                )
            return "x describes the COSTLIEST policy: the dual LP MINIMISES sum r(s, a) x(s, a)"
        if primal:
            return (
                "the dual values satisfy the balance equations but are not optimal: they are "
                "not the Pi of the constraints of an optimal solution of the right LP"
            )
        return (
            "x satisfies the balance equations but is not optimal: the dual LP minimises "
            "sum r(s, a) x(s, a) over the feasible pairs"
        )
    return None


def _balance_problem(x: np.ndarray, case: Case, alpha: np.ndarray, *, primal: bool) -> str:
    """The balance equations fail; name the likely cause."""
    tol = 1e-6 * (1.0 + float(alpha.sum()) / max(1.0 - case.beta, 1e-12))
    P, beta = case.P, case.beta
    ones = np.ones_like(alpha)

    def holds(residual: np.ndarray) -> bool:
        return bool(np.abs(residual).max() <= tol)

    if primal:
        return (
            "the dual values do not satisfy the balance equations sum_a x(s', a) - beta * "
            "sum_{s,a} P(s'|s,a) x(s,a) = 1 that the Pi of an optimal solution satisfy: are "
            "they the Pi of the constraints (s, a), each placed at x[s, a]?"
        )
    if not np.allclose(alpha, ones) and holds(balance_residual(x, P, beta, ones)):
        return (
            "x balances with all weights equal to 1: the right-hand side of the equation of "
            "state s' must be alpha[s'], the weights passed in"
        )
    total = float(alpha.sum())
    if not np.isclose(total, 1.0) and holds(balance_residual(x, P, beta, alpha / total)):
        return "x balances with alpha divided by its sum: use alpha as given, not normalised"
    if holds((1.0 - beta) * x.sum(axis=1) - alpha):
        return (
            "in the equation of state s' the inflow must collect beta * P(s'|s,a) x(s,a) over "
            "ALL pairs (s, a) that can lead to s'; yours uses only the pairs of s' itself "
            "(s and s' mixed up in P)"
        )
    if holds(x.sum(axis=1) - beta * np.einsum("sas,sa->s", P, x) - alpha):
        return "the inflow term uses P[s', a, s'] of s' itself: sum over all pairs (s, a)"
    return (
        "x does not satisfy the balance equations sum_a x(s', a) - beta * sum_{s,a} "
        "P(s'|s,a) x(s,a) = alpha(s') for every state s'. If the model's status was not "
        "GRB.OPTIMAL, the X values read are no solution at all; without the factor beta, for "
        "one, the equations cannot all hold (added up over s', their left-hand sides cancel)"
    )


def _policy_problem(
    actions: list[int], case: Case, tol: float, *, reading: str, x: np.ndarray | None = None
) -> str | None:
    """Why ``actions`` is not an optimal policy of ``case``; None when it is. Patterns are
    named only when they explain the choice in every state where it is wrong."""
    n_columns = case.R.shape[1]
    feasible = [np.flatnonzero(case.feasible[s]) for s in range(case.n_states)]
    optimal = [case.optimal(s, tol) for s in range(case.n_states)]
    valid = [0 <= a < n_columns and bool(case.feasible[s, a]) for s, a in enumerate(actions)]
    bad = [s for s, a in enumerate(actions) if not (valid[s] and a in optimal[s])]
    if not bad:
        return None
    first = bad[0]
    if all(
        0 <= a < feasible[s].size and int(feasible[s][a]) in optimal[s]
        for s, a in enumerate(actions)
    ):
        return (
            f"in state {first} (and maybe others) you returned a position in the list of "
            "feasible actions; return the action column a itself (the index into R[s])"
        )
    if not valid[first]:
        a = actions[first]
        return (
            f"in state {first} the action {a} is not feasible (R[{first}, {a}] is inf or "
            "outside R); infeasible pairs are never chosen"
        )

    def largest_slack(s: int) -> bool:
        slack = case.slack[s, feasible[s]]
        return valid[s] and actions[s] == int(feasible[s][np.argmax(slack)])

    if reading == "tight" and all(largest_slack(s) for s in bad):
        return (
            f"in state {first} you chose the action with the LARGEST slack, the least tight "
            "constraint (a max instead of the min); optimal actions have a tight constraint, "
            "slack 0"
        )
    if (
        reading == "x"
        and x is not None
        and all(valid[s] and x[s, actions[s]] <= 1e-9 < x[s].max() for s in bad)
    ):
        return (
            f"in state {first} you chose an action with x(s, a) = 0, which the optimal policy "
            "never uses; read the action with the LARGEST x(s, a)"
        )
    if reading == "tight":
        return (
            f"in state {first} the action {actions[first]} is not optimal: its constraint is "
            "not tight. Values from a solver are exact only up to rounding, so a constraint is "
            "tight when its slack is at most tol"
        )
    return f"in state {first} the action {actions[first]} is not optimal"


# --------------------------------------------------------------------------- checks
ORDER = "the pair comes in the order {names}; yours is the other way round"
COURSE_BETA = (
    f"these are the values for beta = {COURSE.discount:g}, the course's discount "
    "(the notebook's course_beta): use the argument beta"
)


def _course_beta_case(case: Case) -> Case | None:
    """``case`` with the course's discount instead of its own (None if they agree)."""
    if case.beta == COURSE.discount:
        return None
    return Case(case.label, case.R, case.P, COURSE.discount)


def check_warehouse_lp(warehouse_lp: Callable[..., object]) -> None:
    """V* on the course's warehouse and on other warehouses (capacities 1-8, demands,
    costs and discounts drawn from the lab's seed, mixed with the run's); demand_pmf
    stays as it was."""
    for inst in warehouses(SEED, 12):
        what = f"warehouse_lp({warehouse_text(inst)})"
        args = (inst.capacity, inst.setup_cost, inst.unit_cost, inst.holding_cost, inst.pmf)
        got = _call(
            warehouse_lp,
            *args,
            inst.discount,
            what=what,
            hint=_warehouse_hint,
            watch={4: "demand_pmf"},
            name="warehouse_lp",
        )
        V = _vector(got, inst.capacity + 1, what)
        case = warehouse_case(inst)
        problem = _values_problem(V, case, _warehouse_alternatives(inst), raw=got)
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def _lp_cases() -> list[Case]:
    return tabular_cases(SEED + 1, 10)


def check_solve_mdp_lp_values(solve_mdp_lp: Callable[..., object]) -> None:
    """V* of warehouses and random MDPs (negative values, ties, beta = 0, one action); R
    and P stay as they were."""
    for case in _lp_cases():
        what = f"solve_mdp_lp(R, P, beta) for {case.label}"
        got = _call(
            solve_mdp_lp,
            *case.inputs(),
            what=what,
            hint=lambda kind, message, c=case: _primal_hint(kind, message, c),
            watch={0: "R", 1: "P"},
            name="solve_mdp_lp",
        )
        raw, _ = _pair(got, what, "(V, x)")
        V = _vector(raw, case.n_states, what)
        problem = _values_problem(V, case, [], raw=raw)
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def check_solve_mdp_lp_duals(solve_mdp_lp: Callable[..., object]) -> None:
    """The dual values form an optimal solution of the dual LP with alpha = 1."""
    for case in _lp_cases():
        what = f"solve_mdp_lp(R, P, beta) for {case.label}"
        got = _call(
            solve_mdp_lp,
            *case.inputs(),
            what=what,
            hint=lambda kind, message, c=case: _primal_hint(kind, message, c),
        )
        _, x = _pair(got, what, "(V, x)")
        pairs = int(case.feasible.sum())
        if np.ndim(x) == 1 and np.size(x) == pairs and case.R.shape != (1, pairs):
            raise HiddenCheckFailure(
                f"{what}: x holds one dual value per feasible pair in a flat list; return an "
                "array of the shape of R with the dual value of the constraint of (s, a) at "
                "x[s, a] (0 for infeasible pairs)"
            )
        x = _table(x, case.R.shape, what, "x")
        ones = np.ones(case.n_states)
        problem = _frequencies_problem(x, case, ones, primal=True)
        other = _course_beta_case(case)
        if problem and other and _frequencies_problem(x, other, ones, primal=True) is None:
            problem = COURSE_BETA.replace("these are the values", "these are the dual values")
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def check_policy_from_lp(policy_from_lp: Callable[..., object]) -> None:
    """An optimal action in every state, from V* with rounding noise added (lists and
    arrays; the default tol and a smaller one); any optimal action passes where there are
    ties. R, P and V stay as they were."""
    rng = instance_rng(SEED + 2)
    for k, case in enumerate(_lp_cases()):
        V = case.values + rng.uniform(-NOISE, NOISE, size=case.n_states)
        values = V.tolist() if k % 2 else V
        kwargs = {"tol": 1e-7} if k % 3 == 2 else {}
        tol = kwargs.get("tol", 1e-6)
        extra = ", tol=1e-07" if kwargs else ""
        what = (
            f"policy_from_lp(R, P, beta, V{extra}) for {case.label}, with V the optimal values "
            "as a solver returns them (exact up to rounding)"
        )
        got = _call(
            policy_from_lp,
            *case.inputs(),
            values,
            what=what,
            hint=_policy_hint,
            watch={0: "R", 1: "P", 3: "V"},
            name="policy_from_lp",
            **kwargs,
        )
        actions = _actions(got, case.n_states, what)
        problem = _policy_problem(actions, case, 10 * tol, reading="tight")
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def _dual_cases() -> list[tuple[Case, np.ndarray]]:
    """(case, alpha): all ones, positive weights, and a probability vector."""
    rng = instance_rng(SEED + 3)
    out = []
    for k, case in enumerate(tabular_cases(SEED + 4, 8)):
        if k % 3 == 0:
            alpha = np.ones(case.n_states)
        elif k % 3 == 1:
            alpha = rng.choice([0.5, 1.0, 2.0, 3.0], size=case.n_states)
        else:
            weights = rng.integers(1, 5, size=case.n_states).astype(float)
            alpha = weights / weights.sum()
        out.append((case, alpha))
    # The course's warehouse with uneven weights comes first: it shows alpha mistakes.
    return [(warehouse_case(COURSE), np.array([1.0, 2.0, 0.5, 3.0])), *out]


def _alpha_text(alpha: np.ndarray) -> str:
    return "[" + ", ".join(f"{a:g}" for a in alpha) + "]"


def _call_dual(
    solve_dual_lp: Callable[..., object], case: Case, alpha: np.ndarray, k: int, *, watch: bool
):
    what = f"solve_dual_lp(R, P, beta, alpha={_alpha_text(alpha)}) for {case.label}"
    given = alpha.tolist() if k % 2 else alpha.copy()
    got = _call(
        solve_dual_lp,
        *case.inputs(),
        given,
        what=what,
        hint=_dual_hint,
        watch={0: "R", 1: "P", 3: "alpha"} if watch else None,
        name="solve_dual_lp",
    )
    x, policy = _pair(got, what, "(x, policy)")
    if np.shape(x) == (case.n_states,) and np.shape(policy) == case.R.shape:
        raise HiddenCheckFailure(f"{what}: {ORDER.format(names='(x, policy)')}")
    return what, x, policy


def check_dual_frequencies(solve_dual_lp: Callable[..., object]) -> None:
    """x is an optimal solution of the dual LP: x >= 0, zero on infeasible pairs, balance
    equations with the given alpha, and sum r x = alpha . V*. R, P and alpha stay as they
    were."""
    for k, (case, alpha) in enumerate(_dual_cases()):
        what, x, _ = _call_dual(solve_dual_lp, case, alpha, k, watch=True)
        x = _table(x, case.R.shape, what, "x")
        problem = _frequencies_problem(x, case, alpha, primal=False)
        other = _course_beta_case(case)
        if problem and other and _frequencies_problem(x, other, alpha, primal=False) is None:
            problem = COURSE_BETA.replace("these are the values", "x solves the dual LP")
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def check_dual_policy(solve_dual_lp: Callable[..., object]) -> None:
    """The policy read from x is optimal in every state (any optimal action on ties)."""
    for k, (case, alpha) in enumerate(_dual_cases()):
        what, x, policy = _call_dual(solve_dual_lp, case, alpha, k, watch=False)
        actions = _actions(policy, case.n_states, what)
        try:
            table = _table(x, case.R.shape, what, "x")
        except HiddenCheckFailure:
            table = None
        problem = _policy_problem(actions, case, 1e-6, reading="x", x=table)
        if problem and table is not None:
            wrong_x = _frequencies_problem(table, case, alpha, primal=False)
            if wrong_x:
                problem = f"{problem}; the policy is read from x, and x is wrong: {wrong_x}"
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")
