"""Deciders for :func:`~mdplab.autoscaler.telemetry.replay`: the MDP's and two baselines."""

from __future__ import annotations

import numpy as np

from mdplab.autoscaler.model import AutoscalerModel
from mdplab.autoscaler.telemetry import DOWN, HOLD, SLA_MS, SPOT, UP, Decide


def greedy_decider(model: AutoscalerModel, policy: np.ndarray) -> Decide:
    """``decide(latency, rate, n) = policy[state of (latency, rate, n)]``."""
    table = [int(a) for a in policy]

    def decide(latency_ms: float, rate: float, instances: int) -> int:
        return table[int(model.state_of(latency_ms, rate, instances))]

    return decide


def threshold_policy(
    latency_ms: float,
    rate: float,
    instances: int,
    up_ms: float = SLA_MS,
    down_ms: float = 150.0,
    down_rate_per_instance: float = 10.0,
    max_instances: int = 8,
) -> int:
    """The heuristic: up when the SLA breaks (latency above ``up_ms``); down when idle, that
    is latency below ``down_ms`` (three quarters of the SLA) and fewer than
    ``down_rate_per_instance`` req/s per instance (about a quarter of an instance's
    capacity); hold otherwise. Never spot."""
    if latency_ms > up_ms and instances < max_instances:
        return UP
    if latency_ms < down_ms and rate < down_rate_per_instance * instances and instances > 1:
        return DOWN
    return HOLD


def threshold_spot_policy(
    latency_ms: float,
    rate: float,
    instances: int,
    spot_ms: float = 175.0,
    **threshold_options,
) -> int:
    """The heuristic with spot: :func:`threshold_policy`, except that where it would hold
    with latency at most ``spot_ms`` (comfortably within the SLA), it moves to spot."""
    action = threshold_policy(latency_ms, rate, instances, **threshold_options)
    if action == HOLD and latency_ms <= spot_ms and instances > 1:
        return SPOT
    return action
