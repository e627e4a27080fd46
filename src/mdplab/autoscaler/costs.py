r"""The cost of a minute: latency over the SLA plus the bill, in one number.

.. math::
    C(s, a) = \underbrace{10 \cdot \frac{\max(0, \bar L_l - 200)}{50}}_{\text{latency penalty}}
            + k \Big( \$_{\text{minute}}(n', [a = \text{spot}]) + F\, [a = \text{up}] \Big),

with :math:`\bar L_l` the representative latency of the state's latency bin, :math:`k` the
cost weight (penalty points per dollar), :math:`n'` the instance count after the action,
:math:`\$_{\text{minute}}` what that fleet bills for a minute (after spot, all instances but
one at the spot price) and :math:`F` the fixed charge of a scale-up (the seed's "fixed cost
for spinning up extra instances"). Infeasible pairs cost :math:`+\infty`. Costs are
minimised; reward = - cost.
"""

from __future__ import annotations

import numpy as np

from mdplab.autoscaler.estimation import feasible_pairs
from mdplab.autoscaler.states import n_states, next_instances, state_parts
from mdplab.autoscaler.telemetry import ACTIONS, SLA_MS, SPOT, UP

PENALTY_PER_STEP = 10.0  # points for every ...
PENALTY_STEP_MS = 50.0  # ... ms over the SLA, proportionally


def latency_penalty(latency_ms):
    """10 * max(0, latency - 200) / 50: +10 for every 50 ms over the SLA, proportionally."""
    over = np.maximum(0.0, np.asarray(latency_ms, dtype=float) - SLA_MS)
    return PENALTY_PER_STEP * over / PENALTY_STEP_MS


#: Dollars charged per scale-up: about two minutes of an on-demand instance that bills
#: while it boots (the seed's "fixed cost for spinning up extra instances").
SPIN_UP_DOLLARS = 0.06


def fleet_dollars_per_minute(n_next, spot, price_on_demand: float, price_spot: float):
    """What the next minute's fleet bills: all but one instance at the spot price after spot."""
    n_next = np.asarray(n_next, dtype=float)
    on_spot = np.where(np.asarray(spot, dtype=bool), n_next - 1.0, 0.0)
    return ((n_next - on_spot) * price_on_demand + on_spot * price_spot) / 60.0


def billed_cost_table(
    latency_levels,
    n_throughput: int,
    max_instances: int,
    cost_weight: float,
    price_on_demand: float,
    price_spot: float,
    spin_up: float = SPIN_UP_DOLLARS,
) -> np.ndarray:
    r"""``C[s, a]`` priced in dollars:

    .. math::
        C(s, a) = 10 \cdot \frac{\max(0, \bar L_l - 200)}{50}
                + k \Big( \$_{\text{minute}}(n', [a = \text{spot}]) + F\, [a = \text{up}] \Big),

    the latency penalty of the state's bin plus :math:`k` points per dollar of the bill: the
    next minute's fleet (:func:`fleet_dollars_per_minute`) and a fixed spin-up charge
    :math:`F` per scale-up. Infeasible pairs cost :math:`+\infty`.
    """
    levels = np.asarray(latency_levels, dtype=float)
    s = np.arange(n_states(levels.size, n_throughput, max_instances))
    latency_bin, _, n = state_parts(s, n_throughput, max_instances)
    actions = np.arange(len(ACTIONS))
    n_next = next_instances(n[:, None], actions[None, :])
    bill = fleet_dollars_per_minute(n_next, actions[None, :] == SPOT, price_on_demand, price_spot)
    bill = bill + spin_up * (actions[None, :] == UP)
    costs = latency_penalty(levels[latency_bin])[:, None] + cost_weight * bill
    return np.where(feasible_pairs(levels.size, n_throughput, max_instances), costs, np.inf)
