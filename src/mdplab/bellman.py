r"""The Bellman operator, Q-values and greedy policies.

For values :math:`v` the Q-value of a pair is

.. math:: Q_v(s, a) = r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, v(s'),

the Bellman operator is :math:`(Tv)(s) = \min_{a \in A(s)} Q_v(s, a)`, and a policy is
*greedy* for :math:`v` when it attains that minimum in every state.

Tie rule (used everywhere in :mod:`mdplab`): let :math:`m(s) = \min_a Q_v(s, a)`. The actions
whose Q-value is at most :math:`m(s) + 10^{-9}\,(1 + |m(s)|)` are tied, and the greedy
action is the *first* tied one in pair order (for the warehouse: the smallest production
quantity). Policy iteration additionally keeps its current action when that action is tied.

Two implementations exist: a fused numba kernel (default; large models are swept by a few
threads, ``NUMBA_NUM_THREADS`` or the usable CPUs, each taking blocks of states) and a plain
numpy/scipy reference (``backend="numpy"``) used to check the kernel.
"""

from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Literal

import numpy as np

from mdplab._validation import TIE_RTOL, values_vector
from mdplab.mdp import FiniteMDP

__all__ = [
    "Backend",
    "bellman_update",
    "default_threads",
    "extract_policy",
    "greedy",
    "q_values",
    "uniform_width",
    "work_blocks",
]

Backend = Literal["numba", "numpy"]

# Blocks per thread: threads pull blocks from a shared queue, so a thread slowed down by another
# process leaves its remaining blocks to the others.
_BLOCKS_PER_THREAD = 4
# Below this much work (transition entries + pairs) a sweep takes well under a millisecond and
# handing blocks to threads would cost more than it saves.
PARALLEL_MIN_WORK = 200_000

_kernel_module: ModuleType | None = None
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)
_pool_lock = threading.Lock()
# Per-model layout facts, computed on first use and dropped with the model.
_block_cache: weakref.WeakKeyDictionary[FiniteMDP, tuple[int, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
_width_cache: weakref.WeakKeyDictionary[FiniteMDP, int] = weakref.WeakKeyDictionary()


def kernels() -> ModuleType:
    """The compiled-kernel module, imported on first use (imports numba)."""
    global _kernel_module
    if _kernel_module is None:
        from mdplab import _kernels

        _kernel_module = _kernels
    return _kernel_module


def default_threads() -> int:
    """Threads used by a sweep: ``NUMBA_NUM_THREADS`` if set, else the usable CPUs."""
    configured = os.environ.get("NUMBA_NUM_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool with ``workers`` threads, recreated after ``fork``.

    A forked child inherits the pool object but none of its threads, so a pool is only reused
    in the process that created it.
    """
    global _pool
    with _pool_lock:
        pid = os.getpid()
        if _pool is None or _pool[0] != pid or _pool[1] != workers:
            if _pool is not None and _pool[0] == pid:
                _pool[2].shutdown(wait=False)
            _pool = (pid, workers, ThreadPoolExecutor(workers, thread_name_prefix="mdplab"))
        return _pool[2]


def work_blocks(mdp: FiniteMDP, n_threads: int | None = None) -> np.ndarray:
    """Boundaries of consecutive-state blocks with about equal sweep work.

    Work of a state = its transition entries plus its pairs. Returns ``block_ptr`` with
    block ``b`` covering states ``block_ptr[b]:block_ptr[b + 1]``: one block for small models
    or one thread, else a few per thread.
    """
    threads = default_threads() if n_threads is None else n_threads
    cached = _block_cache.get(mdp)
    if cached is not None and cached[0] == threads:
        return cached[1]
    n = mdp.n_states
    entries = mdp.transitions.indptr[mdp.state_ptr].astype(np.int64)
    work = np.diff(entries) + np.diff(mdp.state_ptr) + 1
    cumulative = np.concatenate(([0], np.cumsum(work)))
    parallel = threads > 1 and cumulative[-1] >= PARALLEL_MIN_WORK
    n_blocks = max(1, min(n, _BLOCKS_PER_THREAD * threads)) if parallel else 1
    targets = np.linspace(0, cumulative[-1], n_blocks + 1)
    # Cut at the state boundary nearest to each equal-work target.
    upper = np.minimum(np.searchsorted(cumulative, targets, side="left"), n)
    lower = np.maximum(upper - 1, 0)
    nearer_lower = targets - cumulative[lower] < cumulative[upper] - targets
    bounds = np.where(nearer_lower, lower, upper)
    bounds[0], bounds[-1] = 0, n
    block_ptr = np.unique(bounds).astype(np.int64)
    _block_cache[mdp] = (threads, block_ptr)
    return block_ptr


def uniform_width(mdp: FiniteMDP) -> int:
    """The common number of successors of every pair, or -1 if pairs differ."""
    cached = _width_cache.get(mdp)
    if cached is None:
        counts = np.diff(mdp.transitions.indptr)
        cached = int(counts[0]) if np.all(counts == counts[0]) else -1
        _width_cache[mdp] = cached
    return cached


class Sweeper:
    """Reusable, allocation-free Bellman sweeps on one model (used by the solvers)."""

    def __init__(
        self, mdp: FiniteMDP, backend: Backend = "numba", threads: int | None = None
    ) -> None:
        if backend not in ("numba", "numpy"):
            raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
        self.mdp = mdp
        self.backend = backend
        self._no_keep = np.empty(0, dtype=np.int64)
        if backend == "numba":
            self._k = kernels()
            self._threads = default_threads() if threads is None else max(1, int(threads))
            self._blocks = [int(b) for b in work_blocks(mdp, self._threads)]
            width = uniform_width(mdp)
            # An int layout selects the kernel specialisation that never reads indptr.
            self._layout = width if width > 0 else mdp.transitions.indptr

    def sweep(
        self,
        v: np.ndarray,
        out_v: np.ndarray,
        out_pair: np.ndarray,
        beta: float,
        keep: np.ndarray | None = None,
    ) -> None:
        """``out_v <- min_a Q_v``, ``out_pair <- tie-rule argmin`` (pair indices)."""
        m = self.mdp
        if self.backend == "numpy":
            new_v, pairs = reference_sweep(m, v, beta, keep)
            out_v[:] = new_v
            out_pair[:] = pairs
            return
        p = m.transitions
        args = (
            m.state_ptr,
            self._layout,
            p.indices,
            p.data,
            m.costs,
            beta,
            v,
            self._no_keep if keep is None else keep,
            TIE_RTOL,
            out_v,
            out_pair,
        )
        kernel = self._k.bellman_sweep
        blocks = self._blocks
        if len(blocks) == 2:
            kernel(blocks[0], blocks[1], *args)
            return
        # Each thread, the calling one included, takes the next block until none are left.
        queue = iter(range(len(blocks) - 1))
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    b = next(queue, None)
                if b is None:
                    return
                kernel(blocks[b], blocks[b + 1], *args)

        helpers = [_thread_pool(self._threads - 1).submit(work) for _ in range(self._threads - 1)]
        work()
        for helper in helpers:
            # A helper that has not started yet finds no block left: cancel it instead of
            # waiting for a pool thread to become free.
            if not helper.cancel():
                helper.result()

    def policy_sweep(
        self, pairs: np.ndarray, v: np.ndarray, out_v: np.ndarray, beta: float
    ) -> None:
        """``out_v <- r_pi + beta P_pi v`` for the policy choosing ``pairs``."""
        m = self.mdp
        if self.backend == "numpy":
            out_v[:] = m.costs[pairs] + beta * (m.transitions[pairs] @ v)
            return
        p = m.transitions
        self._k.policy_sweep(pairs, p.indptr, p.indices, p.data, m.costs, beta, v, out_v)

    def sup_diff(self, a: np.ndarray, b: np.ndarray) -> float:
        r""":math:`\|a - b\|_\infty`."""
        if self.backend == "numpy":
            return float(np.max(np.abs(a - b)))
        return float(self._k.sup_norm_diff(a, b))


def reference_sweep(
    mdp: FiniteMDP, v: np.ndarray, beta: float, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy/scipy Bellman sweep with the same tie rule as the kernel (for checking)."""
    q = mdp.costs + beta * (mdp.transitions @ v)
    starts = mdp.state_ptr[:-1]
    best = np.minimum.reduceat(q, starts)
    threshold = best + TIE_RTOL * (1.0 + np.abs(best))
    tied = q <= np.repeat(threshold, mdp.action_counts)
    hits = np.flatnonzero(tied)
    # Every state has a tied pair (its minimiser), so the first hit at or after the state's
    # first pair belongs to that state.
    pairs = hits[np.searchsorted(hits, starts)]
    if keep is not None:
        pairs = np.where(tied[keep], keep, pairs)
    return best, pairs.astype(np.int64)


def q_values(mdp: FiniteMDP, values: Any) -> np.ndarray:
    r"""Per-pair :math:`Q_v(s, a) = r(s, a) + \beta \sum_{s'} P(s'|s,a) v(s')`, in pair order."""
    v = values_vector(values, mdp.n_states)
    return mdp.costs + mdp.discount * (mdp.transitions @ v)


def bellman_update(
    mdp: FiniteMDP, values: Any, *, backend: Backend = "numba"
) -> tuple[np.ndarray, np.ndarray]:
    r"""One sweep of the Bellman operator.

    Returns ``(Tv, policy)`` where :math:`(Tv)(s) = \min_a Q_v(s, a)` and ``policy`` holds
    the greedy action label of every state (tie rule in the module docstring).
    """
    v = values_vector(values, mdp.n_states)
    new_v, pairs = _sweep(mdp, v, mdp.discount, backend)
    return new_v, mdp.pair_action[pairs]


def greedy(mdp: FiniteMDP, values: Any, *, backend: Backend = "numba") -> np.ndarray:
    r"""Greedy policy for ``values``: action labels minimising :math:`Q_v(s, \cdot)`.

    Ties are broken by the tie rule in the module docstring (first tied action in pair order).
    """
    return bellman_update(mdp, values, backend=backend)[1]


#: Alias of :func:`greedy`: extracting a policy from values is the greedy step.
extract_policy = greedy


def _sweep(
    mdp: FiniteMDP,
    v: np.ndarray,
    beta: float,
    backend: Backend,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    sweeper = Sweeper(mdp, backend)
    out_v = np.empty(mdp.n_states)
    out_pair = np.empty(mdp.n_states, dtype=np.int64)
    sweeper.sweep(v, out_v, out_pair, beta, keep)
    return out_v, out_pair
