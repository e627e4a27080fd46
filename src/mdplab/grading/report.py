"""What ``mdplab grade`` leaves behind: ``grades.csv``, feedback pages and a summary.

Feedback is made here rather than with ``nbgrader generate_feedback``, whose pages show
the hidden test code and, in it, the expected values. A page keeps the student's own
cells with their outputs and, for each test cell, its title, its points and the
diagnostic message of a failure: never the test code.
"""

from __future__ import annotations

import csv
import html
import multiprocessing
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from mdplab.grading.batch import FAILED, GradingRun, Outcome

COLUMNS = ("student_id", "lab", "score", "max_score", "status", "message")


def write_csv(outcomes: Sequence[Outcome], path: Path) -> None:
    """One row per student and lab; a failed submission has no score, never a silent 0."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for o in outcomes:
            score = "" if o.score is None else f"{o.score:g}"
            message = o.message
            if o.manual_pending:
                message = "; ".join(
                    filter(None, [message, f"{o.manual_pending:g} written point(s) to grade"])
                )
            writer.writerow([o.student_id, o.lab, score, f"{o.max_score:g}", o.status, message])


def summary(outcomes: Sequence[Outcome]) -> str:
    """A fixed-width table, one line per submission, and the counts by status."""
    header = ("student", "lab", "score", "status", "message")
    rows = [
        (
            o.student_id,
            o.lab,
            "-" if o.score is None else f"{o.score:g} / {o.max_score:g}",
            o.status,
            o.message if len(o.message) <= 90 else o.message[:87] + "...",
        )
        for o in outcomes
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing")
    return "\n".join(lines)


def write_feedback(run: GradingRun, folder: Path) -> tuple[int, list[str]]:
    """A page per graded submission in ``folder/<student>/<lab>.html``, made by
    ``run.jobs`` processes at once (a page takes about a second, mostly nbconvert's
    highlighting and HTML sanitising). Returns how many pages were written and, for each
    page that could not be, why: a page that fails never costs a grade or another page."""
    course, lab = run.course, run.lab
    wanted = [
        o
        for o in run.outcomes
        if o.status != FAILED and course.autograded_notebook(lab, o.student_id).exists()
    ]
    _exporter()  # made before the fork, so each process inherits compiled templates
    jobs = min(run.jobs, len(wanted))
    if jobs <= 1:
        _init_pages(run, folder)
        problems = [_write_page(o) for o in wanted]
    else:
        with ProcessPoolExecutor(
            jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_pages,
            initargs=(run, folder),
        ) as pool:
            problems = list(pool.map(_write_page, wanted))
    failures = [p for p in problems if p]
    return len(wanted) - len(failures), failures


_pages: tuple[GradingRun, Path] | None = None


def _init_pages(run: GradingRun, folder: Path) -> None:
    global _pages
    _pages = (run, folder)


@cache
def _exporter() -> HTMLExporter:
    exporter = HTMLExporter(template_name="classic")
    exporter.from_notebook_node(nbformat.v4.new_notebook())  # compiles the templates
    return exporter


def _write_page(outcome: Outcome) -> str:
    """Write one page; return "" or what went wrong."""
    assert _pages is not None
    run, folder = _pages
    try:
        score = run.course.score(run.lab, outcome.student_id)
        earned = {c.grade_id: c for c in score.cells}
        notebook = nbformat.read(run.course.autograded_notebook(run.lab, outcome.student_id), 4)
        body, _ = _exporter().from_notebook_node(feedback_notebook(notebook, outcome, earned))
        target = folder / outcome.student_id / f"{outcome.lab}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    except Exception as error:  # one page must not stop the others
        return f"{outcome.student_id}: {type(error).__name__}: {error}"
    return ""


def feedback_notebook(notebook: NotebookNode, outcome: Outcome, earned: dict) -> NotebookNode:
    """The graded notebook with every test cell's code replaced by its result."""
    page = nbformat.v4.new_notebook(metadata=notebook.metadata)
    score = "no score" if outcome.score is None else f"{outcome.score:g} / {outcome.max_score:g}"
    intro = [
        f"# Feedback: {outcome.lab}, {outcome.student_id}",
        f"**Autograded score:** {score}  ",
        f"**Status:** {outcome.status}",
    ]
    if outcome.manual_pending:
        pending = outcome.manual_pending
        intro.append(f"\n{pending:g} point(s) of written answers are graded by hand.")
    if outcome.message:
        intro.append(f"\n*{html.escape(outcome.message)}*")
    # Fixed cell ids, so that the same grading gives the same page, byte for byte.
    page.cells.append(nbformat.v4.new_markdown_cell("\n".join(intro), id="feedback-summary"))
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            page.cells.append(_test_summary(cell, earned.get(meta.get("grade_id", ""))))
        else:
            copy = nbformat.from_dict(cell)
            copy.metadata = {}
            page.cells.append(copy)
    return page


def _test_summary(cell: NotebookNode, grade) -> NotebookNode:
    meta = cell.metadata["nbgrader"]
    points = grade.score if grade is not None and grade.score is not None else 0
    title = meta.get("grade_id", "tests")
    lines = [f"**Tests `{title}`: {points:g} / {float(meta.get('points', 0)):g} point(s)**"]
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            lines.append(f"\n> {html.escape(output.ename)}: {html.escape(output.evalue)}")
    if len(lines) == 1:
        lines.append("\nAll checks passed.")
    return nbformat.v4.new_markdown_cell("\n".join(lines), id=_cell_id(f"feedback-{title}"))


def _cell_id(text: str) -> str:
    """``text`` as a valid notebook cell id: letters, digits, - and _; at most 64."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


def write_all(run: GradingRun, out: Path, log: Callable[[str], None] = print) -> None:
    """grades.csv, the feedback pages and the summary table."""
    write_csv(run.outcomes, out / "grades.csv")
    pages, failures = write_feedback(run, out / "feedback")
    log("")
    log(summary(run.outcomes))
    log(f"\ngrades: {out / 'grades.csv'}; feedback pages: {pages} in {out / 'feedback'}")
    for failure in failures:
        log(f"feedback page NOT written for {failure}")
    log(f"gradebook (formgrader, nbgrader export): {run.course.root}")
