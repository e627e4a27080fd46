r"""Value iteration on the autoscaler's arrays, nominal and robust.

Both run Jacobi sweeps :math:`V_{k+1} = T V_k` from :math:`V_0` (zeros by default) and stop
after the first sweep with :math:`\|V_{k+1} - V_k\|_\infty <` ``tol``; they return
:math:`V_{k+1}`, the policy greedy for it (smallest action among ties), the number of sweeps
and the sup-norm changes. Since :math:`T` is a :math:`\gamma`-contraction the returned values
are within :math:`\gamma\,\text{tol} / (1 - \gamma)` of the fixed point (0.19 for
:math:`\gamma = 0.95`, tol = 0.01).

Nominal: :math:`(TV)(s) = \min_a C(s, a) + \gamma \sum_{s'} P(s' \mid s, a) V(s')`, swept
by :func:`mdplab.bellman_update`.

Robust value iteration lives in :mod:`mdplab.autoscaler.robust` (standalone, so that
the lab can show it).
"""

from __future__ import annotations

import numpy as np

from mdplab import FiniteMDP, bellman_update, greedy
from mdplab.autoscaler.robust import MAX_SWEEPS, robust_q_values, robust_value_iteration

__all__ = ["MAX_SWEEPS", "robust_q_values", "robust_value_iteration", "value_iteration"]


def value_iteration(
    C: np.ndarray,
    P: np.ndarray,
    gamma: float = 0.95,
    tol: float = 0.01,
    V0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """``(V, policy, iterations, errors)``: nominal value iteration, rule in the docstring."""
    mdp = FiniteMDP.from_dense(C, P, gamma)
    V = np.zeros(mdp.n_states) if V0 is None else np.array(V0, dtype=float)
    errors: list[float] = []
    while len(errors) < MAX_SWEEPS:
        V_new = bellman_update(mdp, V)[0]
        errors.append(float(np.max(np.abs(V_new - V))))
        V = V_new
        if errors[-1] < tol:
            break
    return V, greedy(mdp, V).astype(np.int64), len(errors), np.array(errors)
