"""The hidden checks of lab01 (deterministic DP): their references agree with each other,
correct answers of every shape pass, and the usual mistakes fail with the right advice."""

from __future__ import annotations

import functools
import warnings
from functools import cache

import numpy as np
import pytest

from mdplab.checks import lab01
from mdplab.checks.common import HiddenCheckFailure
from mdplab.checks.lab01 import (
    CORRECT,
    MISTAKES,
    Instance,
    brute_force_value,
    random_instance,
    reference_values,
    variant_values,
)

# --------------------------------------------------------------------------- references


def test_reference_reproduces_the_worked_example():
    values = reference_values(Instance((1, 2, 1, 2), 3, 4.0, 1.0, 1.0))
    np.testing.assert_allclose(values[0], [18, 15, 16, 14])
    np.testing.assert_allclose(values[3], [6, 6, 2, 3])
    np.testing.assert_allclose(values[4], 0)
    salvage = reference_values(Instance((1, 2, 1, 2), 3, 4.0, 1.0, 1.0, (0, -2, -4, -6)))
    np.testing.assert_allclose(salvage[0], [15, 12, 13, 13])


def test_mdplab_reference_loops_and_brute_force_agree():
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 25:
        instance = random_instance(rng)
        if instance.horizon > 4 or instance.capacity > 4:
            continue  # brute force enumerates every plan
        values = reference_values(instance)
        np.testing.assert_allclose(values, variant_values(instance, CORRECT), atol=1e-9)
        for start in range(instance.capacity + 1):
            assert np.isclose(values[0, start], brute_force_value(instance, start))
        checked += 1


def test_every_mistake_changes_some_instance():
    instances = lab01._instances(lab01.SEED + 4, 40)
    for name, rules in MISTAKES.items():
        assert any(
            not np.allclose(variant_values(i, rules)[:-1], reference_values(i)[:-1])
            for i in instances
        ), name


# --------------------------------------------------------------------------- answers


def feasible_decisions(s, demand, capacity):
    return list(range(max(0, demand - s), capacity + demand - s + 1))


def stage_cost(s, x, setup_cost, unit_cost, holding_cost):
    return (setup_cost if x > 0 else 0) + unit_cost * x + holding_cost * s


def next_state(s, x, demand):
    return s + x - demand


def plan_cost(plan, start, demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
    s, total = start, 0.0
    for x, d in zip(plan, demands, strict=True):
        if x not in feasible_decisions(s, d, capacity):
            return np.inf
        total += stage_cost(s, x, setup_cost, unit_cost, holding_cost)
        s = next_state(s, x, d)
    return total + (0.0 if terminal is None else terminal[s])


def make_backward(*, rules=CORRECT, largest_ties=False, dtype=float, as_dicts=False):
    """A backward recursion, correct or with one of the modelled mistakes."""

    def backward_recursion(demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
        n_periods = len(demands)
        instance = Instance(
            tuple(demands),
            capacity,
            setup_cost,
            unit_cost,
            holding_cost,
            None if terminal is None else tuple(terminal),
        )
        values = variant_values(instance, rules)
        decisions = np.zeros((n_periods, capacity + 1), dtype=int)
        for k in range(n_periods):
            d = demands[(k + rules.demand_shift) % n_periods]
            for s in range(capacity + 1):
                options = range(max(0, d - s), capacity + d - s + 1)
                q = {x: lab01._q_value(instance, rules, values, k, s, x) for x in options}
                target = max(q.values()) if rules.maximise else min(q.values())
                ties = [x for x, v in q.items() if np.isclose(v, target)]
                decisions[k, s] = ties[-1] if largest_ties else ties[0]
        values[-1] = instance.terminal_row  # stored, even by a recursion that ignores it
        values = values.astype(dtype)
        if as_dicts:
            return (
                {k: dict(enumerate(row)) for k, row in enumerate(values.tolist())},
                {k: dict(enumerate(row)) for k, row in enumerate(decisions.tolist())},
            )
        return values, decisions

    return backward_recursion


def optimal_plan(decisions, start, demands):
    plan, s = [], start
    for k, d in enumerate(demands):
        plan.append(int(decisions[k][s]))
        s = next_state(s, plan[-1], d)
    return plan


def run_quietly(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        function(*args)


def test_correct_answers_pass():
    run_quietly(lab01.check_feasible_decisions, feasible_decisions)
    run_quietly(
        lab01.check_feasible_decisions, lambda s, d, c: np.arange(max(0, d - s), c + d - s + 1)
    )
    run_quietly(lab01.check_one_period, stage_cost, next_state)
    run_quietly(lab01.check_plan_cost, plan_cost)
    run_quietly(lab01.check_optimal_plan, optimal_plan)
    run_quietly(lab01.check_optimal_plan, lambda *a: np.array(optimal_plan(*a), dtype=float))
    for backward in (
        make_backward(),
        make_backward(largest_ties=True),
        make_backward(dtype=np.float32),
        make_backward(as_dicts=True),
    ):
        run_quietly(lab01.check_backward_values, backward)
        run_quietly(lab01.check_backward_decisions, backward)


def test_a_memoised_recursion_returning_lists_passes():
    def backward_recursion(demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
        @cache
        def best(k, s):
            if k == len(demands):
                return (0.0 if terminal is None else terminal[s]), None
            return min(
                (
                    stage_cost(s, x, setup_cost, unit_cost, holding_cost)
                    + best(k + 1, next_state(s, x, demands[k]))[0],
                    x,
                )
                for x in feasible_decisions(s, demands[k], capacity)
            )

        f = [[best(k, s)[0] for s in range(capacity + 1)] for k in range(len(demands) + 1)]
        return f, [[best(k, s)[1] for s in range(capacity + 1)] for k in range(len(demands))]

    run_quietly(lab01.check_backward_values, backward_recursion)
    run_quietly(lab01.check_backward_decisions, backward_recursion)


# --------------------------------------------------------------------------- mistakes


def fails_with(check, *args, advice: str, **kwargs):
    with pytest.raises(HiddenCheckFailure) as failure:
        check(*args, **kwargs)
    assert advice in str(failure.value), str(failure.value)
    return str(failure.value)


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("max", "(max)"),
        ("holding_end", "ending inventory s + x - d"),
        ("holding_after", "after production, s + x"),
        ("setup_always", "also in periods that produce nothing"),
        ("previous_demand", "demands[k - 1]"),
        ("next_demand", "demands[k + 1]"),
        ("no_terminal", "terminal values are not added"),
        ("swapped", "stage_cost(x, s, ...)"),
        ("no_holding", "holding cost of the starting inventory"),
        ("no_setup", "setup cost of a period that produces"),
    ],
)
def test_value_mistakes_are_named(name, advice):
    fails_with(lab01.check_backward_values, make_backward(rules=MISTAKES[name]), advice=advice)


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("max", "(max)"),
        ("holding_end", "holding on the stock after production"),
        ("holding_after", "holding on the stock after production"),
        ("setup_always", "also in periods that produce nothing"),
        ("previous_demand", "demands[k - 1]"),
        ("no_terminal", "terminal values are not added"),
        ("swapped", "stage_cost(x, s, ...)"),
    ],
)
def test_decision_mistakes_are_named(name, advice):
    fails_with(lab01.check_backward_decisions, make_backward(rules=MISTAKES[name]), advice=advice)


def test_ignored_terminal_row_and_argmin_positions():
    def zero_terminal(demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
        return make_backward()(demands, capacity, setup_cost, unit_cost, holding_cost)

    fails_with(lab01.check_backward_values, zero_terminal, advice="they were ignored")

    def positions(*args):
        f, decisions = make_backward()(*args)
        demands, capacity = args[0], args[1]
        low = np.array([[max(0, d - s) for s in range(capacity + 1)] for d in demands])
        return f, decisions - low.reshape(decisions.shape)

    fails_with(lab01.check_backward_decisions, positions, advice="argmin index")


def test_structural_mistakes_are_explained():
    def wrong_shape(*args):
        f, decisions = make_backward()(*args)
        return f[:-1], decisions

    fails_with(lab01.check_backward_values, wrong_shape, advice="horizon + 1 rows")
    fails_with(lab01.check_backward_values, lambda *a: make_backward()(*a)[0], advice="two tables")

    def crashes(*args):
        raise IndexError("index 4 is out of bounds")

    fails_with(lab01.check_backward_decisions, crashes, advice="raised IndexError")


@pytest.mark.parametrize(
    ("function", "advice"),
    [
        (lambda s, d, c: list(range(max(0, d - s), c - s + 1)), "not s + x"),
        (lambda s, d, c: list(range(0, c + d - s + 1)), "leaves demand unmet"),
        (lambda s, d, c: list(range(max(0, d - s), c + d - s)), "largest feasible decision"),
        (lambda s, d, c: list(range(max(0, d - s), c + d - s + 2)), "exceeds the capacity"),
        (lambda s, d, c: sorted(range(max(0, d - s), c + d - s + 1), reverse=True), "increasing"),
    ],
)
def test_feasibility_mistakes(function, advice):
    fails_with(lab01.check_feasible_decisions, function, advice=advice)


@pytest.mark.parametrize(
    ("cost", "advice"),
    [
        (lambda s, x, k, c, h: k + c * x + h * s, "only in a period that produces"),
        (lambda s, x, k, c, h: k * (x > 0) + c * x + h * (s + x), "before production"),
        (lambda s, x, k, c, h: k * (x > 0) + c * x, "holding cost of the starting"),
        (lambda s, x, k, c, h: int(k * (x > 0) + c * x + h * s), "whole number"),
        (lambda s, x, k, c, h: 4 * (x > 0) + x + s, "instead of the arguments setup_cost"),
        (lambda s, x, k, c, h: k * (x > 0) + c * x + h * s + 0.5, "cost of the period is wrong"),
    ],
)
def test_stage_cost_mistakes(cost, advice):
    fails_with(lab01.check_one_period, cost, next_state, advice=advice)


def test_next_state_mistakes():
    fails_with(lab01.check_one_period, stage_cost, lambda s, x, d: s + x, advice="not subtracted")
    fails_with(lab01.check_one_period, stage_cost, lambda s, x, d: s - x + d, advice="adds")


def test_plan_cost_mistakes():
    def unchecked(plan, start, demands, capacity, *costs_and_terminal):
        total = plan_cost(plan, start, demands, 10**6, *costs_and_terminal[:3])
        return total  # no terminal, no capacity check

    fails_with(lab01.check_plan_cost, unchecked, advice="should be np.inf")

    def no_terminal(plan, start, demands, capacity, k, c, h, terminal=None):
        return plan_cost(plan, start, demands, capacity, k, c, h)

    fails_with(lab01.check_plan_cost, no_terminal, advice="terminal value")

    def holding_end(plan, start, demands, capacity, k, c, h, terminal=None):
        s, total = start, 0.0
        for x, d in zip(plan, demands, strict=True):
            if x not in feasible_decisions(s, d, capacity):
                return np.inf
            total += stage_cost(s + x - d, x, k, c, h)
            s = s + x - d
        return total + (0.0 if terminal is None else terminal[s])

    fails_with(lab01.check_plan_cost, holding_end, advice="ending inventory")


def test_optimal_plan_mistakes():
    def never_moves(decisions, start, demands):
        return [decisions[k][start] for k in range(len(demands))]

    fails_with(lab01.check_optimal_plan, never_moves, advice="never updated")
    fails_with(
        lab01.check_optimal_plan,
        lambda d, s, ds: optimal_plan(d, s, ds)[:-1],
        advice="one production",
    )


def test_messages_do_not_reveal_the_values():
    """A failing value check names the instance but none of the optimal costs f[0]."""
    message = fails_with(
        lab01.check_backward_values, make_backward(rules=MISTAKES["max"]), advice="(max)"
    )
    instance = lab01._instances(lab01.SEED + 4, 40)[0]
    assert instance.describe() in message
    for value in reference_values(instance)[0]:
        assert f"{value:g}" not in message.replace(instance.describe(), "")


# --------------------------------------------------------------------------- issue 12


def test_exact_and_low_precision_answers_pass():
    """Fractions, Decimals and float32 are numbers under the series' numeric policy."""
    from decimal import Decimal
    from fractions import Fraction

    def fraction_cost(s, x, k, c, h):
        return Fraction(k) * (x > 0) + Fraction(c) * x + Fraction(h) * s

    def decimal_plan_cost(*args):
        total = plan_cost(*args)
        return Decimal("Infinity") if total == np.inf else Decimal(str(total))

    def fraction_backward(*args):
        f, decisions = make_backward()(*args)
        return [[Fraction(v) for v in row] for row in f.tolist()], decisions.tolist()

    run_quietly(lab01.check_one_period, fraction_cost, next_state)
    run_quietly(lab01.check_one_period, lambda *a: np.float32(stage_cost(*a)), next_state)
    run_quietly(lab01.check_plan_cost, decimal_plan_cost)
    run_quietly(lab01.check_backward_values, fraction_backward)
    run_quietly(lab01.check_backward_decisions, fraction_backward)


def test_generators_are_named():
    fails_with(
        lab01.check_feasible_decisions,
        lambda s, d, c: (x for x in range(max(0, d - s), c + d - s + 1)),
        advice="generator",
    )
    fails_with(lab01.check_optimal_plan, lambda *a: iter(optimal_plan(*a)), advice="generator")


def test_arguments_changed_in_place_are_named():
    def reverses(demands, *rest):
        result = make_backward()(demands, *rest)
        demands.reverse()
        return result

    message = fails_with(lab01.check_backward_values, reverses, advice="in place")
    assert "demands" in message
    fails_with(lab01.check_backward_decisions, reverses, advice="demands in place")

    def spends_terminal(demands, capacity, k, c, h, terminal=None):
        result = make_backward()(demands, capacity, k, c, h, terminal)
        if terminal is not None:
            terminal[0] += 1
        return result

    fails_with(lab01.check_backward_values, spends_terminal, advice="terminal in place")

    def pops(decisions, start, demands):
        plan = optimal_plan(decisions, start, list(demands))
        demands.clear()
        return plan

    fails_with(lab01.check_optimal_plan, pops, advice="demands in place")

    def sorts_plan(plan, *rest):
        total = plan_cost(plan, *rest)
        if isinstance(plan, list):
            plan.sort()
        return total

    fails_with(lab01.check_plan_cost, sorts_plan, advice="plan in place")


def test_backward_structure_mistakes_are_named():
    def swapped_tables(*args):
        f, decisions = make_backward()(*args)
        return decisions, f

    fails_with(lab01.check_backward_values, swapped_tables, advice="order (f, decisions)")

    def no_default(demands, capacity, k, c, h, terminal=None):
        [float(v) for v in terminal]  # None is not iterable
        return make_backward()(demands, capacity, k, c, h, terminal)

    fails_with(lab01.check_backward_values, no_default, advice="terminal is None")


def test_faults_of_the_one_period_functions_are_named_as_theirs():
    def wrong_cost(s, x, k, c, h):
        return (k * (x > 0) + c * x) if x > 0 else 0

    def backward_with(cost):
        def backward_recursion(demands, capacity, k, c, h, terminal=None):
            f, decisions = make_backward()(demands, capacity, k, c, h, terminal)
            f[:-1] += 1.0  # wrong, as a wrong stage_cost would make it
            return f, decisions

        return backward_recursion

    helpers = {
        "feasible_decisions": feasible_decisions,
        "stage_cost": wrong_cost,
        "next_state": next_state,
    }
    message = fails_with(
        lab01.check_backward_values, backward_with(wrong_cost), **helpers, advice="stage_cost"
    )
    assert "holding cost of the starting inventory" in message
    fails_with(
        lab01.check_plan_cost,
        lambda *a: plan_cost(*a) + 1.0,
        **helpers,
        advice="your stage_cost (Exercise 2) is wrong",
    )
    fails_with(
        lab01.check_optimal_plan,
        lambda d, s, ds: [x + 1 for x in optimal_plan(d, s, ds)],
        next_state=lambda s, x, d: s + x,
        advice="your next_state (Exercise 2) is wrong",
    )
    # Right answers pass whatever the helpers do: they are tried only once an answer is wrong.
    run_quietly(functools.partial(lab01.check_plan_cost, **helpers), plan_cost)


def test_plan_cost_structural_mistakes_are_named():
    def skips_last(plan, start, demands, capacity, k, c, h, terminal=None):
        return plan_cost(list(plan)[:-1], start, list(demands)[:-1], capacity, k, c, h, terminal)

    fails_with(lab01.check_plan_cost, skips_last, advice="last period")

    def course_capacity(plan, start, demands, capacity, k, c, h, terminal=None):
        return plan_cost(plan, start, demands, 3, k, c, h, terminal)

    fails_with(lab01.check_plan_cost, course_capacity, advice="capacity argument")

    def none_when_broken(*args):
        total = plan_cost(*args)
        return None if total == np.inf else total

    fails_with(lab01.check_plan_cost, none_when_broken, advice="np.inf, not None")


def test_optimal_plan_mistakes_are_named():
    fails_with(
        lab01.check_optimal_plan,
        lambda d, s, ds: optimal_plan(d, 0, ds),
        advice="empty warehouse",
    )

    def inventories(decisions, start, demands):
        stock, s = [], start
        for k, d in enumerate(demands):
            stock.append(s)
            s = s + int(decisions[k][s]) - d
        return stock

    fails_with(lab01.check_optimal_plan, inventories, advice="inventories")

    def course_demands(decisions, start, demands):
        return optimal_plan(decisions, start, [(1, 2)[k % 2] for k in range(len(decisions))])

    fails_with(lab01.check_optimal_plan, course_demands, advice="DEMANDS")
