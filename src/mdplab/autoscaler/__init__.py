r"""The capstone's autoscaler: an MDP built from request telemetry (lab06 reference).

Costs are minimised (reward = - cost). Modules:

- :mod:`~mdplab.autoscaler.telemetry`: the simulated service and its trace (standalone:
  numpy and the standard library only), ``generate_telemetry``, ``replay``, CSV I/O;
- :mod:`~mdplab.autoscaler.states`: bins, state numbering, action labels, bin levels;
- :mod:`~mdplab.autoscaler.estimation`: counts, smoothing and the risk rule, P;
- :mod:`~mdplab.autoscaler.costs`: latency penalty and C;
- :mod:`~mdplab.autoscaler.model`: ``build_model`` and ``AutoscalerModel``;
- :mod:`~mdplab.autoscaler.solve`: nominal and robust value iteration;
- :mod:`~mdplab.autoscaler.policies`: the greedy decider and the threshold heuristic;
- :mod:`~mdplab.autoscaler.metrics`: replay summaries and the frontier;
- :mod:`~mdplab.autoscaler.export`: the policy as CSV and JSON;
- :mod:`~mdplab.autoscaler.safety`: the operator's sanity rules, as a table of violations;
- :mod:`~mdplab.autoscaler.acceptance`: every acceptance figure in one run.
"""

from mdplab.autoscaler.costs import cost_table, extra_instance_cost, latency_penalty
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
from mdplab.autoscaler.metrics import FRONTIER_LEVELS, FrontierPoint, frontier, summarise
from mdplab.autoscaler.model import (
    ALPHA,
    GAMMA,
    INSTANCE_COST,
    KAPPA,
    AutoscalerModel,
    build_model,
)
from mdplab.autoscaler.policies import greedy_decider, threshold_policy
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
    "DOWN",
    "FRONTIER_LEVELS",
    "GAMMA",
    "HELD_OUT_SEED",
    "HELD_OUT_START",
    "HOLD",
    "INSTANCE_COST",
    "KAPPA",
    "LATENCY_EDGES_MS",
    "SLA_MS",
    "SPOT",
    "THROUGHPUT_EDGES",
    "TRACE_SEED",
    "TRACE_START",
    "UP",
    "AutoscalerModel",
    "FrontierPoint",
    "Physics",
    "at_risk_pairs",
    "bin_levels",
    "build_model",
    "cost_table",
    "count_transitions",
    "estimate_transitions",
    "exogenous",
    "export_policy_csv",
    "export_policy_json",
    "extra_instance_cost",
    "feasible_pairs",
    "frontier",
    "generate_telemetry",
    "greedy_decider",
    "label_actions",
    "latency_penalty",
    "load_policy_json",
    "logging_policy",
    "lookup",
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
    "valid_actions",
    "value_iteration",
    "write_csv",
]
