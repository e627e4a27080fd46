"""The main job: build every lab, grade the bundled sample submissions through nbgrader
in a working course, and print a grade table."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mdplab.course.build import build
from mdplab.course.collect import place
from mdplab.course.layout import Layout
from mdplab.course.nbgrader_course import NbgraderError, WorkingCourse


@dataclass(frozen=True)
class GradeRow:
    student_id: str
    lab: str
    file_name: str
    status: str
    auto_score: float | None = None
    auto_max_score: float | None = None
    pending_manual: float = 0.0


def grade_samples(layout: Layout, course_root: Path, *, log=print) -> list[GradeRow]:
    """Grade every sample submission of every lab in a fresh working course."""
    # nbgrader 0.9's gradebook trips SQLAlchemy's autoflush warnings; harmless there.
    warnings.filterwarnings("ignore", message="Object of type <Submitted")
    if course_root.exists():
        shutil.rmtree(course_root)
    course = WorkingCourse(course_root, layout.nbgrader_config)
    labs = layout.all_labs()
    rows: list[GradeRow] = []
    for lab in labs:
        course.add_master(lab, nbformat.read(layout.master(lab), as_version=4))
        course.generate(lab)
        for path in sorted((layout.samples / lab.assignment).glob("*.ipynb")):
            placed = place(path, labs)
            if placed is None:
                rows.append(GradeRow("?", lab.assignment, path.name, "unplaced: not a lab file"))
                continue
            log(f"grading {placed.student_id} {lab.assignment} ({path.name})")
            try:
                course.submit(lab, placed.student_id, nbformat.read(path, as_version=4))
                result = course.autograde(lab, placed.student_id)
            except (NbgraderError, nbformat.ValidationError, ValueError) as error:
                first_line = str(error).strip().splitlines()[0]
                rows.append(
                    GradeRow(placed.student_id, lab.assignment, path.name, f"failed: {first_line}")
                )
                continue
            rows.append(
                GradeRow(
                    placed.student_id,
                    lab.assignment,
                    path.name,
                    "graded",
                    result.auto_score,
                    result.auto_max_score,
                    result.pending_manual,
                )
            )
    return rows


def grade_table(rows: list[GradeRow]) -> str:
    """A fixed-width table: one line per submission."""
    header = ("student", "lab", "autograded", "by hand", "status", "file")
    lines = [
        (
            row.student_id,
            row.lab,
            "-" if row.auto_score is None else f"{row.auto_score:g} / {row.auto_max_score:g}",
            f"{row.pending_manual:g} pt to grade" if row.pending_manual else "-",
            row.status,
            row.file_name,
        )
        for row in rows
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *lines, strict=True)]
    out = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *lines]
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def run_demo(layout: Layout, *, log=print) -> list[GradeRow]:
    build(layout, log=log)
    rows = grade_samples(layout, layout.root / "out" / "demo-course", log=log)
    log("")
    log(grade_table(rows))
    return rows
