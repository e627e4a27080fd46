r"""What a replay achieved, and the cost-latency frontier over instance costs.

For a replay of minutes :math:`t = 0, \dots, T - 1` with p95 latencies :math:`L_t`, actions
:math:`a_t` and the fleets :math:`(n_{t+1}, \text{spot}_{t+1})` they set:

- mean latency :math:`\frac1T \sum_t L_t` (ms) and share over the SLA
  :math:`\frac1T \#\{t : L_t > 200\}`;
- daily cost: 24 times the mean hourly fleet price (dollars);
- mean per-step cost, the MDP's stated objective with the actual latency in place of the
  bin representative:
  :math:`\frac1T \sum_t \big[10 \max(0, L_t - 200)/50
  + k\, (n_{t+1} - 1)\, (1 - d\, [\text{spot}_{t+1} > 0])\big]`;
- action frequencies: the share of minutes on which each action was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mdplab.autoscaler.costs import extra_instance_cost, latency_penalty
from mdplab.autoscaler.model import INSTANCE_COST, AutoscalerModel, build_model
from mdplab.autoscaler.policies import greedy_decider
from mdplab.autoscaler.solve import value_iteration
from mdplab.autoscaler.telemetry import (
    ACTIONS,
    HELD_OUT_SEED,
    SLA_MS,
    Physics,
    next_fleet,
    replay,
)

#: Instance costs of the frontier: a third of the default, the default, three times it.
FRONTIER_LEVELS = (INSTANCE_COST / 3.0, INSTANCE_COST, 3.0 * INSTANCE_COST)
REPLAY_STEPS = 10_000
REPLAY_SEED = HELD_OUT_SEED + 1  # service noise of the evaluation replays


def summarise(
    run: dict[str, np.ndarray], physics: Physics, model: AutoscalerModel
) -> dict[str, float | dict[str, float]]:
    """The figures of the module docstring for one replay, priced with ``model``'s k and d."""
    latency, n, action = run["p95_latency_ms"], run["instances"], run["action"]
    last_n, last_spot = next_fleet(int(n[-1]), int(action[-1]), physics.max_instances)
    n_next = np.append(n[1:], last_n)
    spot_next = np.append(run["spot_share"][1:], last_spot) > 0
    fleet = extra_instance_cost(n_next, spot_next, model.instance_cost, model.spot_discount)
    frequencies = np.bincount(action, minlength=len(ACTIONS)) / action.size
    return {
        "mean_latency_ms": float(latency.mean()),
        "share_over_sla": float(np.mean(latency > SLA_MS)),
        "daily_cost": float(24.0 * run["price"].mean()),
        "mean_step_cost": float(np.mean(latency_penalty(latency) + fleet)),
        "mean_instances": float(n.mean()),
        "actions": dict(zip(ACTIONS, frequencies.tolist(), strict=True)),
    }


@dataclass(frozen=True)
class FrontierPoint:
    """One instance cost of the frontier: its greedy policy and how that policy did."""

    instance_cost: float
    policy: np.ndarray
    iterations: int
    summary: dict


def frontier(
    trace: dict[str, np.ndarray],
    exo_eval: dict[str, np.ndarray],
    levels: Sequence[float] = FRONTIER_LEVELS,
    physics: Physics | None = None,
    steps: int = REPLAY_STEPS,
    seed: int = REPLAY_SEED,
    **model_options,
) -> list[FrontierPoint]:
    """Solve the trace's MDP for each instance cost and replay each policy on ``exo_eval``.

    Only C changes between levels; every replay uses the same seed, hence the same noise.
    """
    physics = physics or Physics()
    base = build_model(trace, physics, **model_options)
    points = []
    for level in levels:
        model = base.with_instance_cost(level)
        _, policy, iterations, _ = value_iteration(model.C, model.P, model.gamma)
        run = replay(greedy_decider(model, policy), exo_eval, physics, steps, seed)
        points.append(FrontierPoint(level, policy, iterations, summarise(run, physics, model)))
    return points
