"""What ``mdplab grade`` leaves behind: ``grades.csv``, feedback pages and a summary.

Feedback is made here rather than with ``nbgrader generate_feedback``, whose pages show
the hidden test code and, in it, the expected values. A page keeps the student's own
cells with their outputs and, for each test cell, its title, its points and the
diagnostic message of a failure: never the test code. :mod:`~mdplab.grading.feedback_page`
builds the HTML; this module decides which pages to make and keeps each within a time
limit, since a student's notebook is made to be rendered and may be made to resist it.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext
from multiprocessing.process import BaseProcess
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from mdplab.course.derive import exercise_titles
from mdplab.grading import feedback_page
from mdplab.grading.batch import FAILED, GradingRun, Outcome
from mdplab.grading.run_report import build_report, late_text
from mdplab.grading.text import printable, spreadsheet_cell

COLUMNS = (
    "student_id",
    "lab",
    "score",
    "max_score",
    "status",
    "message",
    "lms_user_id",
    "lms_late",
    "late_penalty",
)
# A page takes well under a second; one that takes this long was made to resist rendering.
PAGE_SECONDS = 20.0
_MESSAGE_CHARS = 2000  # of a child's error, well below a pipe's buffer: sending never blocks


def write_csv(outcomes: Sequence[Outcome], path: Path) -> None:
    """One row per student and lab; a failed submission has no score, never a silent 0.
    Every text cell is made safe for a spreadsheet: ids and messages may hold student text,
    and a Canvas id may start with ``-``."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for o in outcomes:
            score = "" if o.score is None else f"{o.score:g}"
            message = _with_written_points(o)
            texts = [spreadsheet_cell(t) for t in (o.student_id, o.lab, o.status, message)]
            late = "" if o.lms_late is None else ("late" if o.lms_late else "on time")
            writer.writerow(
                [
                    *texts[:2],
                    score,
                    f"{o.max_score:g}",
                    *texts[2:],
                    spreadsheet_cell(o.lms_user_id),
                    late,
                    f"{o.late_penalty:g}",
                ]
            )


def _with_written_points(outcome: Outcome) -> str:
    """The outcome's message, and the written points that still wait for a person."""
    pending = outcome.manual_pending and f"{outcome.manual_pending:g} written point(s) to grade"
    return "; ".join(filter(None, [outcome.message, pending]))


def summary(outcomes: Sequence[Outcome]) -> str:
    """A fixed-width table, one line per submission: the autograded score out of the
    autograded points, the written points still to grade, the status and the message;
    then the counts by status. Student
    text is printed with its control characters escaped, so that it cannot move the
    terminal's cursor or reorder the line."""
    header = ("student", "lab", "autograded", "written", "late", "status", "message")
    rows = []
    for o in outcomes:
        message = printable(o.message)
        rows.append(
            (
                printable(o.student_id),
                printable(o.lab),
                "-" if o.score is None else f"{o.score:g} / {o.max_score - o.manual_max:g}",
                f"{o.manual_pending:g} point(s) to grade" if o.manual_pending else "-",
                late_text(o),
                o.status,
                message if len(message) <= 90 else message[:87] + "...",
            )
        )
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


@dataclass
class _Page:
    """One page to make: what it shows, and where it goes."""

    outcome: Outcome
    notebook: NotebookNode
    earned: dict
    target: Path
    titles: dict[str, str]  # grade_id -> exercise title, from the release

    @property
    def partial(self) -> Path:
        return self.target.with_name(f".{self.target.name}.partial")


@dataclass
class _Child:
    process: BaseProcess
    reader: Connection
    page: _Page
    seconds: float
    deadline: float


def write_feedback(
    run: GradingRun, folder: Path, *, page_seconds: float = PAGE_SECONDS
) -> tuple[int, list[str]]:
    """A page per graded submission in ``folder/<student>/<lab>.html``.

    Each page is rendered in a forked process of its own, ``run.jobs`` at once, and killed
    after ``page_seconds``; a page that overruns or fails to render is written as plain
    text instead (escaped, with the same frame, score and test results). Returns how many
    pages were written, and a line for each page that is plain text or missing, saying
    why: a page that fails never costs a grade or another page."""
    course, lab = run.course, run.lab
    wanted = [
        o
        for o in run.outcomes
        if o.status != FAILED and course.autograded_notebook(lab, o.student_id).exists()
    ]
    titles = exercise_titles(nbformat.read(course.released_notebook(lab), as_version=4))
    feedback_page.warm()  # before the forks, so that each child inherits it ready
    context = multiprocessing.get_context("fork")
    queue, running = list(wanted), list[_Child]()
    written, problems = 0, []
    while queue or running:
        while queue and len(running) < max(run.jobs, 1):
            outcome = queue.pop(0)
            try:
                page = _prepare(run, outcome, folder, titles)
            except Exception as error:  # one page must not stop the others
                problems.append(f"{outcome.student_id}: page NOT written: {_describe(error)}")
                continue
            running.append(_start(context, page, page_seconds))
        if not running:
            continue
        next_deadline = min(child.deadline for child in running)
        wait(
            [child.process.sentinel for child in running],
            max(0.0, next_deadline - time.monotonic()),
        )
        for child in list(running):
            reason = _finished(child)
            if reason is None:
                continue
            running.remove(child)
            done, problem = _settle(child.page, reason)
            written += done
            if problem:
                problems.append(problem)
    return written, problems


def _prepare(run: GradingRun, outcome: Outcome, folder: Path, titles: dict[str, str]) -> _Page:
    """Read what a page shows, in this process: cheap, and needed for a fallback page."""
    score = run.course.score(run.lab, outcome.student_id)
    notebook = nbformat.read(run.course.autograded_notebook(run.lab, outcome.student_id), 4)
    target = folder / outcome.student_id / f"{outcome.lab}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    return _Page(outcome, notebook, {c.grade_id: c for c in score.cells}, target, titles)


def _start(context: ForkContext, page: _Page, seconds: float) -> _Child:
    # Output still buffered at the fork would be written again when the child exits.
    sys.stdout.flush()
    sys.stderr.flush()
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_render, args=(page, writer), daemon=True)
    process.start()
    writer.close()
    return _Child(process, reader, page, seconds, time.monotonic() + seconds)


def _render(page: _Page, channel: Connection) -> None:
    """In the child: write the page beside its target; report what went wrong, if anything."""
    try:
        body = feedback_page.build_page(page.notebook, page.outcome, page.earned, page.titles)
        page.partial.write_text(body, encoding="utf-8")
    except BaseException as error:
        channel.send(_describe(error))
        raise SystemExit(1) from None
    channel.send("")


def _finished(child: _Child) -> str | None:
    """None while the child may still run; else "" when its page is ready, or why not."""
    process = child.process
    if process.exitcode is None and time.monotonic() < child.deadline:
        return None
    if process.exitcode is None:
        process.kill()
        process.join()
        child.reader.close()
        return f"rendering it took longer than {child.seconds:g} s and was stopped"
    process.join()
    message = None
    with contextlib.suppress(EOFError, OSError):  # a child that died sent nothing
        message = child.reader.recv() if child.reader.poll() else None
    child.reader.close()
    if process.exitcode == 0 and message == "":
        return ""
    return f"rendering it failed ({message or f'the renderer ended with code {process.exitcode}'})"


def _settle(page: _Page, reason: str) -> tuple[bool, str]:
    """Put the page in place: the rendered one, or else the plain-text one. Returns whether
    a page was written, and the line to report ("" for a page rendered in full)."""
    student = page.outcome.student_id
    try:
        if not reason:
            os.replace(page.partial, page.target)
            return True, ""
        text = feedback_page.plain_page(
            page.notebook, page.outcome, page.earned, reason, page.titles
        )
        page.target.write_text(text, encoding="utf-8")
    except Exception as error:
        return False, f"{student}: page NOT written: {_describe(error)}"
    finally:
        with contextlib.suppress(OSError):
            page.partial.unlink()
    return True, f"{student}: plain-text page written instead: {reason}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_MESSAGE_CHARS]


def write_all(
    run: GradingRun,
    out: Path,
    log: Callable[[str], None] = print,
    *,
    page_seconds: float = PAGE_SECONDS,
) -> None:
    """grades.csv, the feedback pages and the summary table."""
    write_csv(run.outcomes, out / "grades.csv")
    (out / "report.html").write_text(build_report(run.outcomes, run.lab.name), encoding="utf-8")
    pages, problems = write_feedback(run, out / "feedback", page_seconds=page_seconds)
    log("")
    log(summary(run.outcomes))
    log(f"\ngrades: {out / 'grades.csv'}; feedback pages: {pages} in {out / 'feedback'}")
    log(f"report (every repair, every message in full): {out / 'report.html'}")
    for problem in problems:
        log(f"feedback: {printable(problem)}")
    log(f"gradebook (formgrader, nbgrader export): {run.course.root}")
