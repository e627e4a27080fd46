r"""Hidden checks of lab06_autoscaler: from telemetry to a solved autoscaler MDP.

Each check calls the student's function on inputs the student never saw and compares the
answer with the reference in :mod:`mdplab.autoscaler`:

* traces of other weeks, made by :func:`mdplab.autoscaler.telemetry.generate_telemetry` with
  other seeds (two days each, cached), and hand-made arrays with values exactly on the bin
  edges, where right-closed and left-closed bins differ;
* other bin edges, fleet sizes, smoothing parameters, latency laws, cost weights, prices
  and spin-up charges, random policies for the operator's rules;
* for the prior's weight (a design decision), the log-likelihood of another held-out log;
  for the pipeline's policy, the operator's rules on the course's trace;
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
last transition dropped, a demand chain counted backwards or normalised by columns, the
latency law read at the fleet before the action, a bill per hour or without the spin-up,
a penalty per started 50 ms or with a bonus below the SLA, unvisited states judged, a
policy greedy for the previous values, the tuple's order, ...). The message names the first
that reproduces the answer, and otherwise what is wrong and where. Messages describe the
inputs of the failing call and show the student's own values, never an expected one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mdplab.autoscaler import telemetry
from mdplab.autoscaler.costs import billed_cost_table as reference_cost_table
from mdplab.autoscaler.estimation import (
    count_transitions as reference_counts,
)
from mdplab.autoscaler.estimation import (
    feasible_pairs,
    successor_blocks,
)
from mdplab.autoscaler.latency_prior import latency_counts, latency_model, pessimistic_prior
from mdplab.autoscaler.model import build_model
from mdplab.autoscaler.solve import value_iteration as reference_vi
from mdplab.autoscaler.states import (
    LATENCY_EDGES_MS,
    THROUGHPUT_EDGES,
    bin_levels,
    n_states,
    next_instances,
    quantise,
    state_index,
    state_parts,
)
from mdplab.autoscaler.states import label_actions as reference_labels
from mdplab.autoscaler.transitions import compose_transitions, throughput_chain
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

# The lab's own smoothing and risk mass (its risk_flags cell): an answer that uses them in
# place of its arguments is caught by name.
ALPHA, KAPPA = 0.01, 1.0

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


# --------------------------------------------------------------- exercise 4: demand chain
DEMAND_ARGS = ("throughput_bins", None, None)


def _demand_variants() -> list[Variant]:
    def counts_of(bins, T, *, backwards=False, drop_last=False):
        bins = np.asarray(bins)
        if drop_last:
            bins = bins[:-1]
        counts = np.zeros((T, T))
        np.add.at(counts, (bins[1:], bins[:-1]) if backwards else (bins[:-1], bins[1:]), 1.0)
        return counts

    def normalised(mass):
        with np.errstate(invalid="ignore", divide="ignore"):  # a mistake may leave 0 / 0
            return mass / mass.sum(axis=1, keepdims=True)

    return [
        (
            "the moves are counted backwards: row tau holds where the minutes in bin tau went "
            "next, from bins[t] to bins[t + 1]",
            lambda b, T, a: normalised(counts_of(b, T, backwards=True) + a),
        ),
        (
            "the columns sum to 1, not the rows: normalise each row (axis=1)",
            lambda b, T, a: (m := counts_of(b, T) + a) / m.sum(axis=0, keepdims=True),
        ),
        (
            "the smoothing is missing: add alpha to every cell before normalising",
            lambda b, T, a: normalised(counts_of(b, T)),
        ),
        (
            "alpha is added after normalising: add it to the counts, then divide by the row's "
            "total",
            lambda b, T, a: normalised(normalised(counts_of(b, T) + 1e-300) + a),
        ),
        (
            "the denominator misses the T alpha pseudo-counts: divide by the row total of "
            "counts + alpha",
            lambda b, T, a: (counts_of(b, T) + a) / (counts_of(b, T).sum(axis=1)[:, None] + a),
        ),
        (
            "the last move (second-to-last minute to the last) is not counted",
            lambda b, T, a: normalised(counts_of(b, T, drop_last=True) + a),
        ),
        (
            "the chain uses the course's alpha (0.5), not the argument alpha",
            lambda b, T, a: normalised(counts_of(b, T) + 0.5),
        ),
    ]


def demand_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    rng = instance_rng(SEED + 4)
    for seed, (_, te), alpha in zip(TRACE_SEEDS, BIN_SETS, (0.1, 2.0), strict=False):
        bins = quantise(trace(seed)["request_rate"], te)
        yield (
            f"the throughput bins of another trace ({bins.size} minutes, {len(te) + 1} bins), "
            f"alpha={alpha:g}",
            (bins, len(te) + 1, alpha),
        )
    T = int(rng.integers(3, 6))
    bins = rng.integers(0, T - 1, 25)  # the top bin never occurs
    yield (
        f"25 hand-made minutes over {T} bins, the highest never seen, alpha=0.25",
        (bins, T, 0.25),
    )


def check_demand_chain(demand_chain: Callable[..., Any]) -> None:
    variants = _demand_variants()
    for description, args in demand_cases():
        what = f"demand_chain on {description}"
        expected = throughput_chain(*args)
        answer = _call(demand_chain, *args, what=what, names=DEMAND_ARGS)
        got = as_values(answer, what=what, shape=expected.shape)
        if values_close(got, expected):
            continue
        _precision(answer, got, expected, what)
        _name_the_mistake(got, expected, variants, *args, what=what)
        if not np.allclose(got.sum(axis=1), 1.0):
            (row,) = _first(~np.isclose(got.sum(axis=1), 1.0))
            raise HiddenCheckFailure(f"{what}: row {row} sums to {got[row].sum():.4g}, not 1")
        row, col = _first(~np.isclose(got, expected))
        raise HiddenCheckFailure(f"{what}: wrong probability of moving from bin {row} to {col}")


# ------------------------------------------------------ exercise 5: the prior's weight
HELD_OUT_LOG_SEED = 20261208  # the hidden log: not the notebook's (20261207)
PRIOR_GRID = ((0.5, 1.0, 2.0, 5.0), (10, 50, 200))
PRIOR_SLACK = 0.007


@cache
def _shipped_trace() -> dict[str, np.ndarray]:
    """The course's trace (data/autoscaler_telemetry.csv), made again from its seeds."""
    return telemetry.generate_telemetry()


@cache
def _prior_scorer() -> Callable[[float, int], float]:
    """Held-out log-likelihood of the latency model of the course's trace, as the
    notebook's held_out_score computes it, on a log the notebook never saw."""
    physics = telemetry.Physics()
    shipped = _shipped_trace()
    hidden = telemetry.generate_telemetry(days=7, seed=instance_seed(HELD_OUT_LOG_SEED))

    def parts(log):
        lat, tau = (
            quantise(log["p95_latency_ms"], LATENCY_EDGES_MS),
            quantise(log["request_rate"], THROUGHPUT_EDGES),
        )
        return lat, tau, log["instances"], reference_labels(log["instances"], log["spot_share"])

    lat, tau, n, a = parts(shipped)
    levels = bin_levels(shipped["request_rate"], THROUGHPUT_EDGES)
    counts = latency_counts(lat, tau, n, a, 5, 5, 8)
    h_lat, h_tau, h_n, h_a = parts(hidden)

    @cache
    def score(weight: float, neighbours: int) -> float:
        prior = pessimistic_prior(lat, tau, n, a, levels, physics.preemption, 5, 8, neighbours)
        P_L = latency_model(counts, prior, weight)
        with np.errstate(divide="ignore"):
            chosen = P_L[h_lat[:-1], h_a, h_tau[1:], h_n[1:] - 1, h_lat[1:]]
            return float(np.mean(np.log(chosen)))

    return score


def check_choose_prior(weight: Any, neighbours: Any) -> None:
    what = "your PRIOR_WEIGHT and NEIGHBOURS"
    if not is_number(weight) or isinstance(weight, bool) or not np.isfinite(float(weight)):
        raise HiddenCheckFailure(f"{what}: PRIOR_WEIGHT is a number, got {describe_type(weight)}")
    whole = isinstance(neighbours, (int, np.integer)) and not isinstance(neighbours, bool)
    if not whole:
        raise HiddenCheckFailure(
            f"{what}: NEIGHBOURS is a whole number, got {describe_type(neighbours)}"
        )
    weight, neighbours = float(weight), int(neighbours)
    if weight <= 0 or neighbours < 1:
        raise HiddenCheckFailure(f"{what}: the weight must be positive and K at least 1")
    score = _prior_scorer()
    best = max(score(w, k) for w in PRIOR_GRID[0] for k in PRIOR_GRID[1])
    got = score(weight, min(neighbours, 20_000))
    if got < best - PRIOR_SLACK:
        raise HiddenCheckFailure(
            f"{what}: on another held-out log, w = {weight:g} and K = {neighbours} score "
            f"{got:.4f} per transition, below the floor {best - PRIOR_SLACK:.4f} (the best of "
            "a grid, less 0.007): the choice does not carry over to new data"
        )


# ----------------------------------------------------- exercise 6: combine the transitions
COMBINE_ARGS = ("P_demand", "P_latency", None)


def _combine_reference(
    P_demand,
    P_latency,
    N,
    *,
    current_fleet=False,
    demand_transposed=False,
    latency_now=False,
    fill_forbidden=False,
):
    """The composed P, or a mistaken version of it (the keyword arguments name the mistake)."""
    P_demand = np.asarray(P_demand, dtype=float)
    P_latency = np.asarray(P_latency, dtype=float)
    L, T = P_latency.shape[0], P_demand.shape[0]
    S = n_states(L, T, N)
    lat, tau, n = state_parts(np.arange(S), T, N)
    feasible = feasible_pairs(L, T, N)
    demand = P_demand.T if demand_transposed else P_demand
    P = np.zeros((S, 4, S))
    for a in range(4):
        fleet = np.clip(next_instances(n, a), 1, N)
        for s in range(S):
            if not feasible[s, a] and not fill_forbidden:
                continue
            law_fleet = n[s] if current_fleet else fleet[s]
            for t2 in range(T):
                cells = state_index(np.arange(L), t2, fleet[s], T, N)
                row = P_latency[lat[s], a, t2, law_fleet - 1]
                if latency_now:
                    row = P_latency[lat[s], a, tau[s], law_fleet - 1]
                P[s, a, cells] = demand[tau[s], t2] * row
    return P


COMBINE_MISTAKES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "the latency law is read at the fleet before the action; it is P_latency[l, a, tau2, "
        "n2 - 1] with n2 the fleet after it",
        {"current_fleet": True},
    ),
    (
        "P_demand is read as P_demand[tau2, tau]; row tau is where demand goes from bin tau",
        {"demand_transposed": True},
    ),
    (
        "the latency law is read at this minute's demand bin; it is the next minute's, tau2",
        {"latency_now": True},
    ),
    (
        "actions that are not allowed get a row; their rows are all zero",
        {"fill_forbidden": True},
    ),
)


def combine_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    rng = instance_rng(SEED + 7)
    for L, T, N in ((2, 3, 3), (3, 2, 4), (4, 3, 2)):
        P_demand = rng.dirichlet(np.ones(T), size=T)
        P_latency = rng.dirichlet(np.ones(L), size=(L, 4, T, N))
        yield (
            f"random laws with {L} latency bins, {T} throughput bins and max_instances={N}",
            (np.round(P_demand, 6), P_latency, N),
        )


def check_combine_transitions(combine_transitions: Callable[..., Any]) -> None:
    for description, args in combine_cases():
        what = f"combine_transitions on {description}"
        expected = compose_transitions(*args)
        answer = _call(combine_transitions, *args, what=what, names=COMBINE_ARGS)
        got = as_values(answer, what=what, shape=expected.shape)
        if values_close(got, expected):
            continue
        _precision(answer, got, expected, what)
        mistakes = [
            (_combine_reference(*args, **mistake), text) for text, mistake in COMBINE_MISTAKES
        ]
        found = known_mistake(got, expected, mistakes, values_close)
        if found is not None:
            raise HiddenCheckFailure(f"{what}: {found}")
        L, T, N = args[1].shape[0], args[0].shape[0], args[2]
        allowed = feasible_pairs(L, T, N)
        nonzero = np.abs(got).sum(axis=2) > 0
        if np.any(nonzero & ~allowed):
            s, a = _first(nonzero & ~allowed)
            raise HiddenCheckFailure(
                f"{what}: the row of state {s}, action {a} should be zero (not allowed there)"
            )
        sums = got.sum(axis=2)
        if not np.allclose(sums[allowed], 1.0):
            s, a = _first(allowed & ~np.isclose(sums, 1.0))
            raise HiddenCheckFailure(
                f"{what}: the row of state {s}, action {a} sums to {sums[s, a]:.4g}, not 1"
            )
        outside = (np.abs(got) > 0) & ~successor_blocks(L, T, N)
        if outside.any():
            s, a, s2 = _first(outside)
            raise HiddenCheckFailure(
                f"{what}: P[{s}, {a}, {s2}] is not zero, but state {s2} does not have the "
                "instance count that action leads to"
            )
        s, a = _first(~np.isclose(got, expected).all(axis=2))
        raise HiddenCheckFailure(f"{what}: the row of state {s}, action {a} is wrong")


# -------------------------------------------------------------------- exercise 7: costs
COST_ARGS = ("latency_levels", None, None, None, None, None, None)
COURSE_N_THROUGHPUT = len(THROUGHPUT_EDGES) + 1


def _cost_variants() -> list[Variant]:
    def penalties(levels, T, N):
        levels = np.asarray(levels, dtype=float)
        return np.repeat(10 * np.maximum(0.0, levels - 200) / 50, T * N)[:, None]

    def fleets(T_levels, T, N):
        n = state_parts(np.arange(len(T_levels) * T * N), T, N)[2]
        return n[:, None], n[:, None] + np.array([-1, 0, 1, 0])[None, :]

    def bill(n_next, spot_share, od, sp):
        on_spot = np.where(spot_share, n_next - 1, 0)
        return ((n_next - on_spot) * od + on_spot * sp) / 60

    def spot_mask():
        return (np.arange(4) == 3)[None, :]

    def build(levels, T, N, k, od, sp, F, *, hourly=False, first_free=False, before=False,
              all_spot=False, no_spot=False, no_spin=False, spin_unweighted=False):  # fmt: skip
        n, n_next = fleets(levels, T, N)
        fleet = n if before else n_next
        spot = spot_mask() & ~no_spot
        if all_spot:
            charge = np.where(spot, fleet * sp, fleet * od) / 60
        else:
            charge = bill(fleet, spot, od, sp)
        if hourly:
            charge = charge * 60
        if first_free:
            charge = charge - od / 60
        up = (np.arange(4) == 2)[None, :]
        spin = 0.0 if no_spin else F * up
        table = penalties(levels, T, N) + (k * (charge + spin) if not spin_unweighted
                                           else k * charge + F * up)  # fmt: skip
        reference = reference_cost_table(levels, T, N, k, od, sp, F)
        return np.where(np.isfinite(reference), table, np.inf)

    def stepped(levels, T, N, k, od, sp, F):
        levels = np.asarray(levels, dtype=float)
        steps = 10 * np.ceil(np.maximum(0.0, levels - 200) / 50)
        smooth = 10 * np.maximum(0.0, levels - 200) / 50
        table = reference_cost_table(levels, T, N, k, od, sp, F)
        return table - np.repeat(smooth - steps, T * N)[:, None]

    def bonus(levels, T, N, k, od, sp, F):
        levels = np.asarray(levels, dtype=float)
        below = 10 * np.minimum(0.0, levels - 200) / 50
        return reference_cost_table(levels, T, N, k, od, sp, F) + np.repeat(below, T * N)[:, None]

    def zero_infeasible(*args):
        table = reference_cost_table(*args)
        return np.where(np.isfinite(table), table, 0.0)

    return [
        (
            "the bill is an hour's, not a minute's: prices are per instance-hour",
            lambda *a: build(*a, hourly=True),
        ),
        (
            "the first instance is not billed; every instance is",
            lambda *a: build(*a, first_free=True),
        ),
        (
            "the bill uses the fleet before the action, not after it",
            lambda *a: build(*a, before=True),
        ),
        (
            "spot bills every instance at the spot price; spot keeps one on demand",
            lambda *a: build(*a, all_spot=True),
        ),
        ("spot is billed at the on-demand price", lambda *a: build(*a, no_spot=True)),
        ("the spin-up charge of a scale up is missing", lambda *a: build(*a, no_spin=True)),
        (
            "the spin-up charge is not multiplied by the cost weight",
            lambda *a: build(*a, spin_unweighted=True),
        ),
        (
            "the latency penalty counts started 50 ms steps; it is proportional (225 ms costs 5)",
            stepped,
        ),
        (
            "states within the SLA get a negative latency penalty, a bonus: the penalty is "
            "10 * max(0, L - 200) / 50",
            bonus,
        ),
        ("actions that are not allowed cost 0; they must cost np.inf", zero_infeasible),
    ]


def cost_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    rng = instance_rng(SEED + 5)
    yield (
        "latency levels (160, 230, 310, 420), 3 throughput bins, max_instances=5, "
        "cost_weight=15, prices $2.40 and $0.90 an hour, spin_up=$0.10",
        (np.array([160.0, 230.0, 310.0, 420.0]), 3, 5, 15.0, 2.4, 0.9, 0.1),
    )
    for _ in range(3):
        levels = tuple(np.sort(np.round(rng.uniform(100, 500, int(rng.integers(2, 6))), 1)))
        T, N = int(rng.integers(1, 6)), int(rng.integers(2, 9))
        k = float(rng.choice([5.0, 20.0, 60.0]))
        od, sp = float(rng.choice([1.2, 1.8, 3.0])), float(rng.choice([0.3, 0.6]))
        F = float(rng.choice([0.03, 0.06, 0.2]))
        yield (
            f"latency levels {tuple(float(x) for x in levels)}, {T} throughput bin(s), "
            f"max_instances={N}, cost_weight={k:g}, prices ${od:.2f} and ${sp:.2f} an hour, "
            f"spin_up=${F:.2f}",
            (np.array(levels, dtype=float), T, N, k, od, sp, F),
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


# ------------------------------------------------------------ exercise 8: value iteration
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
    for seed, k, gamma in ((TRACE_SEEDS[0], 40.0, 0.95), (TRACE_SEEDS[1], 10.0, 0.9)):
        model = build_model(trace(seed), cost_weight=k, gamma=gamma)
        description = (
            f"the autoscaler model of another trace (cost_weight={k:g}) with "
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


# ------------------------------------------------------------- exercise 9: the operator's rules
VIOLATION_ARGS = ("policy", "visits", None, None, None, "spare")
GIVE_BACK = (0, 3)  # scale down, spot


def _violations(
    policy,
    visits,
    T,
    N,
    first,
    spare,
    *,
    unvisited=False,
    any_rate=False,
    near_sla=False,
    spot_kept=False,
    ignore_spare=False,
    rule_one_early=False,
):
    """The sorted violating states, or a mistaken version (the keywords name the mistake)."""
    policy, visits, spare = np.asarray(policy), np.asarray(visits), np.asarray(spare, bool)
    lat, tau, _ = state_parts(np.arange(policy.size), T, N)
    seen = np.ones(policy.size, bool) if unvisited else visits > 0
    gives_back = np.isin(policy, (0,) if spot_kept else GIVE_BACK)
    strain = lat >= first - (1 if rule_one_early else 0)
    top = np.ones_like(seen) if any_rate else tau == T - 1
    bottom = np.ones_like(seen) if any_rate else tau == 0
    comfortable = lat < (first if near_sla else first - 1)
    spare = np.ones_like(seen) if ignore_spare else spare
    retreat = seen & strain & top & np.isin(policy, GIVE_BACK)
    hoard = seen & comfortable & bottom & spare & ~gives_back
    return np.flatnonzero(retreat | hoard)


VIOLATION_MISTAKES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("states the log never visited are judged; only visits[s] > 0 count", {"unvisited": True}),
    (
        "the rules are applied at every throughput: rule 1 is about the highest throughput "
        "bin, rule 2 about the lowest",
        {"any_rate": True},
    ),
    (
        "rule 2 is applied in the latency bin just under the SLA; it is for latency "
        "comfortably within it, bins below first_over_sla - 1",
        {"near_sla": True},
    ),
    (
        "moving to spot is counted as keeping capacity; it gives capacity back (rule 2)",
        {"spot_kept": True},
    ),
    (
        "rule 2 ignores spare[s]: only states with spare capacity must give it back",
        {"ignore_spare": True},
    ),
    (
        "rule 1 starts one latency bin too early: it is for latency bins >= first_over_sla",
        {"rule_one_early": True},
    ),
)


def violation_cases() -> Iterator[tuple[str, tuple[Any, ...]]]:
    rng = instance_rng(SEED + 8)
    for L, T, N, first in ((5, 5, 8, 2), (4, 3, 3, 2), (3, 2, 4, 1)):
        S = L * T * N
        policy = rng.integers(0, 4, S)
        visits = rng.integers(0, 3, S) * rng.integers(0, 40, S)
        spare = rng.random(S) < 0.5
        yield (
            f"a random policy over {L} latency bins (first over the SLA: {first}), {T} "
            f"throughput bins and max_instances={N}, {int(np.sum(visits > 0))} states visited",
            (policy, visits, T, N, first, spare),
        )
    # Random policies rarely break rule 2 (one latency bin, one throughput bin), so one case
    # breaks both rules at once, which also shows whether the answer comes back sorted.
    L, T, N, first = 4, 3, 3, 2
    _, tau, n = state_parts(np.arange(L * T * N), T, N)
    yield (
        "hold everywhere but spot at the highest throughput, every state visited and spare "
        f"capacity wherever there are 2 instances or more, over {L} latency bins (first over "
        f"the SLA: {first}), {T} throughput bins and max_instances={N}",
        (np.where(tau == T - 1, 3, 1), np.ones(L * T * N, dtype=int), T, N, first, n > 1),
    )


def check_find_violations(find_violations: Callable[..., Any]) -> None:
    for description, args in violation_cases():
        what = f"find_violations on {description}"
        expected = _violations(*args)
        answer = _call(find_violations, *args, what=what, names=VIOLATION_ARGS)
        try:
            got = np.asarray(list(np.asarray(answer, dtype=float).ravel()))
        except (TypeError, ValueError):
            raise HiddenCheckFailure(
                f"{what}: return a list of states, got {describe_type(answer)}"
            ) from None
        if got.size == expected.size and np.array_equal(np.sort(got), expected):
            if not np.array_equal(got, expected):
                raise HiddenCheckFailure(f"{what}: the right states, but not sorted")
            continue
        for text, mistake in VIOLATION_MISTAKES:
            wrong = _violations(*args, **mistake)
            if got.size == wrong.size and np.array_equal(np.sort(got), wrong):
                raise HiddenCheckFailure(f"{what}: {text}")
        missing = sorted(set(expected.tolist()) - set(got.tolist()))
        extra = sorted(set(got.tolist()) - set(expected.tolist()))
        if missing:  # named by its rule only: the state itself is the reference's answer
            rule = 1 if state_parts(int(missing[0]), args[2], args[3])[0] >= args[4] else 2
            detail = f"a visited state that breaks rule {rule} is missing from the list"
        else:
            detail = f"state {int(extra[0])} is listed but breaks no rule"
        raise HiddenCheckFailure(f"{what}: {detail}")


@cache
def _course_safety_inputs() -> tuple[np.ndarray, np.ndarray]:
    """(visits, spare) of the course's trace, as the notebook's safety_table computes them."""
    physics = telemetry.Physics()
    shipped = _shipped_trace()
    states = _encode(
        shipped["p95_latency_ms"], shipped["request_rate"], shipped["instances"],
        LATENCY_EDGES_MS, THROUGHPUT_EDGES, 8, right=True,
    )  # fmt: skip
    S = n_states(5, 5, 8)
    visits = np.bincount(states, minlength=S)
    levels = bin_levels(shipped["request_rate"], THROUGHPUT_EDGES)
    work = float(np.mean(physics.work(shipped["query_length"], shipped["retrieval_confidence"])))
    _, tau, n = state_parts(np.arange(S), 5, 8)
    spare = (n > 1) & (levels[tau] * work <= 0.9 * (n - 1) * physics.capacity)
    return visits, spare


def check_pipeline_is_safe(policy: Any) -> None:
    what = "the policy of your pipeline (policy_star)"
    visits, spare = _course_safety_inputs()
    got = as_values(policy, what=what, shape=visits.shape)
    if not np.all(np.isin(got, np.arange(4))):
        raise HiddenCheckFailure(f"{what}: every action is 0, 1, 2 or 3")
    broken = _violations(got.astype(int), visits, 5, 8, 2, spare)
    if broken.size:
        s = int(broken[0])
        lat, tau, n = (int(x) for x in state_parts(s, 5, 8))
        raise HiddenCheckFailure(
            f"{what}: {broken.size} visited state(s) break the operator's rules, e.g. state "
            f"{s} (latency bin {lat}, throughput bin {tau}, {n} instance(s)) takes action "
            f"{int(got[s])}; check Exercises 4 to 8 and your choice in Exercise 5"
        )
