r"""Finite discounted MDPs for cost minimisation, stored as state-action pairs.

A model has states :math:`s \in S` (``n_states`` of them, each with a label), and for every
state a non-empty set of feasible actions :math:`A(s)`. A *pair* is one feasible
:math:`(s, a)`; the model keeps, per pair,

* ``pair_state[p]``  -- the index of its state (pairs are grouped by state, contiguously,
  so the pairs of state ``i`` are ``state_ptr[i]:state_ptr[i + 1]``);
* ``pair_action[p]`` -- its action label (e.g. a production quantity);
* ``costs[p]``       -- the one-period cost :math:`r(s, a)`;
* row ``p`` of ``transitions`` -- the law :math:`P(\cdot \mid s, a)` as a CSR sparse row.

With discount :math:`\beta \in [0, 1)` the value of a stationary policy :math:`\pi` is
:math:`v_\pi = \sum_t \beta^t P_\pi^t r_\pi`, and the optimal values solve the Bellman equation
:math:`v^*(s) = \min_{a \in A(s)} \{ r(s, a) + \beta \sum_{s'} P(s' \mid s, a) v^*(s') \}`.

The pair layout is what makes large models cheap: the warehouse at capacity 2000 has about
two million pairs but only 2001 states, and a Bellman sweep is one pass over the CSR arrays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from mdplab._validation import (
    ROW_SUM_TOL,
    check_discount,
    find_label,
    label_array,
    plain,
    preview,
    values_vector,
)

__all__ = ["FiniteMDP"]

# Dense exports beyond this many entries of P[S, A, S'] would not fit comfortably in memory.
_MAX_DENSE_ENTRIES = 50_000_000


class FiniteMDP:
    r"""A finite MDP with discount :math:`\beta \in [0, 1)` whose costs are minimised.

    Parameters
    ----------
    pair_state:
        Integer state index of every pair, non-decreasing (pairs grouped by state), every
        state index ``0 .. n_states - 1`` present at least once.
    pair_action:
        Action label of every pair; labels must be distinct within a state.
    costs:
        One-period cost :math:`r(s, a)` of every pair (finite reals).
    transitions:
        ``(n_pairs, n_states)`` matrix (scipy sparse or dense) with row ``p`` equal to
        :math:`P(\cdot \mid s, a)`: entries :math:`\ge 0`, rows summing to 1 within
        ``1e-9``. Stored as CSR, float64, with int32 indices when they fit.
    discount:
        :math:`\beta \in [0, 1)`.
    state_labels:
        One hashable label per state (default ``0 .. n_states - 1``).

    Every array of the model is read-only: a model is validated once, at construction.
    Invalid input raises :class:`ValueError` naming what is wrong and where.
    """

    def __init__(
        self,
        pair_state: Any,
        pair_action: Any,
        costs: Any,
        transitions: Any,
        discount: float,
        state_labels: Iterable[Hashable] | None = None,
    ) -> None:
        self._discount = check_discount(discount)
        matrix = _to_csr(transitions)
        n_pairs, n_states = matrix.shape
        if n_states == 0 or n_pairs == 0:
            raise ValueError(
                f"an MDP needs at least one state and one state-action pair; "
                f"transitions has shape {matrix.shape}"
            )
        labels = (
            np.arange(n_states, dtype=np.int64)
            if state_labels is None
            else label_array(state_labels)
        )
        if labels.shape != (n_states,):
            raise ValueError(
                f"state_labels has {labels.shape[0]} labels but transitions has {n_states} "
                f"columns (one per state)"
            )
        self._state_labels = labels
        self._state_index_map()  # validates uniqueness early

        states = _pair_states(pair_state, n_pairs, n_states)
        counts = np.bincount(states, minlength=n_states)
        empty = np.flatnonzero(counts == 0)
        if empty.size:
            raise ValueError(
                f"state {plain(labels[empty[0]])!r} has no feasible action "
                f"(states without a state-action pair: {preview(labels[empty])})"
            )
        ptr = np.zeros(n_states + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        self._pair_state = states
        self._state_ptr = ptr

        actions = label_array(pair_action)
        if actions.shape != (n_pairs,):
            raise ValueError(
                f"pair_action has {actions.shape[0]} entries but there are {n_pairs} pairs "
                f"(rows of transitions)"
            )
        self._pair_action = actions
        self._check_distinct_actions()

        cost = _float_vector(costs, "costs")
        if cost.shape != (n_pairs,):
            raise ValueError(f"costs has {cost.shape[0]} entries but there are {n_pairs} pairs")
        bad = np.flatnonzero(~np.isfinite(cost))
        if bad.size:
            raise ValueError(
                f"cost of {self._describe_pair(int(bad[0]))} is {float(cost[bad[0]])!r}; costs "
                f"must be finite (leave infeasible actions out instead)"
            )
        self._costs = cost
        self._check_rows(matrix)
        self._transitions = matrix
        for arr in (
            self._state_labels,
            self._pair_state,
            self._state_ptr,
            self._pair_action,
            self._costs,
            matrix.data,
            matrix.indices,
            matrix.indptr,
        ):
            arr.flags.writeable = False

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dense(
        cls,
        costs: Any,
        transitions: Any,
        discount: float,
        state_labels: Iterable[Hashable] | None = None,
        action_labels: Iterable[Hashable] | None = None,
    ) -> FiniteMDP:
        r"""Build a model from dense arrays ``costs[S, A]`` and ``transitions[S, A, S']``.

        An action ``a`` is infeasible in state ``s`` when ``costs[s, a]`` is ``+inf`` or
        ``nan``; its row of ``transitions`` is then ignored. Pairs are ordered by state and,
        within a state, by action column, so the tie rule prefers lower columns.
        """
        r = _float_array(costs, "costs")
        p = _float_array(transitions, "transitions")
        if r.ndim != 2:
            raise ValueError(f"costs must be a 2-D array costs[state, action], got shape {r.shape}")
        n_states, n_actions = r.shape
        if p.shape != (n_states, n_actions, n_states):
            raise ValueError(
                f"transitions must have shape (S, A, S) = {(n_states, n_actions, n_states)} to "
                f"match costs of shape {r.shape}, got {p.shape}"
            )
        actions = (
            np.arange(n_actions, dtype=np.int64)
            if action_labels is None
            else label_array(action_labels)
        )
        if actions.shape != (n_actions,):
            raise ValueError(
                f"action_labels has {actions.shape[0]} labels but costs has {n_actions} columns"
            )
        minus_inf = np.argwhere(np.isneginf(r))
        if minus_inf.size:
            s, a = minus_inf[0]
            raise ValueError(f"costs[{s}, {a}] is -inf; mark infeasible actions with +inf or nan")
        feasible = np.isfinite(r)
        rows, cols = np.nonzero(feasible)
        return cls(
            pair_state=rows,
            pair_action=actions[cols],
            costs=r[rows, cols],
            transitions=sp.csr_matrix(p[rows, cols]),
            discount=discount,
            state_labels=state_labels,
        )

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[Hashable, Hashable, float, Mapping[Hashable, float]]],
        discount: float,
        state_labels: Iterable[Hashable] | None = None,
    ) -> FiniteMDP:
        r"""Build a model from ``(state, action, cost, {next_state: probability})`` tuples.

        States are ordered as in ``state_labels`` when given, otherwise by first appearance
        as the state of a pair; within a state pairs keep their input order. A deterministic
        transition is ``{next_state: 1.0}``.
        """
        items = list(pairs)
        if state_labels is None:
            order: dict[Hashable, int] = {}
            for k, item in enumerate(items):
                _check_pair_tuple(item, k)
                order.setdefault(item[0], len(order))
            labels: list[Hashable] = list(order)
        else:
            labels = list(label_array(state_labels))
            order = {}
            for i, lab in enumerate(labels):
                if lab in order:
                    raise ValueError(f"state label {plain(lab)!r} appears twice in state_labels")
                order[lab] = i
        n_states = len(labels)
        pair_state = np.empty(len(items), dtype=np.int64)
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for k, item in enumerate(items):
            _check_pair_tuple(item, k)
            state, action, _, law = item
            if state not in order:
                raise ValueError(f"pair {k} has state {state!r}, which is not in state_labels")
            pair_state[k] = order[state]
            for nxt, prob in law.items():
                if nxt not in order:
                    raise ValueError(
                        f"pair {k} (state {state!r}, action {action!r}) moves to unknown "
                        f"state {nxt!r}; known states: {preview(labels)}"
                    )
                rows.append(k)
                cols.append(order[nxt])
                vals.append(prob)
        # Stable sort keeps the input order of actions within each state.
        perm = np.argsort(pair_state, kind="stable")
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        matrix = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float64), (inverse[np.asarray(rows, dtype=np.int64)], cols)),
            shape=(len(items), max(n_states, 1)),
        )
        actions = label_array([items[i][1] for i in perm])
        costs = [items[i][2] for i in perm]
        return cls(pair_state[perm], actions, costs, matrix, discount, state_labels=labels)

    # ------------------------------------------------------------------ stored arrays
    @property
    def discount(self) -> float:
        r"""The discount factor :math:`\beta \in [0, 1)`."""
        return self._discount

    @property
    def state_labels(self) -> np.ndarray:
        """Label of every state (read-only array)."""
        return self._state_labels

    @property
    def pair_state(self) -> np.ndarray:
        """State index of every pair (non-decreasing)."""
        return self._pair_state

    @property
    def state_ptr(self) -> np.ndarray:
        """Offsets: the pairs of state ``i`` are ``state_ptr[i]:state_ptr[i + 1]``."""
        return self._state_ptr

    @property
    def pair_action(self) -> np.ndarray:
        """Action label of every pair."""
        return self._pair_action

    @property
    def costs(self) -> np.ndarray:
        r"""Cost :math:`r(s, a)` of every pair."""
        return self._costs

    @property
    def transitions(self) -> sp.csr_matrix:
        r"""CSR matrix of shape ``(n_pairs, n_states)``; row ``p`` is :math:`P(\cdot|s,a)`."""
        return self._transitions

    @property
    def n_states(self) -> int:
        """Number of states."""
        return int(self._state_labels.shape[0])

    @property
    def n_pairs(self) -> int:
        """Number of feasible state-action pairs."""
        return int(self._pair_state.shape[0])

    @cached_property
    def action_counts(self) -> np.ndarray:
        """Number of feasible actions of every state."""
        counts = np.diff(self._state_ptr)
        counts.flags.writeable = False
        return counts

    @cached_property
    def action_labels(self) -> np.ndarray:
        """The distinct action labels: sorted when they are sortable, else by first use.

        This is the column order of :meth:`to_dense`.
        """
        return self._action_columns[0]

    # ------------------------------------------------------------------ look-ups
    def state_index(self, label: Hashable) -> int:
        """Position of the state called ``label``."""
        try:
            return self._state_index_map()[label]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown state {label!r}; states are {preview(self._state_labels)}"
            ) from None

    def actions_of(self, state: Hashable) -> np.ndarray:
        """Feasible action labels of the state labelled ``state``, in pair order."""
        i = self.state_index(state)
        return self._pair_action[self._state_ptr[i] : self._state_ptr[i + 1]]

    def pair_index(self, state: Hashable, action: Hashable) -> int:
        """Index of the pair ``(state, action)`` (labels); ValueError if infeasible."""
        i = self.state_index(state)
        lo, hi = int(self._state_ptr[i]), int(self._state_ptr[i + 1])
        j = find_label(self._pair_action[lo:hi], action)
        if j < 0:
            raise ValueError(
                f"action {action!r} is not feasible in state {state!r}; feasible actions: "
                f"{preview(self._pair_action[lo:hi])}"
            )
        return lo + j

    def cost(self, state: Hashable, action: Hashable) -> float:
        """One-period cost :math:`r(s, a)` of the labelled pair."""
        return float(self._costs[self.pair_index(state, action)])

    def transition_row(self, state: Hashable, action: Hashable) -> np.ndarray:
        r"""Dense vector :math:`P(\cdot \mid s, a)` over all states."""
        p = self.pair_index(state, action)
        return self._transitions[p].toarray().ravel()

    def policy_pairs(self, policy: Any) -> np.ndarray:
        """Pair index chosen in every state by ``policy``.

        ``policy`` is a sequence of action labels (one per state, in state order) or a
        mapping ``{state_label: action_label}`` covering every state. An action that is not
        feasible raises ValueError naming the state and its feasible actions.
        """
        if isinstance(policy, Mapping):
            known = self._state_index_map()
            extra = [k for k in policy if k not in known]
            if extra:
                raise ValueError(
                    f"policy names unknown state(s) {preview(extra)}; states are "
                    f"{preview(self._state_labels)}"
                )
            missing = [lab for lab in self._state_labels if lab not in policy]
            if missing:
                raise ValueError(f"policy gives no action for state(s) {preview(missing)}")
            chosen = label_array([policy[lab] for lab in self._state_labels.tolist()])
        else:
            if isinstance(policy, str | bytes):
                raise ValueError(f"policy must be a sequence or a mapping, got {policy!r}")
            try:
                chosen = label_array(policy)
            except TypeError:
                raise ValueError(
                    f"policy must be a sequence of {self.n_states} actions or a mapping "
                    f"{{state: action}}, got {policy!r}"
                ) from None
            if chosen.shape != (self.n_states,):
                raise ValueError(
                    f"policy must give one action per state ({self.n_states} states), got "
                    f"{chosen.shape[0]} entries"
                )
        return self._locate_actions(chosen)

    def state_vector(self, values: Any, name: str = "values") -> np.ndarray:
        """``values`` as a finite float64 vector over states (a fresh copy).

        Accepts a sequence in state order or a mapping ``{state_label: number}`` that covers
        every state.
        """
        if isinstance(values, Mapping):
            known = self._state_index_map()
            extra = [k for k in values if k not in known]
            if extra:
                raise ValueError(f"{name} names unknown state(s) {preview(extra)}")
            missing = [lab for lab in self._state_labels.tolist() if lab not in values]
            if missing:
                raise ValueError(f"{name} gives no value for state(s) {preview(missing)}")
            values = [values[lab] for lab in self._state_labels.tolist()]
        return values_vector(values, self.n_states, name)

    def to_dense(self) -> tuple[np.ndarray, np.ndarray]:
        r"""Dense ``(R, P)``: ``R[s, a]`` (``+inf`` where infeasible) and ``P[s, a, s']``.

        Action columns follow :attr:`action_labels`; rows of ``P`` for infeasible pairs are
        zero. Meant for small models.
        """
        labels, columns = self._action_columns
        n_s, n_a = self.n_states, labels.shape[0]
        if n_s * n_a * n_s > _MAX_DENSE_ENTRIES:
            raise ValueError(
                f"to_dense would allocate {n_s} x {n_a} x {n_s} transition entries; use the "
                f"sparse arrays (costs, transitions) of a model this large"
            )
        r = np.full((n_s, n_a), np.inf)
        r[self._pair_state, columns] = self._costs
        p = np.zeros((n_s, n_a, n_s))
        p[self._pair_state, columns] = self._transitions.toarray()
        return r, p

    def __repr__(self) -> str:
        return (
            f"FiniteMDP(n_states={self.n_states}, n_pairs={self.n_pairs}, "
            f"discount={self._discount!r})"
        )

    # ------------------------------------------------------------------ internals
    def _state_index_map(self) -> dict[Hashable, int]:
        cached = self.__dict__.get("_index_map")
        if cached is not None:
            return cached
        mapping: dict[Hashable, int] = {}
        for i, lab in enumerate(self._state_labels.tolist()):
            try:
                if lab in mapping:
                    raise ValueError(f"state label {lab!r} appears twice in state_labels")
            except TypeError:
                raise ValueError(f"state label {lab!r} is not hashable") from None
            mapping[lab] = i
        self.__dict__["_index_map"] = mapping
        return mapping

    @cached_property
    def _action_columns(self) -> tuple[np.ndarray, np.ndarray]:
        acts = self._pair_action
        if acts.dtype.kind != "O":
            labels, columns = np.unique(acts, return_inverse=True)
            labels.flags.writeable = False
            return labels, columns.ravel()
        first: dict[Hashable, int] = {}
        for a in acts:
            first.setdefault(a, len(first))
        ordered = list(first)
        # Mixed label types cannot be sorted: first-use order is then the only sensible one.
        with contextlib.suppress(TypeError):
            ordered = sorted(ordered)
        position = {a: j for j, a in enumerate(ordered)}
        labels = label_array(ordered)
        labels.flags.writeable = False
        return labels, np.array([position[a] for a in acts], dtype=np.int64)

    def _describe_pair(self, p: int) -> str:
        s = int(self._pair_state[p])
        state = plain(self._state_labels[s])
        action = plain(self._pair_action[p])
        return f"(state {state!r}, action {action!r}) [pair {p}]"

    def _check_distinct_actions(self) -> None:
        acts, ptr = self._pair_action, self._state_ptr
        same_state = self._pair_state[1:] == self._pair_state[:-1]
        if acts.dtype.kind in "iuf":
            # Actions listed in increasing order within each state (the usual case) are
            # distinct without sorting.
            if np.all(acts[1:][same_state] > acts[:-1][same_state]):
                return
            order = np.lexsort((acts, self._pair_state))
            dup = np.flatnonzero(
                (self._pair_state[order][1:] == self._pair_state[order][:-1])
                & (acts[order][1:] == acts[order][:-1])
            )
            if dup.size:
                p = int(order[dup[0]])
                raise ValueError(
                    f"state {plain(self._state_labels[self._pair_state[p]])!r} lists action "
                    f"{plain(acts[p])!r} more than once"
                )
            return
        for i in range(self._state_labels.shape[0]):
            seen: list[Any] = []
            for a in acts[ptr[i] : ptr[i + 1]]:
                if a in seen:
                    raise ValueError(
                        f"state {plain(self._state_labels[i])!r} lists action {plain(a)!r} "
                        f"more than once"
                    )
                seen.append(a)

    def _check_rows(self, matrix: sp.csr_matrix) -> None:
        data, indptr = matrix.data, matrix.indptr
        bad = np.flatnonzero(~np.isfinite(data) | (data < 0))
        if bad.size:
            k = int(bad[0])
            p = int(np.searchsorted(indptr, k, side="right") - 1)
            nxt = plain(self._state_labels[matrix.indices[k]])
            raise ValueError(
                f"transition probability {float(data[k])!r} from {self._describe_pair(p)} to state "
                f"{nxt!r} must be finite and >= 0"
            )
        sums = matrix @ np.ones(matrix.shape[1])
        off = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOL)
        if off.size:
            p = int(off[0])
            raise ValueError(
                f"transition row of {self._describe_pair(p)} sums to {float(sums[p])!r}, not 1 "
                f"(tolerance {ROW_SUM_TOL:g}); {off.size} row(s) are off"
            )

    def _locate_actions(self, chosen: np.ndarray) -> np.ndarray:
        acts, ptr = self._pair_action, self._state_ptr
        n = self.n_states
        pairs = np.full(n, -1, dtype=np.int64)
        todo = np.arange(n)
        if acts.dtype.kind in "iu" and chosen.dtype.kind in "iu":
            # Integer actions are often consecutive within a state (production quantities):
            # guess the pair by offset from the state's first action and verify, which costs
            # O(n_states) instead of a pass over all pairs.
            guess = ptr[:-1] + (chosen.astype(np.int64) - acts[ptr[:-1]])
            inside = (guess >= ptr[:-1]) & (guess < ptr[1:])
            good = np.zeros(n, dtype=bool)
            good[inside] = acts[guess[inside]] == chosen[inside]
            pairs[good] = guess[good]
            todo = np.flatnonzero(~good)
        for i in todo.tolist():
            j = find_label(acts[ptr[i] : ptr[i + 1]], chosen[i])
            if j < 0:
                raise ValueError(
                    f"policy action {plain(chosen[i])!r} is not feasible in state "
                    f"{plain(self._state_labels[i])!r}; feasible actions: "
                    f"{preview(acts[ptr[i] : ptr[i + 1]])}"
                )
            pairs[i] = ptr[i] + j
        return pairs


# ---------------------------------------------------------------------- helpers
def _to_csr(transitions: Any) -> sp.csr_matrix:
    if sp.issparse(transitions):
        matrix = sp.csr_matrix(transitions, dtype=np.float64, copy=True)
    else:
        dense = _float_array(transitions, "transitions")
        if dense.ndim != 2:
            raise ValueError(
                f"transitions must be a 2-D (n_pairs, n_states) matrix, got shape {dense.shape}"
            )
        matrix = sp.csr_matrix(dense)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    n_pairs, n_states = matrix.shape
    # int32 halves the index traffic of every Bellman sweep; use it whenever it can hold both
    # the column numbers and the offsets.
    index_dtype = np.int32 if max(matrix.nnz, n_states) < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix(
        (
            np.ascontiguousarray(matrix.data, dtype=np.float64),
            np.ascontiguousarray(matrix.indices, dtype=index_dtype),
            np.ascontiguousarray(matrix.indptr, dtype=index_dtype),
        ),
        shape=(n_pairs, n_states),
        copy=False,
    )


def _float_array(values: Any, name: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers: {exc}") from None


def _float_vector(values: Any, name: str) -> np.ndarray:
    arr = _float_array(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per pair), got shape {arr.shape}")
    return arr


def _pair_states(pair_state: Any, n_pairs: int, n_states: int) -> np.ndarray:
    raw = np.asarray(pair_state)
    if raw.ndim != 1 or raw.shape[0] != n_pairs:
        raise ValueError(
            f"pair_state must be 1-D with one state index per pair ({n_pairs} pairs), got "
            f"shape {raw.shape}"
        )
    if raw.dtype.kind not in "iu":
        if raw.dtype.kind == "f" and np.all(np.isfinite(raw)) and np.all(raw == np.round(raw)):
            raw = raw.astype(np.int64)
        else:
            raise ValueError(f"pair_state must hold integer state indices, got dtype {raw.dtype}")
    states = raw.astype(np.int64)
    out = np.flatnonzero((states < 0) | (states >= n_states))
    if out.size:
        p = int(out[0])
        raise ValueError(f"pair_state[{p}] = {states[p]} is not a state index in 0..{n_states - 1}")
    down = np.flatnonzero(states[1:] < states[:-1])
    if down.size:
        p = int(down[0]) + 1
        raise ValueError(
            f"pairs must be grouped by state in increasing state order: pair {p} has state "
            f"index {states[p]} after a pair of state index {states[p - 1]}"
        )
    return states


def _check_pair_tuple(item: Any, k: int) -> None:
    if not (isinstance(item, Sequence) and len(item) == 4 and isinstance(item[3], Mapping)):
        raise ValueError(
            f"pair {k} must be a tuple (state, action, cost, {{next_state: probability}}), "
            f"got {item!r}"
        )
