"""A stand-in for a bare Google Colab runtime: a virtual environment holding only what
Colab has (numpy, matplotlib, ipywidgets, an IPython kernel) plus gurobipy, which the labs'
first cell installs there. The project's own package is absent, so a student notebook that
leans on ``mdplab`` fails here as it would in Colab.

The environment is made once under ``.venv/colab-runtime`` and reused while its pinned
requirements stay the same.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

from course_helpers import REPO

# Versions as a Colab runtime ships them (late 2025), so that the labs meet the old
# ipywidgets 7 API and numpy 2.0 there.
REQUIREMENTS = (
    "numpy==2.0.2",
    "matplotlib==3.10.0",
    "ipywidgets==7.7.1",
    # Colab runs ipykernel 6; ipykernel 7 here intermittently lost a cell's reply after
    # gurobipy wrote to the C-level stdout, leaving nbclient waiting on an idle kernel.
    "ipykernel==6.29.5",
    "gurobipy",
)
KERNEL_NAME = "colab-runtime"
HOME = REPO / ".venv" / "colab-runtime"


def colab_kernel_dir() -> Path:
    """A JUPYTER_PATH entry whose ``kernels/colab-runtime`` runs the Colab-like Python."""
    HOME.parent.mkdir(parents=True, exist_ok=True)
    with open(HOME.parent / "colab-runtime.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers may ask at once
        stamp = HOME / "requirements.json"
        if not stamp.exists() or json.loads(stamp.read_text()) != list(REQUIREMENTS):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(HOME)], check=True)
            subprocess.run(
                [str(HOME / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                check=True,
            )
            spec = HOME / "share" / "jupyter" / "kernels" / KERNEL_NAME
            spec.mkdir(parents=True, exist_ok=True)
            (spec / "kernel.json").write_text(
                json.dumps(
                    {
                        "argv": [
                            str(HOME / "bin" / "python"),
                            "-m",
                            "ipykernel_launcher",
                            "-f",
                            "{connection_file}",
                        ],
                        "display_name": "Colab-like runtime",
                        "language": "python",
                    }
                )
            )
            stamp.write_text(json.dumps(list(REQUIREMENTS)))
    return HOME / "share" / "jupyter"


def assert_mdplab_absent() -> None:
    """The stand-in is only useful if the project's package cannot be imported there."""
    probe = subprocess.run(
        [str(HOME / "bin" / "python"), "-c", "import mdplab"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert probe.returncode != 0, "mdplab is importable in the Colab-like runtime"
