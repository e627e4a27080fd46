r"""Posterior draws of the autoscaler's P given a recent window, and what they do to the policy.

The capstone's researcher track: replace the one tabular :math:`P` by samples conditioned on
the recent past, and measure how far values, actions and the operator's safety rules move.

**The posterior** (:func:`window_posterior`). Keep the factored model of
:mod:`~mdplab.autoscaler.transitions`,
:math:`P((l', \tau', n'') \mid (l, \tau, n), a) = [n'' = n'(n, a)]\, P_\tau(\tau' \mid \tau)\,
P_L(l' \mid c)` with latency cell :math:`c = (l, a, \tau', n')`, and treat its rows as
unknown. Let :math:`W` be the last ``window_minutes`` minutes of the trace, with
:math:`N^W_\tau(\tau, \tau')` demand moves and :math:`N^W_c(l')` latency transitions counted
on that slice alone. Under independent priors :math:`P_\tau(\cdot \mid \tau) \sim
\mathrm{Dir}(\alpha \mathbf 1)` and :math:`P_L(\cdot \mid c) \sim \mathrm{Dir}(w\, \pi_c)`,
with :math:`\pi_c` the pessimistic prior built from the **whole** log (the model's best
physical knowledge), the multinomial likelihood of the window is conjugate and

.. math::
    P_\tau(\cdot \mid \tau) \mid W \sim \mathrm{Dir}\big(N^W_\tau(\tau, \cdot) + \alpha\big),
    \qquad
    P_L(\cdot \mid c) \mid W \sim \mathrm{Dir}\big(N^W_c + w\, \pi_c\big),

independently over demand rows and latency cells. A draw of :math:`P` is one draw of every
factor, composed by :func:`~mdplab.autoscaler.transitions.compose_transitions` (so rows of
:math:`P` that share a demand row or a latency cell share its draw). This is a Bayesian
posterior draw **given only the recent window**, with a prior built from the whole log: an
empirical-Bayes choice, since the window's minutes are also among those the prior was built
from. Its mean is the model's own estimator on the window; with the whole trace as the window
the posterior mean is exactly ``model.P``. A cell the window never saw keeps only the
:math:`w` pseudo-counts of its prior (``PRIOR_WEIGHT``, a few at most), so its draws scatter
widely around the prior: the posterior is honest about how little the window says there.

A ``scale`` :math:`\kappa` multiplies every concentration: :math:`\mathrm{Dir}(\kappa a)`
has the mean of :math:`\mathrm{Dir}(a)` and marginal variances
:math:`m_i (1 - m_i) / (\kappa \sum_j a_j + 1)`, so :math:`\kappa \to \infty` concentrates
the draws on the posterior mean (:math:`\kappa = 1` is the posterior itself).

**The study** (:func:`sampled_study`). With :math:`V^*, \pi^*` the solution of the nominal
model and, for each draw :math:`q`, :math:`V_q, \pi_q` from value iteration on
:math:`(C, q)`, on the visited states :math:`\mathcal V`:

- value deviation :math:`\max_{\mathcal V} |V_q - V^*|` and its mean over :math:`\mathcal V`;
- action changes :math:`\#\{s \in \mathcal V : \pi_q(s) \ne \pi^*(s)\}`;
- violations of the operator's rules by :math:`\pi_q`
  (:func:`~mdplab.autoscaler.safety.safety_violations`, arguments as in
  :mod:`~mdplab.autoscaler.acceptance`);
- the deployed policy under the draw, :math:`V^{\pi^*}_q = (I - \gamma q_{\pi^*})^{-1}
  C_{\pi^*}` (exact), against :math:`V^*` and against :math:`V_q` (the regret of not
  re-solving, :math:`V^{\pi^*}_q - V_q \ge 0`).

``python -m mdplab.autoscaler.sampled [trace.csv]`` prints :func:`report` for 20 draws given
the last day (the trace defaults to ``generate_telemetry()``).

**The robust comparison.** The radius :math:`\delta` is the ``quantile`` (0.9, rounded up to
an observed value) of the row distances :math:`\|q(\cdot \mid s, a) - P(\cdot \mid s,
a)\|_1` over all draws and the pairs the log tried (``model.counts``), so at least that share
of those rows lies in the ball by construction. :math:`V_\delta, \pi_\delta` come from
robust value iteration on the nominal :math:`P` (:mod:`~mdplab.autoscaler.robust`, support:
the successor blocks), and :math:`V^{\pi^*}_\delta` from the robust evaluation of :math:`\pi^*`,
:math:`V(s) = C(s, \pi^*(s)) + \gamma \max_{\|q - p\|_1 \le \delta} q \cdot V`. For
(s, a)-rectangular balls, if every row a policy uses lies in the ball,

.. math::
    V_q \le V^{\pi_\delta}_q \le V_\delta
    \quad (\text{rows } (s, \pi_\delta(s))), \qquad
    V^{\pi^*}_q \le V^{\pi^*}_\delta \quad (\text{rows } (s, \pi^*(s))),

at every state (the values couple all states, visited or not). :math:`V_\delta` does **not**
bound :math:`V^{\pi^*}_q` in general: the robust optimum may avoid a fragile action that
:math:`\pi^*` takes (see the tests for a three-state example). The study reports the three
comparisons on the visited states, with a slack of :math:`2 \gamma\, \text{tol} / (1 -
\gamma)` for the two iterative solutions, and how many draws are *certified* (every row
:math:`(s, \pi_\delta(s))` inside the ball), where the first bound is a theorem rather than
an observation.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from mdplab.autoscaler.model import (
    ALPHA,
    PRIOR_NEIGHBOURS,
    PRIOR_WEIGHT,
    AutoscalerModel,
    build_model,
)
from mdplab.autoscaler.robust import robust_q_values, robust_value_iteration
from mdplab.autoscaler.safety import safety_arguments, safety_violations
from mdplab.autoscaler.solve import value_iteration
from mdplab.autoscaler.states import label_actions, quantise
from mdplab.autoscaler.telemetry import Physics, generate_telemetry, read_csv
from mdplab.autoscaler.transitions import (
    compose_transitions,
    latency_counts,
    pessimistic_prior,
)

MAX_SWEEPS = 100_000


def dirichlet_rows(
    concentration: np.ndarray, rng: np.random.Generator, scale: float = 1.0
) -> np.ndarray:
    r"""One independent :math:`\mathrm{Dir}(\kappa\, a)` draw along the last axis of ``a``.

    By the Gamma construction: :math:`g_i \sim \Gamma(\kappa a_i, 1)`, :math:`p_i = g_i /
    \sum_j g_j`. A zero concentration gives probability exactly 0 (the Dirichlet on the
    remaining coordinates). Every row needs some positive concentration; in the vanishingly
    rare case that all of a row's Gamma variates underflow to 0, its mass goes to its
    largest concentration.
    """
    a = np.asarray(concentration, dtype=float)
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if np.any(a < 0) or np.any(a.sum(axis=-1) <= 0):
        raise ValueError("concentrations must be >= 0 with a positive total on every row")
    g = rng.standard_gamma(scale * a)
    totals = g.sum(axis=-1, keepdims=True)
    fallback = np.zeros_like(a)
    np.put_along_axis(fallback, np.argmax(a, axis=-1)[..., None], 1.0, axis=-1)
    return np.where(totals > 0, g / np.where(totals > 0, totals, 1.0), fallback)


@dataclass(frozen=True, eq=False)
class WindowPosterior:
    r"""Dirichlet concentrations of the factored P given a window (module docstring).

    ``demand[tau, tau']`` :math:`= N^W_\tau + \alpha` and ``latency[l, a, tau', n' - 1, l']``
    :math:`= N^W_c + w\,\pi_c`.
    """

    demand: np.ndarray
    latency: np.ndarray
    max_instances: int
    window_minutes: int

    def mean_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """The posterior means ``(throughput_P, latency_P)``: concentrations over totals."""
        return (
            self.demand / self.demand.sum(axis=-1, keepdims=True),
            self.latency / self.latency.sum(axis=-1, keepdims=True),
        )

    def mean(self) -> np.ndarray:
        """``P[s, a, s']`` composed of the posterior means of its factors.

        (The factors are independent, so this is also the posterior mean of P.)
        """
        return compose_transitions(*self.mean_factors(), self.max_instances)

    def draw_factors(
        self, rng: np.random.Generator, scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """One posterior draw ``(throughput_P, latency_P)`` (concentrations times ``scale``)."""
        return dirichlet_rows(self.demand, rng, scale), dirichlet_rows(self.latency, rng, scale)

    def draw(self, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """One posterior draw of ``P[s, a, s']``, composed from :meth:`draw_factors`."""
        return compose_transitions(*self.draw_factors(rng, scale), self.max_instances)


def window_concentrations(
    latency_bins,
    throughput_bins,
    instances,
    actions,
    prior: np.ndarray,
    window_minutes: int,
    n_throughput: int,
    alpha: float = ALPHA,
    prior_weight: float = PRIOR_WEIGHT,
) -> WindowPosterior:
    r"""The posterior of the last ``window_minutes`` minutes, from binned minutes.

    ``latency_bins``, ``throughput_bins`` and ``instances`` have one entry per minute of the
    whole trace, ``actions`` one fewer; ``prior[l, a, tau', n' - 1, :]`` is the latency
    prior :math:`\pi_c`. The window's :math:`m` minutes give :math:`m - 1` moves, counted
    with :func:`~mdplab.autoscaler.transitions.latency_counts` on the slice.
    """
    lat, tau, n = (np.asarray(x) for x in (latency_bins, throughput_bins, instances))
    actions = np.asarray(actions)
    if not 2 <= window_minutes <= lat.size:
        raise ValueError(f"window_minutes must lie in [2, {lat.size}], got {window_minutes}")
    if alpha <= 0 or prior_weight <= 0:
        raise ValueError(f"alpha and prior_weight must be positive: {alpha}, {prior_weight}")
    prior = np.asarray(prior, dtype=float)
    n_latency, max_instances = prior.shape[0], prior.shape[3]
    start = lat.size - window_minutes
    lat, tau, n, actions = lat[start:], tau[start:], n[start:], actions[start:]
    demand = np.zeros((n_throughput, n_throughput))
    np.add.at(demand, (tau[:-1], tau[1:]), 1.0)
    counts = latency_counts(lat, tau, n, actions, n_latency, n_throughput, max_instances)
    return WindowPosterior(
        demand=demand + alpha,
        latency=counts + prior_weight * prior,
        max_instances=max_instances,
        window_minutes=window_minutes,
    )


def window_posterior(
    trace: dict[str, np.ndarray],
    model: AutoscalerModel,
    window_minutes: int = 1440,
    *,
    physics: Physics | None = None,
    alpha: float = ALPHA,
    prior_weight: float = PRIOR_WEIGHT,
    neighbours: int = PRIOR_NEIGHBOURS,
    prior: np.ndarray | None = None,
) -> WindowPosterior:
    """The posterior of P given the last ``window_minutes`` of ``trace`` (module docstring).

    The trace is binned with the model's edges; the prior is the pessimistic prior of the
    whole trace (``physics.preemption``, ``neighbours``) unless ``prior`` is given. With the
    model's defaults for ``alpha`` and ``prior_weight`` and the whole trace as the window,
    the posterior mean is ``model.P``.
    """
    physics = physics or Physics()
    lat = quantise(trace["p95_latency_ms"], model.latency_edges)
    tau = quantise(trace["request_rate"], model.throughput_edges)
    n = np.asarray(trace["instances"])
    actions = label_actions(n, trace["spot_share"])
    if prior is None:
        prior = pessimistic_prior(
            lat,
            tau,
            n,
            actions,
            model.throughput_levels,
            physics.preemption,
            model.n_latency,
            model.max_instances,
            neighbours,
        )
    return window_concentrations(
        lat, tau, n, actions, prior, window_minutes, model.n_throughput, alpha, prior_weight
    )


def policy_value(C: np.ndarray, P: np.ndarray, policy: np.ndarray, gamma: float) -> np.ndarray:
    r""":math:`V^\pi = (I - \gamma P_\pi)^{-1} C_\pi`, exactly (one linear solve).

    Raises ``ValueError`` if the policy takes an action with infinite cost somewhere.
    """
    states = np.arange(C.shape[0])
    policy = np.asarray(policy)
    cost = np.asarray(C, dtype=float)[states, policy]
    if not np.all(np.isfinite(cost)):
        raise ValueError("the policy takes an infeasible action (infinite cost)")
    P_pi = np.asarray(P, dtype=float)[states, policy]
    return np.linalg.solve(np.eye(states.size) - gamma * P_pi, cost)


def robust_policy_value(
    C: np.ndarray,
    P: np.ndarray,
    policy: np.ndarray,
    gamma: float,
    delta: float,
    tol: float = 0.01,
    support: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    r"""``(V, sweeps)``: the worst case of a fixed policy over the L1 ball of radius delta,

    .. math::
        V(s) = C(s, \pi(s)) + \gamma \max_{\|q - p_{s, \pi(s)}\|_1 \le \delta} q \cdot V,

    iterated from 0 with the stopping rule of robust value iteration (``tol``).
    """
    states = np.arange(C.shape[0])
    policy = np.asarray(policy)
    C_pi = np.asarray(C, dtype=float)[states, policy][:, None]
    P_pi = np.asarray(P, dtype=float)[states, policy][:, None, :]
    support = P > 0 if support is None else np.asarray(support, dtype=bool)
    support_pi = support[states, policy][:, None, :]
    V = np.zeros(states.size)
    sweeps = 0
    while sweeps < MAX_SWEEPS:
        sweeps += 1
        V_new = robust_q_values(C_pi, P_pi, V, gamma, delta, support_pi)[:, 0]
        change = np.max(np.abs(V_new - V))
        V = V_new
        if change < tol:
            break
    return V, sweeps


def row_distances(Q: np.ndarray, P: np.ndarray) -> np.ndarray:
    r""":math:`\|Q(\cdot \mid s, a) - P(\cdot \mid s, a)\|_1` for every pair, ``[S, A]``."""
    return np.abs(np.asarray(Q) - np.asarray(P)).sum(axis=-1)


@dataclass(frozen=True)
class DrawOutcome:
    """What one transition tensor q does, on the visited states (module docstring).

    ``*_over_*`` are maxima over visited states of a difference (<= slack: bounded).
    """

    value_sup: float  # max |V_q - V*|
    value_mean: float  # mean |V_q - V*|
    action_changes: int  # visited states with pi_q != pi*
    violations: int  # safety violations of pi_q
    nominal_sup: float  # max |V^{pi*}_q - V*|
    nominal_mean: float  # mean (V^{pi*}_q - V*), signed
    regret: float  # max (V^{pi*}_q - V_q)
    rows_in_ball: float  # share of visited pairs' rows within delta of P
    certified: bool  # every row (s, pi_delta(s)), all s, within delta of P
    optimal_over_robust: float  # max (V_q - V_delta)
    nominal_over_robust_policy: float  # max (V^{pi*}_q - V^{pi*}_delta)
    nominal_over_robust: float  # max (V^{pi*}_q - V_delta): not a theorem


@dataclass(frozen=True)
class SampledStudy:
    """Per-draw outcomes, the window's posterior mean, and the robust comparison."""

    draws: tuple[DrawOutcome, ...]
    window_mean: DrawOutcome  # the same figures for the posterior mean of the window
    window_minutes: int
    seed: int
    scale: float
    quantile: float
    delta: float
    slack: float
    nominal_violations: int
    robust_sweeps: int
    robust_gap_sup: float  # max over visited (V_delta - V*)
    robust_gap_mean: float  # mean over visited (V_delta - V*)
    robust_policy_gap_mean: float  # mean over visited (V^{pi*}_delta - V*)
    robust_action_changes: int  # visited states with pi_delta != pi*
    seconds: float = field(compare=False)
    row_l1: np.ndarray = field(repr=False, compare=False)  # [draws, S, A]
    robust_values: np.ndarray = field(repr=False, compare=False)  # V_delta
    robust_policy: np.ndarray = field(repr=False, compare=False)  # pi_delta
    robust_nominal_values: np.ndarray = field(repr=False, compare=False)  # V^{pi*}_delta

    def column(self, name: str) -> np.ndarray:
        """One field of every draw, as an array."""
        return np.array([getattr(d, name) for d in self.draws])


def sampled_study(
    trace: dict[str, np.ndarray],
    model: AutoscalerModel,
    draws: int = 20,
    window_minutes: int = 1440,
    seed: int = 0,
    *,
    quantile: float = 0.9,
    delta: float | None = None,
    scale: float = 1.0,
    tol: float = 0.01,
    physics: Physics | None = None,
    posterior: WindowPosterior | None = None,
) -> SampledStudy:
    """Solve the MDP under ``draws`` posterior draws of P given the last ``window_minutes``
    of ``trace`` and compare with the nominal model and robust value iteration.

    ``delta`` overrides the radius (default: the ``quantile`` of the visited pairs' row
    distances); ``posterior`` overrides :func:`window_posterior`; ``scale`` tempers it.
    """
    clock = time.perf_counter()
    if draws < 1:
        raise ValueError(f"need at least one draw, got {draws}")
    physics = physics or Physics()
    posterior = posterior or window_posterior(trace, model, window_minutes, physics=physics)
    rng = np.random.default_rng(seed)
    C, P, gamma = model.C, model.P, model.gamma
    visited = model.visited
    pairs = model.counts.sum(axis=2) > 0  # the pairs the log tried
    rules = safety_arguments(trace, model, physics)
    V_star, pi_star, _, _ = value_iteration(C, P, gamma, tol)

    def solve(Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
        V_q, pi_q, _, _ = value_iteration(C, Q, gamma, tol)
        n_violations = len(safety_violations(pi_q, model.visits, **rules))
        return V_q, pi_q, n_violations, policy_value(C, Q, pi_star, gamma), row_distances(Q, P)

    solved = [solve(posterior.draw(rng, scale)) for _ in range(draws)]
    mean_solved = solve(posterior.mean())
    row_l1 = np.stack([s[4] for s in solved])
    if delta is None:
        # "higher": an observed distance, so at least that share of rows lies in the ball
        delta = (
            float(np.quantile(row_l1[:, pairs], quantile, method="higher")) if pairs.any() else 0.0
        )
    delta = float(min(max(delta, 0.0), 2.0))
    support = model.support()
    V_rob, pi_rob, sweeps = robust_value_iteration(C, P, gamma, delta, tol, support)
    V_rob_star, _ = robust_policy_value(C, P, pi_star, gamma, delta, tol, support)
    states = np.arange(C.shape[0])

    def outcome(result: tuple) -> DrawOutcome:
        V_q, pi_q, n_violations, V_pi, dist = result
        return DrawOutcome(
            value_sup=float(np.max(np.abs(V_q - V_star)[visited])),
            value_mean=float(np.mean(np.abs(V_q - V_star)[visited])),
            action_changes=int(np.sum((pi_q != pi_star)[visited])),
            violations=n_violations,
            nominal_sup=float(np.max(np.abs(V_pi - V_star)[visited])),
            nominal_mean=float(np.mean((V_pi - V_star)[visited])),
            regret=float(np.max((V_pi - V_q)[visited])),
            rows_in_ball=float(np.mean(dist[pairs] <= delta)) if pairs.any() else 1.0,
            certified=bool(np.all(dist[states, pi_rob] <= delta)),
            optimal_over_robust=float(np.max((V_q - V_rob)[visited])),
            nominal_over_robust_policy=float(np.max((V_pi - V_rob_star)[visited])),
            nominal_over_robust=float(np.max((V_pi - V_rob)[visited])),
        )

    return SampledStudy(
        draws=tuple(outcome(s) for s in solved),
        window_mean=outcome(mean_solved),
        window_minutes=posterior.window_minutes,
        seed=seed,
        scale=scale,
        quantile=quantile,
        delta=delta,
        slack=2.0 * gamma * tol / (1.0 - gamma),
        nominal_violations=len(safety_violations(pi_star, model.visits, **rules)),
        robust_sweeps=sweeps,
        robust_gap_sup=float(np.max((V_rob - V_star)[visited])),
        robust_gap_mean=float(np.mean((V_rob - V_star)[visited])),
        robust_policy_gap_mean=float(np.mean((V_rob_star - V_star)[visited])),
        robust_action_changes=int(np.sum((pi_rob != pi_star)[visited])),
        seconds=time.perf_counter() - clock,
        row_l1=row_l1,
        robust_values=V_rob,
        robust_policy=pi_rob,
        robust_nominal_values=V_rob_star,
    )


def report(study: SampledStudy) -> str:
    """The study as a fixed-width text table: one row per draw, then the window's posterior
    mean, the draws' mean and maximum, and the robust comparison."""
    header = (
        "draw",
        "max|dV|",
        "mean|dV|",
        "changes",
        "violations",
        "pi* max|dV|",
        "pi* mean dV",
        "regret",
        "in ball",
        "V_q-V_d",
        "pi*:V-V_d(pi*)",
        "pi*:V-V_d",
    )

    def cells(label: str, d: DrawOutcome) -> tuple[str, ...]:
        return (
            label,
            f"{d.value_sup:.2f}",
            f"{d.value_mean:.2f}",
            f"{d.action_changes:g}",
            f"{d.violations:g}",
            f"{d.nominal_sup:.2f}",
            f"{d.nominal_mean:+.2f}",
            f"{d.regret:.2f}",
            f"{d.rows_in_ball:.0%}",
            f"{d.optimal_over_robust:+.2f}",
            f"{d.nominal_over_robust_policy:+.2f}",
            f"{d.nominal_over_robust:+.2f}",
        )

    def summary(label: str, reduce) -> tuple[str, ...]:
        fields = [f for f in DrawOutcome.__dataclass_fields__ if f != "certified"]
        values = {f: float(reduce(study.column(f))) for f in fields}
        return cells(label, DrawOutcome(**values, certified=False))

    rows = [cells(str(i), d) for i, d in enumerate(study.draws)]
    rows += [cells("window mean", study.window_mean), summary("mean", np.mean)]
    rows.append(summary("max", np.max))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    table = "\n".join(
        "  ".join(x.rjust(w) for x, w in zip(row, widths, strict=True)) for row in [header, *rows]
    )
    n = len(study.draws)
    bounded = np.sum(study.column("optimal_over_robust") <= study.slack)
    bounded_pi = np.sum(study.column("nominal_over_robust_policy") <= study.slack)
    under = np.sum(study.column("nominal_over_robust") <= study.slack)
    lines = [
        f"{n} posterior draws of P given the last {study.window_minutes} minutes "
        f"(seed {study.seed}, scale {study.scale:g}); values on the visited states; "
        f"nominal policy: {study.nominal_violations} violation(s)",
        table,
        f"robust radius delta = {study.delta:.3f} (the {study.quantile:.0%} quantile of the "
        f"visited pairs' row L1 distances): {study.robust_sweeps} sweeps, V_delta - V* "
        f"mean {study.robust_gap_mean:.2f}, max {study.robust_gap_sup:.2f}; robust value of "
        f"pi* - V* mean {study.robust_policy_gap_mean:.2f}; "
        f"{study.robust_action_changes} visited states change action",
        f"rows of visited pairs inside the ball: {np.mean(study.column('rows_in_ball')):.1%} "
        f"on average; draws certified (every row (s, pi_delta(s)) inside): "
        f"{sum(d.certified for d in study.draws)} of {n}",
        f"within slack {study.slack:.2f}: V_q <= V_delta in {bounded} of {n} draws, "
        f"V^pi*_q <= V^pi*_delta in {bounded_pi} of {n}, V^pi*_q <= V_delta (not a theorem) "
        f"in {under} of {n}",
        f"{study.seconds:.1f} s",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # python -m mdplab.autoscaler.sampled [trace.csv]: 20 draws given the last day.
    given_trace = read_csv(sys.argv[1]) if len(sys.argv) > 1 else generate_telemetry()
    print(report(sampled_study(given_trace, build_model(given_trace))))
