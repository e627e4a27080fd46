r"""Hidden checks of lab04_policy_iteration: evaluation (numpy and Gurobi), Q-values, greedy
improvement, policy iteration and modified policy iteration.

The student's functions take a model as arrays ``R[s, a]`` (``+inf`` where infeasible) and
``P[s, a, s']`` (zero rows where infeasible), a discount ``beta`` and a policy (one action
column per state, given as a list, tuple, array or ``{state: action}`` dictionary); the
Gurobi exercise takes the warehouse's parameters instead.

Instances, drawn from the lab's seeds (mixed with the grading run's, see
:func:`mdplab.checks.common.instance_seed`):

- warehouses with capacity 1-10, one to three demand values in 0..6 (spread at most the
  capacity), setup, unit and holding costs on a grid (zero allowed), and discount factors
  in [0, 0.99); references from :func:`mdplab.warehouse`;
- small random MDPs (2-7 states, 2-5 action columns, about a third of the pairs infeasible,
  costs of both signs, random sparse transition rows), built with
  :meth:`mdplab.FiniteMDP.from_dense`;
- "slow chains", on which every step of policy iteration lowers the values by only about
  1e-5, so that a stopping rule on the values stops before the optimum.

Reference numbers come from :func:`mdplab.evaluate`, :func:`mdplab.greedy` and
:func:`mdplab.policy_iteration`; modified policy iteration's from
:func:`reference_modified_policy_iteration`, which tests/test_checks_lab04_mpi.py holds to
:func:`mdplab.value_iteration.modified_policy_iteration` step for step (its mistakes are
the reference with one step done wrong, to name what a wrong answer did). Any greedy
action is accepted where several are tied.
Values follow the series' numeric policy (:mod:`mdplab.checks.numeric`). A function that
changes an argument in place (R, P, V, policy, policy0, demand_pmf) fails with a message
that names the argument. improve_policy builds on q_values, and policy_iteration on
evaluate_policy, q_values and improve_policy: when a check of the former fails and one of
the latter is wrong on the same model, the message leads with that function.
Failure messages describe the instance and the mistake; they never show expected numbers.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

import mdplab
from mdplab.checks.common import (
    HiddenCheckFailure,
    call_student,
    instance_rng,
    known_mistake,
    policy_before_beta,
)
from mdplab.checks.common import TimeUp as _OutOfTime
from mdplab.checks.common import time_limit as _time_limit
from mdplab.checks.numeric import (
    VALUE_ATOL,
    VALUE_RTOL,
    as_values,
    describe_type,
    precision_note,
)
from mdplab.checks.warehouses import COURSE, Warehouse, random_demand

SEED = 20260404
# Values match to the series' tolerance (numeric.VALUE_RTOL, VALUE_ATOL): float32 passes.
# An action is greedy when its Q-value is within GREEDY_RTOL * (1 + |min|) of the minimum;
# looser than the lab's tie rule (1e-9), so any reasonable tie handling passes (np.isclose,
# float32 Q-values).
GREEDY_RTOL = VALUE_RTOL
# The notebook's global BETA, which a function may use by mistake instead of its argument.
COURSE_BETA = 0.8
# A policy is optimal when its exact values are within this of V* (relative to 1 + |V*|).
OPTIMAL_RTOL = 1e-9
# Seconds a single call of the student's policy_iteration may take.
TIME_LIMIT = 10.0


# --------------------------------------------------------------------------- instances
@dataclass(eq=False)
class Case:
    """A model as the student's functions see it, with its reference ``mdp`` (whose action
    labels are the column numbers)."""

    text: str
    R: np.ndarray
    P: np.ndarray
    beta: float
    mdp: mdplab.FiniteMDP
    warehouse: Warehouse | None = None
    slow: bool = False  # every step of policy iteration lowers the values only a little

    @property
    def n_states(self) -> int:
        return self.R.shape[0]

    @property
    def feasible(self) -> np.ndarray:
        return np.isfinite(self.R)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Fresh copies, so that a student's function cannot spoil the instance."""
        return self.R.copy(), self.P.copy()

    def Q(self, V: np.ndarray) -> np.ndarray:
        return self.R + self.beta * (self.P @ np.asarray(V, dtype=float))

    def values(self, policy: Sequence[int]) -> np.ndarray:
        return np.asarray(mdplab.evaluate(self.mdp, [int(a) for a in policy]).values, dtype=float)

    def smallest_policy(self) -> list[int]:
        return [int(a) for a in self.feasible.argmax(axis=1)]

    def largest_policy(self) -> list[int]:
        last = self.R.shape[1] - 1
        return [int(last - a) for a in self.feasible[:, ::-1].argmax(axis=1)]

    def random_policy(self, rng: np.random.Generator) -> list[int]:
        return [int(rng.choice(np.flatnonzero(row))) for row in self.feasible]


def warehouse_case(w: Warehouse) -> Case:
    R, P = w.arrays()
    return Case(f"the warehouse with {w.parameters_text()}", R, P, w.discount, w.mdp(), w)


def tabular_case(R: np.ndarray, P: np.ndarray, beta: float, text: str) -> Case:
    return Case(text, R, P, beta, mdplab.FiniteMDP.from_dense(R, P, beta))


FIXED = [
    COURSE,
    Warehouse(5, 2.5, 0.5, 0.25, ((3, 0.3), (0, 0.7)), 0.9),  # demand 0; keys not sorted
    Warehouse(10, 12.0, 1.0, 0.5, ((4, 0.2), (1, 0.5), (2, 0.3)), 0.95),
    Warehouse(2, 6.0, 2.0, 1.5, ((2, 1.0),), 0.0),  # a single demand value, beta = 0
    Warehouse(8, 20.0, 0.5, 0.25, ((6, 0.25), (2, 0.75)), 0.98),
]


def random_warehouse(rng: np.random.Generator) -> Warehouse:
    """Capacity 1-10, 1-3 demand values in 0..6 whose spread fits, probabilities on a grid
    of 0.05, costs on a grid (setup positive), beta 0 or in [0.3, 0.99)."""
    capacity = int(rng.integers(1, 11))
    k = int(rng.integers(1, min(3, capacity + 1) + 1))  # k values need a spread of k - 1
    demand = random_demand(rng, k, capacity, values_below=7)
    costs = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.5]
    beta = 0.0 if rng.random() < 0.1 else round(float(rng.uniform(0.3, 0.985)), 2)
    return Warehouse(
        capacity=capacity,
        setup_cost=float(rng.choice([1.0, 2.0, 4.0, 7.5, 12.0, 20.0])),
        unit_cost=float(rng.choice(costs)),
        holding_cost=float(rng.choice(costs)),
        demand=demand,
        discount=beta,
    )


def random_tabular(rng: np.random.Generator) -> Case:
    """2-7 states, 2-5 action columns, ~30% infeasible pairs, costs of both signs."""
    n_states, n_actions = int(rng.integers(2, 8)), int(rng.integers(2, 6))
    feasible = rng.random((n_states, n_actions)) < 0.7
    for s in range(n_states):
        if not feasible[s].any():
            feasible[s, rng.integers(n_actions)] = True
    costs = np.round(rng.normal(1.0, 4.0, size=(n_states, n_actions)) * 4) / 4
    R = np.where(feasible, costs, np.inf)
    P = np.zeros((n_states, n_actions, n_states))
    for s, a in zip(*np.nonzero(feasible), strict=True):
        size = int(rng.integers(1, n_states + 1))
        targets = rng.choice(n_states, size=size, replace=False)
        P[s, a, targets] = rng.dirichlet(np.ones(size))
    beta = 0.0 if rng.random() < 0.1 else round(float(rng.uniform(0.3, 0.985)), 2)
    text = (
        f"a random MDP with {n_states} states and {n_actions} action columns (some pairs "
        "infeasible, costs of both signs)"
    )
    return tabular_case(R, P, beta, text)


def slow_chain(n_states: int, beta: float, eta: float, delta: float) -> Case:
    """States 0..n-1. Action 0 waits (cost 1, stay); action 1 advances to the next state at
    cost 1 + delta, and in the last state it stays at cost 1 - eta. From 'always wait',
    policy iteration switches one state per step, from the last backwards, and every step
    lowers the values by about eta / (1 - beta): tiny, yet the optimum is n steps away."""
    R = np.ones((n_states, 2))
    P = np.zeros((n_states, 2, n_states))
    for i in range(n_states):
        P[i, 0, i] = 1.0
        if i < n_states - 1:
            R[i, 1] = 1.0 + delta
            P[i, 1, i + 1] = 1.0
        else:
            R[i, 1] = 1.0 - eta
            P[i, 1, i] = 1.0
    text = (
        f"a chain MDP with {n_states} states on which every step of policy iteration lowers "
        "the values only slightly (by less than 1e-4)"
    )
    case = tabular_case(R, P, beta, text)
    case.slow = True
    return case


CHAINS = [
    (slow_chain(7, 0.9, 2e-6, 1e-7), [0] * 7),
    (slow_chain(6, 0.8, 1e-5, 2e-7), [0] * 6),
]


# --------------------------------------------------------------------------- calling
def _call(
    function: Callable[..., Any],
    *args: Any,
    what: str,
    hint: Callable[[BaseException | None], str | None] | None = None,
    time_limit: float | None = None,
) -> Any:
    """Call student code with warnings silenced (a test cell that writes to stderr loses
    its points), optionally under a time limit; add a hint to a crash when one applies."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if time_limit is None:
                return call_student(function, *args, what=what)
            with _time_limit(time_limit):
                return call_student(function, *args, what=what)
    except _OutOfTime:
        raise HiddenCheckFailure(
            f"{what}: the function did not finish within {time_limit:g} seconds; does the loop "
            "stop as soon as the improved policy equals the current one? Keep the current "
            "action where it is tied with the best one, or two equally good policies can "
            "take turns forever"
        ) from None
    except HiddenCheckFailure as failure:
        extra = hint(failure.__cause__) if hint else None
        if extra:
            raise HiddenCheckFailure(f"{failure} ({extra})") from failure.__cause__
        raise


def _returned(value: Any, what: str) -> None:
    if value is None:
        raise HiddenCheckFailure(f"{what}: the function returned None; did you forget `return`?")


def _not_a_stream(value: Any, what: str, name: str) -> None:
    """Fail when ``value`` is a generator, an iterator or a set: no vector of the lab."""
    if isinstance(value, Iterator | set | frozenset):
        raise HiddenCheckFailure(
            f"{what}: {name} is {describe_type(value)}; return a numpy array (np.array(...) "
            "or list(...) of a generator)"
        )


def _vector(value: Any, size: int, what: str, name: str = "the result") -> np.ndarray:
    """``size`` floats under the series' numeric policy (any real numbers; a list, an array,
    a row or column matrix, a pandas Series) or from a dict {state: value}."""
    _returned(value, what)
    _not_a_stream(value, what, name)
    if isinstance(value, Mapping):
        try:
            value = [value[s] for s in range(size)]
        except KeyError as error:
            raise HiddenCheckFailure(f"{what}: {name} has no value for state {error}") from error
    try:
        return as_values(value, what=f"{what}: {name}", shape=(size,))
    except HiddenCheckFailure as failure:
        raise HiddenCheckFailure(
            f"{failure} ({name} should hold one value per state, shape ({size},))"
        ) from None


def _policy(value: Any, case: Case, what: str, name: str = "the policy") -> list[int]:
    """A policy returned by the student, as a list of feasible action columns."""
    S, A = case.R.shape
    _returned(value, what)
    _not_a_stream(value, what, name)
    if isinstance(value, Mapping):
        try:
            value = [value[s] for s in range(S)]
        except KeyError as error:
            raise HiddenCheckFailure(f"{what}: {name} has no action for state {error}") from error
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be an integer array with one action per state, got "
            f"{describe_type(value)}"
        ) from error
    if array.ndim == 2 and 1 in array.shape and array.size == S:
        array = array.ravel()  # a row or column matrix
    if array.shape != (S,):
        if array.shape == (S, A):
            raise HiddenCheckFailure(
                f"{what}: {name} has one entry per state AND action (shape {array.shape}); "
                f"return one action column per state (shape ({S},)), e.g. with argmin over axis 1"
            )
        raise HiddenCheckFailure(
            f"{what}: {name} should hold one action per state (shape ({S},)), got shape "
            f"{array.shape}"
        )
    if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
        raise HiddenCheckFailure(f"{what}: {name} should hold whole numbers (action columns)")
    actions = [int(a) for a in array]
    for s, a in enumerate(actions):
        if not 0 <= a < A:
            raise HiddenCheckFailure(
                f"{what}: {name} picks action {a} in state {s}, which is not an action column "
                f"(columns run from 0 to {A - 1})"
            )
    return actions


def _close(got: Any, expected: Any, *, rtol: float = VALUE_RTOL, atol: float = VALUE_ATOL) -> bool:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, expected, rtol=rtol, atol=atol))


def _optimal(values: np.ndarray, best: np.ndarray) -> bool:
    scale = 1.0 + np.abs(best)
    return bool(np.all(np.abs(values - best) <= OPTIMAL_RTOL * scale))


def _greedy_sets(Q: np.ndarray) -> list[set[int]]:
    """Per state, the action columns within the grader's tolerance of the row minimum."""
    out = []
    for row in Q:
        best = float(np.min(row))
        # An infinite minimum occurs only in the grader's what-if rows (infeasible pairs
        # masked with -inf), where no tolerance applies.
        tolerance = GREEDY_RTOL * (1 + abs(best)) if np.isfinite(best) else 0.0
        near = row <= best + tolerance
        out.append(set(np.flatnonzero(near).tolist()))
    return out


def _solve(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
    """``solve(matrix, rhs)``, or None when that is singular or not finite."""
    try:
        with np.errstate(all="ignore"):
            out = np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        return None
    return out if np.all(np.isfinite(out)) else None


def _give(policy: Sequence[int], kind: str) -> Any:
    """``policy`` in the container ``kind``."""
    if kind == "dict":
        return {s: int(a) for s, a in enumerate(policy)}
    if kind == "tuple":
        return tuple(int(a) for a in policy)
    if kind == "array":
        return np.array(policy, dtype=np.int64)
    return [int(a) for a in policy]


def _shown(policy: Sequence[int], kind: str) -> str:
    if kind == "dict":
        return "{" + ", ".join(f"{s}: {a}" for s, a in enumerate(policy)) + "}"
    if kind == "array":
        return f"np.array({list(policy)})"
    if kind == "tuple":
        return str(tuple(policy))
    return str(list(policy))


CONTAINERS = ("list", "dict", "array", "tuple")


def _dict_hint(kind: str) -> Callable[[BaseException | None], str | None]:
    def hint(error: BaseException | None) -> str | None:
        if isinstance(error, np.linalg.LinAlgError):
            return (
                "a singular matrix: I - P_pi is singular for every policy, so beta must "
                "multiply P_pi"
            )
        if kind == "dict":
            return (
                "the policy was given as a dictionary {state: action}; turn it into a list "
                "first, e.g. [policy[s] for s in range(n_states)]"
            )
        return None

    return hint


# --------------------------------------------------------------------------- evaluation
def _evaluation_cases(seed: int, n_warehouses: int, n_tabular: int) -> list[tuple[Case, list]]:
    rng = instance_rng(seed)
    course = warehouse_case(COURSE)
    cases = [(course, [2, 1, 0, 0]), (course, [4, 3, 0, 0])]
    for w in FIXED[1:]:
        case = warehouse_case(w)
        cases.append((case, case.random_policy(rng)))
    for _ in range(n_warehouses):
        case = warehouse_case(random_warehouse(rng))
        cases.append((case, case.random_policy(rng)))
    for _ in range(n_tabular):
        case = random_tabular(rng)
        cases.append((case, case.random_policy(rng)))
    return cases


def _evaluation_problem(V: np.ndarray, case: Case, policy: list[int]) -> str:
    """Why ``V`` is not V_pi, in words."""
    if not np.all(np.isfinite(V)):
        return (
            "the values are not finite; does beta multiply P_pi, and are only the policy's "
            "own (feasible) pairs used?"
        )
    S, beta = case.n_states, case.beta
    states, actions = np.arange(S), np.array(policy)
    r_pi, P_pi, eye = case.R[states, actions], case.P[states, actions], np.eye(S)
    expected = np.linalg.solve(eye - beta * P_pi, r_pi)
    alternatives: list[tuple[np.ndarray | None, str]] = [
        (-expected, "the values have the wrong sign; they are expected costs"),
        (
            _solve(eye + beta * P_pi, r_pi),
            "a sign is wrong: V = r_pi + beta P_pi V, so solve (I - beta P_pi) V = r_pi, "
            "not (I + beta P_pi) V = r_pi",
        ),
        (
            _solve(eye - beta * P_pi.T, r_pi),
            "P_pi is used transposed: row s of P_pi is the distribution of the next state "
            "from s, and V(s) needs the sum over s' of P_pi[s, s'] V(s')",
        ),
        (r_pi, "only the first period is counted: the discounted future beta P_pi V is missing"),
        (beta * expected, "the cost of the current period is discounted too; only the future is"),
        (
            _solve(eye - COURSE_BETA * P_pi, r_pi),
            "these are the values for beta = 0.8, the notebook's BETA: use the argument beta",
        ),
    ]
    feasible = case.feasible
    with np.errstate(all="ignore"):
        mean_r = np.array([case.R[s, feasible[s]].mean() for s in range(S)])
        mean_P = np.array([case.P[s, feasible[s]].mean(axis=0) for s in range(S)])
    alternatives.append(
        (
            _solve(eye - beta * mean_P, mean_r),
            "every feasible action of a state is averaged; P_pi and r_pi take only the row "
            "and the cost of the action the policy chooses, P[s, policy[s]]",
        )
    )
    if max(policy) < S <= case.R.shape[1]:
        swapped_r, swapped_P = case.R[actions, states], case.P[actions, states]
        if np.all(np.isfinite(swapped_r)):
            alternatives.append(
                (
                    _solve(eye - beta * swapped_P, swapped_r),
                    "the indices are swapped: the policy's row of state s is P[s, policy[s]] "
                    "(state first, then action), not P[policy[s], s]",
                )
            )
    return known_mistake(V, expected, alternatives, _close) or (
        "the values do not solve (I - beta P_pi) V = r_pi, with r_pi[s] = R[s, policy[s]] and "
        "P_pi[s] = P[s, policy[s]] (an approximation must be accurate to about 1e-6)"
    )


def check_evaluate_policy(evaluate_policy: Callable[..., object]) -> None:
    """V_pi on fixed and random warehouses and random MDPs, beta = 0 included, with the
    policy given as a list, a dictionary, an array or a tuple."""
    for k, (case, policy) in enumerate(_evaluation_cases(SEED, 14, 14)):
        kind = CONTAINERS[k % len(CONTAINERS)]
        _check_evaluation_case(evaluate_policy, case, policy, kind)


def _unchanged(function: str, what: str, arguments: Sequence[tuple[str, Any, Any]]) -> None:
    """Fail when the student's ``function`` changed one of its ``arguments`` (name, as
    given, as it was) in place."""
    for name, given, original in arguments:
        if isinstance(original, Mapping):
            same = isinstance(given, Mapping) and dict(given) == dict(original)
        else:
            try:
                same = np.array_equal(np.asarray(given), np.asarray(original))
            except Exception:
                same = False
        if not same:
            raise HiddenCheckFailure(
                f"{what}: {function} changed its argument {name} in place; leave {name} as "
                "it was given and put what you compute in new arrays (a copy, np.where(...))"
            )


def _check_evaluation_case(
    evaluate_policy: Callable[..., object], case: Case, policy: list[int], kind: str
) -> None:
    what = (
        f"evaluate_policy(R, P, beta={case.beta:g}, policy={_shown(policy, kind)}) for {case.text}"
    )
    expected = case.values(policy)
    R, P = case.arrays()
    given = _give(policy, kind)
    try:
        got = _call(
            evaluate_policy,
            R,
            P,
            case.beta,
            given,
            what=what,
            hint=_dict_hint(kind),
        )
        _unchanged(
            "evaluate_policy",
            what,
            [("R", R, case.R), ("P", P, case.P), ("policy", given, _give(policy, kind))],
        )
        V = _vector(got, case.n_states, what)
    except HiddenCheckFailure:
        policy_before_beta(
            evaluate_policy, (*case.arrays(), case.beta, list(policy)), expected, what, _close
        )
        raise
    if _close(V, expected):
        return
    policy_before_beta(
        evaluate_policy, (*case.arrays(), case.beta, list(policy)), expected, what, _close
    )
    note = precision_note(got, expected)
    if note:
        raise HiddenCheckFailure(f"{what}: {note}")
    raise HiddenCheckFailure(f"{what}: {_evaluation_problem(V, case, policy)}")


# --------------------------------------------------------------------------- Gurobi
def _gurobi_hint(error: BaseException | None) -> str | None:
    text = str(error)
    if isinstance(error, AttributeError) and "Unable to retrieve attribute" in text:
        return (
            "Gurobi found no solution, so the equations as written have none: are the "
            "future values multiplied by beta? Without the discount, the equations of a "
            "policy are singular"
        )
    if type(error).__name__ == "GurobiError":
        return "Gurobi reported an error while building or solving the model"
    if isinstance(error, KeyError | IndexError):
        return (
            "a next state outside 0..capacity was used: after demand d the next state is "
            "s + policy[s] - d"
        )
    return None


def _gurobi_problem(V: np.ndarray, w: Warehouse, policy: list[int]) -> str:
    case = warehouse_case(w)
    S, beta = case.n_states, case.beta
    states, actions = np.arange(S), np.array(policy)
    r_pi, P_pi, eye = case.R[states, actions], case.P[states, actions], np.eye(S)
    expected = np.linalg.solve(eye - beta * P_pi, r_pi)
    produced = (actions > 0).astype(float)
    equal_P = np.zeros_like(P_pi)
    for s, a in enumerate(policy):
        for d in w.pmf:
            equal_P[s, s + a - d] += 1.0 / len(w.pmf)
    end_mdp = w.mdp("end")
    end_values = np.asarray(mdplab.evaluate(end_mdp, policy).values, dtype=float)
    alternatives: list[tuple[np.ndarray | None, str]] = [
        (
            end_values,
            "holding is charged on the (expected) ENDING inventory; this lab charges it on "
            "the STARTING inventory s",
        ),
        (
            _solve(eye - beta * P_pi, r_pi + w.holding_cost * actions),
            "holding is charged on the stock after production, s + policy[s]; this lab charges "
            "it on the STARTING inventory s",
        ),
        (
            _solve(eye - beta * P_pi, r_pi + w.setup_cost * (1 - produced)),
            "the setup cost is charged even where nothing is produced",
        ),
        (
            _solve(eye - beta * P_pi, r_pi - w.setup_cost * produced),
            "the setup cost is missing where something is produced",
        ),
        (
            _solve(eye - beta * P_pi, r_pi - w.holding_cost * states),
            "the holding cost of the starting inventory is missing",
        ),
        (
            _solve(eye - beta * P_pi, r_pi - w.unit_cost * actions),
            "the cost per unit produced is missing",
        ),
        (
            _solve(eye - beta * equal_P, r_pi),
            "every demand value gets the same probability; weight V(s + a - d) by p_D(d)",
        ),
        (r_pi, "only the cost of the first period is counted; the discounted future is missing"),
        (beta * expected, "the cost of the current period is discounted too; only the future is"),
        (
            case.values(case.smallest_policy()),
            "these are the values of the smallest feasible policy: use the policy passed in",
        ),
        (
            _solve(eye - COURSE_BETA * P_pi, r_pi),
            "these are the values for beta = 0.8, the notebook's BETA: use the argument beta",
        ),
    ]
    return known_mistake(V, expected, alternatives, _close) or (
        "the values do not solve the policy's equations V(s) = r(s, pi(s)) + beta "
        "sum_d p_D(d) V(s + pi(s) - d); check the cost, the next states and their probabilities"
    )


def check_evaluate_policy_gurobi(evaluate_policy_gurobi: Callable[..., object]) -> None:
    """The warehouse's V_pi from Gurobi: the course's instance, fixed and random warehouses,
    policies as lists, dictionaries and arrays."""
    rng = instance_rng(SEED + 1)
    cases: list[tuple[Warehouse, list[int]]] = [(COURSE, [2, 1, 0, 0]), (COURSE, [4, 3, 0, 0])]
    for w in [*FIXED[1:], *(random_warehouse(rng) for _ in range(8))]:
        cases.append((w, warehouse_case(w).random_policy(rng)))
    for k, (w, policy) in enumerate(cases):
        kind = ("dict", "list", "array")[k % 3]
        what = (
            f"evaluate_policy_gurobi({w.capacity}, {w.setup_cost:g}, {w.unit_cost:g}, "
            f"{w.holding_cost:g}, {w.pmf_text()}, {w.discount:g}, {_shown(policy, kind)})"
        )
        demand, given = dict(w.pmf), _give(policy, kind)
        got = _call(
            evaluate_policy_gurobi,
            w.capacity,
            w.setup_cost,
            w.unit_cost,
            w.holding_cost,
            demand,
            w.discount,
            given,
            what=what,
            hint=_gurobi_hint,
        )
        _unchanged(
            "evaluate_policy_gurobi",
            what,
            [("demand_pmf", demand, dict(w.pmf)), ("policy", given, _give(policy, kind))],
        )
        V = _vector(got, w.capacity + 1, what)
        expected = warehouse_case(w).values(policy)
        if _close(V, expected):
            continue
        note = precision_note(got, expected)
        if note:
            raise HiddenCheckFailure(f"{what}: {note}")
        raise HiddenCheckFailure(f"{what}: {_gurobi_problem(V, w, policy)}")


# --------------------------------------------------------------------------- Q-values
def _value_cases(
    seed: int, n_warehouses: int, n_tabular: int
) -> list[tuple[Case, np.ndarray, str]]:
    """Models with value vectors (a random policy's values, or random numbers) and the words
    that say which."""
    rng = instance_rng(seed)
    cases: list[tuple[Case, np.ndarray, str]] = []
    course = warehouse_case(COURSE)
    cases.append((course, course.values([2, 1, 0, 0]), "the values of a policy"))
    models = [warehouse_case(w) for w in FIXED[1:]]
    models += [warehouse_case(random_warehouse(rng)) for _ in range(n_warehouses)]
    models += [random_tabular(rng) for _ in range(n_tabular)]
    models += [chain for chain, _ in CHAINS]
    for k, case in enumerate(models):
        if k % 3 == 2:
            V = np.round(rng.normal(0.0, 10.0, size=case.n_states), 2)
            cases.append((case, V, "random numbers"))
        else:
            cases.append((case, case.values(case.random_policy(rng)), "the values of a policy"))
    return cases


def _q_problem(Q: np.ndarray, case: Case, V: np.ndarray) -> str | None:
    expected = case.Q(V)
    feasible = case.feasible
    if Q.shape != expected.shape:
        return (
            f"Q should have one entry per state and action column, shape {expected.shape}, "
            f"not {Q.shape}"
        )
    if np.isnan(Q[~feasible]).any():
        return (
            "Q holds nan at infeasible pairs; R + beta * (P @ V) gives +inf there (a zero row "
            "of P times V is 0; avoid multiplying the infinite costs by zero)"
        )
    if not np.all(np.isposinf(Q[~feasible])):
        return (
            "Q must be +inf at infeasible pairs (where R is inf), so that no minimum can pick "
            "them; here some infeasible pairs have a finite Q-value"
        )
    if _close(Q[feasible], expected[feasible]):
        return None
    got = Q[feasible]
    with np.errstate(all="ignore"):
        alternatives = [
            (case.R + case.P @ V, "the discount beta is missing in front of the future values"),
            (case.beta * (case.P @ V), "the immediate cost R[s, a] is missing"),
            (case.R - case.beta * (case.P @ V), "the future term has the wrong sign"),
            (
                case.R + case.beta * V[:, None],
                "the future is valued at the current state's V[s]; it is the expected value "
                "sum_s' P[s, a, s'] V[s'] of the next state",
            ),
            (
                case.R + COURSE_BETA * (case.P @ V),
                "these are the Q-values for beta = 0.8, the notebook's BETA: use the argument beta",
            ),
            (
                case.R + case.beta * np.einsum("tas,t->sa", case.P, V),
                "the sum runs over the wrong index of P: Q[s, a] sums P[s, a, s'] V[s'] over "
                "the NEXT state s', the last index",
            ),
        ]
    at_feasible = [(alternative[feasible], message) for alternative, message in alternatives]
    return known_mistake(got, expected[feasible], at_feasible, _close) or (
        "the Q-values of feasible pairs are wrong: "
        "Q[s, a] = R[s, a] + beta sum_s' P[s, a, s'] V[s']"
    )


def check_q_values(q_values: Callable[..., object]) -> None:
    """Q for value vectors of policies and random vectors, on warehouses, random MDPs and
    chains; V given as a list or an array."""
    for k, (case, V, about) in enumerate(_value_cases(SEED + 2, 8, 10)):
        _check_q_case(q_values, case, V, about, as_list=bool(k % 2))


def _check_q_case(
    q_values: Callable[..., object], case: Case, V: np.ndarray, about: str, *, as_list: bool
) -> None:
    given = V.tolist() if as_list else V.copy()
    what = (
        f"q_values(R, P, beta={case.beta:g}, V) for {case.text}, with V {about} given as "
        f"a {'list' if as_list else 'numpy array'}"
    )
    R, P = case.arrays()
    got = _call(q_values, R, P, case.beta, given, what=what)
    _unchanged("q_values", what, [("R", R, case.R), ("P", P, case.P), ("V", given, V)])
    _returned(got, what)
    _not_a_stream(got, what, "Q")
    try:
        Q = np.asarray(got, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(f"{what}: return a numpy array Q[s, a]") from error
    problem = _q_problem(Q, case, V)
    if problem:
        feasible = case.feasible
        if Q.shape == case.R.shape:
            note = precision_note(np.asarray(got)[feasible], case.Q(V)[feasible])
            if note:
                raise HiddenCheckFailure(f"{what}: {note}")
        raise HiddenCheckFailure(f"{what}: {problem}")


# --------------------------------------------------------------------------- improvement
def _improvement_problem(policy: list[int], case: Case, V: np.ndarray) -> str:
    """Why ``policy`` is not greedy for ``V``, in words. A usual mistake is named only when
    it explains the action of every state."""
    Q = case.Q(V)
    feasible = case.feasible
    bad = [s for s, a in enumerate(policy) if not feasible[s, a]]
    if bad:
        s = bad[0]
        largest = _greedy_sets(-np.where(np.isnan(Q), -np.inf, Q))
        masked = _greedy_sets(np.where(feasible, Q, -np.inf))
        by_max = all(a in largest[r] for r, a in enumerate(policy))
        by_mask = all(a in masked[r] for r, a in enumerate(policy))
        if by_max and not by_mask:
            return (
                f"in state {s} it picks an infeasible action (R = inf there), the one with the "
                "largest Q-value: improvement MINIMISES the expected cost"
            )
        if by_mask and not by_max:
            return (
                f"in state {s} it picks an infeasible action: infeasible pairs seem to be "
                "masked with -inf, which makes them the smallest; they must keep Q = +inf"
            )
        return (
            f"in state {s} it picks action {policy[s]}, which is infeasible there "
            "(R[s, a] = inf) and must never be chosen: improvement takes the SMALLEST "
            "Q-value, and infeasible pairs keep Q = +inf (do not replace their costs by "
            "numbers or mask them with -inf)"
        )
    right = _greedy_sets(Q)
    with np.errstate(all="ignore"):
        hypotheses = [
            (
                case.R,
                "only the immediate cost R[s, a] is compared; the discounted future "
                "beta sum_s' P[s, a, s'] V[s'] is missing",
            ),
            (case.R + case.P @ V, "the discount beta is missing in front of the future values"),
            (
                np.where(feasible, -Q, np.inf),
                "it picks the feasible actions with the LARGEST Q-values; improvement "
                "minimises the expected cost",
            ),
        ]
    for rows, message in hypotheses:
        allowed = _greedy_sets(rows)
        explains = all(a in allowed[s] for s, a in enumerate(policy))
        if explains and any(allowed[s] != right[s] for s in range(case.n_states)):
            return message
    s = next(s for s, a in enumerate(policy) if a not in right[s])
    return (
        f"in state {s} the action chosen does not have the smallest Q-value "
        "R[s, a] + beta sum_s' P[s, a, s'] V[s']"
    )


def check_improve_policy(
    improve_policy: Callable[..., object], q_values: Callable[..., object] | None = None
) -> None:
    """Greedy policies for values of policies and random vectors on warehouses, random MDPs
    and chains; any action within rounding of the minimum is accepted. A failure is led by
    what the student's q_values (which improve_policy builds on) gets wrong on the same
    model, if anything."""
    for k, (case, V, about) in enumerate(_value_cases(SEED + 3, 10, 12)):
        try:
            _check_improve_case(improve_policy, case, V, about, as_list=bool(k % 2))
        except HiddenCheckFailure as failure:
            if q_values is None:
                raise
            problem = _first_problem(
                [("q_values", partial(_check_q_case, q_values, case, V, about, as_list=False))]
            )
            raise _blamed(failure, "improve_policy", problem) from None


def _check_improve_case(
    improve_policy: Callable[..., object], case: Case, V: np.ndarray, about: str, *, as_list: bool
) -> None:
    given = V.tolist() if as_list else V.copy()
    what = f"improve_policy(R, P, beta={case.beta:g}, V) for {case.text}, with V {about}"
    R, P = case.arrays()
    got = _call(improve_policy, R, P, case.beta, given, what=what)
    _unchanged("improve_policy", what, [("R", R, case.R), ("P", P, case.P), ("V", given, V)])
    policy = _policy(got, case, what)
    allowed = _greedy_sets(case.Q(V))
    if any(a not in allowed[s] for s, a in enumerate(policy)):
        raise HiddenCheckFailure(f"{what}: {_improvement_problem(policy, case, V)}")


def _first_problem(checks: Sequence[tuple[str, Callable[[], None]]]) -> tuple[str, str] | None:
    """(name, message) of the first of the student's functions whose check fails, or None."""
    for name, check in checks:
        try:
            check()
        except HiddenCheckFailure as failure:
            return name, str(failure)
    return None


def _blamed(
    failure: HiddenCheckFailure, function: str, problem: tuple[str, str] | None
) -> HiddenCheckFailure:
    """``failure`` of ``function``, led by the ``problem`` of a function it builds on."""
    if problem is None:
        return failure
    name, message = problem
    return HiddenCheckFailure(
        f"{function} uses your {name}, which is wrong on this model, so {function} inherits "
        f"its mistake. Fix {name} first: {message}. (What the check of {function} saw: "
        f"{failure})"
    )


# --------------------------------------------------------------------------- iteration
def _iteration_cases(seed: int, n_warehouses: int, n_tabular: int) -> list[tuple[Case, list]]:
    rng = instance_rng(seed)
    course = warehouse_case(COURSE)
    cases: list[tuple[Case, list]] = [(course, [2, 1, 0, 0]), (course, course.largest_policy())]
    cases += CHAINS
    for w in [*FIXED[1:], *(random_warehouse(rng) for _ in range(n_warehouses))]:
        case = warehouse_case(w)
        start = case.smallest_policy() if rng.random() < 0.5 else case.random_policy(rng)
        cases.append((case, start))
    for _ in range(n_tabular):
        case = random_tabular(rng)
        cases.append((case, case.random_policy(rng)))
    return cases


def _run_pi(
    policy_iteration: Callable[..., object], case: Case, start: list[int], kind: str
) -> tuple[str, list[int], np.ndarray, Any]:
    what = (
        f"policy_iteration(R, P, beta={case.beta:g}, policy0={_shown(start, kind)}) for {case.text}"
    )
    R, P = case.arrays()
    given = _give(start, kind)
    got = _call(
        policy_iteration,
        R,
        P,
        case.beta,
        given,
        what=what,
        hint=_pi_hint(kind, case),
        time_limit=TIME_LIMIT,
    )
    _unchanged(
        "policy_iteration",
        what,
        [("R", R, case.R), ("P", P, case.P), ("policy0", given, _give(start, kind))],
    )
    _returned(got, what)
    if isinstance(got, Mapping | str) or not isinstance(got, Sequence):
        raise HiddenCheckFailure(f"{what}: return the triple (policy, V, history)")
    if len(got) != 3:
        raise HiddenCheckFailure(
            f"{what}: return the triple (policy, V, history), got {len(got)} items"
        )
    try:
        policy = _policy(got[0], case, what, "the policy returned")
    except HiddenCheckFailure:
        if _looks_like_values_then_policy(got[0], got[1], case):
            raise HiddenCheckFailure(
                f"{what}: the results come in the order (policy, V, history); yours returns "
                "the values first and the policy second"
            ) from None
        raise
    V = _vector(got[1], case.n_states, what, "V")
    return what, policy, V, got[2]


def _looks_like_values_then_policy(first: Any, second: Any, case: Case) -> bool:
    """Whether ``first`` is the optimal values and ``second`` a policy (whole numbers)."""
    try:
        values = np.asarray(first, dtype=float).ravel()
        actions = np.asarray(second, dtype=float).ravel()
    except (TypeError, ValueError):
        return False
    best = np.asarray(mdplab.policy_iteration(case.mdp, case.smallest_policy()).values)
    return (
        values.shape == actions.shape == (case.n_states,)
        and _close(values, best)
        and bool(np.all(actions == np.round(actions)))
        and not _close(actions, best)
    )


def _pi_hint(kind: str, case: Case) -> Callable[[BaseException | None], str | None]:
    dict_hint = _dict_hint(kind)

    def hint(error: BaseException | None) -> str | None:
        if isinstance(error, IndexError) and case.n_states != COURSE.capacity + 1:
            return (
                f"this model has {case.n_states} states, the course's warehouse 4: is a size "
                "or a policy of the course written into the function? Start from policy0, "
                "and read the number of states from R"
            )
        return dict_hint(error)

    return hint


def _component_problem(
    case: Case,
    start: list[int],
    evaluate_policy: Callable[..., object] | None,
    q_values: Callable[..., object] | None,
    improve_policy: Callable[..., object] | None,
) -> tuple[str, str] | None:
    """(name, message) of the first of the student's evaluate_policy, q_values and
    improve_policy that is wrong on ``case``, at the starting policy and its values."""
    V = case.values(start)
    checks: list[tuple[str, Callable[[], None]]] = []
    if evaluate_policy is not None:
        checks.append(
            (
                "evaluate_policy",
                partial(_check_evaluation_case, evaluate_policy, case, start, "list"),
            )
        )
    if q_values is not None:
        about = "the values of policy0"
        checks.append(("q_values", partial(_check_q_case, q_values, case, V, about, as_list=False)))
    if improve_policy is not None:
        about = "the values of policy0"
        checks.append(
            (
                "improve_policy",
                partial(_check_improve_case, improve_policy, case, V, about, as_list=False),
            )
        )
    return _first_problem(checks)


def _stopping_problem(case: Case, start: list[int], policy: list[int]) -> str:
    """Why the (suboptimal) ``policy`` was returned, in words."""
    reference = mdplab.policy_iteration(case.mdp, start)
    path = [[int(a) for a in step.policy] for step in reference.history]
    if policy == list(start):
        return (
            "the policy returned is the starting policy, which is not optimal here; evaluate "
            "and improve until improving gives back the same policy"
        )
    if case.slow and policy in path:
        return (
            "the loop stopped before the policy stopped changing: on this model every step "
            "lowers the values only a little, so a stopping rule on the change in values "
            "stops too early; stop only when improving gives back the same policy"
        )
    if len(path) > 2 and policy == path[1]:
        return (
            "the policy returned is the result of a single improvement step, which is not "
            "optimal here; repeat evaluation and improvement until the policy stops changing"
        )
    if policy in path:
        return (
            "the loop stopped before the policy stopped changing (did it stop on a small "
            "change in the values, or after a fixed number of steps?); stop only when "
            "improving gives back the same policy"
        )
    return (
        "the policy returned is not optimal: a greedy step for its own values would still "
        "change it; stop only when improving gives back the same policy"
    )


Components = tuple[Callable[..., object] | None, ...]


def check_policy_iteration(
    policy_iteration: Callable[..., object],
    evaluate_policy: Callable[..., object] | None = None,
    q_values: Callable[..., object] | None = None,
    improve_policy: Callable[..., object] | None = None,
) -> None:
    """The final policy is optimal and V = V*, on the course's warehouse (from the smallest
    and the largest production), slow chains, fixed and random warehouses and random MDPs.
    A failure is led by what the student's evaluate_policy, q_values or improve_policy
    (which policy_iteration builds on) gets wrong on the same model, if anything."""
    components = (evaluate_policy, q_values, improve_policy)
    for k, (case, start) in enumerate(_iteration_cases(SEED + 4, 8, 10)):
        kind = CONTAINERS[k % len(CONTAINERS)]
        try:
            _check_pi_case(policy_iteration, case, start, kind)
        except HiddenCheckFailure as failure:
            problem = _component_problem(case, start, *components)
            raise _blamed(failure, "policy_iteration", problem) from None


def _check_pi_case(
    policy_iteration: Callable[..., object], case: Case, start: list[int], kind: str
) -> None:
    what, policy, V, _ = _run_pi(policy_iteration, case, start, kind)
    best = np.asarray(mdplab.policy_iteration(case.mdp, start).values, dtype=float)
    if not case.feasible[np.arange(case.n_states), policy].all():
        s = int(np.flatnonzero(~case.feasible[np.arange(case.n_states), policy])[0])
        raise HiddenCheckFailure(
            f"{what}: the policy returned picks an infeasible action in state {s}"
        )
    if not _optimal(case.values(policy), best):
        raise HiddenCheckFailure(f"{what}: {_stopping_problem(case, start, policy)}")
    if _close(V, best):
        return
    if _close(V, case.values(start)):
        raise HiddenCheckFailure(
            f"{what}: the policy is optimal, but V holds the values of the starting policy; "
            "return the values of the final policy"
        )
    raise HiddenCheckFailure(
        f"{what}: the policy is optimal, but V is not its value vector (the optimal values)"
    )


def _history_steps(history: Any, case: Case, what: str) -> list[tuple[list[int], np.ndarray]]:
    if isinstance(history, Mapping | str | np.ndarray) or not isinstance(history, Sequence):
        raise HiddenCheckFailure(
            f"{what}: history should be a list of pairs (policy_k, V_k), got "
            f"{type(history).__name__}"
        )
    if len(history) == 0:
        raise HiddenCheckFailure(f"{what}: history is empty; it holds one pair per evaluation")
    steps = []
    for k, entry in enumerate(history):
        if isinstance(entry, Mapping | str) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise HiddenCheckFailure(f"{what}: history[{k}] should be a pair (policy_k, V_k)")
        steps.append(
            (
                _policy(entry[0], case, what, f"the policy in history[{k}]"),
                _vector(entry[1], case.n_states, what, f"the values in history[{k}]"),
            )
        )
    return steps


def check_policy_iteration_history(
    policy_iteration: Callable[..., object],
    evaluate_policy: Callable[..., object] | None = None,
    q_values: Callable[..., object] | None = None,
    improve_policy: Callable[..., object] | None = None,
) -> None:
    """history: starts with policy0 and its values, every V_k is the value of policy_k, every
    next policy is greedy for the previous values and differs from it, and the last pair is
    the result returned. A failure is led by what the student's evaluate_policy, q_values
    or improve_policy gets wrong on the same model, if anything."""
    components = (evaluate_policy, q_values, improve_policy)
    for k, (case, start) in enumerate(_iteration_cases(SEED + 5, 4, 5)):
        kind = CONTAINERS[(k + 1) % len(CONTAINERS)]
        try:
            _check_history_case(policy_iteration, case, start, kind)
        except HiddenCheckFailure as failure:
            problem = _component_problem(case, start, *components)
            raise _blamed(failure, "policy_iteration", problem) from None


def _check_history_case(
    policy_iteration: Callable[..., object], case: Case, start: list[int], kind: str
) -> None:
    what, policy, V, history = _run_pi(policy_iteration, case, start, kind)
    steps = _history_steps(history, case, what)
    policies = [p for p, _ in steps]
    if len(steps) > 1 and all(p == policy for p in policies) and policy != list(start):
        raise HiddenCheckFailure(
            f"{what}: every entry of history shows the final policy; store a copy of each "
            "policy (policy.copy()), not the array that the loop keeps changing"
        )
    if policies[0] != list(start):
        raise HiddenCheckFailure(
            f"{what}: history[0] should hold the starting policy policy0 (and its values)"
        )
    for j, step_policy in enumerate(policies):
        if not case.feasible[np.arange(case.n_states), step_policy].all():
            raise HiddenCheckFailure(
                f"{what}: the policy in history[{j}] picks an infeasible action"
            )
    for j, (step_policy, step_values) in enumerate(steps):
        if not _close(step_values, case.values(step_policy)):
            advice = (
                f"{what}: the values in history[{j}] are not its own: they are not the "
                "values of the policy stored next to them; each pair is (policy_k, V_k) "
                "with V_k = V of policy_k"
            )
            if j + 1 < len(steps) and _close(step_values, case.values(steps[j + 1][0])):
                advice += " (they are the values of the next policy in history)"
            elif j >= 1 and _close(step_values, case.values(steps[j - 1][0])):
                advice += " (they are the values of the previous policy in history)"
            raise HiddenCheckFailure(advice)
    for j in range(len(steps) - 1):
        if policies[j + 1] == policies[j]:
            raise HiddenCheckFailure(
                f"{what}: history[{j}] and history[{j + 1}] hold the same policy; each "
                "policy is evaluated and recorded once, and the loop stops when the "
                "improved policy equals the current one"
            )
        allowed = _greedy_sets(case.Q(steps[j][1]))
        bad = [s for s, a in enumerate(policies[j + 1]) if a not in allowed[s]]
        if bad:
            raise HiddenCheckFailure(
                f"{what}: the policy in history[{j + 1}] is not greedy for the values in "
                f"history[{j}] (state {bad[0]}); each new policy improves on the previous "
                "one's values"
            )
    if policies[-1] != policy or not _close(steps[-1][1], V):
        raise HiddenCheckFailure(
            f"{what}: the last pair of history should be the final (policy, V) returned"
        )


# ----------------------------------------------------- exercise 6: modified policy iteration
MPI_EPSILON = 0.01


def reference_modified_policy_iteration(
    R: np.ndarray,
    P: np.ndarray,
    beta: float,
    k: int,
    epsilon: float = MPI_EPSILON,
    *,
    mistake: str = "",
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""(policy, V, steps) of modified policy iteration from :math:`v_0 = 0`, as the lab
    states it, or with one ``mistake`` of :data:`MPI_MISTAKES`.

    Step n: :math:`u_0 = T v_n`, with :math:`\pi` greedy for :math:`v_n`; stop when
    :math:`\|u_0 - v_n\|_\infty < \varepsilon (1 - \beta) / (2 \beta)` and return
    :math:`u_0`, the policy greedy for it and n; otherwise :math:`v_{n+1} = T_\pi^k u_0`.
    """
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    threshold = epsilon if mistake == "threshold_epsilon" else epsilon * (1 - beta) / (2 * beta)
    sign = -1.0 if mistake == "maximise" else 1.0
    sweeps = {"k_plus_one": k + 1, "k_minus_one": max(k - 1, 0)}.get(mistake, k)

    def greedy(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            Q = sign * (R + beta * (P @ V))
        Q = np.where(np.isfinite(R), Q, np.inf)
        policy = Q.argmin(axis=1)
        return policy, sign * Q[states, policy]

    V = np.zeros(R.shape[0])
    for step in range(1, 100_000):
        policy, U = greedy(V)
        if np.max(np.abs(U - V)) < threshold:
            kept = V if mistake == "returns_v" else U
            count = {"zero_based": step - 1, "counts_sweeps": step + (step - 1) * sweeps}
            return greedy(kept)[0], kept, count.get(mistake, step)
        W = U
        for _ in range(sweeps):
            if mistake == "optimality_sweeps":
                W = greedy(W)[1]
            elif mistake == "gauss_seidel":
                W = W.copy()
                for s in states:
                    W[s] = R[s, policy[s]] + beta * P[s, policy[s]] @ W
            else:
                W = R[states, policy] + beta * P[states, policy] @ W
        V = W
    raise RuntimeError("modified policy iteration did not stop")


MPI_MISTAKES = (
    ("k_plus_one", "it makes k + 1 partial evaluation sweeps per step; make k"),
    (
        "k_minus_one",
        "one partial evaluation sweep too few per step: make k sweeps, starting from "
        "u_0 = T V_n (the sweep that chose the policy), not from V_n",
    ),
    (
        "optimality_sweeps",
        "the partial evaluation sweeps take the minimum over actions again (that is value "
        "iteration); they apply the policy fixed at the start of the step, R_pi + beta P_pi u",
    ),
    (
        "threshold_epsilon",
        "it stops when the change is below epsilon; the rule is epsilon (1 - beta) / (2 beta)",
    ),
    (
        "returns_v",
        "on stopping it returns V_n, the values before the last sweep; return u_0 = T V_n",
    ),
    (
        "gauss_seidel",
        "the partial evaluation updates u state by state in place (Gauss-Seidel); compute "
        "each sweep from the previous u",
    ),
    ("zero_based", "the step count starts at 0; count the improvement steps from 1"),
    (
        "counts_sweeps",
        "it counts every sweep; count the improvement steps (evaluations of T v_n) only",
    ),
    ("maximise", "it maximises; costs are minimised (min and argmin)"),
)


def _mpi_cases(seed: int) -> list[tuple[Case, int]]:
    """(model, k): the course's warehouse for k = 0, 3 and 40, fixed and random warehouses
    (beta > 0) and random MDPs with costs of either sign, each with a k of its own."""
    rng = instance_rng(seed)
    course = warehouse_case(COURSE)
    cases = [(course, 0), (course, 3), (course, 40)]
    models = [warehouse_case(w) for w in FIXED[1:] if w.discount > 0]
    models += [warehouse_case(random_warehouse(rng)) for _ in range(4)]
    models += [random_tabular(rng) for _ in range(4)]
    return cases + [(case, int(rng.choice([0, 1, 2, 4, 8, 25]))) for case in models]


def check_modified_policy_iteration(modified_policy_iteration: Callable[..., object]) -> None:
    """On every case of :func:`_mpi_cases`: the values are the reference's (within the
    series' tolerance), the policy is greedy for them and the step count is the
    reference's; a difference is named by the first of :data:`MPI_MISTAKES` it matches."""
    for case, k in _mpi_cases(SEED + 6):
        if case.beta <= 0:
            continue
        what = f"modified_policy_iteration(R, P, beta={case.beta:g}, k={k}) for {case.text}"
        R, P = case.arrays()
        got = _call(
            modified_policy_iteration, R, P, case.beta, k, what=what, hint=_mpi_hint(k),
            time_limit=TIME_LIMIT,
        )  # fmt: skip
        _unchanged("modified_policy_iteration", what, [("R", R, case.R), ("P", P, case.P)])
        _returned(got, what)
        if isinstance(got, Mapping | str) or not isinstance(got, Sequence) or len(got) != 3:
            raise HiddenCheckFailure(f"{what}: return the triple (policy, V, steps)")
        policy = _policy(got[0], case, what, "the policy returned")
        V = _vector(got[1], case.n_states, what, "V")
        steps = got[2]
        whole = isinstance(steps, numbers.Real) and not isinstance(steps, bool | np.bool_)
        if not whole or not float(steps).is_integer():
            raise HiddenCheckFailure(f"{what}: steps is a whole number, got {describe_type(steps)}")
        reference = reference_modified_policy_iteration(case.R, case.P, case.beta, k)
        _, expected_V, expected_steps = reference
        if _close(V, expected_V) and int(steps) == expected_steps:
            allowed = _greedy_sets(case.Q(V))
            bad = [s for s, a in enumerate(policy) if a not in allowed[s]]
            if bad:
                raise HiddenCheckFailure(
                    f"{what}: the policy returned is not greedy for the values returned "
                    f"(state {bad[0]})"
                )
            continue
        raise HiddenCheckFailure(f"{what}: {_mpi_problem(case, k, V, int(steps))}")


def _mpi_hint(k: int) -> Callable[[BaseException | None], str | None]:
    def hint(error: BaseException | None) -> str | None:
        if isinstance(error, RuntimeError) and k == 0:
            return (
                "with k = 0 every step must still move V to u_0 = T V_n: the partial "
                "evaluation starts from u_0, not from V_n"
            )
        return None

    return hint


def _mpi_problem(case: Case, k: int, V: np.ndarray, steps: int) -> str:
    """Which known mistake gives these values and this step count, in words."""
    for mistake, text in MPI_MISTAKES:
        try:
            _, wrong_V, wrong_steps = reference_modified_policy_iteration(
                case.R, case.P, case.beta, k, mistake=mistake
            )
        except RuntimeError:
            continue
        if wrong_steps == steps and _close(V, wrong_V):
            return text
    if steps == reference_modified_policy_iteration(case.R, case.P, case.beta, k)[2]:
        return "the number of steps is right, but V is not u_0 = T V_n of the last step"
    return (
        "the number of improvement steps is not that of modified policy iteration with "
        "these k and epsilon; check the stopping rule and the k partial evaluation sweeps"
    )
