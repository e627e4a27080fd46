r"""Hidden checks of lab06_autoscaler: from telemetry to a solved autoscaler MDP.

Each check calls the student's function on inputs the student never saw and compares the
answer with the reference in :mod:`mdplab.autoscaler`:

* traces of other weeks, made by :func:`mdplab.autoscaler.telemetry.generate_telemetry` with
  other seeds (two days each, cached), and hand-made arrays with values exactly on the bin
  edges, where right-closed and left-closed bins differ;
* other bin edges, fleet sizes, smoothing and risk parameters, cost weights and spot
  discounts;
* for value iteration, the models of those traces (:func:`mdplab.autoscaler.model.build_model`)
  and small random MDPs with infeasible pairs.

When an answer is wrong, small re-implementations of the usual mistakes are tried in turn
(left-closed bins, another state numbering, the spot share of the wrong minute, fancy-index
counting that misses repeats, smoothing over every state instead of the successor cells,
the risk mass per cell instead of in total, a penalty per started 50 ms, the first instance
charged, a policy greedy for the previous values, ...). The message names the first that
reproduces the answer, and otherwise what is wrong and where. Messages describe the inputs
of the failing call and show the student's own values, never an expected one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mdplab.autoscaler import telemetry
from mdplab.autoscaler.costs import cost_table as reference_cost_table
from mdplab.autoscaler.estimation import (
    count_transitions as reference_counts,
)
from mdplab.autoscaler.estimation import (
    feasible_pairs,
    successor_blocks,
)
from mdplab.autoscaler.model import build_model
from mdplab.autoscaler.solve import value_iteration as reference_vi
from mdplab.autoscaler.states import label_actions as reference_labels
from mdplab.autoscaler.states import n_states, quantise, state_index, state_parts
from mdplab.checks.common import (
    HiddenCheckFailure,
    TimeUp,
    call_student,
    instance_rng,
    instance_seed,
    time_limit,
)

SEED = 20261130
CALL_SECONDS = 30.0
RTOL = 1e-7
N_ACTIONS = 4
TRACE_SEEDS = (101, 202)
Variant = tuple[str, Callable[..., Any]]


# ------------------------------------------------------------------------------ calling
def _call(function: Callable[..., Any], *args: Any, what: str) -> Any:
    """The student's answer, under a time limit, with crashes turned into feedback."""
    try:
        with time_limit(CALL_SECONDS):
            return call_student(function, *args, what=what)
    except TimeUp:
        raise HiddenCheckFailure(
            f"{what}: still running after {CALL_SECONDS:g} s; does every loop end?"
        ) from None


def _array(value: Any, shape: tuple[int, ...], *, what: str, name: str, kind=float) -> np.ndarray:
    """``value`` as an array of ``shape``, or a failure saying what came back instead."""
    try:
        array = np.asarray(value, dtype=kind)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: {name} should be a numeric array, got {type(value).__name__}"
        ) from error
    if array.shape != shape:
        raise HiddenCheckFailure(f"{what}: {name} should have shape {shape}, got {array.shape}")
    return array


def _name_the_mistake(
    got: np.ndarray, variants: list[Variant], *args: Any, what: str, compare=np.array_equal
) -> None:
    """Raise the failure of the first known mistake whose answer equals ``got``, if any."""
    for description, variant in variants:
        try:
            candidate = np.asarray(variant(*args))
        except (ValueError, IndexError, ZeroDivisionError):
            continue
        if candidate.shape == got.shape and compare(candidate, got):
            raise HiddenCheckFailure(f"{what}: {description}")


def _first(wrong: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``wrong``, in C order."""
    return tuple(int(i) for i in np.argwhere(wrong)[0])


def _allclose(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=RTOL, atol=1e-9, equal_nan=True))


# ------------------------------------------------------------------------------ traces
def trace(seed: int) -> dict[str, np.ndarray]:
    """Two days of telemetry from the course's simulator, with another seed: ``seed`` is
    one of the lab's own, mixed with the grading run's when there is one."""
    return _trace(instance_seed(seed))


@cache
def _trace(seed: int) -> dict[str, np.ndarray]:
    return telemetry.generate_telemetry(days=2, seed=seed)


BIN_SETS: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = (
    ((150.0, 200.0, 300.0), (30.0, 60.0, 90.0)),
    ((120.0, 160.0, 200.0, 240.0, 320.0), (20.0, 50.0)),
    ((175.0, 200.0, 250.0, 300.0), (25.0, 45.0, 70.0, 100.0)),
)


def _first_above_sla(latency_edges: tuple[float, ...]) -> int:
    """The first latency bin whose every value exceeds 200 ms (edges include 200)."""
    return int(np.digitize(telemetry.SLA_MS, latency_edges, right=True)) + 1


# --------------------------------------------------------------------- exercise 1: states
def _encode(latency, rate, instances, latency_edges, throughput_edges, max_instances, *, right):
    latency_bin = np.digitize(latency, latency_edges, right=right)
    throughput_bin = np.digitize(rate, throughput_edges, right=right)
    return state_index(
        latency_bin, throughput_bin, instances, len(throughput_edges) + 1, max_instances
    )


def _encode_variants() -> list[Variant]:
    def order(major: str) -> Callable[..., Any]:
        def encode(latency, rate, instances, le, te, n_max):
            lb = quantise(latency, le)
            tb = quantise(rate, te)
            n = np.asarray(instances) - 1
            L, T = len(le) + 1, len(te) + 1
            if major == "n":
                return (n * L + lb) * T + tb
            if major == "throughput":
                return (tb * L + lb) * n_max + n
            return (lb * (T - 1) + tb) * n_max + n

        return encode

    return [
        (
            "a value equal to a bin edge goes to the bin above it: the bins are right-closed "
            "(np.digitize(..., right=True))",
            lambda *a: _encode(*a, right=False),
        ),
        (
            "the instance count enters as n, not n - 1",
            lambda la, ra, n, le, te, m: _encode(la, ra, n, le, te, m, right=True) + 1,
        ),
        ("the numbering makes the instance count vary slowest", order("n")),
        ("the numbering has throughput before latency", order("throughput")),
        (
            "the number of throughput bins is taken as len(throughput_edges); K edges make "
            "K + 1 bins",
            order("bins"),
        ),
    ]


def encode_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(description, arguments) of every encode_states call the check makes."""
    rng = instance_rng(SEED)
    for le, te in BIN_SETS:
        n_max = int(rng.integers(4, 9))
        on_edges = np.array([le[0], le[-1], *rng.choice(le, 6), 0.5, 2000.0])
        rates = np.array([te[0], te[-1], *rng.choice(te, 6), 0.0, 500.0])
        rng.shuffle(rates)
        n = rng.integers(1, n_max + 1, on_edges.size)
        yield (
            f"minutes whose latency and rate lie exactly on the edges {le} and {te}, with "
            f"max_instances={n_max}",
            (on_edges, rates, n, le, te, n_max),
        )
    for seed in TRACE_SEEDS:
        t = trace(seed)
        le, te = BIN_SETS[seed % 2]
        yield (
            f"the {t['timestamp'].size} minutes of another trace, edges {le} and {te}",
            (t["p95_latency_ms"], t["request_rate"], t["instances"], le, te, 8),
        )


def check_encode_states(encode_states: Callable[..., Any]) -> None:
    variants = _encode_variants()
    for description, args in encode_cases():
        what = f"encode_states on {description}"
        expected = _encode(*args, right=True)
        got = _array(
            _call(encode_states, *args, what=what),
            expected.shape,
            what=what,
            name="the states",
        )
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, variants, *args, what=what)
        (k,) = _first(got != expected)
        raise HiddenCheckFailure(
            f"{what}: wrong state for the minute with latency {args[0][k]:g} ms, rate "
            f"{args[1][k]:g} req/s and {int(args[2][k])} instance(s): got {got[k]:g}"
        )
    le, te = BIN_SETS[0]
    what = f"encode_states(180.0, 61.0, 3, {le}, {te}, 6) (single numbers)"
    single = _call(encode_states, 180.0, 61.0, 3, le, te, 6, what=what)
    if np.ndim(single) != 0:
        raise HiddenCheckFailure(f"{what}: single numbers in should give one state out")
    if int(single) != int(_encode(180.0, 61.0, 3, le, te, 6, right=True)):
        raise HiddenCheckFailure(f"{what}: wrong state, got {single}")


# --------------------------------------------------------------------- exercise 2: actions
def _label_variants() -> list[Variant]:
    def spot_now(n, spot):
        change = np.diff(np.asarray(n))
        on_spot = np.asarray(spot)[:-1] > 0
        return np.select(
            [change > 0, change < 0, on_spot],
            [telemetry.UP, telemetry.DOWN, telemetry.SPOT],
            telemetry.HOLD,
        )

    def swapped(n, spot):
        labels = reference_labels(n, spot)
        return np.select(
            [labels == telemetry.UP, labels == telemetry.DOWN],
            [telemetry.DOWN, telemetry.UP],
            labels,
        )

    return [
        (
            "spot is read from the spot share of minute t; the action ending minute t shows "
            "in minute t + 1",
            spot_now,
        ),
        ("up and down are swapped (0 is scale down, 2 is scale up)", swapped),
    ]


def label_cases() -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    rng = instance_rng(SEED + 2)
    for size in (40, 400):
        n, spot = [int(rng.integers(2, 7))], [0.0]
        for _ in range(size - 1):
            action = int(rng.integers(N_ACTIONS))
            count, share = telemetry.next_fleet(n[-1], action, 8)
            n.append(count)
            spot.append(round(share, 2))
        yield f"a random fleet history of {size} minutes", (np.array(n), np.array(spot))
    for seed in TRACE_SEEDS:
        t = trace(seed)
        yield f"another trace of {t['timestamp'].size} minutes", (t["instances"], t["spot_share"])


def check_label_actions(label_actions: Callable[..., Any]) -> None:
    variants = _label_variants()
    for description, (n, spot) in label_cases():
        what = f"label_actions on {description}"
        expected = reference_labels(n, spot)
        got = _array(
            _call(label_actions, n.copy(), spot.copy(), what=what),
            expected.shape,
            what=what,
            name="the actions",
        )
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, variants, n, spot, what=what)
        (k,) = _first(got != expected)
        raise HiddenCheckFailure(
            f"{what}: wrong action at minute {k}, from {int(n[k])} to {int(n[k + 1])} "
            f"instance(s) with spot share {spot[k + 1]:g} next: got {got[k]:g}"
        )


# ------------------------------------------------------------------ exercise 3: counting
def _count_variants() -> list[Variant]:
    def assignment(states, actions, S, A):
        counts = np.zeros((S, A, S))
        counts[states[:-1], actions, states[1:]] += 1
        return counts

    def swapped(states, actions, S, A):
        return np.transpose(reference_counts(states, actions, S, A), (2, 1, 0))

    def shifted(states, actions, S, A):
        counts = np.zeros((S, A, S))
        np.add.at(counts, (states[1:], actions, states[:-1]), 1)
        return counts

    return [
        (
            "a transition seen several times is counted once: counts[i, j, k] += 1 with index "
            "arrays does not add up repeats (np.add.at does)",
            assignment,
        ),
        (
            "the axes are (next state, action, state) instead of (state, action, next state)",
            swapped,
        ),
        ("the action of minute t is paired with the move from t + 1 to t", shifted),
    ]


def count_cases() -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray, int, int]]]:
    rng = instance_rng(SEED + 3)
    states = rng.integers(0, 5, 300)
    yield (
        "300 minutes over 5 states (many repeated transitions)",
        (
            states,
            rng.integers(0, N_ACTIONS, 299),
            5,
            N_ACTIONS,
        ),
    )
    for seed in TRACE_SEEDS:
        t = trace(seed)
        le, te = BIN_SETS[2]
        s = _encode(t["p95_latency_ms"], t["request_rate"], t["instances"], le, te, 8, right=True)
        a = reference_labels(t["instances"], t["spot_share"])
        yield f"the states and actions of another trace of {s.size} minutes", (s, a, 200, 4)


def check_count_transitions(count_transitions: Callable[..., Any]) -> None:
    variants = _count_variants()
    for description, (states, actions, S, A) in count_cases():
        what = f"count_transitions on {description}"
        expected = reference_counts(states, actions, S, A)
        got = _array(
            _call(count_transitions, states.copy(), actions.copy(), S, A, what=what),
            expected.shape,
            what=what,
            name="counts",
        )
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, variants, states, actions, S, A, what=what)
        if got.sum() != expected.sum():
            raise HiddenCheckFailure(
                f"{what}: the counts add up to {got.sum():g}; there is one count per pair of "
                "consecutive minutes"
            )
        s, a, s2 = _first(got != expected)
        raise HiddenCheckFailure(
            f"{what}: wrong count for ({s}, {a}) -> {s2}: got {got[s, a, s2]:g}"
        )


# --------------------------------------------------------------- exercise 4: estimation
@dataclass(frozen=True)
class EstimationCase:
    description: str
    counts: np.ndarray
    n_latency: int
    n_throughput: int
    max_instances: int
    alpha: float
    at_risk: np.ndarray
    kappa: float
    first_above_sla: int

    def arguments(self) -> tuple[Any, ...]:
        return (
            self.counts.copy(), self.n_latency, self.n_throughput, self.max_instances,
            self.alpha, self.at_risk.copy(), self.kappa, self.first_above_sla,
        )  # fmt: skip

    def reference(self, **changes: Any) -> np.ndarray:
        return _estimate_variant(self, **changes)


def _estimate_variant(
    case: EstimationCase,
    *,
    everywhere: bool = False,
    per_cell: bool = False,
    risk_all: bool = False,
    risk_none: bool = False,
    at_sla: bool = False,
) -> np.ndarray:
    """The estimate, or a mistaken version of it (the keyword arguments name the mistake)."""
    L, T, N = case.n_latency, case.n_throughput, case.max_instances
    blocks = successor_blocks(L, T, N)
    if everywhere:
        blocks = blocks | feasible_pairs(L, T, N)[:, :, None]
    first = case.first_above_sla - 1 if at_sla else case.first_above_sla
    above = (state_parts(np.arange(blocks.shape[2]), T, N)[0] >= first).astype(float)
    risk = case.at_risk.astype(float)
    if risk_all:
        risk = np.ones_like(risk)
    if risk_none:
        risk = np.zeros_like(risk)
    per_block = max(above.sum() / N, 1.0)
    share = above if per_cell else above / per_block
    mass = np.where(blocks, case.counts + case.alpha + case.kappa * risk[:, :, None] * share, 0.0)
    totals = mass.sum(axis=2, keepdims=True)
    return np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)


def estimation_cases() -> Iterator[EstimationCase]:
    rng = instance_rng(SEED + 4)
    for index, (seed, (le, te)) in enumerate(zip((*TRACE_SEEDS, 303), BIN_SETS, strict=True)):
        t = trace(seed)
        max_instances = 8
        L, T = len(le) + 1, len(te) + 1
        S = n_states(L, T, max_instances)
        states = _encode(
            t["p95_latency_ms"], t["request_rate"], t["instances"], le, te, max_instances,
            right=True,
        )  # fmt: skip
        counts = reference_counts(states, reference_labels(t["instances"], t["spot_share"]), S, 4)
        at_risk = (rng.random((S, N_ACTIONS)) < 0.3) & feasible_pairs(L, T, max_instances)
        alpha = (0.05, 0.5, 1.0)[index]
        kappa = (1.0, 3.0, 0.0)[index]
        yield EstimationCase(
            f"the counts of another trace with latency edges {le}, throughput edges {te}, "
            f"max_instances={max_instances}, alpha={alpha:g}, kappa={kappa:g}, "
            f"first_above_sla={_first_above_sla(le)} and {int(at_risk.sum())} pairs at risk",
            counts, L, T, max_instances, alpha, at_risk, kappa, _first_above_sla(le),
        )  # fmt: skip
    L, T, N = 2, 2, 3
    blocks = successor_blocks(L, T, N)
    counts = np.where(blocks, rng.integers(0, 4, blocks.shape), 0).astype(float)
    at_risk = feasible_pairs(L, T, N).copy()
    at_risk[::2] = False
    yield EstimationCase(
        f"hand-made counts with 2 latency bins, 2 throughput bins, max_instances={N}, "
        f"alpha=0.25, kappa=2, first_above_sla=1 and {int(at_risk.sum())} pairs at risk",
        counts, L, T, N, 0.25, at_risk, 2.0, 1,
    )  # fmt: skip


def check_estimate_transitions(estimate_transitions: Callable[..., Any]) -> None:
    variants: list[tuple[str, dict[str, bool]]] = [
        (
            "smoothing adds alpha to every state, not only to the successor cells with the "
            "instance count the action leads to",
            {"everywhere": True},
        ),
        (
            "each above-SLA cell of an at-risk pair gets kappa; kappa is the total, spread "
            "evenly over those cells",
            {"per_cell": True},
        ),
        (
            "the risk pseudo-counts are added to every allowed pair, not only to those at risk",
            {"risk_all": True},
        ),
        ("the risk rule is not applied", {"risk_none": True}),
        ("the cells above the SLA start one latency bin too early", {"at_sla": True}),
    ]
    for case in estimation_cases():
        what = f"estimate_transitions on {case.description}"
        expected = case.reference()
        got = _array(
            _call(estimate_transitions, *case.arguments(), what=what),
            expected.shape,
            what=what,
            name="P",
        )
        if _allclose(got, expected):
            continue
        allowed = feasible_pairs(case.n_latency, case.n_throughput, case.max_instances)
        for description, mistake in variants:
            if _allclose(got, case.reference(**mistake)):
                raise HiddenCheckFailure(f"{what}: {description}")
        nonzero = np.abs(got).sum(axis=2) > 0
        if np.any(nonzero & ~allowed):
            s, a = _first(nonzero & ~allowed)
            raise HiddenCheckFailure(
                f"{what}: the row of state {s}, action {a} should be zero (the action is not "
                "allowed there)"
            )
        sums = got.sum(axis=2)
        if not np.allclose(sums[allowed], 1.0):
            s, a = _first(allowed & ~np.isclose(sums, 1.0))
            raise HiddenCheckFailure(
                f"{what}: the row of state {s}, action {a} sums to {sums[s, a]:.4g}, not 1"
            )
        outside = (np.abs(got) > 0) & ~successor_blocks(
            case.n_latency, case.n_throughput, case.max_instances
        )
        if outside.any():
            s, a, s2 = _first(outside)
            raise HiddenCheckFailure(
                f"{what}: P[{s}, {a}, {s2}] is not zero, but state {s2} does not have the "
                "instance count that action leads to"
            )
        s, a = _first(~np.isclose(got, expected).all(axis=2))
        at_risk = "at risk" if case.at_risk[s, a] else "not at risk"
        raise HiddenCheckFailure(f"{what}: the row of state {s}, action {a} ({at_risk}) is wrong")


# -------------------------------------------------------------------- exercise 5: costs
def _cost_variants() -> list[Variant]:
    def stepped(levels, T, N, k, d):
        levels = np.asarray(levels, dtype=float)
        smooth = 10 * np.maximum(0.0, levels - 200) / 50
        steps = 10 * np.ceil(np.maximum(0.0, levels - 200) / 50)
        return reference_cost_table(levels, T, N, k, d) - np.repeat(smooth - steps, T * N)[:, None]

    def all_instances(levels, T, N, k, d):
        table = reference_cost_table(levels, T, N, k, d)
        factor = np.where(np.arange(4) == 3, 1 - d, 1.0)[None, :]
        return table + k * factor  # one instance more on every pair (inf stays inf)

    def current_fleet(levels, T, N, k, d):
        table = reference_cost_table(levels, T, N, k, d)
        n = state_parts(np.arange(table.shape[0]), T, N)[2]
        n_next = n[:, None] + np.array([-1, 0, 1, 0])[None, :]
        factor = np.where(np.arange(4) == 3, 1 - d, 1.0)[None, :]
        return table + k * factor * (n[:, None] - n_next)

    def no_discount(levels, T, N, k, d):
        return reference_cost_table(levels, T, N, k, 0.0)

    def discount_as_price(levels, T, N, k, d):
        return reference_cost_table(levels, T, N, k, 1.0 - d)

    def zero_infeasible(levels, T, N, k, d):
        table = reference_cost_table(levels, T, N, k, d)
        return np.where(np.isfinite(table), table, 0.0)

    return [
        (
            "the latency penalty counts started 50 ms steps; it is proportional (225 ms costs 5)",
            stepped,
        ),
        ("the fleet cost charges every instance; the first one is free (n' - 1)", all_instances),
        ("the fleet cost uses the instance count before the action, not after it", current_fleet),
        ("spot is charged at the on-demand price: the discount is missing", no_discount),
        (
            "spot instances are charged d instead of (1 - d) times the on-demand cost",
            discount_as_price,
        ),
        ("actions that are not allowed cost 0; they must cost np.inf", zero_infeasible),
    ]


def cost_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    rng = instance_rng(SEED + 5)
    yield (
        "latency levels (160, 230, 310, 420), 3 throughput bins, max_instances=5, "
        "instance_cost=1.5, spot_discount=0.6",
        ((160.0, 230.0, 310.0, 420.0), 3, 5, 1.5, 0.6),
    )
    for _ in range(3):
        levels = tuple(np.sort(np.round(rng.uniform(100, 500, int(rng.integers(2, 6))), 1)))
        T, N = int(rng.integers(1, 6)), int(rng.integers(2, 9))
        k, d = float(rng.choice([0.25, 0.5, 2.0, 3.0])), float(rng.choice([0.3, 0.65, 0.8]))
        yield (
            f"latency levels {levels}, {T} throughput bin(s), max_instances={N}, "
            f"instance_cost={k:g}, spot_discount={d:g}",
            (levels, T, N, k, d),
        )


def check_cost_table(cost_table: Callable[..., Any]) -> None:
    variants = _cost_variants()
    for description, args in cost_cases():
        what = f"cost_table with {description}"
        expected = reference_cost_table(*args)
        got = _array(_call(cost_table, *args, what=what), expected.shape, what=what, name="C")
        if _allclose(got, expected):
            continue
        _name_the_mistake(got, variants, *args, what=what, compare=_allclose)
        s, a = _first(~np.isclose(got, expected, equal_nan=True))
        latency_bin, _, n = state_parts(s, args[1], args[2])
        raise HiddenCheckFailure(
            f"{what}: wrong cost for state {s} (latency bin {int(latency_bin)}, {int(n)} "
            f"instance(s)) and action {a}: got {got[s, a]:g}"
        )


# ------------------------------------------------------------ exercise 6: value iteration
@dataclass(frozen=True)
class SolveCase:
    """An MDP to solve, with the reference's answer, computed once: (V, policy,
    iterations, errors), as ``mdplab.autoscaler.solve.value_iteration`` returns them."""

    description: str
    C: np.ndarray
    P: np.ndarray
    gamma: float
    tol: float
    reference: tuple[np.ndarray, np.ndarray, int, np.ndarray]


def _random_mdp(rng: np.random.Generator, S: int, A: int) -> tuple[np.ndarray, np.ndarray]:
    C = np.round(rng.uniform(0, 10, (S, A)), 2)
    C[rng.random((S, A)) < 0.25] = np.inf
    C[np.arange(S), rng.integers(0, A, S)] = np.round(rng.uniform(0, 10, S), 2)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < 0.5)
    P[np.arange(S), :, rng.integers(0, S, S)] += 0.1
    P /= P.sum(axis=2, keepdims=True)
    P[~np.isfinite(C)] = 0.0
    return C, P


def _solve_case(
    description: str, C: np.ndarray, P: np.ndarray, gamma: float, tol: float
) -> SolveCase | None:
    """The case, or None when a sweep's change lies so close to tol that rounding could
    change the count of sweeps. Its arrays are read-only: the cases are shared by every
    check of a grading process."""
    reference = reference_vi(C, P, gamma, tol)
    if np.any(np.abs(reference[3] - tol) <= 1e-6 * tol):
        return None
    for array in (C, P, *reference):
        if isinstance(array, np.ndarray):
            array.flags.writeable = False
    return SolveCase(description, C, P, gamma, tol, reference)


def solve_cases() -> tuple[SolveCase, ...]:
    """The value iteration cases, made once per run seed (solving them takes a while)."""
    return _solve_cases(instance_seed(SEED + 6))


@cache
def _solve_cases(mdp_seed: int) -> tuple[SolveCase, ...]:
    cases = []
    for seed, k, gamma in ((TRACE_SEEDS[0], 1.5, 0.95), (TRACE_SEEDS[1], 0.75, 0.9)):
        model = build_model(trace(seed), instance_cost=k, gamma=gamma)
        description = (
            f"the autoscaler model of another trace (instance_cost={k:g}) with "
            f"gamma={gamma:g}, tol=0.01"
        )
        cases.append(_solve_case(description, model.C, model.P, gamma, 0.01))
    cases = [case for case in cases if case is not None]
    rng = np.random.default_rng(mdp_seed)  # already the run's: solve_cases mixed it
    produced = 0
    while produced < 3:
        S, A = int(rng.integers(3, 8)), int(rng.integers(2, 5))
        gamma = float(rng.choice([0.5, 0.8, 0.97]))
        tol = float(rng.choice([0.1, 0.01, 0.001]))
        C, P = _random_mdp(rng, S, A)
        description = (
            f"a random MDP with {S} states, {A} actions ({int(np.sum(~np.isfinite(C)))} "
            f"not allowed), gamma={gamma:g}, tol={tol:g}"
        )
        case = _solve_case(description, C, P, gamma, tol)
        if case is not None:
            produced += 1
            cases.append(case)
    return tuple(cases)


def _sweeps(C, P, gamma, tol, *, gauss_seidel=False, maximise=False, stop_le=False):
    """Value iteration with one of the usual mistakes; returns (V, iterations, errors)."""
    V, errors = np.zeros(C.shape[0]), []
    pick = np.max if maximise else np.min
    Cm = np.where(np.isfinite(C), C, -np.inf) if maximise else C
    while len(errors) < 100_000:
        old = V.copy()
        if gauss_seidel:
            for s in range(C.shape[0]):
                V[s] = pick(Cm[s] + gamma * (P[s] @ V))
        else:
            V = pick(Cm + gamma * (P @ V), axis=1)
        errors.append(float(np.max(np.abs(V - old))))
        if (errors[-1] <= tol) if stop_le else (errors[-1] < tol):
            break
    return V, len(errors), np.array(errors)


def check_value_iteration(value_iteration: Callable[..., Any]) -> None:
    for case in solve_cases():
        what = f"value_iteration on {case.description}"
        V_ref, _, iterations_ref, errors_ref = case.reference
        answer = _call(
            value_iteration, case.C.copy(), case.P.copy(), case.gamma, case.tol, what=what
        )
        if not isinstance(answer, tuple | list) or len(answer) != 4:
            raise HiddenCheckFailure(
                f"{what}: return the tuple (V, policy, iterations, errors), got "
                f"{type(answer).__name__}"
            )
        S = case.C.shape[0]
        V = _array(answer[0], (S,), what=what, name="V")
        policy = _array(answer[1], (S,), what=what, name="the policy")
        try:
            iterations = int(answer[2])
        except (TypeError, ValueError) as error:
            raise HiddenCheckFailure(f"{what}: iterations should be a whole number") from error
        errors = np.asarray(answer[3], dtype=float).ravel()
        if iterations != iterations_ref or not _allclose(V, V_ref):
            _diagnose_vi(case, V, iterations, what)
        if errors.shape != errors_ref.shape or not _allclose(errors, errors_ref):
            raise HiddenCheckFailure(
                f"{what}: the values and the number of sweeps are right but errors is not the "
                "list of max |V_new - V| of every sweep, in order"
            )
        _check_greedy(case, V_ref, policy, what)


def _diagnose_vi(case: SolveCase, V: np.ndarray, iterations: int, what: str) -> None:
    V_ref, _, expected, _ = case.reference
    tries = (
        ("the stopping test is max |V_new - V| <= tol; stop only when it is strictly below",
         {"stop_le": True}),
        ("the sweeps update V state by state (Gauss-Seidel); compute all of V_new from the "
         "old V first", {"gauss_seidel": True}),
        ("the update takes the most expensive action; costs are minimised", {"maximise": True}),
    )  # fmt: skip
    for description, mistake in tries:
        V_m, n_m, _ = _sweeps(case.C, case.P, case.gamma, case.tol, **mistake)
        differs = n_m != expected or not _allclose(V_m, V_ref)
        if differs and n_m == iterations and _allclose(V, V_m):
            raise HiddenCheckFailure(f"{what}: {description}")
    if iterations == expected + 1:
        raise HiddenCheckFailure(
            f"{what}: one sweep too many: stop right after the first sweep whose change is "
            "below tol"
        )
    if iterations == expected - 1:
        raise HiddenCheckFailure(
            f"{what}: one sweep too few: the sweep whose change is below tol is still done "
            "and counted"
        )
    if iterations != expected:
        raise HiddenCheckFailure(f"{what}: the number of sweeps is wrong: got {iterations}")
    raise HiddenCheckFailure(f"{what}: the number of sweeps is right but the values are wrong")


def _check_greedy(case: SolveCase, V: np.ndarray, policy: np.ndarray, what: str) -> None:
    if not np.all(np.equal(np.mod(policy, 1), 0)):
        raise HiddenCheckFailure(f"{what}: the policy should hold whole action numbers")
    actions = policy.astype(int)
    S, A = case.C.shape
    if np.any((actions < 0) | (actions >= A)):
        raise HiddenCheckFailure(f"{what}: the policy holds action numbers outside 0..{A - 1}")
    Q = case.C + case.gamma * (case.P @ V)
    chosen = Q[np.arange(S), actions]
    best = Q.min(axis=1)
    wrong = ~np.isfinite(chosen) | (chosen > best + 1e-7 * (1 + np.abs(best)))
    if wrong.any():
        s = int(np.flatnonzero(wrong)[0])
        if np.array_equal(actions, np.argmin(case.C + case.gamma * (case.P @ _back(case)), 1)):
            raise HiddenCheckFailure(
                f"{what}: the policy is greedy for the values before the last sweep; return "
                "the one greedy for the V you return"
            )
        if not np.isfinite(chosen[s]):
            raise HiddenCheckFailure(
                f"{what}: the policy picks action {actions[s]} in state {s}, which is not allowed"
            )
        raise HiddenCheckFailure(
            f"{what}: in state {s} the policy's action {actions[s]} does not attain the "
            "minimum for the returned values"
        )


def _back(case: SolveCase) -> np.ndarray:
    """The values one sweep before the reference stopped."""
    V = np.zeros(case.C.shape[0])
    for _ in range(case.reference[2] - 1):
        V = np.min(case.C + case.gamma * (case.P @ V), axis=1)
    return V
