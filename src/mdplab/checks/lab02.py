"""Hidden checks of lab02_mdp_model: the warehouse as arrays, and the value of a policy.

Every check runs the student's function on warehouses drawn from the lab's seed (mixed with
the grading run's: :func:`mdplab.checks.common.instance_seed`): capacities 1 to 8, one to
three demand values in 0..5 (spread at most the capacity, dictionary keys in any order),
setup, unit and holding costs that may be fractional or zero, and discount factors in
[0, 0.95]. Reference numbers come from :func:`mdplab.warehouse` and
:func:`mdplab.evaluate`.

The Monte Carlo checks are deterministic for a given answer: they pass seeded generators.
They compare the average of many runs with the *exact* mean of the truncated discounted
cost, computed by a recursion on the first two moments, and allow six exact standard
errors, so a correct simulation fails with probability of order 1e-9 whatever way it
draws its random numbers. The mistakes they look for (no discount, a period too many,
the cost of the wrong state, ...) are caught exactly on deterministic warehouses first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

import mdplab
from mdplab.checks.arguments import check_kept, snapshot
from mdplab.checks.common import (
    HiddenCheckFailure,
    as_float,
    call_repeatedly,
    call_student,
    instance_rng,
    known_mistake,
    policy_before_beta,
)
from mdplab.checks.numeric import (
    PROBABILITY_SUM_ATOL,
    VALUE_ATOL,
    VALUE_RTOL,
    as_values,
    precision_note,
    values_close,
)
from mdplab.checks.warehouses import COURSE, Warehouse, random_demand

SEED = 20260214
# Statistical checks fail beyond this many exact standard errors.
Z_LIMIT = 6.0
# Runs per statistical check: every catalogued mistake fails at 400 runs, on the lab's
# instances and on a run seed's, as it did at 1000, and 1000 cost 2.5 times as much (a
# student's simulate_run is a Python loop, called once per run).
RUNS = 400


# ---------------------------------------------------------------------------- instances
FIXED = [
    COURSE,
    Warehouse(5, 2.5, 0.5, 0.25, ((3, 0.3), (0, 0.7)), 0.9),  # demand 0; keys not sorted
    Warehouse(6, 3.0, 1.5, 0.5, ((4, 0.2), (1, 0.5), (2, 0.3)), 0.75),
    Warehouse(2, 6.0, 2.0, 1.5, ((2, 1.0),), 0.0),  # a single demand value, beta = 0
    Warehouse(1, 1.0, 3.0, 2.0, ((1, 0.6), (0, 0.4)), 0.95),
    Warehouse(8, 5.0, 1.0, 0.75, ((5, 0.25), (3, 0.35), (4, 0.4)), 0.85),
]


def random_instance(
    rng: np.random.Generator,
    *,
    sizes: Iterable[int] = (1, 2, 3),
    capacity: int | None = None,
) -> Warehouse:
    """A warehouse with capacity 1..8 and 1-3 demand values in 0..5 (see
    :func:`random_demand`), costs on a grid (setup positive), beta 0 or in [0.3, 0.95]."""
    cap = int(rng.integers(1, 9)) if capacity is None else capacity
    k = int(rng.choice([size for size in sizes if size <= cap + 1]))
    demand = random_demand(rng, k, cap, values_below=6)
    costs = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.5]
    return Warehouse(
        capacity=cap,
        setup_cost=float(rng.choice(costs[1:])),
        unit_cost=float(rng.choice(costs)),
        holding_cost=float(rng.choice(costs)),
        demand=demand,
        discount=float(rng.choice([0.0, round(float(rng.uniform(0.3, 0.95)), 2)], p=[0.1, 0.9])),
    )


def instances(seed: int, count: int) -> list[Warehouse]:
    rng = instance_rng(seed)
    return FIXED + [random_instance(rng) for _ in range(count)]


def random_policy(instance: Warehouse, rng: np.random.Generator) -> list[int]:
    return [int(rng.choice(sorted(instance.actions(s)))) for s in range(instance.n_states)]


# ---------------------------------------------------------------------------- calling
def _call(
    function: Callable[..., Any],
    *args: Any,
    what: str,
    hints: Mapping[type, str] | None = None,
    watch: Mapping[int, str] | None = None,
    name: str = "your function",
) -> Any:
    """Call student code with its warnings silenced (a test cell that writes to stderr
    loses its points); add a hint to the failure when the exception has a usual cause.

    ``watch`` maps the positions of arguments the function must leave as they were to
    their parameter names: one that the call changed fails the check, with a message that
    names it and says *in place*, before anything else (``name`` is the function's)."""
    kept = snapshot(args, watch)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            answer = call_student(function, *args, what=what)
    except HiddenCheckFailure as failure:
        check_kept(what, name, args, kept, watch)
        for kind, hint in (hints or {}).items():
            if isinstance(failure.__cause__, kind):
                raise HiddenCheckFailure(f"{failure} ({hint})") from failure.__cause__
        raise
    check_kept(what, name, args, kept, watch)
    return answer


def _returned(value: Any, what: str) -> None:
    if value is None:
        raise HiddenCheckFailure(f"{what}: the function returned None; did you forget `return`?")


def _float_array(value: Any, what: str, name: str = "the result") -> np.ndarray:
    _returned(value, what)
    if isinstance(value, Mapping):
        raise HiddenCheckFailure(f"{what}: {name} should be a numpy array, not a dictionary")
    return as_values(value, what=what if name == "the result" else f"{what}: {name}")


def _vector(value: Any, size: int, what: str) -> np.ndarray:
    """A vector of ``size`` floats from an array, a list or a dict {state: value}."""
    _returned(value, what)
    if isinstance(value, Mapping):
        try:
            value = [value[s] for s in range(size)]
        except KeyError as error:
            raise HiddenCheckFailure(
                f"{what}: the dictionary has no value for state {error}"
            ) from error
    array = _float_array(value, what)
    if array.ndim == 2 and 1 in array.shape and array.size == size:
        array = array.reshape(size)  # a row or column matrix of the right length
    if array.shape != (size,):
        raise HiddenCheckFailure(
            f"{what}: expected one value per state ({size} states, shape ({size},)), "
            f"got shape {array.shape}"
        )
    return array


def _int_set(value: Any, what: str) -> set[int]:
    """The production quantities a student returned, as a set of ints; duplicates fail."""
    _returned(value, what)
    if isinstance(value, Mapping | str | bytes):
        raise HiddenCheckFailure(f"{what}: expected a list of production quantities")
    try:
        items = list(value)
    except TypeError as error:
        raise HiddenCheckFailure(
            f"{what}: expected a list of production quantities, got {type(value).__name__}"
        ) from error
    quantities = []
    for item in items:
        if np.ndim(item) != 0:
            raise HiddenCheckFailure(f"{what}: expected a flat list of production quantities")
        number = as_float(item, what=what)
        if isinstance(item, bool) or not float(number).is_integer():
            raise HiddenCheckFailure(f"{what}: production quantities are whole numbers")
        quantities.append(int(number))
    if len(set(quantities)) != len(quantities):
        raise HiddenCheckFailure(f"{what}: a production quantity is listed twice")
    return set(quantities)


def _close(got: Any, expected: Any, *, rtol: float = VALUE_RTOL, atol: float = VALUE_ATOL) -> bool:
    """The numeric policy's comparison (see :mod:`mdplab.checks.numeric`) by default."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, expected, rtol=rtol, atol=atol))


# ---------------------------------------------------------------------------- diagnoses


def _action_set_problem(s: int, got: set[int], inst: Warehouse) -> str | None:
    """Why the set ``got`` is not A(s), in words; None if it is A(s)."""
    expected = inst.actions(s)
    if got == expected:
        return None
    extra, missing = got - expected, expected - got
    cap, d_max = inst.capacity, inst.d_max
    if cap != COURSE.capacity:
        course_capacity = {
            a
            for a in range(d_max + COURSE.capacity + 1)
            if s + a >= d_max and s + a - inst.d_min <= COURSE.capacity
        }
        if got == course_capacity:
            return (
                f"these are the quantities for a capacity of {COURSE.capacity}, the course's "
                "warehouse; use the argument capacity"
            )
    if any(a < 0 for a in extra):
        return "it includes a negative production quantity"
    if any(s + a < d_max for a in extra):
        return (
            "it allows a production quantity that cannot meet the largest possible demand "
            "(all demand must be met, whichever value it takes: s + a >= max demand)"
        )
    if extra:
        return (
            "it allows a production quantity after which the ending inventory exceeds the "
            "capacity when demand turns out to be its smallest value (s + a - min demand "
            "must be at most the capacity)"
        )
    if missing == {max(expected)}:
        return (
            "it leaves out the largest feasible quantity: only the ENDING inventory s + a - D "
            "must fit, for the smallest demand, so a may go up to capacity + min demand - s "
            "(is the upper end of a range excluded?)"
        )
    if all(s + a > cap for a in missing):
        return (
            "it leaves out quantities with s + a above the capacity; the capacity limits the "
            "ENDING inventory s + a - D, which is smaller than s + a"
        )
    if missing == {min(expected)}:
        return "it leaves out the smallest feasible quantity"
    return "it leaves out feasible production quantities"


def _cost_alternatives(
    s: Any, a: Any, setup: float, unit: float, hold: float, mean_demand: float | None
) -> list[tuple[Any, str]]:
    """Costs as the usual mistakes compute them, with what each mistake is."""
    s, a = np.asarray(s, dtype=float), np.asarray(a, dtype=float)
    produced = (a > 0).astype(float)
    right = setup * produced + unit * a + hold * s
    out: list[tuple[Any, str]] = []
    if mean_demand is not None:
        out.append(
            (
                setup * produced + unit * a + hold * (s + a - mean_demand),
                "holding is charged on the (expected) ENDING inventory; this lab charges it on "
                "the STARTING inventory s",
            )
        )
    out += [
        (-right, "the cost has the wrong sign; costs are positive amounts paid"),
        (
            unit * produced + setup * a + hold * s,
            "setup_cost and unit_cost are swapped; the arguments come in the order "
            "(s, a, setup_cost, unit_cost, holding_cost)",
        ),
        (
            COURSE.setup_cost * produced + COURSE.unit_cost * a + COURSE.holding_cost * s,
            "the course's costs (setup 4, unit 1, holding 1) are written in; use the "
            "arguments setup_cost, unit_cost and holding_cost",
        ),
        (
            setup * produced + unit * a + hold * (s + a),
            "holding is charged on the stock after production, s + a; this lab charges it on "
            "the STARTING inventory s",
        ),
        (setup + unit * a + hold * s, "the setup cost is charged even when nothing is produced"),
        (unit * a + hold * s, "the setup cost is missing in periods with production (a > 0)"),
        (
            setup * a + unit * a + hold * s,
            "the setup cost is charged per unit; it is paid once in a period with production",
        ),
        (setup * produced + unit * a, "the holding cost of the starting inventory is missing"),
        (setup * produced + hold * s, "the cost per unit produced is missing"),
    ]
    return out


def _cost_problem(
    got: Any, s: Any, a: Any, inst_costs: tuple[float, float, float], mean_demand: float | None
) -> str:
    setup, unit, hold = inst_costs
    for alternative, message in _cost_alternatives(s, a, setup, unit, hold, mean_demand):
        if _close(got, alternative):
            return message
    return "the cost is wrong: r(s, a) = setup [a > 0] + unit * a + holding * s"


def _shifted(row: np.ndarray, k: int) -> np.ndarray:
    """``row`` moved k places to the right, dropping what falls off."""
    out = np.zeros_like(row)
    if k >= 0:
        out[k:] = row[: row.size - k]
    else:
        out[:k] = row[-k:]
    return out


# What a row that both mistakes give (on some pairs) is said to be; a check that meets it
# looks on at the other rows of the warehouse for one that tells them apart.
AMBIGUOUS = "the next state is off by one, or the probability of demand d is put at index d"


def _row_problem(got: np.ndarray, s: int, a: int, inst: Warehouse) -> str | None:
    """Why ``got`` is not P(. | s, a), in words; None if it is."""
    expected = inst.mdp().transition_row(s, a)
    if got.shape != expected.shape:
        return (
            f"the row should have one entry per next state 0..capacity ({expected.size} "
            f"entries), not {got.size}"
        )
    if not np.all(np.isfinite(got)) or np.any(got < -1e-12):
        return "the row holds negative or non-finite numbers"
    if _close(got, expected):
        return None
    off_by_one = any(
        _close(got, _shifted(expected, k)) or _close(got, np.roll(expected, k)) for k in (1, -1)
    )
    at_demand = np.zeros_like(expected)
    for d, p in inst.demand:
        if d < at_demand.size:
            at_demand[d] += p
    at_index_d = at_demand.sum() == 1 and _close(got, at_demand)
    if off_by_one and at_index_d:
        return f"{AMBIGUOUS}; after demand d the next state is s + a - d"
    if off_by_one:
        return "the next state is off by one: after demand d it is s + a - d"
    if at_index_d:
        return (
            "the probability of demand d is put at index d; it belongs to the next state s + a - d"
        )
    support = expected > 0
    if support.sum() > 1 and _close(got, support / support.sum()):
        return "every demand value gets the same probability; use the probabilities of the pmf"
    mirrored = expected.copy()
    mirrored[support] = expected[support][::-1]
    if support.sum() > 1 and _close(got, mirrored):
        return "the probabilities are attached to the wrong demand values"
    if abs(float(got.sum()) - 1.0) > PROBABILITY_SUM_ATOL:
        return "the probabilities do not sum to 1"
    return "the row is wrong: the next state is s + a - d with the probability of demand d"


# ---------------------------------------------------------------------------- model checks
def _feasible_on(feasible_actions: Callable[..., object], inst: Warehouse) -> None:
    """Fail when feasible_actions is wrong for some state of ``inst``."""
    for s in range(inst.n_states):
        what = f"feasible_actions({s}, {inst.capacity}, {inst.pmf_text()})"
        got = _int_set(
            _call(
                feasible_actions,
                s,
                inst.capacity,
                inst.pmf,
                what=what,
                watch={2: "demand_pmf"},
                name="feasible_actions",
            ),
            what,
        )
        problem = _action_set_problem(s, got, inst)
        if problem:
            raise HiddenCheckFailure(f"{what}: {problem}")


def _cost_on(cost: Callable[..., object], cases: Iterable[tuple[int, int, float, float, float]]):
    """Fail when cost is wrong for one of ``cases`` (s, a, setup, unit, holding)."""
    for s, a, setup, unit, hold in cases:
        what = f"cost({s}, {a}, {setup:g}, {unit:g}, {hold:g})"
        got = as_float(_call(cost, s, a, setup, unit, hold, what=what, name="cost"), what=what)
        expected = setup * (a > 0) + unit * a + hold * s
        if values_close(got, expected):
            continue
        raise HiddenCheckFailure(f"{what}: {_cost_problem(got, s, a, (setup, unit, hold), None)}")


def _row_on(transition_probabilities: Callable[..., object], inst: Warehouse, s: int, a: int):
    """Fail when transition_probabilities(s, a, ...) is not the row P(. | s, a) of ``inst``."""
    what = f"transition_probabilities({s}, {a}, {inst.capacity}, {inst.pmf_text()})"
    got = _call(
        transition_probabilities,
        s,
        a,
        inst.capacity,
        inst.pmf,
        what=what,
        hints=INDEX_HINT,
        watch={3: "demand_pmf"},
        name="transition_probabilities",
    )
    if isinstance(got, Mapping):
        raise HiddenCheckFailure(
            f"{what}: return a numpy array indexed by the next state, not a dictionary"
        )
    row = _float_array(got, what)
    if row.ndim == 2 and 1 in row.shape:
        row = row.ravel()  # a row or column matrix of the right length
    note = precision_note(got, inst.mdp().transition_row(s, a))
    if note:
        raise HiddenCheckFailure(f"{what}: {note}")
    problem = _row_problem(row, s, a, inst)
    if problem:
        raise HiddenCheckFailure(f"{what}: {problem}")


def check_feasible_actions(feasible_actions: Callable[..., object]) -> None:
    """A(s) for every state of fixed and random warehouses; demand_pmf stays as it was."""
    for inst in instances(SEED, 30):
        _feasible_on(feasible_actions, inst)


def _cost_cases() -> list[tuple[int, int, float, float, float]]:
    rng = instance_rng(SEED + 1)
    cases = [(0, 2, 4.0, 1.0, 1.0), (3, 0, 4.0, 1.0, 1.0), (2, 3, 2.5, 0.5, 0.25)]
    cases += [(4, 0, 3.5, 2.0, 1.5), (0, 5, 1.0, 0.0, 2.0), (5, 1, 0.0, 1.0, 1.0)]
    while len(cases) < 60:
        s, a = int(rng.integers(0, 9)), int(rng.choice([0, int(rng.integers(1, 13))]))
        setup, unit, hold = (float(x) for x in rng.choice([0, 0.5, 1, 2, 3.25, 4, 7], size=3))
        cases.append((s, a, setup, unit, hold))
    return cases


def check_cost(cost: Callable[..., object]) -> None:
    """r(s, a) for random states, quantities and costs, with and without production."""
    _cost_on(cost, _cost_cases())


INDEX_HINT = {IndexError: "is the next state s + a - d? For a feasible a it lies in 0..capacity"}
MODEL_INDEX_HINT = {
    IndexError: "are only feasible actions used, and is the next state s + a - d, which lies "
    "in 0..capacity for a feasible action?"
}


def check_transition_probabilities(transition_probabilities: Callable[..., object]) -> None:
    """P(. | s, a) for every feasible pair of fixed and random warehouses; demand_pmf stays
    as it was."""
    for inst in instances(SEED + 2, 20):
        held = None
        for s in range(inst.n_states):
            for a in sorted(inst.actions(s)):
                try:
                    _row_on(transition_probabilities, inst, s, a)
                except HiddenCheckFailure as failure:
                    if AMBIGUOUS not in str(failure):
                        raise
                    held = held or failure
        if held:
            raise held


def _helper_fault(
    inst: Warehouse, helpers: Mapping[str, Callable[..., object] | None]
) -> str | None:
    """What is wrong with one of the student's functions that build_model relies on, on
    ``inst`` (a failure of theirs, in their own words), or None if they are right there."""
    checks: list[tuple[str, Callable[[Callable[..., object]], None]]] = [
        ("feasible_actions", lambda f: _feasible_on(f, inst)),
        (
            "transition_probabilities",
            lambda f: [
                _row_on(f, inst, s, a)
                for s in range(inst.n_states)
                for a in sorted(inst.actions(s))
            ],
        ),
        (
            "cost",
            lambda f: _cost_on(
                f,
                [
                    (s, a, inst.setup_cost, inst.unit_cost, inst.holding_cost)
                    for s in range(inst.n_states)
                    for a in sorted(inst.actions(s))
                ],
            ),
        ),
    ]
    for name, check in checks:
        function = helpers.get(name)
        if function is None:
            continue
        try:
            check(function)
        except HiddenCheckFailure as failure:
            return (
                f"build_model relies on your {name}, which is wrong here: {failure}. "
                f"Fix {name} first"
            )
    return None


def check_build_model(
    build_model: Callable[..., object],
    *,
    feasible_actions: Callable[..., object] | None = None,
    cost: Callable[..., object] | None = None,
    transition_probabilities: Callable[..., object] | None = None,
) -> None:
    """(R, P) of fixed and random warehouses: shapes, feasibility, costs, rows; demand_pmf
    stays as it was. The functions build_model uses, when given, are tried once build_model
    is found wrong, so that a fault of theirs is named as theirs."""
    helpers = {
        "feasible_actions": feasible_actions,
        "cost": cost,
        "transition_probabilities": transition_probabilities,
    }
    for inst in instances(SEED + 3, 14):
        what = f"build_model({inst.capacity}, {inst.costs_text()}, {inst.pmf_text()})"
        try:
            _model_on(build_model, inst, what)
        except HiddenCheckFailure as failure:
            fault = _helper_fault(inst, helpers)
            if fault:
                raise HiddenCheckFailure(f"{what}: {fault}") from failure
            raise


def _model_on(build_model: Callable[..., object], inst: Warehouse, what: str) -> None:
    got = _call(
        build_model,
        inst.capacity,
        inst.setup_cost,
        inst.unit_cost,
        inst.holding_cost,
        inst.pmf,
        what=what,
        hints=MODEL_INDEX_HINT,
        watch={4: "demand_pmf"},
        name="build_model",
    )
    _returned(got, what)
    if isinstance(got, Mapping | str) or not isinstance(got, Iterable):
        raise HiddenCheckFailure(f"{what}: return the pair (R, P)")
    parts = list(got)
    if len(parts) != 2:
        raise HiddenCheckFailure(f"{what}: return the pair (R, P), got {len(parts)} items")
    R, P = _float_array(parts[0], what, "R"), _float_array(parts[1], what, "P")
    S, A = inst.n_states, inst.n_actions
    if R.shape != (S, A):
        if R.shape == (S, S + 1) and inst.d_min != 1:
            raise HiddenCheckFailure(
                f"{what}: R has capacity + 2 action columns, as if the smallest demand were 1 "
                "(the course's); the columns run over a = 0, ..., capacity + smallest demand"
            )
        raise HiddenCheckFailure(
            f"{what}: R should have shape (capacity + 1, capacity + smallest demand + 1), "
            f"got {R.shape}"
        )
    if P.shape != (S, A, S):
        raise HiddenCheckFailure(
            f"{what}: P should have shape (S, A, S) with S = capacity + 1 states and A = "
            f"capacity + smallest demand + 1 action columns, got {P.shape}"
        )
    if np.isnan(R).any():
        raise HiddenCheckFailure(f"{what}: R holds nan; mark infeasible pairs with np.inf")
    if np.isneginf(R).any():
        raise HiddenCheckFailure(f"{what}: R holds -inf; infeasible pairs cost +np.inf")
    R_ref, P_ref = inst.arrays()
    for answer, reference, name in ((parts[0], R_ref, "R"), (parts[1], P_ref, "P")):
        note = precision_note(answer, reference)
        if note:
            raise HiddenCheckFailure(f"{what}: {name}: {note}")
    for s in range(S):
        problem = _action_set_problem(s, set(np.flatnonzero(np.isfinite(R[s])).tolist()), inst)
        if problem:
            raise HiddenCheckFailure(
                f"{what}: in state {s}, the actions with a finite cost R[s, a] are wrong: {problem}"
            )
    feasible = np.isfinite(R_ref)
    if not _close(R[feasible], R_ref[feasible]):
        states, actions = np.nonzero(feasible)
        problem = _cost_problem(
            R[feasible],
            states,
            actions,
            (inst.setup_cost, inst.unit_cost, inst.holding_cost),
            inst.mean_demand,
        )
        raise HiddenCheckFailure(f"{what}: the costs R[s, a] of feasible pairs: {problem}")
    if not np.all(np.isfinite(P)):
        raise HiddenCheckFailure(f"{what}: P holds nan or inf")
    held = None
    for s, a in zip(*np.nonzero(feasible), strict=True):
        problem = _row_problem(P[s, a], int(s), int(a), inst)
        if problem and not problem.startswith(AMBIGUOUS):
            raise HiddenCheckFailure(f"{what}: row P[{s}, {a}]: {problem}")
        held = held or (problem and f"{what}: row P[{s}, {a}]: {problem}")
    if held:
        raise HiddenCheckFailure(held)
    if np.any(P[~feasible] != 0):
        raise HiddenCheckFailure(f"{what}: P[s, a] must be all zeros where a is infeasible in s")


# ---------------------------------------------------------------------------- exact values
def check_evaluate_policy(evaluate_policy: Callable[..., object]) -> None:
    """V_pi of random feasible policies on fixed and random warehouses (beta = 0 included),
    passing the policy as a list, a tuple or an array."""
    rng = instance_rng(SEED + 4)
    for k, inst in enumerate(instances(SEED + 5, 24)):
        R, P = inst.arrays()
        policy = random_policy(inst, rng)
        container = (list, tuple, np.array)[k % 3]
        what = (
            f"evaluate_policy(R, P, beta={inst.discount:g}, policy={policy}) for the warehouse "
            f"with {inst.parameters_text()}"
        )
        arguments = (R, P, inst.discount, container(policy))
        expected = mdplab.evaluate(inst.mdp(), policy).values
        try:
            got = _call(
                evaluate_policy,
                R.copy(),
                P.copy(),
                *arguments[2:],
                what=what,
                hints={
                    np.linalg.LinAlgError: "a singular matrix: I - P_pi is singular for every "
                    "policy, so the discount beta must multiply P_pi"
                },
                watch={0: "R", 1: "P", 3: "policy"},
                name="evaluate_policy",
            )
            V = _vector(got, inst.n_states, what)
        except HiddenCheckFailure:
            policy_before_beta(evaluate_policy, arguments, expected, what, _close)
            raise
        if _close(V, expected):
            continue
        policy_before_beta(evaluate_policy, arguments, expected, what, _close)
        note = precision_note(got, expected)
        if note:
            raise HiddenCheckFailure(f"{what}: {note}")
        states = np.arange(inst.n_states)
        r_pi, P_pi = R[states, policy], P[states, policy]
        eye, beta = np.eye(inst.n_states), inst.discount
        if not np.all(np.isfinite(V)):
            raise HiddenCheckFailure(
                f"{what}: the values are not finite (inf or nan); only the policy's own pairs "
                "(s, policy[s]) may enter r_pi and P_pi, since an infeasible pair costs inf"
            )
        alternatives = [
            (-expected, "the values have the wrong sign; they are expected costs"),
            (
                np.linalg.solve(eye + beta * P_pi, r_pi),
                "a sign is wrong: V = r_pi + beta P_pi V, so solve (I - beta P_pi) V = r_pi",
            ),
            (
                np.linalg.solve(eye - beta * P_pi.T, r_pi),
                "P_pi is used transposed; row s of P_pi is the distribution of the next state "
                "from s, and V(s) needs the sum over s' of P_pi[s, s'] V(s')",
            ),
            (
                r_pi,
                "only the first period is counted; the discounted future beta P_pi V is missing",
            ),
            (
                None
                if beta == COURSE.discount
                else np.linalg.solve(eye - COURSE.discount * P_pi, r_pi),
                f"these are the values for beta = {COURSE.discount:g}, the course's discount; "
                "use the argument beta",
            ),
        ]
        mistake = known_mistake(V, expected, alternatives, _close)
        if mistake is None and _close(V, expected, rtol=1e-2, atol=1e-6):
            mistake = (
                "the values are close, but not accurate to the 1e-5 (relative) that the check "
                "asks; an iteration that stops too early? np.linalg.solve gives them exactly"
            )
        raise HiddenCheckFailure(
            f"{what}: {mistake or 'the values do not solve (I - beta P_pi) V = r_pi'}"
        )


# ---------------------------------------------------------------------------- simulation
def truncated_moments(
    r_pi: np.ndarray, P_pi: np.ndarray, beta: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and standard deviation, per start state, of sum_{t<T} beta^t r(s_t).

    With G_T = r(s_0) + beta G'_{T-1} (G' the cost of the run from s_1):
    E G_T = r + beta P E G_{T-1} and E G_T^2 = r^2 + 2 beta r P E G_{T-1} + beta^2 P E G_{T-1}^2.
    """
    mean = np.zeros_like(r_pi)
    second = np.zeros_like(r_pi)
    for _ in range(horizon):
        next_mean, next_second = P_pi @ mean, P_pi @ second
        second = r_pi**2 + 2 * beta * r_pi * next_mean + beta**2 * next_second
        mean = r_pi + beta * next_mean
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0))


def _deterministic_path(inst: Warehouse, policy: list[int], start: int, length: int) -> list[int]:
    """States s_0, ..., s_{length-1} of a warehouse with a single demand value."""
    (demand,) = inst.pmf
    path = [start]
    while len(path) < length:
        path.append(path[-1] + policy[path[-1]] - demand)
    return path


def _deterministic_cases(seed: int) -> list[tuple[Warehouse, list[int], int, int]]:
    """(warehouse with one demand value, policy, start, horizon), beta = 0 included."""
    rng = instance_rng(seed)
    cases = []
    horizons = [6, 9, 4, 12, 7, 3, 25, 1, 0, 5]
    for k, horizon in enumerate(horizons):
        inst = random_instance(rng, sizes=(1,))
        if k == len(horizons) - 1:
            inst = Warehouse(
                inst.capacity, inst.setup_cost, inst.unit_cost, inst.holding_cost, inst.demand, 0.0
            )
        elif inst.discount == 0.0:
            inst = Warehouse(
                inst.capacity, inst.setup_cost, inst.unit_cost, inst.holding_cost, inst.demand, 0.7
            )
        policy = random_policy(inst, rng)
        cases.append((inst, policy, int(rng.integers(0, inst.n_states)), horizon))
    return cases


def _stochastic_cases(seed: int, count: int) -> list[tuple[Warehouse, list[int], int, int]]:
    """(warehouse with 2-3 demand values and beta >= 0.5, policy, start, horizon)."""
    rng = instance_rng(seed)
    cases = []
    while len(cases) < count:
        inst = random_instance(rng, sizes=(2, 3))
        if inst.discount < 0.5:
            continue
        R, P = inst.arrays()
        policy = random_policy(inst, rng)
        start = int(rng.integers(0, inst.n_states))
        horizon = int(rng.integers(15, 31))
        states = np.arange(inst.n_states)
        _, sd = truncated_moments(R[states, policy], P[states, policy], inst.discount, horizon)
        if sd[start] > 0.05:  # a run whose cost really varies
            cases.append((inst, policy, start, horizon))
    return cases


def _simulation_what(
    name: str, inst: Warehouse, policy: list[int], start: int, horizon: int, extra: str = ""
) -> str:
    return (
        f"{name}(R, P, beta={inst.discount:g}, policy={policy}, start={start}, horizon={horizon}"
        f"{extra}, rng) for the warehouse with {inst.parameters_text()}"
    )


def check_simulate_run(simulate_run: Callable[..., object]) -> None:
    """Exact costs on warehouses whose demand has one value (so runs are deterministic),
    reproducibility with seeded generators, and the average of many runs elsewhere."""
    for inst, policy, start, horizon in _deterministic_cases(SEED + 6):
        R, P = inst.arrays()
        what = _simulation_what("simulate_run", inst, policy, start, horizon)
        path = _deterministic_path(inst, policy, start, horizon + 2)
        costs = np.array([R[s, policy[s]] for s in path])
        beta = inst.discount
        weights = beta ** np.arange(horizon + 2, dtype=float)
        expected = float(weights[:horizon] @ costs[:horizon])
        arguments = (R, P, beta, list(policy), start, horizon, instance_rng(SEED))
        try:
            got = as_float(
                _call(
                    simulate_run,
                    R.copy(),
                    P.copy(),
                    *arguments[2:],
                    what=what,
                    watch={0: "R", 1: "P", 3: "policy"},
                    name="simulate_run",
                ),
                what=what,
            )
        except HiddenCheckFailure:
            policy_before_beta(
                simulate_run, (*arguments[:6], instance_rng(SEED)), expected, what, _close
            )
            raise
        if values_close(got, expected):
            continue
        policy_before_beta(
            simulate_run, (*arguments[:6], instance_rng(SEED)), expected, what, _close
        )
        alternatives = [
            (float(costs[:horizon].sum()), "the costs are added up without the discount beta**t"),
            (beta * expected, "every cost is discounted once too often; period 0 has weight 1"),
            (
                float(weights[: horizon + 1] @ costs[: horizon + 1]),
                "one period too many: a horizon of T covers periods 0, ..., T - 1",
            ),
            (
                float(weights[: max(horizon - 1, 0)] @ costs[: max(horizon - 1, 0)]),
                "one period too few: a horizon of T covers periods 0, ..., T - 1",
            ),
            (
                float(weights[:horizon] @ costs[1 : horizon + 1]),
                "each period is charged the cost of the state it moves to; period t costs "
                "r(s_t, pi(s_t)) for the state s_t it starts in",
            ),
            (
                float(weights[:horizon].sum() * costs[0]),
                "the state never changes: draw the next state from P[s, pi(s)] every period",
            ),
            (-expected, "the cost has the wrong sign"),
        ]
        mistake = (
            known_mistake(got, expected, alternatives, _close) or "the discounted cost is wrong"
        )
        raise HiddenCheckFailure(
            f"{what} (demand takes one value, so every run is the same): {mistake}"
        )
    cases = _stochastic_cases(SEED + 7, 3)
    _check_reproducible(
        lambda inst, policy, start, horizon, rng: simulate_run(
            *inst.arrays(), inst.discount, list(policy), start, horizon, rng
        ),
        "simulate_run",
        cases[0],
    )
    for k, (inst, policy, start, horizon) in enumerate(cases):
        R, P = inst.arrays()
        what = _simulation_what("simulate_run", inst, policy, start, horizon)
        rng = instance_rng(SEED + 100 + k)
        arguments = (R, P, inst.discount, policy, start, horizon, rng)
        # A first call alone, so that a result that is no number fails at once; then the
        # other RUNS - 1 in one request under `mdplab grade`, continuing rng's stream.
        watch = {0: "R", 1: "P", 3: "policy"}
        first = as_float(
            _call(simulate_run, *arguments, what=what, watch=watch, name="simulate_run"),
            what=what,
        )
        with np.errstate(all="ignore"):
            rest = call_repeatedly(simulate_run, RUNS - 1, *arguments, what=what)
        runs = np.array([first, *(as_float(value, what=what) for value in rest)])
        problem = _sample_problem(runs.mean(), runs.std(), runs.size, inst, policy, start, horizon)
        if problem:
            raise HiddenCheckFailure(f"{what}, called {RUNS} times with one generator: {problem}")


def _exact_truncated(
    inst: Warehouse, policy: list[int], start: int, horizon: int, beta: float | None = None
) -> tuple[float, float]:
    """Mean and sd of a run's cost (with the discount ``beta``, the warehouse's if None)."""
    R, P = inst.arrays()
    states = np.arange(inst.n_states)
    beta = inst.discount if beta is None else beta
    mean, sd = truncated_moments(R[states, policy], P[states, policy], beta, horizon)
    return float(mean[start]), float(sd[start])


def _sample_problem(
    mean: float,
    sample_sd: float,
    n: int,
    inst: Warehouse,
    policy: list[int],
    start: int,
    horizon: int,
) -> str | None:
    exact_mean, exact_sd = _exact_truncated(inst, policy, start, horizon)
    if not math.isfinite(mean):
        return "the simulated costs are not finite numbers"
    if sample_sd < 0.3 * exact_sd:
        return (
            "the runs barely differ from each other; the next state must be drawn at random "
            "from the row P[s, pi(s)] in every period"
        )
    if abs(mean - exact_mean) > Z_LIMIT * exact_sd / math.sqrt(n) + 1e-9 * (1 + abs(exact_mean)):
        return (
            "their average is much further from the expected discounted cost over the horizon "
            "than chance allows (more than six standard errors); check that the next state is "
            "drawn with the probabilities of the row P[s, pi(s)], e.g. "
            "rng.choice(len(row), p=row)"
        )
    return None


def _check_reproducible(
    run: Callable[..., object], name: str, case: tuple[Warehouse, list[int], int, int]
) -> None:
    inst, policy, start, horizon = case
    what = _simulation_what(name, inst, policy, start, horizon)
    for seed in range(4):
        first = _call(run, inst, policy, start, horizon, instance_rng(seed), what=what)
        again = _call(run, inst, policy, start, horizon, instance_rng(seed), what=what)
        if not _close(
            _float_array(first, what).ravel(),
            _float_array(again, what).ravel(),
            rtol=1e-12,
            atol=1e-12,
        ):
            raise HiddenCheckFailure(
                f"{what}: two calls with generators made from the same seed gave different "
                "results; draw every random number from the generator rng that is passed in "
                "(not from np.random or the random module)"
            )


def _pair(got: Any, what: str) -> tuple[float, float]:
    """(estimate, standard_error) from what policy_value_by_simulation returned."""
    _returned(got, what)
    if isinstance(got, Mapping | str) or not isinstance(got, Iterable):
        raise HiddenCheckFailure(f"{what}: return the pair (estimate, standard_error)")
    parts = list(got)
    if len(parts) != 2:
        raise HiddenCheckFailure(f"{what}: return the pair (estimate, standard_error)")
    return as_float(parts[0], what=what), as_float(parts[1], what=what)


ORDER = "the pair comes in the order (estimate, standard_error); yours is the other way round"
RUN_ARGUMENTS = {0: "R", 1: "P", 3: "policy"}


def _run_varies(simulate_run: Callable[..., object], arguments: tuple, what: str) -> bool:
    """Whether 20 calls of the student's simulate_run with one generator differ."""
    rng = instance_rng(SEED + 400)
    runs = [
        as_float(_call(simulate_run, *arguments, rng, what=what, name="simulate_run"), what=what)
        for _ in range(20)
    ]
    return float(np.ptp(runs)) > 0


def check_policy_value_by_simulation(
    policy_value_by_simulation: Callable[..., object],
    *,
    simulate_run: Callable[..., object] | None = None,
) -> None:
    """Deterministic warehouses (estimate exact, standard error 0), reproducibility, random
    ones (the estimate within six standard errors of the truncated value, the standard
    error within 25% of the exact sd / sqrt(n), so that np.std's default ddof=0 passes as
    well as ddof=1). ``simulate_run``, when given, is tried when the runs look wrong, so
    that a fault of its own is named as its own."""
    name = "policy_value_by_simulation"
    for inst, policy, start, horizon in _deterministic_cases(SEED + 8)[:4]:
        R, P = inst.arrays()
        what = _simulation_what(name, inst, policy, start, horizon, extra=", n_runs=5")
        got = _call(
            policy_value_by_simulation,
            R,
            P,
            inst.discount,
            list(policy),
            start,
            horizon,
            5,
            instance_rng(SEED),
            what=what,
            watch=RUN_ARGUMENTS,
            name=name,
        )
        estimate, standard_error = _pair(got, what)
        expected, _ = _exact_truncated(inst, policy, start, horizon)
        same = f"{what} (demand takes one value, so every run costs the same)"
        zero = 1e-9 * (1 + abs(expected))
        if values_close(estimate, expected) and abs(standard_error) <= zero:
            continue
        if (
            abs(expected) > zero
            and abs(estimate) <= zero
            and values_close(standard_error, expected)
        ):
            raise HiddenCheckFailure(f"{same}: {ORDER}")
        if inst.discount != COURSE.discount and values_close(
            estimate, _exact_truncated(inst, policy, start, horizon, COURSE.discount)[0]
        ):
            raise HiddenCheckFailure(
                f"{same}: the estimate is the runs' cost with beta = {COURSE.discount:g}, the "
                "course's discount: pass the argument beta on to simulate_run"
            )
        if not values_close(estimate, expected):
            if simulate_run is not None:
                run_what = _simulation_what("simulate_run", inst, policy, start, horizon)
                run = as_float(
                    _call(
                        simulate_run,
                        *inst.arrays(),
                        inst.discount,
                        list(policy),
                        start,
                        horizon,
                        instance_rng(SEED),
                        what=run_what,
                        name="simulate_run",
                    ),
                    what=run_what,
                )
                if values_close(run, estimate):
                    raise HiddenCheckFailure(
                        f"{same}: the estimate is what your simulate_run gives for one run "
                        f"({run:g}), and that run's cost is wrong: fix simulate_run first"
                    )
            raise HiddenCheckFailure(
                f"{same}: the estimate should be the average of the runs' discounted costs"
            )
        raise HiddenCheckFailure(f"{same}: identical runs have a standard error of 0")
    cases = _stochastic_cases(SEED + 9, 2)
    try:
        _check_reproducible(
            lambda inst, policy, start, horizon, rng: _pair(
                policy_value_by_simulation(
                    *inst.arrays(), inst.discount, list(policy), start, horizon, 10, rng
                ),
                name,
            ),
            name,
            cases[0],
        )
    except HiddenCheckFailure:
        if simulate_run is None:
            raise
        try:
            _check_reproducible(
                lambda inst, policy, start, horizon, rng: simulate_run(
                    *inst.arrays(), inst.discount, list(policy), start, horizon, rng
                ),
                "simulate_run",
                cases[0],
            )
        except HiddenCheckFailure as fault:
            raise HiddenCheckFailure(
                f"policy_value_by_simulation averages runs of your simulate_run, which is not "
                f"reproducible: {fault}. Fix simulate_run first"
            ) from fault
        raise
    for k, (inst, policy, start, horizon) in enumerate(cases):
        R, P = inst.arrays()
        what = _simulation_what(name, inst, policy, start, horizon, extra=f", n_runs={RUNS}")
        got = _call(
            policy_value_by_simulation,
            R,
            P,
            inst.discount,
            np.array(policy),
            start,
            horizon,
            RUNS,
            instance_rng(SEED + 200 + k),
            what=what,
            watch=RUN_ARGUMENTS,
            name=name,
        )
        estimate, standard_error = _pair(got, what)
        exact_mean, exact_sd = _exact_truncated(inst, policy, start, horizon)
        exact_se = exact_sd / math.sqrt(RUNS)
        slack = Z_LIMIT * exact_se + 1e-9 * (1 + abs(exact_mean))
        if abs(standard_error - exact_mean) <= slack and 0.75 <= estimate / exact_se <= 1.33:
            raise HiddenCheckFailure(f"{what}: {ORDER}")
        if not math.isfinite(standard_error) or standard_error < 0:
            raise HiddenCheckFailure(f"{what}: the standard error must be a number >= 0")
        ratio = standard_error / exact_se
        if not 0.75 <= ratio <= 1.33:
            if ratio < 0.01:
                message = _identical_runs(
                    simulate_run,
                    (
                        inst.arrays()[0],
                        inst.arrays()[1],
                        inst.discount,
                        list(policy),
                        start,
                        horizon,
                    ),
                    what,
                )
            elif 0.75 <= ratio / math.sqrt(RUNS) <= 1.33:
                message = (
                    "the standard error is the standard deviation of one run; the standard "
                    "error of the average divides it by sqrt(n_runs)"
                )
            elif 0.75 <= standard_error / (exact_sd**2 / RUNS) <= 1.33:
                message = "the standard error lacks its square root: sd / sqrt(n), not var / n"
            elif 0.75 <= ratio * math.sqrt(RUNS) <= 1.33:
                message = "the standard error divides by n_runs; divide by sqrt(n_runs)"
            else:
                message = (
                    "the standard error is wrong: the sample standard deviation of the runs' "
                    "costs divided by sqrt(n_runs)"
                )
            raise HiddenCheckFailure(f"{what}: {message}")
        if abs(estimate - exact_mean) > slack:
            raise HiddenCheckFailure(
                f"{what}: the estimate is much further from the expected discounted cost over "
                "the horizon than chance allows (more than six standard errors); it should be "
                "the average of n_runs runs of simulate_run"
            )


def _identical_runs(simulate_run: Callable[..., object] | None, arguments: tuple, what: str) -> str:
    """Why every run came out the same, when simulate_run is known: its own fault, or a
    generator that is not passed on."""
    if simulate_run is None:
        return (
            "the runs are identical (standard error 0): each run must draw its next states "
            "from the generator rng, passed on to every call of simulate_run"
        )
    if not _run_varies(simulate_run, arguments, what):
        return (
            "the runs are identical (standard error 0), and so are 20 runs of your "
            "simulate_run with one generator, though the next state is random: fix "
            "simulate_run first"
        )
    return (
        "the runs are identical (standard error 0), as if each run started from a fresh "
        "generator: pass the generator rng you were given to every call of simulate_run (a "
        "new generator made from one seed repeats the same run)"
    )
