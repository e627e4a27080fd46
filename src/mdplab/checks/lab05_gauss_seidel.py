r"""Hidden check of lab05's Exercise 3: Gauss–Seidel value iteration.

One Gauss–Seidel sweep :math:`G` overwrites :math:`V(s)` for :math:`s = 0, \dots, S-1` in
turn with :math:`\min_a [r(s, a) + \beta \sum_{s'} P(s' \mid s, a) V(s')]`, the :math:`V`
on the right already holding the new values of the states before :math:`s`. :math:`G` is a
contraction with modulus :math:`\beta` in the sup norm with fixed point :math:`V^*`, so
the stopping rule of value iteration, the first sweep whose change is below
:math:`\varepsilon (1 - \beta) / (2 \beta)`, returns values within :math:`\varepsilon/2`
of :math:`V^*` (Puterman, 1994, §6.3.3).

The models are those of :mod:`mdplab.checks.lab05` (warehouses and random MDPs drawn from
the lab's seed, mixed with the grading run's), with the sweep count's last two changes
clear of the threshold, so that rounding cannot move it. A wrong answer is compared with
re-implementations of the usual mistakes (:data:`MISTAKES`: Jacobi sweeps, the states in
reverse order, the wrong threshold, a sweep too many, the change measured on one array,
the notebook's BETA, V0 ignored), and the message names the first that reproduces it.
Messages name the call and never an expected number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mdplab.checks.common import HiddenCheckFailure, instance_rng
from mdplab.checks.lab05 import (
    COURSE_BETA,
    TIE_MARGIN,
    Instance,
    _blame_bellman,
    _call,
    _close,
    _diagnose_policy,
    _short,
    _tuple,
    _vector,
    course_warehouse,
    greedy_ok,
    random_tabular,
    random_warehouse,
    sweep_variant,
)
from mdplab.checks.numeric import as_values, describe_type

SEED = 20261206
SWEEP_CAP = 5_000  # a variant still running after this many sweeps never stops

MISTAKES = {
    "jacobi": "these are Jacobi sweeps, all of V_(k+1) computed from V_k; Gauss-Seidel "
    "overwrites V(s) state by state, so that later states use the new values at once",
    "reverse": "the states are swept in the order S-1, ..., 1, 0; sweep them in the order "
    "0, 1, ..., S-1",
    "threshold_epsilon": "it compares the change with epsilon itself; the threshold is "
    "epsilon (1 - beta) / (2 beta)",
    "no_two": "the threshold lacks the factor 2: epsilon (1 - beta) / (2 beta)",
    "one_more": "one more sweep is done after the first change below the threshold",
    "same_array": "the change of a sweep comes out as 0: V_before is the same array as V "
    "(take a copy, V.copy(), before the sweep)",
    "global_beta": "the threshold is computed with beta = 0.8, the notebook's BETA, not with "
    "the argument beta",
    "ignores_V0": "the sweeps start from zeros although V0 is given",
    "signed": "the change is measured without an absolute value, max(V_after - V_before); "
    "use max |V_after - V_before|, which matters when values fall",
}


def gauss_seidel_sweep(inst: Instance, V: np.ndarray, order: range | list[int]) -> np.ndarray:
    """One Gauss–Seidel sweep over the states in ``order``, on a copy of ``V``."""
    V = np.array(V, dtype=float)
    costs = np.where(inst.feasible, inst.R, 0.0)
    for s in order:
        q = np.where(inst.feasible[s], costs[s] + inst.beta * (inst.P[s] @ V), np.inf)
        V[s] = q.min()
    return V


def reference_gauss_seidel(
    inst: Instance, epsilon: float, V0: np.ndarray | None = None, *, mistake: str = ""
) -> tuple[np.ndarray, int, np.ndarray] | None:
    """(V, sweeps, history) of Gauss–Seidel value iteration as the lab states it, or with one
    ``mistake`` of :data:`MISTAKES`; None when that variant never stops."""
    n = inst.n_states
    V = np.zeros(n) if V0 is None or mistake == "ignores_V0" else np.asarray(V0, dtype=float)
    beta = COURSE_BETA if mistake == "global_beta" else inst.beta
    if inst.beta == 0 or beta == 0:
        threshold = math.inf
    elif mistake == "threshold_epsilon":
        threshold = epsilon
    elif mistake == "no_two":
        threshold = epsilon * (1 - beta) / beta
    else:
        threshold = epsilon * (1 - beta) / (2 * beta)
    order = list(range(n - 1, -1, -1)) if mistake == "reverse" else range(n)
    history: list[float] = []
    with np.errstate(all="ignore"):
        while len(history) < SWEEP_CAP:
            if mistake == "jacobi":
                new = sweep_variant(inst, V)
            else:
                new = gauss_seidel_sweep(inst, V, order)
            change = np.max(new - V) if mistake == "signed" else np.max(np.abs(new - V))
            history.append(0.0 if mistake == "same_array" else float(change))
            V = new
            if history[-1] < threshold:
                if mistake == "one_more":
                    V = gauss_seidel_sweep(inst, V, order)
                return V, len(history), np.array(history)
    return None


def _clear_of_ties(history: np.ndarray, beta: float, epsilon: float) -> bool:
    if beta == 0:
        return True
    threshold = epsilon * (1 - beta) / (2 * beta)
    if history[-1] >= threshold * (1 - TIE_MARGIN):
        return False
    return history.size == 1 or history[-2] > threshold * (1 + TIE_MARGIN)


def gauss_seidel_cases(seed: int = SEED) -> list[tuple[Instance, float, np.ndarray | None]]:
    """The course's warehouse at two settings the notebook does not test, then random
    warehouses and MDPs with various epsilon and starting values, clear of ties."""
    rng = instance_rng(seed)
    cases: list[tuple[Instance, float, np.ndarray | None]] = [
        (course_warehouse(0.7), 1e-5, None),
        (course_warehouse(0.95), 0.5, np.full(4, 200.0)),
    ]
    index = 0
    while len(cases) < 16:
        index += 1
        low = rng.random() < 0.2
        beta = round(float(rng.uniform(0.0, 0.5) if low else rng.uniform(0.5, 0.97)), 3)
        inst = random_warehouse(rng, beta) if index % 2 else random_tabular(rng, beta)
        scale = (1.0 + float(np.max(np.abs(inst.R[inst.feasible])))) / (1.0 - beta)
        epsilon = float(f"{scale * 10 ** rng.uniform(-7, -1):.2g}")
        V0 = None
        if index % 3 == 1:  # far above V*: values fall
            V0 = np.full(inst.n_states, 2.0 * scale)
        elif index % 3 == 2:
            V0 = np.round(rng.uniform(-scale, scale, size=inst.n_states), 2)
        reference = reference_gauss_seidel(inst, epsilon, V0)
        usable = reference is not None and reference[1] <= 1500
        if usable and _clear_of_ties(reference[2], beta, epsilon):
            cases.append((inst, epsilon, V0))
    return cases


def check_gauss_seidel(
    gauss_seidel: Callable[..., object], bellman_update: Callable[..., object]
) -> None:
    """Sweeps, values, greedy policy and history of the student's Gauss–Seidel value
    iteration on every case of :func:`gauss_seidel_cases`. A failure is led by what the
    student's bellman_update (which gives the policy) gets wrong on the same model."""
    for inst, epsilon, V0 in gauss_seidel_cases():
        start = "" if V0 is None else f", V0={_short(V0)}"
        what = f"gauss_seidel(R, P, beta, epsilon={epsilon:g}{start}) on {inst.description}"
        try:
            _check_case(gauss_seidel, inst, epsilon, V0, what)
        except HiddenCheckFailure as failure:
            raise _blame_bellman(failure, bellman_update, inst, V0, what) from None


def _check_case(
    gauss_seidel: Callable[..., Any],
    inst: Instance,
    epsilon: float,
    V0: np.ndarray | None,
    what: str,
) -> None:
    R, P = inst.arrays()
    given = None if V0 is None else V0.copy()
    kwargs = {} if given is None else {"V0": given}
    try:
        result = _call(gauss_seidel, R, P, inst.beta, epsilon, what=what, **kwargs)
    except HiddenCheckFailure as failure:
        if inst.beta == 0 and isinstance(failure.__cause__, ZeroDivisionError):
            raise HiddenCheckFailure(
                f"{failure} (with beta = 0 the threshold is +inf: stop after one sweep)"
            ) from None
        raise
    if given is not None and not np.array_equal(given, V0):
        raise HiddenCheckFailure(
            f"{what}: gauss_seidel changed the array V0 it was given, in place; start from a "
            "copy, np.array(V0, dtype=float)"
        )
    for name, before, after in (("R", inst.R, R), ("P", inst.P, P)):
        if not np.array_equal(before, after):
            raise HiddenCheckFailure(
                f"{what}: gauss_seidel changed its argument {name} in place; leave it as it "
                "was given"
            )
    parts = _tuple(result, 4, what=what, names="(V, policy, sweeps, history)")
    values = _vector(parts[0], inst.n_states, what=what, name="V")
    sweeps = parts[2]
    if isinstance(sweeps, bool) or not isinstance(sweeps, int | np.integer | float):
        raise HiddenCheckFailure(
            f"{what}: the third result should be the number of sweeps, got {describe_type(sweeps)}"
        )
    if not float(sweeps).is_integer():
        raise HiddenCheckFailure(f"{what}: the number of sweeps should be a whole number")
    if parts[3] is None:
        raise HiddenCheckFailure(f"{what}: the history is None; return the list of changes")
    history = as_values(parts[3], what=f"{what}: the history").ravel()
    reference = reference_gauss_seidel(inst, epsilon, V0)
    assert reference is not None  # the cases are drawn so that it stops
    expected_V, expected_sweeps, expected_history = reference
    if int(sweeps) != expected_sweeps or not _close(values, expected_V):
        raise HiddenCheckFailure(f"{what}: {_mistake(inst, epsilon, V0, values, int(sweeps))}")
    policy = _vector(parts[1], inst.n_states, what=what, name="the policy")
    if not np.all(policy == np.round(policy)):
        raise HiddenCheckFailure(f"{what}: the policy should hold whole numbers, action columns")
    policy = policy.astype(int)
    if not greedy_ok(inst, values, policy).all():
        _diagnose_policy(inst, values, policy, what)
    scale = 1.0 + float(np.max(np.abs(values)))
    if history.shape != expected_history.shape or not np.allclose(
        history, expected_history, rtol=1e-5, atol=1e-8 * scale
    ):
        raise HiddenCheckFailure(
            f"{what}: the sweeps and values are right, but the history should hold the change "
            "max_s |V_after(s) - V_before(s)| of every sweep, in order"
        )


def _mistake(
    inst: Instance, epsilon: float, V0: np.ndarray | None, values: np.ndarray, sweeps: int
) -> str:
    """The usual mistake that gives these values after this many sweeps, in words."""
    for mistake, text in MISTAKES.items():
        if mistake == "ignores_V0" and V0 is None:
            continue
        variant = reference_gauss_seidel(inst, epsilon, V0, mistake=mistake)
        if variant is not None and variant[1] == sweeps and _close(values, variant[0]):
            return text
    reference = reference_gauss_seidel(inst, epsilon, V0)
    assert reference is not None
    if sweeps == reference[1]:
        return "the number of sweeps is right, but the values V are not those of the last sweep"
    when = "too early" if sweeps < reference[1] else "too late"
    return (
        f"it stops {when}: stop after the first Gauss-Seidel sweep whose change "
        "max |V_after - V_before| is strictly below epsilon (1 - beta) / (2 beta)"
    )
