"""Benchmark notebook execution with cells that clear an ipywidgets Output widget, as the
explorers of lab03-lab05 do: plain nbclient against nbclient with
:class:`mdplab.course.kernel_client.WakefulKernelManager`.

Run with ``.venv/bin/python benchmarks/bench_kernel_client.py [--runs 6]`` (not a test). In
one process it executes the same notebook (6 cells, each clearing and refilling an Output
widget 60 times; about 0.3 s of work a cell) ``--runs`` times with each client, under a
cell timeout of ``--timeout`` seconds, and prints for each the total time, the slowest
cell and how many cells took longer than 2 s (a reply slept through: plain nbclient then
waits for the whole timeout), and the ratio plain / wakeful.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import nbformat
from nbclient import NotebookClient

from mdplab.course.execute import QUIET_KERNEL
from mdplab.course.kernel_client import WakefulKernelManager

CELL = """\
import ipywidgets as widgets
from IPython.display import clear_output, display
shown = widgets.Output()
display(shown)
for step in range(60):
    with shown:
        clear_output()
        print(step)
"""
SLOW = 2.0


def run(runs: int, timeout: int, **client_options: Any) -> tuple[float, list[float]]:
    """Total seconds and every cell's seconds over ``runs`` executions."""
    cells: list[float] = []
    begun: list[float] = []
    start = time.perf_counter()
    for _ in range(runs):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(CELL) for _ in range(6)]
        client = NotebookClient(
            notebook, timeout=timeout, extra_arguments=QUIET_KERNEL, **client_options
        )
        client.on_cell_execute = lambda **_: begun.append(time.perf_counter())
        client.on_cell_executed = lambda **_: cells.append(time.perf_counter() - begun[-1])
        client.execute()
    return time.perf_counter() - start, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--timeout", type=int, default=10)
    args = parser.parse_args()
    totals = {}
    for name, options in [
        ("plain nbclient", {}),
        ("wakeful client", {"kernel_manager_class": WakefulKernelManager}),
    ]:
        total, cells = run(args.runs, args.timeout, **options)
        totals[name] = total
        slow = sum(seconds > SLOW for seconds in cells)
        print(
            f"{name:15s} {total:6.1f} s for {len(cells)} cells; slowest {max(cells):5.2f} s; "
            f"{slow} cell(s) over {SLOW:g} s"
        )
    print(f"ratio plain / wakeful = {totals['plain nbclient'] / totals['wakeful client']:.2f}")


if __name__ == "__main__":
    main()
