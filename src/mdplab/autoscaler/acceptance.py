"""The capstone's acceptance figures, computed end to end: ``python -m
mdplab.autoscaler.acceptance [trace.csv]`` prints them.

On the trace: value iteration (gamma 0.95, tol 0.01) and the operator's safety rules on the
visited states; on a held-out demand week (``exogenous(7, HELD_OUT_SEED, HELD_OUT_START)``,
noise seed ``REPLAY_SEED``): 10,000 minutes under the greedy MDP policy and under the two
baselines (the threshold rule, and the threshold rule with spot), the targets; the frontier
over ``FRONTIER_LEVELS``; robust value iteration for a few radii.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from mdplab.autoscaler.metrics import (
    FRONTIER_LEVELS,
    REPLAY_SEED,
    REPLAY_STEPS,
    FrontierPoint,
    frontier,
    meets_targets,
    summarise,
)
from mdplab.autoscaler.model import AutoscalerModel, build_model
from mdplab.autoscaler.policies import greedy_decider, threshold_policy, threshold_spot_policy
from mdplab.autoscaler.safety import Violation, safety_arguments, safety_violations
from mdplab.autoscaler.solve import robust_value_iteration, value_iteration
from mdplab.autoscaler.telemetry import (
    HELD_OUT_SEED,
    HELD_OUT_START,
    Physics,
    exogenous,
    generate_telemetry,
    read_csv,
    replay,
)

ROBUST_DELTAS = (0.0, 0.02, 0.05, 0.1)


def held_out_week() -> dict[str, np.ndarray]:
    """Seven days of demand that the trace has not seen."""
    return exogenous(7, HELD_OUT_SEED, HELD_OUT_START)


@dataclass(frozen=True)
class Acceptance:
    """Everything the acceptance report prints."""

    model: AutoscalerModel
    values: np.ndarray
    policy: np.ndarray
    iterations: int
    mdp: dict
    heuristic: dict
    heuristic_spot: dict
    targets: dict[str, bool]
    violations: list[Violation]
    frontier: list[FrontierPoint]
    robust: dict[float, tuple[float, int, int]]  # delta -> (mean V, sweeps, changed actions)
    seconds: dict[str, float]


def run(trace: dict[str, np.ndarray] | None = None) -> Acceptance:
    """Compute every figure (the trace defaults to ``generate_telemetry()``)."""
    physics, clock = Physics(), time.perf_counter()
    trace = generate_telemetry() if trace is None else trace
    seconds = {"trace": time.perf_counter() - clock}
    clock = time.perf_counter()
    model = build_model(trace, physics)
    V, policy, iterations, _ = value_iteration(model.C, model.P, model.gamma)
    seconds["build and solve"] = time.perf_counter() - clock
    clock = time.perf_counter()
    week = held_out_week()
    runs = {
        name: replay(decide, week, physics, REPLAY_STEPS, REPLAY_SEED)
        for name, decide in (
            ("mdp", greedy_decider(model, policy)),
            ("th", threshold_policy),
            ("th+spot", threshold_spot_policy),
        )
    }
    summaries = {name: summarise(run_, physics, model) for name, run_ in runs.items()}
    seconds["three replays"] = time.perf_counter() - clock
    clock = time.perf_counter()
    points = frontier(trace, week, FRONTIER_LEVELS, physics)
    seconds["frontier"] = time.perf_counter() - clock
    clock = time.perf_counter()
    robust = {}
    for delta in ROBUST_DELTAS:
        V_r, policy_r, sweeps = robust_value_iteration(
            model.C, model.P, model.gamma, delta, support=model.support()
        )
        robust[delta] = (float(V_r.mean()), sweeps, int(np.sum(policy_r != policy)))
    seconds["robust"] = time.perf_counter() - clock
    return Acceptance(
        model=model,
        values=V,
        policy=policy,
        iterations=iterations,
        mdp=summaries["mdp"],
        heuristic=summaries["th"],
        heuristic_spot=summaries["th+spot"],
        targets=meets_targets(summaries["mdp"], summaries["th"]),
        violations=safety_violations(
            policy, model.visits, **safety_arguments(trace, model, physics)
        ),
        frontier=points,
        robust=robust,
        seconds=seconds,
    )


def report(result: Acceptance) -> str:
    """The figures as text."""

    def line(name: str, s: dict) -> str:
        actions = ", ".join(f"{a} {share:.3f}" for a, share in s["actions"].items())
        return (
            f"{name:<10} p95 {s['mean_latency_ms']:6.1f} ms  minutes over SLA "
            f"{s['share_over_sla']:.3f}  windows {s['windows_over_sla']:.3f}  "
            f"${s['daily_cost']:6.1f}/day  cost/step "
            f"{s['mean_step_cost']:.3f}  [{actions}]"
        )

    rows = [
        f"value iteration: {result.iterations} sweeps, mean V {result.values.mean():.2f}",
        line("MDP", result.mdp),
        line("threshold", result.heuristic),
        line("th+spot", result.heuristic_spot),
        "targets met: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result.targets.items()),
        f"safety: {len(result.violations)} violation(s) on the visited states",
        "frontier (cost weight k, points per dollar):",
        *(
            f"  k = {p.cost_weight:<4g} sweeps {p.iterations}  " + line("", p.summary)
            for p in result.frontier
        ),
        "robust VI (delta: mean V, sweeps, actions changed):",
        *(f"  {d:<5g} {v:9.2f} {s:4d} {c:4d}" for d, (v, s, c) in result.robust.items()),
        "seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.seconds.items()),
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    start = time.perf_counter()
    given = read_csv(sys.argv[1]) if len(sys.argv) > 1 else None
    print(report(run(given)))
    print(f"total {time.perf_counter() - start:.1f} s")
