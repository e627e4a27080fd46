"""Hidden check of lab05's Exercise 5: a fair race between four solution methods.

``compare_methods(capacities, beta, epsilon)`` solves the course's warehouse with each
capacity by the four solvers of the lab's ``SOLVERS`` and returns, per solver, the
iterations each reported and the seconds each call took. The check draws capacities (in no
particular order), discount factors and epsilons from the lab's seed mixed with the
grading run's. The iterations must be those the solvers report on those warehouses; the
check learns them by calling the same solvers (the student's ``value_iteration`` and
``gauss_seidel``, the lab's compact modified policy iteration and policy iteration) on
warehouses it builds itself, so a mistake in an earlier exercise is not counted twice.
The seconds must be positive and add up to no more than the whole call took, and the
solvers' times may not grow from each solver to the next at every capacity, as they do
when a clock started once per capacity gives each solver the times of those before it
(policy iteration, the last, is the fastest on these models). A wrong table is compared with
the usual mistakes: the course's own arrays for every capacity, capacity + 1, the
notebook's BETA, the capacities sorted, epsilon left at another value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from mdplab.checks.common import HiddenCheckFailure, instance_rng
from mdplab.checks.lab05 import COURSE_BETA, _call
from mdplab.checks.warehouses import COURSE

SEED = 20261208
# The keys of the lab's SOLVERS, in order, and the notebook function behind each.
FUNCTIONS = {
    "value iteration": "value_iteration",
    "Gauss-Seidel": "gauss_seidel",
    "modified PI (k = 5)": "modified_policy_iteration_compact",
    "policy iteration": "policy_iteration_compact",
}
NAMES = tuple(FUNCTIONS)


def course_arrays(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of the lab's ``warehouse_arrays(capacity=capacity)``."""
    return replace(COURSE, capacity=int(capacity)).arrays()


class Solvers:
    """The iterations each of the four solvers reports on a course warehouse, from the
    functions the notebook's ``SOLVERS`` wraps (memoised: each is asked once)."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions
        self._seen: dict[tuple[str, int, float, float], int] = {}

    def iterations(self, name: str, capacity: int, beta: float, epsilon: float) -> int:
        key = (name, capacity, beta, epsilon)
        if key not in self._seen:
            R, P = course_arrays(capacity)
            function = self.functions[name]
            what = f"{FUNCTIONS[name]} on warehouse_arrays(capacity={capacity})"
            if name == "value iteration":
                result = _call(function, R, P, beta, epsilon=epsilon, what=what)
            else:
                result = _call(function, R, P, beta, epsilon, what=what)
            try:
                self._seen[key] = int(result[2])  # type: ignore[index]
            except (TypeError, ValueError, IndexError):
                raise HiddenCheckFailure(
                    f"{what}: the race uses your {FUNCTIONS[name]}, whose third result "
                    "should be the number of sweeps; fix it first"
                ) from None
        return self._seen[key]


def comparison_cases(seed: int = SEED) -> list[tuple[list[int], float, float]]:
    """Three capacities between 1 and 6 (not sorted), beta and epsilon."""
    rng = instance_rng(seed)
    cases = [([3, 1, 2], 0.85, 1e-3)]
    while len(cases) < 3:
        capacities = [int(c) for c in rng.choice(np.arange(1, 7), size=3, replace=False)]
        if capacities == sorted(capacities):
            capacities.reverse()
        # value iteration needs dozens of sweeps at least, policy iteration a few solves:
        # far enough apart for the clock test
        beta = round(float(rng.uniform(0.8, 0.93)), 2)
        epsilon = float(rng.choice([1e-3, 1e-4]))
        cases.append((capacities, beta, epsilon))
    return cases


def check_compare_methods(
    compare_methods: Callable[..., object],
    value_iteration: Callable[..., object],
    gauss_seidel: Callable[..., object],
    modified_policy_iteration_compact: Callable[..., object],
    policy_iteration_compact: Callable[..., object],
) -> None:
    """The table of :func:`comparison_cases`' races, iterations and seconds."""
    solvers = Solvers(
        dict(
            zip(
                NAMES,
                (
                    value_iteration,
                    gauss_seidel,
                    modified_policy_iteration_compact,
                    policy_iteration_compact,
                ),
                strict=True,
            )
        )
    )
    for capacities, beta, epsilon in comparison_cases():
        what = f"compare_methods({capacities}, beta={beta:g}, epsilon={epsilon:g})"
        clock = time.perf_counter()
        table = _call(compare_methods, list(capacities), beta, epsilon, what=what)
        total = time.perf_counter() - clock
        _check_table(table, solvers, capacities, beta, epsilon, total, what)


def _check_table(
    table: Any,
    solvers: Solvers,
    capacities: list[int],
    beta: float,
    epsilon: float,
    total: float,
    what: str,
) -> None:
    if not isinstance(table, Mapping) or sorted(map(str, table)) != sorted(NAMES):
        raise HiddenCheckFailure(
            f"{what}: return a dict with one key per solver of SOLVERS, {list(NAMES)}"
        )
    seconds = []
    for name in NAMES:
        row = table[name]
        if not isinstance(row, Mapping) or not {"iterations", "seconds"} <= set(row):
            raise HiddenCheckFailure(
                f'{what}: table["{name}"] should be a dict with the lists "iterations" and '
                '"seconds"'
            )
        try:
            got = [int(i) for i in row["iterations"]]
            times = np.asarray(row["seconds"], dtype=float).ravel()
        except (TypeError, ValueError):
            raise HiddenCheckFailure(
                f'{what}: table["{name}"] should hold lists of numbers'
            ) from None
        expected = [solvers.iterations(name, c, beta, epsilon) for c in capacities]
        if got != expected:
            problem = _iterations_problem(solvers, name, capacities, beta, epsilon, got)
            raise HiddenCheckFailure(f"{what}: {name}: {problem}")
        if times.shape != (len(capacities),) or not np.all(times > 0):
            raise HiddenCheckFailure(
                f'{what}: table["{name}"]["seconds"] should hold one positive time per '
                "capacity, in seconds, as floats (end minus start)"
            )
        seconds.append(times)
    if sum(float(t.sum()) for t in seconds) > total:
        raise HiddenCheckFailure(
            f"{what}: the times add up to more than the whole call took: milliseconds, or a "
            "clock that keeps running from one call to the next? Keep seconds, and start the "
            "clock again right before every call"
        )
    if np.all(np.diff(np.array(seconds), axis=0) >= 0):
        raise HiddenCheckFailure(
            f"{what}: at every capacity each solver took at least as long as the one before "
            "it, as if each time included the ones before: start the clock again right before "
            "every call"
        )


def _iterations_problem(
    solvers: Solvers,
    name: str,
    capacities: list[int],
    beta: float,
    epsilon: float,
    got: list[int],
) -> str:
    """Which usual mistake gives these iteration counts, in words."""
    course = solvers.iterations(name, COURSE.capacity, beta, epsilon)
    variants = [
        (
            [course] * len(capacities),
            "the iterations are those of the course's warehouse at every capacity: build "
            "warehouse_arrays(capacity=c) for each capacity c and solve that",
        ),
        (
            [solvers.iterations(name, c + 1, beta, epsilon) for c in capacities],
            "the iterations are those of capacity c + 1: build warehouse_arrays(capacity=c)",
        ),
        (
            [solvers.iterations(name, c, COURSE_BETA, epsilon) for c in capacities],
            "the iterations are those of beta = 0.8, the notebook's BETA: pass the argument "
            "beta on to the solvers",
        ),
        (
            [solvers.iterations(name, c, beta, epsilon) for c in sorted(capacities)],
            "the iterations come in the order of the sorted capacities: keep the order given",
        ),
        (
            [solvers.iterations(name, c, beta, 1e-6) for c in capacities],
            "the iterations are those of epsilon = 1e-6: pass the argument epsilon on",
        ),
    ]
    expected = [solvers.iterations(name, c, beta, epsilon) for c in capacities]
    for counts, text in variants:
        if counts != expected and got == counts:
            return text
    return "the iterations should be those the solver reports on each capacity, in order"
