"""FiniteMDP: construction, look-ups, dense round trips and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mdplab import FiniteMDP


def two_state_model(**overrides):
    """State 'lo' has actions 'wait'/'go', state 'hi' has 'stay'."""
    args = dict(
        pair_state=[0, 0, 1],
        pair_action=["wait", "go", "stay"],
        costs=[1.0, 2.0, 0.5],
        transitions=[[1.0, 0.0], [0.25, 0.75], [0.0, 1.0]],
        discount=0.9,
        state_labels=["lo", "hi"],
    )
    args.update(overrides)
    return FiniteMDP(**args)


def test_layout_and_lookups():
    mdp = two_state_model()
    assert mdp.n_states == 2
    assert mdp.n_pairs == 3
    assert mdp.discount == 0.9
    np.testing.assert_array_equal(mdp.state_ptr, [0, 2, 3])
    np.testing.assert_array_equal(mdp.pair_state, [0, 0, 1])
    assert list(mdp.actions_of("lo")) == ["wait", "go"]
    assert mdp.pair_index("lo", "go") == 1
    assert mdp.cost("hi", "stay") == 0.5
    np.testing.assert_array_equal(mdp.transition_row("lo", "go"), [0.25, 0.75])
    assert mdp.state_index("hi") == 1
    assert isinstance(mdp.transitions, sp.csr_matrix)
    assert mdp.transitions.dtype == np.float64
    assert mdp.transitions.indices.dtype == np.int32
    assert "n_states=2" in repr(mdp)


def test_arrays_are_read_only():
    mdp = two_state_model()
    with pytest.raises(ValueError, match="read-only"):
        mdp.costs[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        mdp.transitions.data[0] = 0.5


def test_from_dense_round_trip_marks_infeasible_with_inf_or_nan():
    costs = np.array([[1.0, np.inf, 3.0], [np.nan, 2.0, 4.0]])
    p = np.zeros((2, 3, 2))
    p[0, 0] = [0.5, 0.5]
    p[0, 2] = [0.0, 1.0]
    p[1, 1] = [1.0, 0.0]
    p[1, 2] = [0.3, 0.7]
    p[0, 1] = [7.0, 7.0]  # ignored: the pair is infeasible
    mdp = FiniteMDP.from_dense(costs, p, 0.5, state_labels=["x", "y"], action_labels=[10, 20, 30])
    assert mdp.n_pairs == 4
    assert list(mdp.actions_of("x")) == [10, 30]
    assert list(mdp.actions_of("y")) == [20, 30]
    r, q = mdp.to_dense()
    np.testing.assert_array_equal(r, np.where(np.isfinite(costs), costs, np.inf))
    expected = p.copy()
    expected[0, 1] = 0.0
    np.testing.assert_array_equal(q, expected)
    np.testing.assert_array_equal(mdp.action_labels, [10, 20, 30])


def test_from_pairs_orders_states_and_keeps_action_order():
    mdp = FiniteMDP.from_pairs(
        [
            ("b", "up", 1.0, {"a": 1.0}),
            ("a", "z", 2.0, {"a": 0.5, "b": 0.5}),
            ("a", "y", 3.0, {"b": 1.0}),
        ],
        discount=0.0,
    )
    assert list(mdp.state_labels) == ["b", "a"]
    assert list(mdp.actions_of("a")) == ["z", "y"]
    np.testing.assert_array_equal(mdp.transition_row("a", "z"), [0.5, 0.5])
    ordered = FiniteMDP.from_pairs(
        [("b", "up", 1.0, {"a": 1.0}), ("a", "z", 2.0, {"b": 1.0})],
        discount=0.0,
        state_labels=["a", "b"],
    )
    assert list(ordered.state_labels) == ["a", "b"]
    assert ordered.cost("a", "z") == 2.0


def test_tuple_labels_stay_single_labels():
    mdp = FiniteMDP.from_pairs(
        [((0, 1), (1, 1), 1.0, {(0, 1): 1.0}), ((0, 1), (2, 2), 2.0, {(0, 1): 1.0})],
        discount=0.5,
    )
    assert mdp.state_labels.shape == (1,)
    assert mdp.state_index((0, 1)) == 0
    assert mdp.pair_index((0, 1), (2, 2)) == 1


def test_policy_pairs_accepts_sequences_and_mappings():
    mdp = two_state_model()
    np.testing.assert_array_equal(mdp.policy_pairs(["go", "stay"]), [1, 2])
    np.testing.assert_array_equal(mdp.policy_pairs({"hi": "stay", "lo": "wait"}), [0, 2])


def test_state_vector_from_mapping():
    mdp = two_state_model()
    np.testing.assert_array_equal(mdp.state_vector({"hi": 2, "lo": 1}), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"no value for state\(s\) \['hi'\]"):
        mdp.state_vector({"lo": 1})
    with pytest.raises(ValueError, match="unknown state"):
        mdp.state_vector({"lo": 1, "hi": 2, "mid": 3})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        mdp.state_vector([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        mdp.state_vector([1.0, np.nan])


def test_large_model_keeps_int32_indices():
    n = 50_000
    p = sp.csr_matrix((np.ones(n), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    mdp = FiniteMDP(np.arange(n), np.zeros(n, dtype=int), np.ones(n), p, 0.5)
    assert mdp.transitions.indices.dtype == np.int32
    assert mdp.transitions.indptr.dtype == np.int32


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_discount_outside_unit_interval(beta):
    with pytest.raises(ValueError, match=r"discount must lie in \[0, 1\)"):
        two_state_model(discount=beta)


def test_discount_must_be_a_number():
    with pytest.raises(ValueError, match="discount must be a real number"):
        two_state_model(discount="0.9")


def test_row_not_summing_to_one_names_the_pair():
    with pytest.raises(
        ValueError, match=r"transition row of \(state 'lo', action 'go'\).*sums to 0.9"
    ):
        two_state_model(transitions=[[1.0, 0.0], [0.25, 0.65], [0.0, 1.0]])


def test_negative_probability_names_pair_and_next_state():
    with pytest.raises(
        ValueError,
        match=r"probability -0.25 from \(state 'lo', action 'go'\).*to state 'lo'",
    ):
        two_state_model(transitions=[[1.0, 0.0], [-0.25, 1.25], [0.0, 1.0]])


def test_nan_probability():
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        two_state_model(transitions=[[1.0, 0.0], [np.nan, 1.0], [0.0, 1.0]])


def test_state_without_actions():
    with pytest.raises(ValueError, match="state 'hi' has no feasible action"):
        two_state_model(
            pair_state=[0, 0, 0],
            pair_action=["wait", "go", "stay"],
        )


def test_from_dense_state_without_actions():
    costs = np.array([[1.0, np.inf], [np.inf, np.nan]])
    p = np.full((2, 2, 2), 0.5)
    with pytest.raises(ValueError, match="state 1 has no feasible action"):
        FiniteMDP.from_dense(costs, p, 0.9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_cost_names_the_pair(bad):
    with pytest.raises(ValueError, match=r"cost of \(state 'hi', action 'stay'\).*must be finite"):
        two_state_model(costs=[1.0, 2.0, bad])


def test_from_dense_minus_inf_cost():
    costs = np.array([[1.0, -np.inf]])
    with pytest.raises(ValueError, match=r"costs\[0, 1\] is -inf"):
        FiniteMDP.from_dense(costs, np.ones((1, 2, 1)), 0.9)


def test_shape_mismatches():
    with pytest.raises(ValueError, match="costs has 2 entries but there are 3 pairs"):
        two_state_model(costs=[1.0, 2.0])
    with pytest.raises(ValueError, match="pair_action has 2 entries"):
        two_state_model(pair_action=["wait", "go"])
    with pytest.raises(ValueError, match="pair_state must be 1-D with one state index per pair"):
        two_state_model(pair_state=[0, 1])
    with pytest.raises(ValueError, match="state_labels has 3 labels but transitions has 2"):
        two_state_model(state_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"transitions must have shape \(S, A, S\) = \(2, 2, 2\)"):
        FiniteMDP.from_dense(np.ones((2, 2)), np.ones((2, 2, 3)) / 3, 0.9)
    with pytest.raises(ValueError, match="costs must be a 2-D array"):
        FiniteMDP.from_dense(np.ones(2), np.ones((2, 2)), 0.9)
    with pytest.raises(ValueError, match="action_labels has 3 labels but costs has 2 columns"):
        FiniteMDP.from_dense(np.ones((1, 2)), np.ones((1, 2, 1)), 0.9, action_labels=[1, 2, 3])
    with pytest.raises(ValueError, match="transitions must be a 2-D"):
        two_state_model(transitions=np.ones((3, 2, 1)))


def test_pairs_must_be_grouped_by_state():
    with pytest.raises(ValueError, match=r"grouped by state.*pair 2 has state index 0"):
        two_state_model(pair_state=[0, 1, 0])


def test_pair_state_out_of_range():
    with pytest.raises(ValueError, match=r"pair_state\[2\] = 5 is not a state index in 0..1"):
        two_state_model(pair_state=[0, 0, 5])


def test_duplicate_action_in_a_state():
    with pytest.raises(ValueError, match="state 'lo' lists action 'go' more than once"):
        two_state_model(pair_action=["go", "go", "stay"])
    with pytest.raises(ValueError, match="state 0 lists action 3 more than once"):
        FiniteMDP([0, 0, 0], [3, 1, 3], [1, 1, 1], np.ones((3, 1)), 0.5)


def test_duplicate_state_label():
    with pytest.raises(ValueError, match="state label 'a' appears twice"):
        two_state_model(state_labels=["a", "a"])


def test_empty_model():
    with pytest.raises(ValueError, match="at least one state"):
        FiniteMDP([], [], [], np.zeros((0, 0)), 0.5)


def test_lookup_errors_name_state_and_feasible_actions():
    mdp = two_state_model()
    with pytest.raises(ValueError, match=r"unknown state 'mid'; states are \['lo', 'hi'\]"):
        mdp.state_index("mid")
    with pytest.raises(
        ValueError,
        match=r"action 'fly' is not feasible in state 'lo'; feasible actions: \['wait', 'go'\]",
    ):
        mdp.cost("lo", "fly")


def test_policy_errors():
    mdp = two_state_model()
    with pytest.raises(
        ValueError,
        match=r"policy action 'stay' is not feasible in state 'lo'; feasible actions: "
        r"\['wait', 'go'\]",
    ):
        mdp.policy_pairs(["stay", "stay"])
    with pytest.raises(ValueError, match="one action per state"):
        mdp.policy_pairs(["go"])
    with pytest.raises(ValueError, match=r"no action for state\(s\) \['hi'\]"):
        mdp.policy_pairs({"lo": "go"})
    with pytest.raises(ValueError, match="unknown state"):
        mdp.policy_pairs({"lo": "go", "hi": "stay", "up": "go"})


def test_numeric_policy_error_names_state():
    mdp = FiniteMDP([0, 0, 1], [0, 1, 0], [1, 2, 3], np.ones((3, 2)) / 2, 0.5)
    with pytest.raises(
        ValueError,
        match=r"policy action 7 is not feasible in state 1; "
        r"feasible actions: \[0\]",
    ):
        mdp.policy_pairs([1, 7])


def test_from_pairs_errors():
    with pytest.raises(ValueError, match="moves to unknown state 'c'"):
        FiniteMDP.from_pairs([("a", 0, 1.0, {"c": 1.0})], discount=0.5)
    with pytest.raises(ValueError, match="pair 0 must be a tuple"):
        FiniteMDP.from_pairs([("a", 0, 1.0)], discount=0.5)
    with pytest.raises(ValueError, match="state 'b' has no feasible action"):
        FiniteMDP.from_pairs([("a", 0, 1.0, {"b": 1.0})], discount=0.5, state_labels=["a", "b"])


def test_to_dense_refuses_huge_models():
    n = 400
    p = sp.identity(n, format="csr")
    mdp = FiniteMDP(np.arange(n), np.arange(n), np.ones(n), p, 0.5)
    with pytest.raises(ValueError, match="to_dense would allocate 400 x 400 x 400"):
        mdp.to_dense()
