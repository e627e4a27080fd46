r"""The autoscaler's transition model: demand is exogenous, latency follows the load.

A state is (latency bin :math:`l`, throughput bin :math:`\tau`, instances :math:`n`); an
action :math:`a` fixes the next fleet :math:`n' = n'(n, a)` (:mod:`~mdplab.autoscaler.states`).
The model factors the next state's two random parts by what causes them:

.. math::
    P\big((l', \tau', n'') \mid (l, \tau, n), a\big) \;=\;
    [n'' = n'(n, a)]\; P_\tau(\tau' \mid \tau)\; P_L(l' \mid l, a, \tau', n').

**Demand is exogenous.** The autoscaler cannot change how many requests arrive, so
:math:`P_\tau` is estimated from every pair of consecutive minutes of the log, pooled over
actions, fleets and latencies, with additive smoothing :math:`\alpha`:

.. math::
    P_\tau(\tau' \mid \tau) = \frac{N_\tau(\tau, \tau') + \alpha}
                                   {\sum_{u} N_\tau(\tau, u) + T \alpha}.

**Latency follows the load**: :math:`P_L`, with its pessimistic prior, is
:mod:`~mdplab.autoscaler.latency_prior` (standalone, so that the lab can show it).
"""

from __future__ import annotations

import numpy as np

from mdplab.autoscaler.estimation import feasible_pairs
from mdplab.autoscaler.latency_prior import (
    FLEET_CHANGE,
    effective_instances,
    latency_counts,
    latency_model,
    pessimistic_prior,
)
from mdplab.autoscaler.states import n_states, next_instances, state_index, state_parts
from mdplab.autoscaler.telemetry import ACTIONS

__all__ = [
    "FLEET_CHANGE",
    "compose_transitions",
    "effective_instances",
    "latency_counts",
    "latency_model",
    "pessimistic_prior",
    "throughput_chain",
]


def throughput_chain(throughput_bins, n_throughput: int, alpha: float) -> np.ndarray:
    r"""``P_tau[tau, tau']`` from the bins of consecutive minutes, smoothed by ``alpha``."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive (unseen moves need mass), got {alpha}")
    bins = np.asarray(throughput_bins)
    counts = np.zeros((n_throughput, n_throughput))
    np.add.at(counts, (bins[:-1], bins[1:]), 1.0)
    mass = counts + alpha
    return mass / mass.sum(axis=1, keepdims=True)


def compose_transitions(
    throughput_P: np.ndarray, latency_P: np.ndarray, max_instances: int
) -> np.ndarray:
    """``P[s, a, s']`` of the module docstring; zero rows for actions that are not allowed."""
    n_latency, n_throughput = latency_P.shape[0], throughput_P.shape[0]
    S = n_states(n_latency, n_throughput, max_instances)
    lat, tau, n = state_parts(np.arange(S), n_throughput, max_instances)
    feasible = feasible_pairs(n_latency, n_throughput, max_instances)
    P = np.zeros((S, len(ACTIONS), S))
    next_lat = np.arange(n_latency)
    for a in range(len(ACTIONS)):
        fleet = next_instances(n, a)
        for s in np.flatnonzero(feasible[:, a]):
            for t2 in range(n_throughput):
                cells = state_index(next_lat, t2, fleet[s], n_throughput, max_instances)
                P[s, a, cells] = throughput_P[tau[s], t2] * latency_P[lat[s], a, t2, fleet[s] - 1]
    return P
