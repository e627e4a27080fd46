"""Shared pieces of the course tests: the repository layout and a grading course."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nbformat
from nbgrader import utils

from mdplab.course.derive import fill_answers, reference_answers
from mdplab.course.layout import Lab, Layout

REPO = Path(__file__).resolve().parents[1]
LAYOUT = Layout(REPO)
SHIPPED_TRACE = REPO / "data" / "autoscaler_telemetry.csv"


def cell_role(cell: nbformat.NotebookNode) -> str:
    """ "test" for a graded test cell, "answer" for a student's answer cell, else "other"."""
    if utils.is_grade(cell) and not utils.is_solution(cell):
        return "test"
    return "answer" if utils.is_solution(cell) else "other"


def answered(lab: Lab, answers: Mapping[str, str] | None = None) -> nbformat.NotebookNode:
    """The student notebook of ``lab`` with the reference answers in its answer cells, and
    ``answers`` (by grade_id) over them."""
    master = nbformat.read(LAYOUT.master(lab), as_version=4)
    student = nbformat.read(LAYOUT.labs / lab.notebook, as_version=4)
    return fill_answers(student, reference_answers(master) | dict(answers or {}))
