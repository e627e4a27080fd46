"""``mdplab export DIR``: the class's grades, per lab and for the term, and a file for Canvas.

Three sources meet here, and every student of any of them gets a row:

- the **gradebook** (nbgrader's): autograded points, the points a person gave the written
  answers in formgrader, nbgrader's late penalty;
- each lab's **journal** (``grading/labNN/journal.jsonl``): the grader's status and message
  for every file, a failed one included, which the gradebook does not hold;
- the **roster**: names, Canvas and SIS ids, sections, and who handed nothing in.

A lab's total is nbgrader's own: ``max(0, autograded + manual - late penalty)``, what
``nbgrader export`` and formgrader show. A file that failed has no total, and a student
with no file is ``missing``: the CSVs say so, and the Canvas file leaves their cell empty,
which Canvas reads as "no change", so that no zero is ever entered for them unseen.

Files written in ``DIR/export/``:

- ``labNN.csv``: a row per student and lab, with every part of the grade;
- ``term.csv``: a row per student, each lab's total, the term's total, maximum and percent,
  and a note for every lab that is not fully graded;
- ``canvas.csv``: Canvas's gradebook import, with the columns Canvas's documentation asks
  for (Student, ID, SIS User ID, SIS Login ID, Section), a "Points Possible" row, and one
  column per lab, named as ``class.toml`` says (``[canvas]``) or after the lab.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from mdplab.course.layout import Lab
from mdplab.grading.batch import FAILED, Journal, Outcome
from mdplab.grading.text import spreadsheet_cell
from mdplab.term.classroom import ClassCourse

MISSING = "missing"
CANVAS_FIXED = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
LAB_COLUMNS = (
    "student_id",
    "name",
    "lms_user_id",
    "section",
    "lab",
    "status",
    "autograded",
    "manual",
    "written_to_grade",
    "late_penalty",
    "total",
    "max_score",
    "lms_late",
    "submitted_at",
    "message",
)


@dataclass(frozen=True)
class Person:
    """A student of the class, from the roster and the gradebook."""

    student_id: str
    name: str  # "Last, First", or the student id when no name is known
    lms_user_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


@dataclass(frozen=True)
class LabGrade:
    """One student's grade for one lab, as the export writes it."""

    person: Person
    lab: Lab
    status: str  # graded, partly graded, failed, missing
    autograded: float | None
    manual: float | None  # points given to the written answers so far
    written_to_grade: float  # written points that still wait for a person
    late_penalty: float
    max_score: float
    lms_late: bool | None = None
    submitted_at: str = ""
    message: str = ""

    @property
    def total(self) -> float | None:
        """nbgrader's score: autograded and manual points less the late penalty, at least
        0; None for a file that failed or a student with no file."""
        if self.status in (FAILED, MISSING) or self.autograded is None:
            return None
        return max(0.0, self.autograded + (self.manual or 0.0) - self.late_penalty)


@dataclass
class Export:
    """What ``mdplab export`` found, and where it wrote it."""

    labs: list[Lab]
    people: list[Person]
    grades: dict[tuple[str, str], LabGrade]  # (student id, lab name) -> grade
    max_scores: dict[str, float]  # lab name -> its points
    folder: Path

    def grade(self, person: Person, lab: Lab) -> LabGrade:
        return self.grades[(person.student_id, lab.name)]


def export(classroom: ClassCourse, labs: Sequence[Lab] | None = None) -> Export:
    """Write ``labNN.csv``, ``term.csv`` and ``canvas.csv`` into ``DIR/export``, for
    ``labs`` or else for every lab graded so far: a term's percentage counts the labs
    that were set."""
    warnings.filterwarnings("ignore", message="Object of type <Submitted")
    classroom.sync()
    labs = list(labs or [lab for lab in classroom.labs() if _graded(classroom, lab)])
    if not labs:
        raise ValueError(
            f"nothing graded in {classroom.root} yet: run `mdplab grade LAB FILES --class "
            f"{classroom.root}` first"
        )
    journals = {lab.name: _journal(classroom, lab) for lab in labs}
    people = _people(classroom, journals)
    grades: dict[tuple[str, str], LabGrade] = {}
    with Gradebook(classroom.db_url) as gradebook:
        max_scores = {lab.name: _max_score(gradebook, lab) for lab in labs}
        for lab in labs:
            for person in people:
                outcome = journals[lab.name].get(person.student_id, lab.name)
                grades[(person.student_id, lab.name)] = _lab_grade(
                    gradebook, person, lab, outcome, max_scores[lab.name]
                )
    folder = classroom.root / "export"
    folder.mkdir(exist_ok=True)
    result = Export(labs, people, grades, max_scores, folder)
    for lab in labs:
        _write_lab(result, lab, folder / f"{lab.assignment}.csv")
    _write_term(result, folder / "term.csv")
    _write_canvas(result, classroom, folder / "canvas.csv")
    return result


def describe(result: Export) -> str:
    """Counts per lab, and what the Canvas file leaves empty."""
    lines = []
    blank = 0
    for lab in result.labs:
        counts: dict[str, int] = {}
        for person in result.people:
            grade = result.grade(person, lab)
            counts[grade.status] = counts.get(grade.status, 0) + 1
            blank += grade.total is None
        lines.append(
            f"{lab.name}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        )
    lines.append(
        f"{len(result.people)} student(s); {blank} grade(s) left empty in canvas.csv (failed "
        "or missing: Canvas keeps what it holds for them)"
    )
    lines.append(f"wrote {result.folder}/: term.csv, canvas.csv and one CSV per lab")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- gathering
def _graded(classroom: ClassCourse, lab: Lab) -> bool:
    return (classroom.lab_folder(lab) / "journal.jsonl").exists()


def _journal(classroom: ClassCourse, lab: Lab) -> Journal:
    return Journal(classroom.lab_folder(lab) / "journal.jsonl")


def _people(classroom: ClassCourse, journals: dict[str, Journal]) -> list[Person]:
    """The roster's members in its order, then anyone else the gradebook or a journal
    knows (a file from a student not on the roster is graded, and exported, too)."""
    people = [
        Person(m.student_id, m.name, m.lms_user_id, m.sis_user_id, m.sis_login_id, m.section)
        for m in classroom.roster
    ]
    known = {p.student_id for p in people}
    extra: dict[str, Person] = {}
    with Gradebook(classroom.db_url) as gradebook:
        for student in gradebook.students:
            if student.id not in known:
                last, first = student.last_name or "", student.first_name or ""
                name = f"{last}, {first}" if last and first else last or first or student.id
                extra[student.id] = Person(student.id, name, student.lms_user_id or "")
    for journal in journals.values():
        for outcome in journal.outcomes():
            if outcome.student_id not in known and outcome.student_id not in extra:
                extra[outcome.student_id] = Person(
                    outcome.student_id, outcome.student_id, outcome.lms_user_id
                )
    return people + [extra[k] for k in sorted(extra)]


def _max_score(gradebook: Gradebook, lab: Lab) -> float:
    try:
        return float(gradebook.find_assignment(lab.assignment).max_score)
    except MissingEntry:
        return 0.0


def _lab_grade(
    gradebook: Gradebook, person: Person, lab: Lab, outcome: Outcome | None, max_score: float
) -> LabGrade:
    late = outcome.lms_late if outcome else None
    submitted = outcome.submitted_at if outcome else ""
    message = outcome.message if outcome else ""
    if outcome is not None and outcome.status == FAILED:
        return LabGrade(
            person, lab, FAILED, None, None, 0.0, 0.0, max_score, late, submitted, message
        )
    try:
        submission = gradebook.find_submission(lab.assignment, person.student_id)
    except MissingEntry:
        submission = None
    if submission is None:
        note = "no file handed in" if outcome is None else message
        return LabGrade(person, lab, MISSING, None, None, 0.0, 0.0, max_score, late, "", note)
    written_max = float(submission.max_written_score or 0.0)
    pending = _written_pending(submission)
    return LabGrade(
        person,
        lab,
        outcome.status if outcome else "graded",
        float(submission.code_score or 0.0),
        float(submission.written_score or 0.0) if pending < written_max else None,
        pending,
        float(submission.late_submission_penalty or 0.0),
        max_score,
        late,
        submitted,
        message,
    )


def _written_pending(submission) -> float:
    """The written points no person has graded yet."""
    pending = 0.0
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            waiting = grade.needs_manual_grade or grade.score is None
            if grade.cell.cell_type == "markdown" and waiting:
                pending += float(grade.max_score)
    return pending


# ---------------------------------------------------------------------------- writing
def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _flag(value: bool | None) -> str:
    return "" if value is None else ("late" if value else "on time")


def _write_lab(result: Export, lab: Lab, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LAB_COLUMNS)
        for person in result.people:
            g = result.grade(person, lab)
            texts = [person.student_id, person.name, person.lms_user_id, person.section]
            writer.writerow(
                [
                    *(spreadsheet_cell(t) for t in texts),
                    lab.name,
                    g.status,
                    _number(g.autograded),
                    _number(g.manual),
                    _number(g.written_to_grade),
                    _number(g.late_penalty),
                    _number(g.total),
                    _number(g.max_score),
                    _flag(g.lms_late),
                    g.submitted_at,
                    spreadsheet_cell(g.message),
                ]
            )


def _write_term(result: Export, path: Path) -> None:
    term_max = sum(result.max_scores.values())
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "student_id",
                "name",
                "lms_user_id",
                "section",
                *(lab.assignment for lab in result.labs),
                "term_total",
                "term_max",
                "percent",
                "notes",
            ]
        )
        for person in result.people:
            grades = [result.grade(person, lab) for lab in result.labs]
            total = sum(g.total or 0.0 for g in grades)
            notes = [
                f"{g.lab.assignment} {g.status}"
                for g in grades
                if g.status in (FAILED, MISSING, "partly graded")
            ] + [
                f"{g.lab.assignment}: {g.written_to_grade:g} written point(s) to grade"
                for g in grades
                if g.written_to_grade
            ]
            texts = [person.student_id, person.name, person.lms_user_id, person.section]
            writer.writerow(
                [
                    *(spreadsheet_cell(t) for t in texts),
                    *(_number(g.total) for g in grades),
                    f"{total:g}",
                    f"{term_max:g}",
                    f"{100 * total / term_max:.1f}" if term_max else "",
                    "; ".join(notes),
                ]
            )


def _write_canvas(result: Export, classroom: ClassCourse, path: Path) -> None:
    columns = [classroom.canvas_column(lab, lab.name) for lab in result.labs]
    maxima = [result.max_scores[lab.name] for lab in result.labs]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CANVAS_FIXED, *columns])
        writer.writerow(["Points Possible", "", "", "", "", *(f"{m:g}" for m in maxima)])
        for person in result.people:
            fixed = [
                person.name,
                person.lms_user_id,
                person.sis_user_id,
                person.sis_login_id,
                person.section,
            ]
            totals = [_number(result.grade(person, lab).total) for lab in result.labs]
            writer.writerow([*(spreadsheet_cell(t) for t in fixed), *totals])
