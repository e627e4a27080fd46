r"""Lab 05's race against mdplab: the worked solution's four methods, timed beside the
reference library's on the same warehouses, as ratios.

Run with ``.venv/bin/python benchmarks/bench_race.py`` (not a test). Lab 05 (§8) races the
student's value iteration and Gauss–Seidel against compact modified policy iteration
(k = 5) and policy iteration, at :math:`\beta = 0.95`, :math:`\varepsilon = 10^{-4}`, on
warehouses of capacity 3 to 50. A student's runtime has no ``mdplab``, so the lab cannot
draw mdplab's line; this script does, in one process:

1. it takes the lab's functions from the master (the worked answers of ``bellman_update``,
   ``value_iteration`` and ``gauss_seidel``, and the read-only cells ``warehouse_arrays``
   and ``four_methods``), as the solution notebook runs them;
2. for every capacity it solves the warehouse with each lab method and with mdplab's
   counterpart (``value_iteration``, ``modified_policy_iteration(k=5)``,
   ``policy_iteration``; numba and numpy backends) and checks that all values agree within
   :math:`\varepsilon` (each is within :math:`\varepsilon/2` of :math:`V^*`);
3. it prints iterations, the best time of ``--repeats`` runs, and the ratio lab / mdplab.

Both sides do the same iterations (the same stopping rule from :math:`V_0 = 0`); the
ratio is the cost of a sweep in the lab's dense numpy (or Python loop, for Gauss–Seidel)
against mdplab's sparse state-action pairs. The best of several runs filters out other
processes on a shared machine; ratios, not seconds, are the result.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from timing import best_time

import mdplab
from mdplab.course.authoring import build_master
from mdplab.course.derive import reference_answers
from mdplab.course.layout import Layout

LAB_CELLS = ("warehouse_arrays", "bellman_update", "value_iteration", "gauss_seidel")
BETA, EPSILON = 0.95, 1e-4


def lab_functions() -> dict[str, Callable[..., Any]]:
    """The lab's solvers, defined as the worked solution defines them. Only definitions and
    imports are run from each cell: its demonstrations print and plot."""
    layout = Layout(Path(__file__).resolve().parents[1])
    master = build_master(layout.lab("lab05"), layout)
    answers = reference_answers(master)
    cells = {
        cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source
        for cell in master.cells
        if cell.cell_type == "code"
    }
    namespace: dict[str, Any] = {"np": np}
    for grade_id in (*LAB_CELLS, "four_methods"):
        tree = ast.parse(answers.get(grade_id, cells[grade_id]))
        keep = (ast.FunctionDef, ast.Import, ast.ImportFrom)
        tree.body = [node for node in tree.body if isinstance(node, keep)]
        exec(compile(tree, f"<lab05 {grade_id}>", "exec"), namespace)
    return namespace


def race(capacity: int, lab: dict[str, Callable[..., Any]], repeats: int) -> list[tuple]:
    """Rows (method, lab iterations, lab seconds, mdplab iterations, mdplab seconds) for one
    warehouse, after checking that every method's values agree within epsilon."""
    R, P = lab["warehouse_arrays"](capacity=capacity)
    mdp = mdplab.warehouse(capacity=capacity, discount=BETA)
    pairs = {
        "value iteration": (
            lambda: lab["value_iteration"](R, P, BETA, epsilon=EPSILON)[:3],
            lambda: mdplab.value_iteration(mdp, epsilon=EPSILON),
        ),
        "Gauss-Seidel": (
            lambda: lab["gauss_seidel"](R, P, BETA, EPSILON)[:3],
            lambda: mdplab.value_iteration(mdp, epsilon=EPSILON, backend="numpy"),
        ),
        "modified PI (k = 5)": (
            lambda: lab["modified_policy_iteration_compact"](R, P, BETA, EPSILON),
            lambda: mdplab.modified_policy_iteration(mdp, k=5, epsilon=EPSILON),
        ),
        "policy iteration": (
            lambda: lab["policy_iteration_compact"](R, P, BETA, EPSILON),
            lambda: mdplab.policy_iteration(mdp),
        ),
    }
    rows, values = [], []
    for method, (ours, theirs) in pairs.items():
        lab_seconds, (V, _, lab_iterations) = best_time(ours, repeats)
        ref_seconds, solution = best_time(theirs, repeats)
        values += [np.asarray(V, dtype=float), np.asarray(solution.values, dtype=float)]
        rows.append((method, int(lab_iterations), lab_seconds, solution.iterations, ref_seconds))
    spread = max(float(np.max(np.abs(v - values[-1]))) for v in values)
    assert spread < EPSILON, f"capacity {capacity}: the methods disagree by {spread:.3g}"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacities", type=int, nargs="+", default=[3, 6, 12, 25, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    lab = lab_functions()
    race(3, lab, 1)  # compiles mdplab's numba kernels before anything is timed
    print(f"beta = {BETA}, epsilon = {EPSILON:g}; best of {args.repeats} runs")
    print("Gauss-Seidel's mdplab line is mdplab's (Jacobi) value iteration on numpy.")
    header = f"{'capacity':>8}  {'method':20} {'lab it':>7} {'lab ms':>9} {'mdplab it':>9}"
    print(header + f" {'mdplab ms':>10} {'lab / mdplab':>13}")
    for capacity in args.capacities:
        for method, lab_it, lab_s, ref_it, ref_s in race(capacity, lab, args.repeats):
            print(
                f"{capacity:8d}  {method:20} {lab_it:7d} {1000 * lab_s:9.2f} {ref_it:9d} "
                f"{1000 * ref_s:10.2f} {lab_s / ref_s:13.1f}"
            )


if __name__ == "__main__":
    main()
