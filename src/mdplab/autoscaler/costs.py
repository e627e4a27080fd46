r"""The cost of a minute: latency over the SLA plus the extra instances kept.

.. math::
    C(s, a) = \underbrace{10 \cdot \frac{\max(0, \bar L_l - 200)}{50}}_{\text{latency penalty}}
            + k \cdot (n' - 1) \cdot (1 - d\, [a = \text{spot}]),

with :math:`\bar L_l` the representative latency of the state's latency bin, :math:`k` the
``instance_cost`` (penalty points per extra instance per minute; the first instance is
always needed), :math:`n'` the instance count after the action and :math:`d` the spot
discount. Infeasible pairs cost :math:`+\infty`. Costs are minimised; reward = - cost.
"""

from __future__ import annotations

import numpy as np

from mdplab.autoscaler.estimation import feasible_pairs
from mdplab.autoscaler.states import n_states, next_instances, state_parts
from mdplab.autoscaler.telemetry import ACTIONS, SLA_MS, SPOT

PENALTY_PER_STEP = 10.0  # points for every ...
PENALTY_STEP_MS = 50.0  # ... ms over the SLA, proportionally


def latency_penalty(latency_ms):
    """10 * max(0, latency - 200) / 50: +10 for every 50 ms over the SLA, proportionally."""
    over = np.maximum(0.0, np.asarray(latency_ms, dtype=float) - SLA_MS)
    return PENALTY_PER_STEP * over / PENALTY_STEP_MS


def extra_instance_cost(n_next, spot, instance_cost: float, spot_discount: float):
    """k (n' - 1) (1 - d [spot]): the fleet part of the cost."""
    discount = np.where(np.asarray(spot, dtype=bool), 1.0 - spot_discount, 1.0)
    return instance_cost * (np.asarray(n_next) - 1) * discount


def cost_table(
    latency_levels,
    n_throughput: int,
    max_instances: int,
    instance_cost: float,
    spot_discount: float,
) -> np.ndarray:
    """``C[s, a]`` of the module docstring; ``latency_levels[l]`` represents latency bin l."""
    levels = np.asarray(latency_levels, dtype=float)
    s = np.arange(n_states(levels.size, n_throughput, max_instances))
    latency_bin, _, n = state_parts(s, n_throughput, max_instances)
    actions = np.arange(len(ACTIONS))
    n_next = next_instances(n[:, None], actions[None, :])
    fleet = extra_instance_cost(n_next, actions[None, :] == SPOT, instance_cost, spot_discount)
    costs = latency_penalty(levels[latency_bin])[:, None] + fleet
    return np.where(feasible_pairs(levels.size, n_throughput, max_instances), costs, np.inf)
