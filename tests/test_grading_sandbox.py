"""The sandbox's accounts: a root grader runs each kernel as an unprivileged uid of its own,
so that RLIMIT_NPROC stops a fork bomb; where that cannot work, the probe says why and
kernels stay root (then only a per-kernel cgroup, tested in test_grading_budgets.py, limits
their processes). These start real sandboxed kernels (seconds, not minutes)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from mdplab.grading import budgets, sandbox
from mdplab.grading.judge import Judge
from mdplab.grading.kernel import Kernel, _open_log
from mdplab.grading.sandbox import Limits, probe

ROOT = os.geteuid() == 0

FORKS = """
import os
read_end, write_end = os.pipe()
children = []
try:
    for _ in range(64):
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
        children.append(pid)
except BlockingIOError:
    pass
os.close(write_end)
for pid in children:
    os.waitpid(pid, 0)
print("forks", len(children))
"""

BOMB = """
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
"""


def _needs_accounts() -> sandbox.Isolation:
    isolation = probe()
    if not ROOT:
        pytest.skip("only a root grader drops kernels to accounts of their own")
    if isolation.uid_base is None:
        limit = next(m for m in isolation.mechanisms if m.name == "process-count limit")
        pytest.skip(f"kernels cannot drop to an account here: {limit.detail}")
    return isolation


def _output(run) -> str:
    return "".join(o.get("text", "") for o in run.outputs)


def test_a_root_kernel_runs_as_its_own_account_under_the_process_limit():
    isolation = _needs_accounts()
    limits = Limits(cell_seconds=20, processes=16)
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as folder:
        box = Path(folder)
        (box / "data").mkdir()
        (box / "data" / "given.txt").write_text("support file")
        kernel = Kernel(isolation, limits, box)
        uid = isolation.uid_base + os.getpid()
        assert kernel.account is not None and kernel.account.uid == uid
        kernel.start()
        try:
            run = kernel.run_cell(
                "import os\nprint(os.getuid(), os.getgid(), os.getgroups(), "
                "open('data/given.txt').read())\nopen('data/written.txt', 'w').write('x')",
                10,
            )
            assert run.status == "ok", run
            assert _output(run).split("\n")[0] == f"{uid} {uid} [] support file"
            # Well below 64: the process limit binds the account (root would fork all 64).
            run = kernel.run_cell(FORKS, 10)
            forks = int(_output(run).split()[-1])
            assert forks < limits.processes, _output(run)
            # The grader's own socket in the box still reaches the kernel.
            kernel.run_cell("def twice(x):\n    return 2 * x", 10)
            outputs, status = Judge(kernel, 10).run("assert twice(21) == 42", 10)
            assert status == "passed", outputs
            # A fork bomb runs into the limit and is stopped with the clock, saying why.
            run = kernel.run_cell(BOMB, 3)
            assert run.status == "timeout"
            assert "limit of 16 processes" in run.message, run.message
        finally:
            kernel.shutdown()
        # The box and what is in it are the account's; only the grader's log is root's.
        for path in [box, box / "data" / "given.txt", box / "data" / "written.txt"]:
            assert path.stat().st_uid == uid, path
        deadline = time.monotonic() + 10
        while kernel.account.tasks() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kernel.account.tasks() == 0, "a process of the kernel outlived its sandbox"
    assert not box.exists(), "root must still clean the kernel's box up"


def _probe_with_python_out_of_reach(monkeypatch) -> sandbox.Isolation:
    """The probe, as if the Python installation lay in a folder only root may enter (a venv
    under /root, say): the account's sandbox cannot start."""
    if not ROOT or sandbox._bwrap_binary() is None:
        pytest.skip("needs a root grader with bubblewrap")
    with tempfile.TemporaryDirectory(prefix="mdplab-private-") as private:
        inner = Path(private) / "python"
        inner.mkdir()
        os.chmod(private, 0o700)
        readable = sandbox._readable_paths()
        monkeypatch.setattr(sandbox, "_readable_paths", lambda: (*readable, inner))
        return sandbox.probe.__wrapped__()


def test_the_probe_falls_back_loudly_where_the_account_cannot_reach_python(monkeypatch):
    """Without a per-kernel cgroup either, the probe reports the process-count limit as
    missing, with bwrap's own words, and keeps kernels root."""
    monkeypatch.setattr(sandbox.cgroups, "discover", lambda: budgets.Unavailable("not here"))
    isolation = _probe_with_python_out_of_reach(monkeypatch)
    limit = next(m for m in isolation.mechanisms if m.name == "process-count limit")
    assert not limit.available
    assert "could not run as the unprivileged uid" in limit.detail, limit.detail
    # bwrap's own words, naming the folder it could not enter (here or the venv's own).
    assert ": Permission denied" in limit.detail, limit.detail
    assert "No per-kernel cgroup either: not here" in limit.detail, limit.detail
    assert isolation.uid_base is None and isolation.budgets is None
    assert isolation.confined, isolation.report()  # root itself still gets the sandbox
    assert isolation.account(os.getpid()) is None
    assert [m.name for m in isolation.missing] == ["process-count limit"]


def test_a_per_kernel_cgroup_limits_root_kernels_that_cannot_drop(monkeypatch):
    """Where this process can make cgroups, kernels that stay root still get a process
    limit of their own (pids.max binds root too), and the report says both."""
    if isinstance(budgets.discover(), budgets.Unavailable):
        pytest.skip("no cgroup this process may make children in")
    isolation = _probe_with_python_out_of_reach(monkeypatch)
    limit = next(m for m in isolation.mechanisms if m.name == "process-count limit")
    assert limit.available, isolation.report()
    assert limit.detail.startswith("per-kernel cgroup (pids.max) at "), limit.detail
    assert "kernels run as root, as the unprivileged uid" in limit.detail, limit.detail
    assert ": Permission denied" in limit.detail, limit.detail
    assert isolation.uid_base is None and isolation.budgets is not None
    assert isolation.missing == []


def test_the_kernel_log_does_not_follow_a_planted_symlink(tmp_path):
    """Student code can write in the box; a symlink at the log's name must not make the
    grader append the kernel's output to a file of the student's choosing, nor a FIFO
    make it wait forever."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "kernel.log").symlink_to(target)
    with _open_log(tmp_path / "kernel.log") as log:
        log.write(b"chatter the student controls")
    assert target.read_text() == "keep me"
    os.mkfifo(tmp_path / "fifo.log")
    with _open_log(tmp_path / "fifo.log") as log:  # must not wait for a reader
        log.write(b"chatter")
    with _open_log(tmp_path / "fresh.log") as log:
        log.write(b"chatter")
    assert (tmp_path / "fresh.log").read_bytes() == b"chatter"
