r"""The latency part of the autoscaler's transition model, with a pessimistic prior.

Numpy only: the lab shows this module as it is. Actions are numbered 0 = down, 1 = hold,
2 = up, 3 = spot; fleets run from 1 to ``max_instances``.

**Latency follows the load.** The next minute's latency depends on the next minute's demand,
the fleet that serves it, whether part of that fleet is on spot (action :math:`a` = spot),
and on the current latency (bursts of long, hard queries last several minutes). For a cell
:math:`c = (l, a, \tau', n')` with :math:`N_c(l')` logged transitions,

.. math::
    P_L(l' \mid c) = \frac{N_c(l') + w\, \pi_c(l')}{\sum_{u} N_c(u) + w},

a posterior mean: the counts plus :math:`w` pseudo-counts of a **pessimistic prior**
:math:`\pi_c`. A cell seen often follows its counts; a cell seen rarely or never follows its
prior. The prior is physical: **more load per instance is never faster**. The load of a cell
is :math:`u_c = \bar\lambda_{\tau'} / e(n', a)`, with :math:`\bar\lambda_{\tau'}` the bin's
typical request rate and :math:`e(n', a) = n' - p\,(n' - 1)[a = \text{spot}]` the instances
expected to survive preemption (probability :math:`p`). Then :math:`\pi_c` is the latency
distribution of the ``neighbours`` logged transitions nearest to :math:`u_c` **from above**
among those that

- were at least as loaded after the move (:math:`u \ge u_c`),
- were at least as slow before it (latency bin :math:`\ge l`),
- and got no more new capacity (fleet change :math:`\le n' - n`, spot counted as 0):

transitions that were worse off in every respect, smoothed by Laplace's rule (one
pseudo-count per latency bin, so that no outcome is ever impossible). If the log has none,
the neighbours are taken to have all been in the slowest bin. So a pair the log never tried
is assumed to do no better than what the log saw under heavier load, never better by chance.
"""

from __future__ import annotations

import numpy as np

N_ACTIONS, SPOT = 4, 3
#: Fleet change that each action makes (down, hold, up, spot).
FLEET_CHANGE = np.array([-1, 0, 1, 0])


def effective_instances(instances, on_spot, preemption: float) -> np.ndarray:
    """Instances expected to serve a minute: n, less p (n - 1) when all but one are on spot."""
    n = np.asarray(instances, dtype=float)
    return n - preemption * (n - 1.0) * np.asarray(on_spot, dtype=float)


def latency_counts(
    latency_bins,
    throughput_bins,
    instances,
    actions,
    n_latency: int,
    n_throughput: int,
    max_instances: int,
) -> np.ndarray:
    """``counts[l, a, tau', n' - 1, l']``: logged minutes t in latency bin l ended by action
    a whose next minute had throughput bin tau', n' instances and latency bin l'."""
    lat, tau, n = (np.asarray(x) for x in (latency_bins, throughput_bins, instances))
    actions = np.asarray(actions)
    counts = np.zeros((n_latency, N_ACTIONS, n_throughput, max_instances, n_latency))
    np.add.at(counts, (lat[:-1], actions, tau[1:], n[1:] - 1, lat[1:]), 1.0)
    return counts


def pessimistic_prior(
    latency_bins,
    throughput_bins,
    instances,
    actions,
    throughput_levels,
    preemption: float,
    n_latency: int,
    max_instances: int,
    neighbours: int = 50,
) -> np.ndarray:
    """``prior[l, a, tau', n' - 1, :]``: the prior of the module docstring, for every cell."""
    lat, tau, n = (np.asarray(x) for x in (latency_bins, throughput_bins, instances))
    actions, levels = np.asarray(actions), np.asarray(throughput_levels, dtype=float)
    before, after = lat[:-1], lat[1:]
    grew = np.diff(n)
    logged_load = levels[tau[1:]] / effective_instances(n[1:], actions == SPOT, preemption)
    order = np.argsort(logged_load, kind="stable")
    before, after, grew, logged_load = before[order], after[order], grew[order], logged_load[order]
    prior = np.zeros((n_latency, N_ACTIONS, levels.size, max_instances, n_latency))
    slowest = np.eye(n_latency)[-1] * neighbours  # as if every neighbour were slowest
    for a, change in enumerate(FLEET_CHANGE):
        for t in range(levels.size):
            for fleet in range(1, max_instances + 1):
                load = levels[t] / effective_instances(fleet, a == SPOT, preemption)
                start = np.searchsorted(logged_load, load * (1.0 - 1e-12), side="left")
                for lb in range(n_latency):
                    worse = (before[start:] >= lb) & (grew[start:] <= change)
                    nearest = after[start:][worse][:neighbours]
                    shares = np.bincount(nearest, minlength=n_latency).astype(float)
                    shares = (shares if nearest.size else slowest) + 1.0  # Laplace's rule
                    prior[lb, a, t, fleet - 1] = shares / shares.sum()
    return prior


def latency_model(counts: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """``P_L = (counts + weight * prior) / (total count + weight)``, cell by cell."""
    if weight <= 0:
        raise ValueError(f"the prior's weight must be positive, got {weight}")
    counts = np.asarray(counts, dtype=float)
    return (counts + weight * prior) / (counts.sum(axis=-1, keepdims=True) + weight)
