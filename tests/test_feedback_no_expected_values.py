"""Feedback never shows an expected value.

The hidden checks' messages reach students through grades.csv and the feedback pages. They
may name the inputs of the failing call, the kind of mistake and the student's own values,
but never a number, array or policy that the reference solution computed. This test runs
every hidden check that a wrong answer of a lab's catalogue must fail, directly on the
functions that the answer defines (the lab's code runs in this process: no kernel, no
nbgrader), and records along the way

- what the reference computed: the results of :mod:`mdplab`'s solvers and of the check
  module's ``reference_*`` functions that the check called, and what the lab's reference
  solution returns for every call the check made of the student's function;
- what the student's functions were given and gave back (those may be shown), and the
  parameters of the warehouses the check built (they are the inputs its messages name,
  even where the student's function gets the model as arrays).

A number of the message is a leak when some reference result prints as it (at any
precision) and nothing the student's functions were given or returned does, nor the
check's own wording; likewise a list, tuple or dictionary of numbers. Only 0 and 1 are
passed over (they are in every other sentence); a state, an action or a count named in a
message is accounted for by the inputs and the student's values, where they come from.
A value that happens to equal an input (the cost of state 3 being 3) cannot be told from
it; the negative control below shows that a real leak is caught.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import functools
import importlib
import io
import math
import re
import warnings
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import matplotlib
import nbformat
import numpy as np
import pytest
from course_helpers import LAYOUT, cell_role

import mdplab
from mdplab.cell_code import python_only
from mdplab.checks import common, lab00, warehouses
from mdplab.checks.common import HiddenCheckFailure
from mdplab.course.catalogue import CatalogueEntry, load_catalogue
from mdplab.course.derive import reference_answers
from mdplab.course.handin import HAND_IN_ID
from mdplab.course.layout import Lab

matplotlib.use("Agg")  # the labs' plotting cells run headless here

LABS = LAYOUT.all_labs()
WRONG = [(lab, e) for lab in LABS for e in load_catalogue(LAYOUT, lab) if not e.correct]
# Checks that judge a value the notebook computed against a rule, not against a reference
# result: lab06's prior choice (its held-out score against a floor) and its policy (against
# the operator's rules). Their messages name the student's own values; nothing to audit.
VALUE_CHECKS = {"check_choose_prior", "check_pipeline_is_safe"}
# mdplab's solvers, whose results are expected values wherever a check calls them.
SOLVERS = (
    "backward_induction",
    "bellman_update",
    "evaluate",
    "extract_policy",
    "greedy",
    "modified_policy_iteration",
    "policy_iteration",
    "q_values",
    "solve_dual_lp",
    "solve_lp",
    "value_iteration",
)
# The reference solution is re-run on at most this many of a check's calls (the first and
# the last ones; the simulation checks make thousands, the messages name few).
REPLAYED_CALLS = 400
# Checks stop a student's function after these many seconds; a wrong answer that never
# stops need not take the grader's full time here.
SHORT_LIMITS = {
    "mdplab.checks.lab04": ("TIME_LIMIT", 1.0),
    "mdplab.checks.lab05": ("CALL_SECONDS", 1.0),
}

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w]|\.\d)")
# A bracketed list or tuple that is not an index (``R[2, 4]``), or a dictionary.
SEQUENCE = re.compile(r"(?<![\w\]])([\[(])([^\[\]()]*)[\])]")
MAPPING = re.compile(r"\{([^{}]*)\}")
# Statements of the lab's own cells that only show things: calls, loops, with-blocks.
DEMOS = (ast.Expr, ast.For, ast.While, ast.With, ast.If, ast.Try)


# ---------------------------------------------------------------------------- values
class Pool:
    """Numbers and vectors gathered from values of any shape."""

    def __init__(self) -> None:
        self._numbers: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []
        self._sorted: np.ndarray | None = None

    def add(self, value: Any, depth: int = 0) -> None:
        self._sorted = None
        if depth > 8 or value is None or isinstance(value, bool | str | bytes | np.bool_):
            return
        if isinstance(value, int | float | np.integer | np.floating):
            self._numbers.append(np.array([float(value)]))
        elif isinstance(value, np.ndarray):
            if value.dtype.kind in "iuf":
                array = value.astype(float)
                self._numbers.append(array.ravel())
                if array.ndim == 1:
                    self.vectors.append(array)
                elif array.ndim > 1 and array.size:  # the rows of a table
                    self.vectors.extend(array.reshape(-1, array.shape[-1]))
            elif value.dtype == object:
                for item in value.ravel():
                    self.add(item, depth + 1)
        elif isinstance(value, dict):
            self.add(list(value.keys()), depth + 1)
            self.add(list(value.values()), depth + 1)
        elif isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            if len(items) > 1 and all(_is_number(item) for item in items):
                self.add(np.array(items, dtype=float), depth + 1)
            else:
                for item in items:
                    self.add(item, depth + 1)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for item in dataclasses.fields(value):
                self.add(getattr(value, item.name, None), depth + 1)

    def extended(self, other: Pool) -> Pool:
        """A new pool with this one's values and ``other``'s."""
        pool = Pool()
        pool._numbers = [*self._numbers, *other._numbers]
        pool.vectors = [*self.vectors, *other.vectors]
        return pool

    def sorted(self) -> np.ndarray:
        if self._sorted is None:
            numbers = np.concatenate(self._numbers) if self._numbers else np.empty(0)
            self._sorted = np.unique(numbers[np.isfinite(numbers)])
        return self._sorted

    def has_number(self, value: float, tolerance: float) -> bool:
        numbers = self.sorted()
        index = int(np.searchsorted(numbers, value - tolerance))
        return index < numbers.size and numbers[index] <= value + tolerance

    def has_vector(self, values: np.ndarray, tolerances: np.ndarray) -> bool:
        return any(
            vector.shape == values.shape and bool(np.all(np.abs(vector - values) <= tolerances))
            for vector in self.vectors
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _tolerance(token: str) -> float | None:
    """Half a unit of the token's last digit: every value that prints as the token at some
    precision lies that close. None for an integer: those must match exactly."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa and not exponent:
        return None
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals) * (1 + 1e-9)


def _matches(pool: Pool, token: str) -> bool:
    value = float(token)
    tolerance = _tolerance(token)
    if tolerance is None:
        tolerance = 1e-9 * (1 + abs(value))
    return pool.has_number(value, tolerance)


def _sequence_matches(pool: Pool, tokens: list[str]) -> bool:
    values = np.array([float(t) for t in tokens])
    tolerances = np.array([_tolerance(t) or 1e-9 * (1 + abs(float(t))) for t in tokens])
    return pool.has_vector(values, tolerances)


def _sequences(message: str) -> Iterable[list[str]]:
    """The numbers of every list, tuple (three or more items) and dictionary's values."""
    for match in SEQUENCE.finditer(message):
        items = [item.strip() for item in match.group(2).split(",")]
        if len(items) >= (2 if match.group(1) == "[" else 3) and all(
            NUMBER.fullmatch(item) for item in items
        ):
            yield items
    for match in MAPPING.finditer(message):
        pairs = [item.partition(":") for item in match.group(1).split(",")]
        values = [value.strip() for _, colon, value in pairs if colon]
        if len(values) == len(pairs) >= 2 and all(NUMBER.fullmatch(v) for v in values):
            yield values


def leaks(message: str, references: Pool, allowed: Pool) -> list[str]:
    """The numbers and sequences of ``message`` that show a reference result."""
    found = []
    for token in NUMBER.findall(message):
        if token.lstrip("-") in {"0", "1"}:
            continue  # in every other sentence: row 0, weight 1, 1 - beta
        if _matches(references, token) and not _matches(allowed, token):
            found.append(token)
    for items in _sequences(message):
        if _sequence_matches(references, items) and not _sequence_matches(allowed, items):
            found.append(f"[{', '.join(items)}]")
    return found


@cache
def wording(module_name: str) -> Pool:
    """Numbers a check writes itself: those in its strings, and its module's numeric
    constants that it formats into them (a time limit, a number of runs)."""
    pool = Pool()
    for name in (module_name, common.__name__):
        module = importlib.import_module(name)
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                pool.add([float(token) for token in NUMBER.findall(node.value)])
            elif isinstance(node, ast.FormattedValue):
                for leaf in ast.walk(node.value):
                    value = vars(module).get(leaf.id) if isinstance(leaf, ast.Name) else None
                    if _is_number(value):
                        pool.add(value)
    return pool


# ---------------------------------------------------------------------------- the lab
def _run(source: str, namespace: dict[str, Any], name: str, *, demos: bool = True) -> None:
    """Run a cell's code in ``namespace``; without ``demos``, only its imports, definitions
    and assignments (the plots, tables and loops that show results are not needed here,
    and one of them takes seconds)."""
    tree = ast.parse(python_only(source))
    if not demos:
        tree.body = [node for node in tree.body if not isinstance(node, DEMOS)]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # A broken answer stays broken, as in a notebook; the checks report what follows.
        with contextlib.suppress(Exception):
            exec(compile(tree, name, "exec"), namespace)


@cache
def master(lab_name: str) -> nbformat.NotebookNode:
    return nbformat.read(LAYOUT.master(LAYOUT.lab(lab_name)), as_version=4)


@cache
def reference_namespace(lab_name: str) -> dict[str, Any]:
    """The lab's code cells run with the reference solution, test cells and the hand-in
    check left out: the reference functions, and the setup the answers rely on."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    answers = reference_answers(master(lab_name))
    for cell in master(lab_name).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and cell_role(cell) != "test" and grade_id != HAND_IN_ID:
            answer = cell_role(cell) == "answer"
            source = answers[grade_id] if answer else cell.source
            _run(source, namespace, grade_id or "cell", demos=answer)
    return namespace


def student_namespace(lab: Lab, entry: CatalogueEntry) -> dict[str, Any]:
    """The reference namespace with every answer cell run again, the entry's in place of
    the reference's: the answers then call each other, as in the student's notebook."""
    namespace = dict(reference_namespace(lab.name))
    answers = reference_answers(master(lab.name)) | entry.answers
    for cell in master(lab.name).cells:
        if cell.cell_type == "code" and cell_role(cell) == "answer":
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            _run(answers[grade_id], namespace, grade_id)
    return namespace


def hidden_checks(lab: Lab, grade_id: str) -> list[tuple[str, str, list[str]]]:
    """(module, check, argument names) of every check the hidden part of a test cell calls."""
    cell = next(
        c
        for c in master(lab.name).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )
    hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
    tree = ast.parse(hidden)
    modules = {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    return [
        (modules[node.func.id], node.func.id, [arg.id for arg in node.args])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("check_")
    ]


# ---------------------------------------------------------------------------- recording
@dataclasses.dataclass
class Recording:
    """What one check run computed as a reference, and what it may show."""

    references: Pool = dataclasses.field(default_factory=Pool)
    allowed: Pool = dataclasses.field(default_factory=Pool)
    calls: list[tuple[Callable[..., Any], tuple, dict]] = dataclasses.field(default_factory=list)

    def replay(self) -> None:
        """The reference solution's results for the calls the check made of the student's
        functions: what a correct answer would have returned."""
        calls = self.calls
        if len(calls) > REPLAYED_CALLS:
            calls = calls[: REPLAYED_CALLS // 2] + calls[-REPLAYED_CALLS // 2 :]
        for reference, args, kwargs in calls:
            args, kwargs = copy.deepcopy((args, kwargs))
            with (
                contextlib.redirect_stdout(io.StringIO()),
                warnings.catch_warnings(),
                np.errstate(all="ignore"),
                contextlib.suppress(Exception),
            ):
                warnings.simplefilter("ignore")
                self.references.add(reference(*args, **kwargs))


def _recorded(function: Callable[..., Any], pool: Pool) -> Callable[..., Any]:
    @functools.wraps(function)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        pool.add(result)
        return result

    return recorded


def _student(
    function: Callable[..., Any], reference: Callable[..., Any], recording: Recording
) -> Callable[..., Any]:
    @functools.wraps(function)
    def student(*args: Any, **kwargs: Any) -> Any:
        given = copy.deepcopy((args, kwargs))  # as given: the function may change them
        recording.allowed.add(list(given[0]))
        recording.allowed.add(dict(given[1]))
        recording.calls.append((reference, *given))
        result = function(*args, **kwargs)
        recording.allowed.add(result)
        return result

    return student


def audit(
    lab: Lab, entry: CatalogueEntry, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, str, list[str]]]:
    """(check, message, leaks) for every hidden check of ``entry``'s failing test cells."""
    student = student_namespace(lab, entry)
    reference = reference_namespace(lab.name)
    results = []
    for grade_id in entry.fails:
        for module_name, check_name, names in hidden_checks(lab, grade_id):
            if check_name in VALUE_CHECKS:
                continue
            module = importlib.import_module(module_name)
            recording = Recording()
            with monkeypatch.context() as patch:
                _record_references(patch, module, recording)
                if module_name in SHORT_LIMITS:
                    patch.setattr(module, *SHORT_LIMITS[module_name])
                functions = [_student(student[name], reference[name], recording) for name in names]
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        getattr(module, check_name)(*functions)
                except HiddenCheckFailure as failure:
                    message = str(failure)
                else:
                    continue
            recording.replay()
            allowed = recording.allowed.extended(wording(module_name))
            found = leaks(message, recording.references, allowed)
            results.append((check_name, message, found))
    return results


def _record_references(patch: pytest.MonkeyPatch, module: ModuleType, recording: Recording) -> None:
    """Record what mdplab's solvers and the check's ``reference_*`` functions return, and
    the parameters of every warehouse the check builds."""
    for name in SOLVERS:
        patch.setattr(mdplab, name, _recorded(getattr(mdplab, name), recording.references))
    for name, value in vars(module).items():
        if name.startswith("reference_") and callable(value):
            patch.setattr(module, name, _recorded(value, recording.references))
    for cached in [*vars(module).values(), *vars(warehouses).values()]:
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()  # so that every warehouse the check uses is built anew

    def warehouse(*args: Any, **kwargs: Any) -> mdplab.FiniteMDP:
        recording.allowed.add([*args, *kwargs.values()])
        return real_warehouse(*args, **kwargs)

    real_warehouse = mdplab.warehouse
    patch.setattr(mdplab, "warehouse", warehouse)


# ---------------------------------------------------------------------------- tests
CASES = [
    (lab, entry)
    for lab, entry in WRONG
    if any(
        check not in VALUE_CHECKS
        for grade_id in entry.fails
        for _, check, _ in hidden_checks(lab, grade_id)
    )
]


@pytest.mark.parametrize(
    ("lab", "entry"), CASES, ids=[f"{lab.assignment}-{entry.name}" for lab, entry in CASES]
)
def test_feedback_on_a_wrong_answer_shows_no_expected_value(
    lab: Lab, entry: CatalogueEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = audit(lab, entry, monkeypatch)
    assert results, f"{entry.name}: no hidden check failed, so there was no message to audit"
    for check, message, found in results:
        assert not found, f"{check} shows the expected value(s) {found}: {message}"


def test_the_audit_finds_an_expected_value_in_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control: a check that ends its message with the expected value, as a
    careless f-string would, is caught."""
    computed: list[float] = []
    real = lab00.reference_discounted_cost

    def remembered(*args: Any) -> float:
        computed.append(real(*args))
        return computed[-1]

    class Careless(HiddenCheckFailure):
        def __init__(self, message: str) -> None:
            super().__init__(f"{message} (expected {computed[-1]:.4g})")

    monkeypatch.setattr(lab00, "reference_discounted_cost", remembered)
    monkeypatch.setattr(lab00, "HiddenCheckFailure", Careless)
    lab = LAYOUT.lab("lab00")
    entry = next(e for e in load_catalogue(LAYOUT, lab) if "test_discounted_cost" in e.fails)
    results = audit(lab, entry, monkeypatch)
    assert results and all(found for _, _, found in results), results
    assert any(math.isclose(float(found[0]), computed[-1], rel_tol=1e-3) for _, _, found in results)
