r"""mdplab: reference library for infinite-horizon discounted MDPs (cost minimisation).

Models
    ``FiniteMDP(pair_state, pair_action, costs, transitions, discount, state_labels=None)``
        A finite MDP stored as state-action pairs (CSR transitions); also
        ``FiniteMDP.from_dense(costs[S, A], P[S, A, S'], discount, state_labels=None,
        action_labels=None)`` and ``FiniteMDP.from_pairs([(s, a, cost, {s': p}), ...],
        discount, state_labels=None)``; ``to_dense()``, ``actions_of``, ``pair_index``,
        ``cost``, ``transition_row``, ``state_index``, ``policy_pairs``, ``state_vector``.
    ``warehouse(capacity=3, setup_cost=4, unit_cost=1, holding_cost=1, demand={1: .5, 2: .5},
    discount=0.8, holding_on="start")``
        The course's inventory model (states = starting stock, actions = production).

Bellman operator (tie rule: first action within 1e-9 (1 + |min|) of the minimum)
    ``q_values(mdp, v)``, ``bellman_update(mdp, v) -> (Tv, policy)``, ``greedy(mdp, v)``
    (alias ``extract_policy``).

Solvers (each returns a frozen :class:`Solution` with ``values``, ``policy`` (action labels),
``iterations``, ``method``, ``converged``, ``history``; ``np.asarray(result)`` is ``values``)
    ``evaluate(mdp, policy, *, linear_solver="auto")``   exact: (I - beta P_pi) v = r_pi
    ``policy_iteration(mdp, policy0=None, max_iter=1000)``  history: PolicyIterationStep's
    ``value_iteration(mdp, epsilon=None, max_iter=None, v0=None)``
        stops at the first k with ||v_{k+1} - v_k|| < epsilon (1 - beta) / (2 beta);
        default epsilon 1e-6; history: the sup-norm differences
    ``modified_policy_iteration(mdp, k=20, epsilon=None, v0=None, max_iter=None)``
    ``solve_lp(mdp, solver="gurobi")``                   primal LP  -> :class:`LPSolution`
    ``solve_dual_lp(mdp, initial=None, solver="gurobi")`` dual LP   -> :class:`LPSolution`
        (``solver``: the one that ran; ``occupation`` / ``x``: x(s, a); ``duals``)
    ``backward_induction(mdp, horizon=None, terminal=None, discount=None)``
        -> :class:`FiniteHorizonSolution` (``values`` (N+1, S), ``policy`` (N, S))
The Bellman-based methods take ``backend="numba"`` (fused compiled kernel, default; large
models are swept by several threads, ``NUMBA_NUM_THREADS`` or all usable CPUs) or
``"numpy"`` (plain reference implementation).

Warnings: :class:`SolverFallbackWarning` (Gurobi unavailable or its size-limited licence
refused the model; HiGHS was used), :class:`ConvergenceWarning` (an iteration cap was reached
before the epsilon rule). Bad input raises ``ValueError`` with a message naming what is wrong
and where.
"""

from mdplab.bellman import bellman_update, extract_policy, greedy, q_values
from mdplab.errors import ConvergenceWarning, SolverFallbackWarning
from mdplab.evaluation import evaluate
from mdplab.finite_horizon import backward_induction
from mdplab.lp import solve_dual_lp, solve_lp
from mdplab.mdp import FiniteMDP
from mdplab.policy_iteration import policy_iteration
from mdplab.results import FiniteHorizonSolution, LPSolution, PolicyIterationStep, Solution
from mdplab.value_iteration import modified_policy_iteration, value_iteration
from mdplab.warehouse import warehouse

__all__ = [
    "ConvergenceWarning",
    "FiniteHorizonSolution",
    "FiniteMDP",
    "LPSolution",
    "PolicyIterationStep",
    "Solution",
    "SolverFallbackWarning",
    "backward_induction",
    "bellman_update",
    "evaluate",
    "extract_policy",
    "greedy",
    "modified_policy_iteration",
    "policy_iteration",
    "q_values",
    "solve_dual_lp",
    "solve_lp",
    "value_iteration",
    "warehouse",
]
