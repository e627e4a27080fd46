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

Every call gets fresh copies of its arrays, and a function that changes one of them (the
caller's counts, trace column or cost table) fails with a message that names the argument
and says *in place*, whatever it returns: the notebook feeds the same arrays to the next
exercise.

Answers are read under the series' numeric policy (:mod:`mdplab.checks.numeric`): any
container numpy reads as numbers (lists, float32 arrays, Fractions, ``np.matrix``, pandas
Series), compared with its tolerance; states, actions and policies as whole numbers.

When an answer is wrong, small re-implementations of the usual mistakes are tried first
(left-closed bins, another state numbering, the course's bins or constants instead of the
arguments, the spot share of the wrong minute, fancy-index counting that misses repeats, the
last transition dropped, smoothing over every state, pairs never seen left with a zero row,
rows not normalised, the risk mass per cell instead of in total, a penalty per started
50 ms or with a bonus below the SLA, the first instance charged, a policy greedy for the
previous values, the tuple's order, ...). The message names the first that reproduces the
answer, and otherwise what is wrong and where. Messages describe the inputs of the failing
call and show the student's own values, never an expected one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from mdplab.autoscaler.model import ALPHA, KAPPA, build_model
from mdplab.autoscaler.solve import value_iteration as reference_vi
from mdplab.autoscaler.states import (
    LATENCY_EDGES_MS,
    THROUGHPUT_EDGES,
    n_states,
    quantise,
    state_index,
    state_parts,
)
from mdplab.autoscaler.states import label_actions as reference_labels
from mdplab.checks.common import (
    HiddenCheckFailure,
    TimeUp,
    call_student,
    instance_rng,
    instance_seed,
    known_mistake,
    time_limit,
)
from mdplab.checks.numeric import (
    as_values,
    describe_type,
    is_number,
    precision_note,
    values_close,
)

SEED = 20261130
CALL_SECONDS = 30.0
N_ACTIONS = 4
TRACE_SEEDS = (101, 202)
# The course's fleet size (the notebook's MAX_INSTANCES), next to its bins and constants:
# a function that reads the notebook's globals instead of its arguments computes with them.
COURSE_MAX_INSTANCES = 8
Variant = tuple[str, Callable[..., Any]]


# ------------------------------------------------------------------------------ calling
def _call(
    function: Callable[..., Any], *args: Any, what: str, names: Sequence[str | None] = ()
) -> Any:
    """The student's answer, under a time limit, with crashes turned into feedback.

    Every array among ``args`` is handed over as a fresh copy; ``names`` gives the
    parameter names of the arguments (None for those not to watch), and an argument the
    function changed fails the check, whatever it returned."""
    given = tuple(arg.copy() if isinstance(arg, np.ndarray) else arg for arg in args)
    try:
        with time_limit(CALL_SECONDS):
            answer = call_student(function, *given, what=what)
    except TimeUp:
        raise HiddenCheckFailure(
            f"{what}: still running after {CALL_SECONDS:g} s; does every loop end?"
        ) from None
    for name, before, after in zip(names, args, given, strict=False):
        if name is not None and isinstance(before, np.ndarray) and not _unchanged(before, after):
            raise HiddenCheckFailure(
                f"{what}: your function changed its argument `{name}` in place; the notebook "
                f"uses `{name}` again afterwards. Work on a copy (np.array({name}, "
                f"dtype=float) copies, np.asarray({name}) does not)"
            )
    return answer


def _unchanged(before: np.ndarray, after: Any) -> bool:
    after = np.asarray(after)
    if after.shape != before.shape:
        return False
    return bool(np.array_equal(before, after, equal_nan=before.dtype.kind == "f"))


def _whole(answer: Any, *, what: str, size: int, name: str) -> np.ndarray:
    """``answer`` as ``size`` whole numbers (states, actions), or a failure saying why not."""
    values = as_values(answer, what=what, shape=(size,))
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        k = int(np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))[0])
        raise HiddenCheckFailure(f"{what}: {name} are whole numbers; entry {k} is {values[k]!r}")
    return values.astype(np.int64)


def _first(wrong: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``wrong``, in C order."""
    return tuple(int(i) for i in np.argwhere(wrong)[0])


def _try(variant: Callable[..., Any], *args: Any) -> np.ndarray | None:
    """A known mistake's answer, or None where that mistake cannot compute one (it would
    crash on these inputs, as the student's code would have)."""
    try:
        return np.asarray(variant(*args), dtype=float)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):
        return None


def _name_the_mistake(
    got: np.ndarray, expected: np.ndarray, variants: list[Variant], *args: Any, what: str
) -> None:
    """Fail with the first known mistake whose answer ``got`` reproduces, if any."""
    mistakes = [(_try(variant, *args), description) for description, variant in variants]
    found = known_mistake(got, expected, mistakes, values_close)
    if found is not None:
        raise HiddenCheckFailure(f"{what}: {found}")


def _precision(answer: Any, got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Fail with a precision message when ``got`` misses only by its dtype's rounding."""
    note = precision_note(answer, expected)
    if note is not None:
        raise HiddenCheckFailure(f"{what}: {note}")


# ------------------------------------------------------------------------------ traces
def trace(seed: int) -> dict[str, np.ndarray]:
    """Two days of telemetry from the course's simulator, with another seed: ``seed`` is
    one of the lab's own, mixed with the grading run's when there is one."""
    return _trace(instance_seed(seed))


@cache
def _trace(seed: int) -> dict[str, np.ndarray]:
    """Read-only: the traces are shared by every check of a grading process, and a student's
    function only ever gets copies of them."""
    columns = telemetry.generate_telemetry(days=2, seed=seed)
    for column in columns.values():
        if isinstance(column, np.ndarray):
            column.flags.writeable = False
    return columns


BIN_SETS: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = (
    ((150.0, 200.0, 300.0), (30.0, 60.0, 90.0)),
    ((120.0, 160.0, 200.0, 240.0, 320.0), (20.0, 50.0)),
    ((175.0, 200.0, 250.0, 300.0), (25.0, 45.0, 70.0, 100.0)),
)


def _first_above_sla(latency_edges: tuple[float, ...]) -> int:
    """The first latency bin whose every value exceeds 200 ms (edges include 200)."""
    return int(np.digitize(telemetry.SLA_MS, latency_edges, right=True)) + 1


# --------------------------------------------------------------------- exercise 1: states
ENCODE_ARGS = ("latency_ms", "request_rate", "instances", None, None, None)


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

    def course_bins(latency, rate, instances, le, te, n_max):
        return _encode(
            latency, rate, instances, LATENCY_EDGES_MS, THROUGHPUT_EDGES, COURSE_MAX_INSTANCES,
            right=True,
        )  # fmt: skip

    return [
        (
            "a value equal to a bin edge goes to the bin above it: the bins are right-closed "
            "(np.digitize(..., right=True))",
            lambda *a: _encode(*a, right=False),
        ),
        (
            "these are the states of the course's bins (LATENCY_EDGES, THROUGHPUT_EDGES, "
            "MAX_INSTANCES): use the arguments latency_edges, throughput_edges and "
            "max_instances",
            course_bins,
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
        answer = _call(encode_states, *args, what=what, names=ENCODE_ARGS)
        got = _whole(answer, what=what, size=expected.size, name="states")
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, expected, variants, *args, what=what)
        (k,) = _first(got != expected)
        raise HiddenCheckFailure(
            f"{what}: wrong state for the minute with latency {args[0][k]:g} ms, rate "
            f"{args[1][k]:g} req/s and {int(args[2][k])} instance(s): got {got[k]:g}"
        )
    le, te = BIN_SETS[0]
    what = f"encode_states(180.0, 61.0, 3, {le}, {te}, 6) (single numbers)"
    single = _call(encode_states, 180.0, 61.0, 3, le, te, 6, what=what)
    if np.ndim(single) != 0 or not is_number(np.asarray(single)[()]):
        raise HiddenCheckFailure(
            f"{what}: single numbers in should give one state out, got {describe_type(single)}"
        )
    if float(single) != float(_encode(180.0, 61.0, 3, le, te, 6, right=True)):
        course = variants[1][1](180.0, 61.0, 3, le, te, 6)
        if float(single) == float(course):
            raise HiddenCheckFailure(f"{what}: {variants[1][0]}")
        raise HiddenCheckFailure(f"{what}: wrong state, got {single}")


# --------------------------------------------------------------------- exercise 2: actions
LABEL_ARGS = ("instances", "spot_share")


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
        answer = _call(label_actions, n, spot, what=what, names=LABEL_ARGS)
        if np.ndim(answer) == 1 and len(answer) == n.size:
            raise HiddenCheckFailure(
                f"{what}: {n.size} labels for {n.size} minutes; the action ending minute t shows "
                "in minute t + 1, so there is none after the last minute: the answer has "
                "length T - 1"
            )
        got = _whole(answer, what=what, size=expected.size, name="actions")
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, expected, variants, n, spot, what=what)
        (k,) = _first(got != expected)
        raise HiddenCheckFailure(
            f"{what}: wrong action at minute {k}, from {int(n[k])} to {int(n[k + 1])} "
            f"instance(s) with spot share {spot[k + 1]:g} next: got {got[k]:g}"
        )


# ------------------------------------------------------------------ exercise 3: counting
COUNT_ARGS = ("states", "actions", None, None)


def _count_variants() -> list[Variant]:
    def assignment(states, actions, S, A):
        counts = np.zeros((S, A, S))
        counts[states[:-1], actions, states[1:]] += 1
        return counts

    def swapped(states, actions, S, A):
        return np.transpose(reference_counts(states, actions, S, A), (2, 1, 0))

    def last_dropped(states, actions, S, A):
        return reference_counts(states[:-1], actions[:-1], S, A)

    def previous_action(states, actions, S, A):
        counts = np.zeros((S, A, S))
        np.add.at(counts, (states[1:-1], actions[:-1], states[2:]), 1)
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
        (
            "the last transition of the log is not counted: there are len(actions) of them, "
            "t = 0, ..., len(actions) - 1",
            last_dropped,
        ),
        (
            "the action of minute t - 1 is paired with the move from t to t + 1; actions[t] "
            "ends minute t and goes with states[t] -> states[t + 1]",
            previous_action,
        ),
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
        answer = _call(count_transitions, states, actions, S, A, what=what, names=COUNT_ARGS)
        got = as_values(answer, what=what, shape=expected.shape)
        if np.array_equal(got, expected):
            continue
        _name_the_mistake(got, expected, variants, states, actions, S, A, what=what)
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
ESTIMATE_ARGS = ("counts", None, None, None, None, "at_risk", None, None)


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
            self.counts, self.n_latency, self.n_throughput, self.max_instances,
            self.alpha, self.at_risk, self.kappa, self.first_above_sla,
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
    past_sla: bool = False,
    unseen_zero: bool = False,
    unnormalised: bool = False,
    alpha: float | None = None,
    kappa: float | None = None,
) -> np.ndarray:
    """The estimate, or a mistaken version of it (the keyword arguments name the mistake)."""
    L, T, N = case.n_latency, case.n_throughput, case.max_instances
    alpha = case.alpha if alpha is None else alpha
    kappa = case.kappa if kappa is None else kappa
    blocks = successor_blocks(L, T, N)
    if everywhere:
        blocks = blocks | feasible_pairs(L, T, N)[:, :, None]
    if unseen_zero:
        blocks = blocks & (case.counts.sum(axis=2) > 0)[:, :, None]
    first = case.first_above_sla - at_sla + past_sla
    above = (state_parts(np.arange(blocks.shape[2]), T, N)[0] >= first).astype(float)
    risk = case.at_risk.astype(float)
    if risk_all:
        risk = np.ones_like(risk)
    if risk_none:
        risk = np.zeros_like(risk)
    per_block = max(above.sum() / N, 1.0)
    share = above if per_cell else above / per_block
    mass = np.where(blocks, case.counts + alpha + kappa * risk[:, :, None] * share, 0.0)
    if unnormalised:
        return mass
    totals = mass.sum(axis=2, keepdims=True)
    return np.divide(mass, totals, out=np.zeros_like(mass), where=totals > 0)


ESTIMATE_MISTAKES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "the rows are the smoothed counts, not divided by their totals: every allowed row "
        "must sum to 1",
        {"unnormalised": True},
    ),
    (
        "the probabilities are those of the course's ALPHA and KAPPA, not of the arguments "
        "alpha and kappa",
        {"alpha": ALPHA, "kappa": KAPPA},
    ),
    (
        "the probabilities are those of the course's ALPHA, not of the argument alpha",
        {"alpha": ALPHA},
    ),
    (
        "pairs the log never saw (all their counts 0) get a zero row; smoothing gives a pair "
        "never seen the uniform row over its successor cells",
        {"unseen_zero": True},
    ),
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
    (
        "the cells above the SLA start one latency bin too early: they are the latency bins "
        ">= first_above_sla",
        {"at_sla": True},
    ),
    (
        "the cells above the SLA start one latency bin too late: they are the latency bins "
        ">= first_above_sla",
        {"past_sla": True},
    ),
)


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
    for case in estimation_cases():
        what = f"estimate_transitions on {case.description}"
        expected = case.reference()
        answer = _call(estimate_transitions, *case.arguments(), what=what, names=ESTIMATE_ARGS)
        got = as_values(answer, what=what, shape=expected.shape)
        if values_close(got, expected):
            continue
        _precision(answer, got, expected, what)
        mistakes = [(case.reference(**mistake), text) for text, mistake in ESTIMATE_MISTAKES]
        found = known_mistake(got, expected, mistakes, values_close)
        if found is not None:
            raise HiddenCheckFailure(f"{what}: {found}")
        _locate_estimate_error(case, got, expected, what)


def _locate_estimate_error(
    case: EstimationCase, got: np.ndarray, expected: np.ndarray, what: str
) -> None:
    """Fail with where ``got`` first goes wrong: a row that should be zero, a row that does
    not sum to 1, a cell outside the pair's successors, or a wrong row."""
    allowed = feasible_pairs(case.n_latency, case.n_throughput, case.max_instances)
    nonzero = np.abs(got).sum(axis=2) > 0
    if np.any(nonzero & ~allowed):
        s, a = _first(nonzero & ~allowed)
        raise HiddenCheckFailure(
            f"{what}: the row of state {s}, action {a} should be zero (the action is not "
            "allowed there)"
        )
    if np.any(got < -1e-12):
        s, a, s2 = _first(got < -1e-12)
        raise HiddenCheckFailure(f"{what}: P[{s}, {a}, {s2}] is negative: {got[s, a, s2]:.4g}")
    sums = got.sum(axis=2)
    if np.any(allowed & ~nonzero):
        s, a = _first(allowed & ~nonzero)
        seen = "never seen in the log, " if not case.counts[s, a].any() else ""
        raise HiddenCheckFailure(
            f"{what}: the row of state {s}, action {a} ({seen}an allowed pair) is all zero; "
            "every allowed row is a distribution over the pair's successor cells"
        )
    if not np.allclose(sums[allowed], 1.0):
        s, a = _first(allowed & ~np.isclose(sums, 1.0))
        raise HiddenCheckFailure(
            f"{what}: the row of state {s}, action {a} sums to {sums[s, a]:.4g}, not 1: "
            "divide each allowed row by its total"
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
COST_ARGS = ("latency_levels", None, None, None, None)
COURSE_N_THROUGHPUT = len(THROUGHPUT_EDGES) + 1


def _cost_variants() -> list[Variant]:
    def stepped(levels, T, N, k, d):
        levels = np.asarray(levels, dtype=float)
        smooth = 10 * np.maximum(0.0, levels - 200) / 50
        steps = 10 * np.ceil(np.maximum(0.0, levels - 200) / 50)
        return reference_cost_table(levels, T, N, k, d) - np.repeat(smooth - steps, T * N)[:, None]

    def bonus(levels, T, N, k, d):
        levels = np.asarray(levels, dtype=float)
        below = 10 * np.minimum(0.0, levels - 200) / 50  # what max(0, .) cuts off
        return reference_cost_table(levels, T, N, k, d) + np.repeat(below, T * N)[:, None]

    def course_throughput(levels, T, N, k, d):
        levels = np.asarray(levels, dtype=float)
        table = reference_cost_table(levels, T, N, k, d)
        s = np.arange(table.shape[0])
        wrong_bin = s // (COURSE_N_THROUGHPUT * N)  # IndexError where the student's crashes
        penalty = 10 * np.maximum(0.0, levels - 200) / 50
        return table - penalty[s // (T * N)][:, None] + penalty[wrong_bin][:, None]

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
        (
            "states within the SLA get a negative latency penalty, a bonus: the penalty is "
            "10 * max(0, L - 200) / 50, zero below the SLA",
            bonus,
        ),
        (
            "the latency bin of a state is computed with the course's N_THROUGHPUT throughput "
            "bins; it is s // (n_throughput * max_instances), with the arguments",
            course_throughput,
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
        (np.array([160.0, 230.0, 310.0, 420.0]), 3, 5, 1.5, 0.6),
    )
    for _ in range(3):
        levels = tuple(np.sort(np.round(rng.uniform(100, 500, int(rng.integers(2, 6))), 1)))
        T, N = int(rng.integers(1, 6)), int(rng.integers(2, 9))
        k, d = float(rng.choice([0.25, 0.5, 2.0, 3.0])), float(rng.choice([0.3, 0.65, 0.8]))
        yield (
            f"latency levels {tuple(float(x) for x in levels)}, {T} throughput bin(s), "
            f"max_instances={N}, instance_cost={k:g}, spot_discount={d:g}",
            (np.array(levels, dtype=float), T, N, k, d),
        )


def check_cost_table(cost_table: Callable[..., Any]) -> None:
    variants = _cost_variants()
    for description, args in cost_cases():
        what = f"cost_table with {description}"
        expected = reference_cost_table(*args)
        answer = _call(cost_table, *args, what=what, names=COST_ARGS)
        got = as_values(answer, what=what, shape=expected.shape)
        if values_close(got, expected):
            continue
        _precision(answer, got, expected, what)
        _name_the_mistake(got, expected, variants, *args, what=what)
        s, a = _first(~np.isclose(got, expected, equal_nan=True))
        latency_bin, _, n = state_parts(s, args[1], args[2])
        raise HiddenCheckFailure(
            f"{what}: wrong cost for state {s} (latency bin {int(latency_bin)}, {int(n)} "
            f"instance(s)) and action {a}: got {got[s, a]:g}"
        )


# ------------------------------------------------------------ exercise 6: value iteration
SOLVE_ARGS = ("C", "P", None, None)


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


def _late_policy_mdp() -> tuple[np.ndarray, np.ndarray]:
    """Two states whose greedy action changes at the last sweep (gamma 0.9, tol 0.95): in
    state 0, action 0 costs 1 and stays, action 1 costs 1.5 and moves to state 1, which
    costs 0.5 a step for ever. Action 1 is better for the early values, action 0 once the
    values have grown."""
    C = np.array([[1.0, 1.5], [0.5, np.inf]])
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = 1.0
    return C, P


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
    C, P = _late_policy_mdp()
    late = _solve_case(
        "two states: in state 0 action 0 costs 1 and stays, action 1 costs 1.5 and moves to "
        "state 1, where the only action costs 0.5 and stays; gamma=0.9, tol=0.95",
        C, P, 0.9, 0.95,
    )  # fmt: skip
    if late is not None:
        cases.append(late)
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


def _unpack(answer: Any, S: int, what: str) -> tuple[Any, np.ndarray, int, np.ndarray]:
    """(V as returned, the policy, iterations, errors) of the student's tuple, or a failure
    that says what is wrong with its form."""
    if not isinstance(answer, tuple | list) or len(answer) != 4:
        raise HiddenCheckFailure(
            f"{what}: return the tuple (V, policy, iterations, errors), got "
            f"{describe_type(answer)}"
            + (f" of length {len(answer)}" if isinstance(answer, tuple | list) else "")
        )
    V, policy, iterations, errors = answer
    if np.ndim(iterations) == 1 and is_number(errors):
        raise HiddenCheckFailure(
            f"{what}: iterations and errors are swapped: the tuple's order is (V, policy, "
            "iterations, errors)"
        )
    policy = _whole(policy, what=f"{what} (the policy)", size=S, name="actions")
    if not is_number(iterations) or float(iterations) != int(float(iterations)):
        raise HiddenCheckFailure(
            f"{what}: iterations should be one whole number, got {describe_type(iterations)}"
        )
    errors = as_values(errors, what=f"{what} (errors)")
    return V, policy, int(float(iterations)), errors.ravel()


def check_value_iteration(value_iteration: Callable[..., Any]) -> None:
    for case in solve_cases():
        what = f"value_iteration on {case.description}"
        V_ref, _, iterations_ref, errors_ref = case.reference
        S = case.C.shape[0]
        answer = _call(
            value_iteration, case.C, case.P, case.gamma, case.tol, what=what, names=SOLVE_ARGS
        )
        V_given, policy, iterations, errors = _unpack(answer, S, what)
        V = as_values(V_given, what=f"{what} (V)", shape=(S,))
        if iterations != iterations_ref or not values_close(V, V_ref):
            if iterations == iterations_ref:
                _precision(V_given, V, V_ref, what)
            _diagnose_vi(case, V, iterations, errors, what)
        if errors.shape != errors_ref.shape or not values_close(errors, errors_ref):
            raise HiddenCheckFailure(
                f"{what}: the values and the number of sweeps are right but errors is not the "
                "list of max |V_new - V| of every sweep, in order"
            )
        _check_greedy(case, V_ref, policy, what)


def _diagnose_vi(
    case: SolveCase, V: np.ndarray, iterations: int, errors: np.ndarray, what: str
) -> None:
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
        differs = n_m != expected or not values_close(V_m, V_ref)
        if differs and n_m == iterations and values_close(V, V_m):
            raise HiddenCheckFailure(f"{what}: {description}")
    if iterations > expected + 1 and errors.size == iterations and errors[:-1].min() < case.tol:
        raise HiddenCheckFailure(
            f"{what}: your loop did {iterations} sweeps, though the changes in your errors fell "
            "below tol earlier: stop at the first sweep whose change is below tol, not after a "
            "fixed number of sweeps"
        )
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


def _check_greedy(case: SolveCase, V: np.ndarray, actions: np.ndarray, what: str) -> None:
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
