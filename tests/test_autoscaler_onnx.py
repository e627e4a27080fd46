"""The policy as an ONNX graph: it agrees with export.lookup on every state and every edge."""

from __future__ import annotations

import math
import sys

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from mdplab.autoscaler import (
    ACTIONS,
    LATENCY_EDGES_MS,
    THROUGHPUT_EDGES,
    build_model,
    export_policy_json,
    generate_telemetry,
    load_policy_json,
    lookup,
)
from mdplab.autoscaler.export import FORMAT, LOOKUP_RULE
from mdplab.autoscaler.onnx_policy import (
    NO_ACTION,
    OPSET,
    check_onnx,
    import_onnx,
    import_onnxruntime,
    inference_session,
    policy_to_onnx,
    run_policy,
    save_onnx,
)


def make_document(table, latency_edges=LATENCY_EDGES_MS, throughput_edges=THROUGHPUT_EDGES, n=8):
    """A document in export.py's format for the action indices ``table`` (one per state)."""

    def bounds(edges, k):
        return [edges[k - 1] if k > 0 else None, edges[k] if k < len(edges) else None]

    rows = []
    for s, a in enumerate(table):
        cell, slot = divmod(s, n)
        lat, tau = divmod(cell, len(throughput_edges) + 1)
        rows.append(
            {
                "state": s,
                "latency_bin": lat,
                "latency_ms": bounds(latency_edges, lat),
                "throughput_bin": tau,
                "rate": bounds(throughput_edges, tau),
                "instances": slot + 1,
                "action": ACTIONS[int(a)],
                "value": 0.0,
            }
        )
    return {
        "format": FORMAT,
        "gamma": 0.95,
        "actions": list(ACTIONS),
        "latency_edges_ms": list(latency_edges),
        "throughput_edges": list(throughput_edges),
        "max_instances": n,
        "lookup": LOOKUP_RULE,
        "policy": rows,
    }


def striped_table(n_latency, n_throughput, n):
    """Actions that differ between neighbouring bins (one axis or both) and neighbouring
    states, so that a shifted bin or table shows."""
    lat, tau, slot = np.meshgrid(
        np.arange(n_latency), np.arange(n_throughput), np.arange(n), indexing="ij"
    )
    return ((2 * lat + tau + slot) % 4).ravel()  # steps of 2, 1 and 3 (both)


@pytest.fixture(scope="module")
def document():
    table = np.random.default_rng(7).integers(0, 4, size=200)
    return make_document(table)


@pytest.fixture(scope="module")
def striped():
    return make_document(striped_table(5, 5, 8))


@pytest.fixture(scope="module")
def session(document):
    return inference_session(policy_to_onnx(document))


def test_graph_agrees_with_lookup_on_every_state_and_edge(document):
    check = check_onnx(document, policy_to_onnx(document))
    assert check.ok, check.mismatches[:5]
    assert (check.n_states, check.states_checked) == (200, 200)
    # 5 inside points + 4 edges x 3 + 2 infinities per axis, 8 counts, 2 out of range
    assert check.points_checked == 19 * 19 * 8 + 2
    assert check.seconds_per_10k > 0 and check.microseconds_per_call > 0


@pytest.mark.parametrize(
    ("latency_edges", "throughput_edges", "n"),
    [((200.0,), (10.0, 20.0, 40.0), 3), ((-1.5, 0.0, 1e-9, 7.25), (0.5,), 1)],
)
def test_other_bins_and_fleet_sizes(latency_edges, throughput_edges, n):
    table = striped_table(len(latency_edges) + 1, len(throughput_edges) + 1, n)
    doc = make_document(table, latency_edges, throughput_edges, n)
    check = check_onnx(doc, policy_to_onnx(doc), timing_calls=5)
    assert check.ok and check.states_checked == len(table)


def test_the_sla_edge_is_right_closed(striped):
    """200.0 ms is in (175, 200]; the next double up is in (200, 250]. By hand: rate 25.0 is
    in bin 0, so s = (l * 5 + 0) * 8 + (3 - 1)."""
    table = [ACTIONS.index(row["action"]) for row in striped["policy"]]
    at, above = 200.0, math.nextafter(200.0, math.inf)
    strict = inference_session(policy_to_onnx(striped))
    got = run_policy(strict, [at, above], [25.0, 25.0], [3, 3]).tolist()
    assert got == [table[(1 * 5 + 0) * 8 + 2], table[(2 * 5 + 0) * 8 + 2]]
    assert got[0] != got[1]


def test_out_of_range_instances_have_no_action(session, document):
    got = run_policy(session, [150.0] * 3, [30.0] * 3, [0, 9, -4])
    assert got.tolist() == [NO_ACTION] * 3
    with pytest.raises(ValueError, match="between 1 and 8"):
        lookup(document, 150.0, 30.0, 0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(LATENCY_EDGES_MS), st.floats(-1e6, 1e6)),
            st.one_of(st.sampled_from(THROUGHPUT_EDGES), st.floats(-1e6, 1e6)),
            st.integers(1, 8),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_minute_agrees_with_lookup(session, document, minutes):
    latency, rate, instances = zip(*minutes, strict=True)
    got = run_policy(session, latency, rate, instances).tolist()
    assert got == [ACTIONS.index(lookup(document, *m)) for m in minutes]


def _with_left_closed_bins(model):
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    for node in bad.graph.node:
        if node.op_type == "Less":  # edges < x  ->  edges <= x: bins [e_{k-1}, e_k)
            node.op_type = "LessOrEqual"
    onnx.checker.check_model(bad)
    return bad


def _with_table_off_by_one(model):
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    for i, tensor in enumerate(bad.graph.initializer):
        if tensor.name == "action_table":
            table = numpy_helper.to_array(tensor)
            shifted = np.append(np.roll(table[:-1], 1), table[-1])
            bad.graph.initializer[i].CopyFrom(numpy_helper.from_array(shifted, tensor.name))
    return bad


def test_check_catches_left_closed_bins(striped):
    check = check_onnx(striped, _with_left_closed_bins(policy_to_onnx(striped)), timing_calls=5)
    assert not check.ok and check.states_checked == 200
    # only probes exactly on an edge move bin, and every such probe does
    on_edge = [
        m.latency_ms in LATENCY_EDGES_MS or m.rate in THROUGHPUT_EDGES for m in check.mismatches
    ]
    assert all(on_edge)
    assert len(check.mismatches) == 8 * (19 * 19 - 15 * 15)


def test_check_catches_a_table_off_by_one(striped):
    check = check_onnx(striped, _with_table_off_by_one(policy_to_onnx(striped)), timing_calls=5)
    assert not check.ok
    assert len(check.mismatches) == 19 * 19 * 8  # every in-range probe


def test_model_is_described_and_saved(document, tmp_path):
    model = policy_to_onnx(document)
    assert model.producer_name and model.opset_import[0].version == OPSET
    assert "strictly below" in model.doc_string and "right-closed" in model.graph.doc_string
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["format"] == FORMAT and meta["max_instances"] == "8"
    assert [i.name for i in model.graph.input] == ["latency_ms", "rate", "instances"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    path = save_onnx(model, tmp_path / "policy.onnx")
    assert check_onnx(document, path, timing_calls=5).ok
    assert check_onnx(document, path.read_bytes(), timing_calls=5).ok


def test_the_exporters_own_document(tmp_path):
    """The format as export_policy_json writes it (a small model, a random policy)."""
    model = build_model(generate_telemetry(days=1))
    policy = np.random.default_rng(3).integers(0, 4, size=model.n_states)
    export_policy_json(model, policy, np.zeros(model.n_states), tmp_path / "policy.json")
    doc = load_policy_json(tmp_path / "policy.json")
    assert check_onnx(doc, policy_to_onnx(doc), timing_calls=5).ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["policy"].pop(), "must have 200 rows"),
        (lambda d: d.update(latency_edges_ms=[200.0, 175.0, 250.0, 300.0]), "increasing"),
        (lambda d: d["policy"][5].update(action="sideways"), "not in"),
        (lambda d: d["policy"][5].update(state=6), "row 5 says"),
        (lambda d: d.update(max_instances=True), "positive integer"),
        (lambda d: d.update(format="other/1"), "not a mdplab"),
    ],
)
def test_bad_documents_are_refused(document, change, message):
    import copy

    bad = copy.deepcopy(document)
    change(bad)
    with pytest.raises(ValueError, match=message):
        policy_to_onnx(bad)


@pytest.mark.parametrize(
    ("module", "load"), [("onnx", import_onnx), ("onnxruntime", import_onnxruntime)]
)
def test_missing_packages_name_the_extra(monkeypatch, module, load):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "mdplab\[tracks\]"'):
        load()
