r"""The capstone's autoscaler: an MDP built from request telemetry (lab06 reference).

Costs are minimised (reward = - cost). Modules:

- :mod:`~mdplab.autoscaler.telemetry`: the simulated service and its trace (standalone:
  numpy and the standard library only), ``generate_telemetry``, ``replay``, CSV I/O;
- :mod:`~mdplab.autoscaler.states`: bins, state numbering, action labels, bin levels;
- :mod:`~mdplab.autoscaler.estimation`: counts, feasible pairs, and the lab's current
  estimator (smoothing and a risk rule);
- :mod:`~mdplab.autoscaler.transitions`: the model's P: exogenous demand, latency given the
  next minute's load, a pessimistic prior where the log is thin;
- :mod:`~mdplab.autoscaler.costs`: latency penalty and C (the bill, with a spin-up charge);
- :mod:`~mdplab.autoscaler.model`: ``build_model`` and ``AutoscalerModel``;
- :mod:`~mdplab.autoscaler.solve`: nominal and robust value iteration;
- :mod:`~mdplab.autoscaler.policies`: the greedy decider and two threshold baselines;
- :mod:`~mdplab.autoscaler.metrics`: replay summaries, targets and the frontier;
- :mod:`~mdplab.autoscaler.export`: the policy as CSV and JSON;
- :mod:`~mdplab.autoscaler.safety`: the operator's sanity rules, as a table of violations;
- :mod:`~mdplab.autoscaler.acceptance`: every acceptance figure in one run;
- :mod:`~mdplab.autoscaler.latency_prior`: the latency law and its pessimistic prior
  (standalone: the lab shows it);
- the optional tracks: :mod:`~mdplab.autoscaler.onnx_policy` and
  :mod:`~mdplab.autoscaler.serving` (the policy as ONNX behind a local endpoint, extra
  ``tracks``), :mod:`~mdplab.autoscaler.sampled` (posterior draws of P and how far the value
  and the safety rules move), :mod:`~mdplab.autoscaler.retrieval` (the seed's MDPR demand
  signal, extra ``mdpr``).
"""

from mdplab.autoscaler.costs import (
    SPIN_UP_DOLLARS,
    billed_cost_table,
    latency_penalty,
)
from mdplab.autoscaler.estimation import (
    at_risk_pairs,
    count_transitions,
    estimate_transitions,
    feasible_pairs,
    state_means,
    successor_blocks,
)
from mdplab.autoscaler.export import (
    export_policy_csv,
    export_policy_json,
    load_policy_json,
    lookup,
    policy_rows,
)
from mdplab.autoscaler.metrics import (
    FRONTIER_LEVELS,
    FrontierPoint,
    frontier,
    meets_targets,
    summarise,
    windows_over_sla,
)
from mdplab.autoscaler.model import (
    ALPHA,
    COST_WEIGHT,
    GAMMA,
    AutoscalerModel,
    build_model,
)
from mdplab.autoscaler.policies import greedy_decider, threshold_policy, threshold_spot_policy
from mdplab.autoscaler.solve import robust_q_values, robust_value_iteration, value_iteration
from mdplab.autoscaler.states import (
    LATENCY_EDGES_MS,
    THROUGHPUT_EDGES,
    bin_levels,
    label_actions,
    n_states,
    next_instances,
    quantise,
    state_index,
    state_parts,
)
from mdplab.autoscaler.telemetry import (
    ACTIONS,
    DOWN,
    HELD_OUT_SEED,
    HELD_OUT_START,
    HOLD,
    SLA_MS,
    SPOT,
    TRACE_SEED,
    TRACE_START,
    UP,
    Physics,
    exogenous,
    generate_telemetry,
    logging_policy,
    next_fleet,
    p95_latency,
    read_csv,
    replay,
    valid_actions,
    write_csv,
)

__all__ = [
    "ACTIONS",
    "ALPHA",
    "COST_WEIGHT",
    "DOWN",
    "FRONTIER_LEVELS",
    "GAMMA",
    "HELD_OUT_SEED",
    "HELD_OUT_START",
    "HOLD",
    "LATENCY_EDGES_MS",
    "SLA_MS",
    "SPIN_UP_DOLLARS",
    "SPOT",
    "THROUGHPUT_EDGES",
    "TRACE_SEED",
    "TRACE_START",
    "UP",
    "AutoscalerModel",
    "FrontierPoint",
    "Physics",
    "at_risk_pairs",
    "billed_cost_table",
    "bin_levels",
    "build_model",
    "count_transitions",
    "estimate_transitions",
    "exogenous",
    "export_policy_csv",
    "export_policy_json",
    "feasible_pairs",
    "frontier",
    "generate_telemetry",
    "greedy_decider",
    "label_actions",
    "latency_penalty",
    "load_policy_json",
    "logging_policy",
    "lookup",
    "meets_targets",
    "n_states",
    "next_fleet",
    "next_instances",
    "p95_latency",
    "policy_rows",
    "quantise",
    "read_csv",
    "replay",
    "robust_q_values",
    "robust_value_iteration",
    "state_index",
    "state_means",
    "state_parts",
    "successor_blocks",
    "summarise",
    "threshold_policy",
    "threshold_spot_policy",
    "valid_actions",
    "value_iteration",
    "windows_over_sla",
    "write_csv",
]
