"""The exported policy: CSV and JSON round trips, and the standard-library lookup rule."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdplab.autoscaler import (
    ACTIONS,
    export_policy_csv,
    export_policy_json,
    greedy_decider,
    load_policy_json,
    lookup,
    value_iteration,
)


@pytest.fixture(scope="module")
def solved(shipped_model):
    model = shipped_model
    V, policy, _, _ = value_iteration(model.C, model.P, model.gamma)
    return model, policy, V


@pytest.fixture(scope="module")
def document(solved, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "policy.json"
    export_policy_json(*solved, path)
    return load_policy_json(path)


def test_csv_round_trip(solved, tmp_path):
    model, policy, V = solved
    path = tmp_path / "policy.csv"
    export_policy_csv(model, policy, V, path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    assert [ACTIONS.index(row["action"]) for row in rows] == policy.tolist()
    np.testing.assert_array_equal([float(row["value"]) for row in rows], V)  # exact
    # state 0: latency up to 175 ms, rate up to 25 req/s, 1 instance
    first = rows[0]
    assert (first["latency_low_ms"], first["latency_high_ms"]) == ("-inf", "175.0")
    assert (first["rate_low"], first["rate_high"]) == ("-inf", "25.0")
    assert first["instances"] == "1"
    # the last state: above 300 ms, above 100 req/s, 8 instances
    last = rows[-1]
    assert (float(last["latency_low_ms"]), float(last["latency_high_ms"])) == (300.0, np.inf)
    assert (last["throughput_bin"], last["rate_low"], last["instances"]) == ("4", "100.0", "8")


def test_json_round_trip(solved, document):
    model, policy, V = solved
    assert document["gamma"] == 0.95
    assert document["actions"] == ["down", "hold", "up", "spot"]
    assert document["latency_edges_ms"] == [175.0, 200.0, 250.0, 300.0]
    assert document["throughput_edges"] == list(model.throughput_edges)
    assert document["max_instances"] == 8
    table = document["policy"]
    assert [row["state"] for row in table] == list(range(200))
    assert [document["actions"].index(row["action"]) for row in table] == policy.tolist()
    np.testing.assert_array_equal([row["value"] for row in table], V)
    assert table[41]["latency_ms"] == [175.0, 200.0] and table[41]["instances"] == 2
    assert table[0]["latency_ms"] == [None, 175.0]  # JSON has no infinity


def test_json_is_plain_json(solved, tmp_path):
    path = tmp_path / "p.json"
    export_policy_json(*solved, path)
    json.loads(path.read_text(encoding="utf-8"))  # strict parser: no NaN or Infinity
    with pytest.raises(ValueError, match="not a"):
        bad = tmp_path / "bad.json"
        bad.write_text("{}", encoding="utf-8")
        load_policy_json(bad)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.floats(50, 1500), st.sampled_from([175.0, 200.0, 250.0, 300.0, 200.0001])),
    st.one_of(st.floats(0, 300), st.sampled_from([25.0, 45.0, 70.0, 100.0])),
    st.integers(1, 8),
)
def test_lookup_rule_matches_the_greedy_decider(solved, document, latency, rate, instances):
    model, policy, _ = solved
    decide = greedy_decider(model, policy)
    assert lookup(document, latency, rate, instances) == ACTIONS[decide(latency, rate, instances)]


def test_lookup_by_hand(document):
    # 200 ms is in (175, 200] (bin 1), 25 req/s in bin 0: s = (1 * 5 + 0) * 8 + 2 = 42
    assert lookup(document, 200.0, 25.0, 3) == document["policy"][42]["action"]
    assert lookup(document, 200.1, 25.1, 3) == document["policy"][(2 * 5 + 1) * 8 + 2]["action"]
    with pytest.raises(ValueError, match="instances"):
        lookup(document, 150.0, 10.0, 9)
