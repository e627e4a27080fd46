"""Hidden instances come from the grading run's seed (``mdplab.checks.common.use_run_seed``).

``mdplab grade`` draws a fresh seed for each run, so that the hidden inputs a student saw in
one run's feedback (a function may print its arguments) are worth nothing at the next. With
no run seed, every check draws exactly what it drew before run seeds existed: the worked
solutions, the catalogues and ``mdplab check`` see the same instances every time.

The labs run here in this process, as :func:`mdplab.course.check.check_answers` runs them in
a kernel: the master with answers, cell by cell in one namespace, each test cell passing or
failing (the read-only cells that ``mdplab grade`` skips are skipped here too). Whether
every catalogue entry is still graded as declared under a run seed is the catalogue test's
(tests/test_catalogue.py, whose plain-kernel run uses one).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import importlib
import io
import tempfile
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from course_helpers import LAYOUT, cell_role

from mdplab.autoscaler.telemetry import TRACE_SEED
from mdplab.cell_code import python_only
from mdplab.checks import common
from mdplab.course.authoring import skipped_when_grading
from mdplab.course.derive import reference_answers
from mdplab.course.handin import HAND_IN_ID
from mdplab.course.layout import Lab

matplotlib.use("Agg")  # the labs' cells run headless here

LABS = LAYOUT.all_labs()
RUN_SEEDS = (1, 20260101, 987654321987654321)


# ---------------------------------------------------------------------------- the labs
@cache
def master(lab_name: str) -> nbformat.NotebookNode:
    return nbformat.read(LAYOUT.master(LAYOUT.lab(lab_name)), as_version=4)


def _code_cells(lab_name: str) -> Iterator[tuple[str, str, nbformat.NotebookNode]]:
    """(grade_id, kind, cell) of each code cell ``mdplab grade`` runs, the hand-in check
    left out (it reads the notebook file)."""
    skipped = set(skipped_when_grading(master(lab_name)))
    for cell in master(lab_name).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and grade_id != HAND_IN_ID and grade_id not in skipped:
            yield grade_id, cell_role(cell), cell


@contextlib.contextmanager
def lab_folder() -> Iterator[None]:
    """Work in a scratch folder laid out as ``mdplab check`` lays it out (a folder named
    like ``labs/`` next to a link to ``data/``): the labs read the shipped data from
    ``../data``, and what they write (lab06 exports its policy) stays out of the
    repository."""
    with tempfile.TemporaryDirectory(prefix="mdplab-seeds-") as scratch:
        folder = Path(scratch) / LAYOUT.labs.name
        folder.mkdir()
        data = LAYOUT.labs.parent / "data"
        if data.is_dir():
            (Path(scratch) / "data").symlink_to(data.resolve(), target_is_directory=True)
        with contextlib.chdir(folder):
            yield


def _run(tree: ast.Module, namespace: dict[str, Any], name: str) -> None:
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        exec(compile(tree, name, "exec"), namespace)


@contextlib.contextmanager
def run_seed(seed: int | None) -> Iterator[None]:
    common.use_run_seed(seed)
    try:
        yield
    finally:
        common.use_run_seed(None)


# ---------------------------------------------------------------------------- recording
def hidden_checks(lab: Lab) -> list[tuple[str, str, list[str]]]:
    """(module, check, argument names) of every check the hidden tests of ``lab`` call."""
    found = []
    for cell in master(lab.name).cells:
        if "### BEGIN HIDDEN TESTS" not in cell.source:
            continue
        hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
        tree = ast.parse(hidden)
        modules = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        found += [
            (modules[node.func.id], node.func.id, [arg.id for arg in node.args])
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("check_")
        ]
    return found


@cache
def reference_namespace(lab_name: str) -> dict[str, Any]:
    """The reference solution's namespace (test cells and the hand-in check left out)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    answers = reference_answers(master(lab_name))
    with lab_folder():
        for grade_id, kind, cell in _code_cells(lab_name):
            if kind == "test":
                continue
            source = answers[grade_id] if kind == "answer" else cell.source
            with contextlib.suppress(Exception):
                _run(ast.parse(python_only(source)), namespace, grade_id or "cell")
    plt.close("all")
    return namespace


def canonical(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data that prints the same in every process: arrays by their
    dtype, shape and bytes, generators by their state, functions by their name."""
    if depth > 12:
        return "..."
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return [value.dtype.str, repr(value.item())]
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ["object", value.shape, [canonical(v, depth + 1) for v in value.ravel()]]
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        return [value.dtype.str, value.shape, digest]
    if isinstance(value, np.random.Generator):
        return ["rng", canonical(value.bit_generator.state, depth + 1)]
    if isinstance(value, dict):
        pairs = [[canonical(k, depth + 1), canonical(v, depth + 1)] for k, v in value.items()]
        return ["dict", pairs]
    if isinstance(value, list | tuple):
        return [type(value).__name__, [canonical(v, depth + 1) for v in value]]
    if isinstance(value, set | frozenset):
        return ["set", sorted(repr(canonical(v, depth + 1)) for v in value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            type(value).__name__,
            [canonical(getattr(value, f.name, None), depth + 1) for f in dataclasses.fields(value)],
        ]
    if callable(value):
        return ["callable", getattr(value, "__qualname__", type(value).__name__)]
    return ["object", type(value).__qualname__]


@dataclasses.dataclass
class Drawn:
    """What one hidden check drew: the seeds of the generators made while it ran, and a
    digest of every argument it passed to the student's functions."""

    seeds: list[int] = dataclasses.field(default_factory=list)
    digest: Any = dataclasses.field(default_factory=hashlib.sha256)
    calls: int = 0


def record_check(
    lab: Lab, module_name: str, check: str, names: list[str], monkeypatch: pytest.MonkeyPatch
) -> Drawn:
    """Run one hidden check on the reference functions, recording what it drew."""
    drawn = Drawn()
    namespace = reference_namespace(lab.name)
    real_rng = np.random.default_rng

    def default_rng(seed: Any = None) -> np.random.Generator:
        if isinstance(seed, int | np.integer):
            drawn.seeds.append(int(seed))
        return real_rng(seed)

    def recorded(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def student(*args: Any, **kwargs: Any) -> Any:
            drawn.calls += 1
            drawn.digest.update(repr(canonical([list(args), kwargs])).encode())
            return function(*args, **kwargs)

        return student

    module = importlib.import_module(module_name)
    with monkeypatch.context() as patch:
        patch.setattr(np.random, "default_rng", default_rng)
        for cached in vars(module).values():
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()
        with (
            contextlib.redirect_stdout(io.StringIO()),
            warnings.catch_warnings(),
            np.errstate(all="ignore"),
        ):
            warnings.simplefilter("ignore")
            arguments = (namespace[name] for name in names)
            getattr(module, check)(*(recorded(a) if callable(a) else a for a in arguments))
    return drawn


def draws(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[list[int], str, int]]:
    """check -> (seeds, digest of the arguments, number of calls) for every hidden check."""
    out = {}
    for module_name, check, names in hidden_checks(lab):
        drawn = record_check(lab, module_name, check, names, monkeypatch)
        out[check] = (drawn.seeds, drawn.digest.hexdigest(), drawn.calls)
    return out


# Checks whose every instance is written out (no random draw), so a run seed leaves them be.
FIXED_INSTANCES = {"check_feasible_decisions", "check_pipeline_is_safe"}
# Checks that judge a value the notebook computed (lab06's prior weights, its policy), so
# they call none of the student's functions: what they draw shows in their seeds alone.
VALUE_CHECKS = {"check_choose_prior", "check_pipeline_is_safe"}
# lab06's checks rebuild the course's trace (the shipped CSV, which the student has: no
# hidden instance) from its seeds: generate_telemetry draws with seed, seed + 1 and seed + 2.
COURSE_TRACE_SEEDS = {TRACE_SEED, TRACE_SEED + 1, TRACE_SEED + 2}


def _own_seed(seed: int, lab: Lab) -> bool:
    """Whether ``seed`` is one a lab's checks name: its SEED plus a small offset, or a small
    number of their own (another trace, a reproducibility check's generators)."""
    modules = {module for module, _, _ in hidden_checks(lab)}
    bases = [importlib.import_module(module).SEED for module in modules]
    return 0 <= seed < 1000 or any(0 <= seed - base < 1000 for base in bases)


# ---------------------------------------------------------------------------- tests
def test_instance_seed_is_the_fixed_seed_without_a_run_seed():
    assert common.instance_seed(20260117) == 20260117
    with run_seed(7):
        mixed = common.instance_seed(20260117)
        assert mixed != 20260117 and mixed == common.instance_seed(20260117)
        assert common.instance_seed(20260118) != mixed  # offsets stay distinct streams
    with run_seed(8):
        assert common.instance_seed(20260117) != mixed
    assert common.instance_seed(20260117) == 20260117


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_without_a_run_seed_every_check_draws_from_the_labs_own_seeds(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``instance_seed`` is then the identity, so each check draws what it drew before run
    seeds existed. (When they came in, every check's seeds, the arguments it passed to
    the student's functions and their number were compared with the checks as they had
    been: all the same.)"""
    drawn = draws(lab, monkeypatch)
    assert drawn == draws(lab, monkeypatch), "the checks draw the same every time"
    for check, (seeds, _, calls) in drawn.items():
        assert calls > 0 or check in VALUE_CHECKS, check
        assert all(_own_seed(seed, lab) for seed in seeds), (check, seeds)
        assert seeds or check in FIXED_INSTANCES, f"{check} draws nothing at random"


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_a_run_seed_renews_every_hidden_instance(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a run seed no generator of a check is seeded as without one, and every check
    that draws at random passes other arguments to the student's functions; another run
    seed gives others again, and the same one the same (``mdplab grade --seed`` replays a
    run)."""
    plain = draws(lab, monkeypatch)
    with run_seed(RUN_SEEDS[0]):
        first = draws(lab, monkeypatch)
        assert draws(lab, monkeypatch) == first
    with run_seed(RUN_SEEDS[1]):
        second = draws(lab, monkeypatch)
    for check, (seeds, digest, _) in plain.items():
        if check in FIXED_INSTANCES:
            assert first[check][1] == second[check][1] == digest, check
            continue
        assert not (set(seeds) & set(first[check][0])) - COURSE_TRACE_SEEDS, check
        fresh = set(first[check][0]) - COURSE_TRACE_SEEDS
        assert not any(_own_seed(seed, lab) for seed in fresh), check
        if check not in VALUE_CHECKS:
            assert len({digest, first[check][1], second[check][1]}) == 3, check
