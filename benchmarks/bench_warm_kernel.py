"""Benchmark the catalogue's plain runs in cold kernels against warm ones
(:mod:`mdplab.course.warm_kernel`).

Run with ``.venv/bin/python benchmarks/bench_warm_kernel.py [--lab lab04] [--runs 5]`` (not a
test). In one process it times, ``--runs`` times each with cold kernels and with warm ones
(``MDPLAB_WARM_KERNELS=0`` switches warm kernels off):

1. a one-cell notebook that imports numpy, pyplot and a lab's checks and prints, run as the
   catalogue runs notebooks (``execute_notebook(..., draw_figures=False)``): the fixed cost
   of a run, which warm kernels cut;
2. ``check_answers`` with the reference answers of ``--lab``: a whole plain run of the
   catalogue test, the lab's cells included.

The fork server is started (and timed) once first; cold and warm runs then alternate, so
that other processes on the two cores slow both alike. It prints the best and the mean of
each, the ratio of the means cold / warm, and checks that the runs gave the same outputs
and verdicts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from mdplab.course.authoring import build_master
from mdplab.course.check import check_answers
from mdplab.course.execute import execute_notebook
from mdplab.course.layout import Layout
from mdplab.course.warm_kernel import SWITCH, shutdown_fork_server

REPO = Path(__file__).resolve().parents[1]
IMPORTS = (
    "import numpy as np\n"
    "import matplotlib.pyplot as plt\n"
    "from mdplab.checks.lab04 import check_policy_iteration\n"
    "print(np.arange(3).sum(), plt.get_backend())"
)


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """The seconds of each of ``runs`` calls and the last call's result."""
    seconds, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, out


def imports_notebook(folder: Path) -> list:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(IMPORTS)])
    execute_notebook(notebook, cwd=folder, allow_errors=True, draw_figures=False, warm=True)
    return notebook.cells[0].outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default="lab04")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    layout = Layout(REPO)
    lab = layout.lab(args.lab)
    master = build_master(lab, layout)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "labs"
        folder.mkdir()
        cases: dict[str, Callable[[], Any]] = {
            "imports notebook": lambda: imports_notebook(folder),
            f"check_answers {args.lab}": lambda: check_answers(lab, layout, {}, master=master),
        }
        started, _ = timed(cases["imports notebook"], 1)
        print(f"fork server start and first warm run: {started[0]:.2f} s")
        results: dict[tuple[str, str], tuple[list[float], Any]] = {}
        for name, case in cases.items():
            for kind in ("cold", "warm") * args.runs:
                # Alternated, so that a change in the machine's load meets both alike. The
                # switch is unset, not "1", for warm runs: the server was started without it,
                # and declines a kernel whose environment differs from its own.
                if kind == "warm":
                    os.environ.pop(SWITCH, None)
                else:
                    os.environ[SWITCH] = "0"
                seconds, out = timed(case, 1)
                results.setdefault((name, kind), ([], None))
                results[name, kind] = (results[name, kind][0] + seconds, out)
        os.environ.pop(SWITCH, None)
        shutdown_fork_server()
    for name in cases:
        (cold, cold_out), (warm, warm_out) = results[name, "cold"], results[name, "warm"]
        assert cold_out == warm_out, f"{name}: cold {cold_out} != warm {warm_out}"
        for kind, seconds in (("cold", cold), ("warm", warm)):
            print(
                f"{name:22s} {kind}: best {min(seconds):5.2f} s, "
                f"mean {statistics.mean(seconds):5.2f} s over {len(seconds)} runs"
            )
        ratio = statistics.mean(cold) / statistics.mean(warm)
        print(f"{name:22s} ratio cold / warm = {ratio:.2f} (same outputs)")


if __name__ == "__main__":
    main()
