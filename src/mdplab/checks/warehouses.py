r"""The warehouses that the hidden checks of lab02-lab05 test students' functions on.

A :class:`Warehouse` holds the parameters of :func:`mdplab.warehouse`: capacity :math:`C`,
setup cost :math:`K`, unit cost :math:`c`, holding cost :math:`h`, a demand pmf and the
discount :math:`\beta`. The labs lay it out as dense arrays: row :math:`s = 0, \dots, C` is
the starting inventory and column :math:`a = 0, \dots, C + \min D` the production quantity,
with :math:`R[s, a] = +\infty` and :math:`P[s, a, \cdot] = 0` where :math:`a \notin A(s)`.

Each lab draws its own random warehouses (the sizes and cost grids suit its exercises);
:func:`random_demand` is the part they share, so that a lab's draws stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import mdplab

__all__ = ["COURSE", "Warehouse", "random_demand"]


@dataclass(frozen=True)
class Warehouse:
    """One warehouse; the demand pmf keeps its keys in the order given, so that a check can
    hand a student a dictionary whose keys are not sorted."""

    capacity: int
    setup_cost: float
    unit_cost: float
    holding_cost: float
    demand: tuple[tuple[int, float], ...]
    discount: float

    @property
    def pmf(self) -> dict[int, float]:
        """A fresh dictionary each time, so that a student's function cannot spoil it."""
        return dict(self.demand)

    @property
    def d_min(self) -> int:
        return min(d for d, _ in self.demand)

    @property
    def d_max(self) -> int:
        return max(d for d, _ in self.demand)

    @property
    def mean_demand(self) -> float:
        """E[D] = sum_d d p(d)."""
        return sum(d * p for d, p in self.demand)

    @property
    def n_states(self) -> int:
        return self.capacity + 1

    @property
    def n_actions(self) -> int:
        """Columns of the lab's arrays: production 0 .. C + min D."""
        return self.capacity + self.d_min + 1

    def pmf_text(self) -> str:
        return "{" + ", ".join(f"{d}: {p:g}" for d, p in self.demand) + "}"

    def costs_text(self) -> str:
        return f"{self.setup_cost:g}, {self.unit_cost:g}, {self.holding_cost:g}"

    def parameters_text(self) -> str:
        """The arguments of the labs' model-building functions, as a student would write
        them (the discount is not one of them)."""
        return (
            f"capacity={self.capacity}, setup_cost={self.setup_cost:g}, "
            f"unit_cost={self.unit_cost:g}, holding_cost={self.holding_cost:g}, "
            f"demand_pmf={self.pmf_text()}"
        )

    def mdp(self, holding_on: str = "start") -> mdplab.FiniteMDP:
        """The reference model; its action labels are the production quantities."""
        return _mdp(self, holding_on)

    def arrays(self, holding_on: str = "start") -> tuple[np.ndarray, np.ndarray]:
        """R[s, a] and P[s, a, s'] in the labs' layout; fresh copies, so that a student's
        function cannot spoil them."""
        R, P = _arrays(self, holding_on)
        return R.copy(), P.copy()

    def actions(self, s: int) -> set[int]:
        """A(s) = {a : s + a >= max D, s + a - min D <= C}."""
        return {int(a) for a in self.mdp().actions_of(s)}


@lru_cache(maxsize=512)
def _mdp(w: Warehouse, holding_on: str) -> mdplab.FiniteMDP:
    return mdplab.warehouse(
        capacity=w.capacity,
        setup_cost=w.setup_cost,
        unit_cost=w.unit_cost,
        holding_cost=w.holding_cost,
        demand=w.pmf,
        discount=w.discount,
        holding_on=holding_on,
    )


@lru_cache(maxsize=512)
def _arrays(w: Warehouse, holding_on: str) -> tuple[np.ndarray, np.ndarray]:
    mdp = w.mdp(holding_on)
    R = np.full((w.n_states, w.n_actions), np.inf)
    P = np.zeros((w.n_states, w.n_actions, w.n_states))
    for s in range(w.n_states):
        for a in mdp.actions_of(s):
            R[s, int(a)] = mdp.cost(s, a)
            P[s, int(a)] = mdp.transition_row(s, a)
    R.flags.writeable = P.flags.writeable = False  # shared by every caller of the cache
    return R, P


COURSE = Warehouse(3, 4.0, 1.0, 1.0, ((1, 0.5), (2, 0.5)), 0.8)


def random_demand(
    rng: np.random.Generator, k: int, capacity: int, values_below: int
) -> tuple[tuple[int, float], ...]:
    """k distinct demand values in 0 .. values_below - 1 whose spread max D - min D fits in
    the capacity, in a random key order, with probabilities on a grid of 0.05 and at least
    0.1 each: printed instances are exact, and no value is so rare that a simulation check
    could miss it. Needs k - 1 <= capacity."""
    while True:
        values = sorted(int(v) for v in rng.choice(values_below, size=k, replace=False))
        if values[-1] - values[0] <= capacity:
            break
    weights = rng.multinomial(20 - 2 * k, [1.0 / k] * k) + 2
    return tuple((values[i], float(weights[i]) / 20.0) for i in rng.permutation(k))
