"""The suite relies on ``--dist loadgroup`` (``make test``) to keep the tests marked
``xdist_group("nbgrader")`` on one worker, where the tamper batch is graded once. pytest 9.2
made xdist drop the groups without a word (pytest-dev/pytest-xdist#1386); this catches it."""

from __future__ import annotations

import re
import subprocess
import sys

GROUPED = """\
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    pass
"""


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_free.py").write_text("def test_free():\n    pass\n")
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v"]
    run = subprocess.run(
        [*command, "-p", "no:cacheprovider", "-o", "addopts=", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers = re.findall(r"\[(gw\d)\].*PASSED .*test_grouped", run.stdout)
    assert len(workers) == 6, run.stdout
    assert len(set(workers)) == 1, run.stdout
