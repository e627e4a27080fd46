"""Warm kernels (forked from a server that has imported the heavy modules) behave as cold
ones: the same outputs, a fresh namespace and pristine matplotlib each run, interrupts and
time limits and crashes handled alike, a cold kernel whenever the server cannot serve, and
no process left behind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets.config import Config

from mdplab.course import warm_kernel
from mdplab.course.execute import QUIET_KERNEL, _kernel_env, execute_notebook
from mdplab.course.kernel_client import WakefulKernelManager
from mdplab.course.warm_kernel import WarmKernelManager, fork_server, shutdown_fork_server

pytestmark = pytest.mark.slow

# True in a warm kernel only: the server imported scipy.optimize, a fresh kernel has not.
WARMTH = "import sys\nprint('scipy.optimize' in sys.modules)"
SAME = [
    "print('out')\nimport sys\nprint('err', file=sys.stderr)",
    "import warnings\nwarnings.warn('careful')",
    "from IPython.display import HTML, Markdown, display\ndisplay(HTML('<b>x</b>'))\n"
    "display(Markdown('*y*'))",
    "import numpy as np\nnp.linspace(0, 1, 5)",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nprint(plt.get_backend())",
    "import matplotlib\nprint(sorted(matplotlib.rcParams.find_all('lines').items()))",
    "print(hash('abc'), sorted(k for k in globals() if not k.startswith('_')))",
    "import os\nprint(sys.argv[0], sys.path, os.path.basename(os.getcwd()))",
    "print(sorted(set(os.environ) - {'PYTEST_CURRENT_TEST'}))",
    "from mdplab.checks.lab00 import check_discounted_cost\ncheck_discounted_cost(lambda *a: 0)",
    "raise ValueError('wrong')",
    "print('after the error')",
]


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def run(sources, folder: Path, *, warm: bool) -> list:
    """Each cell's outputs after a run as the catalogue's plain runs do it."""
    folder.mkdir(parents=True, exist_ok=True)
    executed = notebook(*sources)
    execute_notebook(executed, cwd=folder, allow_errors=True, draw_figures=False, warm=warm)
    return [cell.outputs for cell in executed.cells]


def normalised(outputs: list) -> str:
    """Outputs as text, with each kernel's pid (in its cells' file names) taken out."""
    return re.sub(r"ipykernel_\d+", "ipykernel_PID", json.dumps(outputs, sort_keys=True))


def kernel_env(home: Path) -> dict[str, str]:
    env = _kernel_env(home)
    env["MPLBACKEND"] = "agg"
    return env


def run_client(sources, folder: Path, address: str | None, **options) -> nbformat.NotebookNode:
    """Run as execute_notebook does, with nbclient's ``options`` and a warm kernel from the
    server at ``address`` (a cold kernel when None)."""
    folder.mkdir(parents=True)
    config = Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "k")}})
    if address is not None:
        config.WarmKernelManager.fork_server = address
    executed = notebook(*sources)
    client = NotebookClient(
        executed,
        kernel_manager_class=WarmKernelManager if address is not None else WakefulKernelManager,
        config=config,
        extra_arguments=QUIET_KERNEL,
        resources={"metadata": {"path": str(folder)}},
        shutdown_kernel="immediate",
        **options,
    )
    client.execute(env=kernel_env(folder / ".kernel"))
    return executed


@pytest.fixture
def address(tmp_path, monkeypatch) -> str:
    """The fork server's address (started here if it is not running), warm kernels on even
    in a run that switches them off."""
    monkeypatch.delenv(warm_kernel.SWITCH, raising=False)
    found = fork_server(kernel_env(tmp_path / ".server-env"))
    assert found is not None, "the fork server did not start"
    return found


def descendants() -> set[int]:
    """The pids of this process's descendants but the fork server's (other tests may have
    left processes of their own running, in this pytest worker)."""
    server = warm_kernel._server
    mine = psutil.Process().children(recursive=True)
    if server is None:
        return {p.pid for p in mine}
    try:
        its = {server.process.pid} | {
            p.pid for p in psutil.Process(server.process.pid).children(recursive=True)
        }
    except psutil.NoSuchProcess:
        its = set()
    return {p.pid for p in mine} - its


def settled(expected: set[int], seconds: float = 10) -> set[int]:
    """This process's descendants (see :func:`descendants`) once they are ``expected``, or
    when time is up."""
    deadline = time.monotonic() + seconds
    while True:
        pids = descendants()
        if pids == expected or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def server_children() -> set[int]:
    """The fork server's wardens and kernels."""
    return {p.pid for p in psutil.Process(server_pid()).children(recursive=True)}


def no_kernels_left(seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while server_children():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def server_pid() -> int:
    assert warm_kernel._server is not None
    return warm_kernel._server.process.pid


def test_a_warm_kernel_is_warm_and_gives_a_cold_ones_outputs(tmp_path, address):
    assert run([WARMTH], tmp_path / "w" / "labs", warm=True) == [
        [{"output_type": "stream", "name": "stdout", "text": "True\n"}]
    ]
    cold = run(SAME, tmp_path / "c" / "labs", warm=False)
    warm = run(SAME, tmp_path / "w" / "labs", warm=True)
    assert normalised(warm) == normalised(cold)
    assert any(o.output_type == "error" for o in warm[-2])
    assert warm[4] == [{"output_type": "stream", "name": "stdout", "text": "agg\n"}]


def test_each_warm_kernel_starts_afresh(tmp_path, address):
    """Nothing one run leaves (names, figures, settings, random state) reaches the next."""
    leave = (
        "import matplotlib\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
        "matplotlib.rcParams['lines.linewidth'] = 7\nplt.figure()\nnp.random.seed(0)\n"
        "leaked = 1"
    )
    look = (
        "import matplotlib\nimport matplotlib.pyplot as plt\nimport numpy as np\n"
        "print('leaked' in globals(), plt.get_fignums(), "
        "matplotlib.rcParams['lines.linewidth'], np.random.randint(2**62))"
    )
    first = run([leave, look], tmp_path / "1" / "labs", warm=True)[1][0].text.split()
    second = run([look], tmp_path / "2" / "labs", warm=True)[0][0].text.split()
    third = run([look], tmp_path / "3" / "labs", warm=True)[0][0].text.split()
    assert first[:3] == ["True", "[1]", "7.0"]
    assert second[:3] == third[:3] == ["False", "[]", "1.5"]
    # numpy's global generator is seeded from the OS in each kernel, as in a cold one.
    assert len({first[3], second[3], third[3]}) == 3


def test_a_warm_cell_past_its_time_limit_is_raised_after_one_run(tmp_path, address):
    runs = tmp_path / "runs.txt"
    stall = (
        f"import time\nwith open({str(runs)!r}, 'a') as f:\n    f.write('run\\n')\ntime.sleep(60)"
    )
    stalled = notebook(WARMTH, stall, "print(6 * 7)")
    before = descendants()
    started = time.monotonic()
    with pytest.raises(CellTimeoutError):
        execute_notebook(stalled, cwd=tmp_path, timeout=3, draw_figures=False, warm=True)
    assert time.monotonic() - started < 30
    assert stalled.cells[0].outputs[0].text == "True\n"
    assert runs.read_text() == "run\n"
    assert stalled.cells[2].outputs == []
    assert settled(before) == before
    assert no_kernels_left()


def test_an_interrupt_reaches_a_warm_kernel(tmp_path, address):
    """nbclient interrupts a cell past its time limit (SIGINT to the launcher's process
    group, relayed to the kernel's); the kernel lives on and runs the next cell."""
    sources = ["while True:\n    pass", "print('after')"]
    outputs = {}
    for kind, server in (("cold", None), ("warm", address)):
        executed = run_client(
            sources,
            tmp_path / kind,
            server,
            timeout=3,
            interrupt_on_timeout=True,
            allow_errors=True,
        )
        outputs[kind] = [[o.get("ename", o.get("text")) for o in c.outputs] for c in executed.cells]
    assert outputs["warm"] == outputs["cold"] == [["KeyboardInterrupt"], ["after\n"]]


def test_a_crashing_warm_kernel_is_reported_like_a_cold_one(tmp_path, address):
    sources = ["print('before')", "import os\nos._exit(3)", "print('after')"]
    before = descendants()
    outcomes = {}
    for kind in ("cold", "warm"):
        executed = notebook(*sources)
        started = time.monotonic()
        with pytest.raises(DeadKernelError) as raised:
            execute_notebook(
                executed,
                cwd=tmp_path / kind,
                allow_errors=True,
                draw_figures=False,
                warm=kind == "warm",
            )
        assert time.monotonic() - started < 60
        outcomes[kind] = (str(raised.value), [c.outputs for c in executed.cells])
    assert outcomes["warm"] == outcomes["cold"]
    assert settled(before) == before
    assert no_kernels_left()


async def start(tmp_path: Path, address: str | None):
    """A kernel manager and a ready client, warm from ``address`` or cold."""
    options = {"transport": "ipc", "ip": str(tmp_path / "k")}
    if address is None:
        km = WakefulKernelManager(**options)
    else:
        km = WarmKernelManager(fork_server=address, **options)
    await km.start_kernel(
        env=kernel_env(tmp_path / ".kernel"), extra_arguments=QUIET_KERNEL, cwd=str(tmp_path)
    )
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def kernel_pid(kc) -> int:
    printed: list[str] = []
    await kc.execute_interactive(
        "import os\nprint(os.getpid())",
        timeout=30,
        output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
    )
    return int("".join(printed))


@pytest.mark.parametrize("kind", ["cold", "warm"])
def test_the_kernel_process_ends_as_the_kernel_does(tmp_path, address, kind):
    """jupyter_client sees the kernel's exit status; killing what it started (the launcher,
    when warm) kills the kernel; a graceful shutdown ends it."""
    server = address if kind == "warm" else None

    async def ended(code: str, folder: Path) -> int | None:
        """The exit status jupyter_client sees after the kernel runs ``code``."""
        km, kc = await start(folder, server)
        kc.execute(code)
        deadline = time.monotonic() + 30
        while await km.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        status = km.provisioner.process.returncode
        kc.stop_channels()
        await km.shutdown_kernel(now=True)
        return status

    async def scenario() -> tuple[int | None, int | None, bool, bool]:
        exited = await ended("import os\nos._exit(3)", tmp_path / "exit")
        signalled = await ended(
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", tmp_path / "killed"
        )

        km, kc = await start(tmp_path / "kill", server)
        pid = await kernel_pid(kc)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)  # SIGKILL to the process group it started
        killed = gone(pid)

        km, kc = await start(tmp_path / "shutdown", server)
        pid = await kernel_pid(kc)
        kc.stop_channels()
        await km.shutdown_kernel()
        return exited, signalled, killed, gone(pid)

    assert asyncio.run(scenario()) == (3, -signal.SIGKILL, True, True)


def gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_run_is_cold_when_the_server_cannot_serve(tmp_path, address, monkeypatch):
    # Switched off.
    monkeypatch.setenv(warm_kernel.SWITCH, "0")
    assert run([WARMTH], tmp_path / "off" / "labs", warm=True)[0][0].text == "False\n"
    monkeypatch.delenv(warm_kernel.SWITCH)
    # An environment the server was not started with (it could not honour PYTHONHASHSEED
    # or the BLAS threads): the server declines, the launcher starts a cold kernel.
    monkeypatch.setenv("MDPLAB_WARM_PROBE", "1")
    differs = run(
        [WARMTH, "import os\nprint(os.environ['MDPLAB_WARM_PROBE'])"],
        tmp_path / "env" / "labs",
        warm=True,
    )
    assert [cell[0].text for cell in differs] == ["False\n", "1\n"]
    monkeypatch.delenv("MDPLAB_WARM_PROBE")
    # No server at that address, or one that never answers.
    assert (
        run_client([WARMTH], tmp_path / "none", str(tmp_path / "no.sock")).cells[0].outputs[0].text
        == "False\n"
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(tmp_path / "mute.sock"))
        mute.listen(8)
        started = time.monotonic()
        executed = run_client([WARMTH], tmp_path / "mute", str(tmp_path / "mute.sock"))
        assert executed.cells[0].outputs[0].text == "False\n"
        assert time.monotonic() - started < 60
    # The server died: fork_server says so, and runs are cold.
    os.kill(server_pid(), 9)
    warm_kernel._server.process.wait()
    assert fork_server(kernel_env(tmp_path / ".env")) is None
    assert run([WARMTH], tmp_path / "dead" / "labs", warm=True)[0][0].text == "False\n"
    shutdown_fork_server()


def test_warm_kernels_are_only_for_runs_without_figures(tmp_path):
    with pytest.raises(ValueError, match="draw_figures=False"):
        execute_notebook(notebook("1"), cwd=tmp_path, warm=True)


def test_no_process_is_left_once_the_server_stops(tmp_path, address):
    before = descendants()
    run(["print(1)"], tmp_path / "labs", warm=True)
    assert settled(before) == before
    assert no_kernels_left()
    server = warm_kernel._server
    assert server is not None
    shutdown_fork_server()
    assert server.process.returncode is not None
    assert warm_kernel._server is None
    assert settled(before) == before
    # The next run starts a new server.
    assert run([WARMTH], tmp_path / "again" / "labs", warm=True)[0][0].text == "True\n"
    assert no_kernels_left()
    shutdown_fork_server()
    assert settled(before) == before
