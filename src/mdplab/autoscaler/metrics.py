r"""What a replay achieved, the targets, and the cost-latency frontier over cost weights.

For a replay of minutes :math:`t = 0, \dots, T - 1` with p95 latencies :math:`L_t`, actions
:math:`a_t` and the fleets :math:`(n_{t+1}, \text{spot}_{t+1})` they set:

- mean p95 latency :math:`\frac1T \sum_t L_t` (ms) and the share of minutes over the SLA
  :math:`\frac1T \#\{t : L_t > 200\}`;
- the share of **5-minute windows** over the SLA: of the :math:`T - 4` sliding windows
  :math:`\{L_t, \dots, L_{t+4}\}`, those whose 95th percentile (numpy's linear rule)
  exceeds 200 ms, as a dashboard's sliding p95 alarm would see them;
- daily cost: 24 times the mean hourly fleet price, plus the spin-up charge of every
  scale-up, in dollars;
- mean per-step cost, the MDP's stated objective with the actual latency in place of the
  bin representative (:func:`~mdplab.autoscaler.costs.billed_cost_table`):
  :math:`\frac1T \sum_t \big[10 \max(0, L_t - 200)/50 + k\,(\text{price}_t / 60 + F\,
  [a_t = \text{up}])\big]`, with :math:`\text{price}_t` the hourly price of the fleet the
  action set;
- action frequencies: the share of minutes on which each action was chosen.

**Targets** (the business goal): mean p95 below 220 ms, daily cost below $120, and windows
over the SLA no more often than under the threshold rule plus one percentage point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mdplab.autoscaler.costs import latency_penalty
from mdplab.autoscaler.model import COST_WEIGHT, AutoscalerModel, build_model
from mdplab.autoscaler.policies import greedy_decider
from mdplab.autoscaler.solve import value_iteration
from mdplab.autoscaler.telemetry import (
    ACTIONS,
    HELD_OUT_SEED,
    SLA_MS,
    UP,
    Physics,
    next_fleet,
    replay,
)

#: Cost weights k of the frontier (points per dollar): latency first, the default, the bill
#: first.
FRONTIER_LEVELS = (1.0, COST_WEIGHT, 120.0)
REPLAY_STEPS = 10_000
REPLAY_SEED = HELD_OUT_SEED + 1  # service noise of the evaluation replays
WINDOW_MINUTES = 5
LATENCY_TARGET_MS, DAILY_BUDGET, WINDOW_SLACK = 220.0, 120.0, 0.01


def windows_over_sla(latency_ms, window: int = WINDOW_MINUTES) -> float:
    """Share of the sliding windows of ``window`` minutes whose p95 exceeds the SLA."""
    p95 = np.percentile(sliding_window_view(np.asarray(latency_ms, float), window), 95, axis=1)
    return float(np.mean(p95 > SLA_MS))


def summarise(
    run: dict[str, np.ndarray], physics: Physics, model: AutoscalerModel
) -> dict[str, float | dict[str, float]]:
    """The figures of the module docstring for one replay, priced with ``model``'s k and F."""
    latency, n, action = run["p95_latency_ms"], run["instances"], run["action"]
    last_n, last_spot = next_fleet(int(n[-1]), int(action[-1]), physics.max_instances)
    n_next = np.append(n[1:], last_n)
    spot_next = np.append(run["spot_share"][1:], last_spot)
    bill = np.asarray(physics.fleet_price(n_next, spot_next), dtype=float) / 60.0
    bill = bill + model.spin_up * (action == UP)
    frequencies = np.bincount(action, minlength=len(ACTIONS)) / action.size
    return {
        "mean_latency_ms": float(latency.mean()),
        "share_over_sla": float(np.mean(latency > SLA_MS)),
        "windows_over_sla": windows_over_sla(latency),
        "daily_cost": float(
            24.0 * run["price"].mean() + 1440.0 * model.spin_up * np.mean(action == UP)
        ),
        "mean_step_cost": float(np.mean(latency_penalty(latency) + model.cost_weight * bill)),
        "mean_instances": float(n.mean()),
        "actions": dict(zip(ACTIONS, frequencies.tolist(), strict=True)),
    }


def meets_targets(summary: dict, baseline: dict) -> dict[str, bool]:
    """Each target of the module docstring: met or not (``baseline``: the threshold rule)."""
    return {
        "latency": summary["mean_latency_ms"] < LATENCY_TARGET_MS,
        "budget": summary["daily_cost"] < DAILY_BUDGET,
        "windows": summary["windows_over_sla"] <= baseline["windows_over_sla"] + WINDOW_SLACK,
    }


@dataclass(frozen=True)
class FrontierPoint:
    """One cost weight of the frontier: its greedy policy and how that policy did."""

    cost_weight: float
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
    """Solve the trace's MDP for each cost weight and replay each policy on ``exo_eval``.

    Only C changes between levels; every replay uses the same seed, hence the same noise.
    """
    physics = physics or Physics()
    base = build_model(trace, physics, **model_options)
    points = []
    for level in levels:
        model = base.with_cost_weight(level)
        _, policy, iterations, _ = value_iteration(model.C, model.P, model.gamma)
        run = replay(greedy_decider(model, policy), exo_eval, physics, steps, seed)
        points.append(FrontierPoint(level, policy, iterations, summarise(run, physics, model)))
    return points
