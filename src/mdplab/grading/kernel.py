"""One student's kernel: started in the sandbox, driven cell by cell under time and
output limits, and asked (through :mod:`mdplab.grading.agent`) to describe or call names.

The kernel talks to the grader over Unix sockets in the submission's private folder
(ZeroMQ's ``ipc`` transport), because the sandbox has no network, not even loopback.

Where the grader is root, the kernel runs as an unprivileged account of its own
(:class:`~mdplab.grading.sandbox.Account`): the folder, the connection file and the
grader's sockets in it are handed to that account, and the grader, being root, still reads
and removes everything there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import secrets
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import nbformat
from jupyter_client.manager import KernelManager
from nbformat import NotebookNode

from mdplab.grading import agent
from mdplab.grading.budgets import Budget
from mdplab.grading.sandbox import Account, Isolation, Limits

AGENT_SOURCE = Path(agent.__file__).read_text(encoding="utf-8")
AGENT_ID = hashlib.sha256(AGENT_SOURCE.encode()).hexdigest()[:16]
QUIET = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:"]
# The largest reply a test cell can plausibly need. The labs' largest answer is lab06's
# transition counts, 128 x 4 x 128 numbers: 1.7 MB as the agent encodes an array, about
# 3 MB as a nested list of floats; a batch of repeated calls stops past
# agent.REPEAT_BYTES (4 MiB) plus its last result. 32 MiB is ten times either. A reply
# costs the grader many times its size in memory while it is read (a forged 48 MB reply
# of tiny containers grew a worker to 3.8 GB under the old limit of 512 MiB); with this
# limit, and agent.MAX_REPLY_ITEMS values at most, a reply costs a few hundred MB at worst.
MAX_REPLY_BYTES = 32 * 1024 * 1024
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error"}


class KernelDied(BaseException):
    """The kernel process is gone. A BaseException, so that checks which turn a student's
    exception into feedback do not swallow it."""


class OutOfTime(BaseException):
    """A cell, or the calls of a test cell, ran past their time limit."""


class GraderFault(BaseException):
    """The grader's own machinery failed (not the student's code): the submission must be
    reported as not graded, never scored as if its tests had failed. A BaseException for
    the same reason as :class:`KernelDied`."""


# A Unix socket's path must fit in sun_path: 108 bytes on Linux, 104 on macOS, with the
# terminating NUL, and Python refuses the last byte on some systems (python/cpython#140734).
SOCKET_PATH_MAX = 103
BOX_PREFIX = "mdplab-box-"


def _session_socket_name() -> str:
    """A fresh name for a session's socket in a box: always 17 characters."""
    return f"rpc-{secrets.token_hex(4)}.sock"


# The longest path bound in a box: tempfile's 8 random characters, then a session socket
# (the kernel's ZeroMQ sockets, "k<starts>-<port>", are shorter).
_LONGEST_IN_BOX = len(f"/{BOX_PREFIX}12345678/") + len(_session_socket_name())
_SHORT_TEMPORARY_FOLDER = "/tmp"  # POSIX requires it


def box_parent() -> str:
    """The folder in which each submission's box is made: the temporary folder, or /tmp
    when the temporary folder's path is too long for the Unix sockets in a box (a long
    TMPDIR, as some clusters and macOS set, made every test cell fail). CPython's
    multiprocessing falls back the same way (python/cpython#132124).

    Raises ValueError, naming the folder, when neither will do."""
    candidates = dict.fromkeys([tempfile.gettempdir(), _SHORT_TEMPORARY_FOLDER])
    for folder in candidates:
        fits = len(os.fsencode(folder)) + _LONGEST_IN_BOX <= SOCKET_PATH_MAX
        if fits and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    longest = SOCKET_PATH_MAX - _LONGEST_IN_BOX
    raise ValueError(
        f"no temporary folder for grading: {tempfile.gettempdir()} is too long for the Unix "
        "sockets through which the grader talks to each kernel, and "
        f"{_SHORT_TEMPORARY_FOLDER} is not a writable folder. Set TMPDIR to a writable "
        f"folder whose path has at most {longest} characters."
    )


@dataclass
class CellRun:
    """What running one cell gave. ``status``: ok, error, timeout, died, output-cap."""

    outputs: list[NotebookNode] = field(default_factory=list)
    status: str = "ok"
    execution_count: int | None = None
    message: str = ""


class _SandboxedManager(KernelManager):
    """A KernelManager whose launch command is wrapped by the sandbox."""

    isolation: Isolation | None = None
    box: Path | None = None
    account: Account | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        argv = super().format_kernel_cmd(extra_arguments)
        assert self.isolation is not None and self.box is not None
        return self.isolation.command(argv, self.box)

    def write_connection_file(self, **kwargs: Any) -> None:
        """Write it as jupyter_client does (mode 0600), then hand it to the kernel's
        account, which must read it and otherwise could not."""
        super().write_connection_file(**kwargs)
        if self.account is not None:
            self.account.own(Path(self.connection_file))


class Kernel:
    """A sandboxed IPython kernel for one submission, working in ``box``."""

    def __init__(self, isolation: Isolation, limits: Limits, box: Path) -> None:
        self.isolation, self.limits, self.box = isolation, limits, box
        # One grading process grades one submission at a time, so its pid names the account.
        self.account = isolation.account(os.getpid())
        # The cgroup of the running kernel (a fresh one for each start), where the machine
        # gives kernels cgroups of their own: its pids.max is the process limit.
        self.budget: Budget | None = None
        self._manager: _SandboxedManager | None = None
        self._client: Any = None
        self.starts = 0
        # Why the last stopped cell may have run out of time, beyond being slow: set when a
        # cell is stopped, for the message of that cell.
        self.stop_note = ""

    # ----------------------------------------------------------------- life cycle
    def start(self) -> None:
        if self.account is not None and self.starts == 0:
            # Before any student code has run in the box, so nothing in it can be a trap.
            self.account.own_tree(self.box)
        self.starts += 1
        self._log = _open_log(self.box / "kernel.log")
        manager = _SandboxedManager(
            kernel_name="python3",
            transport="ipc",
            ip=str(self.box / f"k{self.starts}"),
            connection_file=str(self.box / f"kernel-{self.starts}.json"),
        )
        manager.isolation, manager.box, manager.account = self.isolation, self.box, self.account
        # The grader's own interpreter: the kernel gets exactly the instructor's packages.
        manager.kernel_spec.argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ]
        self.budget = self._new_budget()
        try:
            manager.start_kernel(
                extra_arguments=QUIET,
                env=self._environment(),
                cwd=str(self.box),
                preexec_fn=self._confine,
                # The kernel's own chatter (connection notes, crashes) goes to a log, not ours.
                stdout=self._log,
                stderr=self._log,
            )
        except subprocess.SubprocessError as error:  # _confine failed in the child
            self._release_budget()
            raise GraderFault(f"the kernel could not be confined: {error}") from None
        except BaseException:
            self._release_budget()
            raise
        try:
            client = manager.blocking_client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
        except BaseException as error:
            # Whatever stops the start (also a time limit's signal): no kernel, no cgroup.
            with contextlib.suppress(Exception):
                manager.shutdown_kernel(now=True)
            self._release_budget()
            if isinstance(error, RuntimeError):
                raise KernelDied(f"the kernel did not start: {error}") from error
            raise
        self._manager, self._client = manager, client

    def _new_budget(self) -> Budget | None:
        """A fresh cgroup for the kernel about to start, where the machine gives kernels
        cgroups of their own. A kernel must not run without the budget the start-up report
        promised, so failing to make one is the grader's fault, not the submission's."""
        budgets = self.isolation.budgets
        if budgets is None:
            return None
        try:
            return budgets.create(self.limits.processes, self.limits.memory_bytes)
        except OSError as error:
            where = budgets.places[0].folder
            raise GraderFault(f"could not make the kernel's cgroup in {where}: {error}") from None

    def _release_budget(self) -> None:
        """Kill whatever is left in the kernel's cgroup and remove it."""
        if self.budget is not None:
            self.budget.remove()
            self.budget = None

    def _confine(self) -> None:
        """Run in the child before exec: the kernel's cgroup (joined first, while a root
        grader's child still may, so that every process of the sandbox is born in it and
        counted by its pids.max), the kernel's account (a root grader's kernel drops to it,
        so that the limits then bind that uid, RLIMIT_NPROC included), limits, and SIGINT
        ignored so that an interrupt (sent to the whole process group) stops the running
        cell, not the sandbox around it; ipykernel installs its own SIGINT handler while a
        cell runs. A kernel in a cgroup of its own that keeps the grader's uid gets no
        RLIMIT_NPROC: that would count the grader's and all other kernels' processes too."""
        if self.budget is not None:
            self.budget.join()
        if self.account is not None:
            self.account.become()
        self.limits.apply(process_count=self.budget is None or self.account is not None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def _environment(self) -> dict[str, str]:
        """A clean environment: nothing of the grader's (no tokens, no paths to the course)."""
        home = str(self.box)
        env = {
            "HOME": home,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
            "IPYTHONDIR": str(self.box / ".ipython"),
            "MPLCONFIGDIR": str(self.box / ".matplotlib"),
            "TMPDIR": "/tmp" if self.isolation.confined else home,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        if not self.isolation.confined:
            # Without the mount namespace, at least keep mdplab off the kernel's path.
            env["PYTHONNOUSERSITE"] = "1"
        return env

    def alive(self) -> bool:
        return self._manager is not None and self._manager.is_alive()

    def shutdown(self) -> None:
        try:
            if self._client is not None:
                self._client.stop_channels()
            if self._manager is not None:
                # A kernel that is already gone needs no shutting down.
                with contextlib.suppress(Exception):
                    self._manager.shutdown_kernel(now=True)
                self._manager.cleanup_resources()
                self._log.close()
            self._manager = self._client = None
        finally:
            # After the sandbox (and even if taking it down failed): what is still in the
            # kernel's cgroup did not end with it.
            self._release_budget()

    def restart(self) -> None:
        self.shutdown()
        self.start()

    # ----------------------------------------------------------------- cells
    def run_cell(self, source: str, seconds: float) -> CellRun:
        """Run ``source`` as a notebook cell; stop it after ``seconds`` or when its output
        passes the cap. A kernel that dies or will not stop is reported, not raised."""
        if not self.alive():
            return CellRun(status="died", message="the kernel was not running")
        msg_id = self._client.execute(source, store_history=True, allow_stdin=False)
        run = CellRun()
        size = 0
        deadline = time.monotonic() + seconds
        clear_pending = False
        while True:
            try:
                message = self._next_iopub(msg_id, deadline)
            except OutOfTime:
                run.status = "timeout"
                self._stop_running_cell()
                run.message = f"stopped after {seconds:g} s" + _joined(self.stop_note)
                return run
            except KernelDied as died:
                run.status, run.message = "died", str(died)
                return run
            kind = message["header"]["msg_type"]
            content = message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "execute_input":
                run.execution_count = content.get("execution_count")
            elif kind == "clear_output":
                if content.get("wait"):
                    clear_pending = True
                else:
                    run.outputs.clear()
            elif kind in OUTPUT_TYPES:
                if clear_pending:
                    run.outputs.clear()
                    clear_pending = False
                output = nbformat.v4.output_from_msg(message)
                size += len(json.dumps(output))
                if size > self.limits.output_bytes:
                    run.outputs.append(_cap_note(self.limits.output_bytes))
                    run.status = "output-cap"
                    run.message = f"more than {self.limits.output_bytes // 1024} KiB of output"
                    self._stop_running_cell()
                    return run
                _append(run.outputs, output)
                if kind == "error":
                    run.status = "error"
        return run

    def _next_iopub(self, msg_id: str, deadline: float) -> dict:
        """The next IOPub message that belongs to ``msg_id``."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OutOfTime()
            try:
                message = self._client.get_iopub_msg(timeout=min(remaining, 0.5))
            except queue.Empty:
                if not self.alive():
                    raise KernelDied("the kernel died") from None
                continue
            if message.get("parent_header", {}).get("msg_id") == msg_id:
                return message

    def _stop_running_cell(self) -> None:
        """Interrupt the kernel; if it does not settle within a few seconds (a loop that
        swallows KeyboardInterrupt), kill it. Either way the next cell starts clean."""
        self.stop_note = ""
        if not self.alive():
            return
        count = self._processes()
        if count is not None and count >= 0.9 * self.limits.processes:
            # Counted before the stop ends them: a fork bomb deserves a clearer word than
            # "slow". Only a cgroup or an account of its own makes the count the kernel's.
            self.stop_note = (
                f"it had reached the limit of {self.limits.processes} processes: does the "
                "code start processes without end?"
            )
        self._manager.interrupt_kernel()
        deadline = time.monotonic() + 5
        probe = self._client.execute("", store_history=False, allow_stdin=False)
        while time.monotonic() < deadline:
            try:
                message = self._client.get_iopub_msg(timeout=0.25)
            except queue.Empty:
                continue
            except ValueError:
                # A garbled message ("Invalid Signature"): a kernel at its process limit
                # cannot start the thread pyzmq needs to send a large message, and sends
                # half of it. Its channel cannot be trusted any more: start afresh.
                break
            if (
                message.get("parent_header", {}).get("msg_id") == probe
                and message["header"]["msg_type"] == "status"
                and message["content"]["execution_state"] == "idle"
            ):
                return
        self.shutdown()

    def _processes(self) -> int | None:
        """The kernel's processes and threads now, where only the kernel's are counted: its
        cgroup's pids.current, or its account's tasks. None where neither is its own."""
        if self.budget is not None:
            return self.budget.processes()
        if self.account is not None:
            return self.account.tasks()
        return None

    # ----------------------------------------------------------------- the agent
    def session(self) -> Session:
        """Start the agent's request loop in the kernel, connected to a fresh socket."""
        if not self.alive():
            raise KernelDied("the kernel is not running")
        return Session(self)


class Session:
    """One run of the agent's request loop: requests and replies as length-prefixed JSON
    over a Unix socket in the submission's folder, while one notebook execution keeps the
    loop in the kernel's main thread. A round trip costs tens of microseconds, where a
    notebook execution per call would cost milliseconds; the checks call student
    functions thousands of times."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.path = kernel.box / _session_socket_name()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(str(self.path))
        except OSError as error:
            self._listener.close()
            why = f"the grader could not open its socket ({error.strerror or error}): {self.path}"
            raise GraderFault(why) from None
        if kernel.account is not None:
            # Connecting needs write permission on the socket file; root's umask keeps it.
            kernel.account.own(self.path)
        self._listener.listen(1)
        code = _session_code(str(self.path))
        self.msg_id = kernel._client.execute(
            code, silent=False, store_history=False, allow_stdin=False
        )
        self._conn: socket.socket | None = None
        self.closed = False

    def _connection(self, deadline: float) -> socket.socket | None:
        """The kernel's connection, waited for until ``deadline``; None if it never came
        (student code may have broken the kernel's ability to run our code)."""
        if self._conn is not None:
            return self._conn
        self._listener.settimeout(0.25)
        while time.monotonic() < deadline:
            try:
                self._conn, _ = self._listener.accept()
                return self._conn
            except TimeoutError:
                if not self.kernel.alive():
                    raise KernelDied("the kernel died") from None
                if self._execution_finished():
                    return None
        raise OutOfTime()

    def _execution_finished(self) -> bool:
        """Did the loop's execution end without connecting (an error, a blanked cell)?"""
        while True:
            try:
                message = self.kernel._client.get_iopub_msg(timeout=0)
            except queue.Empty:
                return False
            if (
                message.get("parent_header", {}).get("msg_id") == self.msg_id
                and message["header"]["msg_type"] == "status"
                and message["content"]["execution_state"] == "idle"
            ):
                return True

    def request(self, op: str, seconds: float, **fields: Any) -> dict:
        """The agent's reply, or ``{"error": {"type": "NoReply", ...}}``. Raises OutOfTime
        (after stopping the call in the kernel) or KernelDied."""
        deadline = time.monotonic() + seconds
        try:
            conn = self._connection(deadline)
            if conn is None:
                return _no_reply("the grader's code could not run in the kernel")
            body = json.dumps({"op": op, **fields}, allow_nan=False).encode()
            conn.settimeout(max(deadline - time.monotonic(), 0.001))
            conn.sendall(struct.pack(">Q", len(body)) + body)
            header = _receive(conn, 8, deadline, self.kernel)
            if header is None:
                return _no_reply("the kernel stopped answering")
            (size,) = struct.unpack(">Q", header)
            if size > MAX_REPLY_BYTES:
                raise _Refused(
                    f"a reply of {size} bytes, larger than any answer ({MAX_REPLY_BYTES} at most)"
                )
            payload = _receive(conn, size, deadline, self.kernel)
            if payload is None:
                return _no_reply("the kernel stopped answering")
            return _parse_reply(payload)
        except _Refused as refused:
            # What follows on the socket (the rest of this reply, or the agent's own reply
            # after a forged one) would be taken for the next reply: the session ends here.
            self._abandon()
            return _no_reply(str(refused))
        except BaseException:
            # Our own time limit, or one of the checks' (a signal in this process): either
            # way the call must not keep running in the kernel.
            self._abandon()
            raise

    def close(self) -> None:
        """End the loop and wait for its execution to finish."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                body = json.dumps({"op": "end"}).encode()
                self._conn.sendall(struct.pack(">Q", len(body)) + body)
        self._release()
        if self.kernel.alive():
            deadline = time.monotonic() + 10
            try:
                while not self._execution_finished():
                    if time.monotonic() > deadline:
                        self.kernel._stop_running_cell()
                        return
                    time.sleep(0.002)
            except KernelDied:
                return

    def _abandon(self) -> None:
        self._release()
        self.kernel._stop_running_cell()

    def _release(self) -> None:
        self.closed = True
        for handle in (self._conn, self._listener):
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
        self._conn = None
        with contextlib.suppress(OSError):
            self.path.unlink()


def _receive(conn: socket.socket, size: int, deadline: float, kernel: Kernel) -> bytearray | None:
    """``size`` bytes from ``conn``, read into one buffer (chunks joined at the end would
    hold the reply twice)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutOfTime()
        conn.settimeout(min(remaining, 0.5))
        try:
            count = conn.recv_into(view[done:], min(size - done, 1 << 20))
        except TimeoutError:
            if not kernel.alive():
                raise KernelDied("the kernel died") from None
            continue
        if not count:
            if not kernel.alive() or _dies_soon(kernel):
                raise KernelDied("the kernel died")
            return None
        done += count
    return buffer


class _Refused(Exception):
    """A reply the grader will not read; the message says why."""


def _parse_reply(payload: bytearray) -> dict:
    """The reply, parsed. Raises :class:`_Refused` when it holds more values than any
    answer (counted before parsing, which would cost tens of bytes of memory for each: a
    value past a container's first follows a comma), is nested deeper than the parser's
    recursion limit, or is not a JSON object."""
    values = payload.count(b",") + payload.count(b"[") + payload.count(b"{")
    if values > agent.MAX_REPLY_ITEMS:
        raise _Refused(f"a reply of more than {agent.MAX_REPLY_ITEMS} values")
    try:
        reply = json.loads(payload)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a number of 5,000 digits
        raise _Refused("an unreadable reply") from None
    if not isinstance(reply, dict):
        raise _Refused("an unreadable reply")
    return reply


def _dies_soon(kernel: Kernel, seconds: float = 1.0) -> bool:
    """Whether the kernel turns out dead within ``seconds``: a kernel that exits mid-call
    closes the agent's socket a moment before its process is seen to have ended."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if not kernel.alive():
            return True
    return False


def _joined(note: str) -> str:
    return f"; {note}" if note else ""


def _open_log(path: Path) -> BinaryIO:
    """The kernel's log, for appending. Student code can write in the box, so a restart
    must neither follow a symlink planted at the log's name (the grader would append the
    kernel's output, which the student controls, to a file of the student's choosing) nor
    wait on a FIFO planted there (the open would block for good)."""
    # O_NONBLOCK makes a FIFO without a reader fail at once; a regular file ignores it.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        handle = os.open(path, flags | os.O_CLOEXEC, 0o600)
    except OSError:  # a symlink, a folder or a FIFO: the chatter is not worth a fight
        return open(os.devnull, "ab")
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        return open(os.devnull, "ab")
    return os.fdopen(handle, "ab")


def _no_reply(message: str) -> dict:
    return {"error": {"type": "NoReply", "message": message}}


def _session_code(path: str) -> str:
    """One expression that runs the agent's request loop: it uses the agent module the
    kernel already holds, or installs it first (in a fresh kernel, or if student code
    removed it). It leaves no name in the student's namespace."""
    return (
        "(lambda sys, types: ("
        "sys.modules['mdplab_agent'] "
        f"if getattr(sys.modules.get('mdplab_agent'), 'AGENT_ID', None) == {AGENT_ID!r} "
        "else (lambda m: (exec(compile("
        f"{AGENT_SOURCE!r}, '<mdplab grader>', 'exec'), m.__dict__), "
        f"setattr(m, 'AGENT_ID', {AGENT_ID!r}), "
        "sys.modules.__setitem__('mdplab_agent', m), m)[3])(types.ModuleType('mdplab_agent'))"
        f").session({path!r}, get_ipython().user_ns))(__import__('sys'), __import__('types'));"
    )


def _append(outputs: list[NotebookNode], output: NotebookNode) -> None:
    """Append, merging consecutive text on the same stream as a notebook does."""
    if (
        output.output_type == "stream"
        and outputs
        and outputs[-1].output_type == "stream"
        and outputs[-1].name == output.name
    ):
        outputs[-1].text += output.text
    else:
        outputs.append(output)


def _cap_note(limit: int) -> NotebookNode:
    return nbformat.v4.new_output(
        "stream",
        name="stdout",
        text=f"\n[grader: output stopped at {limit // 1024} KiB; the cell was interrupted]\n",
    )
