"""Benchmark the capstone's pipeline: build the autoscaler MDP from the shipped telemetry and
solve it by value iteration.

Run with ``.venv/bin/python benchmarks/bench_autoscaler.py [--repeats 5]`` (not a test). In
one process it times, best of ``--repeats`` runs:

1. ``build_model`` on ``data/autoscaler_telemetry.csv`` (states, actions, counts,
   estimation, costs: 200 states, 4 actions);
2. ``mdplab.autoscaler.solve.value_iteration`` (the library's sparse Bellman operator,
   gamma = 0.95, tol = 0.01: about 120 sweeps);
3. the baseline: the same sweeps written as a student would in the lab, on dense arrays,
   ``V = min_a (C + gamma P V)`` with infeasible pairs at +inf.

It prints the times, the ratio baseline / library, and whether building and solving stay
under the five seconds a student can wait in Colab (the lab's promise).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mdplab.autoscaler.model import build_model
from mdplab.autoscaler.solve import value_iteration
from mdplab.autoscaler.telemetry import read_csv

DATA = Path(__file__).resolve().parents[1] / "data" / "autoscaler_telemetry.csv"
BUDGET_SECONDS = 5.0


def best_of(repeats: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def dense_value_iteration(C: np.ndarray, P: np.ndarray, gamma: float, tol: float) -> int:
    """Sweeps until max |V_new - V| < tol; returns how many."""
    V = np.zeros(C.shape[0])
    feasible = np.isfinite(C)
    for sweep in range(1, 100_000):
        Q = np.where(feasible, C + gamma * (P @ V), np.inf)
        V_new = Q.min(axis=1)
        change = float(np.max(np.abs(V_new - V)))
        V = V_new
        if change < tol:
            return sweep
    raise RuntimeError("no convergence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trace = read_csv(DATA)
    model = build_model(trace)
    sweeps = value_iteration(model.C, model.P, model.gamma)[2]
    assert dense_value_iteration(model.C, model.P, model.gamma, 0.01) == sweeps
    build = best_of(args.repeats, lambda: build_model(trace))
    solve = best_of(args.repeats, lambda: value_iteration(model.C, model.P, model.gamma))
    dense = best_of(
        args.repeats, lambda: dense_value_iteration(model.C, model.P, model.gamma, 0.01)
    )
    print(f"{len(trace['p95_latency_ms'])} minutes of telemetry; {model.C.shape} (states, actions)")
    print(f"build_model:                 {build * 1e3:8.1f} ms")
    print(f"value_iteration ({sweeps} sweeps): {solve * 1e3:8.1f} ms")
    print(f"dense baseline (same sweeps): {dense * 1e3:8.1f} ms")
    print(f"ratio baseline / library:     {dense / solve:8.2f}")
    total = build + solve
    verdict = "met" if total < BUDGET_SECONDS else "MISSED"
    print(f"build + solve {total:.2f} s; budget {BUDGET_SECONDS:g} s: {verdict}")


if __name__ == "__main__":
    main()
