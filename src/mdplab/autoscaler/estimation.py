r"""Transition probabilities: counted from the trace, smoothed, tilted by a risk rule.

For a feasible pair :math:`(s, a)` let :math:`n'` be its instance count after the action
(:math:`n + 1` up, :math:`n - 1` down, :math:`n` hold and spot), :math:`B(s, a)` the
:math:`L \cdot T` successor cells with :math:`n'` instances, :math:`H \subset B(s, a)` the
:math:`h T` of them whose latency bin lies above the SLA (every latency in it exceeds 200 ms;
:math:`h = 3` bins for the default edges), and :math:`N(s, a, s')` the number of minutes in
which the trace went from :math:`s` to :math:`s'` under :math:`a`. Then

.. math::
    m(s') = N(s, a, s') + \alpha + \frac{\kappa}{h T}\, r(s, a)\, [s' \in H], \qquad
    P(s' \mid s, a) = \frac{m(s')}{\sum_{u \in B(s, a)} m(u)} \ (s' \in B(s, a)),
    \ 0 \text{ elsewhere}:

additive smoothing :math:`\alpha` on every cell of the block, and, when the pair is **at
risk** (:math:`r(s, a) = 1`), :math:`\kappa` extra pseudo-counts in total, spread evenly over
the above-SLA cells. A pair is at risk when

- its throughput bin is one of the top two and the mean retrieval confidence observed in
  :math:`s` is below ``confidence_threshold`` (states never visited use the trace's mean), or
- its fleet is too small: :math:`\bar\lambda_\tau\, \bar w > \text{load} \cdot n' \cdot
  \text{capacity}`, with :math:`\bar\lambda_\tau` the representative rate of the throughput
  bin and :math:`\bar w` the trace's mean work per request.

Infeasible pairs (up with :math:`N` instances; down and spot with one) get zero rows.
"""

from __future__ import annotations

import numpy as np

from mdplab.autoscaler.states import n_states, next_instances, state_parts
from mdplab.autoscaler.telemetry import ACTIONS, DOWN, SPOT, UP


def _instances(n_latency: int, n_throughput: int, max_instances: int) -> np.ndarray:
    s = np.arange(n_states(n_latency, n_throughput, max_instances))
    return state_parts(s, n_throughput, max_instances)[2]


def feasible_pairs(n_latency: int, n_throughput: int, max_instances: int) -> np.ndarray:
    """Boolean ``[S, A]``: up needs n < N; down and spot need n > 1 (spot keeps one instance
    on demand, so a fleet of one has nothing to move to spot)."""
    n = _instances(n_latency, n_throughput, max_instances)
    feasible = np.ones((n.size, len(ACTIONS)), dtype=bool)
    feasible[:, UP] = n < max_instances
    feasible[:, DOWN] = feasible[:, SPOT] = n > 1
    return feasible


def successor_blocks(n_latency: int, n_throughput: int, max_instances: int) -> np.ndarray:
    """Boolean ``[S, A, S']``: s' has the instance count n'(s, a) of a feasible pair."""
    n = _instances(n_latency, n_throughput, max_instances)
    n_next = next_instances(n[:, None], np.arange(len(ACTIONS)))
    blocks = n_next[:, :, None] == n[None, None, :]
    return blocks & feasible_pairs(n_latency, n_throughput, max_instances)[:, :, None]


def count_transitions(states, actions, n_states: int, n_actions: int) -> np.ndarray:
    """``counts[s, a, s']``: minutes t in state s, ended by action a, with t + 1 in s'.

    ``states`` has one entry per minute, ``actions`` one fewer.
    """
    states, actions = np.asarray(states), np.asarray(actions)
    if actions.shape != (states.size - 1,):
        raise ValueError(f"need one action fewer than states, got {actions.size} and {states.size}")
    counts = np.zeros((n_states, n_actions, n_states))
    np.add.at(counts, (states[:-1], actions, states[1:]), 1.0)
    return counts


def state_means(states, values, n_states: int, default: float) -> np.ndarray:
    """Mean of ``values`` over the minutes spent in each state; ``default`` if never."""
    sums = np.bincount(states, weights=values, minlength=n_states)
    visits = np.bincount(states, minlength=n_states)
    return np.where(visits > 0, sums / np.maximum(visits, 1), default)


def at_risk_pairs(
    n_latency: int,
    n_throughput: int,
    max_instances: int,
    confidence: np.ndarray,
    throughput_levels: np.ndarray,
    mean_work: float,
    capacity: float,
    confidence_threshold: float = 0.5,
    load: float = 0.9,
    top_bins: int = 2,
) -> np.ndarray:
    """Boolean ``[S, A]``: the risk rule of the module docstring, on feasible pairs.

    ``confidence[s]`` is the mean retrieval confidence observed in state s.
    """
    s = np.arange(n_states(n_latency, n_throughput, max_instances))
    _, tau, n = state_parts(s, n_throughput, max_instances)
    n_next = next_instances(n[:, None], np.arange(len(ACTIONS)))
    unsure = (tau >= n_throughput - top_bins) & (np.asarray(confidence) < confidence_threshold)
    demand = np.asarray(throughput_levels)[tau] * mean_work
    too_small = demand[:, None] > load * n_next * capacity
    return (unsure[:, None] | too_small) & feasible_pairs(n_latency, n_throughput, max_instances)


def estimate_transitions(
    counts: np.ndarray,
    n_latency: int,
    n_throughput: int,
    max_instances: int,
    alpha: float = 0.01,
    at_risk: np.ndarray | None = None,
    kappa: float = 1.0,
    first_risky_bin: int = 2,
) -> np.ndarray:
    """``P[s, a, s']`` by the formula of the module docstring.

    Latency bins ``first_risky_bin`` and above are the above-SLA bins (2 for the edges
    (175, 200, 250, 300): (200, 250], (250, 300] and above 300).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive (unvisited pairs need a row), got {alpha}")
    blocks = successor_blocks(n_latency, n_throughput, max_instances)
    counts = np.asarray(counts, dtype=float)
    if np.any(counts[~blocks]):
        raise ValueError("counts outside the successor block of their pair (instance part)")
    latency_bin = state_parts(np.arange(blocks.shape[2]), n_throughput, max_instances)[0]
    above = latency_bin >= first_risky_bin
    mass = counts + alpha
    if at_risk is not None:
        share = above / ((n_latency - first_risky_bin) * n_throughput)  # 1 / (h T) on H
        mass = mass + kappa * np.asarray(at_risk, dtype=float)[:, :, None] * share
    mass = np.where(blocks, mass, 0.0)
    totals = mass.sum(axis=2, keepdims=True)
    return np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)
