r"""Numba kernels behind :mod:`mdplab.bellman`.

Imported lazily (on the first sweep) so that ``import mdplab`` neither imports numba nor
compiles anything; ``cache=True`` stores the machine code next to this file so later
processes skip compilation as well.

The sweep is fused: for each state it streams that state's pairs once, forms
:math:`Q(s, a) = r(s, a) + \beta \sum_k \text{data}_k\, v[\text{indices}_k]`, and keeps the
minimum and the tie-rule argmin, so it reads every byte of the model once and never writes a
per-pair array.

Each kernel handles a range of states and releases the GIL (``nogil=True``);
:mod:`mdplab.bellman` runs blocks of states on a few Python threads. That replaces
``parallel=True``/``prange`` deliberately: numba's *cached* parallel code runs about a third
slower than freshly compiled code (numba issue #8085; measured here 9.5 ms against 7.0 ms per
single-thread sweep of the 2-million-pair warehouse), whereas cached serial code is as fast as
fresh. Threads pulling blocks from a shared queue also balance the load when another process
occupies a core, and they survive ``fork`` (numba's OpenMP layer does not).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload


def entry_range(layout, p):  # pragma: no cover - replaced by the overload in compiled code
    """Positions ``first, last`` of pair ``p``'s transition entries (see the overload)."""
    raise NotImplementedError("entry_range is only available inside numba-compiled code")


@overload(entry_range, inline="always")
def _entry_range(layout, p):
    # Chosen at compile time from the type of ``layout``: an int is the common number of
    # successors of every pair (``indptr`` is then never read: less memory traffic and no
    # data-dependent loop bounds); an array is the CSR ``indptr``.
    if isinstance(layout, types.Integer):
        return lambda layout, p: (p * layout, p * layout + layout)
    return lambda layout, p: (layout[p], layout[p + 1])


@njit(inline="always")
def _q(p, layout, indices, data, costs, beta, v):  # pragma: no cover - compiled
    r""":math:`Q(p) = r_p + \beta \sum_k \text{data}_k v[\text{indices}_k]` over p's entries."""
    first, last = entry_range(layout, p)
    acc = 0.0
    for k in range(first, last):
        acc += data[k] * v[indices[k]]
    return costs[p] + beta * acc


@njit(cache=True, nogil=True)
def bellman_sweep(
    start, stop, state_ptr, layout, indices, data, costs, beta, v, keep, rtol, out_v, out_pair
):  # pragma: no cover - compiled
    r"""Bellman sweep over states ``start .. stop - 1``.

    Writes ``out_v[s] = min_a Q(s, a)`` and ``out_pair[s]`` = the chosen pair. ``layout`` is
    the CSR ``indptr`` or, when every pair has the same number of successors, that number
    (a separate, faster specialisation).

    Tie rule with :math:`m = \min_a Q(s, a)` and threshold :math:`t = m + rtol (1 + |m|)`:
    the chosen pair is ``keep[s]`` when ``keep`` is non-empty and :math:`Q(keep[s]) \le t`,
    otherwise the first pair (in pair order) with :math:`Q \le t`.

    One pass finds :math:`m`, the first pair ``arg`` attaining it, and ``before``, the minimum
    over the pairs preceding ``arg``. Only if ``before <= t`` can an earlier pair be tied, and
    only then are those Q-values recomputed (same arithmetic, so bit-identical).
    """
    use_keep = keep.shape[0] > 0
    for s in range(start, stop):
        lo = state_ptr[s]
        hi = state_ptr[s + 1]
        best = np.inf
        before = np.inf
        arg = lo
        for p in range(lo, hi):
            val = _q(p, layout, indices, data, costs, beta, v)
            if val < best:
                before = best
                best = val
                arg = p
        threshold = best + rtol * (1.0 + abs(best))
        chosen = -1
        if use_keep:
            kp = keep[s]
            if kp == arg or _q(kp, layout, indices, data, costs, beta, v) <= threshold:
                chosen = kp
        if chosen < 0:
            chosen = arg
            if before <= threshold:
                for p in range(lo, arg):
                    if _q(p, layout, indices, data, costs, beta, v) <= threshold:
                        chosen = p
                        break
        out_v[s] = best
        out_pair[s] = chosen


@njit(cache=True, nogil=True)
def policy_sweep(pairs, indptr, indices, data, costs, beta, v, out_v):  # pragma: no cover
    r"""One sweep of the fixed-policy operator: ``out_v = r_pi + beta P_pi v``."""
    for s in range(pairs.shape[0]):
        out_v[s] = _q(pairs[s], indptr, indices, data, costs, beta, v)


@njit(cache=True, nogil=True)
def sup_norm_diff(a, b):  # pragma: no cover - compiled
    r"""``max_i |a_i - b_i|`` without allocating the difference vector."""
    out = 0.0
    for i in range(a.shape[0]):
        d = abs(a[i] - b[i])
        if d > out:
            out = d
    return out
