"""Warning classes raised by :mod:`mdplab` (errors in input are always ``ValueError``)."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "SolverFallbackWarning"]


class SolverFallbackWarning(UserWarning):
    """An LP was solved by HiGHS because Gurobi was unavailable or refused the model."""


class ConvergenceWarning(RuntimeWarning):
    """An iterative method stopped at its iteration cap before its stopping rule was met."""
