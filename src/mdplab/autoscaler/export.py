"""The greedy policy as a table for deployment: CSV for people, JSON for a service.

Both have one row per state: the state number, its latency bin and range (ms), its
throughput bin and range (req/s), the instance count, the action's name and the state's
value. A range ``(low, high]`` with an open end has ``-inf``/``inf`` there in the CSV and
``null`` in the JSON.

**Lookup rule** (the JSON states it too; standard library only, see :func:`lookup`): with
bisect's ``bisect_left``,

    l = bisect_left(latency_edges_ms, latency_ms)
    tau = bisect_left(throughput_edges, rate)
    s = (l * (len(throughput_edges) + 1) + tau) * max_instances + (instances - 1)

since ``bisect_left(edges, x)`` counts the edges strictly below ``x``, which is the
right-closed bin of x (bin k holds ``edges[k-1] < x <= edges[k]``); then
``policy[s]["action"]``.
"""

from __future__ import annotations

import csv
import json
from bisect import bisect_left
from pathlib import Path

import numpy as np

from mdplab.autoscaler.model import AutoscalerModel
from mdplab.autoscaler.states import state_parts
from mdplab.autoscaler.telemetry import ACTIONS

CSV_COLUMNS = (
    "state",
    "latency_bin",
    "latency_low_ms",
    "latency_high_ms",
    "throughput_bin",
    "rate_low",
    "rate_high",
    "instances",
    "action",
    "value",
)
FORMAT = "mdplab-autoscaler-policy/1"
LOOKUP_RULE = (
    "l = bisect_left(latency_edges_ms, latency_ms); tau = bisect_left(throughput_edges, rate); "
    "s = (l * (len(throughput_edges) + 1) + tau) * max_instances + (instances - 1); "
    "action = policy[s]['action'] (bins are right-closed: edges[k-1] < x <= edges[k])"
)


def _bounds(edges: tuple[float, ...], k: int) -> tuple[float | None, float | None]:
    low = edges[k - 1] if k > 0 else None
    high = edges[k] if k < len(edges) else None
    return low, high


def policy_rows(model: AutoscalerModel, policy: np.ndarray, V: np.ndarray) -> list[dict]:
    """One dict per state: bins, their ranges (None for an open end), action name, value."""
    rows = []
    for s in range(model.n_states):
        lat, tau, n = (int(x) for x in state_parts(s, model.n_throughput, model.max_instances))
        latency_low, latency_high = _bounds(model.latency_edges, lat)
        rate_low, rate_high = _bounds(model.throughput_edges, tau)
        rows.append(
            {
                "state": s,
                "latency_bin": lat,
                "latency_ms": [latency_low, latency_high],
                "throughput_bin": tau,
                "rate": [rate_low, rate_high],
                "instances": n,
                "action": ACTIONS[int(policy[s])],
                "value": float(V[s]),
            }
        )
    return rows


def export_policy_csv(
    model: AutoscalerModel, policy: np.ndarray, V: np.ndarray, path: str | Path
) -> None:
    """Write the policy table as CSV (columns ``CSV_COLUMNS``; values written exactly)."""

    def text(x: float | None, open_end: str) -> str:
        return open_end if x is None else repr(x)

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in policy_rows(model, policy, V):
            (l_low, l_high), (r_low, r_high) = row["latency_ms"], row["rate"]
            writer.writerow(
                [
                    row["state"],
                    row["latency_bin"],
                    text(l_low, "-inf"),
                    text(l_high, "inf"),
                    row["throughput_bin"],
                    text(r_low, "-inf"),
                    text(r_high, "inf"),
                    row["instances"],
                    row["action"],
                    repr(row["value"]),
                ]
            )


def export_policy_json(
    model: AutoscalerModel, policy: np.ndarray, V: np.ndarray, path: str | Path
) -> None:
    """Write the policy, bin edges, action names, gamma and lookup rule as JSON."""
    document = {
        "format": FORMAT,
        "gamma": model.gamma,
        "cost_weight": model.cost_weight,
        "actions": list(ACTIONS),
        "latency_edges_ms": list(model.latency_edges),
        "throughput_edges": list(model.throughput_edges),
        "max_instances": model.max_instances,
        "lookup": LOOKUP_RULE,
        "policy": policy_rows(model, policy, V),
    }
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def load_policy_json(path: str | Path) -> dict:
    """Read a file of :func:`export_policy_json` (standard library only)."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return document


def lookup(document: dict, latency_ms: float, rate: float, instances: int) -> str:
    """The action name for one minute, by the lookup rule (standard library only)."""
    n_max = document["max_instances"]
    if not 1 <= instances <= n_max:
        raise ValueError(f"instances must be between 1 and {n_max}, got {instances}")
    lat = bisect_left(document["latency_edges_ms"], latency_ms)
    tau = bisect_left(document["throughput_edges"], rate)
    s = (lat * (len(document["throughput_edges"]) + 1) + tau) * n_max + (instances - 1)
    return document["policy"][s]["action"]
