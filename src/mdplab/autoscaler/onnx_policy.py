r"""The exported policy as an ONNX graph: a table lookup that any ONNX runtime can serve.

:func:`policy_to_onnx` turns the JSON document of :mod:`~mdplab.autoscaler.export` into a
graph with inputs ``latency_ms`` (double ``[N]``), ``rate`` (double ``[N]``) and
``instances`` (int64 ``[N]``) and output ``action`` (int64 ``[N]``, the index of the action
in ``document["actions"]``). It computes exactly the lookup rule of the export:

.. math::
    l = \#\{k : e^{\text{lat}}_k < \text{latency\_ms}\}, \qquad
    \tau = \#\{k : e^{\text{rate}}_k < \text{rate}\}, \qquad
    s = (l \cdot T + \tau) \cdot N + (n - 1),

with :math:`T` = ``len(throughput_edges) + 1`` throughput bins and :math:`N` =
``max_instances``; then ``action = table[s]``. Counting the edges *strictly* below
:math:`x` is what ``bisect_left`` does on sorted edges, and it puts :math:`x` in the
right-closed bin :math:`e_{k-1} < x \le e_k`: a latency of exactly 200.0 ms, the SLA, falls in
``(175, 200]``. The inputs are doubles so that the comparison with the edges is the one
Python makes (in float32, 200.00001 would become 200.0). In the graph the count is
``ReduceSum(Cast(Less(edges[1, K], Unsqueeze(x)[N, 1])))``; ``Gather`` reads the table.

An instance count outside ``1..N`` has no state: the graph answers ``-1`` there (the
table carries one extra entry, -1, which ``Where`` selects), where :func:`export.lookup`
raises. A NaN compares false with every edge, so it lands in bin 0 in both.

:func:`check_onnx` runs the graph with onnxruntime on every state, every bin edge exactly
and one ulp on either side of it, for every instance count, and compares with
:func:`mdplab.autoscaler.export.lookup`.

onnx and onnxruntime are optional (``pip install "mdplab[tracks]"``) and imported only
inside the functions that need them.
"""

from __future__ import annotations

import json
import math
import time
from bisect import bisect_left
from dataclasses import dataclass
from itertools import pairwise, product
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mdplab.autoscaler.export import FORMAT, lookup

if TYPE_CHECKING:
    import onnx
    import onnxruntime

#: The opset of the graph: 17 (ONNX 1.12) is served by every onnxruntime since 1.13.
OPSET = 17
#: IR version 8 goes with opset 17; newer onnx packages would otherwise write a newer one.
IR_VERSION = 8
PRODUCER = "mdplab.autoscaler.onnx_policy"
#: The answer of the graph for an instance count outside 1..max_instances.
NO_ACTION = -1
EXTRA = 'pip install "mdplab[tracks]"'
ONNX_LOOKUP_RULE = (
    "l = number of latency_edges_ms strictly below latency_ms; "
    "tau = number of throughput_edges strictly below rate "
    "(= bisect_left: right-closed bins, edges[k-1] < x <= edges[k]); "
    "s = (l * (len(throughput_edges) + 1) + tau) * max_instances + (instances - 1); "
    "action = index of policy[s]['action'] in actions; "
    f"{NO_ACTION} if instances is not in 1..max_instances"
)


def import_onnx():
    """The ``onnx`` module, or an ImportError that names the extra to install."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(f"exporting the policy to ONNX needs onnx: {EXTRA}") from error
    return onnx


def import_onnxruntime():
    """The ``onnxruntime`` module, or an ImportError that names the extra to install."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(f"running the ONNX policy needs onnxruntime: {EXTRA}") from error
    return onnxruntime


@dataclass(frozen=True)
class PolicyTable:
    """What the graph needs from a document: edges, sizes and the table of action indices."""

    latency_edges: tuple[float, ...]
    throughput_edges: tuple[float, ...]
    max_instances: int
    actions: tuple[str, ...]
    table: np.ndarray  # int64 [S]: index into ``actions`` of every state's action

    @property
    def n_throughput(self) -> int:
        return len(self.throughput_edges) + 1

    @property
    def n_states(self) -> int:
        return (len(self.latency_edges) + 1) * self.n_throughput * self.max_instances

    def state(self, latency_ms: float, rate: float, instances: int) -> int:
        """The state number of a minute, by the export's rule (instances not checked)."""
        lat = bisect_left(self.latency_edges, latency_ms)
        tau = bisect_left(self.throughput_edges, rate)
        return (lat * self.n_throughput + tau) * self.max_instances + (instances - 1)


def _edges(document: dict, key: str) -> tuple[float, ...]:
    edges = document.get(key)
    if not isinstance(edges, list) or not edges:
        raise ValueError(f"document[{key!r}] must be a non-empty list of numbers")
    values = tuple(float(x) for x in edges)
    if not all(math.isfinite(x) for x in values) or any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"document[{key!r}] must be finite and strictly increasing: {edges}")
    return values


def policy_table(document: dict) -> PolicyTable:
    """Read and check the parts of an export document that the lookup uses.

    Raises ``ValueError`` naming the first thing that is wrong (format, edges, sizes, an
    action name not in ``actions``, a row whose ``state`` is not its position)."""
    if document.get("format", FORMAT) != FORMAT:
        raise ValueError(f"not a {FORMAT} document: format {document.get('format')!r}")
    latency_edges = _edges(document, "latency_edges_ms")
    throughput_edges = _edges(document, "throughput_edges")
    n_max = document.get("max_instances")
    if isinstance(n_max, bool) or not isinstance(n_max, int) or n_max < 1:
        raise ValueError(f"document['max_instances'] must be a positive integer, got {n_max!r}")
    actions = document.get("actions")
    if not isinstance(actions, list) or not actions or len(set(actions)) != len(actions):
        raise ValueError("document['actions'] must be a non-empty list of distinct names")
    rows = document.get("policy")
    size = (len(latency_edges) + 1) * (len(throughput_edges) + 1) * n_max
    if not isinstance(rows, list) or len(rows) != size:
        count = len(rows) if isinstance(rows, list) else rows
        raise ValueError(f"document['policy'] must have {size} rows (one per state), got {count}")
    index = {name: a for a, name in enumerate(actions)}
    table = np.empty(size, dtype=np.int64)
    for s, row in enumerate(rows):
        if row.get("state", s) != s:
            raise ValueError(f"policy row {s} says it is state {row['state']}")
        if row.get("action") not in index:
            raise ValueError(f"policy row {s}: action {row.get('action')!r} not in {actions}")
        table[s] = index[row["action"]]
    return PolicyTable(latency_edges, throughput_edges, n_max, tuple(actions), table)


def policy_to_onnx(document: dict) -> onnx.ModelProto:
    """The policy of an export document as a checked ONNX graph (rule in the module docstring).

    The model's metadata carries the action names, edges, ``max_instances``, the document's
    format and the lookup rule (as JSON strings), for a server that maps indices to names."""
    onnx = import_onnx()
    from onnx import TensorProto, helper, numpy_helper

    spec = policy_table(document)
    table = np.append(spec.table, np.int64(NO_ACTION))  # entry S: no state

    def const(name: str, value: Any, dtype: type) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    initializers = [
        const("latency_edges_ms", [spec.latency_edges], np.float64),  # [1, K_l]
        const("throughput_edges", [spec.throughput_edges], np.float64),  # [1, K_t]
        const("axis_1", [1], np.int64),
        const("n_throughput_bins", spec.n_throughput, np.int64),
        const("max_instances", spec.max_instances, np.int64),
        const("one", 1, np.int64),
        const("no_state", spec.n_states, np.int64),
        const("action_table", table, np.int64),  # [S + 1]
    ]

    def bin_nodes(x: str, edges: str, out: str) -> list[onnx.NodeProto]:
        """out = number of edges strictly below x (bisect_left; right-closed bins)."""
        return [
            helper.make_node("Unsqueeze", [x, "axis_1"], [f"{x}_column"]),  # [N, 1]
            helper.make_node(
                "Less", [edges, f"{x}_column"], [f"{x}_above_edge"], name=f"{out}_less"
            ),
            helper.make_node(
                "Cast", [f"{x}_above_edge"], [f"{x}_above_count"], to=TensorProto.INT64
            ),
            helper.make_node("ReduceSum", [f"{x}_above_count", "axis_1"], [out], keepdims=0),
        ]

    nodes = [
        *bin_nodes("latency_ms", "latency_edges_ms", "latency_bin"),
        *bin_nodes("rate", "throughput_edges", "throughput_bin"),
        helper.make_node("Mul", ["latency_bin", "n_throughput_bins"], ["latency_cells"]),
        helper.make_node("Add", ["latency_cells", "throughput_bin"], ["cell"]),
        helper.make_node("Mul", ["cell", "max_instances"], ["cell_base"]),
        helper.make_node("Sub", ["instances", "one"], ["instance_slot"]),
        helper.make_node("Add", ["cell_base", "instance_slot"], ["state"]),
        helper.make_node("GreaterOrEqual", ["instances", "one"], ["at_least_one"]),
        helper.make_node("LessOrEqual", ["instances", "max_instances"], ["at_most_max"]),
        helper.make_node("And", ["at_least_one", "at_most_max"], ["valid_instances"]),
        helper.make_node("Where", ["valid_instances", "state", "no_state"], ["table_index"]),
        helper.make_node("Gather", ["action_table", "table_index"], ["action"], axis=0),
    ]
    graph = helper.make_graph(
        nodes,
        "autoscaler_policy_lookup",
        inputs=[
            helper.make_tensor_value_info("latency_ms", TensorProto.DOUBLE, ["N"]),
            helper.make_tensor_value_info("rate", TensorProto.DOUBLE, ["N"]),
            helper.make_tensor_value_info("instances", TensorProto.INT64, ["N"]),
        ],
        outputs=[helper.make_tensor_value_info("action", TensorProto.INT64, ["N"])],
        initializer=initializers,
        doc_string="Table lookup of the autoscaler policy. " + ONNX_LOOKUP_RULE,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version=_version(),
        doc_string=(
            "Autoscaler policy exported from an mdplab JSON document. Inputs latency_ms "
            "(double [N], p95 ms), rate (double [N], req/s), instances (int64 [N]); output "
            f"action (int64 [N]), an index into the metadata's actions. {ONNX_LOOKUP_RULE}"
        ),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "format": FORMAT,
            "actions": json.dumps(list(spec.actions)),
            "latency_edges_ms": json.dumps(list(spec.latency_edges)),
            "throughput_edges": json.dumps(list(spec.throughput_edges)),
            "max_instances": str(spec.max_instances),
            "lookup": ONNX_LOOKUP_RULE,
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mdplab")
    except PackageNotFoundError:
        return "unknown"


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write the model to ``path`` (one self-contained ``.onnx`` file) and return the path."""
    onnx = import_onnx()
    path = Path(path)
    onnx.save_model(model, str(path))
    return path


def model_bytes(model_or_path: onnx.ModelProto | bytes | str | Path) -> bytes:
    """The serialised model, from a ModelProto, bytes or a file."""
    if isinstance(model_or_path, bytes | bytearray):
        return bytes(model_or_path)
    if isinstance(model_or_path, str | Path):
        return Path(model_or_path).read_bytes()
    return model_or_path.SerializeToString()


def inference_session(
    model_or_path: onnx.ModelProto | bytes | str | Path,
) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session on one thread (a lookup gains nothing from more)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(
        model_bytes(model_or_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_policy(session: onnxruntime.InferenceSession, latency_ms, rate, instances) -> np.ndarray:
    """The graph's actions (int64) for arrays (or scalars) of minutes."""
    feeds = {
        "latency_ms": np.atleast_1d(np.asarray(latency_ms, dtype=np.float64)),
        "rate": np.atleast_1d(np.asarray(rate, dtype=np.float64)),
        "instances": np.atleast_1d(np.asarray(instances, dtype=np.int64)),
    }
    return session.run(["action"], feeds)[0]


class Mismatch(NamedTuple):
    """A probe where the graph and :func:`export.lookup` disagree (action indices)."""

    latency_ms: float
    rate: float
    instances: int
    expected: int
    got: int


@dataclass(frozen=True)
class OnnxCheck:
    """What :func:`check_onnx` found.

    ``states_checked`` of ``n_states`` states were reached by ``points_checked`` probes;
    ``mismatches`` lists the probes where the graph differs from the lookup; the timings are
    one batched run of 10,000 random minutes (seconds) and the median single-minute run
    (microseconds), as a server calls it."""

    n_states: int
    states_checked: int
    points_checked: int
    mismatches: tuple[Mismatch, ...]
    seconds_per_10k: float
    microseconds_per_call: float

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.states_checked == self.n_states


def probe_points(edges: tuple[float, ...]) -> list[float]:
    """Values that test the binning of ``edges``: a point inside every bin, every edge
    exactly and one ulp below and above it, and both infinities."""
    width = max(1.0, edges[-1] - edges[0])
    inside = [edges[0] - width / 2, *((a + b) / 2 for a, b in pairwise(edges))]
    inside.append(edges[-1] + width / 2)
    at_edges = [
        x for e in edges for x in (math.nextafter(e, -math.inf), e, math.nextafter(e, math.inf))
    ]
    return [*inside, *at_edges, -math.inf, math.inf]


def check_onnx(
    document: dict, model_or_path: onnx.ModelProto | bytes | str | Path, timing_calls: int = 300
) -> OnnxCheck:
    """Run the graph on every state and every bin edge and compare with ``export.lookup``.

    The probes are the product of :func:`probe_points` of both edge lists and every instance
    count ``1..max_instances``, plus one minute with 0 and one with ``max_instances + 1``
    instances, where the graph must answer ``NO_ACTION``."""
    spec = policy_table(document)
    session = inference_session(model_or_path)
    probes = list(
        product(
            probe_points(spec.latency_edges),
            probe_points(spec.throughput_edges),
            range(1, spec.max_instances + 1),
        )
    )
    index = {name: a for a, name in enumerate(spec.actions)}
    expected = [index[lookup(document, *probe)] for probe in probes]
    middle = (spec.latency_edges[0], spec.throughput_edges[0])
    for n in (0, spec.max_instances + 1):
        probes.append((*middle, n))
        expected.append(NO_ACTION)
    latency, rate, instances = (np.array(column) for column in zip(*probes, strict=True))
    got = run_policy(session, latency, rate, instances)
    mismatches = tuple(
        Mismatch(float(p[0]), float(p[1]), int(p[2]), e, int(g))
        for p, e, g in zip(probes, expected, got, strict=True)
        if e != g
    )
    states = {spec.state(*p) for p in probes if 1 <= p[2] <= spec.max_instances}

    rng = np.random.default_rng(0)
    batch = (
        rng.uniform(0, 2 * spec.latency_edges[-1], 10_000),
        rng.uniform(0, 2 * spec.throughput_edges[-1], 10_000),
        rng.integers(1, spec.max_instances + 1, 10_000),
    )
    run_policy(session, *batch)  # warm-up
    start = time.perf_counter()
    run_policy(session, *batch)
    batch_seconds = time.perf_counter() - start
    single = []
    for t in range(timing_calls):
        start = time.perf_counter()
        run_policy(session, batch[0][t], batch[1][t], batch[2][t])
        single.append(time.perf_counter() - start)
    return OnnxCheck(
        n_states=spec.n_states,
        states_checked=len(states),
        points_checked=len(probes),
        mismatches=mismatches,
        seconds_per_10k=batch_seconds,
        microseconds_per_call=float(np.median(single)) * 1e6 if single else math.nan,
    )
