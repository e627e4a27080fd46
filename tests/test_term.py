"""The parts of a term that need no grading: the roster, lateness and its penalty, what a
Canvas name carries, class.toml, and the command line's refusals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from course_helpers import LAYOUT
from hypothesis import given
from hypothesis import strategies as st

from mdplab.cli import main
from mdplab.grading.collect import place
from mdplab.term.classroom import ClassSettings, parse_due, read_settings, write_settings
from mdplab.term.late import DAY_SECONDS, late_penalty, lateness
from mdplab.term.roster import canvas_slug, read_roster

SAMPLE_ROSTER = LAYOUT.samples / "roster.csv"
DUE = datetime(2027, 2, 1, 23, 59, tzinfo=UTC)


# ---------------------------------------------------------------------------- roster
def test_a_canvas_gradebook_export_is_a_roster():
    roster = read_roster(SAMPLE_ROSTER)
    assert len(roster) == 8  # the "Points Possible" row is not a student
    ada = roster.by_lms_id("1001")
    assert ada is not None
    assert (ada.student_id, ada.sis_user_id, ada.sis_login_id, ada.section) == (
        "lovelaceada",
        "S1001",
        "ada",
        "Section A",
    )
    assert ada.first_last == ("Ada", "Lovelace")


def test_roster_ids_are_the_names_of_a_canvas_download():
    """Every sample file's student part is its roster member's id, so a download and the
    roster meet without being told."""
    roster = read_roster(SAMPLE_ROSTER)
    for path in LAYOUT.samples.glob("lab*/*.ipynb"):
        placed = place(path, LAYOUT.all_labs())
        assert placed is not None, path.name
        member = roster.by_lms_id(placed.lms_user_id)
        assert member is not None and member.student_id == placed.student_id, path.name


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Lovelace, Ada", "lovelaceada"),
        ("O'Neil, Mary-Jane", "oneilmaryjane"),
        ("Gödel, Kurt", "godelkurt"),
        ("Noether", "noether"),
    ],
)
def test_canvas_slug(name, slug):
    assert canvas_slug(name) == slug


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Name,Id\nAda,1\n", "no column Student, ID"),
        (
            'Student,ID\n"Lovelace, Ada",1001\n"Lovelace, A.",1001\n',
            "Canvas ID 1001 is listed twice",
        ),
        ('Student,ID\n"Lovelace, Ada",abc\n', "line 2: a student needs a name and a numeric"),
        ("Student,ID\n,1001\n", "line 2"),
    ],
)
def test_a_bad_roster_is_refused_with_the_line(tmp_path, text, words):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=words):
        read_roster(path)


def test_two_students_of_one_name_get_two_ids(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text('\ufeffStudent,ID\n"Smith, J",11\n"Smith, J.",12\n')  # with Excel's BOM
    assert [m.student_id for m in read_roster(path)] == ["smithj", "smithj12"]


# ---------------------------------------------------------------------------- lateness
def test_a_canvas_name_keeps_the_user_id_and_the_late_flag():
    labs = LAYOUT.all_labs()
    late = place(Path("turingalan_LATE_1004_5004_Copy of lab00_orientation (1).ipynb"), labs)
    on_time = place(Path("lovelaceada_1001_5001_lab00_orientation.ipynb"), labs)
    assert late is not None and on_time is not None
    assert (late.student_id, late.lms_user_id, late.lms_late) == ("turingalan", "1004", True)
    assert (on_time.lms_user_id, on_time.lms_late) == ("1001", False)
    pattern = __import__("re").compile(r"(?P<student>[a-z]+)-")
    other = place(Path("ada-lab00_orientation.ipynb"), labs, pattern)
    assert other is not None and (other.lms_user_id, other.lms_late) == ("", None)


def test_the_penalty_is_a_share_of_the_points_per_started_day():
    assert late_penalty(4.0, 1, 10) == pytest.approx(0.4)  # a second late is a day
    assert late_penalty(4.0, DAY_SECONDS, 10) == pytest.approx(0.4)
    assert late_penalty(4.0, DAY_SECONDS + 1, 10) == pytest.approx(0.8)
    assert late_penalty(4.0, 30 * DAY_SECONDS, 10) == pytest.approx(4.0)  # never past all
    assert late_penalty(4.0, 5, 100) == pytest.approx(4.0)  # nbgrader's "zero"
    assert late_penalty(4.0, 0, 10) == 0.0
    assert late_penalty(0.0, DAY_SECONDS, 10) == 0.0


@given(
    score=st.floats(0, 100),
    seconds=st.floats(0, 60 * DAY_SECONDS),
    percent=st.floats(0, 100),
)
def test_a_penalty_never_takes_more_than_the_score(score, seconds, percent):
    penalty = late_penalty(score, seconds, percent)
    assert 0.0 <= penalty <= score + 1e-9
    if seconds > 0 and score > 0:
        days = math.ceil(seconds / DAY_SECONDS)
        assert penalty == pytest.approx(score * min(1.0, days * percent / 100))


def _at(day: datetime) -> float:
    return day.timestamp()


def test_the_lms_decides_whether_the_file_decides_how_late():
    two_days = DUE + timedelta(days=1, hours=10)
    assert lateness(_at(two_days), True, DUE).submitted_at == two_days
    # Late by the LMS, but the file's time says otherwise: late by under a day.
    early = lateness(_at(DUE - timedelta(hours=3)), True, DUE)
    assert early.submitted_at == DUE + timedelta(seconds=1)
    assert "less than a day" in early.note
    # On time by the LMS (an extension), whatever the file's time: on time.
    extended = lateness(_at(two_days), False, DUE)
    assert extended.submitted_at == DUE and "extension" in extended.note
    # No LMS flag: the file's time alone.
    assert lateness(_at(two_days), None, DUE).submitted_at == two_days
    # No due date: nothing is late, and a late flag is noted.
    assert "no due date" in lateness(_at(two_days), True, None).note
    assert lateness(0.0, None, None).submitted_at is None


# ---------------------------------------------------------------------------- class.toml
def test_class_settings_round_trip(tmp_path):
    zone = ZoneInfo("Europe/Amsterdam")
    settings = ClassSettings(
        timezone="Europe/Amsterdam",
        percent_per_day=25.0,
        due={"lab01_dp_review": parse_due("2027-02-01T23:59", zone)},
        canvas_columns={"lab01_dp_review": 'Lab 1 "DP" (123)'},
        roster="roster.csv",
    )
    write_settings(tmp_path, settings)
    again = read_settings(tmp_path)
    assert again == settings
    assert again.due["lab01_dp_review"].astimezone(UTC) == datetime(2027, 2, 1, 22, 59, tzinfo=UTC)


def test_a_date_alone_is_due_at_the_end_of_the_day():
    assert parse_due("2027-02-01", ZoneInfo("UTC")) == datetime(
        2027, 2, 1, 23, 59, 59, tzinfo=ZoneInfo("UTC")
    )


def test_a_folder_that_is_no_class_is_named(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert f"{tmp_path.resolve()} is not a class: run `mdplab class init" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--due", "lab00=tomorrow"], "write it as 2027-02-01T23:59"),
        (["--due", "lab00"], "write LAB=WHEN"),
        (["--due", "lab99=2027-02-01"], "lab99"),
        (["--timezone", "Mars/Olympus"], "unknown timezone"),
        (["--roster", "missing.csv"], "cannot be read"),
    ],
)
def test_class_init_refuses_a_bad_setting_and_writes_nothing(tmp_path, capsys, argv, words):
    folder = tmp_path / "class"
    assert main(["class", "init", str(folder), *argv]) == 2
    assert words in capsys.readouterr().err
    assert not folder.exists()


def test_class_init_wants_a_folder_of_its_own(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["class", "init", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err


def test_due_needs_a_class(tmp_path, capsys):
    code = main(["grade", "lab00", str(tmp_path), "--out", str(tmp_path / "o"), "--due", "2027"])
    assert code == 2
    assert "--due needs --class" in capsys.readouterr().err


def test_formgrader_wants_a_course(tmp_path, capsys):
    assert main(["formgrader", str(tmp_path), "--no-browser"]) == 2
    assert "is no nbgrader course" in capsys.readouterr().err
