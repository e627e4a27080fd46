r"""The Bellman operator, Q-values and greedy policies.

For values :math:`v` the Q-value of a pair is

.. math:: Q_v(s, a) = r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, v(s'),

the Bellman operator is :math:`(Tv)(s) = \min_{a \in A(s)} Q_v(s, a)`, and a policy is
*greedy* for :math:`v` when it attains that minimum in every state.

Tie rule (used everywhere in :mod:`mdplab`): let :math:`m(s) = \min_a Q_v(s, a)`. The actions
whose Q-value is at most :math:`m(s) + 10^{-9}\,(1 + |m(s)|)` are tied, and the greedy
action is the *first* tied one in pair order (for the warehouse: the smallest production
quantity). Policy iteration additionally keeps its current action when that action is tied.

Two implementations exist: a fused numba kernel (default, parallel over states) and a plain
numpy/scipy reference (``backend="numpy"``) used to check the kernel.
"""

from __future__ import annotations

import weakref
from types import ModuleType
from typing import Any, Literal

import numpy as np

from mdplab._validation import TIE_RTOL, values_vector
from mdplab.mdp import FiniteMDP

__all__ = [
    "Backend",
    "bellman_update",
    "extract_policy",
    "greedy",
    "q_values",
    "uniform_width",
    "work_blocks",
]

Backend = Literal["numba", "numpy"]

# A few blocks per thread keeps threads busy even when block costs are estimated roughly.
_BLOCKS_PER_THREAD = 8

_kernel_module: ModuleType | None = None
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


def work_blocks(mdp: FiniteMDP, n_threads: int | None = None) -> np.ndarray:
    """Boundaries of consecutive-state blocks with about equal sweep work.

    Work of a state = its transition entries plus its pairs. Returns ``block_ptr`` with
    block ``b`` covering states ``block_ptr[b]:block_ptr[b + 1]``; a few blocks per thread
    so that numba's static split of the block range is balanced.
    """
    if n_threads is None:
        import numba

        n_threads = numba.get_num_threads()
    cached = _block_cache.get(mdp)
    if cached is not None and cached[0] == n_threads:
        return cached[1]
    n = mdp.n_states
    n_blocks = max(1, min(n, _BLOCKS_PER_THREAD * n_threads))
    entries = mdp.transitions.indptr[mdp.state_ptr].astype(np.int64)
    work = np.diff(entries) + np.diff(mdp.state_ptr) + 1
    cumulative = np.concatenate(([0], np.cumsum(work)))
    targets = np.linspace(0, cumulative[-1], n_blocks + 1)
    bounds = np.searchsorted(cumulative, targets, side="left")
    bounds[0], bounds[-1] = 0, n
    block_ptr = np.unique(bounds).astype(np.int64)
    _block_cache[mdp] = (n_threads, block_ptr)
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

    def __init__(self, mdp: FiniteMDP, backend: Backend = "numba") -> None:
        if backend not in ("numba", "numpy"):
            raise ValueError(f"backend must be 'numba' or 'numpy', got {backend!r}")
        self.mdp = mdp
        self.backend = backend
        self._no_keep = np.empty(0, dtype=np.int64)
        if backend == "numba":
            self._k = kernels()
            self._blocks = work_blocks(mdp)
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
        self._k.bellman_sweep(
            self._blocks,
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
