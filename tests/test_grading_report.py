"""Feedback pages made by several processes at once: every graded submission gets its
page, the pages match those one process makes, and a page that cannot be made is
reported by name without costing the others."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mdplab.course.nbgrader_course import CellScore, SubmissionScore
from mdplab.grading.batch import FAILED, GradingRun, Outcome
from mdplab.grading.report import write_feedback

LAB = "lab09_example"


class _Lab:
    name = LAB


class _Course:
    """The two things feedback pages read from a course: graded notebooks and scores."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def autograded_notebook(self, lab: _Lab, student_id: str) -> Path:
        return self.root / student_id / f"{lab.name}.ipynb"

    def released_notebook(self, lab: _Lab) -> Path:
        path = self.root / "release" / f"{lab.name}.ipynb"
        if not path.exists():  # the release: where the exercise titles come from
            release = _graded_notebook("")
            release.cells[1].metadata["mdplab"] = {"title": "Exercise 1: the answer"}
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(release, path)
        return path

    def score(self, lab: _Lab, student_id: str) -> SubmissionScore:
        return SubmissionScore(student_id, (CellScore("test_answer", 1.0, 2.0, True),))


def _graded_notebook(student_id: str) -> nbformat.NotebookNode:
    answer = nbformat.v4.new_code_cell(f"answer = {student_id!r}")
    answer.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "answer"}
    test = nbformat.v4.new_code_cell("assert answer == SECRET_EXPECTED_VALUE")
    test.metadata["nbgrader"] = {
        "grade": True, "solution": False, "grade_id": "test_answer", "points": 2,
    }  # fmt: skip
    test.outputs = [
        nbformat.v4.new_output("error", ename="AssertionError", evalue="half right", traceback=[])
    ]
    return nbformat.v4.new_notebook(cells=[answer, test])


@pytest.fixture
def run(tmp_path):
    course = _Course(tmp_path / "course")
    outcomes = []
    for k in range(6):
        student_id = f"student{k}"
        path = course.autograded_notebook(_Lab(), student_id)
        path.parent.mkdir(parents=True)
        nbformat.write(_graded_notebook(student_id), path)
        outcomes.append(Outcome(student_id, LAB, 1.0, 2.0, "graded", ""))
    outcomes.append(Outcome("nofile", LAB, None, 2.0, FAILED, "unreadable"))
    return GradingRun(course, _Lab(), None, outcomes)  # type: ignore[arg-type]


def _pages(folder: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sorted(folder.glob(f"*/{LAB}.html"))}


def test_pages_made_in_parallel_are_those_one_process_makes(run, tmp_path):
    run.jobs = 1
    assert write_feedback(run, tmp_path / "one") == (6, [])
    run.jobs = 3
    assert write_feedback(run, tmp_path / "three") == (6, [])
    one, three = _pages(tmp_path / "one"), _pages(tmp_path / "three")
    assert sorted(three) == [f"student{k}" for k in range(6)]  # no page for a failure
    assert one == three
    page = three["student4"]
    assert "half right" in page
    # Named as the points table names it, from the release, not by its grade_id.
    assert "<h2>Exercise 1: the answer: 1 / 2 point(s)</h2>" in page
    assert "SECRET_EXPECTED_VALUE" not in page


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_page_that_cannot_be_made_is_named_and_the_rest_are_made(run, tmp_path, jobs):
    broken = run.course.autograded_notebook(run.lab, "student2")
    broken.write_text("{ not json")
    run.jobs = jobs
    written, failures = write_feedback(run, tmp_path / "out")
    assert written == 5
    assert len(failures) == 1 and failures[0].startswith("student2: ")
    assert "student2" not in _pages(tmp_path / "out")


def test_the_run_report_lists_every_repair_and_escapes_student_text():
    from mdplab.grading.run_report import CSP, build_report

    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    outcomes = [
        Outcome(
            "ada", "lab00", 4.0, 5.0, "graded", "repaired the file: …", "ada.ipynb",
            manual_max=1.0, repairs=["answer cell stage_cost appeared 2 times", hostile],
        ),
        Outcome(
            "bob", "lab00", 1.0, 5.0, "partly graded", hostile, "bob.ipynb", manual_max=1.0,
            cells=[{"grade_id": "", "index": 11, "status": "timeout", "note": ""}],
        ),
        Outcome("eve", "lab00", None, 5.0, "failed", "unreadable: not a notebook", "e.ipynb"),
    ]  # fmt: skip
    page = build_report(outcomes, "lab00_orientation")
    assert "answer cell stage_cost appeared 2 times" in page
    assert "cell 12 ran out of time" in page  # counted from 1
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f'content="{CSP}"' in page and "script-src 'none'" in CSP
    assert "1 failed, 1 graded, 1 partly graded" in page
