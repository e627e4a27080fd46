r"""Robust value iteration for the autoscaler: how far can the value move when each
transition row may be off by delta in L1 distance?

This module stands alone (numpy only), so that the lab can show it.

Robust (costs, so nature maximises): the next-state distribution may be any :math:`q` on the
support of :math:`p = P(\cdot \mid s, a)` with :math:`\|q - p\|_1 \le \delta`,

.. math::
    (T_\delta V)(s) = \min_a C(s, a) + \gamma \max_{q} \sum_{s'} q(s') V(s').

The inner maximum moves :math:`\min(\delta/2, \cdot)` of probability from the successors
with the lowest values (lowest first) to the successor of highest value on the support; with
:math:`\delta = 0` it is the nominal operator, and :math:`T_\delta V` grows with
:math:`\delta`. :math:`T_\delta` is still a :math:`\gamma`-contraction.

Sweeps stop after the first with :math:`\|V_{k+1} - V_k\|_\infty <` ``tol``, as in
nominal value iteration.
"""

import numpy as np

MAX_SWEEPS = 100_000


def robust_q_values(
    C: np.ndarray, P: np.ndarray, V: np.ndarray, gamma: float, delta: float, support: np.ndarray
) -> np.ndarray:
    """``Q[s, a] = C + gamma * (worst expected V over the L1 ball of radius delta)``."""
    order = np.argsort(V, kind="stable")
    p_sorted = P[:, :, order]
    # Mass taken from each successor, cheapest values first, until delta / 2 is moved.
    budget = delta / 2.0
    cumulative = np.cumsum(p_sorted, axis=2)
    taken = np.minimum(cumulative, budget) - np.minimum(cumulative - p_sorted, budget)
    top = np.max(np.where(support, V, -np.inf), axis=2)
    top = np.where(np.isfinite(top), top, 0.0)
    worst = (p_sorted - taken) @ V[order] + taken.sum(axis=2) * top
    return C + gamma * worst  # infeasible pairs: C = inf


def robust_value_iteration(
    C: np.ndarray,
    P: np.ndarray,
    gamma: float = 0.95,
    delta: float = 0.0,
    tol: float = 0.01,
    support: np.ndarray | None = None,
    V0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(V_robust, policy, iterations)`` for the L1 ball of radius ``delta``.

    ``support[s, a, s']`` says where nature may put mass (default: where P > 0).
    """
    if not 0.0 <= delta <= 2.0:
        raise ValueError(f"delta is an L1 radius between 0 and 2, got {delta}")
    C, P = np.asarray(C, dtype=float), np.asarray(P, dtype=float)
    support = P > 0 if support is None else np.asarray(support, dtype=bool)
    V = np.zeros(C.shape[0]) if V0 is None else np.array(V0, dtype=float)
    sweeps = 0
    while sweeps < MAX_SWEEPS:
        sweeps += 1
        V_new = robust_q_values(C, P, V, gamma, delta, support).min(axis=1)
        change = np.max(np.abs(V_new - V))
        V = V_new
        if change < tol:
            break
    Q = robust_q_values(C, P, V, gamma, delta, support)
    return V, np.argmin(Q, axis=1), sweeps
