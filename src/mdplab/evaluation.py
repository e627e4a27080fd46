r"""Exact policy evaluation.

The value of a stationary policy :math:`\pi` solves the linear system

.. math:: (I - \beta P_\pi)\, v = r_\pi,

where :math:`r_\pi(s) = r(s, \pi(s))` and :math:`P_\pi(s, s') = P(s' \mid s, \pi(s))`. The
matrix is non-singular for :math:`\beta < 1` (its inverse is :math:`\sum_t \beta^t P_\pi^t`).
Small or dense systems go to LAPACK (``numpy.linalg.solve``); large sparse ones to SuperLU
(``scipy.sparse.linalg.splu``), which is much faster when :math:`P_\pi` has few entries per
row: about 2 ms instead of 0.1 s for a policy of the 2001-state warehouse.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mdplab._validation import check_discount
from mdplab.mdp import FiniteMDP
from mdplab.results import Solution

__all__ = ["LinearSolver", "evaluate", "evaluate_pairs"]

LinearSolver = Literal["auto", "dense", "sparse"]

# Below this many states LAPACK on the dense matrix is as fast as anything else.
DENSE_MAX_STATES = 500
# Above this fraction of non-zeros in P_pi, sparse LU has no advantage over dense LU.
SPARSE_MAX_DENSITY = 0.02


def evaluate(mdp: FiniteMDP, policy: Any, *, linear_solver: LinearSolver = "auto") -> Solution:
    r"""Exact values :math:`v_\pi = (I - \beta P_\pi)^{-1} r_\pi` of a stationary policy.

    ``policy`` is a sequence of action labels (one per state) or a mapping
    ``{state_label: action_label}``; an infeasible action raises ValueError naming the state
    and its feasible actions. ``linear_solver`` picks LAPACK (``"dense"``), SuperLU
    (``"sparse"``) or chooses by size and density (``"auto"``).
    """
    pairs = mdp.policy_pairs(policy)
    values = evaluate_pairs(mdp, pairs, linear_solver=linear_solver)
    return Solution(
        values=values,
        policy=mdp.pair_action[pairs],
        iterations=1,
        method="evaluate",
    )


def evaluate_pairs(
    mdp: FiniteMDP,
    pairs: np.ndarray,
    *,
    discount: float | None = None,
    linear_solver: LinearSolver = "auto",
) -> np.ndarray:
    r"""Solve :math:`(I - \beta P_\pi) v = r_\pi` for the policy choosing pair ``pairs[s]``."""
    beta = mdp.discount if discount is None else check_discount(discount)
    if linear_solver not in ("auto", "dense", "sparse"):
        raise ValueError(
            f"linear_solver must be 'auto', 'dense' or 'sparse', got {linear_solver!r}"
        )
    r_pi = mdp.costs[pairs]
    p_pi = mdp.transitions[pairs]
    n = mdp.n_states
    if beta == 0.0:
        return r_pi.copy()
    if linear_solver == "auto":
        sparse_pays = n > DENSE_MAX_STATES and p_pi.nnz <= SPARSE_MAX_DENSITY * n * n
        linear_solver = "sparse" if sparse_pays else "dense"
    if linear_solver == "dense":
        a = -beta * p_pi.toarray()
        a[np.diag_indices(n)] += 1.0
        return np.linalg.solve(a, r_pi)
    a = (sp.identity(n, format="csr") - beta * p_pi).tocsc()
    return spla.splu(a).solve(r_pi)
