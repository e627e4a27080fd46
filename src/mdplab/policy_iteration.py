r"""Howard's policy iteration.

Starting from :math:`\pi_0`, repeat

1. evaluation: :math:`v_k = (I - \beta P_{\pi_k})^{-1} r_{\pi_k}` (exact linear solve);
2. improvement: :math:`\pi_{k+1}(s) \in \arg\min_a Q_{v_k}(s, a)`, keeping
   :math:`\pi_k(s)` whenever it is tied with the minimum (tie rule of :mod:`mdplab.bellman`),

until :math:`\pi_{k+1} = \pi_k`. Keeping tied actions makes every change a strict
improvement, so no policy repeats and the method stops after finitely many steps with an
optimal policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mdplab._validation import check_int
from mdplab.bellman import Backend, Sweeper
from mdplab.evaluation import LinearSolver, evaluate_pairs
from mdplab.mdp import FiniteMDP
from mdplab.results import PolicyIterationStep, Solution

__all__ = ["policy_iteration"]

#: Default cap on the number of policy evaluations.
DEFAULT_PI_MAX_ITER = 1000


def policy_iteration(
    mdp: FiniteMDP,
    policy0: Any = None,
    max_iter: int = DEFAULT_PI_MAX_ITER,
    *,
    backend: Backend = "numba",
    linear_solver: LinearSolver = "auto",
) -> Solution:
    r"""Solve ``mdp`` by policy iteration.

    Parameters
    ----------
    policy0:
        Initial policy (action labels per state, or ``{state: action}``); default: the first
        feasible action of every state.
    max_iter:
        Maximum number of policy evaluations; the result has ``converged=False`` when the
        policy was still changing after that many.

    Returns a :class:`Solution` whose ``iterations`` counts policy evaluations (the last one
    confirms the policy is stable) and whose ``history`` is the tuple of
    :class:`PolicyIterationStep` (policy, values) in order.
    """
    cap = check_int(max_iter, "max_iter", minimum=1)
    pairs = mdp.state_ptr[:-1].copy() if policy0 is None else mdp.policy_pairs(policy0)
    sweeper = Sweeper(mdp, backend)
    improved = np.empty(mdp.n_states, dtype=np.int64)
    scratch = np.empty(mdp.n_states)
    steps: list[PolicyIterationStep] = []
    converged = False
    for _ in range(cap):
        values = evaluate_pairs(mdp, pairs, linear_solver=linear_solver)
        steps.append(PolicyIterationStep(policy=mdp.pair_action[pairs], values=values))
        sweeper.sweep(values, scratch, improved, mdp.discount, keep=pairs)
        if np.array_equal(improved, pairs):
            converged = True
            break
        pairs, improved = improved, pairs
    # Without convergence, report the last policy that was evaluated, with its own values.
    last = steps[-1]
    return Solution(
        values=last.values,
        policy=last.policy,
        iterations=len(steps),
        method="policy_iteration",
        converged=converged,
        history=tuple(steps),
    )
