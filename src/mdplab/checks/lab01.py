r"""Hidden checks of lab01_dp_review: deterministic dynamic programming on the warehouse.

The lab's finite-horizon warehouse has a known demand :math:`d_n` in every period
:math:`n = 0, \dots, N-1` (0-based, as in the student's code). With starting inventory
:math:`s` and production :math:`x`, a decision is feasible when :math:`x \ge 0`,
:math:`s + x \ge d_n` and :math:`s + x - d_n \le C`; the period costs
:math:`K [x > 0] + c x + h s` (holding on the *starting* inventory) and the next state is
:math:`s + x - d_n`. The values solve
:math:`f_n(s) = \min_x [\,\text{cost} + f_{n+1}(s + x - d_n)\,]` with terminal row
:math:`f_N`.

The reference values come from :func:`mdplab.backward_induction` on one deterministic
:class:`~mdplab.FiniteMDP` per period (``discount=1``). A small independent recursion,
:func:`variant_values`, recomputes the values under the usual mistakes (max for min, holding
on the ending inventory or after production, setup paid without production, terminal values
ignored, another period's demand). A failure names a mistake only when it explains the
student's answers on *every* instance tried, so a coincidence on one instance cannot
mislead. Messages name the instance (its inputs) and, where useful, the row and inventory
at fault; they never show an expected value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import mdplab
from mdplab.checks.common import HiddenCheckFailure, as_float, call_student, instance_rng
from mdplab.checks.numeric import VALUE_ATOL, VALUE_RTOL, describe_type, precision_note

SEED = 20260117
# The series' numeric policy (mdplab.checks.numeric): float32 tables and exact Fractions
# pass; costs on a grid of halves keep the modelled mistakes far apart.
RTOL = VALUE_RTOL
ATOL = VALUE_ATOL


# --------------------------------------------------------------------------- instances
@dataclass(frozen=True)
class Instance:
    """One finite-horizon deterministic warehouse."""

    demands: tuple[int, ...]
    capacity: int
    setup_cost: float
    unit_cost: float
    holding_cost: float
    terminal: tuple[float, ...] | None = None

    @property
    def horizon(self) -> int:
        return len(self.demands)

    @property
    def terminal_row(self) -> np.ndarray:
        if self.terminal is None:
            return np.zeros(self.capacity + 1)
        return np.asarray(self.terminal, dtype=float)

    def args(self) -> tuple[Any, ...]:
        """Positional arguments of ``backward_recursion`` (terminal only when given)."""
        base = (
            list(self.demands),
            self.capacity,
            self.setup_cost,
            self.unit_cost,
            self.holding_cost,
        )
        return base if self.terminal is None else (*base, list(self.terminal))

    def describe(self) -> str:
        text = (
            f"demands={list(self.demands)}, capacity={self.capacity}, "
            f"setup_cost={self.setup_cost:g}, unit_cost={self.unit_cost:g}, "
            f"holding_cost={self.holding_cost:g}"
        )
        if self.terminal is not None:
            text += f", terminal=[{', '.join(_g(v) for v in self.terminal)}]"
        return text

    def feasible(self, n: int, s: int) -> range:
        d = self.demands[n]
        return range(max(0, d - s), self.capacity + d - s + 1)

    def cost(self, s: int, x: int) -> float:
        setup = self.setup_cost if x > 0 else 0.0
        return setup + self.unit_cost * x + self.holding_cost * s


def random_instance(rng: np.random.Generator, *, terminal: bool | None = None) -> Instance:
    """Horizon 1-6, capacity 2-6, demands 0..capacity, costs on a grid of halves."""
    horizon = int(rng.integers(1, 7))
    capacity = int(rng.integers(2, 7))
    demands = tuple(int(v) for v in rng.integers(0, capacity + 1, size=horizon))
    with_terminal = bool(rng.random() < 0.5) if terminal is None else terminal
    terminal_row = None
    if with_terminal:
        if rng.random() < 0.5:  # a salvage value per unit left over
            salvage = float(rng.integers(1, 7)) / 2
            terminal_row = tuple(-salvage * s for s in range(capacity + 1))
        else:
            terminal_row = tuple(float(v) / 2 for v in rng.integers(-8, 13, size=capacity + 1))
    return Instance(
        demands=demands,
        capacity=capacity,
        setup_cost=float(rng.integers(0, 21)) / 2,
        unit_cost=float(rng.integers(0, 9)) / 2,
        holding_cost=float(rng.integers(1, 7)) / 2,
        terminal=terminal_row,
    )


# --------------------------------------------------------------------------- references
def stage_models(instance: Instance) -> list[mdplab.FiniteMDP]:
    """One deterministic model per period: state s, action x, cost, {s + x - d_n: 1}."""
    models = []
    for n, demand in enumerate(instance.demands):
        pairs = [
            (s, x, instance.cost(s, x), {s + x - demand: 1.0})
            for s in range(instance.capacity + 1)
            for x in instance.feasible(n, s)
        ]
        # The models' own discount is never used: backward_induction gets discount=1.
        models.append(
            mdplab.FiniteMDP.from_pairs(pairs, 0.5, state_labels=range(instance.capacity + 1))
        )
    return models


def reference_values(instance: Instance) -> np.ndarray:
    """f[n, s] for n = 0..N (row N = terminal values), from mdplab.backward_induction."""
    solution = mdplab.backward_induction(
        stage_models(instance),
        terminal=instance.terminal_row,
        discount=1.0,
        backend="numpy",
    )
    return np.asarray(solution.values, dtype=float)


@dataclass(frozen=True)
class Rules:
    """How a (possibly mistaken) recursion computes its values."""

    maximise: bool = False
    holding_on: str = "start"  # "start": s; "end": s + x - d; "after": s + x; "none"
    setup: str = "produced"  # "produced": only when x > 0; "always"; "never"
    swap_sx: bool = False  # the cost as stage_cost(x, s, ...) would compute it
    use_terminal: bool = True
    demand_shift: int = 0  # row n uses demands[(n + shift) mod N]


CORRECT = Rules()
# Tried in this order when a wrong table is diagnosed; the first that explains it wins.
MISTAKES: dict[str, Rules] = {
    "no_terminal": Rules(use_terminal=False),
    "max": Rules(maximise=True),
    "holding_end": Rules(holding_on="end"),
    "holding_after": Rules(holding_on="after"),
    "setup_always": Rules(setup="always"),
    "previous_demand": Rules(demand_shift=-1),
    "next_demand": Rules(demand_shift=1),
    "swapped": Rules(swap_sx=True),
    "no_holding": Rules(holding_on="none"),
    "no_setup": Rules(setup="never"),
}
ADVICE = {
    "no_terminal": "the terminal values are not added after the last period: the last row "
    "of f must enter the recursion like every other row f[k + 1]",
    "max": "it takes the largest cost over the decisions (max) where the warehouse wants "
    "the smallest (min)",
    "holding_end": "it charges holding on the ending inventory s + x - d; this lab charges "
    "holding on the starting inventory s",
    "holding_after": "it charges holding on the stock after production, s + x; this lab "
    "charges holding on the starting inventory s",
    "setup_always": "it charges the setup cost also in periods that produce nothing (x = 0)",
    "previous_demand": "row k seems to use demands[k - 1]: check the index of demands in "
    "your loop over stages",
    "next_demand": "row k seems to use demands[k + 1]: check the index of demands in your "
    "loop over stages",
    "swapped": "the costs are those of stage_cost(x, s, ...), with production and inventory "
    "swapped: the order of the arguments is stage_cost(s, x, setup_cost, unit_cost, "
    "holding_cost)",
    "no_holding": "the holding cost of the starting inventory (holding_cost * s) is missing",
    "no_setup": "the setup cost of a period that produces (x > 0) is missing",
}


def _stage_demand(instance: Instance, rules: Rules, n: int) -> int:
    return instance.demands[(n + rules.demand_shift) % instance.horizon]


def period_cost(instance: Instance, rules: Rules, s: int, x: int, demand: int) -> float:
    """The immediate cost of one period, as ``rules`` compute it."""
    if rules.swap_sx:
        s, x = x, s
    held = {"start": s, "end": s + x - demand, "after": s + x, "none": 0}[rules.holding_on]
    produces = {"produced": x > 0, "always": True, "never": False}[rules.setup]
    setup = instance.setup_cost if produces else 0.0
    return setup + instance.unit_cost * x + instance.holding_cost * held


def _q_value(instance: Instance, rules: Rules, values: np.ndarray, n: int, s: int, x: int):
    demand = _stage_demand(instance, rules, n)
    return period_cost(instance, rules, s, x, demand) + values[n + 1, s + x - demand]


def variant_values(instance: Instance, rules: Rules = CORRECT) -> np.ndarray:
    """The table f computed with ``rules``: plain loops, independent of mdplab."""
    n_states = instance.capacity + 1
    values = np.empty((instance.horizon + 1, n_states))
    values[-1] = instance.terminal_row if rules.use_terminal else 0.0
    pick = max if rules.maximise else min
    for n in range(instance.horizon - 1, -1, -1):
        demand = _stage_demand(instance, rules, n)
        for s in range(n_states):
            options = range(max(0, demand - s), instance.capacity + demand - s + 1)
            values[n, s] = pick(_q_value(instance, rules, values, n, s, x) for x in options)
    return values


def plan_total(
    instance: Instance,
    plan: Sequence[int],
    start: int,
    rules: Rules = CORRECT,
    *,
    periods: int | None = None,
    capacity: int | None = None,
) -> float:
    """Cost of following ``plan`` from ``start``; inf when some period breaks a rule.

    Two mistakes of the student's loop are modelled too: only the first ``periods``
    periods are followed (an off-by-one), or the overflow is checked against ``capacity``
    instead of the instance's. NaN where such a loop would index past the terminal row."""
    s, total = start, 0.0
    limit = instance.capacity if capacity is None else capacity
    for n, x in enumerate(plan if periods is None else plan[:periods]):
        demand = instance.demands[n]
        end = s + x - demand
        if x < 0 or end < 0 or end > limit:
            return math.inf
        total += period_cost(instance, rules, s, x, demand)
        s = end
    if rules.use_terminal:
        if s > instance.capacity:
            return math.nan
        total += float(instance.terminal_row[s])
    return total


def brute_force_value(instance: Instance, start: int) -> float:
    """min over every production plan of its cost from ``start`` (short horizons only)."""
    top = instance.capacity + max(instance.demands, default=0)
    best = math.inf
    for plan in itertools.product(range(top + 1), repeat=instance.horizon):
        best = min(best, plan_total(instance, plan, start))
    return best


# --------------------------------------------------------------------------- helpers
def _g(value: float) -> str:
    return f"{value + 0.0:g}"  # + 0.0 turns -0.0 into 0.0


def _close(a: Any, b: Any) -> bool:
    return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _whole_number(value: Any, *, what: str) -> int:
    if isinstance(value, bool):
        raise HiddenCheckFailure(f"{what}: expected a whole number, got {value!r}")
    number = as_float(value, what=what)
    if not math.isfinite(number) or not number.is_integer():
        raise HiddenCheckFailure(f"{what}: expected a whole number, got {value!r}")
    return int(number)


def _sequence(value: Any, *, what: str, name: str) -> list[Any]:
    """A list from a list, tuple, range, numpy array or {index: item} dict."""
    if isinstance(value, Mapping):
        try:
            return [value[k] for k in range(len(value))]
        except KeyError as error:
            raise HiddenCheckFailure(
                f"{what}: {name} is a dict, so its keys should be 0, 1, 2, ..."
            ) from error
    if isinstance(value, Iterator | set | frozenset):
        raise HiddenCheckFailure(
            f"{what}: {name} is {describe_type(value)}, which can be read only once and "
            "has no length: return a list (or an array)"
        )
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise HiddenCheckFailure(
            f"{what}: {name} should be a list or an array, got {describe_type(value)}"
        )
    try:
        return list(value.tolist()) if isinstance(value, np.ndarray) else list(value)
    except TypeError as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be a list or an array, got {type(value).__name__}"
        ) from error


def _table(value: Any, rows: int, cols: int, *, what: str, name: str) -> np.ndarray:
    """A (rows, cols) array from a nested list, an array or a dict of rows."""
    row_list = _sequence(value, what=what, name=name) if not isinstance(value, np.ndarray) else None
    if row_list is None:
        array = value
    else:
        if len(row_list) != rows:
            raise HiddenCheckFailure(_shape_message(what, name, rows, cols, len(row_list)))
        array = []
        for n, row in enumerate(row_list):
            array.append(_sequence(row, what=what, name=f"row {n} of {name}"))
    try:
        table = np.asarray(array, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be a table of numbers with {rows} rows and {cols} columns"
        ) from error
    if table.shape != (rows, cols):
        got_rows = table.shape[0] if table.ndim >= 1 else 0
        raise HiddenCheckFailure(_shape_message(what, name, rows, cols, got_rows, table.shape))
    return table


def _shape_message(what, name, rows, cols, got_rows, shape=None) -> str:
    if name == "f":
        want = "horizon + 1 rows (one per period, then the terminal row)"
    else:
        want = "one row per period (horizon rows)"
    got = f"shape {tuple(shape)}" if shape is not None else f"{got_rows} rows"
    return (
        f"{what}: {name} should have {want} and capacity + 1 columns "
        f"(inventories 0..capacity), i.e. shape ({rows}, {cols}); got {got}"
    )


def _two_tables(result: Any, *, what: str, horizon: int) -> tuple[Any, Any]:
    if isinstance(result, Mapping) or not isinstance(result, Sequence) or len(result) != 2:
        raise HiddenCheckFailure(
            f"{what}: backward_recursion should return two tables, (f, decisions)"
        )
    f, decisions = result[0], result[1]
    with suppress(TypeError):
        if len(f) == horizon and len(decisions) == horizon + 1:
            raise HiddenCheckFailure(
                f"{what}: the first table has {horizon} rows and the second {horizon + 1}: "
                "the tables seem to come in the order (decisions, f); return them in the "
                "order (f, decisions)"
            )
    return f, decisions


def _instances(seed: int, count: int) -> list[Instance]:
    rng = instance_rng(seed)
    cases = [
        Instance((2, 1, 2, 1, 2), 3, 4.0, 1.0, 1.0),  # the course's costs, other demands
        Instance((3, 0, 2), 4, 6.0, 0.5, 2.0, (0.0, -1.5, -3.0, -4.5, -6.0)),
        Instance((2,), 2, 0.0, 1.5, 1.0, (5.0, 0.0, 3.0)),
    ]
    cases += [random_instance(rng, terminal=i % 2 == 0) for i in range(count)]
    return cases


# --------------------------------------------------------------------------- checks
def check_feasible_decisions(feasible_decisions: Callable[..., object]) -> None:
    """Every (inventory, demand, capacity) with capacity 0..7 and demand 0..capacity."""
    for capacity in range(8):
        for demand in range(capacity + 1):
            for s in range(capacity + 1):
                what = f"feasible_decisions(s={s}, demand={demand}, capacity={capacity})"
                got = call_student(feasible_decisions, s, demand, capacity, what=what)
                items = _sequence(got, what=what, name="the result")
                decisions = [_whole_number(x, what=what) for x in items]
                _diagnose_feasible(decisions, s, demand, capacity, what)


def _diagnose_feasible(decisions: list[int], s: int, demand: int, capacity: int, what: str):
    expected = list(range(max(0, demand - s), capacity + demand - s + 1))
    if decisions == expected:
        return
    if len(set(decisions)) != len(decisions):
        raise HiddenCheckFailure(f"{what}: a decision appears more than once")
    if any(x < 0 for x in decisions):
        raise HiddenCheckFailure(f"{what}: a production quantity cannot be negative")
    if any(s + x < demand for x in decisions):
        raise HiddenCheckFailure(
            f"{what}: it allows a decision that leaves demand unmet (s + x < demand)"
        )
    if any(s + x - demand > capacity for x in decisions):
        raise HiddenCheckFailure(
            f"{what}: it allows a decision whose ending inventory s + x - demand exceeds "
            "the capacity"
        )
    if sorted(decisions) == expected:
        raise HiddenCheckFailure(f"{what}: list the decisions in increasing order")
    if decisions == list(range(max(0, demand - s), capacity - s + 1)):
        raise HiddenCheckFailure(
            f"{what}: the capacity limits the ending inventory s + x - demand (after demand is "
            "met), not s + x"
        )
    if decisions == expected[:-1]:
        raise HiddenCheckFailure(
            f"{what}: the largest feasible decision, which ends the period exactly at "
            "capacity, is missing (range(a, b) stops before b)"
        )
    if decisions == expected[1:]:
        raise HiddenCheckFailure(
            f"{what}: the smallest feasible decision, which just meets demand, is missing"
        )
    raise HiddenCheckFailure(f"{what}: some feasible decisions are missing")


def _first_consistent(hypotheses: Mapping[str, Callable[[], bool]]) -> str | None:
    """The first hypothesis (in priority order) that explains every case seen."""
    for name, holds in hypotheses.items():
        if holds():
            return name
    return None


COST_FORMULAS: dict[str, Callable[[int, int, float, float, float], float]] = {
    "correct": lambda s, x, k, c, h: k * (x > 0) + c * x + h * s,
    "setup_always": lambda s, x, k, c, h: k + c * x + h * s,
    "no_setup": lambda s, x, k, c, h: c * x + h * s,
    "holding_after": lambda s, x, k, c, h: k * (x > 0) + c * x + h * (s + x),
    "no_holding": lambda s, x, k, c, h: k * (x > 0) + c * x,
    "unit_once": lambda s, x, k, c, h: k * (x > 0) + c * (x > 0) + h * s,
    "swapped": lambda s, x, k, c, h: k * (s > 0) + c * s + h * x,
    "course_costs": lambda s, x, k, c, h: 4 * (x > 0) + x + s,
    "whole": lambda s, x, k, c, h: int(k * (x > 0) + c * x + h * s),
}
COST_ADVICE = {
    "setup_always": "the setup cost is paid only in a period that produces (x > 0)",
    "no_setup": "the setup cost is missing",
    "holding_after": "holding is charged on the starting inventory s, before production",
    "no_holding": "the holding cost of the starting inventory s is missing",
    "unit_once": "the unit cost is paid once per unit produced",
    "swapped": "the cost is that of stage_cost(x, s, ...): the starting inventory s and the "
    "production x are swapped",
    "course_costs": "the cost does not follow the costs passed in: it uses the course's setup "
    "4, unit 1 and holding 1 (SETUP_COST, UNIT_COST, HOLDING_COST) instead of the arguments "
    "setup_cost, unit_cost and holding_cost",
    "whole": "the cost is cut to a whole number (int(...) or //); costs such as 2.5 must keep "
    "their fraction",
}
NEXT_FORMULAS: dict[str, Callable[[int, int, int], int]] = {
    "no_demand": lambda s, x, d: s + x,
    "signs": lambda s, x, d: s - x + d,
}
NEXT_ADVICE = {
    "no_demand": "the demand of the period is not subtracted",
    "signs": "production adds to the inventory and demand takes away from it",
}


def _explains(formula: Callable[..., float], cases: list) -> Callable[[], bool]:
    return lambda: all(_close(case[2], formula(*case[0])) for case in cases)


def _cost_problem(cases: list) -> str | None:
    """The message for wrong period costs among ``cases`` (arguments, what, the student's
    cost as a float, as returned), or None when every cost is right."""
    correct = COST_FORMULAS["correct"]
    wrong = [case for case in cases if not _close(case[2], correct(*case[0]))]
    if not wrong:
        return None
    name = _first_consistent({n: _explains(COST_FORMULAS[n], cases) for n in COST_ADVICE})
    args, what, _, raw = wrong[0]
    if name is not None:
        return f"{what}: {COST_ADVICE[name]}"
    note = precision_note(raw, correct(*args))
    return f"{what}: {note or 'the cost of the period is wrong'}"


def _next_problem(cases: list) -> str | None:
    wrong = [case for case in cases if case[2] != case[0][0] + case[0][1] - case[0][2]]
    if not wrong:
        return None
    name = _first_consistent({n: _explains(NEXT_FORMULAS[n], cases) for n in NEXT_ADVICE})
    return f"{wrong[0][1]}: {NEXT_ADVICE[name] if name else 'the next state is s + x - demand'}"


def check_one_period(stage_cost: Callable[..., object], next_state: Callable[..., object]) -> None:
    """Random costs (multiples of 1/4) and every feasible (s, x) of a few warehouses."""
    rng = instance_rng(SEED + 1)
    cost_cases, next_cases = [], []  # (arguments, what, student's answer[, as returned])
    for _ in range(30):
        capacity = int(rng.integers(1, 8))
        demand = int(rng.integers(0, capacity + 1))
        setup, unit, holding = (float(v) / 4 for v in rng.integers(1, 41, size=3))
        for s in range(capacity + 1):
            for x in range(max(0, demand - s), capacity + demand - s + 1):
                what = (
                    f"stage_cost(s={s}, x={x}, setup_cost={setup:g}, unit_cost={unit:g}, "
                    f"holding_cost={holding:g})"
                )
                got = call_student(stage_cost, s, x, setup, unit, holding, what=what)
                args = (s, x, setup, unit, holding)
                cost_cases.append((args, what, as_float(got, what=what), got))
                what = f"next_state(s={s}, x={x}, demand={demand})"
                got = call_student(next_state, s, x, demand, what=what)
                next_cases.append(((s, x, demand), what, _whole_number(got, what=what)))
    message = _cost_problem(cost_cases) or _next_problem(next_cases)
    if message:
        raise HiddenCheckFailure(message)


# A small warehouse, with costs unlike the course's, on which plan_cost, backward_recursion
# and optimal_plan try the student's one-period functions once their own answer is wrong.
HELPER_CAPACITY, HELPER_DEMANDS, HELPER_COSTS = 4, (3, 1), (6.0, 0.5, 2.0)


def _helper_problem(
    user: str,
    *,
    feasible_decisions: Callable[..., object] | None = None,
    stage_cost: Callable[..., object] | None = None,
    next_state: Callable[..., object] | None = None,
) -> str | None:
    """Why the student's ``user`` (plan_cost, ...) is wrong when the fault lies in the
    one-period functions it builds on: the message naming the first of them (given) that
    is wrong on a small warehouse, or None."""

    def blame(function: str, exercise: int, problem: str) -> str:
        return (
            f"your {function} (Exercise {exercise}) is wrong, and {user} builds on it: "
            f"fix {function} first. {problem}"
        )

    capacity = HELPER_CAPACITY
    pairs = [
        (s, x, d)
        for d in HELPER_DEMANDS
        for s in range(capacity + 1)
        for x in range(max(0, d - s), capacity + d - s + 1)
    ]
    try:
        if feasible_decisions is not None:
            for d in HELPER_DEMANDS:
                for s in range(capacity + 1):
                    what = f"feasible_decisions(s={s}, demand={d}, capacity={capacity})"
                    got = call_student(feasible_decisions, s, d, capacity, what=what)
                    items = _sequence(got, what=what, name="the result")
                    decisions = [_whole_number(x, what=what) for x in items]
                    _diagnose_feasible(decisions, s, d, capacity, what)
        if stage_cost is not None:
            cases = []
            for s, x, _ in pairs:
                what = (
                    f"stage_cost(s={s}, x={x}, setup_cost={HELPER_COSTS[0]:g}, "
                    f"unit_cost={HELPER_COSTS[1]:g}, holding_cost={HELPER_COSTS[2]:g})"
                )
                got = call_student(stage_cost, s, x, *HELPER_COSTS, what=what)
                cases.append(((s, x, *HELPER_COSTS), what, as_float(got, what=what), got))
            problem = _cost_problem(cases)
            if problem:
                return blame("stage_cost", 2, problem)
        if next_state is not None:
            cases = []
            for s, x, d in pairs:
                what = f"next_state(s={s}, x={x}, demand={d})"
                got = call_student(next_state, s, x, d, what=what)
                cases.append(((s, x, d), what, _whole_number(got, what=what)))
            problem = _next_problem(cases)
            if problem:
                return blame("next_state", 2, problem)
    except HiddenCheckFailure as failure:
        function = str(failure).split("(", 1)[0]
        return blame(function, 1 if function == "feasible_decisions" else 2, str(failure))
    return None


def _unchanged(before: Any, after: Any) -> bool:
    """Whether an argument still holds what the check passed (same numbers, same shape)."""
    try:
        kept, now = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    except (TypeError, ValueError):
        return False
    return kept.shape == now.shape and bool(np.array_equal(kept, now))


def _check_arguments_kept(what: str, function: str, passed: dict[str, Any], kept: dict) -> None:
    """Fail when the student's ``function`` changed one of the arguments ``passed`` (name:
    the object it was given) away from ``kept`` (name: a copy taken before the call)."""
    for name, value in passed.items():
        if not _unchanged(kept[name], value):
            shown = value.tolist() if isinstance(value, np.ndarray) else value
            raise HiddenCheckFailure(
                f"{what}: {function} changed its argument {name} in place (afterwards it "
                f"held {shown!r}); the caller's {name} must stay as it was: work on a copy"
            )


PLAN_MISTAKES = ("no_terminal", "holding_end", "holding_after", "setup_always", "swapped")


def check_plan_cost(
    plan_cost: Callable[..., object],
    *,
    feasible_decisions: Callable[..., object] | None = None,
    stage_cost: Callable[..., object] | None = None,
    next_state: Callable[..., object] | None = None,
) -> None:
    """Feasible and infeasible plans on random instances, with and without terminal values.
    The one-period functions, when given, are tried once plan_cost is found wrong, so that
    a fault of theirs is named as theirs."""
    rng = instance_rng(SEED + 2)
    cases = []  # (instance, plan, start, what, student's cost or None, failure or None)
    for index, instance in enumerate(_instances(SEED + 3, 40)):
        start = int(rng.integers(0, instance.capacity + 1))
        plan = _random_plan(rng, instance, start, feasible=index % 4 != 3)
        container = (list, tuple, np.asarray)[index % 3]
        what = f"plan_cost(plan={plan}, start={start}, {instance.describe()})"
        args = (container(plan), start, *instance.args())
        passed = {"plan": args[0], "demands": args[2]}
        if instance.terminal is not None:
            passed["terminal"] = args[-1]
        kept = {name: list(value) for name, value in passed.items()}
        try:
            got = call_student(plan_cost, *args, what=what)
        except HiddenCheckFailure as failure:
            cases.append((instance, plan, start, what, None, failure))
            continue
        _check_arguments_kept(what, "plan_cost", passed, kept)
        if got is None:
            broken = math.isinf(plan_total(instance, plan, start))
            raise HiddenCheckFailure(
                f"{what}: plan_cost returned None"
                + (
                    "; a plan that breaks a rule costs np.inf (return np.inf, not None)"
                    if broken
                    else "; return the total cost of the plan"
                )
            )
        cases.append((instance, plan, start, what, as_float(got, what=what), None))

    def same(got: float | None, expected: float) -> bool:
        if got is None:
            return True  # a call that raised: no evidence either way
        if math.isinf(expected) or math.isinf(got):
            return got == expected
        return _close(got, expected)

    def explains(**model: Any) -> Callable[[], bool]:
        return lambda: all(
            same(got, plan_total(instance, plan, start, **model))
            for instance, plan, start, _, got, _ in cases
        )

    wrong = [c for c in cases if c[5] is not None or not same(c[4], plan_total(*c[:3]))]
    if not wrong:
        return
    helper = _helper_problem(
        "plan_cost",
        feasible_decisions=feasible_decisions,
        stage_cost=stage_cost,
        next_state=next_state,
    )
    if helper:
        raise HiddenCheckFailure(f"{wrong[0][3]}: {helper}")
    structural = _first_consistent(
        {
            "skips_last": lambda: (
                any(c[0].horizon > 1 and c[5] is None for c in wrong) and explains(periods=-1)()
            ),
            "course_capacity": lambda: (
                any(c[0].capacity != 3 and c[5] is None for c in wrong) and explains(capacity=3)()
            ),
        }
    )
    if structural == "skips_last":
        raise HiddenCheckFailure(
            f"{wrong[0][3]}: the last period is never counted (neither checked nor paid): "
            "the loop must run over every period of the plan, range(len(plan))"
        )
    if structural == "course_capacity":
        raise HiddenCheckFailure(
            f"{wrong[0][3]}: the overflow is checked against 3, the course's capacity, "
            "instead of the capacity argument"
        )
    failed = next((c for c in cases if c[5] is not None), None)
    if failed is not None:
        raise failed[5]
    for instance, plan, start, what, got, _ in cases:
        expected = plan_total(instance, plan, start)
        if math.isinf(expected) and not (math.isinf(got) and got > 0):
            raise HiddenCheckFailure(
                f"{what}: this plan leaves demand unmet or overfills the warehouse in some "
                "period, so its cost should be np.inf"
            )
        if math.isinf(got) and not math.isinf(expected):
            raise HiddenCheckFailure(
                f"{what}: this plan is feasible (every period meets its demand and ends with "
                "at most capacity units), but it was reported as infeasible (inf)"
            )
    feasible = [c for c in cases if not math.isinf(plan_total(*c[:3]))]
    name = _first_consistent(
        {n: explains(rules=MISTAKES[n]) for n in PLAN_MISTAKES}
        | {"whole": lambda: all(same(c[4], math.floor(plan_total(*c[:3]))) for c in feasible)}
    )
    if name == "no_terminal":
        advice = "the terminal value of the inventory left after the last period is missing"
    elif name == "whole":
        advice = "the total is cut to a whole number; costs such as 2.5 must keep their fraction"
    else:
        advice = ADVICE[name] if name else "the total cost of the plan is wrong"
    raise HiddenCheckFailure(f"{wrong[0][3]}: {advice}")


def _random_plan(rng, instance: Instance, start: int, *, feasible: bool) -> list[int]:
    plan, s = [], start
    for n in range(instance.horizon):
        options = instance.feasible(n, s)
        x = int(rng.choice(list(options)))
        plan.append(x)
        s = s + x - instance.demands[n]
    if not feasible:
        n = int(rng.integers(0, instance.horizon))
        s = start + sum(plan[:n]) - sum(instance.demands[:n])
        options = instance.feasible(n, s)
        too_little, too_much = options.start - 1, options.stop
        plan[n] = too_much if too_little < 0 or rng.random() < 0.5 else too_little
    return plan


def _call_backward(backward_recursion, instance: Instance, what: str) -> Any:
    """The student's result on ``instance``, after checking that the call left its demands
    and terminal arguments alone and took ``terminal=None`` as the default it is."""
    args = instance.args()
    passed = {"demands": args[0]}
    if instance.terminal is not None:
        passed["terminal"] = args[-1]
    kept = {name: list(value) for name, value in passed.items()}
    try:
        result = call_student(backward_recursion, *args, what=what)
    except HiddenCheckFailure as failure:
        cause = failure.__cause__
        if instance.terminal is None and cause is not None and "NoneType" in str(cause):
            raise HiddenCheckFailure(
                f"{failure}. No terminal values were given, so terminal is None: the last "
                "row f[N] is then all zeros (test `if terminal is None`)"
            ) from cause
        raise
    _check_arguments_kept(what, "backward_recursion", passed, kept)
    return result


def _backward_tables(backward_recursion, instances, *, which: str):
    """(instance, what, table, as returned) for every instance; ``which`` is "f" or
    "decisions"."""
    results = []
    for instance in instances:
        what = f"backward_recursion({instance.describe()})"
        result = _call_backward(backward_recursion, instance, what)
        f, decisions = _two_tables(result, what=what, horizon=instance.horizon)
        cols = instance.capacity + 1
        if which == "f":
            raw = f
            table = _table(f, instance.horizon + 1, cols, what=what, name="f")
            if np.any(np.isnan(table)):
                raise HiddenCheckFailure(f"{what}: f contains NaN")
        else:
            raw = decisions
            table = _table(decisions, instance.horizon, cols, what=what, name="decisions")
            if not (np.all(np.isfinite(table)) and np.all(table == np.round(table))):
                raise HiddenCheckFailure(f"{what}: decisions should hold whole numbers of units")
            table = table.astype(int)
        results.append((instance, what, table, raw))
    return results


def _applies(name: str, instance: Instance) -> bool:
    """Whether mistake ``name`` can show on ``instance`` at all."""
    if name in ("previous_demand", "next_demand"):
        return len(set(instance.demands)) > 1
    if name == "no_terminal":
        return instance.terminal is not None
    return True


def check_backward_values(
    backward_recursion: Callable[..., object], **helpers: Callable[..., object] | None
) -> None:
    """The value table f on random instances (horizons 1-6, capacities 2-6, random costs,
    demands and terminal values) and three fixed ones. ``helpers`` (feasible_decisions,
    stage_cost, next_state), when given, are tried once f is found wrong, so that a fault of
    theirs is named as theirs."""
    results = _backward_tables(backward_recursion, _instances(SEED + 4, 40), which="f")
    expected = {id(instance): reference_values(instance) for instance, *_ in results}
    for instance, what, table, _ in results:
        if not _close(table[-1], expected[id(instance)][-1]):
            if instance.terminal is not None and _close(table[-1], 0.0):
                raise HiddenCheckFailure(
                    f"{what}: the last row of f should hold the terminal values; they were "
                    "ignored (zeros)"
                )
            raise HiddenCheckFailure(
                f"{what}: the last row of f should hold the terminal values (zeros when "
                "terminal is None)"
            )
    wrong = [r for r in results if not _close(r[2], expected[id(r[0])])]
    if not wrong:
        return
    helper = _helper_problem("backward_recursion", **helpers)
    if helper:
        raise HiddenCheckFailure(f"{wrong[0][1]}: {helper}")

    def explains(name: str) -> Callable[[], bool]:
        def holds() -> bool:
            if not any(_applies(name, instance) for instance, *_ in wrong):
                return False
            for instance, _, table, _ in results:
                mistaken = variant_values(instance, MISTAKES[name])
                mistaken[-1] = expected[id(instance)][-1]  # the last row was found right
                if not _close(table, mistaken):
                    return False
            return True

        return holds

    hypotheses = {name: explains(name) for name in MISTAKES}
    hypotheses["first_row"] = lambda: all(
        _close(table[1:], expected[id(instance)][1:]) for instance, _, table, _ in results
    )
    hypotheses["course_costs"] = lambda: all(
        _close(table, reference_values(_with_course_costs(instance)))
        for instance, _, table, _ in results
    )
    name = _first_consistent(hypotheses)
    instance, what, table, raw = wrong[0]
    if name == "course_costs":
        raise HiddenCheckFailure(f"{what}: {COURSE_COSTS_ADVICE}")
    if name == "first_row":
        raise HiddenCheckFailure(
            f"{what}: only row 0 of f (the first period) is wrong: does the loop over "
            "stages stop before reaching row 0?"
        )
    if name is not None:
        raise HiddenCheckFailure(f"{what}: {ADVICE[name]}")
    right = expected[id(instance)]
    note = precision_note(raw, right)
    if note:
        raise HiddenCheckFailure(f"{what}: f is right to the precision of its numbers, but {note}")
    last_wrong = max(n for n in range(instance.horizon) if not _close(table[n], right[n]))
    where = f"going backwards, the first wrong row is f[{last_wrong}]"
    if np.any(np.isinf(table[last_wrong])):
        raise HiddenCheckFailure(
            f"{what}: f has infinite values ({where}); with demands at most the capacity, "
            "every inventory has a feasible decision"
        )
    if np.all(table[last_wrong] <= right[last_wrong] + ATOL):
        raise HiddenCheckFailure(
            f"{what}: some values are below the true minimum cost ({where}): are "
            "infeasible decisions allowed, or is a cost (setup, units, holding, the "
            "next period's f) missing?"
        )
    if np.all(table[last_wrong] >= right[last_wrong] - ATOL):
        raise HiddenCheckFailure(
            f"{what}: some values are above the minimum cost ({where}): is every feasible "
            "decision tried (up to an ending inventory equal to the capacity), and is each "
            "cost counted once?"
        )
    raise HiddenCheckFailure(f"{what}: the values are wrong ({where})")


def check_backward_decisions(
    backward_recursion: Callable[..., object], **helpers: Callable[..., object] | None
) -> None:
    """Every decision of the table is feasible and optimal (any optimal decision counts
    where several tie). ``helpers`` as for :func:`check_backward_values`."""
    results = _backward_tables(backward_recursion, _instances(SEED + 5, 40), which="decisions")
    failures = [(r, _decision_problems(r[2], r[0])) for r in results]
    failures = [(r, problems) for r, problems in failures if problems]
    if not failures:
        return
    helper = _helper_problem("backward_recursion", **helpers)
    if helper:
        raise HiddenCheckFailure(f"{failures[0][0][1]}: {helper}")

    def explains(rules: Rules, *, name: str = "") -> Callable[[], bool]:
        def holds() -> bool:
            if name and not any(_applies(name, r[0]) for r, _ in failures):
                return False
            return all(
                _optimal_everywhere(table, instance, rules) for instance, _, table, _ in results
            )

        return holds

    def positions() -> bool:
        return all(
            _optimal_everywhere(table + _lowest_decisions(instance), instance, CORRECT)
            for instance, _, table, _ in results
        )

    hypotheses = {"positions": positions}
    hypotheses |= {name: explains(rules, name=name) for name, rules in MISTAKES.items()}
    hypotheses["first_row"] = lambda: all(
        all(n == 0 for n, _ in _decision_problems(table, instance))
        for instance, _, table, _ in results
    )
    hypotheses["course_costs"] = lambda: all(
        _optimal_everywhere(table, _with_course_costs(instance), CORRECT)
        for instance, _, table, _ in results
    )
    name = _first_consistent(hypotheses)
    (_, what, _, _), problems = failures[0]
    if name in ("holding_end", "holding_after"):
        # Both shift every decision's cost by h * d_n: the decisions cannot tell them apart.
        raise HiddenCheckFailure(
            f"{what}: it charges holding on the stock after production (s + x, or s + x - d "
            "after demand); this lab charges holding on the starting inventory s"
        )
    if name == "course_costs":
        raise HiddenCheckFailure(f"{what}: {COURSE_COSTS_ADVICE}")
    if name == "positions":
        raise HiddenCheckFailure(
            f"{what}: the decisions look like positions in the list of feasible decisions "
            "(an argmin index), not numbers of units produced"
        )
    if name == "first_row":
        raise HiddenCheckFailure(
            f"{what}: only row 0 of decisions (the first period) is wrong: does the loop "
            f"over stages stop before reaching row 0? ({problems[0][1]})"
        )
    if name is not None:
        raise HiddenCheckFailure(f"{what}: {ADVICE[name]}")
    raise HiddenCheckFailure(
        f"{what}: going backwards, the first wrong decision: {problems[-1][1]}"
    )


COURSE_COSTS_ADVICE = (
    "the results match the course's costs (setup 4, unit 1, holding 1), not the costs "
    "passed as arguments: use setup_cost, unit_cost and holding_cost"
)


def _with_course_costs(instance: Instance) -> Instance:
    return replace(instance, setup_cost=4.0, unit_cost=1.0, holding_cost=1.0)


def _lowest_decisions(instance: Instance) -> np.ndarray:
    """The smallest feasible decision of every row and inventory."""
    return np.array(
        [[max(0, d - s) for s in range(instance.capacity + 1)] for d in instance.demands],
        dtype=int,
    ).reshape(instance.horizon, instance.capacity + 1)


def _optimal_everywhere(table: np.ndarray, instance: Instance, rules: Rules) -> bool:
    values = variant_values(instance, rules)
    for n in range(instance.horizon):
        demand = _stage_demand(instance, rules, n)
        for s in range(instance.capacity + 1):
            x = int(table[n, s])
            if x < 0 or s + x < demand or s + x - demand > instance.capacity:
                return False
            q = _q_value(instance, rules, values, n, s, x)
            if not math.isclose(q, values[n, s], rel_tol=RTOL, abs_tol=ATOL):
                return False
    return True


def _decision_problems(table: np.ndarray, instance: Instance) -> list[tuple[int, str]]:
    """(row, what is wrong) for every infeasible or non-optimal decision, by row."""
    expected = reference_values(instance)
    problems: list[tuple[int, str]] = []
    for n in range(instance.horizon):
        demand = instance.demands[n]
        for s in range(instance.capacity + 1):
            x = int(table[n, s])
            at = f"decisions[{n}][{s}] (row {n}, inventory {s})"
            if x < 0:
                problems.append((n, f"{at} is negative"))
            elif s + x < demand:
                problems.append((n, f"{at} leaves demand unmet"))
            elif s + x - demand > instance.capacity:
                problems.append((n, f"{at} leaves more than the capacity in stock"))
            else:
                q = _q_value(instance, CORRECT, expected, n, s, x)
                if not math.isclose(q, expected[n, s], rel_tol=RTOL, abs_tol=ATOL):
                    problems.append((n, f"{at} is feasible but not optimal"))
    return problems


def check_optimal_plan(
    optimal_plan: Callable[..., object], *, next_state: Callable[..., object] | None = None
) -> None:
    """Follow random feasible decision tables (not only optimal ones) from random starts.
    ``next_state``, when given, is tried once the plans are found wrong."""
    rng = instance_rng(SEED + 6)
    cases = []  # (instance, decisions, start, what, plan or None, failure or None)
    for index, instance in enumerate(_instances(SEED + 7, 40)):
        decisions = np.zeros((instance.horizon, instance.capacity + 1), dtype=int)
        for n in range(instance.horizon):
            for s in range(instance.capacity + 1):
                decisions[n, s] = int(rng.choice(list(instance.feasible(n, s))))
        start = int(rng.integers(0, instance.capacity + 1))
        given = decisions.tolist() if index % 2 else decisions.copy()
        demands = list(instance.demands)
        what = (
            f"optimal_plan(decisions={decisions.tolist()}, start={start}, "
            f"demands={list(instance.demands)})"
        )
        try:
            got = call_student(optimal_plan, given, start, demands, what=what)
        except HiddenCheckFailure as failure:
            cases.append((instance, decisions, start, what, None, failure))
            continue
        passed = {"decisions": given, "demands": demands}
        kept = {"decisions": decisions.tolist(), "demands": list(instance.demands)}
        _check_arguments_kept(what, "optimal_plan", passed, kept)
        plan = [_whole_number(x, what=what) for x in _sequence(got, what=what, name="the plan")]
        cases.append((instance, decisions, start, what, plan, None))

    wrong = [c for c in cases if c[4] != _follow(c[1], c[2], c[0].demands)]
    if not wrong:
        return
    helper = _helper_problem("optimal_plan", next_state=next_state)
    if helper:
        raise HiddenCheckFailure(f"{wrong[0][3]}: {helper}")

    def explains(model: Callable[[Instance, np.ndarray, int], list[int] | None]):
        def holds() -> bool:
            seen = [c for c in wrong if c[4] is not None]
            return bool(seen) and all(
                c[4] is None or c[4] == model(c[0], c[1], c[2]) for c in cases
            )

        return holds

    name = _first_consistent(
        {
            "from_zero": explains(lambda i, d, start: _follow(d, 0, i.demands)),
            "never_moves": explains(
                lambda i, d, start: [int(d[n, start]) for n in range(i.horizon)]
            ),
            "inventories": explains(lambda i, d, start: _follow(d, start, i.demands, stock=True)),
            "course_demands": explains(
                lambda i, d, start: _follow(d, start, (1, 2, 1, 2) * i.horizon)
            ),
        }
    )
    what = wrong[0][3]
    if name == "from_zero":
        raise HiddenCheckFailure(
            f"{what}: the plan starts from an empty warehouse (inventory 0) whatever start "
            "is: follow the table from the inventory start"
        )
    if name == "never_moves":
        raise HiddenCheckFailure(
            f"{what}: the inventory is never updated; after period n it becomes "
            "s + x - demands[n], and the next decision is read in that state's column"
        )
    if name == "inventories":
        raise HiddenCheckFailure(
            f"{what}: the plan holds the inventories at the start of each period, not the "
            "productions decisions[n][s]"
        )
    if name == "course_demands":
        raise HiddenCheckFailure(
            f"{what}: the plan follows the course's DEMANDS (1, 2, 1, 2), not the demands argument"
        )
    failed = next((c for c in cases if c[5] is not None), None)
    if failed is not None:
        raise failed[5]
    instance, _, _, what, plan, _ = wrong[0]
    if len(plan) != instance.horizon:
        raise HiddenCheckFailure(
            f"{what}: the plan should hold one production quantity per period "
            f"({instance.horizon} here), got {len(plan)}"
        )
    raise HiddenCheckFailure(
        f"{what}: the plan does not follow the decision table; period n's decision is "
        "decisions[n][s] for the inventory s at the start of period n"
    )


def _follow(
    decisions: np.ndarray, start: int, demands: Sequence[int], *, stock: bool = False
) -> list[int] | None:
    """The productions read off ``decisions`` from ``start`` (the inventories at the start of
    each period when ``stock``); None where the walk leaves the table (a mistaken walk may
    reach a negative inventory, which Python reads from the end of the row, as here)."""
    plan, s = [], start
    for n in range(decisions.shape[0]):
        if not -decisions.shape[1] <= s < decisions.shape[1]:
            return None
        x = int(decisions[n, s])
        plan.append(s if stock else x)
        s = s + x - demands[n]
    return plan
