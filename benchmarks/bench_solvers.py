r"""Benchmark mdplab against quantecon's DiscreteDP on the large warehouse.

Run with ``.venv/bin/python benchmarks/bench_solvers.py`` (not a test; needs the ``bench``
extra for quantecon). It builds ``warehouse(capacity=2000, discount=0.95)`` (2001 states,
about two million state-action pairs), and in one process:

1. measures the copy bandwidth (``np.copyto`` of a 512 MB array, read + write bytes) and
   compares one Bellman sweep with the memory-bandwidth bound: the bytes the sweep must
   touch divided by that bandwidth;
2. solves by value iteration (epsilon = 1e-6) and policy iteration with mdplab and with
   quantecon's DiscreteDP in the state-action-pair formulation (same sparse Q, R = -cost,
   since quantecon maximises), after warming up both JITs on a small instance, and checks
   that both find the same policy and values;
3. solves the LP with ``solver="gurobi"``, which the size-limited pip licence refuses, and
   shows the fallback to HiGHS with its warning and time.

Both libraries start value iteration from v = 0 and policy iteration from the policy greedy
for the one-period costs (quantecon's default), so they do the same iterations and the
timings compare like with like. Times are the best of ``--repeats`` runs (best of 300
for a single sweep), which filters out other processes competing for the two cores.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from typing import Any

import numpy as np
from quantecon.markov import DiscreteDP
from timing import best_time

import mdplab
from mdplab import FiniteMDP, SolverFallbackWarning, warehouse
from mdplab.bellman import Sweeper, default_threads, uniform_width

VI_TARGET = 0.6
PI_TARGET = 1.0
SWEEP_TARGET = 1.5


def copy_bandwidth(n_bytes: int = 512 * 2**20, repeats: int = 5) -> float:
    """Bytes per second moved by ``np.copyto`` (each byte read once and written once)."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    seconds, _ = best_time(lambda: np.copyto(dst, src), repeats)
    return 2 * src.nbytes / seconds


def sweep_bytes(mdp: FiniteMDP, *, with_indptr: bool) -> int:
    """Bytes one fused sweep must read or write, once each."""
    p = mdp.transitions
    n = mdp.n_states
    total = p.data.nbytes + p.indices.nbytes + mdp.costs.nbytes + mdp.state_ptr.nbytes
    total += 8 * n * 3  # read v, write Tv and the chosen pair of every state
    if with_indptr:
        total += p.indptr.nbytes
    return total


def to_quantecon(mdp: FiniteMDP) -> DiscreteDP:
    """The same model for quantecon (which maximises): R = -cost, same sparse Q."""
    return DiscreteDP(
        -np.asarray(mdp.costs),
        mdp.transitions,
        mdp.discount,
        np.asarray(mdp.pair_state),
        np.asarray(mdp.pair_action),
    )


def myopic_policy(mdp: FiniteMDP) -> np.ndarray:
    """Greedy for v(s) = min_a r(s, a): quantecon's default start for policy iteration."""
    return mdplab.greedy(mdp, np.minimum.reduceat(mdp.costs, mdp.state_ptr[:-1]))


def solve_both(mdp: FiniteMDP, ddp: DiscreteDP, epsilon: float, repeats: int) -> dict[str, Any]:
    zeros = np.zeros(mdp.n_states)
    big = 10**6
    out: dict[str, Any] = {}
    out["vi_ours"] = best_time(lambda: mdplab.value_iteration(mdp, epsilon=epsilon), repeats)
    out["vi_qe"] = best_time(
        lambda: ddp.solve("value_iteration", v_init=zeros, epsilon=epsilon, max_iter=big),
        repeats,
    )
    out["pi_ours"] = best_time(
        lambda: mdplab.policy_iteration(mdp, policy0=myopic_policy(mdp)), repeats
    )
    out["pi_qe"] = best_time(lambda: ddp.solve("policy_iteration", max_iter=big), repeats)
    return out


def report_pair(name: str, ours: tuple[float, Any], theirs: tuple[float, Any], target: float):
    t_ours, res_ours = ours
    t_qe, res_qe = theirs
    ratio = t_ours / t_qe
    same_policy = np.array_equal(res_ours.policy, res_qe.sigma)
    value_gap = float(np.max(np.abs(res_ours.values + res_qe.v)))
    verdict = "meets" if ratio <= target else "MISSES"
    print(
        f"{name}: mdplab {t_ours:8.3f} s ({res_ours.iterations} iterations)   "
        f"quantecon {t_qe:8.3f} s ({res_qe.num_iter} iterations)   "
        f"ratio {ratio:.3f} ({verdict} target <= {target})"
    )
    print(f"    same policy: {same_policy}   max |V_mdplab - V_quantecon| = {value_gap:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=2000)
    parser.add_argument("--discount", type=float, default=0.95)
    parser.add_argument("--epsilon", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--lp-capacity",
        type=int,
        default=None,
        help="capacity for the LP fallback demo (default: --capacity; HiGHS takes ~20 s "
        "on the 2-million-row LP of capacity 2000 on a quiet 2-core machine)",
    )
    parser.add_argument("--skip-lp", action="store_true")
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} CPUs, sweep threads {default_threads()}, "
        f"load average {os.getloadavg()[0]:.2f} (other processes skew the timings)"
    )
    start = time.perf_counter()
    mdp = warehouse(capacity=args.capacity, discount=args.discount)
    build = time.perf_counter() - start
    print(
        f"model: warehouse(capacity={args.capacity}, discount={args.discount}): "
        f"{mdp.n_states} states, {mdp.n_pairs} pairs, {mdp.transitions.nnz} transition "
        f"entries; built in {build:.3f} s"
    )

    # Warm up: compile (or load from cache) both libraries' numba code on a small model.
    small = warehouse(capacity=20, discount=args.discount)
    solve_both(small, to_quantecon(small), args.epsilon, 1)

    # --- one sweep against the memory-bandwidth bound ---------------------------------
    bandwidth = copy_bandwidth()
    sweeper = Sweeper(mdp)
    v = np.zeros(mdp.n_states)
    new_v = np.empty_like(v)
    pairs = np.empty(mdp.n_states, dtype=np.int64)
    sweeper.sweep(v, new_v, pairs, mdp.discount)
    v[:] = new_v
    sweep_s, _ = best_time(lambda: sweeper.sweep(v, new_v, pairs, mdp.discount), 300)
    single = Sweeper(mdp, threads=1)
    single_s, _ = best_time(lambda: single.sweep(v, new_v, pairs, mdp.discount), 100)
    width = uniform_width(mdp)
    print(f"copy bandwidth (np.copyto, 512 MB, read + write): {bandwidth / 1e9:.1f} GB/s")
    with_ptr = sweep_bytes(mdp, with_indptr=True)
    bound = with_ptr / bandwidth
    verdict = "meets" if sweep_s / bound <= SWEEP_TARGET else "MISSES"
    print(
        f"one Bellman sweep: {sweep_s * 1e3:.2f} ms; bytes of data + indices + indptr + "
        f"costs + state offsets + values: {with_ptr / 1e6:.1f} MB -> bound "
        f"{bound * 1e3:.2f} ms; ratio {sweep_s / bound:.2f} ({verdict} target <= "
        f"{SWEEP_TARGET})"
    )
    print(f"    the same sweep on 1 thread: {single_s * 1e3:.2f} ms")
    if width >= 0:
        own = sweep_bytes(mdp, with_indptr=False) / bandwidth
        print(
            f"    every pair has {width} successors, so the kernel skips indptr: the bytes it "
            f"actually reads give a bound of {own * 1e3:.2f} ms (ratio {sweep_s / own:.2f})"
        )

    # --- VI and PI against quantecon ---------------------------------------------------
    ddp = to_quantecon(mdp)
    results = solve_both(mdp, ddp, args.epsilon, args.repeats)
    print(f"value iteration, epsilon = {args.epsilon:g}, from v = 0:")
    report_pair("  VI", results["vi_ours"], results["vi_qe"], VI_TARGET)
    print("policy iteration, from the myopic policy:")
    report_pair("  PI", results["pi_ours"], results["pi_qe"], PI_TARGET)
    exact = results["pi_ours"][1].values
    vi_gap = float(np.max(np.abs(results["vi_ours"][1].values - exact)))
    print(f"  VI values within {vi_gap:.2e} of the PI values (epsilon/2 = {args.epsilon / 2:g})")

    # --- LP: Gurobi's size-limited licence refuses, HiGHS takes over -------------------
    if args.skip_lp:
        return
    lp_capacity = args.capacity if args.lp_capacity is None else args.lp_capacity
    lp_mdp = mdp if lp_capacity == args.capacity else warehouse(lp_capacity, discount=args.discount)
    lp_exact = exact if lp_mdp is mdp else mdplab.policy_iteration(lp_mdp).values
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SolverFallbackWarning)
        start = time.perf_counter()
        lp = mdplab.solve_lp(lp_mdp, solver="gurobi")
        lp_s = time.perf_counter() - start
    print(
        f"solve_lp(warehouse(capacity={lp_capacity}), solver='gurobi'): {lp_mdp.n_pairs} "
        f"constraints, {lp_mdp.n_states} variables"
    )
    for w in caught:
        if issubclass(w.category, SolverFallbackWarning):
            print(f"  warning {w.category.__name__}: {w.message}")
    print(
        f"  solved by {lp.solver} in {lp_s:.1f} s ({lp.iterations} simplex iterations); "
        f"max |V_lp - V_pi| = {float(np.max(np.abs(lp.values - lp_exact))):.2e}; "
        f"same policy as PI: {np.array_equal(lp.policy, mdplab.greedy(lp_mdp, lp_exact))}"
    )


if __name__ == "__main__":
    main()
