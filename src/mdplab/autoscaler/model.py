r"""The autoscaler MDP of a telemetry trace, built in one call.

:func:`build_model` quantises every minute of the trace into a state
(:mod:`~mdplab.autoscaler.states`), labels the action that ended it, counts transitions,
estimates :math:`P` (:mod:`~mdplab.autoscaler.estimation`) and prices every pair
(:mod:`~mdplab.autoscaler.costs`). The defaults, tuned on the shipped trace:

- latency edges (175, 200, 250, 300) ms and throughput edges (25, 45, 70, 100) req/s, 1 to 8
  instances: 5 x 5 x 8 = 200 states; 4 actions;
- smoothing :math:`\alpha` = 0.01 per successor cell; risk mass :math:`\kappa` = 1 in total
  per at-risk pair; risk rule with confidence threshold 0.5 and load 0.9;
- instance cost :math:`k` = 3 penalty points per extra instance per minute (as much as 15 ms
  over the SLA); spot discount :math:`d = 1 - 0.63 / 1.80 = 0.65`, the price ratio;
- :math:`\gamma` = 0.95.

Why these: the trace has about 58 minutes per state and far fewer per pair, so a larger
:math:`\alpha` lets the uniform prior (which puts mass on physically impossible cells) outweigh
the counts of the rarer actions; :math:`k` = 3 makes the optimal mean cost about 3.5 per
minute, so value iteration from 0 needs about :math:`\ln(3.5 / 0.01) / \ln(1 / 0.95)
\approx 115` to 125 sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mdplab.autoscaler.costs import cost_table
from mdplab.autoscaler.estimation import (
    at_risk_pairs,
    count_transitions,
    estimate_transitions,
    state_means,
    successor_blocks,
)
from mdplab.autoscaler.states import (
    LATENCY_EDGES_MS,
    THROUGHPUT_EDGES,
    bin_levels,
    label_actions,
    n_states,
    quantise,
    state_index,
)
from mdplab.autoscaler.telemetry import ACTIONS, SLA_MS, Physics

ALPHA = 0.01
KAPPA = 1.0
INSTANCE_COST = 3.0
GAMMA = 0.95
CONFIDENCE_THRESHOLD = 0.5
LOAD = 0.9


@dataclass(frozen=True)
class AutoscalerModel:
    """Bins, bin representatives, counts, risk flags, P, C and the parameters behind them."""

    latency_edges: tuple[float, ...]
    throughput_edges: tuple[float, ...]
    max_instances: int
    latency_levels: np.ndarray
    throughput_levels: np.ndarray
    counts: np.ndarray = field(repr=False)
    at_risk: np.ndarray = field(repr=False)
    P: np.ndarray = field(repr=False)
    C: np.ndarray = field(repr=False)
    instance_cost: float = INSTANCE_COST
    spot_discount: float = 0.0
    gamma: float = GAMMA

    @property
    def n_latency(self) -> int:
        return len(self.latency_edges) + 1

    @property
    def n_throughput(self) -> int:
        return len(self.throughput_edges) + 1

    @property
    def n_states(self) -> int:
        return n_states(self.n_latency, self.n_throughput, self.max_instances)

    def state_of(self, latency_ms, rate, instances):
        """The state of a minute (or of arrays of minutes)."""
        return state_index(
            quantise(latency_ms, self.latency_edges),
            quantise(rate, self.throughput_edges),
            instances,
            self.n_throughput,
            self.max_instances,
        )

    def support(self) -> np.ndarray:
        """Boolean ``[S, A, S']``: the successor cells that a feasible pair can reach."""
        return successor_blocks(self.n_latency, self.n_throughput, self.max_instances)

    def with_instance_cost(self, instance_cost: float) -> AutoscalerModel:
        """The same model priced with another instance cost (P unchanged)."""
        C = cost_table(
            self.latency_levels,
            self.n_throughput,
            self.max_instances,
            instance_cost,
            self.spot_discount,
        )
        return replace(self, C=C, instance_cost=instance_cost)


def build_model(
    trace: dict[str, np.ndarray],
    physics: Physics | None = None,
    latency_edges: tuple[float, ...] = LATENCY_EDGES_MS,
    throughput_edges: tuple[float, ...] = THROUGHPUT_EDGES,
    alpha: float = ALPHA,
    kappa: float = KAPPA,
    instance_cost: float = INSTANCE_COST,
    spot_discount: float | None = None,
    gamma: float = GAMMA,
    confidence_threshold: float = CONFIDENCE_THRESHOLD,
    load: float = LOAD,
) -> AutoscalerModel:
    """The MDP of a trace with the columns of :func:`~mdplab.autoscaler.telemetry.read_csv`.

    ``spot_discount`` defaults to ``1 - physics.price_spot / physics.price_on_demand``. The
    latency edges must include the SLA (200 ms): the bins above it are the risky ones.
    """
    physics = physics or Physics()
    latency_edges = tuple(float(e) for e in latency_edges)
    throughput_edges = tuple(float(e) for e in throughput_edges)
    if spot_discount is None:
        spot_discount = 1.0 - physics.price_spot / physics.price_on_demand
    if SLA_MS not in latency_edges:
        raise ValueError(f"latency_edges must include the SLA, {SLA_MS} ms: {latency_edges}")
    n_latency, n_throughput = len(latency_edges) + 1, len(throughput_edges) + 1
    N = physics.max_instances
    S = n_states(n_latency, n_throughput, N)
    latency, rate = trace["p95_latency_ms"], trace["request_rate"]
    confidence = trace["retrieval_confidence"]
    states = state_index(
        quantise(latency, latency_edges),
        quantise(rate, throughput_edges),
        trace["instances"],
        n_throughput,
        N,
    )
    actions = label_actions(trace["instances"], trace["spot_share"])
    counts = count_transitions(states, actions, S, len(ACTIONS))
    throughput_levels = bin_levels(rate, throughput_edges)
    at_risk = at_risk_pairs(
        n_latency,
        n_throughput,
        N,
        confidence=state_means(states, confidence, S, default=float(confidence.mean())),
        throughput_levels=throughput_levels,
        mean_work=float(np.mean(physics.work(trace["query_length"], confidence))),
        capacity=physics.capacity,
        confidence_threshold=confidence_threshold,
        load=load,
    )
    first_risky_bin = latency_edges.index(SLA_MS) + 1
    P = estimate_transitions(
        counts, n_latency, n_throughput, N, alpha, at_risk, kappa, first_risky_bin
    )
    latency_levels = bin_levels(latency, latency_edges)
    return AutoscalerModel(
        latency_edges=latency_edges,
        throughput_edges=throughput_edges,
        max_instances=N,
        latency_levels=latency_levels,
        throughput_levels=throughput_levels,
        counts=counts,
        at_risk=at_risk,
        P=P,
        C=cost_table(latency_levels, n_throughput, N, instance_cost, spot_discount),
        instance_cost=instance_cost,
        spot_discount=spot_discount,
        gamma=gamma,
    )
