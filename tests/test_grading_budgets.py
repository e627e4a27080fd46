"""Per-kernel budgets of processes and memory (:mod:`mdplab.grading.budgets`).

Issue 11, finding 2: a non-root instructor's kernels all share the instructor's
RLIMIT_NPROC, so one kernel holding many sleeping processes made honest students fail with
"the kernel did not start". Each kernel now gets a cgroup of its own (pids.max, memory)
where this process may make cgroups. These tests check

- the discovery's decisions on fake cgroup trees (cgroup v2 delegated scopes, v1, the
  variable), which run anywhere;
- on this machine's real cgroups: a budget holds a fork bomb, its memory limit is set, and
  removing it ends what was left inside; a root kernel in its cgroup is stopped at its
  process limit, saying why; the start-up report names the mechanism;
- as a throwaway unprivileged user given a delegated cgroup (:mod:`unprivileged`): the
  report, one kernel at its limit leaving room for another (and, with the cgroups switched
  off, the finding itself: the other kernel does not start), and a whole ``mdplab grade``
  batch with a process spawner beside two honest submissions.

The unprivileged tests need root to set up. In CI (``CI=true``), run as root, they must
run: a missing piece fails them rather than skipping them.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest
import unprivileged
from course_helpers import LAYOUT, answered
from test_grading_sandbox import BOMB

from mdplab.course.damage import damaged_file
from mdplab.grading import budgets, sandbox
from mdplab.grading.budgets import Budgets, Mount, Unavailable, discover
from mdplab.grading.kernel import Kernel
from mdplab.grading.sandbox import Isolation, Limits, probe

ROOT = os.geteuid() == 0
IN_CI = os.environ.get("CI", "").lower() == "true"
MiB = 1024 * 1024


def _skip_or_fail(reason: str) -> None:
    """Skip where this machine cannot run a test; in CI as root, fail instead."""
    if IN_CI and ROOT:
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def _real_budgets() -> Budgets:
    found = discover()
    if isinstance(found, Unavailable):
        _skip_or_fail(f"no cgroup this process may make children in: {found.reason}")
    return found


# ---------------------------------------------------------------- parsing, on text
HYBRID_MOUNTINFO = """\
26 1 0:24 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw
30 26 0:28 / /sys/fs/cgroup/pids rw,nosuid shared:9 - cgroup cgroup rw,pids
31 26 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
32 26 0:30 / /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
33 1 0:31 / /mnt/with\\040space rw - cgroup2 none rw
"""
HYBRID_CGROUP = "8:pids:/user.slice\n4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/\n"


def test_mountinfo_and_proc_cgroup_are_read():
    table = budgets.mounts(HYBRID_MOUNTINFO)
    assert [(str(m.point), m.version) for m in table] == [
        ("/sys/fs/cgroup/unified", 2),
        ("/sys/fs/cgroup/pids", 1),
        ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/memory", 1),
        ("/mnt/with space", 2),
    ]
    assert table[2].controllers >= {"cpu", "cpuacct"}
    own = budgets.memberships(HYBRID_CGROUP)
    assert own == {
        "pids": "/user.slice",
        "memory": "/a/b",
        "cpu": "/",
        "cpuacct": "/",
        "name=systemd": "/x",
        "": "/",
    }


def test_a_mount_of_a_subtree_shows_only_that_subtree():
    """A container sees its own cgroup at the mount point (mountinfo's root field)."""
    mount = Mount(Path("/sys/fs/cgroup"), "/docker/abc", 2)
    assert mount.folder("/docker/abc") == Path("/sys/fs/cgroup")
    assert mount.folder("/docker/abc/kernel") == Path("/sys/fs/cgroup/kernel")
    assert mount.folder("/docker/abcdef") is None
    assert mount.folder("/") is None
    assert Mount(Path("/c"), "/", 2).folder("/a/b") == Path("/c/a/b")


# ---------------------------------------------------------------- decisions, on fake trees
def _v2_tree(tmp_path: Path, controllers: str = "memory pids", procs: str = "") -> Path:
    """A fake cgroup2 mount with this process in ``/scope``; returns the scope folder."""
    root = tmp_path / "cg"
    scope = root / "scope"
    scope.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    (scope / "cgroup.controllers").write_text(controllers + "\n")
    (scope / "cgroup.subtree_control").write_text("\n")
    (scope / "cgroup.procs").write_text(procs or f"{os.getpid()}\n")
    (root / "cgroup.procs").write_text("")
    return scope


def _v2_discover(tmp_path: Path, path: str = "/scope", environ=None):
    mountinfo = f"40 1 0:40 / {tmp_path / 'cg'} rw - cgroup2 cgroup2 rw\n"
    return discover(environ or {}, f"0::{path}\n", mountinfo)


def test_a_delegated_v2_scope_gives_each_kernel_pids_and_memory(tmp_path):
    scope = _v2_tree(tmp_path)
    found = _v2_discover(tmp_path)
    assert isinstance(found, Budgets), found
    assert found.version == 2 and found.memory
    assert [p.folder for p in found.places] == [scope]
    assert set((scope / "cgroup.subtree_control").read_text().split()) == {"+memory", "+pids"}
    assert found.describe() == (
        f"per-kernel cgroup (pids.max) at {scope} (cgroup v2, this process's own cgroup), "
        "with memory.max"
    )


def test_in_a_busy_v2_scope_the_grader_moves_only_itself_into_a_leaf(tmp_path, monkeypatch):
    """cgroup v2 refuses controllers for the children of a cgroup that holds processes
    (EBUSY). The grader then moves itself into a leaf, where it is the only process."""
    scope = _v2_tree(tmp_path)
    writes = []
    real_write = budgets._write

    def busy_once(path: Path, text: str) -> None:
        writes.append((path.relative_to(scope).as_posix(), text))
        if path.name == "cgroup.subtree_control" and len(writes) == 1:
            raise OSError(errno.EBUSY, "Device or resource busy")
        if path.exists():  # a real cgroup folder comes with its files; the fake leaf not
            real_write(path, text)

    monkeypatch.setattr(budgets, "_write", busy_once)
    found = _v2_discover(tmp_path)
    assert isinstance(found, Budgets), found
    assert writes == [
        ("cgroup.subtree_control", "+memory +pids"),
        (f"{budgets.GRADER_LEAF}/cgroup.procs", str(os.getpid())),
        ("cgroup.subtree_control", "+memory +pids"),
    ]
    # A later discovery from inside the leaf (a worker, a second probe) finds the scope.
    (scope / "cgroup.subtree_control").write_text("memory pids\n")
    again = _v2_discover(tmp_path, f"/scope/{budgets.GRADER_LEAF}")
    assert isinstance(again, Budgets) and again.places[0].folder == scope, again


def test_a_v2_cgroup_shared_with_other_processes_is_left_alone(tmp_path, monkeypatch):
    """A terminal's scope holds the shell too: the grader must not move it, and says how
    to get a cgroup of its own."""
    _v2_tree(tmp_path, procs=f"{os.getpid()}\n1\n")

    def busy(path: Path, text: str) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(budgets, "_write", busy)
    found = _v2_discover(tmp_path)
    assert isinstance(found, Unavailable)
    assert "holds 1 other process" in found.reason, found.reason
    assert "systemd-run --user --scope -p Delegate=yes" in found.reason, found.reason


def test_v2_without_the_pids_controller_or_not_delegated_says_why(tmp_path, monkeypatch):
    _v2_tree(tmp_path, controllers="cpu")
    found = _v2_discover(tmp_path)
    assert isinstance(found, Unavailable)
    assert "offers no pids controller (cgroup.controllers: cpu)" in found.reason, found.reason
    _v2_tree(tmp_path / "other")
    monkeypatch.setattr(budgets, "_writable", lambda folder: False)
    found = _v2_discover(tmp_path / "other")
    assert isinstance(found, Unavailable)
    assert f"is not delegated to uid {os.geteuid()}" in found.reason, found.reason


def _v1_tree(tmp_path: Path) -> tuple[str, str]:
    """Fake v1 pids and memory hierarchies, and the unified one without controllers: the
    hybrid layout of CI's machines. Returns (mountinfo, /proc/self/cgroup)."""
    for folder in ("pids/user.slice", "memory/a/b", "unified"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "unified" / "cgroup.controllers").write_text("\n")
    mountinfo = (
        f"27 26 0:25 / {tmp_path}/unified rw - cgroup2 cgroup2 rw\n"
        f"30 26 0:28 / {tmp_path}/pids rw - cgroup cgroup rw,pids\n"
        f"32 26 0:30 / {tmp_path}/memory rw - cgroup cgroup rw,memory\n"
    )
    return mountinfo, HYBRID_CGROUP


def test_on_the_hybrid_layout_cgroup_v1_is_used_and_v2_says_why_not(tmp_path, monkeypatch):
    mountinfo, own = _v1_tree(tmp_path)
    found = discover({}, own, mountinfo)
    assert isinstance(found, Budgets), found
    assert [(p.folder, p.version) for p in found.places] == [
        (tmp_path / "pids/user.slice", 1),
        (tmp_path / "memory/a/b", 1),
    ]
    assert found.describe() == (
        f"per-kernel cgroup (pids.max) at {tmp_path}/pids/user.slice (cgroup v1, this "
        f"process's own cgroup), with memory.limit_in_bytes at {tmp_path}/memory/a/b"
    )
    monkeypatch.setattr(budgets, "_writable", lambda folder: False)
    found = discover({}, own, mountinfo)
    assert isinstance(found, Unavailable)
    assert f"cgroup v2: {tmp_path}/unified offers no pids controller" in found.reason
    assert f"cgroup v1: {tmp_path}/pids/user.slice is not delegated to uid" in found.reason


def test_the_variable_names_delegated_folders_or_switches_budgets_off(tmp_path):
    mountinfo, own = _v1_tree(tmp_path)
    (tmp_path / "pids/given").mkdir()
    (tmp_path / "memory/given").mkdir()
    named = f"{tmp_path}/pids/given{os.pathsep}{tmp_path}/memory/given"
    found = discover({budgets.VARIABLE: named}, own, mountinfo)
    assert isinstance(found, Budgets), found
    assert [p.folder for p in found.places] == [tmp_path / "pids/given", tmp_path / "memory/given"]
    assert "from MDPLAB_CGROUP" in found.describe()
    found = discover({budgets.VARIABLE: str(tmp_path / "memory/given")}, own, mountinfo)
    assert isinstance(found, Unavailable) and "names no folder of the pids" in found.reason
    found = discover({budgets.VARIABLE: str(tmp_path)}, own, mountinfo)
    assert isinstance(found, Unavailable) and "not in a mounted cgroup" in found.reason
    found = discover({budgets.VARIABLE: "off"}, own, mountinfo)
    assert found == Unavailable("switched off (MDPLAB_CGROUP=off)")


def test_a_non_root_grader_without_a_cgroup_reports_the_limit_missing(monkeypatch):
    """Shared RLIMIT_NPROC is no per-kernel limit: the report says so, and how to get one."""
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox.cgroups, "discover", lambda: Unavailable("none here"))
    limit, base, found = sandbox._process_count_limit(Isolation(None, ()))
    assert not limit.available and base is None and found is None
    assert limit.detail.startswith("no per-kernel budget: RLIMIT_NPROC counts all processes")
    assert "No per-kernel cgroup: none here." in limit.detail
    assert "systemd-run --user --scope -p Delegate=yes mdplab grade" in limit.detail


# ---------------------------------------------------------------- this machine's cgroups
HOLDER = """
import os, sys, time
read_end, write_end = os.pipe()
count = 0
try:
    for _ in range(64):
        if os.fork() == 0:
            os.close(write_end)
            os.read(read_end, 1)
            os._exit(0)
        count += 1
except BlockingIOError:
    pass
print(count, flush=True)
time.sleep(600)
"""


def test_a_budget_holds_a_fork_bomb_and_takes_its_processes_along():
    found = _real_budgets()
    budget = found.create(8, 256 * MiB)
    try:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=budget.join,
        )
        forks = int(holder.stdout.readline())
        assert 1 <= forks < 8, forks
        assert budget.processes() == forks + 1
        assert holder.pid in budget.members()
        if found.memory:
            memory = budget.folders[-1]
            limit = "memory.max" if found.version == 2 else "memory.limit_in_bytes"
            assert int((memory / limit).read_text()) == 256 * MiB
        assert budgets.leftovers(found) != []
    finally:
        removed = budget.remove()
    assert removed
    assert holder.wait(timeout=10) == -9  # killed with everything it started
    assert not any(folder.exists() for folder in budget.folders)
    assert budgets.leftovers(found) == []


def test_cgroups_left_by_a_killed_grading_process_are_swept():
    """A worker killed past the batch's hard limit cannot remove its kernel's cgroup; the
    next probe removes it, and never one whose maker is alive or that holds a process."""
    found = _real_budgets()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **TEXT)
    dead = int(gone.stdout)
    stale = [place.folder / f"{budgets.KERNEL_PREFIX}1-{dead}-0badc0de" for place in found.places]
    live = found.create(8, None)
    try:
        for folder in stale:
            folder.mkdir()
        assert set(found.sweep()) == set(stale)
        assert not any(folder.exists() for folder in stale)
        assert all(folder.exists() for folder in live.folders)
    finally:
        live.remove()
        for folder in stale:
            if folder.exists():
                folder.rmdir()


TEXT = {"capture_output": True, "text": True, "check": True}


def test_the_start_up_report_names_the_per_kernel_cgroup():
    found = _real_budgets()
    isolation = probe()
    assert isolation.budgets is not None, isolation.report()
    limit = next(m for m in isolation.mechanisms if m.name == "process-count limit")
    assert limit.available, isolation.report()
    where = found.places[0].folder
    line = f"[ok] process-count limit: per-kernel cgroup (pids.max) at {where}"
    assert line in isolation.report(), isolation.report()
    assert "process-count limit" not in [m.name for m in isolation.missing]


def test_a_kernel_in_its_cgroup_stops_at_its_process_limit_and_says_why():
    isolation = probe()
    if isolation.budgets is None:
        _skip_or_fail(f"no per-kernel cgroup here: {isolation.report()}")
    limits = Limits(cell_seconds=20, processes=16)
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as folder:
        kernel = Kernel(isolation, limits, Path(folder))
        kernel.start()
        budget = kernel.budget
        try:
            assert budget is not None and budget.members(), "the kernel is not in its cgroup"
            run = kernel.run_cell(HOLDER.replace("time.sleep(600)", ""), 10)
            assert run.status == "ok", run
            forks = int("".join(o.get("text", "") for o in run.outputs).split()[-1])
            assert forks < limits.processes, forks
            run = kernel.run_cell(BOMB, 3)
            assert run.status == "timeout"
            assert "limit of 16 processes" in run.message, run.message
        finally:
            kernel.shutdown()
    assert kernel.budget is None
    assert not any(folder.exists() for folder in budget.folders), "the cgroup outlived it"
    assert budgets.leftovers(isolation.budgets) == []


# ---------------------------------------------------------------- as an unprivileged user
@pytest.fixture(scope="module")
def instructor():
    """A throwaway non-root instructor with a delegated cgroup."""
    reason = unprivileged.unavailable()
    if reason:
        _skip_or_fail(f"cannot act as an unprivileged user here: {reason}")
    with (
        unprivileged.unprivileged_user() as user,
        unprivileged.delegated_cgroup(user) as delegation,
    ):
        check = _as(user, delegation, ["-c", "import ipykernel, mdplab, nbgrader, numpy"])
        assert check.returncode == 0, f"the user cannot run the project's Python: {check.stderr}"
        yield user, delegation


def _as(user, delegation, arguments: list[str], env=None, timeout: float = 300):
    return unprivileged.run_as(
        user,
        [sys.executable, *arguments],
        delegation=delegation,
        env=env,
        cwd=LAYOUT.root,
        timeout=timeout,
    )


def _no_process_survives(user, delegation) -> None:
    assert unprivileged.wait_until_gone(user.uid) == [], "a process of the user survived"
    assert unprivileged.cgroups_below(delegation) == [], "a kernel's cgroup survived"


REPORT = "from mdplab.grading.sandbox import probe; print(probe().report())"


def test_a_non_root_grader_reports_its_delegated_cgroup(instructor):
    user, delegation = instructor
    done = _as(user, delegation, ["-c", REPORT])
    assert done.returncode == 0, done.stderr
    where = delegation.folders[0]
    assert f"[ok] process-count limit: per-kernel cgroup (pids.max) at {where}" in done.stdout
    off = _as(user, delegation, ["-c", REPORT], env={budgets.VARIABLE: "off"})
    assert off.returncode == 0, off.stderr
    assert "[MISSING] process-count limit: no per-kernel budget" in off.stdout, off.stdout
    assert "switched off (MDPLAB_CGROUP=off)" in off.stdout
    _no_process_survives(user, delegation)


# A kernel that starts sleeping processes until it cannot, keeps them, and reports how
# many; then a second kernel starts and runs a cell. Prints one JSON line.
TWO_KERNELS = textwrap.dedent(
    '''
    import json, tempfile
    from pathlib import Path
    from mdplab.grading.kernel import Kernel
    from mdplab.grading.sandbox import Limits, probe

    SPAWN = """
    import subprocess
    held = []
    while True:
        try:
            held.append(subprocess.Popen(["sleep", "600"]))
        except OSError:
            break
    print(len(held))
    """

    def text(run):
        return "".join(o.get("text", "") for o in run.outputs).strip()

    isolation = probe()
    limits = Limits(cell_seconds=30, processes=64)
    result = {"cgroups": isolation.budgets is not None}
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as one, \\
            tempfile.TemporaryDirectory(prefix="mdplab-box-") as two:
        hog = Kernel(isolation, limits, Path(one))
        hog.start()
        try:
            run = hog.run_cell(SPAWN, 30)
            result["hog"] = [run.status, text(run), hog._processes()]
            honest = Kernel(isolation, limits, Path(two))
            try:
                honest.start()
                run = honest.run_cell("print(6 * 7)", 30)
                result["honest"] = [run.status, text(run)]
            except BaseException as error:
                result["honest"] = ["not started", str(error)]
            finally:
                honest.shutdown()
        finally:
            hog.shutdown()
    print(json.dumps(result))
    '''
)


def _two_kernels(user, delegation, env=None) -> dict:
    done = _as(user, delegation, ["-c", TWO_KERNELS], env=env, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
def test_one_kernel_at_its_limit_leaves_room_for_another(instructor):
    user, delegation = instructor
    result = _two_kernels(user, delegation)
    assert result["cgroups"], result
    status, held, counted = result["hog"]
    assert status == "ok" and 40 <= int(held) < 64, result  # it ran into its own limit
    assert counted is not None and counted >= 0.9 * 64, result  # and the kernel knows it
    assert result["honest"] == ["ok", "42"], result
    _no_process_survives(user, delegation)


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
def test_without_cgroups_the_shared_limit_starves_the_other_kernel(instructor):
    """The negative control, issue 11's finding 2 itself: with the cgroups switched off,
    RLIMIT_NPROC counts the user's processes together, and the second kernel cannot start
    while the first holds them."""
    user, delegation = instructor
    result = _two_kernels(user, delegation, env={budgets.VARIABLE: "off"})
    assert not result["cgroups"], result
    status, held, _ = result["hog"]
    assert status == "ok" and int(held) < 64, result
    assert result["honest"][0] == "not started", result
    assert "the kernel did not start" in result["honest"][1], result
    _no_process_survives(user, delegation)


LAB = LAYOUT.lab("lab00")
CATALOGUE = tomllib.loads((LAYOUT.root / "tests/catalogue/tamper_lab00.toml").read_text())["entry"]
# The spawner sorts first, so that it is graded while both honest submissions are.
BATCH = {
    "aaspawner": CATALOGUE["spawnbomb"]["answers"],
    "honestone": {},
    "honesttwo": {},
}


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
def test_a_process_spawner_costs_the_honest_submissions_nothing(instructor):
    """``mdplab grade`` as a non-root instructor: one submission's function starts sleeping
    processes until it cannot and keeps them; the two honest ones are graded in full."""
    user, delegation = instructor
    archive = user.workspace / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for number, (student, answers) in enumerate(BATCH.items(), start=1):
            notebook = damaged_file(answered(LAB, answers), [])
            bundle.writestr(f"{student}_{1000 + number}_{5000 + number}_{LAB.notebook}", notebook)
    archive.chmod(0o644)
    out = user.workspace / "out"
    argv = [str(Path(sys.executable).parent / "mdplab"), "grade", "lab00", str(archive)]
    argv += ["--out", str(out), "--jobs", "2", "--max-processes", "64"]
    argv += ["--cell-timeout", "20", "--notebook-timeout", "180"]
    done = unprivileged.run_as(user, argv, delegation=delegation, cwd=LAYOUT.root, timeout=600)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    where = delegation.folders[0]
    assert f"[ok] process-count limit: per-kernel cgroup (pids.max) at {where}" in printed
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == set(BATCH), printed
    for honest in ("honestone", "honesttwo"):
        assert rows[honest]["status"] == "graded", rows[honest]
        # Every autograded point (lab00's fifth point is graded by hand).
        assert float(rows[honest]["score"]) == 4, rows[honest]
    spawner, expect = rows["aaspawner"], CATALOGUE["spawnbomb"]["expect"]
    assert spawner["status"] == expect["status"] == "partly graded", spawner
    assert float(spawner["score"]) == expect["score"] == 2, spawner
    assert re.search(expect["message"], spawner["message"]), spawner["message"]
    print(printed)  # the user's start-up report and progress, for -s
    _no_process_survives(user, delegation)
