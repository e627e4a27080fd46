"""A quick author's check: run a lab's master, hidden tests included, with the reference
answers or a catalogue entry's, and report each test cell. Runs in the current Python
(which must have ``mdplab``) without nbgrader, so it takes seconds, not minutes; the
catalogue test in ``tests/`` is the full check through nbgrader."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell

from mdplab.course.authoring import build_master, skipped_when_grading
from mdplab.course.catalogue import load_catalogue
from mdplab.course.derive import fill_answers
from mdplab.course.execute import execute_notebook
from mdplab.course.handin import HAND_IN_ID
from mdplab.course.layout import Lab, Layout


@dataclass(frozen=True)
class TestCellResult:
    grade_id: str
    passed: bool
    error: str  # "ExceptionName: message", or "" when passed


def check_answers(
    lab: Lab,
    layout: Layout,
    answers: dict[str, str],
    *,
    run_seed: int | None = None,
    master: nbformat.NotebookNode | None = None,
) -> list[TestCellResult]:
    """Run the master with ``answers`` in its answer cells; the outcome of each test cell.

    The read-only illustrations marked ``autograde="skip"`` are left out, as ``mdplab
    grade`` leaves them out: no later cell reads their names (the build checks it), so no
    test cell's outcome depends on them, and with a wrong answer they may run until their
    time limit (a value iteration that never converges, drawn three times).

    Figures are not drawn (``draw_figures=False``): no verdict depends on them. The kernel
    is a warm one (``warm=True``, :mod:`mdplab.course.warm_kernel`), forked with the
    checks imported already: a run starts in a fraction of a cold kernel's two seconds.

    ``run_seed`` makes the hidden checks draw their instances as a grading run with that
    seed does (``mdplab grade --seed``); None keeps the labs' fixed instances.

    ``master`` is the lab's master as :func:`build_master` makes it, for a caller that
    checks many answers: building it reads and checks the whole lab source (up to half a
    second for lab06), the same for every answer. It is copied, never changed; None
    builds it here."""
    master = build_master(lab, layout) if master is None else copy.deepcopy(master)
    skipped = {*skipped_when_grading(master), HAND_IN_ID}  # the hand-in check grades nothing
    for cell in master.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in skipped:
            cell.source = ""
    notebook = fill_answers(master, answers)
    if run_seed is not None:
        seeding = "from mdplab.checks.common import use_run_seed\n"
        notebook.cells.insert(0, new_code_cell(seeding + f"use_run_seed({int(run_seed)})"))
    execute_notebook(notebook, cwd=layout.labs, allow_errors=True, draw_figures=False, warm=True)
    results = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        message = f"{errors[0].ename}: {errors[0].evalue}" if errors else ""
        results.append(TestCellResult(meta["grade_id"], not errors, message))
    return results


def check_lab(lab: Lab, layout: Layout, entries: list[str] | None = None, *, log=print) -> bool:
    """Check the reference and the named catalogue entries (all when ``entries`` is
    empty); True when each behaves as its catalogue declares."""
    catalogue = {entry.name: entry for entry in load_catalogue(layout, lab)}
    unknown = set(entries or []) - set(catalogue)
    if unknown:
        raise ValueError(f"{lab.name}: no catalogue entries {sorted(unknown)}")
    chosen = [("reference", {}, (), {})]
    chosen += [
        (name, catalogue[name].answers, catalogue[name].fails, catalogue[name].says)
        for name in (entries or list(catalogue))
    ]
    all_as_declared = True
    master = build_master(lab, layout)
    for name, answers, fails, says in chosen:
        results = check_answers(lab, layout, answers, master=master)
        failed = sorted(r.grade_id for r in results if not r.passed)
        unsaid = missing_words(results, says)
        as_declared = failed == sorted(fails) and not unsaid
        all_as_declared &= as_declared
        log(f"{'ok  ' if as_declared else 'FAIL'} {name}: fails {failed or 'nothing'}")
        for result in results:
            if not result.passed:
                log(f"       {result.grade_id}: {result.error[:300]}")
        if failed != sorted(fails):
            log(f"       declared: fails {sorted(fails) or 'nothing'}")
        for grade_id, words in unsaid.items():
            log(f"       {grade_id}: the message lacks {words}")
    return all_as_declared


def missing_words(
    results: list[TestCellResult], says: dict[str, tuple[str, ...]]
) -> dict[str, list[str]]:
    """For each failed cell with declared words, the words its message lacks (compared
    case-insensitively); cells that lack none are left out."""
    missing = {}
    for result in results:
        wanted = says.get(result.grade_id, ())
        if result.passed or not wanted:
            continue
        lacking = [w for w in wanted if w.lower() not in result.error.lower()]
        if lacking:
            missing[result.grade_id] = lacking
    return missing
