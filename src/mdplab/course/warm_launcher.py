"""The process jupyter_client starts for a warm kernel (see :mod:`mdplab.course.warm_kernel`).

Run as a script, ``python -I -S warm_launcher.py ADDRESS -- COLD_COMMAND...``, so that it
starts in milliseconds: it imports only the standard library, and no ``site``. It asks the
fork server at the Unix socket ``ADDRESS`` for a kernel process, handing over its own
stdin, stdout and stderr and sending its working folder and environment, and then stands
in for that kernel: it lives exactly as long as the kernel, exits with the kernel's status,
and passes on the signals jupyter_client sends it (interrupt, terminate). When it is killed
outright (``shutdown_kernel="immediate"``), the fork server's warden of the kernel sees the
socket close and kills the kernel.

Whenever the fork server cannot be reached, does not answer in time or declines the
request, the launcher replaces itself with ``COLD_COMMAND`` (``python -m ipykernel_launcher
-f ...``), the command jupyter_client would have run: the kernel is then a cold one, in the
process jupyter_client knows. The warden only forks after the launcher's final "go", so a
launcher that has given up on it can never end up with two kernels on one connection file.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys

HANDSHAKE_TIMEOUT = 10.0
# How often the launcher checks that jupyter_client is still there; a cold kernel checks
# its parent once a second too (ipykernel's ParentPollerUnix).
PARENT_POLL = 1.0
# What jupyter_client may send a kernel other than SIGKILL (which cannot be caught).
RELAYED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class Refused(Exception):
    """The fork server cannot give this launcher a kernel: start a cold one."""


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: warm_launcher.py ADDRESS -- COMMAND...")
    address, cold = argv[1], argv[3:]
    parent = os.getppid()
    pending: list[int] = []
    kernel: list[int] = []

    def relay(signum: int, frame: object) -> None:
        if kernel:
            signal_group(kernel[0], signum)
        else:
            pending.append(signum)

    # Before the first message: a signal that comes while the kernel is being forked must
    # not kill the launcher and leave the kernel behind.
    for signum in RELAYED:
        signal.signal(signum, relay)
    try:
        conn, reader = handshake(address, cold)
    except (OSError, ValueError, Refused):
        # From here on a signal ends the launcher, as it would end a kernel that has not
        # started yet; so does one that came during the handshake.
        for signum in RELAYED:
            signal.signal(signum, signal.SIG_DFL)
        for signum in pending:
            os.kill(os.getpid(), signum)
        os.execv(cold[0], cold)
    try:
        kernel.append(int(reader.message()["pid"]))
    except (OSError, ValueError, KeyError):
        sys.exit(1)  # the warden died after "go": no kernel to stand in for
    for signum in pending:
        signal_group(kernel[0], signum)
    while True:
        try:
            ready, _, _ = select.select([conn], [], [], PARENT_POLL)
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            continue
        if ready:
            try:
                status = int(reader.message()["status"])
            except (OSError, ValueError, KeyError):
                sys.exit(1)  # the warden died; its kernel got SIGKILL with it
            exit_like(status)
        if os.getppid() != parent:
            signal_group(kernel[0], signal.SIGKILL)
            sys.exit(1)


def handshake(address: str, cold: list[str]) -> tuple[socket.socket, Lines]:
    """Ask the fork server for the kernel ``cold`` would start; the socket to its warden
    (and a reader of it) once the warden has said yes and been told to go ahead. Raises
    OSError, ValueError or Refused when it has not."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(HANDSHAKE_TIMEOUT)
    try:
        conn.connect(address)
        request = json.dumps({"argv": cold, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [struct.pack("!I", len(request))], [0, 1, 2])
        conn.sendall(request)
        reader = Lines(conn)
        answer = reader.message()
        if not answer.get("ok"):
            raise Refused(str(answer.get("refused", answer)))
        conn.sendall(b"go\n")
    except BaseException:
        conn.close()
        raise
    return conn, reader


class Lines:
    """Newline-delimited JSON messages from a socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def message(self) -> dict:
        while b"\n" not in self.buffer:
            chunk = self.conn.recv(4096)
            if not chunk:
                raise ValueError("the fork server closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def signal_group(pid: int, signum: int) -> None:
    """Signal the kernel's process group (it leads one, as a cold kernel does), or the
    kernel alone in the instant before it has made its group."""
    try:
        os.killpg(pid, signum)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def exit_like(status: int) -> None:
    """End this process as the kernel ended: with its exit code, or by its signal."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no disposition to set
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # only reached if that signal does not end a process
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
