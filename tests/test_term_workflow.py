"""A whole term on the samples, through the command line as an instructor runs it.

A class is made with the sample roster (eight students, one of whom hands nothing in) and
due dates for lab00 and lab01. Each lab's files arrive as a Canvas-style zip whose member
times are the submission times: on time, or marked ``_LATE`` by Canvas and one or two
days late. A person grades a written answer through nbgrader's API, as formgrader does.
Then ``mdplab export`` writes the CSVs, and every student's row must agree between the
Canvas import file, the final-grade CSVs and the listing formgrader serves.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from course_helpers import LAYOUT
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config

from mdplab.cli import main
from mdplab.term.export import CANVAS_FIXED

pytestmark = pytest.mark.slow

SAMPLES = LAYOUT.samples
CANVAS_SAMPLE = Path(__file__).parent / "canvas" / "gradebook_import_sample.csv"
ON_TIME = {"lab00": (2027, 1, 30, 12, 0, 0), "lab01": (2027, 2, 7, 9, 30, 0)}
# lab00 is due 2027-02-01T23:59: 34 hours late is two started days, 20% at 10% a day.
# lab01 is due 2027-02-08T23:59: 8 hours late is one day, 10%.
LATE = {"lab00": (2027, 2, 3, 10, 0, 0), "lab01": (2027, 2, 9, 8, 0, 0)}


def _canvas_zip(lab: str, folder: Path, late_students: set[str]) -> Path:
    """The lab's sample files as Canvas's bulk download names and dates them."""
    archive = folder / f"{lab}_submissions.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((SAMPLES / lab).glob("*.ipynb")):
            student, rest = path.name.split("_", 1)
            late = "_LATE_" in path.name or student in late_students
            name = path.name if "_LATE_" in path.name or not late else f"{student}_LATE_{rest}"
            info = zipfile.ZipInfo(name, date_time=LATE[lab] if late else ON_TIME[lab])
            bundle.writestr(info, path.read_bytes())
    return archive


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def term(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("term")
    root = folder / "class"
    code, init = _run(
        [
            "class", "init", str(root), "--roster", str(SAMPLES / "roster.csv"),
            "--due", "lab00=2027-02-01T23:59", "lab01=2027-02-08T23:59",
        ]
    )  # fmt: skip
    assert code == 0, init
    tables = {}
    for lab, late in (("lab00", set()), ("lab01", {"hopperg"})):
        archive = _canvas_zip(lab, folder, late)
        code, tables[lab] = _run(["grade", lab, str(archive), "--class", str(root), "--jobs", "2"])
        assert code == 0, tables[lab]
    # A person gives Ada's written answer in lab00 its full point, through nbgrader's API.
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook("lab00_orientation", "lab00", "lovelaceada")
        written = [g for g in notebook.grades if g.cell.cell_type == "markdown"]
        assert written, "lab00 has a written answer"
        for grade in written:
            grade.manual_score = grade.max_score
            grade.needs_manual_grade = False
        gradebook.db.commit()
    code, exported = _run(["export", str(root)])
    assert code == 0, exported
    return {"root": root, "init": init, "tables": tables, "export": exported}


def _formgrader_listing(root: Path, assignment: str) -> dict[str, dict]:
    """What formgrader's submissions page lists: nbgrader's API on the class's config."""
    config = Config()
    config.CourseDirectory.root = str(root)
    config.Exchange.root = str(root / "exchange")
    api = NbGraderAPI(config=config)
    return {s["student"]: s for s in api.get_submissions(assignment)}


def test_the_grade_table_says_what_each_file_earned(term):
    table = term["tables"]["lab00"]
    assert "7 submissions placed (7 students, 1 lab)" in table
    turing = next(line for line in table.splitlines() if line.startswith("turingalan "))
    assert "4 / 4" in turing and "-0.8 point(s)" in turing
    shannon = next(line for line in table.splitlines() if line.startswith("shannonc "))
    assert "failed" in shannon and "unreadable" in shannon


def test_the_canvas_file_has_canvas_columns_and_every_student(term):
    sample_header, sample_points = list(csv.reader(CANVAS_SAMPLE.open()))[:2]
    rows = list(csv.reader((term["root"] / "export" / "canvas.csv").open()))
    header, points, students = rows[0], rows[1], rows[2:]
    assert tuple(header[:5]) == CANVAS_FIXED == tuple(sample_header[:5])
    assert header[5:] == ["lab00_orientation", "lab01_dp_review"]  # the labs graded so far
    assert points[:5] == sample_points[:5] and points[5:] == ["5", "9"]
    ids = [row[1] for row in students]
    assert ids == ["1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008"]  # roster order
    by_id = {row[1]: row for row in students}
    assert by_id["1001"][0] == "Lovelace, Ada" and by_id["1001"][2:5] == [
        "S1001",
        "ada",
        "Section A",
    ]
    assert by_id["1001"][5] == "5"  # 4 autograded + 1 written, graded by a person
    assert by_id["1004"][5] == "3.2"  # 4 less 20%: two days late
    assert by_id["1007"][5] == ""  # an unreadable file: no grade is entered
    assert by_id["1008"][5:] == ["", ""]  # handed nothing in
    for row in students:
        for cell in row[5:]:
            assert cell == "" or float(cell) >= 0


def test_failed_and_missing_files_are_rows_with_their_status(term):
    rows = {r["student_id"]: r for r in _rows(term["root"] / "export" / "lab00.csv")}
    assert set(rows) == {
        "lovelaceada", "babbagecharles", "hopperg", "turingalan", "noetheremmy", "hamiltonm",
        "shannonc", "curiemarie",
    }  # fmt: skip
    assert rows["shannonc"]["status"] == "failed" and rows["shannonc"]["total"] == ""
    assert "unreadable" in rows["shannonc"]["message"]
    assert rows["curiemarie"]["status"] == "missing" and rows["curiemarie"]["total"] == ""
    assert rows["turingalan"]["lms_late"] == "late"
    assert rows["turingalan"]["late_penalty"] == "0.8"
    assert rows["turingalan"]["submitted_at"] == "2027-02-03T10:00:00+00:00"
    assert rows["lovelaceada"]["lms_late"] == "on time"
    assert (rows["lovelaceada"]["manual"], rows["lovelaceada"]["written_to_grade"]) == ("1", "0")
    assert rows["hopperg"]["written_to_grade"] == "1"  # nobody has graded it yet
    lab01 = {r["student_id"]: r for r in _rows(term["root"] / "export" / "lab01.csv")}
    assert lab01["hopperg"]["lms_late"] == "late"
    assert float(lab01["hopperg"]["late_penalty"]) == pytest.approx(
        0.1 * float(lab01["hopperg"]["autograded"])
    )


def test_the_csvs_and_formgrader_agree_on_every_student(term):
    root = term["root"]
    canvas = list(csv.reader((root / "export" / "canvas.csv").open()))
    canvas_totals = {row[1]: row[5:] for row in canvas[2:]}
    term_rows = {r["student_id"]: r for r in _rows(root / "export" / "term.csv")}
    for index, assignment in enumerate(("lab00", "lab01")):
        listing = _formgrader_listing(root, assignment)
        for row in _rows(root / "export" / f"{assignment}.csv"):
            student = row["student_id"]
            assert canvas_totals[row["lms_user_id"]][index] == row["total"], student
            assert term_rows[student][assignment] == row["total"], student
            listed = listing.get(student)
            submitted = bool(listed and listed.get("submitted"))
            if row["status"] in ("failed", "missing"):
                assert not submitted, (student, row["status"], listed)
                continue
            assert submitted and listed is not None, student
            points = float(row["autograded"]) + float(row["manual"] or 0)
            assert listed["score"] == pytest.approx(points), student
            assert float(row["max_score"]) == listed["max_score"], student
            assert bool(listed["needs_manual_grade"]) == (float(row["written_to_grade"]) > 0)
            penalty = float(row["late_penalty"])
            assert float(row["total"]) == pytest.approx(max(0.0, listed["score"] - penalty))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        ids = {s.id: s.lms_user_id for s in gradebook.students}
    assert ids["turingalan"] == "1004" and ids["curiemarie"] == "1008"
    lovelace = term_rows["lovelaceada"]
    assert float(lovelace["term_total"]) == pytest.approx(
        float(lovelace["lab00"]) + float(lovelace["lab01"])
    )
    assert lovelace["term_max"] == "14"
    assert "lab00 failed" in term_rows["shannonc"]["notes"]
    assert "lab00 missing; lab01 missing" in term_rows["curiemarie"]["notes"]


def test_grading_a_lab_again_keeps_every_grade(term):
    archive = _canvas_zip("lab00", term["root"].parent, set())
    code, again = _run(["grade", "lab00", str(archive), "--class", str(term["root"])])
    assert code == 0
    assert "grading 0 submission(s)" in again
    assert again.count("unchanged since the last run") == 7


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mdplab_formgrader_serves_the_class(term, tmp_path):
    """The README's command, from another folder: formgrader answers with the class's
    submissions, as nbgrader's API lists them."""
    port, token = _free_port(), "mdplab-test-token"
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen(
        [sys.executable, "-m", "mdplab.cli", "formgrader", str(term["root"]), "--port",
         str(port), "--no-browser"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/formgrader/api/submissions/lab00?token={token}"
    try:
        deadline, body = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = response.read()
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, "formgrader did not answer"
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0].decode(errors="replace")
    served = {s["student"]: (s["score"], s["submitted"]) for s in json.loads(body)}
    listed = _formgrader_listing(term["root"], "lab00")
    assert served == {k: (v["score"], v["submitted"]) for k, v in listed.items()}, log
    assert served["lovelaceada"] == (5.0, True)


def test_the_run_report_names_each_repair(term):
    page = (term["root"] / "grading" / "lab00" / "report.html").read_text()
    assert "answer cell periods_needed appeared 2 times" in page  # hamiltonm's duplicate
    assert "re-attached grading metadata" in page  # noetheremmy's stripped metadata
    assert "unreadable: not a notebook" in page
