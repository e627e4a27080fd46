r"""Linear-programming solutions of a discounted MDP.

Primal LP (values are the largest functions that satisfy the Bellman inequalities):

.. math:: \max_V \sum_s V(s) \quad \text{s.t.} \quad
          V(s) - \beta \sum_{s'} P(s' \mid s, a) V(s') \le r(s, a) \;\; \forall (s, a).

Dual LP (discounted state-action frequencies :math:`x`):

.. math:: \min_{x \ge 0} \sum_{s,a} r(s, a)\, x(s, a) \quad \text{s.t.} \quad
          \sum_a x(s', a) - \beta \sum_{s,a} P(s' \mid s, a)\, x(s, a) = \alpha(s')
          \;\; \forall s'.

With :math:`\alpha \equiv 1` they are an LP pair: the primal optimum is :math:`V = v^*`, the
constraint duals of the primal are an optimal :math:`x`, the equality duals of the dual are
:math:`v^*`, and :math:`x(s, a) > 0` only for optimal actions.

Solvers: ``"gurobi"`` (gurobipy's matrix API) or ``"highs"`` (``scipy.optimize.linprog``).
When Gurobi is requested but gurobipy cannot be imported, has no licence, or its size-limited
pip licence refuses the model (error 10010: more than 2000 variables or 2000 constraints),
the LP is solved by HiGHS instead, a :class:`~mdplab.errors.SolverFallbackWarning` says why,
and the result's ``solver`` field records ``"highs"``.

HiGHS solves the formulation it is given (the primal for :func:`solve_lp`): on the warehouse
the primal, with few columns and many rows, was the faster of the two (capacity 800: 4.6 s
against 10.5 s for the dual), and devex pricing brings the 2-million-row primal of capacity
2000 down to about 20 s on two cores.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from mdplab._validation import plain
from mdplab.bellman import greedy
from mdplab.errors import SolverFallbackWarning
from mdplab.mdp import FiniteMDP
from mdplab.results import LPSolution

__all__ = ["LPSolverName", "solve_dual_lp", "solve_lp"]

LPSolverName = Literal["gurobi", "highs"]

# Gurobi error codes that mean "no usable licence for this model" rather than a bug:
# 10009 no/expired licence, 10010 model too large for the size-limited licence.
_LICENCE_ERRORS = frozenset({10009, 10010})
# Tight tolerances: the LP optimum is a policy's exact value, and the policy is read from it.
_TOL = 1e-9


@dataclass(frozen=True)
class _LPResult:
    """What the back-ends return: primal x, row duals, objective, iteration count."""

    x: np.ndarray
    row_duals: np.ndarray
    objective: float
    iterations: int
    solver: str


def solve_lp(mdp: FiniteMDP, solver: LPSolverName = "gurobi") -> LPSolution:
    r"""Solve the primal LP :math:`\max \sum_s V(s)` s.t. the Bellman inequalities.

    Returns an :class:`LPSolution` with ``values`` = the LP's V, ``policy`` greedy for V
    (tie rule of :mod:`mdplab.bellman`), ``occupation`` = the constraint duals (discounted
    state-action frequencies, one per pair), ``solver`` = the solver that actually ran.
    """
    _check_solver(solver)
    a = _balance_matrix(mdp)
    ones = np.ones(mdp.n_states)
    res = _solve(
        solver,
        size=(mdp.n_states, mdp.n_pairs),
        gurobi=lambda gp: _gurobi_primal(gp, a, mdp.costs, ones),
        highs=lambda: _highs_primal(a, mdp.costs, ones),
    )
    values = res.x
    return LPSolution(
        values=values,
        policy=greedy(mdp, values),
        iterations=res.iterations,
        method="lp",
        solver=res.solver,
        objective=res.objective,
        occupation=np.maximum(res.row_duals, 0.0),
        duals=res.row_duals,
    )


def solve_dual_lp(
    mdp: FiniteMDP, initial: Any = None, solver: LPSolverName = "gurobi"
) -> LPSolution:
    r"""Solve the dual LP over discounted state-action frequencies :math:`x \ge 0`.

    ``initial`` is :math:`\alpha`: positive weights per state (sequence or
    ``{state: weight}``), default all ones (the primal objective :math:`\sum_s V(s)`).
    Positive weights make every state visited, so the LP fixes an optimal action everywhere.

    Returns an :class:`LPSolution` with ``occupation`` = x per pair, ``policy`` = the action
    with the largest x in each state (first in pair order on exact ties), ``values`` = the
    equality-constraint duals (:math:`v^*`), ``objective`` = :math:`\sum r x`
    (= :math:`\sum_s \alpha(s) v^*(s)`).
    """
    _check_solver(solver)
    alpha = np.ones(mdp.n_states) if initial is None else mdp.state_vector(initial, "initial")
    nonpositive = np.flatnonzero(alpha <= 0)
    if nonpositive.size:
        s = nonpositive[0]
        raise ValueError(
            f"initial weights must be positive in every state; state "
            f"{plain(mdp.state_labels[s])!r} has weight {float(alpha[s])!r} (with zero weight "
            f"the LP leaves that state's action open)"
        )
    a_t = _balance_matrix(mdp).T.tocsr()
    res = _solve(
        solver,
        size=(mdp.n_pairs, mdp.n_states),
        gurobi=lambda gp: _gurobi_dual(gp, a_t, mdp.costs, alpha),
        highs=lambda: _highs_dual(a_t, mdp.costs, alpha),
    )
    x = np.maximum(res.x, 0.0)
    best = np.maximum.reduceat(x, mdp.state_ptr[:-1])
    hits = np.flatnonzero(x >= np.repeat(best, mdp.action_counts))
    pairs = hits[np.searchsorted(hits, mdp.state_ptr[:-1])]
    return LPSolution(
        values=res.row_duals,
        policy=mdp.pair_action[pairs],
        iterations=res.iterations,
        method="dual_lp",
        solver=res.solver,
        objective=res.objective,
        occupation=x,
        duals=res.row_duals,
    )


# ---------------------------------------------------------------------- dispatch
def _check_solver(solver: Any) -> None:
    if solver not in ("gurobi", "highs"):
        raise ValueError(f"solver must be 'gurobi' or 'highs', got {solver!r}")


def _import_gurobipy() -> ModuleType:
    import gurobipy

    return gurobipy


def _solve(solver: str, *, size: tuple[int, int], gurobi: Any, highs: Any) -> _LPResult:
    """Run Gurobi if asked and able, else HiGHS (warning about the fallback)."""
    if solver == "highs":
        return highs()
    n_vars, n_rows = size
    try:
        gp = _import_gurobipy()
    except ImportError as exc:
        reason = f"gurobipy cannot be imported ({exc})"
    else:
        try:
            return gurobi(gp)
        except gp.GurobiError as exc:
            if exc.errno not in _LICENCE_ERRORS:
                raise
            reason = (
                f"Gurobi refused the model (error {exc.errno}: {exc}); it has {n_vars} "
                f"variables and {n_rows} constraints, and the pip licence allows at most 2000 "
                f"of each"
            )
    warnings.warn(
        f"{reason}; solving the LP with HiGHS instead",
        SolverFallbackWarning,
        stacklevel=3,
    )
    return highs()


def _balance_matrix(mdp: FiniteMDP) -> sp.csr_matrix:
    r"""Rows ``e_s - beta P(.|s,a)`` per pair: the primal constraint matrix."""
    n_pairs = mdp.n_pairs
    own = sp.csr_matrix(
        (np.ones(n_pairs), mdp.pair_state, np.arange(n_pairs + 1)),
        shape=(n_pairs, mdp.n_states),
    )
    return (own - mdp.discount * mdp.transitions).tocsr()


# ---------------------------------------------------------------------- back-ends
@contextmanager
def _gurobi_model(gp: ModuleType) -> Iterator[Any]:
    """A silent Gurobi model with tight tolerances, disposed (with its env) afterwards."""
    env = gp.Env(empty=True)
    try:
        # Silence the licence banner and the log before the environment starts.
        env.setParam("OutputFlag", 0)
        env.start()
        model = gp.Model(env=env)
        try:
            model.Params.FeasibilityTol = _TOL
            model.Params.OptimalityTol = _TOL
            yield model
        finally:
            model.dispose()
    finally:
        env.dispose()


def _gurobi_result(gp: ModuleType, model: Any, x: Any, rows: Any) -> _LPResult:
    model.optimize()
    if model.Status != gp.GRB.OPTIMAL:
        raise RuntimeError(f"Gurobi ended with status {model.Status}, not OPTIMAL")
    return _LPResult(
        x=np.asarray(x.X, dtype=np.float64),
        row_duals=np.asarray(rows.Pi, dtype=np.float64),
        objective=float(model.ObjVal),
        iterations=int(model.IterCount),
        solver="gurobi",
    )


def _gurobi_primal(gp: ModuleType, a: sp.csr_matrix, r: np.ndarray, w: np.ndarray) -> _LPResult:
    with _gurobi_model(gp) as model:
        v = model.addMVar(a.shape[1], lb=-gp.GRB.INFINITY, name="V")
        rows = model.addMConstr(a, v, "<", r)
        model.setObjective(w @ v, gp.GRB.MAXIMIZE)
        # Gurobi's duals of <= rows in a maximisation are >= 0: they are x directly.
        return _gurobi_result(gp, model, v, rows)


def _gurobi_dual(gp: ModuleType, a_t: sp.csr_matrix, r: np.ndarray, alpha: np.ndarray) -> _LPResult:
    with _gurobi_model(gp) as model:
        x = model.addMVar(a_t.shape[1], lb=0.0, name="x")
        rows = model.addMConstr(a_t, x, "=", alpha)
        model.setObjective(r @ x, gp.GRB.MINIMIZE)
        return _gurobi_result(gp, model, x, rows)


def _highs_options() -> dict[str, Any]:
    return {
        "primal_feasibility_tolerance": _TOL,
        "dual_feasibility_tolerance": _TOL,
        # Devex pricing: on the 2-million-row warehouse LP it needs the same ~n_states
        # iterations as the default steepest edge but makes each far cheaper (22 s vs 59 s).
        "simplex_dual_edge_weight_strategy": "devex",
    }


def _highs_primal(a: sp.csr_matrix, r: np.ndarray, w: np.ndarray) -> _LPResult:
    from scipy.optimize import linprog  # deferred: scipy.optimize is slow to import

    res = linprog(-w, A_ub=a, b_ub=r, bounds=(None, None), method="highs", options=_highs_options())
    _check_highs(res)
    return _LPResult(
        x=np.asarray(res.x),
        # linprog minimises -sum V; its marginals are d(obj)/d(b) <= 0, so x = -marginals.
        row_duals=-np.asarray(res.ineqlin.marginals),
        objective=-float(res.fun),
        iterations=int(res.nit),
        solver="highs",
    )


def _highs_dual(a_t: sp.csr_matrix, r: np.ndarray, alpha: np.ndarray) -> _LPResult:
    from scipy.optimize import linprog  # deferred: scipy.optimize is slow to import

    res = linprog(
        r, A_eq=a_t, b_eq=alpha, bounds=(0, None), method="highs", options=_highs_options()
    )
    _check_highs(res)
    return _LPResult(
        x=np.asarray(res.x),
        row_duals=np.asarray(res.eqlin.marginals),
        objective=float(res.fun),
        iterations=int(res.nit),
        solver="highs",
    )


def _check_highs(res: Any) -> None:
    if res.status != 0:
        raise RuntimeError(f"HiGHS did not solve the LP: {res.message}")
