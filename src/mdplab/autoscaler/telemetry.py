r"""Per-minute telemetry of a simulated multi-tenant retrieval service, and its simulator.

Standard library and numpy only: the lab shows this module as it is.

**Demand** (:func:`exogenous`). In minute :math:`t`, at hour of day :math:`h_t`, requests
arrive at the rate (req/s)

.. math::
    \lambda_t = \lambda_{\text{peak}}\; w_t\; d(h_t)\; (1 + b_t)\; e^{\varepsilon_t},
    \qquad d(h) = 0.2 + 0.8 \Big(\frac{1 + \cos(2\pi (h - 14) / 24)}{2}\Big)^2 :

a daily cycle :math:`d` (0.2 at 02:00, 1 at 14:00); :math:`w_t = 1` on weekdays and
``weekend`` on Saturdays and Sundays; bursts :math:`b_t = \sum_{i: t_i \le t} m_i
e^{-(t - t_i)/\tau_i}` arriving as a Poisson process (``bursts_per_day``), of size
:math:`m_i \sim U(0.2, 0.8)` and decay time :math:`\tau_i \sim U(10, 40)` minutes; and AR(1)
noise :math:`\varepsilon_t = 0.95\, \varepsilon_{t-1} + 0.08 \sqrt{1 - 0.95^2}\, z_t`
(stationary standard deviation 0.08). Bursts bring longer queries and less sure retrieval:

.. math::
    \ell_t = 22\, (1 + 0.5 \min(b_t, 1))\, e^{\eta_t} \text{ tokens}, \qquad
    c_t = \operatorname{sigmoid}\big(1.2 - 0.08 (\ell_t - 22) - 1.5\, b_t + \zeta_t\big),

with AR(1) noises :math:`\eta` (0.9, sd 0.06) and :math:`\zeta` (0.8, sd 0.4).

**Service**: :class:`Physics`. **Actions**, taken at the end of a minute: 0 = scale down,
1 = hold, 2 = scale up, 3 = spot (keep the count; the next minute runs all instances but one
on spot capacity). Up at the maximum, and down or spot with one instance, are invalid: the
fleet stays as it is.
"""

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ACTIONS = ("down", "hold", "up", "spot")
DOWN, HOLD, UP, SPOT = range(4)
SLA_MS = 200.0
TRACE_SEED, TRACE_START = 20261130, "2026-03-02T00:00"  # a Monday
HELD_OUT_SEED, HELD_OUT_START = 20261207, "2026-03-16T00:00"  # another Monday
# Column -> decimals it is rounded to (None: not rounded); the CSV keeps this order.
COLUMNS = {
    "timestamp": None,
    "request_rate": 2,
    "query_length": 2,
    "retrieval_confidence": 3,
    "p95_latency_ms": 1,
    "instances": None,
    "spot_share": 2,
}
Decide = Callable[[float, float, int], int]  # (latency_ms, rate, instances) -> action


@dataclass(frozen=True)
class Physics:
    r"""Every constant of the simulated service.

    A request of :math:`\ell` tokens with retrieval confidence :math:`c` needs
    :math:`w(\ell, c) = w_0 + w_\ell\, \ell + w_r (1 - c)` work units (the last term: a
    second rerank pass when retrieval is unsure); an instance serves ``capacity`` units per
    second. Of :math:`n` instances, :math:`k` on spot, each spot instance is preempted for the
    minute with probability ``preemption``; :math:`n_e` instances remain, and

    .. math::
        \rho = \frac{\lambda\, w(\ell, c)}{n_e \cdot \text{capacity}}, \qquad
        L = \min\Big(L_{\max},\ e^{\sigma z} \times
        \begin{cases} b_0 + b_\ell\, \ell + q\, \rho / (1 - \rho) & \rho < \rho_{\max} \\
        L_{\max} & \rho \ge \rho_{\max} \end{cases}\Big) \text{ ms}, \quad z \sim N(0, 1).

    Prices are dollars per instance-hour; preempted spot instances are billed all the same.
    """

    capacity: float = 40.0  # work units per second per instance
    work_base: float = 0.4  # w_0
    work_per_token: float = 0.025  # w_l
    rerank_work: float = 0.5  # w_r
    base_ms: float = 70.0  # b_0
    ms_per_token: float = 2.0  # b_l
    queue_ms: float = 35.0  # q
    saturation: float = 0.97  # rho_max
    cap_ms: float = 1500.0  # L_max
    noise_sigma: float = 0.08  # sigma
    preemption: float = 0.06
    price_on_demand: float = 1.80
    price_spot: float = 0.63
    max_instances: int = 8

    def work(self, query_length, confidence):
        """Work units per request, w(l, c) (scalars or arrays)."""
        unsure = self.rerank_work * (1.0 - np.asarray(confidence))
        return self.work_base + self.work_per_token * np.asarray(query_length) + unsure

    def fleet_price(self, instances, spot_share):
        """Dollars per hour for ``instances`` of which ``spot_share`` run on spot."""
        spot = np.rint(np.asarray(spot_share) * instances)
        return (instances - spot) * self.price_on_demand + spot * self.price_spot


def exogenous(
    days: int,
    seed: int,
    start: str = TRACE_START,
    peak: float = 100.0,
    weekend: float = 0.65,
    bursts_per_day: float = 6.0,
) -> dict[str, np.ndarray]:
    """The demand side, one entry per minute from ``start`` (model in the module docstring):
    ``timestamp``, ``request_rate`` (req/s), ``query_length`` (tokens),
    ``retrieval_confidence``."""
    rng = np.random.default_rng(seed)
    t0 = datetime.fromisoformat(start)
    minute = np.arange(days * 1440)
    clock = t0.hour * 60 + t0.minute + minute
    hour = (clock % 1440) / 60.0
    week = np.where((t0.weekday() + clock // 1440) % 7 >= 5, weekend, 1.0)
    cycle = 0.2 + 0.8 * ((1.0 + np.cos(2.0 * np.pi * (hour - 14.0) / 24.0)) / 2.0) ** 2
    burst = np.zeros(minute.size)
    for t_i in np.flatnonzero(rng.random(minute.size) < bursts_per_day / 1440.0):
        size, decay = rng.uniform(0.2, 0.8), rng.uniform(10.0, 40.0)
        burst[t_i:] += size * np.exp(-(minute[t_i:] - t_i) / decay)
    rate = peak * week * cycle * (1.0 + burst) * np.exp(_ar1(rng, minute.size, 0.95, 0.08))
    length = 22.0 * (1.0 + 0.5 * np.minimum(burst, 1.0)) * np.exp(_ar1(rng, minute.size, 0.9, 0.06))
    logit = 1.2 - 0.08 * (length - 22.0) - 1.5 * burst + _ar1(rng, minute.size, 0.8, 0.4)
    stamps = [(t0 + timedelta(minutes=int(m))).isoformat(timespec="minutes") for m in minute]
    return {
        "timestamp": np.array(stamps),
        "request_rate": rate,
        "query_length": length,
        "retrieval_confidence": 1.0 / (1.0 + np.exp(-logit)),
    }


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) path with autocorrelation ``phi`` and standard deviation ``sd``."""
    shocks = rng.standard_normal(n) * sd * math.sqrt(1.0 - phi * phi)
    path = np.empty(n)
    path[0] = rng.standard_normal() * sd
    for t in range(1, n):
        path[t] = phi * path[t - 1] + shocks[t]
    return path


def p95_latency(rate, query_length, confidence, instances, spot_share, physics, rng):
    """p95 latency in ms of a minute, or of arrays of minutes (law in :class:`Physics`).

    Every call draws the same random numbers whatever the fleet, so that two policies
    replayed with the same seed meet the same preemptions and noise.
    """
    rate, instances = np.asarray(rate, dtype=float), np.asarray(instances)
    spot = np.rint(np.asarray(spot_share) * instances)
    draws = rng.random((*rate.shape, physics.max_instances))
    z = rng.standard_normal(rate.shape)
    slot = np.arange(physics.max_instances)  # slots below `spot` hold spot instances
    lost = np.sum((draws < physics.preemption) & (slot < spot[..., None]), axis=-1)
    rho = rate * physics.work(query_length, confidence) / ((instances - lost) * physics.capacity)
    queue = physics.queue_ms * rho / (1.0 - np.minimum(rho, physics.saturation))
    service = physics.base_ms + physics.ms_per_token * np.asarray(query_length) + queue
    latency = np.where(rho < physics.saturation, service, physics.cap_ms)
    return np.minimum(latency * np.exp(physics.noise_sigma * z), physics.cap_ms)


def _minute_latency(
    rate: float,
    query_length: float,
    confidence: float,
    instances: int,
    spot_share: float,
    physics: Physics,
    rng: np.random.Generator,
) -> float:
    """:func:`p95_latency` of one minute, in Python floats.

    It draws the same random numbers in the same order and does the same floating-point
    operations, so it returns the same bits (the project's tests check that it does);
    a replay calls it once a minute, and numpy's per-call overhead on 0-d arrays made the
    replay four times slower."""
    spot = round(spot_share * instances)  # round half to even, as np.rint
    draws = rng.random(physics.max_instances)
    z = rng.standard_normal()
    lost = int(np.count_nonzero(draws[:spot] < physics.preemption))
    work = (
        physics.work_base
        + physics.work_per_token * query_length
        + physics.rerank_work * (1.0 - confidence)
    )
    rho = rate * work / ((instances - lost) * physics.capacity)
    if rho >= physics.saturation:
        latency = physics.cap_ms
    else:
        service = physics.base_ms + physics.ms_per_token * query_length
        latency = service + physics.queue_ms * rho / (1.0 - rho)
    return min(float(latency * np.exp(physics.noise_sigma * z)), physics.cap_ms)


def valid_actions(instances: int, max_instances: int) -> list[int]:
    """The actions that do what they say: up needs room, down and spot two instances."""
    valid = [DOWN, HOLD, UP, SPOT]
    if instances >= max_instances:
        valid.remove(UP)
    if instances <= 1:
        valid = [a for a in valid if a not in (DOWN, SPOT)]
    return valid


def next_fleet(instances: int, action: int, max_instances: int) -> tuple[int, float]:
    """(instances, spot share) of the next minute; an invalid action holds."""
    if action not in valid_actions(instances, max_instances):
        action = HOLD
    if action == SPOT:
        return instances, (instances - 1) / instances
    return instances + (action == UP) - (action == DOWN), 0.0


def replay(
    decide: Decide,
    exo: dict[str, np.ndarray],
    physics: Physics,
    steps: int,
    seed: int,
    start_instances: int = 3,
) -> dict[str, np.ndarray]:
    """Run the service for ``steps`` minutes of ``exo`` under ``decide``.

    In minute t the latency follows from the demand at t and the fleet (n_t, spot_t); the
    action ``decide(latency_t, rate_t, n_t)`` sets the fleet of minute t + 1. Returns, per
    minute: ``p95_latency_ms``, ``instances``, ``spot_share``, ``action``, ``price`` ($/hour).
    """
    rng = np.random.default_rng(seed)
    rows, n, spot = [], start_instances, 0.0
    demand = zip(
        exo["request_rate"][:steps].tolist(),
        exo["query_length"][:steps].tolist(),
        exo["retrieval_confidence"][:steps].tolist(),
        strict=True,
    )
    for rate, length, confidence in demand:
        latency = _minute_latency(rate, length, confidence, n, spot, physics, rng)
        action = int(decide(latency, rate, n))
        rows.append((latency, n, spot, action, float(physics.fleet_price(n, spot))))
        n, spot = next_fleet(n, action, physics.max_instances)
    names = ("p95_latency_ms", "instances", "spot_share", "action", "price")
    columns = zip(*rows, strict=True)
    return {name: np.array(column) for name, column in zip(names, columns, strict=True)}


def logging_policy(
    physics: Physics,
    seed: int,
    explore_hours: float = 0.25,
    spot_hours: float = 0.5,
    scale_in: float = 0.2,
    up_ms: float = SLA_MS,
    down_ms: float = 175.0,
) -> Decide:
    """The autoscaler that produced the trace: a reactive rule, with exploration.

    Each hour two coins set its mode: with probability ``explore_hours`` it explores (every
    action drawn uniformly from the valid ones, so the fleet wanders over all sizes at that
    time of day); with probability ``spot_hours`` it trials spot capacity. Otherwise the
    rule: up when latency is above ``up_ms``; down with probability ``scale_in`` when it is
    at most ``down_ms`` (a cautious scale-in); else hold, or spot in a trial hour. The
    thresholds are latency-bin edges: the rule sees nothing that the MDP's state does not.
    """
    rng = np.random.default_rng(seed)
    minute, exploring, trial = 0, False, False

    def decide(latency: float, rate: float, instances: int) -> int:
        nonlocal minute, exploring, trial
        if minute % 60 == 0:
            exploring, trial = rng.random() < explore_hours, rng.random() < spot_hours
        minute += 1
        valid = valid_actions(instances, physics.max_instances)
        drawn, coin = valid[rng.integers(len(valid))], rng.random()  # drawn every minute
        if exploring:
            return drawn
        if latency > up_ms and UP in valid:
            return UP
        if latency <= down_ms and coin < scale_in and DOWN in valid:
            return DOWN
        return SPOT if trial and SPOT in valid else HOLD

    return decide


def generate_telemetry(days: int = 8, seed: int = TRACE_SEED) -> dict[str, np.ndarray]:
    """The logged trace: demand ``exogenous(days, seed)``, served under
    :func:`logging_policy` (seed + 2) with service noise seed + 1, rounded as in COLUMNS."""
    physics = Physics()
    exo = exogenous(days, seed)
    steps = len(exo["timestamp"])
    log = replay(logging_policy(physics, seed + 2), exo, physics, steps, seed + 1)
    columns = {**exo, **log}
    return {
        name: columns[name] if digits is None else np.round(columns[name], digits)
        for name, digits in COLUMNS.items()
    }


def write_csv(columns: dict[str, np.ndarray], path: str | Path) -> None:
    """Write the COLUMNS, each with its number of decimals, one row per minute."""
    cells = [
        [str(v) if digits is None else f"{v:.{digits}f}" for v in columns[name]]
        for name, digits in COLUMNS.items()
    ]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(zip(*cells, strict=True))


def read_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read a file of :func:`write_csv` back: the same columns, the same values."""
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    if header != list(COLUMNS):
        raise ValueError(f"{path}: expected the columns {list(COLUMNS)}, got {header}")
    columns = dict(zip(header, zip(*rows, strict=True), strict=True))
    types = {"timestamp": str, "instances": np.int64}
    return {name: np.array(columns[name], dtype=types.get(name, float)) for name in COLUMNS}
