"""Collecting downloads: LMS names and Colab's renames, zips (safely), duplicates, and a
custom naming pattern."""

from __future__ import annotations

import calendar
import os
import re
import stat
import zipfile
from pathlib import Path

import pytest
from course_helpers import LAYOUT

from mdplab.grading.collect import collect, original_name, place

LABS = LAYOUT.all_labs()
LAB00 = LAYOUT.samples / "lab00"
ADA = LAB00 / "lovelaceada_1001_5001_lab00_orientation.ipynb"
NOTEBOOK = ADA.read_bytes()
JAN = (2024, 1, 15, 10, 0, 0)
FEB = (2024, 2, 15, 10, 0, 0)


def write_zip(path: Path, members: dict[str, bytes], times: dict[str, tuple] | None = None) -> Path:
    """A zip holding ``members`` (name -> bytes), with optional date_times per member."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(times or {}).get(name, JAN))
            archive.writestr(info, data)
    return path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def reasons(collection) -> dict[str, str]:
    return {u.source: u.reason for u in collection.unplaced}


def touch(path: Path, data: bytes, when: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (when, when))
    return path


# Names (moved from test_course_collect.py) -------------------------------------------------
@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("Copy of lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("Copy of Copy of lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("lab00_orientation (1).ipynb", "lab00_orientation.ipynb"),
        ("Copy of lab00_orientation (12).ipynb", "lab00_orientation.ipynb"),
        ("lab00_orientation-2.ipynb", "lab00_orientation.ipynb"),
    ],
)
def test_original_name_undoes_renames(name, original):
    assert original_name(name) == original


def test_canvas_names_give_student_and_lab():
    placed = place(Path("turingalan_LATE_1004_5004_Copy of lab00_orientation (1).ipynb"), LABS)
    assert placed is not None
    assert (placed.student_id, placed.lab.assignment) == ("turingalan", "lab00")
    assert placed.recency.submission_id == 5004
    assert placed.file_name == "turingalan_LATE_1004_5004_Copy of lab00_orientation (1).ipynb"
    placed = place(Path("hopperg_1003_5003_lab00_orientation.ipynb"), LABS)
    assert placed is not None and placed.student_id == "hopperg"
    placed = place(Path("HopperG_1003_lab02_mdp_model.ipynb"), LABS)  # no submission id
    assert placed is not None and placed.student_id == "hopperg"
    assert placed.recency.submission_id is None and placed.lab.assignment == "lab02"


@pytest.mark.parametrize(
    "name", ["lab00_orientation.ipynb", "hopperg_1003_5003_my_homework.ipynb", "x_y_z.ipynb"]
)
def test_unplaceable_files_give_none(name):
    assert place(Path(name), LABS) is None


# Folders and single files ----------------------------------------------------------------
def test_the_sample_folder_is_placed_whole_and_sorted(tmp_path):
    collection = collect([LAYOUT.samples], LABS, tmp_path / "staging")
    expected = sorted(p for p in LAYOUT.samples.glob("lab*/*.ipynb"))
    assert sorted(p.path for p in collection.placed) == expected
    assert [(p.lab.name, p.student_id) for p in collection.placed] == sorted(
        (p.lab.name, p.student_id) for p in collection.placed
    )
    assert not collection.superseded and not collection.unplaced
    assert not files_under(tmp_path / "staging"), "loose files are read in place"
    first = collection.placed[0]
    assert first.source == f"samples/lab00/{first.path.name}"


def test_missing_and_foreign_sources_are_reported_not_raised(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    loose = touch(tmp_path / "lovelaceada_1001_5001_lab00_orientation.ipynb", NOTEBOOK, 1e9)
    collection = collect([tmp_path / "gone.zip", notes, loose], LABS, tmp_path / "staging")
    assert reasons(collection) == {
        "gone.zip": "no such file or folder",
        "notes.txt": "not a notebook, a zip or a folder",
    }
    assert [p.path for p in collection.placed] == [loose]


def test_unplaceable_names_say_why(tmp_path):
    folder = tmp_path / "downloads"
    touch(folder / "lab00_orientation.ipynb", NOTEBOOK, 1e9)
    touch(folder / "hopperg_1003_5003_my_homework.ipynb", NOTEBOOK, 1e9)
    collection = collect([folder], LABS, tmp_path / "staging")
    assert reasons(collection) == {
        "downloads/hopperg_1003_5003_my_homework.ipynb": (
            "not a lab of this course: my_homework.ipynb"
        ),
        "downloads/lab00_orientation.ipynb": "name does not follow the Canvas pattern",
    }


# Zips ------------------------------------------------------------------------------------
def test_a_bulk_download_zip_is_extracted_into_staging(tmp_path):
    names = sorted(p.name for p in LAB00.glob("*.ipynb"))
    members = {f"submissions/{name}": (LAB00 / name).read_bytes() for name in names}
    members |= {
        "submissions/": b"",
        "__MACOSX/submissions/._lovelaceada_1001_5001_lab00_orientation.ipynb": b"junk",
        "submissions/._hopperg_1003_5003_lab00_orientation.ipynb": b"junk",
        "submissions/.ipynb_checkpoints/x-checkpoint.ipynb": b"{}",
        "submissions/report.pdf": b"%PDF",
        "notes/hopperg_1003_5009_my_homework.ipynb": NOTEBOOK,
    }
    bulk = write_zip(tmp_path / "in" / "submissions.zip", members)
    staging = tmp_path / "staging"
    collection = collect([bulk], LABS, staging)

    assert sorted(p.file_name for p in collection.placed) == names
    for placed in collection.placed:
        assert staging.resolve() in placed.path.resolve().parents
        assert placed.path.read_bytes() == (LAB00 / placed.file_name).read_bytes()
        assert placed.source == f"submissions.zip:submissions/{placed.file_name}"
        assert placed.recency.modified == calendar.timegm((*JAN, 0, 0, 0))  # read as UTC
    assert reasons(collection) == {
        "submissions.zip:notes/hopperg_1003_5009_my_homework.ipynb": (
            "not a lab of this course: my_homework.ipynb"
        )
    }
    assert not any("MACOSX" in str(p) or p.name.startswith("._") for p in files_under(staging))


@pytest.mark.parametrize(
    "member",
    [
        "../../evil.ipynb",
        "ok/../../../evil.ipynb",
        "{tmp}/evil.ipynb",  # an absolute path
        "C:/Users/evil.ipynb",
        "..\\..\\evil.ipynb",
    ],
)
def test_zip_members_never_escape_staging(tmp_path, member):
    member = member.format(tmp=tmp_path.as_posix())
    good = "a/b/ada_1_2_lab00_orientation.ipynb"
    bulk = write_zip(tmp_path / "in" / "bulk.zip", {member: NOTEBOOK, good: NOTEBOOK})
    staging = tmp_path / "deep" / "staging"
    before = files_under(tmp_path)
    collection = collect([bulk], LABS, staging)
    new_files = files_under(tmp_path) - before
    assert [p.relative_to(staging).parts[1:] for p in new_files] == [tuple(good.split("/"))]
    assert reasons(collection)[f"bulk.zip:{member}"].startswith("unsafe path in a zip")


def test_zip_symlinks_are_not_extracted(tmp_path):
    bulk = tmp_path / "links.zip"
    with zipfile.ZipFile(bulk, "w") as archive:
        link = zipfile.ZipInfo("ada_1_2_lab00_orientation.ipynb", date_time=JAN)
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    collection = collect([bulk], LABS, tmp_path / "staging")
    assert not collection.placed
    assert reasons(collection) == {
        "links.zip:ada_1_2_lab00_orientation.ipynb": "symbolic link in a zip; not extracted"
    }
    assert not files_under(tmp_path / "staging")


def test_oversized_members_are_reported(tmp_path):
    bulk = write_zip(
        tmp_path / "big.zip",
        {"ada_1_2_lab00_orientation.ipynb": NOTEBOOK, "bob_1_3_lab00_orientation.ipynb": b"{}"},
    )
    collection = collect([bulk], LABS, tmp_path / "staging", max_member_bytes=1000)
    assert [p.student_id for p in collection.placed] == ["bob"]
    reason = reasons(collection)["big.zip:ada_1_2_lab00_orientation.ipynb"]
    assert reason.startswith("zip member too large")
    assert not any(p.name.startswith("ada") for p in files_under(tmp_path / "staging"))


def test_corrupt_zips_are_reported_not_raised(tmp_path):
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not a zip at all" * 10)
    whole = write_zip(tmp_path / "whole.zip", {"ada_1_2_lab00_orientation.ipynb": NOTEBOOK})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    # Flip bytes inside a stored member's data: the CRC check fails on reading.
    crc = tmp_path / "crc.zip"
    with zipfile.ZipFile(crc, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("ada_1_2_lab00_orientation.ipynb", NOTEBOOK)
    data = bytearray(crc.read_bytes())
    data[200:210] = b"XXXXXXXXXX"
    crc.write_bytes(bytes(data))

    collection = collect([garbage, truncated, crc], LABS, tmp_path / "staging")
    found = reasons(collection)
    assert found["garbage.zip"].startswith("corrupt zip: ")
    assert found["truncated.zip"].startswith("corrupt zip: ")
    assert found["crc.zip:ada_1_2_lab00_orientation.ipynb"].startswith("corrupt zip member: ")
    assert not collection.placed


def test_zips_in_folders_are_followed_and_zips_in_zips_refused(tmp_path):
    downloads = tmp_path / "downloads"
    inner = write_zip(
        tmp_path / "make" / "inner.zip", {"deep/grace_7_70_lab02_mdp_model.ipynb": NOTEBOOK}
    )
    write_zip(
        downloads / "week1" / "batch" / "outer.zip",
        {
            "grace_7_71_lab02_mdp_model.zip": inner.read_bytes(),
            "alan_8_80_lab00_orientation.ipynb": NOTEBOOK,
        },
    )
    touch(downloads / "week2" / "ada_9_90_lab01_dp_review.ipynb", NOTEBOOK, 1e9)
    collection = collect([downloads], LABS, tmp_path / "staging")
    sources = {p.student_id: p.source for p in collection.placed}
    assert sources == {
        "alan": "downloads/week1/batch/outer.zip:alan_8_80_lab00_orientation.ipynb",
        "ada": "downloads/week2/ada_9_90_lab01_dp_review.ipynb",
    }
    [refused] = collection.refused
    assert refused.source == "downloads/week1/batch/outer.zip:grace_7_71_lab02_mdp_model.zip"
    assert (refused.student_id, refused.lab.name) == ("grace", "lab02_mdp_model")
    assert refused.reason.startswith("an archive inside a submission is never opened")
    assert not collection.unplaced
    assert not list((tmp_path / "staging").rglob("*grace*"))
    assert "1 refused" in collection.describe()


def test_an_upload_that_is_a_zip_cannot_name_another_student(tmp_path):
    """The red team's impersonation: mallory uploads a zip holding a notebook named as
    victim's, with a larger submission id, and one for a student who does not exist."""
    smuggled = write_zip(
        tmp_path / "make" / "mallory.zip",
        {
            "victim_1002_9999_lab00_orientation.ipynb": b"{}",
            "invented_1003_9998_lab00_orientation.ipynb": b"{}",
        },
    )
    bulk = write_zip(
        tmp_path / "submissions.zip",
        {
            "victim_1002_5002_lab00_orientation.ipynb": NOTEBOOK,
            "mallory_1001_5001_lab00_orientation.zip": smuggled.read_bytes(),
        },
    )
    collection = collect([bulk], LABS, tmp_path / "staging")
    assert [(p.student_id, p.source) for p in collection.placed] == [
        ("victim", "submissions.zip:victim_1002_5002_lab00_orientation.ipynb")
    ]
    assert collection.placed[0].path.read_bytes() == NOTEBOOK
    assert [(r.student_id, r.lab.name) for r in collection.refused] == [
        ("mallory", "lab00_orientation")
    ]
    assert not collection.superseded


def test_a_refused_archive_without_a_lab_still_names_its_student(tmp_path):
    bulk = write_zip(
        tmp_path / "submissions.zip",
        {"mallory_1001_5001_homework.zip": write_zip(tmp_path / "h.zip", {"x": b"1"}).read_bytes()},
    )
    [refused] = collect([bulk], LABS, tmp_path / "staging").refused
    assert (refused.student_id, refused.lab) == ("mallory", None)


def test_only_the_newest_copy_is_extracted(tmp_path):
    bulk = write_zip(
        tmp_path / "bulk.zip",
        {
            "ada_1_2_lab00_orientation.ipynb": NOTEBOOK,
            "ada_1_3_lab00_orientation.ipynb": NOTEBOOK,
            "notes/my_homework.ipynb": NOTEBOOK,
        },
    )
    collection = collect([bulk], LABS, tmp_path / "staging")
    assert [p.path.name for p in collection.placed] == ["ada_1_3_lab00_orientation.ipynb"]
    assert [p.name for p in files_under(tmp_path / "staging")] == [
        "ada_1_3_lab00_orientation.ipynb"
    ]


def test_a_zip_bomb_stops_at_the_runs_extraction_limit(tmp_path):
    """Members that each unpack to 2 MB of zeros (a few KB packed): extraction stops at the
    run's limit, every member past it says so, and nothing more reaches the disk."""
    zeros = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    bulk = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bulk, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n in range(10):
            archive.writestr(f"s{n}_1_{n + 2}_lab00_orientation.ipynb", zeros)
    assert bulk.stat().st_size < 200_000
    staging = tmp_path / "staging"
    collection = collect([bulk], LABS, staging, max_total_bytes=5 * 1024 * 1024)
    assert len(collection.placed) == 2
    limited = [u for u in collection.unplaced if "reached its limit" in u.reason]
    assert len(limited) == 8
    assert sum(p.stat().st_size for p in files_under(staging)) <= 5 * 1024 * 1024


def test_a_zip_with_too_many_members_is_read_only_in_part(tmp_path):
    members = {f"s{n:03d}_1_{n + 2}_lab00_orientation.ipynb": NOTEBOOK for n in range(30)}
    bulk = write_zip(tmp_path / "many.zip", members)
    collection = collect([bulk], LABS, tmp_path / "staging", max_members=10)
    assert len(collection.placed) == 10
    assert reasons(collection)["many.zip"] == (
        "the zip holds 30 entries; only the first 10 (by name) were read"
    )


def test_staging_inside_a_source_folder_is_not_collected_twice(tmp_path):
    write_zip(tmp_path / "bulk.zip", {"ada_1_2_lab00_orientation.ipynb": NOTEBOOK})
    for _ in range(2):  # the second run finds the first run's extraction in the folder
        collection = collect([tmp_path], LABS, tmp_path / "staging")
        assert len(collection.placed) == 1 and not collection.superseded


# Duplicates ------------------------------------------------------------------------------
def test_the_larger_canvas_submission_id_wins_over_time(tmp_path):
    folder = tmp_path / "dl"
    older_id = touch(folder / "ada_1001_5001_lab00_orientation.ipynb", NOTEBOOK, 2e9)
    newer_id = touch(folder / "ada_1001_5004_Copy of lab00_orientation.ipynb", NOTEBOOK, 1e9)
    late = touch(folder / "ada_LATE_1001_5003_lab00_orientation (1).ipynb", NOTEBOOK, 3e9)
    collection = collect([folder], LABS, tmp_path / "staging")
    assert [p.path for p in collection.placed] == [newer_id]
    lost = {s.placed.path: s for s in collection.superseded}
    assert set(lost) == {older_id, late}
    assert all(s.kept.path == newer_id for s in lost.values())
    assert lost[older_id].reason == "older Canvas submission id (5001 < 5004)"
    assert lost[late].reason == "older Canvas submission id (5003 < 5004)"


def test_without_submission_ids_the_newer_file_wins(tmp_path):
    folder = tmp_path / "dl"
    old = touch(folder / "ada_1001_lab00_orientation.ipynb", NOTEBOOK, 1e9)
    new = touch(folder / "ada_1001_lab00_orientation (1).ipynb", NOTEBOOK, 1.5e9)
    mixed = touch(folder / "ada_1001_5001_lab00_orientation.ipynb", NOTEBOOK, 1.2e9)
    collection = collect([folder], LABS, tmp_path / "staging")
    assert [p.path for p in collection.placed] == [new]
    assert {s.placed.path for s in collection.superseded} == {old, mixed}
    assert all(s.reason.startswith("older file (modified ") for s in collection.superseded)


def test_zip_members_are_ordered_by_their_date_then_name(tmp_path):
    members = {
        "ada_1_lab00_orientation.ipynb": NOTEBOOK,
        "ada_1_lab00_orientation (2).ipynb": NOTEBOOK,
        "ada_1_lab00_orientation (3).ipynb": NOTEBOOK,
        "bob_2_lab00_orientation (1).ipynb": NOTEBOOK,
        "bob_2_lab00_orientation (2).ipynb": NOTEBOOK,
    }
    times = {"ada_1_lab00_orientation.ipynb": FEB}  # (2) and (3) are from January
    bulk = write_zip(tmp_path / "bulk.zip", members, times)
    collection = collect([bulk], LABS, tmp_path / "staging")
    kept = {p.student_id: p.file_name for p in collection.placed}
    assert kept == {
        "ada": "ada_1_lab00_orientation.ipynb",
        "bob": "bob_2_lab00_orientation (2).ipynb",
    }
    why = {s.placed.file_name: s.reason for s in collection.superseded}
    assert why["bob_2_lab00_orientation (1).ipynb"] == "same time; the kept file's name sorts later"
    assert why["ada_1_lab00_orientation (3).ipynb"].startswith("older file")


def test_collecting_is_deterministic(tmp_path):
    bulk = write_zip(
        tmp_path / "bulk.zip",
        {f"{s}_1_{n}_lab00_orientation.ipynb": NOTEBOOK for s in "zyxw" for n in (7, 3, 5)},
    )

    def run():
        collection = collect([bulk, LAYOUT.samples], LABS, tmp_path / "staging")
        return (
            [(p.lab.name, p.student_id, p.source) for p in collection.placed],
            [(s.placed.source, s.kept.source, s.reason) for s in collection.superseded],
        )

    first = run()
    assert first == run()
    # Sorted by lab, then student: lab00's samples and the zip's w, x, y, z come first.
    samples = {place(p, LABS).student_id for p in (LAYOUT.samples / "lab00").glob("*.ipynb")}
    lab00 = [student for lab, student, _ in first[0] if lab == "lab00_orientation"]
    assert [lab for lab, _, _ in first[0]][: len(lab00)] == ["lab00_orientation"] * len(lab00)
    assert lab00 == sorted(samples | set("wxyz"))


# A custom pattern --------------------------------------------------------------------------
def test_a_pattern_with_student_and_lab(tmp_path):
    folder = tmp_path / "dl"
    touch(folder / "Smith-lab00.ipynb", NOTEBOOK, 1e9)
    touch(folder / "jones-lab02_mdp_model.ipynb", NOTEBOOK, 1e9)
    touch(folder / "doe-lab09.ipynb", NOTEBOOK, 1e9)
    touch(folder / "random.ipynb", NOTEBOOK, 1e9)
    pattern = re.compile(r"^(?P<student>[A-Za-z]+)-(?P<lab>lab\d\d(?:_[a-z0-9_]+)?)\.ipynb$")
    collection = collect([folder], LABS, tmp_path / "staging", pattern)
    assert [(p.student_id, p.lab.assignment) for p in collection.placed] == [
        ("smith", "lab00"),
        ("jones", "lab02"),
    ]
    found = reasons(collection)
    assert found["dl/doe-lab09.ipynb"] == "not a lab of this course: lab09"
    assert found["dl/random.ipynb"].startswith("name does not match the pattern")


def test_a_pattern_without_lab_reads_the_rest_of_the_name(tmp_path):
    folder = tmp_path / "dl"
    touch(folder / "Smith__Copy of lab00_orientation (2).ipynb", NOTEBOOK, 1e9)
    touch(folder / "doe__my_homework.ipynb", NOTEBOOK, 1e9)
    pattern = re.compile(r"^(?P<student>[A-Za-z]+)__")
    collection = collect([folder], LABS, tmp_path / "staging", pattern)
    assert [(p.student_id, p.lab.assignment) for p in collection.placed] == [("smith", "lab00")]
    assert reasons(collection) == {
        "dl/doe__my_homework.ipynb": "not a lab of this course: my_homework.ipynb"
    }


def test_a_pattern_needs_a_student_group(tmp_path):
    with pytest.raises(ValueError, match="student"):
        collect([tmp_path], LABS, tmp_path / "staging", re.compile(r"(?P<lab>lab\d\d)"))


# The report --------------------------------------------------------------------------------
def test_describe_lists_counts_superseded_and_unplaced(tmp_path):
    folder = tmp_path / "dl"
    touch(folder / "ada_1_5001_lab00_orientation.ipynb", NOTEBOOK, 1e9)
    touch(folder / "ada_1_5002_lab00_orientation.ipynb", NOTEBOOK, 1e9)
    touch(folder / "bob_2_5003_lab02_mdp_model.ipynb", NOTEBOOK, 1e9)
    touch(folder / "my_homework.ipynb", NOTEBOOK, 1e9)
    text = collect([folder], LABS, tmp_path / "staging").describe()
    assert text.splitlines() == [
        "2 submissions placed (2 students, 2 labs); 1 superseded; 1 unplaced",
        "superseded (an older copy; the newer one is graded):",
        "  ada lab00: dl/ada_1_5001_lab00_orientation.ipynb -> kept "
        "dl/ada_1_5002_lab00_orientation.ipynb (older Canvas submission id (5001 < 5002))",
        "unplaced (not graded):",
        "  dl/my_homework.ipynb: name does not follow the Canvas pattern",
    ]


def test_a_member_that_cannot_be_written_does_not_stop_the_others(tmp_path):
    bulk = write_zip(
        tmp_path / "clash.zip",
        {
            "ada_1_2_lab00_orientation.ipynb": NOTEBOOK,
            "ada_1_2_lab00_orientation.ipynb/bob_3_4_lab00_orientation.ipynb": NOTEBOOK,
            "zed_5_6_lab00_orientation.ipynb": NOTEBOOK,
        },
    )
    collection = collect([bulk], LABS, tmp_path / "staging")
    assert [p.student_id for p in collection.placed] == ["ada", "zed"]
    [unplaced] = collection.unplaced
    assert unplaced.reason.startswith("zip member could not be extracted")


def test_encrypted_members_are_reported(tmp_path):
    locked = write_zip(tmp_path / "locked.zip", {"bob_1_2_lab00_orientation.ipynb": NOTEBOOK})
    # Mark the member encrypted in the central directory (general purpose flag, bit 0).
    data = bytearray(locked.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    locked.write_bytes(bytes(data))
    collection = collect([locked], LABS, tmp_path / "staging")
    assert not collection.placed
    assert reasons(collection) == {
        "locked.zip:bob_1_2_lab00_orientation.ipynb": "encrypted zip member; not extracted",
    }
