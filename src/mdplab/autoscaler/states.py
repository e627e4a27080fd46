r"""Discretisation: bins, state numbering, actions read off a trace, bin representatives.

Bins are **right-closed**: with edges :math:`e_0 < \dots < e_{K-1}`, bin :math:`k` holds
:math:`e_{k-1} < x \le e_k` (bin 0 everything up to :math:`e_0`, bin :math:`K` everything
above :math:`e_{K-1}`). So a p95 latency of exactly 200 ms, the SLA, meets it: it falls in
the bin ``(175, 200]``, not above.

A state is (latency bin :math:`l`, throughput bin :math:`\tau`, instances :math:`n`), numbered

.. math:: s = (l \cdot T + \tau) \cdot N + (n - 1),

with :math:`T` throughput bins and :math:`N` = ``max_instances``: the instance count varies
fastest, then throughput, then latency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mdplab.autoscaler.telemetry import DOWN, HOLD, SPOT, UP

#: Latency bin edges (ms): bins <=175, (175, 200], (200, 250], (250, 300], >300.
LATENCY_EDGES_MS = (175.0, 200.0, 250.0, 300.0)
#: Request-rate bin edges (req/s): <=25, (25, 45], (45, 70], (70, 100], >100.
THROUGHPUT_EDGES = (25.0, 45.0, 70.0, 100.0)


def quantise(values, edges: Sequence[float]) -> np.ndarray:
    """Bin index of every value: ``k`` with ``edges[k-1] < x <= edges[k]`` (right-closed)."""
    return np.digitize(values, edges, right=True)


def n_states(n_latency: int, n_throughput: int, max_instances: int) -> int:
    """Number of states, L * T * N."""
    return n_latency * n_throughput * max_instances


def state_index(latency_bin, throughput_bin, instances, n_throughput: int, max_instances: int):
    """s = (l * T + tau) * N + (n - 1); works on scalars and arrays."""
    return (np.asarray(latency_bin) * n_throughput + throughput_bin) * max_instances + (
        np.asarray(instances) - 1
    )


def state_parts(s, n_throughput: int, max_instances: int):
    """Inverse of :func:`state_index`: ``(latency_bin, throughput_bin, instances)``."""
    cell, n_minus_one = np.divmod(s, max_instances)
    latency_bin, throughput_bin = np.divmod(cell, n_throughput)
    return latency_bin, throughput_bin, n_minus_one + 1


def label_actions(instances, spot_share) -> np.ndarray:
    """The action taken at the end of minute t, read off minutes t and t + 1 (length T - 1).

    Up if the count rose, down if it fell, spot if it stayed and minute t + 1 ran on spot
    capacity (``spot_share[t + 1] > 0``), hold otherwise.
    """
    n = np.asarray(instances)
    change = np.diff(n)
    on_spot = np.asarray(spot_share)[1:] > 0
    return np.select([change > 0, change < 0, on_spot], [UP, DOWN, SPOT], default=HOLD)


def next_instances(instances, action) -> np.ndarray:
    """The deterministic instance part of a transition: n + 1 (up), n - 1 (down), else n."""
    action = np.asarray(action)
    return np.asarray(instances) + (action == UP) - (action == DOWN)


def bin_levels(values, edges: Sequence[float]) -> np.ndarray:
    """A representative value per bin: the mean of the values in it.

    A bin without values gets its midpoint, or for the two open-ended outer bins its one
    finite edge.
    """
    values = np.asarray(values, dtype=float)
    bins = quantise(values, edges)
    edges = np.asarray(edges, dtype=float)
    fallback = np.concatenate(([edges[0]], (edges[:-1] + edges[1:]) / 2.0, [edges[-1]]))
    sums = np.bincount(bins, weights=values, minlength=len(fallback))
    counts = np.bincount(bins, minlength=len(fallback))
    return np.where(counts > 0, sums / np.maximum(counts, 1), fallback)
