"""The ONNX policy behind a local HTTP endpoint, the served replay, drift and window p95s."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

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
    Physics,
    build_model,
    exogenous,
    generate_telemetry,
    lookup,
    replay,
)
from mdplab.autoscaler.export import FORMAT
from mdplab.autoscaler.onnx_policy import policy_to_onnx
from mdplab.autoscaler.serving import (
    http_decider,
    quantise_transitions,
    serve_and_replay,
    serve_policy,
    share_windows_over,
    sliding_window_p95,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def make_document(table, n=8):
    """A document in export.py's format over the default bins (only what lookup reads)."""
    return {
        "format": FORMAT,
        "actions": list(ACTIONS),
        "latency_edges_ms": list(LATENCY_EDGES_MS),
        "throughput_edges": list(THROUGHPUT_EDGES),
        "max_instances": n,
        "policy": [{"state": s, "action": ACTIONS[int(a)]} for s, a in enumerate(table)],
    }


@pytest.fixture(scope="module")
def document():
    return make_document(np.random.default_rng(11).integers(0, 4, size=200))


@pytest.fixture(scope="module")
def url(document):
    with serve_policy(policy_to_onnx(document)) as base:
        yield base


def call(url, path, body=None):
    """(status, JSON answer) of a GET (no body) or POST."""
    request = urllib.request.Request(
        url + path, data=body, method="GET" if body is None else "POST"
    )
    try:
        with NO_PROXY.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        assert "Traceback" not in text
        return error.code, json.loads(text)


def test_health(url):
    status, answer = call(url, "/health")
    assert status == 200 and answer["status"] == "ok"
    assert answer["actions"] == list(ACTIONS) and answer["max_instances"] == 8


@pytest.mark.parametrize("minute", [(150.0, 20.0, 1), (200.0, 25.0, 3), (200.000001, 100.0, 8)])
def test_decide_answers_the_lookup(url, document, minute):
    body = json.dumps(dict(zip(("latency_ms", "rate", "instances"), minute, strict=True)))
    status, answer = call(url, "/decide", body.encode())
    name = lookup(document, *minute)
    assert status == 200 and answer == {"action": ACTIONS.index(name), "name": name}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[150, 20, 3]", "JSON object"),
        (b'{"latency_ms": 150, "rate": 20}', "missing ['instances']"),
        (b'{"latency_ms": 150, "rate": 20, "instances": 3, "x": 1}', "unknown ['x']"),
        (b'{"latency_ms": "fast", "rate": 20, "instances": 3}', "latency_ms must be a number"),
        (b'{"latency_ms": NaN, "rate": 20, "instances": 3}', "not valid JSON"),
        (b'{"latency_ms": 150, "rate": 1e400, "instances": 3}', "rate must be finite"),
        (b'{"latency_ms": 150, "rate": 20, "instances": 2.5}', "must be an integer"),
        (b'{"latency_ms": 150, "rate": 20, "instances": true}', "must be an integer"),
        (b'{"latency_ms": 150, "rate": 20, "instances": 0}', "between 1 and 8"),
        (b'{"latency_ms": 150, "rate": 20, "instances": 9}', "between 1 and 8"),
    ],
)
def test_bad_requests_get_400_and_a_message(url, body, message):
    status, answer = call(url, "/decide", body)
    assert status == 400
    assert message in answer["error"]


def test_unknown_paths_get_404(url):
    assert call(url, "/nowhere")[0] == 404
    assert call(url, "/decide/x", b"{}")[0] == 404


def test_the_decider_reports_refusals_and_times(url):
    decide = http_decider(url)
    assert decide(150.0, 20.0, 2) in range(4)
    with pytest.raises(RuntimeError, match="400: instances must be between 1 and 8"):
        decide(150.0, 20.0, 12)
    assert len(decide.round_trip_ms) == 2 and min(decide.round_trip_ms) > 0


def test_the_endpoint_closes_on_exit(document):
    with serve_policy(policy_to_onnx(document).SerializeToString()) as base:
        assert call(base, "/health")[0] == 200
    with pytest.raises(urllib.error.URLError):
        NO_PROXY.open(base + "/health", timeout=2)


def test_served_replay_is_the_lookups_replay(document):
    """Over HTTP or in process, the same decisions: the same run, minute by minute."""
    exo, physics = exogenous(1, seed=5), Physics()
    report = serve_and_replay(document, exo, physics, steps=240, seed=6)
    assert report.actions_match and report.steps == 240
    assert report.round_trip_ms.size == 240
    assert 0 < report.decision_ms_p50 <= report.decision_ms_p95 <= report.decision_ms_max
    assert 0.0 <= report.window_p95_share_over_sla <= 1.0

    def local(latency_ms, rate, instances):
        return ACTIONS.index(lookup(document, latency_ms, rate, instances))

    direct = replay(local, exo, physics, 240, seed=6)
    for column in ("p95_latency_ms", "instances", "action"):
        np.testing.assert_array_equal(report.log[column], direct[column])
    assert report.latency_p95_mean_ms == pytest.approx(direct["p95_latency_ms"].mean())
    windows = sliding_window_p95(direct["p95_latency_ms"], 5)
    assert report.window_p95_share_over_sla == share_windows_over(windows, 200.0)
    assert "served actions != lookup     0" in report.summary()


def test_served_replay_catches_a_wrong_graph(document):
    model = policy_to_onnx(document)
    for tensor in model.graph.initializer:
        if tensor.name == "action_table":
            table = numpy_helper.to_array(tensor)
            tensor.CopyFrom(numpy_helper.from_array((table + 1) % 4, tensor.name))
    onnx.checker.check_model(model)
    report = serve_and_replay(document, exogenous(1, seed=5), Physics(), 60, 6, model=model)
    assert report.mismatched_minutes == 60 and not report.actions_match


# quantise_transitions


def test_quantise_by_hand():
    # 20 units: floors 6, 6, 6 leave 2, for the remainders .8 (third) and .6 (first: ties go
    # to the lower index)
    np.testing.assert_allclose(quantise_transitions([0.33, 0.33, 0.34], 0.05), [0.35, 0.3, 0.35])
    # 0.01 -> 0.2 units, remainder .2 < .8: the tiny entry drops to 0, its mass goes up
    np.testing.assert_array_equal(quantise_transitions([0.01, 0.99], 0.05), [0.0, 1.0])
    # a zero row (an invalid action) stays zero, the zero of a row stays zero
    P = np.array([[[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.7, 0.3], [0.1, 0.2, 0.7]]])
    Q = quantise_transitions(P, 0.25)
    np.testing.assert_array_equal(Q[0, 1], 0.0)
    np.testing.assert_array_equal(
        Q, [[[0.5, 0.5, 0], [0, 0, 0]], [[0, 0.75, 0.25], [0, 0.25, 0.75]]]
    )


@pytest.mark.parametrize(
    ("P", "step", "message"),
    [
        ([0.5, 0.5], 0.3, "step must be 1/M"),
        ([0.5, 0.5], 0.0, "step must be 1/M"),
        ([0.5, 0.6], 0.1, "sums to 1.1"),
        ([1.5, -0.5], 0.1, "non-negative"),
    ],
)
def test_quantise_refuses(P, step, message):
    with pytest.raises(ValueError, match=message):
        quantise_transitions(np.array(P), step)


rows = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=1, max_size=12).filter(
    lambda row: sum(row) > 0
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(rows, st.just([])), min_size=1, max_size=6),
    st.sampled_from([1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.01, 1 / 3, 1 / 7]),
)
def test_quantise_keeps_sums_and_support(weights, step):
    width = max(len(row) for row in weights) or 1
    P = np.zeros((len(weights), width))
    for i, row in enumerate(weights):
        P[i, : len(row)] = row
    live = P.sum(axis=1) > 0
    P[live] /= P[live].sum(axis=1, keepdims=True)
    Q = quantise_transitions(P, step)
    M = round(1 / step)
    units = Q * M
    np.testing.assert_allclose(units, np.rint(units), atol=1e-9)  # on the grid
    assert np.all(np.rint(units).sum(axis=1)[live] == M)  # exactly M units a row
    np.testing.assert_allclose(Q.sum(axis=1)[live], 1.0, atol=1e-12)
    assert np.all(Q[~live] == 0)  # zero rows stay zero
    assert np.all(Q[P == 0] == 0)  # the support never grows
    assert np.all(np.abs(Q - P) < step + 1e-12)  # less than a step per entry
    np.testing.assert_array_equal(quantise_transitions(Q, step), Q)  # idempotent


def test_quantise_a_model():
    """On a model's P: invalid pairs stay zero rows; the rest stay distributions."""
    model = build_model(generate_telemetry(days=1))
    Q = quantise_transitions(model.P, 0.05)
    assert Q.shape == model.P.shape
    invalid = np.isinf(model.C)
    assert np.all(Q[invalid] == 0)
    np.testing.assert_allclose(Q[~invalid].sum(axis=1), 1.0, atol=1e-12)


# sliding-window p95


def test_sliding_window_p95_by_hand():
    # window 1: sorted 100..500, p95 at position 0.95 * 4 = 3.8: 400 + 0.8 * 100 = 480;
    # window 2: sorted 200, 300, 400, 500, 1000: 500 + 0.8 * 500 = 900
    latency = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 1000.0])
    np.testing.assert_allclose(sliding_window_p95(latency, 5), [480.0, 900.0])
    np.testing.assert_array_equal(sliding_window_p95(latency, 1), latency)
    assert share_windows_over([480.0, 900.0], 500.0) == 0.5
    assert share_windows_over([200.0, math.nextafter(200.0, 300.0)], 200.0) == 0.5  # SLA meets
    with pytest.raises(ValueError, match="window"):
        sliding_window_p95(latency, 7)
    with pytest.raises(ValueError, match="1-D"):
        sliding_window_p95(latency.reshape(2, 3))
