r"""The operator's sanity rules for an autoscaling policy, as a table of violations.

A policy can meet a cost and latency target on average and still do what no operator would
sign off. Two rules say what an operator expects of an autoscaler (the seed asks that "the
solver chooses scale-down when demand is low and scale-up when latency threatens the
SLA"), each on the states the log visited, since a decision in a state the system never
reached says more about the model's prior than about the policy:

1. **No retreat under strain.** In a visited state whose latency bin lies above the SLA and
   whose throughput bin is among the top ``high_load_bins``, the policy neither scales down
   nor moves capacity to spot (which may be reclaimed at any minute).
2. **Give back spare capacity.** In a visited state whose latency is comfortably within
   the SLA (below the ``comfort_bins`` bins just under it: at most 175 ms for the default
   bins, since a minute at 175 to 200 ms may be the start of a burst), whose
   throughput bin is among the bottom ``low_load_bins``, and whose demand would fit on one
   instance fewer, :math:`\bar\lambda_\tau \bar w \le \text{load} \cdot (n - 1) \cdot
   \text{capacity}`, the policy scales down (or moves to spot, which also cuts the bill).

:func:`safety_violations` lists every state that breaks a rule; an empty list is the pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mdplab.autoscaler.states import state_parts
from mdplab.autoscaler.telemetry import ACTIONS, DOWN, SLA_MS, SPOT, Physics

if TYPE_CHECKING:  # the model module builds on this one, so only for the annotation
    from mdplab.autoscaler.model import AutoscalerModel

RETREAT = "scales down or moves to spot while over the SLA at high load"
HOARD = "keeps spare capacity at low load within the SLA"


@dataclass(frozen=True)
class Violation:
    """A visited state where the policy breaks a rule, and how often the log was there."""

    state: int
    latency_bin: int
    throughput_bin: int
    instances: int
    action: str
    rule: str
    visits: int


def safety_violations(
    policy: np.ndarray,
    visits: np.ndarray,
    *,
    n_latency: int,
    n_throughput: int,
    max_instances: int,
    first_over_sla_bin: int,
    throughput_levels: np.ndarray,
    mean_work: float,
    capacity: float,
    load: float = 0.9,
    high_load_bins: int = 1,
    low_load_bins: int = 1,
    comfort_bins: int = 1,
) -> list[Violation]:
    """Every visited state (``visits[s] > 0``) where ``policy[s]`` breaks a rule of the
    module docstring, the most visited first."""
    policy, visits = np.asarray(policy), np.asarray(visits)
    if policy.shape != visits.shape:
        raise ValueError(f"policy and visits differ in shape: {policy.shape}, {visits.shape}")
    latency, tau, n = state_parts(np.arange(policy.size), n_throughput, max_instances)
    visited = visits > 0
    over_sla = latency >= first_over_sla_bin
    high = tau >= n_throughput - high_load_bins
    low = tau < low_load_bins
    demand = np.asarray(throughput_levels, dtype=float)[tau] * mean_work
    spare = (n > 1) & (demand <= load * (n - 1) * capacity)
    retreats = visited & over_sla & high & np.isin(policy, (DOWN, SPOT))
    comfortable = latency < first_over_sla_bin - comfort_bins
    hoards = visited & comfortable & low & spare & ~np.isin(policy, (DOWN, SPOT))
    found = [
        Violation(int(s), int(latency[s]), int(tau[s]), int(n[s]), ACTIONS[policy[s]], rule,
                  int(visits[s]))
        for rule, mask in ((RETREAT, retreats), (HOARD, hoards))
        for s in np.flatnonzero(mask)
    ]  # fmt: skip
    return sorted(found, key=lambda v: (-v.visits, v.state))


def violation_table(violations: list[Violation]) -> str:
    """The violations as a fixed-width table ("no violations" when there are none)."""
    if not violations:
        return "no violations: the policy does what an operator expects in every visited state"
    header = ("state", "latency bin", "rate bin", "instances", "action", "visits", "rule")
    rows = [
        (v.state, v.latency_bin, v.throughput_bin, v.instances, v.action, v.visits, v.rule)
        for v in violations
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def safety_arguments(
    trace: dict[str, np.ndarray], model: AutoscalerModel, physics: Physics | None = None
) -> dict:
    """The keyword arguments of :func:`safety_violations` besides policy and visits, for a
    model estimated from ``trace``: the grid, the first latency bin over the SLA, the mean
    work per request of the trace and the capacity per instance of ``physics``."""
    physics = physics or Physics()
    return {
        "n_latency": model.n_latency,
        "n_throughput": model.n_throughput,
        "max_instances": model.max_instances,
        "first_over_sla_bin": model.latency_edges.index(SLA_MS) + 1,
        "throughput_levels": model.throughput_levels,
        "mean_work": float(
            np.mean(physics.work(trace["query_length"], trace["retrieval_confidence"]))
        ),
        "capacity": physics.capacity,
    }
