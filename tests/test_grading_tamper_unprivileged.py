"""The whole tamper catalogue graded by a NON-ROOT instructor (issue 11).

tests/test_grading_tamper.py grades the catalogue as whoever runs the suite; in CI that is
root. An instructor is rarely root: without root there is no uid per kernel, and each
kernel's budget comes from a delegated cgroup instead. This module grades the same zip as
a throwaway unprivileged user with a delegated cgroup (:mod:`unprivileged`), and every
entry must get the same status, score and message, the honest victims keeping theirs.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
import test_grading_tamper as tamper
import unprivileged
from test_grading_budgets import instructor  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("nbgrader")]


@pytest.fixture(scope="module")
def batch(request):
    # test_grading_budgets' throwaway instructor, with a delegated cgroup.
    user, delegation = request.getfixturevalue("instructor")
    archive = tamper._build_zip(user.workspace)
    archive.chmod(0o644)
    out = user.workspace / "out"
    argv = [str(Path(sys.executable).parent / "mdplab"), "grade", "lab00", str(archive)]
    argv += ["--out", str(out), "--jobs", "2", "--max-processes", str(tamper.MAX_PROCESSES)]
    argv += ["--cell-timeout", "20", "--notebook-timeout", "180"]
    done = unprivileged.run_as(
        user, argv, delegation=delegation, cwd=tamper.LAYOUT.root, timeout=1500
    )
    printed = done.stdout + done.stderr
    rows = {}
    if (out / "grades.csv").exists():
        rows = {r["student_id"]: r for r in csv.DictReader((out / "grades.csv").open())}
    leftovers = unprivileged.wait_until_gone(user.uid)
    return {"code": done.returncode, "printed": printed, "rows": rows, "left": leftovers}


def test_the_batch_ran_as_a_non_root_user_with_per_kernel_budgets(batch):
    # Some entries fail by design; each has its status, so the command succeeds.
    assert batch["code"] == 0, batch["printed"][-3000:]
    assert "[ok] process-count limit: per-kernel cgroup (pids.max)" in batch["printed"]
    assert batch["left"] == [], "a process of the instructor survived the batch"


@pytest.mark.parametrize("key", sorted(tamper.CATALOGUE))
def test_each_entry_gets_its_status_and_score_as_non_root(batch, key):
    entry = tamper.CATALOGUE[key]
    if key not in tamper.GRADED:
        pytest.skip("left out of the batch on this machine")
    expect = entry["expect"]
    if expect["status"] == "unplaced":
        assert tamper._row_key(key) not in batch["rows"]
        return
    row = batch["rows"].get(tamper._row_key(key))
    assert row is not None, f"{key} is missing from grades.csv"
    assert row["status"] == expect["status"], f"{key}: {row}"
    if "score" in expect:
        assert float(row["score"]) == expect["score"], f"{key}: {row}"
    if "message" in expect:
        assert re.search(expect["message"], row["message"]), f"{key}: {row['message']!r}"
