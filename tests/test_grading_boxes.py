"""Where submissions run: a box in a temporary folder short enough for the Unix sockets
between the grader and the kernel; and a failure of the grader's own machinery (its
socket, a kernel that never starts) is reported as such, never scored as the student's
failing tests.

A CI run found the silent zero this guards against: under a long temporary folder every
test cell failed with "AF_UNIX path too long", and a correct submission was "graded 0/5".
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import nbformat
import pytest
from course_helpers import LAYOUT, answered

from mdplab.cli import main
from mdplab.grading import kernel

LAB = LAYOUT.lab("lab00")


def _long_folder(base: Path) -> Path:
    """An existing folder whose path leaves no room for a box's sockets."""
    folder = base.joinpath(*["a-rather-long-folder-name"] * 5)
    folder.mkdir(parents=True)
    assert len(str(folder)) > kernel.SOCKET_PATH_MAX
    return folder


def test_a_short_temporary_folder_is_used_as_it_is(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert kernel.box_parent() == "/tmp"


def test_a_temporary_folder_too_long_for_sockets_gives_way_to_tmp(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(_long_folder(tmp_path)))
    parent = kernel.box_parent()
    assert parent == "/tmp"
    # The longest socket the grader binds in a box made there fits.
    box = Path(tempfile.mkdtemp(prefix=kernel.BOX_PREFIX, dir=parent))
    try:
        longest = box / kernel._session_socket_name()
        assert len(os.fsencode(longest)) <= kernel.SOCKET_PATH_MAX
    finally:
        box.rmdir()


def test_with_no_usable_folder_the_error_names_the_folder_and_the_fix(monkeypatch, tmp_path):
    long = _long_folder(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    monkeypatch.setattr(kernel, "_SHORT_TEMPORARY_FOLDER", str(tmp_path / "no-such-folder"))
    with pytest.raises(ValueError, match="Set TMPDIR to a writable folder") as raised:
        kernel.box_parent()
    assert str(long) in str(raised.value)


def test_the_command_refuses_to_start_without_a_usable_folder(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(_long_folder(tmp_path)))
    monkeypatch.setattr(kernel, "_SHORT_TEMPORARY_FOLDER", str(tmp_path / "no-such-folder"))
    (tmp_path / "in").mkdir()
    assert main(["grade", "lab00", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 2
    assert "no temporary folder for grading" in capsys.readouterr().err


def _grade_reference(folder: Path, *argv: str) -> dict[str, str]:
    """Grade the reference answers to lab00 as one student's submission; its grades row."""
    submissions = folder / "in"
    submissions.mkdir()
    nbformat.write(answered(LAB), submissions / f"alice_1001_5001_{LAB.notebook}")
    out = folder / "out"
    main(["grade", "lab00", str(submissions), "--out", str(out), "--jobs", "1", *argv])
    (row,) = csv.DictReader((out / "grades.csv").open())
    return row


@pytest.mark.slow
def test_under_a_long_temporary_folder_a_correct_submission_keeps_its_marks(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr(tempfile, "tempdir", str(_long_folder(tmp_path)))
    row = _grade_reference(tmp_path)
    assert (row["status"], row["score"], row["max_score"]) == ("graded", "4", "5")
    assert "submissions run in /tmp" in capsys.readouterr().out


@pytest.mark.slow
def test_a_fault_of_the_grader_fails_the_submission_and_scores_nothing(monkeypatch, tmp_path):
    """The grader cannot open its socket (here: a socket name far too long). The
    submission is reported as failed, with the grader named as the cause."""
    monkeypatch.setattr(kernel.secrets, "token_hex", lambda _: "x" * 200)
    row = _grade_reference(tmp_path)
    assert row["status"] == "failed"
    assert row["score"] == ""
    assert "grader error, not the submission's" in row["message"]
    assert "could not open its socket (AF_UNIX path too long)" in row["message"]


@pytest.mark.slow
def test_a_kernel_that_does_not_start_fails_the_submission(monkeypatch, tmp_path):
    """Before any of the submission has run, a kernel that will not start is the grader's
    failure: no score, and the reason in the message."""

    def refuse(self):
        raise kernel.KernelDied("the kernel did not start: no reply within 60 s")

    monkeypatch.setattr(kernel.Kernel, "start", refuse)
    row = _grade_reference(tmp_path)
    assert (row["status"], row["score"]) == ("failed", "")
    assert row["message"].endswith(
        "grader error, not the submission's: the kernel did not start: no reply within 60 s"
    )
