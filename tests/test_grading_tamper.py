"""The tamper catalogue: broken and hostile submissions graded in one ``mdplab grade`` batch.

Every entry of ``tests/catalogue/tamper_lab00.toml`` goes into one LMS zip with an
unplaceable file; one run grades them all. Each entry must get its status and score, the
batch must finish, the gradebook must agree with ``grades.csv`` and nothing outside the
sandbox may have changed. A second run must give the same grades without regrading.

An entry that ``requires`` a mechanism this machine lacks (the fork bombs need the
process-count limit) stays out of the zip: graded without it, it would load the machine
until the cell's time limit. The batch runs with small time and process limits for the
same reason.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import tomllib
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from course_helpers import LAYOUT, answered

from mdplab.cli import main
from mdplab.course.damage import damaged_file
from mdplab.grading import budgets
from mdplab.grading.kernel import box_parent
from mdplab.grading.sandbox import probe

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("nbgrader")]

LAB = LAYOUT.lab("lab00")
CATALOGUE = tomllib.loads((LAYOUT.root / "tests/catalogue/tamper_lab00.toml").read_text())["entry"]
NEEDS_SANDBOX = {"readgradebook", "writegradebook", "otherstudents", "network", "importreference"}
MAX_PROCESSES = 64  # the catalogue's fork-bomb messages name this limit


def _unsafe_here(entry: dict) -> str:
    """Why ``entry`` must not be graded on this machine, or "" if it may be."""
    missing = {m.name: m.detail for m in probe().missing}
    lacking = [name for name in entry.get("requires", []) if name in missing]
    return "; ".join(f"this machine lacks the {name} ({missing[name]})" for name in lacking)


GRADED = {key: entry for key, entry in CATALOGUE.items() if not _unsafe_here(entry)}


def _file_bytes(entry: dict) -> bytes:
    """The submission file of a catalogue entry."""
    return damaged_file(answered(LAB, entry.get("answers", {})), entry.get("file", []))


def _build_zip(folder: Path) -> Path:
    """The LMS's bulk download: one Canvas-named member per entry (``student`` overrides the
    entry's key as the Canvas id), and the crafted uploads some entries describe."""
    archive = folder / "submissions.zip"
    numbers = {key: number for number, key in enumerate(sorted(GRADED), start=1)}
    with zipfile.ZipFile(archive, "w") as bundle:
        for key, entry in sorted(GRADED.items()):
            number = numbers[key]
            name = entry.get("name", LAB.notebook)
            prefix = f"{entry.get('student', key)}_{1000 + number}_{5000 + number}"
            if entry.get("older_copy"):
                older = damaged_file(answered(LAB), [])
                bundle.writestr(f"{key}_{1000 + number}_{4000 + number}_{name}", older)
            if entry.get("upload") == "nested_zip":
                bundle.writestr(f"{prefix}_{Path(name).stem}.zip", _nested(entry, numbers))
            else:
                bundle.writestr(f"{prefix}_{name}", _file_bytes(entry))
        bundle.writestr("notes_from_the_lms.txt", b"not a notebook")
        bundle.writestr("someone_9999_9999_my_homework.ipynb", b"{}")
    return archive


def _nested(entry: dict, numbers: dict[str, int]) -> bytes:
    """A student's upload that is itself a zip: inside, a blank notebook named as the
    target's submission with a larger submission id, and one for a student who does not
    exist."""
    blank = damaged_file(answered(LAB, {"discounted_cost": "raise NotImplementedError()"}), [])
    target = entry["target"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as inner:
        inner.writestr(f"{target}_{1000 + numbers[target]}_99999_{LAB.notebook}", blank)
        inner.writestr(f"invented_4242_99998_{LAB.notebook}", blank)
    return buffer.getvalue()


def _row_key(key: str) -> str:
    """The student id an entry's row has in grades.csv."""
    entry = CATALOGUE[key]
    return entry["expect"].get("csv_id", entry.get("student", key))


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# Session scope: under pytest-xdist a module fixture is torn down whenever the worker's next
# test comes from another module, and this batch takes minutes to grade again.
@pytest.fixture(scope="session")
def batch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tamper")
    archive = _build_zip(folder)
    out = folder / "out"
    argv = ["grade", "lab00", str(archive), "--out", str(out), "--jobs", "2"]
    argv += ["--cell-timeout", "20", "--notebook-timeout", "180"]
    argv += ["--max-processes", str(MAX_PROCESSES)]
    guarded = [LAYOUT.root / "autograder" / "source", LAYOUT.root / "solutions"]
    before = [_digest(path) for path in guarded]
    printed = _Tee(sys.stdout)
    started = time.monotonic()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    seconds = time.monotonic() - started
    after = [_digest(path) for path in guarded]
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    return {
        "code": code,
        "out": out,
        "rows": rows,
        "argv": argv,
        "guarded": before == after,
        "leftovers": _kernel_account_processes() + _kernel_cgroups(),
        "printed": printed.getvalue(),
        "seconds": seconds,
    }


class _Tee(io.StringIO):
    """Keeps what is printed, and still shows it (a batch of minutes should not be silent)."""

    def __init__(self, shown: io.TextIOBase) -> None:
        super().__init__()
        self.shown = shown

    def write(self, text: str) -> int:
        self.shown.write(text)
        return super().write(text)


def _kernel_account_processes(patience: float = 10.0) -> list[str]:
    """Processes still running as a kernel account (waiting a little for sandboxes that
    are being torn down): "pid command" each."""
    base = probe().uid_base
    if base is None:
        return []
    deadline = time.monotonic() + patience
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                status = (entry / "status").read_text() if entry.name.isdigit() else ""
            except OSError:  # gone meanwhile
                continue
            uid = next((line.split()[1] for line in status.splitlines() if line[:4] == "Uid:"), -1)
            if 0 <= int(uid) - base < 1 << 22:
                found.append(f"{entry.name} {status.splitlines()[0]}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _kernel_cgroups() -> list[str]:
    """The kernels' cgroups of this run still there, with their processes (kernels that
    keep the grader's uid are found only this way)."""
    isolation = probe()
    return [] if isolation.budgets is None else budgets.leftovers(isolation.budgets)


def test_the_machine_can_confine_student_code():
    isolation = probe()
    assert isolation.confined, isolation.report()
    # Only a root grader may lack one, and only where its kernels cannot drop to an account.
    assert [m.name for m in isolation.missing] in ([], ["process-count limit"]), isolation.report()


def test_a_root_grader_limits_processes_or_says_why():
    """Each kernel's processes are counted alone (a cgroup of its own, or an unprivileged
    uid of its own as root); where neither works, the report says why."""
    isolation = probe()
    limit = next(m for m in isolation.mechanisms if m.name == "process-count limit")
    if limit.available:
        assert not isolation.missing, isolation.report()
        assert isolation.budgets is not None or isolation.uid_base is not None, isolation.report()
        return
    assert isolation.uid_base is None and isolation.budgets is None
    words = "could not run as the unprivileged uid" if os.geteuid() == 0 else "no per-kernel budget"
    assert words in limit.detail, limit.detail
    pytest.skip(f"no per-kernel process limit here: {limit.detail}")


@pytest.mark.parametrize("key", sorted(CATALOGUE))
def test_each_submission_gets_its_status_and_score(batch, key):
    entry = CATALOGUE[key]
    if key in NEEDS_SANDBOX and not probe().confined:
        pytest.skip("needs the sandbox")
    if key not in GRADED:
        pytest.skip(f"left out of the batch: {_unsafe_here(entry)}")
    expect = entry["expect"]
    if expect["status"] == "unplaced":
        assert _row_key(key) not in batch["rows"], f"{key} must not have a row"
        return
    row = batch["rows"].get(_row_key(key))
    assert row is not None, f"{key} is missing from grades.csv"
    assert row["status"] == expect["status"], f"{key} ({entry['description']}): {row}"
    if "score" in expect:
        assert float(row["score"]) == expect["score"], f"{key}: {row}"
    else:
        assert row["score"] == "", f"{key}: a failed submission must not show a score"
    if "message" in expect:
        assert re.search(expect["message"], row["message"]), f"{key}: {row['message']!r}"


def test_the_batch_reports_failures_and_lists_unplaced_files(batch):
    # Every file has its status, failed ones included: the grader itself did not fail.
    assert batch["code"] == 0
    expected = {_row_key(k) for k, e in GRADED.items() if e["expect"]["status"] != "unplaced"}
    assert set(batch["rows"]) == expected  # no invented student, nobody missing


# Hours, not minutes, were what the quadratic stalls cost; the whole batch takes about
# three minutes on two cores.
BATCH_SECONDS = 900


def test_the_batch_finishes_within_the_stated_time(batch):
    assert batch["seconds"] < BATCH_SECONDS, f"the batch took {batch['seconds']:.0f} s"


def test_no_control_character_reaches_the_terminal(batch):
    printed = batch["printed"]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", printed)
    assert "\\x1b[2J" in printed  # the hostile name is shown, escaped


def test_no_cell_of_grades_csv_starts_like_a_formula(batch):
    for line in (batch["out"] / "grades.csv").read_text().splitlines()[1:]:
        for cell in next(csv.reader([line])):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), line


def test_an_upload_cannot_replace_another_students_notebook(batch):
    """impersonate's zip held a blank notebook named as victim's, with a larger submission
    id: the victim keeps the notebook they handed in, and full marks."""
    graded = batch["out"] / "course" / "autograded" / "victim" / LAB.assignment / LAB.notebook
    [answer] = [
        cell.source
        for cell in nbformat.read(graded, as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "discounted_cost"
    ]
    assert "raise NotImplementedError" not in answer
    assert float(batch["rows"]["victim"]["score"]) == 4


class _Markup(HTMLParser):
    """The tags and attributes of a page as a browser parses them; the text between them
    (the student's code shown escaped, which may well read "onerror=") is not markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))


def test_feedback_pages_hold_no_live_script(batch):
    for key in ("scriptoutput", "forgedfeedback", "bracketline"):
        markup = _Markup()
        markup.feed((batch["out"] / "feedback" / key / f"{LAB.name}.html").read_text())
        assert markup.tags, key
        for tag, attrs in markup.tags:
            assert tag not in {"script", "iframe", "object", "embed", "base", "form"}, key
            assert not [name for name in attrs if name.startswith("on")], (key, tag, attrs)
            for name in ("href", "src", "action", "formaction"):
                value = re.sub(r"\s", "", attrs.get(name, "")).lower()
                assert not value.startswith(("javascript:", "vbscript:")), (key, tag, attrs)


def test_hidden_inputs_printed_by_student_code_are_not_shown_back(batch):
    page = (batch["out"] / "feedback" / "logsargs" / f"{LAB.name}.html").read_text()
    assert "LEAKED" not in page
    graded = batch["out"] / "course" / "autograded" / "logsargs" / LAB.assignment / LAB.notebook
    assert "LEAKED" not in graded.read_text()


def test_the_journal_records_the_runs_seed(batch):
    lines = (batch["out"] / "journal.jsonl").read_text().splitlines()
    seeds = {json.loads(line)["seed"] for line in lines}
    assert len(seeds) == 1 and isinstance(seeds.pop(), int)


def test_gradebook_agrees_with_grades_csv(batch):
    database = batch["out"] / "course" / "gradebook.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        graded = dict(
            connection.execute(
                "SELECT student.id, SUM(COALESCE(grade.manual_score, grade.auto_score, 0)) "
                "FROM grade JOIN submitted_notebook ON grade.notebook_id = submitted_notebook.id "
                "JOIN submitted_assignment ON submitted_notebook.assignment_id = "
                "submitted_assignment.id JOIN student ON submitted_assignment.student_id = "
                "student.id JOIN grade_cells ON grade.cell_id = grade_cells.id "
                "WHERE grade_cells.cell_type = 'code' GROUP BY student.id"
            ).fetchall()
        )
    for shown, row in batch["rows"].items():
        student = shown.removeprefix("'")  # grades.csv neutralises ids like -2-3
        if row["status"] == "failed":
            assert student not in graded, f"{student}: a failed submission kept a score"
        else:
            assert graded[student] == pytest.approx(float(row["score"])), student


def test_nothing_outside_the_sandbox_changed(batch):
    assert batch["guarded"], "the master notebooks or the solutions changed during grading"


def test_no_kernel_process_outlives_the_batch(batch):
    """The fork bombs' processes, and every kernel's, end with their sandbox."""
    assert batch["leftovers"] == []


def test_feedback_names_the_process_limit_a_fork_bomb_reached(batch):
    if "forkbomb" not in GRADED:
        pytest.skip(f"left out of the batch: {_unsafe_here(CATALOGUE['forkbomb'])}")
    page = (batch["out"] / "feedback" / "forkbomb" / f"{LAB.name}.html").read_text()
    assert f"limit of {MAX_PROCESSES} processes" in page


def test_feedback_shows_no_hidden_test_code(batch):
    page = (batch["out"] / "feedback" / "patchnumpy" / f"{LAB.name}.html").read_text()
    assert "check_discounted_cost" not in page and "BEGIN HIDDEN" not in page
    # The test cells' results, named as the points table names the exercises.
    assert "<h2>Exercise 1: discounted cost: 0 / 2 point(s)</h2>" in page


def test_a_second_run_gives_the_same_grades_without_regrading(batch, capsys):
    first = (batch["out"] / "grades.csv").read_text()
    capsys.readouterr()
    main(batch["argv"])
    printed = capsys.readouterr().out
    assert (batch["out"] / "grades.csv").read_text() == first
    assert "grading 0 submission(s)" in printed


def test_without_the_sandbox_the_file_attacks_would_succeed(request, monkeypatch):
    """The negative control: with confinement switched off (as on a machine without
    bubblewrap), the same attack code does read the gradebook and other students' files,
    so the catalogue's attacks are real and the sandbox is what stops them. The command
    also says so loudly."""
    from mdplab.grading import executor, sandbox

    unconfined = sandbox.Isolation(None, (sandbox.Mechanism("filesystem isolation", False, "off"),))
    monkeypatch.setattr(sandbox, "probe", lambda: unconfined)
    monkeypatch.setattr(executor, "probe", lambda: unconfined)
    from mdplab.grading import batch as batch_module

    monkeypatch.setattr(batch_module, "probe", lambda: unconfined)
    # The attacks walk up from their working folder. From a box in the machine's shared
    # /tmp, that walk races the attacks' own 10 s budget through whatever else /tmp holds
    # (a CI run once lost that race), so the boxes are made next to the submissions and
    # the gradebook: the control then shows what unconfined code can read, not how fast it
    # can search a disk. The folder is short (not pytest's tmp_path) so that the boxes stay
    # in it rather than giving way to /tmp for the sake of their sockets' paths.
    base = Path(tempfile.mkdtemp(prefix="mdplab-nc-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    boxes = base / "boxes"
    boxes.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(boxes))
    assert box_parent() == str(boxes)
    folder = base / "in"
    folder.mkdir()
    for number, key in enumerate(["reference", "readgradebook", "otherstudents"], start=1):
        name = f"{key}_{2000 + number}_{6000 + number}_{LAB.notebook}"
        (folder / name).write_bytes(_file_bytes(CATALOGUE[key]))
    out = base / "out"
    main(["grade", "lab00", str(folder), "--out", str(out), "--jobs", "2", "--cell-timeout", "30"])
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert float(rows["readgradebook"]["score"]) == 4
    assert float(rows["otherstudents"]["score"]) == 4
