r"""Finite-horizon problems by backward induction.

For stages :math:`n = N-1, \dots, 0` and terminal values :math:`f_N`,

.. math:: f_n(s) = \min_{a \in A(s)} \Big\{ r_n(s, a)
          + \beta \sum_{s'} P_n(s' \mid s, a)\, f_{n+1}(s') \Big\}.

A deterministic DP :math:`f_n(s) = \min_x [h_n(s, x) + f_{n+1}(g_n(s, x))]` is the special
case :math:`P_n(g_n(s, x) \mid s, x) = 1`, :math:`r_n = h_n`, usually with ``discount=1``;
build it with :meth:`FiniteMDP.from_pairs` using ``{g(s, x): 1.0}`` as the law. Stage-dependent
data are given as one model per stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mdplab._validation import check_discount, check_int
from mdplab.bellman import Backend, Sweeper
from mdplab.mdp import FiniteMDP
from mdplab.results import FiniteHorizonSolution

__all__ = ["backward_induction"]


def backward_induction(
    mdp: FiniteMDP | Sequence[FiniteMDP],
    horizon: int | None = None,
    terminal: Any = None,
    discount: float | None = None,
    *,
    backend: Backend = "numba",
) -> FiniteHorizonSolution:
    r"""Solve a finite-horizon problem with ``horizon`` stages by backward induction.

    Parameters
    ----------
    mdp:
        One model used at every stage, or a sequence of ``N`` models (stage ``n`` uses
        ``mdp[n]``) with the same state labels.
    horizon:
        Number of stages ``N >= 0``; required for a single model, defaults to the length of
        a sequence.
    terminal:
        :math:`f_N` per state (sequence or ``{state: value}``), default zeros.
    discount:
        :math:`\beta \in [0, 1]` used at every stage, overriding the models' own discount
        (the deterministic DP review uses 1).

    Returns a :class:`FiniteHorizonSolution`: ``values[n]`` = :math:`f_n` (shape
    ``(N + 1, n_states)``), ``policy[n]`` = minimising actions at stage ``n`` (shape
    ``(N, n_states)``; ties broken by the tie rule of :mod:`mdplab.bellman`).
    """
    stages = _stage_models(mdp, horizon)
    first = stages[0] if stages else mdp
    if not isinstance(first, FiniteMDP):
        raise ValueError(f"mdp must be a FiniteMDP or a sequence of them, got {first!r}")
    n_stages = len(stages)
    beta = None if discount is None else check_discount(discount, allow_one=True)
    n_states = first.n_states
    values = np.empty((n_stages + 1, n_states))
    values[n_stages] = (
        np.zeros(n_states) if terminal is None else first.state_vector(terminal, "terminal")
    )
    backwards: list[np.ndarray] = []  # decisions of stages N-1, N-2, ..., 0
    pairs = np.empty(n_states, dtype=np.int64)
    for n in range(n_stages - 1, -1, -1):
        stage = stages[n]
        stage_beta = stage.discount if beta is None else beta
        Sweeper(stage, backend).sweep(values[n + 1], values[n], pairs, stage_beta)
        backwards.append(stage.pair_action[pairs])
    policy = (
        np.stack(backwards[::-1])
        if backwards
        else np.empty((0, n_states), dtype=first.pair_action.dtype)
    )
    return FiniteHorizonSolution(
        values=values,
        policy=policy,
        iterations=n_stages,
        method="backward_induction",
        discount=first.discount if beta is None else beta,
    )


def _stage_models(mdp: Any, horizon: int | None) -> list[FiniteMDP]:
    if isinstance(mdp, FiniteMDP):
        if horizon is None:
            raise ValueError("horizon is required when a single FiniteMDP is given")
        return [mdp] * check_int(horizon, "horizon", minimum=0)
    if not isinstance(mdp, Sequence) or not mdp:
        raise ValueError(
            f"mdp must be a FiniteMDP or a non-empty sequence of them (one per stage), got {mdp!r}"
        )
    stages = list(mdp)
    if horizon is not None and check_int(horizon, "horizon", minimum=0) != len(stages):
        raise ValueError(f"horizon is {horizon} but {len(stages)} stage models were given")
    labels = None
    for n, stage in enumerate(stages):
        if not isinstance(stage, FiniteMDP):
            raise ValueError(f"stage {n} is not a FiniteMDP: {stage!r}")
        if labels is None:
            labels = stage.state_labels
        elif stage.state_labels.shape != labels.shape or not all(
            a == b for a, b in zip(stage.state_labels.tolist(), labels.tolist(), strict=True)
        ):
            raise ValueError(f"stage {n} has different states from stage 0")
    return stages
