"""Result objects returned by the solvers.

All are frozen dataclasses (fields cannot be reassigned) compared by identity. Every result
has ``values`` (over states), ``policy`` (action labels per state, in the model's own units),
``iterations``, ``method`` and ``converged``; ``np.asarray(result)`` gives ``values``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FiniteHorizonSolution",
    "LPSolution",
    "PolicyIterationStep",
    "Solution",
]


@dataclass(frozen=True, eq=False)
class Solution:
    """Values and policy found by a solver.

    Attributes
    ----------
    values:
        Value of every state (for exact methods: the values of ``policy``).
    policy:
        Action label chosen in every state.
    iterations:
        Method-specific count: Bellman sweeps (value iteration), improvement steps
        (modified policy iteration), policy evaluations (policy iteration), simplex/barrier
        iterations (LP), 1 for a single exact evaluation.
    method:
        Name of the method that produced the result.
    converged:
        True when the method's stopping rule was met (always True for exact methods).
    history:
        Value iteration / modified PI: ``||v_{k+1} - v_k||_inf`` of every step, as an
        array. Policy iteration: a tuple of :class:`PolicyIterationStep`. Otherwise empty.
    epsilon:
        The epsilon of the stopping rule, when there was one.
    """

    values: np.ndarray
    policy: np.ndarray
    iterations: int
    method: str
    converged: bool = True
    history: np.ndarray | tuple[PolicyIterationStep, ...] = field(default_factory=tuple)
    epsilon: float | None = None

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("a copy is always made when converting a Solution to an array")
        return np.array(self.values, dtype=dtype, copy=True)


@dataclass(frozen=True, eq=False)
class PolicyIterationStep:
    """One step of policy iteration: the policy evaluated and its exact values."""

    policy: np.ndarray
    values: np.ndarray


@dataclass(frozen=True, eq=False)
class LPSolution(Solution):
    """Solution of the primal or dual linear program.

    Attributes
    ----------
    solver:
        The solver that actually ran: ``"gurobi"`` or ``"highs"`` (after a fallback this
        differs from the one requested).
    objective:
        Optimal objective of the LP that was solved.
    occupation:
        Discounted state-action frequencies ``x(s, a) >= 0``, one per pair (primal LP: the
        constraint duals; dual LP: its variables).
    duals:
        Raw dual values of the LP solved: per pair for the primal, per state (``V``) for the
        dual.
    """

    solver: str = ""
    objective: float = float("nan")
    occupation: np.ndarray | None = None
    duals: np.ndarray | None = None

    @property
    def x(self) -> np.ndarray | None:
        """Alias of ``occupation``: the dual LP's variables x(s, a), one per pair."""
        return self.occupation


@dataclass(frozen=True, eq=False)
class FiniteHorizonSolution(Solution):
    """Backward induction over stages ``0 .. N``.

    ``values`` has shape ``(N + 1, n_states)`` with ``values[n]`` = :math:`f_n` and
    ``values[N]`` the terminal values; ``policy`` has shape ``(N, n_states)`` with
    ``policy[n]`` the decisions at stage ``n``. ``iterations`` equals the horizon ``N``.
    """

    discount: float = 1.0

    @property
    def horizon(self) -> int:
        """The number of stages ``N``."""
        return int(self.policy.shape[0])

    @property
    def decisions(self) -> np.ndarray:
        """Alias of ``policy``: the decision of every stage and state."""
        return self.policy
