"""Warm kernels: IPython kernels forked from a process that has already imported the heavy
modules, for the catalogue's plain runs (:func:`mdplab.course.check.check_answers`).

A cold kernel spends about two seconds before its first cell has done anything: starting
Python and ipykernel, then importing numpy, matplotlib, scipy and the lab's checks. The
catalogue test runs hundreds of notebooks, each in a new kernel. A warm kernel is a fork of
a *fork server* that has done those imports once; it starts in a fraction of that (a
notebook that imports numpy, pyplot and lab04's checks: 2.0 s cold, 0.6 s warm; see
``benchmarks/bench_warm_kernel.py``).

How a warm kernel comes about:

- :func:`fork_server` starts the server (``python -m mdplab.course.warm_kernel ADDRESS``)
  on first use, one per process that runs notebooks (one per pytest-xdist worker), and
  stops it at interpreter exit. The server imports :data:`PRELOAD` and every
  ``mdplab.checks`` module, then waits on the Unix socket ``ADDRESS``.
- :class:`WarmKernelManager` replaces the kernel command ``python -m ipykernel_launcher -f
  ...`` by ``python -I -S warm_launcher.py ADDRESS -- python -m ipykernel_launcher -f ...``.
  The launcher (:mod:`mdplab.course.warm_launcher`) imports next to nothing. It sends the
  server its stdin/stdout/stderr (SCM_RIGHTS), working folder, environment and the cold
  command, and stands in for the kernel: same lifetime, same exit status, signals relayed.
  When the server is gone, slow or declines, the launcher execs the cold command instead.
- For each launcher the server forks a *warden*, which checks the request, waits for the
  launcher's "go", forks the kernel and watches both: when the kernel ends it reports the
  status; when the launcher's end of the socket closes (jupyter_client killed it) it kills
  the kernel's process group.
- The kernel process leads a session of its own, as a cold kernel does (jupyter_client
  starts kernels with ``start_new_session``), dies with its warden (``PR_SET_PDEATHSIG``),
  takes the launcher's stdio, working folder and environment (``os.environ`` replaced
  whole), the server's initial signal dispositions and mask, ``sys.argv`` and ``sys.path``
  as ``python -m ipykernel_launcher`` has them, re-seeds numpy's global generator from the
  OS (Python's ``random`` re-seeds itself at fork), and runs ``IPKernelApp`` as
  ``ipykernel_launcher`` does. Its user namespace is IPython's new one; only
  ``sys.modules`` is warm.

Why a kernel command and not a jupyter_client kernel provisioner: the launcher *is* the
process jupyter_client starts, so jupyter_client's own ``LocalProvisioner`` keeps doing
all its bookkeeping unchanged (Popen, polling, the process-group signals behind
interrupt, terminate and kill, waiting), and the fallback to a cold kernel is an
``exec`` in that same process. A provisioner is registered through an entry point and
would have to reimplement that bookkeeping for a process that is not its child.

What cannot change after a process starts, the server must start with. It is started
with the environment of the first run that asks for it, and a warden declines (the
launcher then starts a cold kernel) any run whose environment differs from the server's
in anything but :data:`PER_RUN`: ``PYTHONHASHSEED`` (the hash salt is fixed at
interpreter start), the BLAS thread counts (read when numpy loads OpenBLAS), ``MPLBACKEND``
(read when matplotlib is imported), ``PYTHONPATH`` and the rest. It also declines a run
whose matplotlibrc (``MATPLOTLIBRC``, or one in its working folder) has settings other
than those the server's matplotlib read. So a warm kernel has the hash salt of
:data:`~mdplab.course.execute.KERNEL_ENV` exactly as a cold one does; warm kernels are
still only used where verdicts, not bytes, matter (the catalogue), and the build keeps
cold kernels.

The server refuses to serve at all (every run is then cold) when importing :data:`PRELOAD`
wrote anything to stdout or stderr or raised a warning (a cold kernel would show it in the
cell that imports the module), left a second thread running (a fork copies only the
forking thread), or imported a module from :data:`NOT_PRELOADED`. Set
``MDPLAB_WARM_KERNELS=0`` to make every run cold.

What a cell can still tell apart: ``sys.modules`` holds the preloaded modules (the checks
as they were when the server started, for the life of the test process), and
``os.getppid()`` is the warden, not the launcher. The socket sits in a folder of
``mkdtemp``'s (mode 0700): only this user can ask for a kernel.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import importlib.util
import json
import linecache
import os
import pkgutil
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Unicode

from mdplab.course.kernel_client import WakefulKernelManager

__all__ = [
    "NOT_PRELOADED",
    "PER_RUN",
    "PRELOAD",
    "WarmKernelManager",
    "fork_server",
    "shutdown_fork_server",
]

# What a lab's first cells import, and what ipykernel itself needs; each ``mdplab.checks``
# module is imported as well. A module that fails to import is left out: the kernel then
# meets the same error itself, as a cold one would.
PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "numpy",
    "matplotlib",
    "matplotlib.pyplot",
    "scipy.optimize",
    "gurobipy",
    "mdplab._kernels",  # numba, loaded on a lab's first value iteration
)
# Modules whose import does something extra inside a running IPython: ipywidgets
# registers its comm targets, matplotlib_inline hooks into the shell. Imported in the
# server, the kernel would lack those hooks.
NOT_PRELOADED = ("ipywidgets", "matplotlib_inline.backend_inline")
# The environment variables a run may set differently from the server: IPYTHONDIR is
# read when the kernel app starts (in the kernel process), MATPLOTLIBRC is checked by
# its settings instead, JPY_PARENT_PID is read by ipykernel at import and is therefore
# handed to the kernel app explicitly, and the rest are read while cells run.
PER_RUN = frozenset(
    {"IPYTHONDIR", "MATPLOTLIBRC", "JPY_PARENT_PID", "JPY_SESSION_NAME", "PYTEST_CURRENT_TEST"}
)
# Switch: "0" makes every run cold (for comparisons and as an escape hatch).
SWITCH = "MDPLAB_WARM_KERNELS"
LAUNCHER = str(Path(__file__).with_name("warm_launcher.py"))
# The server imports for about 2 s on an idle machine; CI shares two cores.
START_TIMEOUT = 60.0
HANDSHAKE_TIMEOUT = 10.0
# How often the server checks that the process that started it is still there.
PARENT_POLL = 1.0
PR_SET_PDEATHSIG = 1


class WarmKernelManager(WakefulKernelManager):
    """A :class:`WakefulKernelManager` whose kernels are forked by the fork server at
    :attr:`fork_server` (cold ones when it is empty or cannot serve)."""

    fork_server = Unicode("", help="The fork server's Unix socket.").tag(config=True)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if not self.fork_server:
            return cmd
        return [sys.executable, "-I", "-S", LAUNCHER, self.fork_server, "--", *cmd]


# ---------------------------------------------------------------------------------------
# The side that runs notebooks: starting and stopping the server.


@dataclass
class _Server:
    process: subprocess.Popen[bytes]
    address: str
    scratch: str
    owner: int  # the pid that started it: a forked copy of that process must not use it


_server: _Server | None = None
_unavailable = False
_atexit_registered = False
_lock = threading.Lock()


def fork_server(env: Mapping[str, str]) -> str | None:
    """The address of this process's fork server, started on first call with the kernel
    environment ``env``; None when warm kernels are switched off (``MDPLAB_WARM_KERNELS=0``)
    or the server could not start or has died (runs are then cold)."""
    global _server, _unavailable
    if os.environ.get(SWITCH) == "0":
        return None
    with _lock:
        if _server is None and not _unavailable:
            _server = _start(env)
            _unavailable = _server is None
        server = _server
    if server is None or server.owner != os.getpid() or server.process.poll() is not None:
        return None
    return server.address


def shutdown_fork_server() -> None:
    """Stop this process's fork server, if it runs; the next :func:`fork_server` starts a
    new one. Kernels it forked live on until their launchers end."""
    global _server, _unavailable
    with _lock:
        server, _server, _unavailable = _server, None, False
    if server is None or server.owner != os.getpid():
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stdout is not None:
        server.process.stdout.close()
    shutil.rmtree(server.scratch, ignore_errors=True)


def _start(env: Mapping[str, str]) -> _Server | None:
    """Start a fork server with the environment ``env`` and wait until it serves."""
    scratch = tempfile.mkdtemp(prefix="mdplab-warm-")
    address = os.path.join(scratch, "fork.sock")
    if len(os.fsencode(address)) >= 100:  # sun_path holds 108 bytes
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    server_env = dict(env)
    # The run's own folders are deleted after the run; the server gets copies.
    server_env["IPYTHONDIR"] = os.path.join(scratch, "ipython")
    rc = env.get("MATPLOTLIBRC")
    if rc and os.path.isfile(rc):
        os.mkdir(os.path.join(scratch, "matplotlib"))
        server_env["MATPLOTLIBRC"] = shutil.copy(rc, os.path.join(scratch, "matplotlib"))
    process = subprocess.Popen(
        [sys.executable, "-m", "mdplab.course.warm_kernel", address],
        cwd=scratch,
        env=server_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        # Not in our process group: a Ctrl-C at the terminal is for the test run, which
        # stops the server itself.
        start_new_session=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    if not ready or process.stdout.readline() != b"ready\n":
        process.kill()
        process.wait()
        process.stdout.close()
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown_fork_server)
        _atexit_registered = True
    return _Server(process, address, scratch, os.getpid())


# ---------------------------------------------------------------------------------------
# The server, its wardens and the kernels they fork.


@dataclass(frozen=True)
class _Base:
    """What the server was started with, which a kernel gets back or must match."""

    env: dict[str, str]  # without PER_RUN
    path: list[str]  # sys.path without the server's own folder
    dispositions: dict[int, Any]
    mask: set[signal.Signals]
    launcher: str  # ipykernel_launcher's file: a cold kernel's sys.argv[0]
    rc_file: dict[str, Any]  # the settings in the matplotlibrc the server's matplotlib read


@dataclass
class _Kernel:
    """What a forked kernel process needs from its warden."""

    conn: socket.socket
    fds: list[int]
    argv: list[str]
    warden: int


_base: _Base | None = None


def _serve(address: str) -> _Kernel:
    """Serve fork requests at ``address`` until the parent process goes away. Returns only
    in a forked kernel process, with what it needs to become a kernel."""
    global _base
    # First of all: what a freshly started Python has, before preloading changes anything.
    dispositions = {}
    for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with contextlib.suppress(OSError, ValueError):
            disposition = signal.getsignal(signum)
            if disposition is not None:
                dispositions[signum] = disposition
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    path = sys.path[1:]  # `python -m` put the working folder first; ipykernel_launcher drops it
    parent = os.getppid()
    problem = _preload()
    if problem:
        print(f"mdplab warm kernels: {problem}; kernels will start cold", file=sys.stderr)
        sys.exit(1)
    spec = importlib.util.find_spec("ipykernel_launcher")
    assert spec is not None and spec.origin is not None
    _base = _Base(
        env={k: v for k, v in os.environ.items() if k not in PER_RUN},
        path=path,
        dispositions=dispositions,
        mask=mask,
        launcher=spec.origin,
        rc_file=_rc_file_settings(),
    )
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    listener.settimeout(PARENT_POLL)
    # Wardens are reaped by the kernel; each warden sets SIGCHLD back to wait its kernel.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if os.getppid() != parent:
                sys.exit(0)
            continue
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            return _warden(conn)
        conn.close()


def _preload() -> str | None:
    """Import :data:`PRELOAD` and the checks; why the server must not serve, or None."""
    with tempfile.TemporaryFile() as said, warnings.catch_warnings(record=True) as warned:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(said.fileno(), 1)
        os.dup2(said.fileno(), 2)
        try:
            for name in _preload_names():
                with contextlib.suppress(Exception):
                    importlib.import_module(name)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            for target, fd in enumerate(saved, start=1):
                os.dup2(fd, target)
                os.close(fd)
        said.seek(0)
        output = said.read()
    if output:
        return f"the imports wrote {output[:200]!r}"
    if warned:
        return f"the imports warned: {warned[0].category.__name__}: {warned[0].message}"
    loaded = [name for name in NOT_PRELOADED if name in sys.modules]
    if loaded:
        return f"the imports loaded {loaded}"
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    if (threads or threading.active_count()) != 1:
        return "the imports started threads"
    return None


def _preload_names() -> list[str]:
    names = list(PRELOAD)
    with contextlib.suppress(Exception):
        checks = importlib.import_module("mdplab.checks")
        names += [f"mdplab.checks.{m.name}" for m in pkgutil.iter_modules(checks.__path__)]
    return names


def _rc_file_settings() -> dict[str, Any]:
    """The settings in the matplotlibrc matplotlib would read here and now."""
    import matplotlib

    fname = matplotlib.matplotlib_fname()
    return dict(matplotlib.rc_params_from_file(fname, use_default_template=False))


def _warden(conn: socket.socket) -> _Kernel:
    """In a fork of the server: take one launcher's request, fork its kernel, report how
    the kernel ended. Returns only in the kernel process."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        conn.settimeout(HANDSHAKE_TIMEOUT)
        header, fds, _, _ = socket.recv_fds(conn, 4, 3)
        if len(header) != 4:
            os._exit(0)
        (length,) = struct.unpack("!I", header)
        request = json.loads(_recv_exactly(conn, length))
        refusal = _apply(request, fds)
        if refusal:
            _send(conn, {"refused": refusal})
            os._exit(0)
        _send(conn, {"ok": True})
        if _recv_exactly(conn, 3) != b"go\n":
            os._exit(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return _Kernel(conn, fds, request["argv"], os.getppid())
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):  # a launcher gone already: _watch sees it
            _send(conn, {"pid": pid})
        status = _watch(conn, pid)
        with contextlib.suppress(OSError):
            _send(conn, {"status": status})
    except (OSError, ValueError):
        pass  # the launcher went away or gave up: it runs a cold kernel or none
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    os._exit(0)


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``conn``, or fewer if it closes first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _apply(request: dict[str, Any], fds: list[int]) -> str | None:
    """Take the request's working folder and environment (this process is the warden, a
    throwaway); why it cannot have a warm kernel, or None."""
    assert _base is not None
    argv, env = request.get("argv"), request.get("env")
    if len(fds) != 3:
        return "no stdio"
    if not (
        isinstance(argv, list)
        and argv[:3] == [sys.executable, "-m", "ipykernel_launcher"]
        and all(isinstance(a, str) for a in argv)
    ):
        return f"not a command that starts this Python's ipykernel: {argv}"
    if not isinstance(env, dict):
        return "no environment"
    differ = sorted(
        k for k in env.keys() - PER_RUN | _base.env.keys() if env.get(k) != _base.env.get(k)
    )
    if differ:
        return f"environment differs from the server's in {differ}"
    try:
        os.chdir(request["cwd"])
    except (OSError, KeyError, TypeError) as exc:
        return f"no working folder: {exc}"
    os.environ.clear()
    os.environ.update(env)
    if _rc_file_settings() != _base.rc_file:
        return "the matplotlibrc differs from the server's"
    return None


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _watch(conn: socket.socket, pid: int) -> int:
    """Wait until the kernel ``pid`` ends, killing its process group if the launcher's end
    of ``conn`` closes first; the kernel's wait status."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # not Linux 5.3+: poll
    watched = [conn] if pidfd is None else [conn, pidfd]
    conn.settimeout(None)
    while True:
        ready, _, _ = select.select(watched, [], [], 0.05 if pidfd is None else None)
        if conn in ready:
            try:
                gone = not conn.recv(1)
            except OSError:
                gone = True
            if gone:
                _kill_group(pid)
                return os.waitpid(pid, 0)[1]
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def _run_kernel(kernel: _Kernel) -> None:
    """Turn this fork into the kernel ``python -m ipykernel_launcher`` would start, and run
    it; returns when the kernel has shut down."""
    assert _base is not None
    kernel.conn.close()  # the launcher must see the socket close when the warden ends
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != kernel.warden:
        os._exit(1)  # the warden died before PR_SET_PDEATHSIG took effect
    for target, fd in enumerate(kernel.fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum, disposition in _base.dispositions.items():
        with contextlib.suppress(OSError, ValueError, TypeError):
            signal.signal(signum, disposition)
    signal.pthread_sigmask(signal.SIG_SETMASK, _base.mask)
    sys.argv = [_base.launcher, *kernel.argv[3:]]
    sys.orig_argv = list(kernel.argv)
    sys.path[:] = _base.path
    # Directory listings and source lines cached in the server may be stale by now.
    importlib.invalidate_caches()
    linecache.clearcache()
    import numpy

    # The server's generator state is every fork's; a cold kernel's comes from the OS.
    numpy.random.seed()
    from ipykernel.kernelapp import IPKernelApp

    # ipykernel read JPY_PARENT_PID when the server imported it.
    IPKernelApp.launch_instance(parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0))


if __name__ == "__main__":
    _run_kernel(_serve(sys.argv[1]))
