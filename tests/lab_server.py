"""A real JupyterLab server for the browser tests, started the way a student starts one.

:func:`jupyterlab` copies the notebooks into a folder of their own, starts
``jupyter lab --no-browser`` from the project's virtual environment on a free port of the
loopback, with a random token, and with every folder of Jupyter's (config, data, runtime),
HOME and IPYTHONDIR inside the test's workspace, so that nothing of the user's settings,
workspaces or trusted-notebook database comes in and nothing is left behind. With
``config_path`` the server reads that folder as ``JUPYTER_CONFIG_PATH`` (the student
configuration of ``make lab``). With ``user`` (a throwaway user of :mod:`unprivileged`) the
server runs as that user, as a non-root instructor or student does.

It waits until the server answers (with the server's log in the failure if it does not),
and afterwards asks it to shut down, which stops its kernels, then kills whatever of it is
left: the server and each process that descends from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import unprivileged

VENV_BIN = Path(sys.executable).parent
START_PATIENCE = 90.0  # seconds for the server to answer; about 3 s on an idle machine
# Kept from the caller's environment: OpenBLAS needs them on some processors.
PASSED_ON = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens, its token and the folder it serves."""

    base: str  # http://127.0.0.1:PORT/
    token: str
    root: Path
    log: Path
    process: subprocess.Popen
    user: str  # who it runs as

    def address(self, path: str, workspace: str) -> str:
        """The page that opens ``path`` (relative to :attr:`root`) in a workspace of its own,
        so that no layout of an earlier page is restored there."""
        return f"{self.base}lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def lab(self, workspace: str) -> str:
        """JupyterLab with nothing open, in a workspace of its own."""
        return f"{self.base}lab/workspaces/{workspace}?token={self.token}"

    def log_tail(self, characters: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-characters:]

    def get(self, path: str, timeout: float = 5.0) -> int:
        """The HTTP status of ``path`` (a GET with the token)."""
        request = urllib.request.Request(
            f"{self.base}{path}", headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def quiet_settings(config_dir: Path) -> None:
    """The user settings of a student who answered JupyterLab's first question: no news
    fetched (the machine has no network, and its notice would cover the page's corner)."""
    folder = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@contextmanager
def jupyterlab(
    workspace: Path,
    notebooks: Iterable[Path],
    *,
    config_path: Path | None = None,
    user: unprivileged.User | None = None,
) -> Iterator[LabServer]:
    """A JupyterLab server on copies of ``notebooks``; see the module's docstring."""
    root = workspace / "notebooks"
    root.mkdir(parents=True)
    for notebook in notebooks:
        shutil.copy2(notebook, root / notebook.name)
    jupyter = workspace / "jupyter"
    folders = {
        "JUPYTER_CONFIG_DIR": jupyter / "config",
        "JUPYTER_DATA_DIR": jupyter / "data",
        "JUPYTER_RUNTIME_DIR": jupyter / "runtime",
        "IPYTHONDIR": jupyter / "ipython",
        "HOME": jupyter / "home",
        "TMPDIR": jupyter / "tmp",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    quiet_settings(folders["JUPYTER_CONFIG_DIR"])
    env = {key: str(value) for key, value in folders.items()}
    env |= {key: os.environ[key] for key in PASSED_ON if key in os.environ}
    if config_path is not None:
        env["JUPYTER_CONFIG_PATH"] = str(config_path)
    port, token = free_port(), secrets.token_hex(16)
    argv = [str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1"]
    argv += [f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    argv += [f"--ServerApp.root_dir={root}"]
    log = workspace / "server.log"
    with contextlib.ExitStack() as stack:
        if user is None:
            if os.geteuid() == 0:
                argv.append("--allow-root")
            env |= {"PATH": os.pathsep.join([str(VENV_BIN), "/usr/bin", "/bin"])}
            env |= {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
            command, runs_as = argv, _whoami()
        else:
            for path in [workspace, *workspace.rglob("*")]:
                os.chown(path, user.uid, user.gid)
            command = stack.enter_context(unprivileged.command_as(user, argv, env=env))
            runs_as = user.name
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env if user is None else None,
            )
        server = LabServer(f"http://127.0.0.1:{port}/", token, root, log, process, runs_as)
        try:
            _wait_until_it_answers(server)
            yield server
        finally:
            stop(server)


def _whoami() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _wait_until_it_answers(server: LabServer) -> None:
    deadline = time.monotonic() + START_PATIENCE
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab ended with code {server.process.returncode} before it answered; "
                f"its log:\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError):
            if server.get("api/status", timeout=2) == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"jupyter lab did not answer within {START_PATIENCE:.0f} s; its log:\n{server.log_tail()}"
    )


# ------------------------------------------------------------------------------ stopping
def _started(pid: int) -> int | None:
    """A process's start time (clock ticks after boot), None if it is gone: with the pid,
    it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every process below ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            started = _started(child)
            if started is not None:
                found.append((child, started))
                todo.append(child)
    return found


def stop(server: LabServer, patience: float = 15.0) -> None:
    """Shut the server down (it stops its kernels), then kill what is left of it."""
    process = server.process
    below = descendants(process.pid)
    if process.poll() is None:
        request = urllib.request.Request(
            f"{server.base}api/shutdown",
            method="POST",
            headers={"Authorization": f"token {server.token}"},
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=5).close()
        try:
            process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for pid, started in below:  # kernels outlive a killed server, under init
        if _started(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
