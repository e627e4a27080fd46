"""``mdplab formgrader DIR``: nbgrader's formgrader on a class, from the project's venv.

Formgrader is a Jupyter server extension: it reads ``nbgrader_config.py`` from the folder
the server starts in, and it only grades courses inside the server's root. So the server
is started in the class folder, with it as the root, by the Python that runs ``mdplab``
(whose venv has nbgrader and the grading plugins the class's configuration names), and
the browser opens on formgrader's page rather than on the file browser.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mdplab.term.classroom import CLASS_FILE, CONFIG_FILE, ClassCourse


def formgrader_argv(root: Path, *, port: int | None = None, browser: bool = True) -> list[str]:
    """The command that serves formgrader for the class in ``root``."""
    argv = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.default_url=/formgrader",
    ]
    if port is not None:
        argv.append(f"--ServerApp.port={port}")
    if not browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Jupyter refuses root unless told; root is the usual user of a container.
        argv.append("--allow-root")
    return argv


def run_formgrader(root: Path, *, port: int | None = None, browser: bool = True) -> int:
    """Become the Jupyter server that serves formgrader on the course in ``root``: a class
    (brought up to date with its class.toml first) or the course of a one-off
    ``mdplab grade --out`` run (``OUT/course``). Ctrl-C stops it. The process is replaced
    rather than wrapped, so that a signal to it (Ctrl-C, a service manager's SIGTERM)
    reaches the server itself."""
    root = root.resolve()
    if (root / CLASS_FILE).exists():
        ClassCourse(root).sync()
    elif not (root / CONFIG_FILE).exists():
        raise ValueError(
            f"{root} is no nbgrader course: give a class folder (mdplab class init) or the "
            "course/ folder of an `mdplab grade --out` run"
        )
    env = dict(os.environ)
    # nbgrader runs alembic, and Jupyter its kernels, from PATH: put this venv's first, so
    # that a venv that was never activated works as well as an activated one.
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([scripts, env.get("PATH", "")])
    print(f"formgrader for the course in {root} (Ctrl-C stops it)", flush=True)
    os.chdir(root)
    argv = formgrader_argv(root, port=port, browser=browser)
    os.execve(argv[0], argv, env)
    return 1  # not reached: execve returns only by raising
