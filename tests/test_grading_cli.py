"""``mdplab grade`` as an instructor drives it: the options and their defaults in
``--help``, ``--version``, ``--student`` and ``--force``, the exit codes, and a terminal
table that separates autograded points from the written points still to grade."""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

import nbformat
import pytest
from course_helpers import LAYOUT, answered

from mdplab.cli import main
from mdplab.grading.batch import GRADED, Outcome
from mdplab.grading.report import summary

LAB = LAYOUT.lab("lab00")
WRONG_COST = """
def discounted_cost(costs, beta):
    return sum(costs)
"""


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as ended:
        main(["--version"])
    assert ended.value.code == 0
    assert capsys.readouterr().out.strip() == f"mdplab {importlib.metadata.version('mdplab')}"


def test_help_shows_each_default_and_the_instructors_options(capsys):
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in (
        "--cell-timeout CELL_TIMEOUT seconds (default: 120.0)",
        "--notebook-timeout NOTEBOOK_TIMEOUT seconds (default: 900.0)",
        "--memory-mb MEMORY_MB per process (default: 4096)",
        "--student NAME [NAME ...]",
        "--force",
        "Exit code 0 when every file has its status",
    ):
        assert shown in text, shown
    assert "(default: None)" not in text and "(default: False)" not in text


def test_the_table_shows_autograded_points_and_written_points_apart():
    perfect = Outcome("alice", "lab00", 4.0, 5.0, GRADED, "", manual_pending=1.0, manual_max=1.0)
    marked = Outcome("bob", "lab00", 2.0, 5.0, GRADED, "points lost in Exercise 1", manual_max=1)
    late = Outcome("carol", "lab00", 4.0, 5.0, GRADED, "", lms_late=True, late_penalty=0.4)
    lines = summary([perfect, marked, late]).splitlines()
    header = ["student", "lab", "autograded", "written", "late", "status", "message"]
    assert lines[0].split() == header
    assert "4 / 4" in lines[2] and "1 point(s) to grade" in lines[2]
    assert "2 / 4" in lines[3] and "to grade" not in lines[3]
    assert "-0.4 point(s)" in lines[4]


def _submit(folder: Path, student: str, answers: dict[str, str] | None = None) -> None:
    nbformat.write(answered(LAB, answers or {}), folder / f"{student}_1001_5001_{LAB.notebook}")


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}


@pytest.mark.slow
def test_student_and_force_regrade_only_whom_they_name(tmp_path, capsys):
    submissions, out = tmp_path / "in", tmp_path / "out"
    submissions.mkdir()
    _submit(submissions, "alice")
    _submit(submissions, "bob", {"discounted_cost": WRONG_COST})
    (submissions / f"carol_1003_5003_{LAB.notebook}").write_text("{ not a notebook")
    command = ["grade", "lab00", str(submissions), "--out", str(out), "--jobs", "1"]
    # A failed file is a status, not a failure of the command.
    assert main(command) == 0
    first = _rows(out)
    assert (first["carol"]["status"], first["carol"]["score"]) == ("failed", "")
    assert "points lost in Exercise 1: discounted cost" in first["bob"]["message"]
    capsys.readouterr()

    # bob fixes his answer; only he is graded again, and alice's row stays.
    _submit(submissions, "bob")
    assert main([*command, "--student", "bob"]) == 0
    printed = capsys.readouterr().out
    assert "grading 1 chosen student(s)" in printed and "grading 1 submission(s)" in printed
    second = _rows(out)
    assert second["bob"]["score"] == "4" and second["alice"] == first["alice"]

    # Unchanged, alice is kept; with --force she is graded again, to the same row.
    assert main([*command, "--student", "alice"]) == 0
    assert "alice: unchanged since the last run" in capsys.readouterr().out
    assert main([*command, "--student", "alice", "--force"]) == 0
    assert "grading 1 submission(s)" in capsys.readouterr().out
    assert _rows(out)["alice"]["score"] == first["alice"]["score"] == "4"


def test_a_student_with_no_file_is_a_mistake_in_the_command(tmp_path, capsys):
    submissions = tmp_path / "in"
    submissions.mkdir()
    (submissions / f"alice_1001_5001_{LAB.notebook}").write_text("{}")
    command = ["grade", "lab00", str(submissions), "--out", str(tmp_path / "out")]
    assert main([*command, "--student", "zed"]) == 2
    assert "no submission of this lab from zed" in capsys.readouterr().err


def test_cells_are_named_by_title_or_counted_from_one():
    from mdplab.grading.batch import problem_text

    titles = {"test_periods_needed": "Exercise 2: tail bound"}
    timed_out = {"grade_id": "test_periods_needed", "index": 11, "status": "timeout"}
    assert problem_text(timed_out, titles) == "Exercise 2: tail bound ran out of time"
    own_cell = {"grade_id": "", "index": 11, "status": "output-cap", "note": ""}
    assert problem_text(own_cell, titles) == "cell 12 printed too much"
