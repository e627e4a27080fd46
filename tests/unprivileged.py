"""Run a command as a throwaway unprivileged user, the way a non-root instructor grades.

Only root can set this up, and it undoes all of it afterwards:

- :func:`unprivileged_user`: a system user made with ``useradd`` (no home, no shell), with a
  workspace of its own under /tmp for HOME, TMPDIR and what it writes; ``userdel`` and the
  workspace's removal afterwards, after killing any process of it that is left.
- :func:`delegated_cgroup`: a cgroup folder delegated to that user, as systemd's
  ``Delegate=`` would: on cgroup v1 (the hybrid layout of CI's machines) a child of this
  process's cgroup in the pids hierarchy and another in the memory hierarchy; on cgroup v2
  a folder under the root cgroup with pids and memory. The folder and the files through
  which the user makes children and moves processes are chowned to it; its own pids.max
  (a cap for the user as a whole, like systemd's TasksMax=) stays root's. :func:`run_as`
  starts the command inside it, so that the grader finds it as its own cgroup, exactly as
  under ``systemd-run --user --scope -p Delegate=yes``.
- :func:`run_as`: the command as the user, in the delegated cgroup, with a clean
  environment. The project's virtual environment is built from a Python that may lie under
  a folder only root may enter: here /root/.pyenv (/root is mode 700), and CI's fresh clone
  may itself lie under /root. Measured here: the user cannot even start the venv's python
  ("Permission denied"). Other ways and why not:

  * ``chmod o+x`` on the ancestors for the test's duration would change what every process
    on the machine sees, among them the probes of root tests running in parallel (the uid
    drop would start to work for them mid-run), and would stay changed if the test process
    were killed;
  * a second venv from Debian's /usr/bin/python3 (3.11.2) with a .pth file to the
    project's site-packages does import the project's compiled wheels (cp311 wheels are
    ABI-stable across 3.11 patch releases; checked with numpy, scipy, pyzmq), but the
    sandbox's bubblewrap binds only the interpreter's own prefixes, and the instructor's
    Python would not be the one under test.

  So the command runs in a private mount namespace (``unshare --mount``, made as root, so
  nothing outside it changes) in which each such folder is covered by an empty tmpfs that
  shows only the needed trees, bind-mounted at their own paths: the same paths, the same
  interpreter, nothing else of /root. The namespace ends with its last process; the user's
  bubblewrap builds each kernel's sandbox from it as it would from the real tree.
- :func:`command_as`: that command line, for a caller that starts it in the background and
  stops it (a JupyterLab server, in tests/test_jupyterlab_browser.py).

The helpers use util-linux (``unshare``, ``mount``, ``setpriv``) and ``useradd`` from Debian's
passwd, all part of a minimal Debian.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mdplab.grading import budgets, sandbox
from mdplab.grading.budgets import Budget

TOOLS = ("useradd", "userdel", "unshare", "mount", "setpriv")
USER_CAP = 2048  # pids.max of the delegated folder: the user's processes together


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    workspace: Path  # the user's own folder: HOME, TMPDIR and what the command writes


@dataclass(frozen=True)
class Delegation:
    """The folders delegated to a user: v1's pids (then memory) folder, or one v2 folder."""

    folders: tuple[Path, ...]
    version: int


def unavailable() -> str:
    """Why this machine cannot run commands as a throwaway user here, or ""."""
    if os.geteuid() != 0:
        return "only root can make a throwaway user"
    lacking = [tool for tool in TOOLS if shutil.which(tool) is None]
    if lacking:
        return f"missing {', '.join(lacking)}"
    if _cgroup_parent() is None:
        return "no cgroup hierarchy with pids that root may delegate from"
    return ""


# ---------------------------------------------------------------------- the user
@contextmanager
def unprivileged_user(prefix: str = "mdplab-t") -> Iterator[User]:
    """A new system user with a workspace under /tmp; gone afterwards, with its processes."""
    name = f"{prefix}{secrets.token_hex(3)}"
    command = ["useradd", "--system", "--no-create-home", "--user-group"]
    command += ["--shell", "/usr/sbin/nologin", "--home-dir", "/nonexistent", name]
    for attempt in range(10):  # another useradd may hold /etc/passwd's lock for a moment
        made = subprocess.run(command, capture_output=True, text=True)
        if made.returncode != 10:  # 10: "can't lock" the passwd file
            break
        time.sleep(0.2 * (attempt + 1))
    if made.returncode != 0:
        raise RuntimeError(f"useradd failed: {made.stderr.strip()}")
    entry = pwd.getpwnam(name)
    workspace = Path(tempfile.mkdtemp(prefix="mdplab-unpriv-", dir="/tmp"))
    try:
        for folder in (workspace, workspace / "home", workspace / "tmp"):
            folder.mkdir(exist_ok=True)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o700)
        yield User(name, entry.pw_uid, entry.pw_gid, workspace)
    finally:
        kill_all(entry.pw_uid)
        shutil.rmtree(workspace, ignore_errors=True)
        subprocess.run(["userdel", name], capture_output=True)


def processes_of(uid: int) -> list[str]:
    """The processes running as ``uid`` (real uid): "pid name" each."""
    return [f"{pid} {name}" for pid, name, _ in sandbox.processes_of(uid)]


def wait_until_gone(uid: int, patience: float = 10.0) -> list[str]:
    """The processes of ``uid`` that are still there after up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_all(uid: int) -> None:
    """SIGKILL every process of ``uid``, until none is left (a few seconds at most)."""
    for _ in range(50):
        left = processes_of(uid)
        if not left:
            return
        for line in left:
            with contextlib.suppress(OSError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        time.sleep(0.1)


# ---------------------------------------------------------------------- the cgroup
def _cgroup_parent() -> tuple[int, list[Path]] | None:
    """Where root can make a folder to delegate: (2, [a v2 folder whose children get pids])
    or (1, [this process's v1 pids folder, and its memory folder if any]); None if nowhere."""
    table, own = budgets.mounts(), budgets.memberships()
    for mount in table:
        if mount.version == 2:
            root = mount.folder(mount.root)
            enabled = (root / "cgroup.subtree_control").read_text().split() if root else []
            if root is not None and "pids" in enabled:
                return 2, [root]
    folders = []
    for controller in ("pids", "memory"):
        for mount in table:
            if mount.version == 1 and controller in mount.controllers and controller in own:
                folder = mount.folder(own[controller])
                if folder is not None and folder.is_dir():
                    folders.append(folder)
                    break
        if not folders:
            return None
    return 1, folders


@contextmanager
def delegated_cgroup(user: User) -> Iterator[Delegation]:
    """A cgroup folder (one per v1 hierarchy) that ``user`` may make children in."""
    found = _cgroup_parent()
    if found is None:
        raise RuntimeError("no cgroup hierarchy to delegate from")
    version, parents = found
    name = f"mdplab-delegated-{user.name}"
    made: list[Path] = []
    try:
        for parent in parents:
            folder = parent / name
            folder.mkdir()
            made.append(folder)
            if (folder / "pids.max").exists():
                (folder / "pids.max").write_text(str(USER_CAP))
            # What systemd chowns for Delegate=: the folder and the files through which the
            # user makes children (v2: enables controllers for them) and moves processes.
            if version == 1:
                delegated = ["cgroup.procs", "tasks"]
            else:
                delegated = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
            for path in [folder, *(folder / file for file in delegated)]:
                os.chown(path, user.uid, user.gid)
        yield Delegation(tuple(made), version)
    finally:
        kill_all(user.uid)
        for folder in reversed(made):
            remove_tree(folder)


def remove_tree(folder: Path) -> bool:
    """Remove a cgroup folder and every cgroup below it, killing what runs there."""
    if not folder.exists():
        return True
    children = [p for p in folder.iterdir() if p.is_dir()]
    done = all([remove_tree(child) for child in children])
    return Budget((folder,), 1).remove(patience=10) and done


def cgroups_below(delegation: Delegation) -> list[str]:
    """The cgroups under the delegated folders (the grader's leaf on v2 aside)."""
    found = []
    for folder in delegation.folders:
        for child in sorted(p for p in folder.rglob("*") if p.is_dir()):
            if child.name != budgets.GRADER_LEAF:
                found.append(str(child))
    return found


# ---------------------------------------------------------------------- running
def _traversable(path: Path, user: User) -> bool:
    info = path.stat()
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == user.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def needed_paths() -> list[Path]:
    """What a grader needs to read: this repository and the Python running the tests."""
    paths = {Path(__file__).resolve().parents[1]}
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix):
        paths.add(Path(prefix).resolve())
    paths.add(Path(sys.executable).resolve().parent.parent)
    return sorted(paths)


def _walls(paths: Iterable[Path], user: User) -> dict[Path, list[Path]]:
    """For each folder that the user cannot pass through on the way to one of ``paths``
    (the highest such one), the needed paths below it."""
    walls: dict[Path, list[Path]] = {}
    for path in paths:
        for ancestor in reversed(path.parents):  # from / downwards
            if ancestor != Path("/") and not _traversable(ancestor, user):
                walls.setdefault(ancestor, []).append(path)
                break
        else:
            continue
        if not _traversable(path, user):
            raise RuntimeError(f"{path} itself is closed to other users: cannot expose it")
    return walls


def _script(user: User, delegation: Delegation | None, walls: dict, stage: Path) -> str:
    """The shell that runs as root in the new mount namespace, then becomes the user."""
    q = shlex.quote
    lines = ["set -eu"]
    for folder in delegation.folders if delegation else ():
        lines.append(f"echo $$ > {q(str(folder / 'cgroup.procs'))}")
    for number, (wall, inner) in enumerate(sorted(walls.items())):
        staged = stage / str(number)
        staged.mkdir()
        lines.append(f"mount --rbind {q(str(wall))} {q(str(staged))}")
        lines.append(f"mount -t tmpfs -o mode=0755 mdplab-expose {q(str(wall))}")
        for path in sorted(inner):
            if any(path != other and path.is_relative_to(other) for other in inner):
                continue  # inside another needed path: bound with it
            below = path.relative_to(wall)
            lines.append(f"mkdir -p {q(str(path))}")
            lines.append(f"mount --rbind {q(str(staged / below))} {q(str(path))}")
    lines.append(f"exec setpriv --reuid={user.uid} --regid={user.gid} --clear-groups -- " + '"$@"')
    return "\n".join(lines)


def environment(user: User, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the user's command."""
    env = {
        "HOME": str(user.workspace / "home"),
        "TMPDIR": str(user.workspace / "tmp"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "USER": user.name,
        "LOGNAME": user.name,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return env | dict(extra or {})


def run_as(
    user: User,
    argv: list[str],
    *,
    delegation: Delegation | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``argv`` run as ``user`` (inside ``delegation``'s cgroup when given) with the
    repository and the test's Python readable; its output, which is also checked for the
    user's preflight failures by the caller."""
    with command_as(user, argv, delegation=delegation, env=env) as command:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or user.workspace,
            stdin=subprocess.DEVNULL,
        )


@contextmanager
def command_as(
    user: User,
    argv: list[str],
    *,
    delegation: Delegation | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[str]]:
    """The command line that :func:`run_as` runs, for a caller that starts it itself (a
    server, in the background); it must have ended when the block does. The command execs
    ``argv`` in the end: its process is the one the caller started."""
    stage = Path(tempfile.mkdtemp(prefix="mdplab-stage-", dir="/tmp"))
    try:
        script = _script(user, delegation, _walls(needed_paths(), user), stage)
        variables = [f"{key}={value}" for key, value in environment(user, env).items()]
        command = ["unshare", "--mount", "--propagation", "private", "--"]
        yield [*command, "sh", "-c", script, "sh", "env", "-i", *variables, *argv]
    finally:
        for staged in stage.iterdir():
            with contextlib.suppress(OSError):
                staged.rmdir()
        with contextlib.suppress(OSError):
            stage.rmdir()
