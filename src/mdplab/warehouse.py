r"""The course's warehouse (single-item inventory) model.

States are starting inventories :math:`s = 0, \dots, C`; the action is the production
quantity :math:`a \ge 0`. Demand :math:`D` has a finite pmf on non-negative integers and must
always be met, and the ending inventory :math:`s + a - D` may never exceed the capacity, so

.. math:: A(s) = \{ a \ge 0 : s + a \ge \max D,\; s + a - \min D \le C \}.

The next state is :math:`s' = s + a - D`. The one-period cost is

.. math:: r(s, a) = K\,[a > 0] + c\,a + h \cdot H(s, a),

with setup cost :math:`K`, unit cost :math:`c`, holding cost :math:`h` and
:math:`H(s, a) = s` (``holding_on="start"``, the convention of the published course numbers)
or :math:`H(s, a) = E[s + a - D] = s + a - E[D]` (``holding_on="end"``).

With the defaults (C = 3, K = 4, c = h = 1, D uniform on {1, 2}, beta = 0.8) the optimal
policy is (4, 3, 0, 0) with :math:`v^* = (1290, 1290, 1130, 1115)/49`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from mdplab._validation import (
    ROW_SUM_TOL,
    check_discount,
    check_int,
    check_real,
    preview,
)
from mdplab.mdp import FiniteMDP

__all__ = ["warehouse"]


def warehouse(
    capacity: int = 3,
    setup_cost: float = 4,
    unit_cost: float = 1,
    holding_cost: float = 1,
    demand: Mapping[int, float] | None = None,
    discount: float = 0.8,
    holding_on: Literal["start", "end"] = "start",
) -> FiniteMDP:
    r"""Build the warehouse MDP (see the module docstring for the model).

    Parameters
    ----------
    capacity:
        :math:`C \ge 0`; states are ``0 .. capacity``.
    setup_cost, unit_cost, holding_cost:
        :math:`K`, :math:`c`, :math:`h` (any finite reals).
    demand:
        pmf ``{value: probability}`` with non-negative integer values; defaults to
        ``{1: 0.5, 2: 0.5}``. Values with probability 0 are dropped.
    discount:
        :math:`\beta \in [0, 1)`.
    holding_on:
        ``"start"`` charges :math:`h s`; ``"end"`` charges :math:`h\,E[s + a - D]`.

    Returns a :class:`FiniteMDP` with state labels ``0 .. capacity`` and action labels equal
    to production quantities, ascending within each state. Built with vectorised numpy: the
    two million pairs of capacity 2000 take well under a second.
    """
    cap = check_int(capacity, "capacity", minimum=0)
    k_setup = check_real(setup_cost, "setup_cost")
    c_unit = check_real(unit_cost, "unit_cost")
    h_hold = check_real(holding_cost, "holding_cost")
    beta = check_discount(discount)
    if holding_on not in ("start", "end"):
        raise ValueError(f"holding_on must be 'start' or 'end', got {holding_on!r}")
    values, probs = _demand_pmf({1: 0.5, 2: 0.5} if demand is None else demand)

    d_min, d_max = int(values[0]), int(values[-1])
    states = np.arange(cap + 1, dtype=np.int64)
    lowest = np.maximum(0, d_max - states)  # meet the largest demand
    highest = cap + d_min - states  # keep the fullest ending inventory within capacity
    counts = highest - lowest + 1
    if np.any(counts <= 0):
        stuck = states[counts <= 0]
        raise ValueError(
            f"demand spread max - min = {d_max} - {d_min} = {d_max - d_min} exceeds the "
            f"capacity {cap}: no production quantity meets every demand and keeps the ending "
            f"inventory within capacity in state(s) {preview(stuck)}"
        )

    ptr = np.zeros(cap + 2, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    n_pairs = int(ptr[-1])
    pair_state = np.repeat(states, counts)
    # Within a state, actions run lowest .. highest: offset from the state's first pair.
    pair_action = np.arange(n_pairs, dtype=np.int64) - np.repeat(ptr[:-1] - lowest, counts)
    stock = pair_state + pair_action  # inventory after production, before demand

    held = pair_state.astype(np.float64)
    if holding_on == "end":
        held = stock - float(np.dot(values, probs))
    costs = k_setup * (pair_action > 0) + c_unit * pair_action + h_hold * held

    m = values.shape[0]
    index_dtype = np.int32 if n_pairs * m < np.iinfo(np.int32).max else np.int64
    # Demand values are sorted ascending, so next states s + a - d come out descending;
    # reverse the columns to keep CSR indices sorted.
    indices = (stock[:, None] - values[None, ::-1]).astype(index_dtype).ravel()
    data = np.tile(probs[::-1], n_pairs)
    indptr = np.arange(0, n_pairs * m + 1, m, dtype=index_dtype)
    transitions = sp.csr_matrix((data, indices, indptr), shape=(n_pairs, cap + 1))
    return FiniteMDP(pair_state, pair_action, costs, transitions, beta, state_labels=states)


def _demand_pmf(demand: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated demand support (ascending ints) and probabilities (positive, sum 1)."""
    if not isinstance(demand, Mapping) or not demand:
        raise ValueError(f"demand must be a non-empty dict {{value: probability}}, got {demand!r}")
    pmf: dict[int, float] = {}
    for value, prob in demand.items():
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"demand value {value!r} must be a non-negative integer")
        if not isinstance(value, Integral) and float(value) != int(value):
            raise ValueError(f"demand value {value!r} must be a non-negative integer")
        if value < 0:
            raise ValueError(f"demand value {value!r} must be a non-negative integer")
        if isinstance(prob, bool) or not isinstance(prob, Real) or not math.isfinite(prob):
            raise ValueError(f"probability of demand {value!r} must be a real number, got {prob!r}")
        if prob < 0:
            raise ValueError(f"probability of demand {value!r} is negative ({prob!r})")
        if int(value) in pmf:
            raise ValueError(f"demand value {int(value)} is given twice")
        pmf[int(value)] = float(prob)
    total = math.fsum(pmf.values())
    if abs(total - 1.0) > ROW_SUM_TOL:
        raise ValueError(f"demand probabilities sum to {total!r}, not 1")
    support = sorted(v for v, p in pmf.items() if p > 0)
    return (
        np.array(support, dtype=np.int64),
        np.array([pmf[v] for v in support], dtype=np.float64),
    )
