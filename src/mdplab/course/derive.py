"""Notebooks derived from a lab's master: the worked solution, and student notebooks
filled with given answers (the sample submissions and the solution catalogues)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import nbformat

from mdplab.course.authoring import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION
from mdplab.course.handin import HAND_IN_ID, for_solution


def strip_hidden_tests(text: str) -> str:
    """``text`` without its hidden-test regions, markers included."""
    kept, hidden = [], False
    for line in text.splitlines():
        marker = line.strip()
        if marker == BEGIN_HIDDEN:
            hidden = True
        elif marker == END_HIDDEN:
            hidden = False
        elif not hidden:
            kept.append(line)
    return "\n".join(kept).rstrip()


def reveal_solution(text: str) -> str:
    """``text`` with the solution markers dropped and the reference code kept."""
    markers = (BEGIN_SOLUTION, END_SOLUTION)
    return "\n".join(line for line in text.splitlines() if line.strip() not in markers)


def solution_notebook(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The worked solution: complete code, no hidden tests, no grading metadata (so its
    hand-in check finds the cells by their content)."""
    solution = copy.deepcopy(master)
    for cell in solution.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == HAND_IN_ID:
            cell.source = for_solution(cell.source)
        cell.source = reveal_solution(strip_hidden_tests(cell.source))
        cell.metadata.pop("nbgrader", None)
        cell.metadata.pop("mdplab", None)
    return solution


def reference_answers(master: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the reference text of every answer and written cell."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: reveal_solution(cell.source)
        for cell in master.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def exercise_titles(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """grade_id -> the title of every graded cell, as the lab's points table names it
    ("Exercise 1: one Bellman sweep"); a graded cell without a title keeps its grade_id.
    Read from the instructor's copy (master or release): a submission's metadata is the
    student's to change."""
    titles = {}
    for cell in notebook.cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("grade") and grading.get("grade_id"):
            title = cell.metadata.get("mdplab", {}).get("title")
            titles[grading["grade_id"]] = str(title or grading["grade_id"])
    return titles


def fill_answers(
    student: nbformat.NotebookNode, answers: Mapping[str, str]
) -> nbformat.NotebookNode:
    """A copy of a student notebook whose answer cells hold ``answers`` (by grade_id)."""
    filled = copy.deepcopy(student)
    found = set()
    for cell in filled.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            if not cell.metadata["nbgrader"].get("solution"):
                raise ValueError(f"cell {grade_id} is not an answer cell")
            cell.source = answers[grade_id]
            found.add(grade_id)
    missing = set(answers) - found
    if missing:
        raise ValueError(f"no answer cells named {sorted(missing)}")
    return filled
