r"""Value iteration and Puterman's modified policy iteration.

Both use the epsilon-optimal stopping rule: with the threshold

.. math:: \delta = \varepsilon (1 - \beta) / (2 \beta)

(:math:`\delta = \infty` when :math:`\beta = 0`), iteration stops at the first step whose
Bellman residual :math:`\|T v_k - v_k\|_\infty` is below :math:`\delta`, and returns
:math:`v_{k+1} = T v_k` with the policy :math:`\pi` greedy for :math:`v_{k+1}`. Then

.. math:: \|v_{k+1} - v^*\|_\infty < \varepsilon / 2, \qquad
          \|v_\pi - v^*\|_\infty < \varepsilon,

because :math:`\|v - v^*\| \le \|Tv - v\| / (1 - \beta)` for any :math:`v` and
:math:`\|T v_{k+1} - v_{k+1}\| \le \beta \|v_{k+1} - v_k\|` (Puterman, Thm 6.3.1).

Caps: ``max_iter`` bounds the number of steps. With only ``epsilon`` given, value iteration
is capped a little above the a-priori bound :math:`k \le 1 + \log(\delta / d_1) / \log \beta`
(:math:`d_1` the first residual) that contraction guarantees; reaching it means rounding
error keeps the residual above a too-small ``epsilon``, which is reported with a
:class:`~mdplab.errors.ConvergenceWarning`.
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np

from mdplab._validation import check_int, check_real
from mdplab.bellman import Backend, Sweeper
from mdplab.errors import ConvergenceWarning
from mdplab.mdp import FiniteMDP
from mdplab.results import Solution

__all__ = ["DEFAULT_EPSILON", "DEFAULT_MPI_SWEEPS", "modified_policy_iteration", "value_iteration"]

#: Epsilon used when neither ``epsilon`` nor ``max_iter`` is given.
DEFAULT_EPSILON = 1e-6
#: Partial-evaluation sweeps per improvement step of modified policy iteration.
DEFAULT_MPI_SWEEPS = 20
# Extra steps on top of the a-priori bound, against rounding in the logarithms.
_CAP_MARGIN = 10


def value_iteration(
    mdp: FiniteMDP,
    epsilon: float | None = None,
    max_iter: int | None = None,
    v0: Any = None,
    *,
    backend: Backend = "numba",
) -> Solution:
    r"""Value iteration :math:`v_{k+1} = T v_k` from ``v0`` (zeros by default).

    * ``epsilon`` given: stop at the first ``k`` with
      :math:`\|v_{k+1} - v_k\|_\infty < \varepsilon (1-\beta) / (2\beta)` (module docstring);
      ``max_iter``, if also given, caps the number of sweeps.
    * only ``max_iter`` given: exactly ``max_iter`` sweeps (``converged`` is then False).
    * neither: ``epsilon = DEFAULT_EPSILON`` (1e-6).

    Returns a :class:`Solution` with ``values`` :math:`= v_K`, ``policy`` greedy for
    :math:`v_K`, ``iterations`` :math:`= K` (number of sweeps) and ``history`` the array of
    :math:`\|v_{k+1} - v_k\|_\infty`, k = 0..K-1.
    """
    eps, cap = _stopping(epsilon, max_iter)
    sweeper = Sweeper(mdp, backend)
    beta = mdp.discount
    threshold = _threshold(eps, beta)
    v = _start(mdp, v0)
    new_v = np.empty_like(v)
    pairs = np.empty(mdp.n_states, dtype=np.int64)
    diffs: list[float] = []
    converged = False
    limit = cap
    while limit is None or len(diffs) < limit:
        sweeper.sweep(v, new_v, pairs, beta)
        diff = sweeper.sup_diff(new_v, v)
        diffs.append(diff)
        v, new_v = new_v, v
        if eps is not None and diff < threshold:
            converged = True
            break
        if limit is None:
            limit = _a_priori_cap(diff, threshold, beta)
    if eps is not None and not converged:
        _warn_cap("value_iteration", len(diffs), diffs, threshold, eps)
    # The epsilon guarantee is for the policy greedy with respect to the returned values.
    sweeper.sweep(v, new_v, pairs, beta)
    return Solution(
        values=v,
        policy=mdp.pair_action[pairs],
        iterations=len(diffs),
        method="value_iteration",
        converged=converged,
        history=np.array(diffs),
        epsilon=eps,
    )


def modified_policy_iteration(
    mdp: FiniteMDP,
    k: int = DEFAULT_MPI_SWEEPS,
    epsilon: float | None = None,
    v0: Any = None,
    max_iter: int | None = None,
    *,
    backend: Backend = "numba",
) -> Solution:
    r"""Puterman's modified policy iteration with ``k`` partial-evaluation sweeps.

    Step n: :math:`u_0 = T v_n` with :math:`\pi_{n+1}` greedy for :math:`v_n`; stop if
    :math:`\|u_0 - v_n\|_\infty < \varepsilon(1-\beta)/(2\beta)` and return :math:`u_0` with
    the policy greedy for it (same guarantee as value iteration); otherwise apply the
    fixed-policy operator :math:`u_{j+1} = r_{\pi_{n+1}} + \beta P_{\pi_{n+1}} u_j` for
    ``j < k`` and set :math:`v_{n+1} = u_k`. ``k = 0`` is value iteration; ``k -> infinity``
    is policy iteration.

    ``epsilon``/``max_iter`` behave as in :func:`value_iteration`, counting improvement steps.
    ``history`` holds :math:`\|T v_n - v_n\|_\infty` per step.
    """
    sweeps = check_int(k, "k", minimum=0)
    eps, cap = _stopping(epsilon, max_iter)
    sweeper = Sweeper(mdp, backend)
    beta = mdp.discount
    threshold = _threshold(eps, beta)
    v = _start(mdp, v0)
    u = np.empty_like(v)
    spare = np.empty_like(v)
    pairs = np.empty(mdp.n_states, dtype=np.int64)
    diffs: list[float] = []
    converged = False
    limit = cap
    while limit is None or len(diffs) < limit:
        sweeper.sweep(v, u, pairs, beta)
        diff = sweeper.sup_diff(u, v)
        diffs.append(diff)
        if eps is not None and diff < threshold:
            v, u = u, v
            converged = True
            break
        for _ in range(sweeps):
            sweeper.policy_sweep(pairs, u, spare, beta)
            u, spare = spare, u
        v, u = u, v
        if limit is None:
            # The MPI error contracts by beta per step only up to a factor 2 (1 + beta) /
            # (1 - beta) (Puterman, sec. 6.5), which the slack absorbs.
            slack = 2.0 * (1.0 + beta) / (1.0 - beta)
            limit = _a_priori_cap(diff, threshold, beta, slack=slack)
    if eps is not None and not converged:
        _warn_cap("modified_policy_iteration", len(diffs), diffs, threshold, eps)
    sweeper.sweep(v, u, pairs, beta)
    return Solution(
        values=v,
        policy=mdp.pair_action[pairs],
        iterations=len(diffs),
        method="modified_policy_iteration",
        converged=converged,
        history=np.array(diffs),
        epsilon=eps,
    )


def _stopping(epsilon: float | None, max_iter: int | None) -> tuple[float | None, int | None]:
    if epsilon is None and max_iter is None:
        return DEFAULT_EPSILON, None
    eps = None
    if epsilon is not None:
        eps = check_real(epsilon, "epsilon")
        if eps <= 0:
            raise ValueError(f"epsilon must be > 0, got {eps!r}")
    cap = None if max_iter is None else check_int(max_iter, "max_iter", minimum=0)
    return eps, cap


def _threshold(eps: float | None, beta: float) -> float:
    if eps is None:
        return -math.inf
    # beta = 0: T v does not depend on v, so one sweep is exact and any residual qualifies.
    return math.inf if beta == 0.0 else eps * (1.0 - beta) / (2.0 * beta)


def _start(mdp: FiniteMDP, v0: Any) -> np.ndarray:
    return np.zeros(mdp.n_states) if v0 is None else mdp.state_vector(v0, "v0")


def _a_priori_cap(first_diff: float, threshold: float, beta: float, *, slack: float = 1.0) -> int:
    r"""Steps after which contraction must have met the rule, with a safety margin.

    Value iteration: residuals obey :math:`d_{k+1} \le \beta^k d_1`, so the rule fires by
    step :math:`1 + \log(\delta / d_1) / \log \beta`. ``slack`` multiplies the
    residual allowed by the bound (modified PI only contracts up to a constant factor).
    """
    ratio = max(threshold / (slack * first_diff), sys.float_info.min) if first_diff > 0 else 1.0
    bound = max(1.0, 1.0 + math.log(ratio) / math.log(beta))
    return math.ceil(bound * 1.1) + _CAP_MARGIN


def _warn_cap(method: str, steps: int, diffs: list[float], threshold: float, eps: float) -> None:
    warnings.warn(
        f"{method} stopped after {steps} steps with residual {diffs[-1]:.3e} above the "
        f"threshold {threshold:.3e} for epsilon={eps:g}; the result is not guaranteed to be "
        f"epsilon-optimal (raise max_iter, or epsilon if rounding error is the limit)",
        ConvergenceWarning,
        stacklevel=3,
    )
