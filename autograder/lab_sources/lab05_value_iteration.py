# %% [markdown]
# {{colab_badge}}
#
# # Lab 05 · Value iteration: the Bellman operator as a contraction
#
# Labs 03 and 04 solved the warehouse exactly: as a linear program, and by policy
# iteration, which solves a linear system for every policy it tries. **Value iteration** does
# neither. It takes any guess of the values, applies the Bellman optimality equation to it as
# if it were an assignment, and repeats. Each repetition (a **sweep**) is cheap, and the
# guesses approach the optimal values geometrically fast, at a rate set by the discount
# factor $\beta$. The price is that value iteration never arrives: it needs a rule that says
# when its answer is good enough.
#
# **Learning goals.** After this lab you can
# 1. define the Bellman optimality operator $T$ and a greedy policy, and compute one sweep
#    $V \mapsto TV$ for any finite MDP stored as arrays, with infeasible actions as infinite
#    costs;
# 2. explain why $T$ is a contraction with modulus $\beta$ in the sup norm, and what follows
#    from it: a unique fixed point $V^*$ and the geometric bound
#    $\|V_k - V^*\|_\infty \le \beta^k \|V_0 - V^*\|_\infty$;
# 3. implement value iteration with a fixed number of sweeps and with the $\varepsilon$-optimal
#    stopping rule, and state what the rule guarantees;
# 4. read a convergence plot on a log scale, and predict how the number of sweeps grows as
#    $\beta$ approaches 1;
# 5. relate the iterates $V_k$ to the finite-horizon costs of Lab 01, and speed value
#    iteration up with Gauss–Seidel sweeps;
# 6. answer an inverse question (for which discount factors is a policy optimal?) with an
#    exact optimality test and bisection;
# 7. time four solution methods fairly as the model grows, and choose between them.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests here and by hidden tests that call your
# functions on other models (warehouses with other capacities, costs, demand distributions
# and discount factors, and random MDPs). Written parts are read by your instructor.

# %% [markdown]
# This lab needs numpy, matplotlib and ipywidgets, which every Colab runtime has; it installs
# nothing. Run the next (read-only) cell first. Besides the imports it defines `time_limit`,
# a small helper that section 3 explains.

# %% nbgrader="locked" grade_id="setup"
import contextlib
import os
import signal
import sys
import threading
import time
from functools import lru_cache

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

IN_COLAB = "google.colab" in sys.modules
print(
    "Running in", "Google Colab" if IN_COLAB else "Jupyter", "with Python", sys.version.split()[0]
)
print("numpy", np.__version__, "| ipywidgets", widgets.__version__)


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeoutError in the code inside the `with` block after `seconds` seconds."""
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:  # e.g. on Windows: no limit
        yield
        return

    def stop(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: does your loop ever stop?")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# %% [markdown]
# ## 1 · The warehouse as two arrays
#
# A reminder of the model that runs through the series. The warehouse holds at most
# $C = 3$ units.
#
# - **State** $s \in \{0, 1, \dots, C\}$: the inventory at the **start** of a period.
# - **Action** $a$: the number of units produced in the period. Demand $D$ is 1 or 2 units,
#   each with probability $\tfrac12$, and must always be met, while the ending inventory
#   $s + a - D$ may never exceed $C$. So $a$ is **feasible** in $s$ when
#   $s + a \ge 2$ and $s + a - 1 \le 3$: the set $A(s)$ is $\{2, 3, 4\}$, $\{1, 2, 3\}$,
#   $\{0, 1, 2\}$ and $\{0, 1\}$ for $s = 0, 1, 2, 3$.
# - **Cost** of a period: a setup cost $K = 4$ if $a > 0$, plus $c = 1$ per unit produced,
#   plus a holding cost $h = 1$ per unit of the **starting** inventory:
#   $r(s, a) = K\,[a > 0] + c\,a + h\,s$. (Some texts charge holding on the ending
#   inventory; the course's published numbers charge the starting inventory.)
# - **Transition**: the next state is $s' = s + a - D$, so
#   $P(s' \mid s, a) = \Pr(D = s + a - s')$.
# - **Discount factor** $\beta = 0.8$; we minimise the expected discounted cost.
#
# As in Lab 02, the model is stored as two numpy arrays whose action columns are the
# production quantities $a = 0, 1, \dots, C + d_{\min}$:
#
# - `R[s, a]` $= r(s, a)$ if $a \in A(s)$, and `np.inf` if $a$ is infeasible in $s$;
# - `P[s, a, s']` $= P(s' \mid s, a)$ if $a \in A(s)$, and a row of zeros otherwise.
#
# The read-only cell below builds both arrays for any capacity, costs and demand
# distribution, so that this lab does not depend on your Lab 02 code. Everything you write
# in this lab works on **any** pair of arrays of this form, not only on the warehouse.


# %% nbgrader="locked" grade_id="warehouse_arrays"
def warehouse_arrays(capacity=3, setup_cost=4, unit_cost=1, holding_cost=1, demand_pmf=None):
    """Return (R, P) of the warehouse: R[s, a] (np.inf if infeasible) and P[s, a, s']."""
    if demand_pmf is None:
        demand_pmf = {1: 0.5, 2: 0.5}
    d_min, d_max = min(demand_pmf), max(demand_pmf)
    n_states, n_actions = capacity + 1, capacity + d_min + 1
    R = np.full((n_states, n_actions), np.inf)
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(n_actions):
            if s + a < d_max or s + a - d_min > capacity:
                continue  # some demand would go unmet, or the warehouse could overflow
            R[s, a] = setup_cost * (a > 0) + unit_cost * a + holding_cost * s
            for d, probability in demand_pmf.items():
                P[s, a, s + a - d] += probability
    return R, P


R, P = warehouse_arrays()
BETA = 0.8
print("R[s, a] (rows: s = 0..3, columns: a = 0..4):")
print(R)
print("P[0, 2] =", P[0, 2], "  (from s = 0 produce 2: 1 unit left or none, each w.p. 1/2)")

# %% [markdown]
# ## 2 · The Bellman optimality operator
#
# For a vector of values $V = (V(s))_{s \in S}$, the **Q-value** of a feasible pair is what it
# costs to take action $a$ in state $s$ now and to be charged $V$ from the next period on:
#
# $$
# Q_V(s, a) \;=\; r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s').
# $$
#
# The **Bellman optimality operator** $T$ maps $V$ to the vector of the best Q-values, and a
# policy is **greedy** for $V$ when it attains them:
#
# $$
# (TV)(s) \;=\; \min_{a \in A(s)} Q_V(s, a), \qquad
# \pi_V(s) \in \operatorname*{arg\,min}_{a \in A(s)} Q_V(s, a).
# $$
#
# The optimal values are exactly the solution of the optimality equation $V^* = TV^*$: $V^*$
# is a **fixed point** of $T$. Policy iteration used $T$ only through its greedy policy;
# value iteration uses the operator itself.
#
# ### Why $T$ is a contraction
#
# Take two value vectors $U$ and $V$ and a state $s$. Let $a$ be greedy for $V$ in $s$. Then
#
# $$
# (TU)(s) \le Q_U(s, a) = Q_V(s, a) + \beta \sum_{s'} P(s' \mid s, a)\,\big(U(s') - V(s')\big)
# \le (TV)(s) + \beta\, \|U - V\|_\infty ,
# $$
#
# because the probabilities $P(s' \mid s, a)$ add up to 1. Swapping $U$ and $V$ gives the
# other direction, so, with $\|X\|_\infty = \max_s |X(s)|$ (the **sup norm**),
#
# $$
# \|TU - TV\|_\infty \;\le\; \beta\, \|U - V\|_\infty .
# $$
#
# $T$ brings any two vectors closer by at least the factor $\beta < 1$: it is a
# **contraction with modulus $\beta$**. Banach's fixed-point theorem then says that $T$ has
# exactly one fixed point, $V^*$, and that the sequence $V_{k+1} = TV_k$ reaches it from any
# start $V_0$, since
#
# $$
# \|V_k - V^*\|_\infty = \|TV_{k-1} - TV^*\|_\infty \le \beta\, \|V_{k-1} - V^*\|_\infty
# \le \dots \le \beta^k\, \|V_0 - V^*\|_\infty .
# $$
#
# That sequence is **value iteration**. The error shrinks at least geometrically: each sweep
# removes at least a fraction $1 - \beta$ of it.
#
# ### Exercise 1 (autograded): one Bellman sweep
#
# Write `bellman_update(R, P, beta, V)` that returns the pair `(V_new, policy)`:
#
# - `V_new`, a float array of length $S$ with `V_new[s]` $= (TV)(s)$, the smallest Q-value
#   over the **feasible** actions of $s$ (those with a finite `R[s, a]`);
# - `policy`, an integer array of length $S$ with a greedy action `policy[s]` (a column of
#   `R`) for every state. Among several minimising actions, take the **smallest**; the
#   grader accepts any greedy action, but the rule makes your answers reproducible.
#
# `R` has shape $(S, A)$ with `np.inf` at infeasible pairs, `P` has shape $(S, A, S)$ with
# zero rows at infeasible pairs, `V` has length $S$ and $0 \le \beta < 1$. Every state has at
# least one feasible action. Do not change `V` in place.
#
# *Hints.* A loop over states and actions is perfectly fine. If you prefer numpy: `P @ V`
# multiplies the last axis of `P` with `V` and has shape $(S, A)$; an infeasible pair then
# gets `np.inf + beta * 0.0 = np.inf`, which no minimum picks. `np.min` and `np.argmin`
# along `axis=1` do the rest, and `np.argmin` returns the first (smallest) minimiser. Never
# multiply `np.inf` by zero: that gives `nan` and a warning.


# %% nbgrader="answer" grade_id="bellman_update"
def bellman_update(R, P, beta, V):
    """Return (TV, greedy policy): min over feasible actions of R + beta * P V, per state."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    Q = R + beta * (P @ np.asarray(V, dtype=float))  # inf stays inf at infeasible pairs
    policy = np.argmin(Q, axis=1)  # the first minimiser: the smallest action among ties
    return Q[np.arange(Q.shape[0]), policy], policy
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_bellman_update" points=2 title="Exercise 1: one Bellman sweep"
# Visible tests
V_pi = np.array([30.0, 30.0, 26.0, 25.4])  # the values of the policy (2, 1, 0, 0)
result = bellman_update(R, P, BETA, V_pi)
assert np.all(V_pi == [30, 30, 26, 25.4]), (
    f"bellman_update changed its argument V in place (it is now {V_pi}): compute with new "
    "arrays (beta * V, not V *= beta) and leave V as it was given"
)
assert isinstance(result, tuple | list) and len(result) == 2, "return the pair V_new, policy"
V_new, policy = result
for name, value in [("V_new", V_new), ("policy", policy)]:
    assert not hasattr(value, "__next__"), (
        f"{name} is a generator (or iterator): return a list or an array, such as list(...)"
    )
V_new = np.asarray(V_new, dtype=float).ravel()
policy = np.asarray(policy, dtype=float).ravel()
assert V_new.shape == (4,) and policy.shape == (4,), (
    f"one value and one action per state: expected shapes (4,) and (4,), got "
    f"{V_new.shape} and {policy.shape}"
)
assert not (np.allclose(V_new, [4, 3, 0, 0]) and np.allclose(policy, [28.56, 28.56, 26, 25.4])), (
    "the pair comes in the wrong order: return (V_new, policy), not (policy, V_new)"
)
# T V_pi = (28.56, 28.56, 26, 25.4). The usual mistakes give other numbers:
MISTAKES = {
    "the future values are not discounted": [33.7, 33.7, 32, 31],
    "the cost of this period is discounted too; only the future values are": [
        26.96,
        26.96,
        25.6,
        24.8,
    ],
    "infeasible actions count as cost 0; the minimum is over feasible actions only": [0, 0, 0, 0],
    "that is the largest Q-value of each state (a max); costs are minimised": [30, 30, 29.4, 28.56],
    "the values V of the next states are not added": [6, 6, 2, 3],
}
for mistake, wrong_values in MISTAKES.items():
    assert not np.allclose(V_new, wrong_values), (
        f"T applied to V = (30, 30, 26, 25.4) gave {V_new}: {mistake}. "
        "Q(s, a) = r(s, a) + beta * sum_s' P(s' | s, a) V(s')"
    )
assert np.allclose(V_new, [28.56, 28.56, 26, 25.4]), (
    "T applied to the values (30, 30, 26, 25.4) of the policy (2, 1, 0, 0) should give "
    f"(28.56, 28.56, 26, 25.4); got {V_new}"
)
assert policy.tolist() != [2, 2, 0, 0], (
    "the policy (2, 2, 0, 0) holds positions in the list of feasible actions; policy[s] is "
    "an action, a column of R: (4, 3, 0, 0) here"
)
assert policy.tolist() == [4, 3, 0, 0], (
    "the policy greedy for (30, 30, 26, 25.4) is (4, 3, 0, 0), the improvement that "
    f"policy iteration finds; got {policy}"
)
V_new, policy = bellman_update(R, P, BETA, np.zeros(4))
assert np.allclose(np.asarray(V_new, dtype=float).ravel(), [6, 6, 2, 3]), (
    "T applied to V = 0 gives the cheapest feasible one-period cost of every state, "
    f"(6, 6, 2, 3); got {V_new}"
)
assert np.asarray(policy, dtype=float).ravel().tolist() == [2, 1, 0, 0], (
    f"with V = 0 the greedy policy produces as little as allowed, (2, 1, 0, 0); got {policy}"
)
V_star = np.array([1290, 1290, 1130, 1115]) / 49  # the optimal values of the course
V_new, policy = bellman_update(R, P, BETA, V_star)
assert np.allclose(np.asarray(V_new, dtype=float).ravel(), V_star), (
    f"V* is a fixed point: T V* = V*; got {V_new}"
)
assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
    f"greedy for V*: (4, 3, 0, 0); got {policy}"
)
V_new, policy = bellman_update(R, P, 0.0, V_star)
V_new = np.asarray(V_new, dtype=float).ravel()
assert not np.allclose(V_new, V_star), (
    "with beta = 0 you get V*, which is T V* for beta = 0.8: bellman_update uses the "
    "notebook's BETA (or 0.8) instead of its argument beta"
)
assert np.allclose(V_new, [6, 6, 2, 3]), (
    f"with beta = 0 the values V do not matter: T V = (6, 6, 2, 3); got {V_new}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05 import check_bellman_update

check_bellman_update(bellman_update)
### END HIDDEN TESTS

# %% [markdown]
# Run the next cell: it applies one sweep to the values $(30, 30, 26, 25.4)$ of the policy
# $(2, 1, 0, 0)$ and prints the Q-values. The greedy policy for them, $(4, 3, 0, 0)$, is the
# improvement step of policy iteration. Value iteration does not stop to evaluate that
# policy; it simply carries on from the new values.

# %% nbgrader="locked" grade_id="one_sweep_demo"
V_pi = np.array([30.0, 30.0, 26.0, 25.4])
Q = R + BETA * (P @ V_pi)
V_new, policy = bellman_update(R, P, BETA, V_pi)
print("Q(s, a) for a =   ", "".join(f"{a:8d}" for a in range(Q.shape[1])), "   (TV)(s)  greedy a")
for s in range(Q.shape[0]):
    row = "".join(f"{q:8.2f}" if np.isfinite(q) else "       -" for q in Q[s])
    print(f"  s = {s}           ", row, f"{V_new[s]:9.2f} {int(policy[s]):7d}")

# %% [markdown]
# ## 3 · Value iteration and when to stop it
#
# Value iteration starts from $V_0$ (zeros unless said otherwise) and sweeps:
# $V_{k+1} = TV_k$ for $k = 0, 1, 2, \dots$. Every sweep is a **Jacobi** sweep: all of
# $V_{k+1}$ is computed from $V_k$, and only then does $V_{k+1}$ replace $V_k$. (Overwriting
# $V(s)$ state by state, so that later states already see new values, is a different
# method, Gauss–Seidel value iteration; it is not what is asked here.)
#
# We cannot observe the error $\|V_k - V^*\|_\infty$, since $V^*$ is what we are looking for.
# We can observe the change of one sweep, $\|V_{k+1} - V_k\|_\infty$, and the contraction
# ties the two together. The **$\varepsilon$-optimal stopping rule** stops at the first $k$
# with
#
# $$
# \|V_{k+1} - V_k\|_\infty \;<\; \varepsilon\, \frac{1 - \beta}{2\beta}
# $$
#
# and returns $V_{k+1}$ together with the policy $\pi$ that is greedy for $V_{k+1}$. It
# guarantees $\|V_{k+1} - V^*\|_\infty < \varepsilon / 2$ and
# $\|V_\pi - V^*\|_\infty < \varepsilon$: the values are within $\varepsilon/2$ of the optimal
# ones and the policy is **$\varepsilon$-optimal**, in every state. (Question 1 asks you why.)
# When $\beta = 0$ the threshold is $+\infty$: $TV$ does not depend on $V$, so one sweep is
# already exact, and the rule stops after it.
#
# ### Exercise 2 (autograded): value iteration
#
# Write `value_iteration(R, P, beta, n_sweeps=None, epsilon=None, V0=None)`. The arguments
# `R`, `P` and `beta` are as in Exercise 1; exactly one of `n_sweeps` and `epsilon` is given.
#
# - Start from `V0` (a vector of length $S$), or from zeros when `V0` is `None`. Do not
#   change the array `V0` in place.
# - With `n_sweeps` (a whole number $\ge 0$): do exactly `n_sweeps` sweeps.
# - With `epsilon` ($> 0$): sweep until the stopping rule above holds, that is, stop after the
#   first sweep whose change $\|V_{k+1} - V_k\|_\infty$ is strictly below
#   $\varepsilon (1 - \beta) / (2\beta)$ (after one sweep when $\beta = 0$).
#
# Return a tuple `(V, policy, sweeps, history)`:
#
# - `V`, the values after the last sweep, $V_K$ (so $V_0$ when no sweep is done);
# - `policy`, the policy greedy for **that** `V` (smallest action among ties). Careful: the
#   policy that comes out of the sweep producing $V_K$ is greedy for $V_{K-1}$, not for
#   $V_K$; one more call of `bellman_update` on $V_K$ gives the right one;
# - `sweeps`, the number $K$ of sweeps done;
# - `history`, the $K$ changes $\|V_{k+1} - V_k\|_\infty$ for $k = 0, \dots, K-1$, in order
#   (a list or an array; empty when $K = 0$).
#
# Use your `bellman_update`.


# %% nbgrader="answer" grade_id="value_iteration"
def value_iteration(R, P, beta, n_sweeps=None, epsilon=None, V0=None):
    """Jacobi value iteration: n_sweeps sweeps, or until the epsilon-optimal rule holds.

    Returns (V, policy greedy for V, number of sweeps, history of sup-norm changes).
    """
    ### BEGIN SOLUTION
    V = np.zeros(np.shape(R)[0]) if V0 is None else np.array(V0, dtype=float)  # a copy
    threshold = None
    if epsilon is not None:
        threshold = np.inf if beta == 0 else epsilon * (1 - beta) / (2 * beta)
    history = []
    while n_sweeps is None or len(history) < n_sweeps:
        V_next, _ = bellman_update(R, P, beta, V)
        history.append(float(np.max(np.abs(V_next - V))))
        V = V_next
        if threshold is not None and history[-1] < threshold:
            break
    _, policy = bellman_update(R, P, beta, V)  # greedy for the values returned
    return V, policy, len(history), history
    ### END SOLUTION


# %% [markdown]
# A loop that never ends would make the tests below wait forever, so they run your function
# under a time limit, with the helper `time_limit` from the setup cell: it stops the code
# inside a `with time_limit(seconds):` block with a `TimeoutError` once the time is up (on
# systems that allow it, such as Colab and Linux). The read-only cells that draw plots with
# your functions use it too. Since `value_iteration` is built on your `bellman_update`, the
# tests below first check, with the helper of the next cell, that `bellman_update` does one
# sweep right: a mistake there would show up here as a mystery.


# %% nbgrader="locked" grade_id="exercise2_helpers"
def bellman_update_passes():
    """Whether your bellman_update gets a sweep of the course's warehouse right (for beta =
    0.8 and beta = 0) and leaves its argument V as it was given."""
    V = np.array([30.0, 30.0, 26.0, 25.4])
    try:
        V_new, policy = bellman_update(R, P, BETA, V)
        V_zero, _ = bellman_update(R, P, 0.0, V)
        return bool(
            np.all(V == [30, 30, 26, 25.4])
            and np.allclose(np.asarray(V_new, dtype=float).ravel(), [28.56, 28.56, 26, 25.4])
            and np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0]
            and np.allclose(np.asarray(V_zero, dtype=float).ravel(), [6, 6, 2, 3])
        )
    except NotImplementedError:
        raise  # Exercise 1 is not done yet
    except Exception:
        return False


# %% nbgrader="tests" grade_id="test_value_iteration_sweeps" points=2 title="Exercise 2a: a fixed number of sweeps"
# Visible tests
assert bellman_update_passes(), (
    "value_iteration uses your bellman_update, which does not pass the tests of Exercise 1 "
    "yet: fix bellman_update first"
)
with time_limit(10):
    result = value_iteration(R, P, BETA, n_sweeps=0)
assert isinstance(result, tuple | list) and len(result) == 4, "return (V, policy, sweeps, history)"
V, policy, sweeps, history = result
assert not (np.ndim(sweeps) == 1 and np.ndim(history) == 0), (
    "the results come in the order (V, policy, sweeps, history): the number of sweeps third, "
    f"the list of changes fourth; got {sweeps!r} third and {history!r} fourth"
)
assert sweeps == 0 and len(history) == 0, (
    f"n_sweeps=0 asks for no sweep; got sweeps = {sweeps} and {len(history)} change(s)"
    + (
        "; that is one sweep too many: does the loop run n_sweeps + 1 times?"
        if len(history) == 1
        else ""
    )
)
assert np.allclose(np.asarray(V, dtype=float), 0), f"n_sweeps=0 returns V0 = 0; got {V}"
assert np.asarray(policy, dtype=float).ravel().tolist() == [2, 1, 0, 0], (
    f"n_sweeps=0 returns the policy greedy for V0 = 0, (2, 1, 0, 0); got {policy}"
)
with time_limit(10):
    V, policy, sweeps, history = value_iteration(R, P, BETA, n_sweeps=3)
V, history = np.asarray(V, dtype=float).ravel(), np.asarray(history, dtype=float).ravel()
assert sweeps == 3, f"n_sweeps=3 should report 3 sweeps, not {sweeps}" + (
    " (off by one: report how many sweeps were done, not the index of the last one)"
    if sweeps == 2 and len(history) == 3
    else ""
)
assert len(history) == 3, f"3 sweeps: the history holds 3 changes, not {len(history)}"
assert not np.allclose(V, [10, 10, 6.8, 6.2]), (
    "V is V_2, the values one sweep too early: return the values after the last sweep"
)
assert not np.allclose(V, [15.552, 16.6928, 14.89792, 15.636288]), (
    f"three sweeps gave {V}, the values of Gauss-Seidel sweeps (V(s) overwritten state by "
    "state, so later states already see new values); compute all of V_(k+1) from V_k (a "
    "Jacobi sweep), then replace V_k"
)
assert np.allclose(V, [13.2, 13.2, 10, 9.72]), (
    "from V0 = 0, three Jacobi sweeps give (6, 6, 2, 3), (10, 10, 6.8, 6.2) and "
    f"(13.2, 13.2, 10, 9.72); got {V}"
)
assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
    f"the policy greedy for V_3 is (4, 3, 0, 0); got {policy}"
)
assert not np.allclose(history, [9.21954, 8.07960, 6.56585]), (
    f"the changes {history} are Euclidean norms (np.linalg.norm); the change of a sweep is "
    "measured in the sup norm, max_s |V_(k+1)(s) - V_k(s)|"
)
assert not np.allclose(history, [6, 10, 8]), (
    f"the changes {history} compare V_(k+1) with V_(k-1), two sweeps apart; compare each "
    "sweep's result with the values it started from"
)
assert not np.allclose(history, 0), (
    "every change is 0: the old and the new values are the same array (copy V before the "
    "sweep overwrites it)"
)
assert np.allclose(history, [6, 4.8, 3.52]), (
    f"the changes ||V_1 - V_0||, ||V_2 - V_1||, ||V_3 - V_2|| are (6, 4.8, 3.52); got {history}"
)
V0 = np.full(4, 100.0)
with time_limit(10):
    V, policy, sweeps, history = value_iteration(R, P, BETA, n_sweeps=1, V0=V0)
assert np.all(V0 == 100), (
    f"value_iteration changed the array V0 it was given in place (V0 is now {V0}): start "
    "from a copy, V = np.array(V0, dtype=float)"
)
V, history = np.asarray(V, dtype=float).ravel(), np.asarray(history, dtype=float).ravel()
assert not np.allclose(V, [6, 6, 2, 3]), (
    "one sweep from V0 = (100, 100, 100, 100) gave (6, 6, 2, 3), a sweep from zeros: start "
    "from V0 when it is given"
)
assert np.allclose(V, [86, 86, 82, 83]), (
    f"one sweep from V0 = (100, 100, 100, 100) gives (86, 86, 82, 83); got {V}"
)
assert np.asarray(policy, dtype=float).ravel().tolist() != [2, 1, 0, 0], (
    "the policy (2, 1, 0, 0) is greedy for V0, the values before the last sweep, not for the "
    "V returned: apply bellman_update once more to V and keep its policy"
)
assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
    f"the policy greedy for (86, 86, 82, 83) is (4, 3, 0, 0); got {policy}"
)
assert not np.allclose(history, [-14]), (
    "the change is negative: it is max(V_1 - V_0) without an absolute value; the values fall "
    "here, and the change is max |V_1 - V_0|"
)
assert np.allclose(history, [18]), (
    f"from V0 = 100 the values fall: the change is max |V_1 - V_0| = 18; got {history}"
)
with time_limit(10):
    V, policy, sweeps, history = value_iteration(R, P, BETA, n_sweeps=100)
assert sweeps == 100 and len(history) == 100, "100 sweeps, 100 changes in the history"
assert np.allclose(V, [26.3265, 26.3265, 23.0612, 22.7551], atol=1e-4), (
    f"after 100 sweeps from 0 the values are V* = (26.3265, 26.3265, 23.0612, 22.7551); got {V}"
)
assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
    f"the optimal policy is (4, 3, 0, 0); got {policy}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05 import check_value_iteration_sweeps

check_value_iteration_sweeps(value_iteration, bellman_update)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_value_iteration_epsilon" points=2 title="Exercise 2b: the ε-optimal stopping rule"
# Visible tests
assert bellman_update_passes(), (
    "value_iteration uses your bellman_update, which does not pass the tests of Exercise 1 "
    "yet: fix bellman_update first"
)
# Where the usual mistakes stop the rule on the course's warehouse:
EPSILON_ITSELF = "the change is compared with epsilon itself, not with the threshold"
NO_FACTOR_2 = "the threshold lacks the factor 2: epsilon (1 - beta) / beta, not / (2 beta)"
ONE_MORE = "one more sweep is done after the first change below the threshold"
TWO_BACK = "the change compares V_(k+1) with V_(k-1), two sweeps apart, not with V_k"
GAUSS_SEIDEL = "the sweeps overwrite V state by state (Gauss-Seidel), not from all of V_k"
GLOBAL_BETA = "the threshold is computed with the notebook's BETA = 0.8, not the argument beta"
V_star = np.array([1290, 1290, 1130, 1115]) / 49
WRONG_STOPS = {71: EPSILON_ITSELF, 77: NO_FACTOR_2, 81: ONE_MORE, 84: TWO_BACK, 40: GAUSS_SEIDEL}
CASES = [  # beta, epsilon, the sweeps the rule does, V after them, where mistakes stop
    (BETA, 1e-6, 80, V_star, WRONG_STOPS),
    (BETA, 1e-2, 39, [26.32228, 26.32228, 23.05698, 22.75086], {}),
    (0.9, 1e-4, 132, [50.67772, 50.67772, 47.60994, 47.22944], {124: GLOBAL_BETA}),
]
for beta, epsilon, expected_sweeps, expected_V, wrong_stops in CASES:
    with time_limit(10):
        V, policy, sweeps, history = value_iteration(R, P, beta, epsilon=epsilon)
    assert not (np.ndim(sweeps) == 1 and np.ndim(history) == 0), (
        "the results come in the order (V, policy, sweeps, history): the number of sweeps "
        "third, the list of changes fourth"
    )
    V, history = np.asarray(V, dtype=float).ravel(), np.asarray(history, dtype=float).ravel()
    threshold = epsilon * (1 - beta) / (2 * beta)
    assert len(history) == sweeps, (
        f"the history holds one change per sweep: {len(history)} changes, but {sweeps} sweeps "
        "reported"
        + (" (off by one: report how many sweeps were done)" if len(history) == sweeps + 1 else "")
    )
    assert not np.isclose(history[0], 85**0.5), (
        f"the first change is {history[0]:.4f}, the Euclidean norm (np.linalg.norm) of V_1 - "
        "V_0; the change of a sweep is measured in the sup norm, max_s |V_1(s) - V_0(s)| = 6"
    )
    assert history[0] != 0, (
        "the first change is 0: the old and the new values are the same array (copy V before "
        "the sweep overwrites it)"
    )
    assert sweeps not in wrong_stops, (
        f"beta={beta}, epsilon={epsilon}: your rule stops after {sweeps} sweeps, as it does "
        f"when {wrong_stops.get(sweeps)}"
    )
    assert sweeps == expected_sweeps, (
        f"beta={beta}, epsilon={epsilon}: the rule stops after {expected_sweeps} sweeps, not "
        f"{sweeps}. Stop at the first change below epsilon * (1 - beta) / (2 * beta) = "
        f"{threshold:.3g}."
    )
    assert history[-1] < threshold <= history[-2], "stop at the FIRST change below the threshold"
    assert np.allclose(V, expected_V), (
        f"beta={beta}, epsilon={epsilon}: V after {sweeps} sweeps should be {expected_V}; got {V}"
    )
    assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
        f"the policy should be (4, 3, 0, 0), not {policy}"
    )
V0 = np.full(4, 100.0)
with time_limit(10):
    V, policy, sweeps, history = value_iteration(R, P, BETA, epsilon=1e-3, V0=V0)
assert np.all(V0 == 100), (
    f"value_iteration changed the array V0 it was given in place (V0 is now {V0}): start "
    "from a copy, V = np.array(V0, dtype=float)"
)
assert sweeps == 54, (
    f"from V0 = 100 with epsilon=1e-3 the rule stops after 54 sweeps, not {sweeps}"
    + (
        ": the values fall here, and the change max(V_1 - V_0) is negative; measure it with "
        "an absolute value, max |V_1 - V_0|"
        if sweeps == 1 and np.asarray(history, dtype=float).ravel()[0] < 0
        else ""
    )
    + ("; 49 is where it stops from V0 = 0: start from V0 when it is given" if sweeps == 49 else "")
)
try:
    with time_limit(10):
        V, policy, sweeps, history = value_iteration(R, P, 0.0, epsilon=1e-6)
except ZeroDivisionError:
    raise AssertionError(
        "with beta = 0, epsilon (1 - beta) / (2 beta) divides by zero: the threshold is +inf "
        "then, so the rule stops after one sweep (which is exact)"
    ) from None
assert sweeps == 1 and np.allclose(np.asarray(V, dtype=float).ravel(), [6, 6, 2, 3]), (
    f"with beta = 0 the threshold is +inf: the rule does one sweep and stops, V = (6, 6, 2, "
    f"3); got {sweeps} sweep(s)"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05 import check_value_iteration_epsilon

check_value_iteration_epsilon(value_iteration, bellman_update)
### END HIDDEN TESTS

# %% [markdown]
# ### The course's warehouse, solved a third time
#
# Run the next cell. From $V_0 = 0$, 100 sweeps land on
# $V^* \approx (26.3265, 26.3265, 23.0612, 22.7551)$, exactly $(1290, 1290, 1130, 1115)/49$
# to many digits, and on the policy $(4, 3, 0, 0)$: produce 4 units when the warehouse is
# empty, 3 when it holds one unit (4 on hand either way), nothing otherwise. These are the
# same values and the same policy as the linear program (Lab 03) and policy iteration
# (Lab 04) found. The table shows the first sweeps: the greedy policy is already optimal
# after one sweep, long before the values are.

# %% nbgrader="locked" grade_id="hundred_sweeps"
with time_limit(20):
    V, policy, sweeps, history = value_iteration(R, P, BETA, n_sweeps=100)
print("after", sweeps, "sweeps: V =", np.round(np.asarray(V, dtype=float), 4))
print("policy greedy for V:", [int(a) for a in policy])
print("V* = (1290, 1290, 1130, 1115) / 49 =", np.round(np.array([1290, 1290, 1130, 1115]) / 49, 4))
print()
print("  k   V_k(0)   V_k(1)   V_k(2)   V_k(3)   greedy for V_k   ||V_k - V_(k-1)||")
V_k = np.zeros(4)
for k in range(9):
    if k > 0:
        V_k, _ = bellman_update(R, P, BETA, V_k)
    _, greedy_k = bellman_update(R, P, BETA, V_k)
    change = f"{history[k - 1]:10.4f}" if k > 0 else "         -"
    values = "".join(f"{v:9.4f}" for v in V_k)
    print(f"{k:3d}{values}   {[int(a) for a in greedy_k]!s:16} {change}")

# %% [markdown]
# ### Value iteration is Lab 01's backward recursion, run for longer and longer
#
# The iterates from $V_0 = 0$ have a meaning of their own: **$V_k(s)$ is the least expected
# discounted cost of running the warehouse for $k$ periods from inventory $s$, with nothing
# owed after the last period.** Sweep $k$ computes
# $V_k(s) = \min_{a} \big[ r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V_{k-1}(s') \big]$,
# which is the backward recursion $f_n(s) = \min_x \big[ h(s, x) + f_{n+1}(g(s, x)) \big]$
# of Lab 01 with two changes: demand is random, so the next period's value is averaged
# over it, and it is discounted by $\beta$. With terminal values $f_{k+1} = 0$, the
# recursion's $f_1$ over a horizon of $k$ periods is $V_k$, and $f_{k+1-j} = V_j$ on the
# way back. So value iteration solves ever longer finite-horizon problems, and $V^*$ is the
# limit of their optimal costs: what the periods after $k$ can add is at most
# $\beta^k \max_{s,a} |r(s, a)| / (1 - \beta)$.
#
# The next cell writes that recursion as Lab 01 did, with inventories, productions and
# demands instead of arrays, and sets it beside your `value_iteration` with `n_sweeps=k`.


# %% nbgrader="locked" grade_id="k_period_costs" autograde="skip"
def k_period_costs(horizon, beta=BETA, capacity=3, demand_pmf=None):
    """f_1 of Lab 01's backward recursion over `horizon` periods with zero terminal values,
    the next period's value averaged over the random demand and discounted by beta."""
    demand_pmf = {1: 0.5, 2: 0.5} if demand_pmf is None else demand_pmf
    low, high = min(demand_pmf), max(demand_pmf)
    f = [0.0] * (capacity + 1)  # f_(N+1): nothing is owed after the last period
    for _ in range(horizon):
        f = [
            min(
                4 * (x > 0) + x + s + beta * sum(p * f[s + x - d] for d, p in demand_pmf.items())
                for x in range(capacity + high + 1)
                if s + x >= high and s + x - low <= capacity  # demand met, no overflow
            )
            for s in range(capacity + 1)
        ]
    return np.array(f)


print(" k   f_1 over k periods (Lab 01 style)     V_k from your value_iteration    same?")
with time_limit(10):
    for k in range(1, 7):
        f_1 = k_period_costs(k)
        V_k = np.asarray(value_iteration(R, P, BETA, n_sweeps=k)[0], dtype=float)
        same = "yes" if np.allclose(f_1, V_k) else "NO: check Exercise 2"
        print(f"{k:2d}  {np.round(f_1, 4)!s:36} {np.round(V_k, 4)!s:32} {same}")

# %% [markdown]
# ## 4 · Watching the error shrink
#
# How fast does value iteration approach $V^*$ in practice, compared with the guarantee
# $\|V_k - V^*\|_\infty \le \beta^k \|V_0 - V^*\|_\infty$? On a log scale a geometric
# sequence is a straight line with slope $\log \beta$, so the plot below uses a logarithmic
# vertical axis. To know the error we need $V^*$ itself: the read-only cell computes it
# exactly, as the value of the policy your value iteration returns, by solving
# $(I - \beta P_\pi) V = r_\pi$ as in Lab 02. (If your policy is optimal, that is $V^*$.)
#
# The left panel shows the error and the bound; the right panel shows what value iteration
# can actually see, the change of each sweep, against the threshold
# $\varepsilon(1-\beta)/(2\beta)$ of the stopping rule for $\varepsilon = 10^{-6}$. The dotted
# vertical line marks the sweep where the rule stops.


# %% nbgrader="locked" grade_id="convergence_helpers"
def exact_policy_values(R, P, beta, policy):
    """V_pi from (I - beta P_pi) V = r_pi, for the policy choosing column policy[s]."""
    states = np.arange(np.shape(R)[0])
    chosen = np.asarray(policy, dtype=int)
    r_pi = np.asarray(R, dtype=float)[states, chosen]
    P_pi = np.asarray(P, dtype=float)[states, chosen]
    return np.linalg.solve(np.eye(states.size) - beta * P_pi, r_pi)


def optimal_values(R, P, beta):
    """V* and an optimal policy: the exact value of the policy value iteration returns."""
    with time_limit(10):
        _, policy, _, _ = value_iteration(R, P, beta, epsilon=1e-9)
    policy = [int(a) for a in policy]
    return exact_policy_values(R, P, beta, policy), policy


def sweep_values(R, P, beta, n, V0):
    """The iterates V_0, V_1, ..., V_n as the rows of an array."""
    iterates = [np.asarray(V0, dtype=float)]
    for _ in range(n):
        iterates.append(np.asarray(bellman_update(R, P, beta, iterates[-1])[0], dtype=float))
    return np.array(iterates)


def plot_convergence(R, P, beta, epsilon, V0, axes):
    """Error and bound (left axes) and changes with the threshold (right axes)."""
    V_opt, _ = optimal_values(R, P, beta)
    with time_limit(10):
        _, _, stop, _ = value_iteration(R, P, beta, epsilon=epsilon, V0=V0)
    n = stop + 10
    iterates = sweep_values(R, P, beta, n, V0)
    k = np.arange(n + 1)
    error = np.max(np.abs(iterates - V_opt), axis=1)
    left, right = axes
    left.semilogy(
        k,
        beta**k * error[0],
        "-",
        color="tab:orange",
        linewidth=6,
        alpha=0.35,
        label=r"bound $\beta^k \|V_0 - V^*\|_\infty$",
    )
    left.semilogy(
        k, error, "o-", markersize=3, color="tab:blue", label=r"error $\|V_k - V^*\|_\infty$"
    )
    left.axhline(epsilon / 2, color="grey", linewidth=1, label=r"$\varepsilon / 2$")
    changes = np.max(np.abs(np.diff(iterates, axis=0)), axis=1)
    right.semilogy(
        k[1:],
        changes,
        "o-",
        markersize=3,
        color="tab:green",
        label=r"change $\|V_k - V_{k-1}\|_\infty$",
    )
    threshold = epsilon * (1 - beta) / (2 * beta)
    right.axhline(
        threshold, color="grey", linewidth=1, label=r"threshold $\varepsilon(1-\beta)/(2\beta)$"
    )
    for ax in axes:
        ax.axvline(stop, color="black", linestyle=":", label=f"rule stops: sweep {stop}")
        ax.set_xlabel("sweep k")
        ax.legend(fontsize=8)
    left.set_title(rf"$\beta = {beta}$: distance to $V^*$")
    right.set_title(rf"$\beta = {beta}$: what value iteration sees")


# %% nbgrader="locked" grade_id="plot_convergence" autograde="skip"
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
plot_convergence(R, P, BETA, 1e-6, np.zeros(4), axes)
fig.tight_layout()
plt.show()

# %% [markdown]
# Three things to see. The error is a straight line on the log scale, parallel to the bound
# and just below it: on this warehouse the error shrinks by almost exactly the factor
# $\beta = 0.8$ per sweep, so the guarantee is nearly tight. The change of a sweep falls at
# the same rate, so the stopping rule, which only sees the changes, stops at a predictable
# sweep. And when it stops, the error has just dropped below $\varepsilon / 2$: the rule
# asks for no more sweeps than its guarantee needs here.
#
# ## 5 · What the discount factor changes
#
# The read-only cell below runs your value iteration with $\varepsilon = 10^{-6}$ on the
# course's warehouse for several discount factors, prints the sweeps, the values and the
# policy, and plots the number of sweeps against $\beta$.

# %% nbgrader="locked" grade_id="beta_table" autograde="skip"
betas = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99]
needed = []
print(" beta  sweeps   V(0)       V(1)       V(2)       V(3)      policy")
with time_limit(30):
    for beta in betas:
        V, policy, sweeps, _ = value_iteration(R, P, beta, epsilon=1e-6)
        needed.append(sweeps)
        values = "".join(f"{v:11.4f}" for v in np.asarray(V, dtype=float))
        print(f"{beta:5.2f} {sweeps:7d} {values}   {[int(a) for a in policy]}")

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.semilogy(betas[1:], needed[1:], "o-", label=r"sweeps for $\varepsilon = 10^{-6}$")
ax.set_xlabel(r"discount factor $\beta$")
ax.set_ylabel("sweeps (log scale)")
ax.set_title("value iteration on the course's warehouse")
ax.legend()
plt.show()

# %% [markdown]
# Look at the three columns of the table.
#
# - **Sweeps.** From 25 sweeps at $\beta = 0.5$ to about 2,000 at $\beta = 0.99$: the
#   error shrinks by the factor $\beta$ per sweep, and $\beta^k$ becomes small only after
#   about $1/(1-\beta)$ sweeps. Question 2 asks you to make this precise.
# - **Values.** They grow like $1/(1-\beta)$: a warehouse that pays a few units per period
#   forever pays about $c/(1-\beta)$ in discounted terms, 5 periods' worth at $\beta = 0.8$
#   and 100 at $\beta = 0.99$.
# - **Policy.** With a short memory ($\beta < 1/2$) the warehouse produces as little as it
#   may, $(2, 1, 0, 0)$, and pays the setup cost in every period once its stock is below 2.
#   A far-sighted warehouse ($\beta > 1/2$) fills up, $(4, 3, 0, 0)$, and pays the setup
#   cost less often. At exactly $\beta = 1/2$ the two policies cost the same, so the row
#   $\beta = 0.5$ may show either, depending on rounding in the last digits; section 7
#   finds that point for any policy.

# %% [markdown]
# ## 6 · Gauss–Seidel value iteration
#
# A Jacobi sweep computes all of $V_{k+1}$ from $V_k$. Yet when it reaches state $s$, the new
# values of the states $0, 1, \dots, s-1$ are already known, and they are closer to $V^*$
# than the old ones. **Gauss–Seidel value iteration** uses them at once: one sweep
# overwrites $V(s)$ state by state, in the order $s = 0, 1, \dots, S-1$,
#
# $$
# V(s) \;\leftarrow\; \min_{a \in A(s)} \Big[ r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s') \Big],
# $$
#
# where the $V$ on the right already holds the new values of the states before $s$, and the
# old values of $s$ and the states after it. Call one such sweep $G$, so that
# $V_{k+1} = G V_k$.
#
# **$G$ is a contraction with modulus $\beta$ too, with the same fixed point.** Take two
# vectors $U$ and $V$, and sweep both. Before the update of state $s$, suppose the two
# partly updated vectors differ by at most $\|U - V\|_\infty$ in every entry (true before
# the first update). The update of $s$ is a Bellman update of those vectors, so by the
# argument of section 2 the new values of $s$ differ by at most
# $\beta \|U - V\|_\infty \le \|U - V\|_\infty$, and the supposition holds for the next
# state. At the end of the sweep every entry differs by at most $\beta \|U - V\|_\infty$.
# And $G V^* = V^*$, since updating any entry of $V^*$ gives it back. So the bound of
# section 3 holds word for word, $\|V_{k+1} - V^*\|_\infty \le \frac{\beta}{1 - \beta}
# \|V_{k+1} - V_k\|_\infty$, and the same stopping rule returns values within
# $\varepsilon / 2$ of $V^*$. (Puterman, 1994, §6.3.3 studies the method; it converges at
# least as fast as Jacobi value iteration, and often faster.) For the policy greedy for
# values $V$ there is a general bound,
# $\|V_\pi - V^*\|_\infty \le \frac{2\beta}{1-\beta} \|V - V^*\|_\infty$ (Singh and Yee,
# 1994), so it is near-optimal too; on the warehouse below it is optimal.
#
# ### Exercise 3 (autograded): Gauss–Seidel value iteration
#
# Write `gauss_seidel(R, P, beta, epsilon, V0=None)`, with the arguments of Exercise 2's
# stopping rule, that does Gauss–Seidel sweeps until the rule holds and returns
# `(V, policy, sweeps, history)` as `value_iteration` does:
#
# - start from a copy of `V0`, or from zeros; update the states in the order
#   $0, 1, \dots, S-1$, each from the current `V`;
# - the change of a sweep is $\max_s |V_{\text{after}}(s) - V_{\text{before}}(s)|$, where
#   `V_before` is a copy taken before the sweep starts;
# - stop after the first sweep whose change is strictly below
#   $\varepsilon (1 - \beta) / (2\beta)$ (after one sweep when $\beta = 0$);
# - return the values, the policy greedy for them (as in Exercise 1: smallest action among
#   ties), the number of sweeps and the list of their changes.

# %% [markdown]
# <details><summary>Hint 1 (click to open)</summary>
#
# The only difference from `value_iteration` is inside the sweep: instead of
# `V_next, _ = bellman_update(R, P, beta, V)`, loop over the states and assign
# `V[s] = min over feasible a of R[s, a] + beta * P[s, a] @ V`. Because `V` is changed in
# place, later states see the new values automatically.
# </details>
#
# <details><summary>Hint 2</summary>
#
# `np.min(R[s] + beta * (P[s] @ V))` is the update of state `s`: `P[s] @ V` has one entry
# per action, and infeasible actions keep their infinite cost. Take `V_before = V.copy()`
# before the loop over the states; without the copy, `V_before` would change with `V` and
# every change would be 0.
# </details>


# %% nbgrader="answer" grade_id="gauss_seidel"
def gauss_seidel(R, P, beta, epsilon, V0=None):
    """Gauss-Seidel value iteration until the epsilon-optimal rule holds.

    Returns (V, policy greedy for V, number of sweeps, history of sup-norm changes).
    """
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    V = np.zeros(R.shape[0]) if V0 is None else np.array(V0, dtype=float)  # a copy
    threshold = np.inf if beta == 0 else epsilon * (1 - beta) / (2 * beta)
    history = []
    while not history or history[-1] >= threshold:
        V_before = V.copy()
        for s in range(V.size):  # in order: states after s see the new V[s]
            V[s] = np.min(R[s] + beta * (P[s] @ V))
        history.append(float(np.max(np.abs(V - V_before))))
    policy = np.argmin(R + beta * (P @ V), axis=1)  # greedy for the values returned
    return V, policy, len(history), history
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_gauss_seidel" points=2 title="Exercise 3: Gauss–Seidel value iteration"
# Visible tests
# Where the usual mistakes stop on the course's warehouse (epsilon = 1e-6 / beta = 0.9, 1e-4):
GS_WRONG_STOPS = {
    80: "these are Jacobi sweeps (all of V_(k+1) from V_k); Gauss-Seidel overwrites V(s) "
    "state by state, so that later states use the new values at once",
    48: "the states are updated in the order 3, 2, 1, 0; sweep them in the order 0, 1, ..., S-1",
    36: "the change is compared with epsilon itself, not with epsilon (1 - beta) / (2 beta)",
    38: "the threshold lacks the factor 2: epsilon (1 - beta) / (2 beta)",
    41: "one more sweep is done after the first change below the threshold",
    1: "the change of the first sweep is 0: V_before is the same array as V (take a copy, "
    "V.copy(), before the sweep)",
    62: "the threshold is computed with the notebook's BETA = 0.8, not with the argument beta",
    132: "these are Jacobi sweeps (all of V_(k+1) from V_k); Gauss-Seidel overwrites V(s) "
    "state by state",
    79: "the states are updated in the order 3, 2, 1, 0; sweep them in the order 0, 1, ..., S-1",
}
V_star = np.array([1290, 1290, 1130, 1115]) / 49
for beta, epsilon, expected_sweeps, expected_V in [
    (BETA, 1e-6, 40, V_star),
    (0.9, 1e-4, 65, [50.67774, 50.67774, 47.60997, 47.22947]),
]:
    with time_limit(10):
        result = gauss_seidel(R, P, beta, epsilon)
    assert isinstance(result, tuple | list) and len(result) == 4, (
        "return (V, policy, sweeps, history)"
    )
    V, policy, sweeps, history = result
    V, history = np.asarray(V, dtype=float).ravel(), np.asarray(history, dtype=float).ravel()
    assert sweeps not in GS_WRONG_STOPS or sweeps == expected_sweeps, (
        f"beta={beta}, epsilon={epsilon}: your method stops after {sweeps} sweeps, as it does "
        f"when {GS_WRONG_STOPS.get(sweeps)}"
    )
    assert sweeps == expected_sweeps, (
        f"beta={beta}, epsilon={epsilon}: Gauss-Seidel sweeps stop after {expected_sweeps} "
        f"sweeps, not {sweeps}"
    )
    assert len(history) == sweeps, (
        f"the history holds one change per sweep: {len(history)} changes for {sweeps} sweeps"
    )
    assert np.allclose(V, expected_V, atol=1e-4), (
        f"beta={beta}, epsilon={epsilon}: V should be within epsilon / 2 of {expected_V}; got {V}"
    )
    assert np.asarray(policy, dtype=float).ravel().tolist() == [4, 3, 0, 0], (
        f"the policy greedy for the values returned is (4, 3, 0, 0); got {policy}"
    )
with time_limit(10):
    V, policy, sweeps, history = gauss_seidel(R, P, BETA, 20.0)
V, history = np.asarray(V, dtype=float).ravel(), np.asarray(history, dtype=float).ravel()
assert np.allclose(history[:3], [8.68, 5.68, 4.352]), (
    "from V0 = 0 the first three Gauss-Seidel sweeps change V by 8.68, 5.68 and 4.352 (the "
    f"first sweep gives V = (6, 7, 7.2, 8.68)); got {history[:3]}"
)
assert sweeps == 6 and np.allclose(V, [23.29347, 23.44538, 20.69554, 20.65637]), (
    f"with epsilon = 20 the rule stops after 6 sweeps at V = (23.29347, 23.44538, 20.69554, "
    f"20.65637); got {sweeps} sweeps and V = {V}"
)
V0 = np.full(4, 100.0)
with time_limit(10):
    V, policy, sweeps, history = gauss_seidel(R, P, BETA, 1e-3, V0=V0)
assert np.all(V0 == 100), (
    f"gauss_seidel changed the array V0 it was given in place (V0 is now {V0}): start from a "
    "copy, V = np.array(V0, dtype=float)"
)
assert sweeps != 26, "from V0 = 100 it stops where it stops from zeros: start from V0 when given"
assert sweeps == 27, (
    f"from V0 = 100 with epsilon = 1e-3 the rule stops after 27 sweeps, not {sweeps}"
    + (
        ": the values fall here, so measure the change with an absolute value"
        if sweeps == 1
        else ""
    )
)
try:
    with time_limit(10):
        V, policy, sweeps, history = gauss_seidel(R, P, 0.0, 1e-6)
except ZeroDivisionError:
    raise AssertionError(
        "with beta = 0, epsilon (1 - beta) / (2 beta) divides by zero: the threshold is +inf "
        "then, so the rule stops after one sweep"
    ) from None
assert sweeps == 1 and np.allclose(np.asarray(V, dtype=float).ravel(), [6, 6, 2, 3]), (
    f"with beta = 0 one sweep is exact: V = (6, 6, 2, 3) after 1 sweep; got {sweeps} sweep(s)"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05_gauss_seidel import check_gauss_seidel

check_gauss_seidel(gauss_seidel, bellman_update)
### END HIDDEN TESTS

# %% [markdown]
# On the course's warehouse Gauss–Seidel needs 40 sweeps where Jacobi value iteration needs
# 80: using each new value at once halves the work here. The gain depends on the order in
# which the states are swept: in the order $3, 2, 1, 0$ the rule needs 48 sweeps. Look at
# the first sweep from $V_0 = 0$, $(6, 7, 7.2, 8.68)$: each state already sees the costs
# of the states updated before it, where a Jacobi sweep gives $(6, 6, 2, 3)$.

# %% [markdown]
# ## 7 · The inverse question: for which β is $(4, 3, 0, 0)$ optimal?
#
# Section 5's table showed the optimal policy switch from $(2, 1, 0, 0)$ to
# $(4, 3, 0, 0)$ as $\beta$ grows. Turn the question round: given a policy, for which
# discount factors is it optimal? Two facts answer it for any one $\beta$.
#
# - **Its values.** $V_\pi$ solves the linear system $(I - \beta P_\pi) V = r_\pi$ (Lab 02).
# - **The optimality test.** $\pi$ is optimal exactly when $V_\pi$ solves the optimality
#   equation, $T V_\pi = V_\pi$: no action improves on $\pi$ in any state when the future is
#   valued by $V_\pi$. One direction is the uniqueness of the fixed point of $T$ (section
#   2): if $T V_\pi = V_\pi$ then $V_\pi = V^*$. The other is that $V^* = T V^*$. (Puterman,
#   1994, §6.2; Lab 04's policy improvement step is the same test.)
#
# ### Exercise 4a (autograded): is a policy optimal?
#
# Write `is_optimal(R, P, beta, policy, tol=1e-9)` that returns `True` when the policy
# (`policy[s]` is an action column of `R`, feasible in `s`) is optimal for the discount
# factor `beta`, and `False` otherwise:
#
# 1. compute $V_\pi$ by solving $(I - \beta P_\pi) V = r_\pi$ (`np.linalg.solve`);
# 2. compute the Q-values $Q(s, a) = r(s, a) + \beta \sum_{s'} P(s' \mid s, a) V_\pi(s')$;
# 3. return `False` when some feasible action **improves**, that is, has
#    $Q(s, a) < V_\pi(s) - \text{tol} \cdot \max(1, |V_\pi(s)|)$, and `True` otherwise.
#
# The tolerance matters: where two policies tie, their Q-values are equal in exact
# arithmetic but may differ in the last digit of a float.

# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# With `states = np.arange(len(policy))`, the rows `R[states, policy]` and
# `P[states, policy]` are $r_\pi$ and $P_\pi$. Then `Q = R + beta * (P @ V)` as in
# Exercise 1, and `Q.min(axis=1)` is the best Q-value of each state; compare it with `V`.
# Do not compare the policy with an `argmin` of `Q`: where actions tie, `argmin` picks one
# of them, and a tied policy is just as optimal.
# </details>


# %% nbgrader="answer" grade_id="is_optimal"
def is_optimal(R, P, beta, policy, tol=1e-9):
    """True when no feasible action improves on the policy's own values V_pi (T V_pi = V_pi)."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    chosen = np.asarray(policy, dtype=int)
    V = np.linalg.solve(np.eye(states.size) - beta * P[states, chosen], R[states, chosen])
    best = (R + beta * (P @ V)).min(axis=1)  # infeasible pairs stay at +inf
    return bool(np.all(best >= V - tol * np.maximum(1.0, np.abs(V))))
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_is_optimal" points=1 title="Exercise 4a: is a policy optimal?"
# Visible tests
def answer_is(result, expected, call):
    assert isinstance(result, bool | np.bool_), (
        f"{call} should return True or False, not {type(result).__name__}"
    )
    assert bool(result) == expected, f"{call} should be {expected}, got {bool(result)}" + (
        ". Is the comparison made with the tolerance? Q(s, pi(s)) equals V_pi(s) only up to "
        "rounding, and that does not make it an improvement"
        if expected
        else ""
    )


answer_is(is_optimal(R, P, BETA, [4, 3, 0, 0]), True, "is_optimal(R, P, 0.8, (4, 3, 0, 0))")
answer_is(is_optimal(R, P, BETA, [2, 1, 0, 0]), False, "is_optimal(R, P, 0.8, (2, 1, 0, 0))")
result = is_optimal(R, P, 0.3, [4, 3, 0, 0])
assert not result, (
    "is_optimal(R, P, 0.3, (4, 3, 0, 0)) should be False: with beta = 0.3 it is (2, 1, 0, 0) "
    "that is optimal"
    + (
        ". Your is_optimal also says (2, 1, 0, 0) is not optimal at beta = 0.3, as it would be "
        "at beta = 0.8: does it use the notebook's BETA instead of the argument beta?"
        if not is_optimal(R, P, 0.3, [2, 1, 0, 0])
        else ""
    )
)
answer_is(is_optimal(R, P, 0.3, [2, 1, 0, 0]), True, "is_optimal(R, P, 0.3, (2, 1, 0, 0))")
# At beta = 1/2 several policies tie: (2, 1, 0, 0), (4, 3, 0, 0) and (3, 3, 0, 0), among
# others, all cost exactly (12, 12, 8, 8), and all are optimal.
for tied in ([2, 1, 0, 0], [4, 3, 0, 0], [3, 3, 0, 0]):
    assert is_optimal(R, P, 0.5, tied), (
        f"is_optimal(R, P, 0.5, {tuple(tied)}) should be True: at beta = 1/2 the policies "
        "(2, 1, 0, 0), (4, 3, 0, 0) and (3, 3, 0, 0) tie, with values (12, 12, 8, 8). A tied "
        "policy is optimal: compare Q-values with V_pi using the tolerance (not with ==, "
        "not with <, and not by comparing the policy with an argmin)"
    )
answer_is(is_optimal(R, P, 0.5, [2, 1, 1, 0]), False, "is_optimal(R, P, 0.5, (2, 1, 1, 0))")
answer_is(is_optimal(R, P, 0.51, [2, 1, 0, 0]), False, "is_optimal(R, P, 0.51, (2, 1, 0, 0))")
R_before, P_before = R.copy(), P.copy()
is_optimal(R, P, 0.9, [4, 3, 0, 0])
assert np.array_equal(R, R_before) and np.array_equal(P, P_before), (
    "is_optimal changed R or P in place; leave its arguments as they were given"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05_switching import check_is_optimal

check_is_optimal(is_optimal)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4b (autograded): where the policy switches
#
# As $\beta$ moves from `lo` to `hi`, a policy that is optimal at one end and not at the
# other must stop (or start) being optimal somewhere in between. Write
# `switching_beta(R, P, policy, lo, hi, tol=1e-8)` that finds that point by **bisection**:
#
# - if `is_optimal` gives the same answer at `lo` and at `hi`, raise a `ValueError` that
#   says so;
# - otherwise keep an interval whose two ends get different answers, halve it, keep the
#   half whose ends still differ, and stop once it is shorter than `tol`;
# - return the midpoint of the last interval, a float.
#
# You may assume that the policy is optimal on one interval of discount factors that
# reaches `lo` or `hi`, so that the switching point is unique. Either end may be the
# optimal one: `(4, 3, 0, 0)` is optimal at `hi = 0.8` and `(2, 1, 0, 0)` at `lo = 0`.

# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Remember which answer belongs to `lo`: `at_lo = is_optimal(R, P, lo, policy)`. In the
# loop, `mid = (lo + hi) / 2`; if `is_optimal(R, P, mid, policy) == at_lo`, the switch is
# to the right of `mid` (`lo = mid`), otherwise to its left (`hi = mid`). Each step halves
# the interval, so about $\log_2((hi - lo)/\text{tol})$ steps are needed: 27 for
# `tol=1e-8` on $[0, 0.8]$.
# </details>


# %% nbgrader="answer" grade_id="switching_beta"
def switching_beta(R, P, policy, lo, hi, tol=1e-8):
    """The discount factor in [lo, hi] where the policy starts or stops being optimal."""
    ### BEGIN SOLUTION
    at_lo = is_optimal(R, P, lo, policy)
    if at_lo == is_optimal(R, P, hi, policy):
        raise ValueError(
            f"the policy is {'optimal' if at_lo else 'not optimal'} at both ends, "
            f"beta = {lo} and beta = {hi}: there is no switch to find"
        )
    while hi - lo >= tol:
        mid = (lo + hi) / 2
        if is_optimal(R, P, mid, policy) == at_lo:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_switching_beta" points=2 title="Exercise 4b: where the policy switches"
# Visible tests
def is_optimal_passes():
    """Whether your is_optimal gets the course's warehouse right at beta = 0.3, 0.5 and 0.8."""
    try:
        return all(
            bool(is_optimal(R, P, beta, policy)) == expected
            for beta, policy, expected in [
                (0.8, [4, 3, 0, 0], True),
                (0.8, [2, 1, 0, 0], False),
                (0.3, [4, 3, 0, 0], False),
                (0.3, [2, 1, 0, 0], True),
                (0.5, [3, 3, 0, 0], True),
            ]
        )
    except NotImplementedError:
        raise  # Exercise 4a is not done yet
    except Exception:
        return False


assert is_optimal_passes(), (
    "switching_beta uses your is_optimal, which does not pass the tests of Exercise 4a yet: "
    "fix is_optimal first"
)
for policy in ([4, 3, 0, 0], [2, 1, 0, 0]):
    with time_limit(20):
        found = switching_beta(R, P, policy, 0.0, 0.8)
    assert isinstance(found, float | np.floating), (
        f"switching_beta should return a float, not {type(found).__name__}"
    )
    assert min(found, 0.8 - found) > 1e-3, (
        f"switching_beta(R, P, {tuple(policy)}, 0.0, 0.8) returned {found}, an end of the "
        "interval: keep the half whose ends get different answers from is_optimal (the policy "
        "may be optimal at lo or at hi), halve it until it is shorter than tol, and return "
        "its midpoint"
    )
    assert abs(found - 0.5) <= 1e-6, (
        f"switching_beta(R, P, {tuple(policy)}, 0.0, 0.8) should be 1/2 (within tol), where "
        f"(2, 1, 0, 0) and (4, 3, 0, 0) tie; got {found}"
        + (
            ": a grid or a fixed number of halvings is too coarse; halve until the interval "
            "is shorter than tol"
            if abs(found - 0.5) < 0.05
            else ""
        )
    )
with time_limit(20):
    coarse = switching_beta(R, P, [4, 3, 0, 0], 0.0, 0.8, tol=0.05)
assert abs(coarse - 0.5) <= 0.05, (
    f"with tol=0.05 the answer should be within 0.05 of 1/2; got {coarse}"
)
assert abs(coarse - 0.5) > 1e-4, (
    f"with tol=0.05 the bisection should stop once the interval is shorter than 0.05, a few "
    f"halvings of [0, 0.8], and return a midpoint 0.0125 or more away from 1/2; got {coarse}, "
    "which is what many more halvings give. Use the argument tol"
)
# A warehouse with a cheaper setup switches later:
R3, P3 = warehouse_arrays(setup_cost=3)
with time_limit(20):
    found = switching_beta(R3, P3, [4, 3, 0, 0], 0.0, 0.95)
assert abs(found - 2 / 3) <= 1e-6, (
    f"with setup_cost=3, (4, 3, 0, 0) becomes optimal at beta = 2/3; got {found}: read the "
    "model from R and P"
)
for lo, hi in [(0.6, 0.9), (0.0, 0.4)]:
    try:
        with time_limit(20):
            switching_beta(R, P, [4, 3, 0, 0], lo, hi)
    except ValueError:
        continue
    raise AssertionError(
        f"(4, 3, 0, 0) is {'optimal' if lo > 0.5 else 'not optimal'} at both beta = {lo} and "
        f"beta = {hi}: switching_beta should raise a ValueError"
    )
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05_switching import check_switching_beta

check_switching_beta(switching_beta, is_optimal)
### END HIDDEN TESTS

# %% [markdown]
# So the course's policy is optimal for every $\beta \ge 1/2$, and the short-sighted
# $(2, 1, 0, 0)$ for every $\beta \le 1/2$. At $\beta = 1/2$ exactly, every policy that
# produces only when the stock is below 2 is optimal, whatever amount it produces: all nine
# of them cost $(12, 12, 8, 8)$. With a setup cost of 3 the switch
# moves up to $\beta = 2/3$: the cheaper a setup, the more patient the warehouse must be
# before stocking up to save one. (Try setup costs 6 and 8 with your function: the switch
# comes at $1/3$ and $1/4$. On this warehouse it sits at $\beta = 2/K$ for a setup cost
# $K > 2$; for $K \le 2$ filling up never pays.)

# %% [markdown]
# ## 8 · Four methods as the warehouse grows
#
# The series now has four ways to solve the same model: value iteration, Gauss–Seidel
# value iteration, modified policy iteration and policy iteration (Lab 04). Which is
# fastest? It depends on the size of the model and on $\beta$, and the way to find out is
# to measure. The read-only cell below holds compact versions of Lab 04's two methods, and
# puts all four behind one signature, `solve(R, P, beta, epsilon)`, which returns
# `(V, policy, iterations)`:
#
# | method | one iteration | `iterations` counts |
# |---|---|---|
# | value iteration (yours) | one Jacobi sweep, about $S^2 A$ operations | sweeps |
# | Gauss–Seidel (yours) | one Gauss–Seidel sweep, as many operations | sweeps |
# | modified policy iteration, $k = 5$ | one sweep of $T$ and 5 sweeps of $T_\pi$ | improvement steps |
# | policy iteration | a linear solve, about $S^3$, and one sweep of $T$ | improvement steps |


# %% nbgrader="locked" grade_id="four_methods"
def policy_iteration_compact(R, P, beta, epsilon=None):
    """Lab 04's policy iteration from the greedy policy for V = 0 (epsilon is not used:
    the method is exact). Returns (V, policy, improvement steps)."""
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    policy = np.argmin(R, axis=1)
    for step in range(1, 1000):
        V = np.linalg.solve(np.eye(states.size) - beta * P[states, policy], R[states, policy])
        Q = R + beta * (P @ V)
        best = Q.min(axis=1)
        improves = best < Q[states, policy] - 1e-12 * np.maximum(1.0, np.abs(best))
        if not improves.any():
            return V, policy, step
        policy = np.where(improves, Q.argmin(axis=1), policy)  # change only where it pays
    raise RuntimeError("policy iteration did not stop")


def modified_policy_iteration_compact(R, P, beta, epsilon, k=5):
    """Lab 04's modified policy iteration: improve with u = T V, stop when ||u - V|| is
    below epsilon (1 - beta) / (2 beta), else k sweeps of T_pi from u.
    Returns (V, policy, improvement steps)."""
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    threshold = np.inf if beta == 0 else epsilon * (1 - beta) / (2 * beta)
    V = np.zeros(states.size)
    for step in range(1, 100_000):
        Q = R + beta * (P @ V)
        policy = Q.argmin(axis=1)
        U = Q[states, policy]
        if np.max(np.abs(U - V)) < threshold:
            return U, np.argmin(R + beta * (P @ U), axis=1), step
        for _ in range(k):
            U = R[states, policy] + beta * (P[states, policy] @ U)
        V = U
    raise RuntimeError("modified policy iteration did not stop")


SOLVERS = {
    "value iteration": lambda R, P, beta, epsilon: tuple(
        value_iteration(R, P, beta, epsilon=epsilon)[:3]
    ),
    "Gauss-Seidel": lambda R, P, beta, epsilon: tuple(gauss_seidel(R, P, beta, epsilon)[:3]),
    "modified PI (k = 5)": modified_policy_iteration_compact,
    "policy iteration": policy_iteration_compact,
}
for name, solve in SOLVERS.items():
    try:
        with time_limit(10):
            _, solved_policy, solved_in = solve(R, P, BETA, 1e-6)
        print(f"{name:20} {solved_in:3d} iterations  policy {[int(a) for a in solved_policy]}")
    except NotImplementedError:
        print(f"{name:20} not written yet")
    except Exception as error:  # a student's solver may still be wrong here
        print(f"{name:20} failed: {type(error).__name__}: {error}")

# %% [markdown]
# ### Exercise 5 (autograded): a fair race
#
# Write `compare_methods(capacities, beta, epsilon)` that races the four solvers of
# `SOLVERS` on warehouses of growing capacity.
#
# - For each capacity `c` in `capacities`, in the order given, build the course's warehouse
#   with that capacity, `warehouse_arrays(capacity=c)` (all other parameters as in the
#   course), and call **every** solver of `SOLVERS` once on it, with the arguments `beta`
#   and `epsilon`.
# - Time each call alone with `time.perf_counter()`: read the clock right before and right
#   after the call and keep the difference, in seconds, as a float. Building the arrays is
#   not part of any solver's time.
# - Return a dict from each solver's name (the keys of `SOLVERS`) to a dict with two lists
#   in the order of `capacities`: `"iterations"`, as the solver reported them, and
#   `"seconds"`.
#
# For instance, `compare_methods([1, 2, 3], 0.9, 1e-3)["Gauss-Seidel"]["iterations"]` is
# `[87, 78, 56]`.

# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Start with `table = {name: {"iterations": [], "seconds": []} for name in SOLVERS}`. In a
# loop over the capacities, build `R_c, P_c` once, then loop over `SOLVERS.items()`:
# `start = time.perf_counter()`, call `solve(R_c, P_c, beta, epsilon)`, then
# `elapsed = time.perf_counter() - start`, and append to the two lists. Name the arrays
# `R_c, P_c` rather than `R, P`, so that the course's `R` and `P` stay as they are.
# </details>


# %% nbgrader="answer" grade_id="compare_methods"
def compare_methods(capacities, beta, epsilon):
    """Iterations and seconds of each solver in SOLVERS on warehouse_arrays(capacity=c)."""
    ### BEGIN SOLUTION
    table = {name: {"iterations": [], "seconds": []} for name in SOLVERS}
    for capacity in capacities:
        R_c, P_c = warehouse_arrays(capacity=capacity)
        for name, solve in SOLVERS.items():
            start = time.perf_counter()
            _, _, iterations = solve(R_c, P_c, beta, epsilon)
            table[name]["seconds"].append(time.perf_counter() - start)
            table[name]["iterations"].append(iterations)
    return table
    ### END SOLUTION


# %% [markdown]
# The race uses your `value_iteration` and `gauss_seidel`. The tests below judge the race
# with whatever iterations your solvers report, right or wrong; they only need the solvers
# to run. The helper in the next cell checks that they do, on two small warehouses.


# %% nbgrader="locked" grade_id="exercise5_helpers"
def own_solvers_run():
    """Whether your value_iteration and gauss_seidel return four results, within a few
    seconds, on the course's warehouse and on warehouse_arrays(capacity=1)."""
    if not bellman_update_passes():
        return False  # value_iteration inherits the mistake, and may never stop
    try:
        for arrays in [(R, P), warehouse_arrays(capacity=1)]:
            with time_limit(3):
                results = [
                    value_iteration(*arrays, 0.9, epsilon=1e-3),
                    gauss_seidel(*arrays, 0.9, 1e-3),
                ]
            for result in results:
                if not (isinstance(result, tuple | list) and len(result) == 4):
                    return False
                if np.ndim(result[2]) != 0 or float(result[2]) != int(result[2]):
                    return False  # the number of sweeps comes third
        return True
    except NotImplementedError:
        raise  # an exercise is not done yet
    except Exception:
        return False


# %% nbgrader="tests" grade_id="test_compare_methods" points=2 title="Exercise 5: a fair race"
# Visible tests
assert bellman_update_passes(), (
    "compare_methods races your value_iteration, which uses your bellman_update, and "
    "bellman_update does not pass the tests of Exercise 1 yet: fix bellman_update first"
)
assert own_solvers_run(), (
    "compare_methods races your value_iteration and gauss_seidel, and one of them crashes, "
    "returns something else than (V, policy, sweeps, history) or never stops on a small "
    "warehouse (capacity 1 or 3, beta = 0.9, epsilon = 1e-3): fix it first"
)
NAMES = ["value iteration", "Gauss-Seidel", "modified PI (k = 5)", "policy iteration"]
CAPACITIES_SEEN = [1, 2, 3]


def iterations_of(name, capacity, beta, epsilon):
    """What the solver `name` reports on warehouse_arrays(capacity=capacity)."""
    R_c, P_c = warehouse_arrays(capacity=capacity)
    if name == "value iteration":
        return value_iteration(R_c, P_c, beta, epsilon=epsilon)[2]
    if name == "Gauss-Seidel":
        return gauss_seidel(R_c, P_c, beta, epsilon)[2]
    if name == "modified PI (k = 5)":
        return modified_policy_iteration_compact(R_c, P_c, beta, epsilon)[2]
    return policy_iteration_compact(R_c, P_c, beta, epsilon)[2]


clock = time.perf_counter()
with time_limit(30):
    table = compare_methods(CAPACITIES_SEEN, 0.9, 1e-3)
total = time.perf_counter() - clock
assert isinstance(table, dict) and sorted(table) == sorted(NAMES), (
    f"return a dict with one key per solver name, {NAMES}; got "
    f"{sorted(table) if isinstance(table, dict) else type(table).__name__}"
)
for name in NAMES:
    row = table[name]
    assert isinstance(row, dict) and {"iterations", "seconds"} <= set(row), (
        f'table["{name}"] should be a dict with the lists "iterations" and "seconds"'
    )
    got = [int(i) for i in row["iterations"]]
    expected = [iterations_of(name, c, 0.9, 1e-3) for c in CAPACITIES_SEEN]
    if got != expected:
        course = iterations_of(name, 3, 0.9, 1e-3)
        shifted = [iterations_of(name, c + 1, 0.9, 1e-3) for c in CAPACITIES_SEEN]
        assert got != [course] * 3 or expected == [course] * 3, (
            f"{name}: {got} iterations at every capacity, as on the course's warehouse: build "
            "warehouse_arrays(capacity=c) for each capacity c and solve that"
        )
        assert got != shifted, (
            f"{name}: the iterations {got} are those of capacities 2, 3, 4: build "
            "warehouse_arrays(capacity=c) with c itself, not c + 1"
        )
        at_notebook_beta = [iterations_of(name, c, BETA, 1e-3) for c in CAPACITIES_SEEN]
        assert got != at_notebook_beta, (
            f"{name}: the iterations {got} are those of beta = 0.8, the notebook's BETA: pass "
            "the argument beta on to the solvers"
        )
        raise AssertionError(
            f'{name}: table["{name}"]["iterations"] for capacities [1, 2, 3], beta = 0.9, '
            f"epsilon = 1e-3 should be what the solver reports, {expected}; got {got}"
        )
    seconds = np.asarray(row["seconds"], dtype=float)
    assert seconds.shape == (3,), f'table["{name}"]["seconds"] holds one time per capacity'
    assert np.all(seconds > 0), (
        f'table["{name}"]["seconds"] is {seconds}: keep the times as floats, and take end '
        "minus start"
    )
seconds = np.array([np.asarray(table[name]["seconds"], dtype=float) for name in NAMES])
assert seconds.sum() <= total, (
    f"the times add up to {seconds.sum():.3g} s, more than the {total:.3g} s the whole call "
    "took: times in milliseconds, or times that keep running from one call to the next? "
    "Keep seconds, and start the clock again before every call"
)
assert not np.all(np.diff(seconds, axis=0) >= 0), (
    "at every capacity each solver took at least as long as the one before it, as if each "
    "time included the ones before: start the clock again right before every call"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab05_comparison import check_compare_methods

check_compare_methods(
    compare_methods,
    value_iteration,
    gauss_seidel,
    modified_policy_iteration_compact,
    policy_iteration_compact,
)
### END HIDDEN TESTS

# %% [markdown]
# Run the next cell. It races the four methods with $\beta = 0.95$ and
# $\varepsilon = 10^{-4}$ on warehouses of capacity 3 to 50, checks that they agree, and
# plots iterations and seconds against capacity, on log scales.

# %% nbgrader="locked" grade_id="race_plot" autograde="skip"
CAPACITIES = [3, 6, 12, 25, 50]
with time_limit(300):
    race = compare_methods(CAPACITIES, 0.95, 1e-4)
# A race between methods that solve different problems means nothing: check they agree
# (each is within epsilon / 2 of V*, so any two within epsilon) on the largest warehouse.
largest = warehouse_arrays(capacity=CAPACITIES[-1])
answers = [solve(*largest, 0.95, 1e-4)[0] for solve in SOLVERS.values()]
spread = max(np.max(np.abs(np.asarray(V, dtype=float) - answers[-1])) for V in answers)
print(f"largest difference between the methods' values: {spread:.2g} (epsilon = 1e-4)")
# An executed solution must not change from one build to the next, and a clock's readings
# do; a build (MDPLAB_BUILD=1) leaves the seconds to be measured when you run the cell.
BUILT = os.environ.get("MDPLAB_BUILD") == "1"
print("capacity  " + "".join(f"{name:>22}" for name in race))
for i, c in enumerate(CAPACITIES):
    cells = [
        f"{row['iterations'][i]:5d} it "
        + ("(when run)" if BUILT else f"{1000 * row['seconds'][i]:7.1f} ms")
        for row in race.values()
    ]
    print(f"{c:8d}  " + "".join(f"{cell:>22}" for cell in cells))

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
for name, row in race.items():
    left.plot(CAPACITIES, row["iterations"], "o-", label=name)
    if not BUILT:
        right.plot(CAPACITIES, row["seconds"], "o-", label=name)
if BUILT:
    right.text(
        0.5,
        0.5,
        "seconds are measured\nwhen you run this cell",
        ha="center",
        va="center",
        transform=right.transAxes,
        fontsize=12,
        color="grey",
    )
left.set_yscale("log")
left.set_title(r"iterations to $\varepsilon = 10^{-4}$, $\beta = 0.95$")
right.set_title("seconds per solve")
for ax in (left, right):
    ax.set_xscale("log")
    ax.set_xticks(CAPACITIES, [str(c) for c in CAPACITIES])
    ax.set_xlabel("capacity C (C + 1 states)")
    if ax.lines:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 9 · Explore: sweep by sweep
#
# The explorer below runs value iteration on the course's warehouse. Move **sweep k** to
# step through $V_0, V_1, V_2, \dots$: the bars are $V_k(s)$, the black marks $V^*(s)$, and
# the number above each bar is the action greedy for $V_k$ (green when it is optimal, red
# when it is not). The right panel shows the error $\|V_k - V^*\|_\infty$ on a log scale.
# Change $\beta$ and the starting values and watch how many sweeps it takes before the
# bars reach the marks. Try $\beta = 0.99$, and try starting above $V^*$. The explorer uses
# your `bellman_update` and `value_iteration` and is not graded.

# %% nbgrader="locked" grade_id="redraw_helpers"
# {{module:mdplab.redraw}}

# %% nbgrader="locked" grade_id="explorer" autograde="skip"
MAX_SWEEPS = 120
STARTS = {"V0 = 0": "zeros", "V0 = 40 everywhere": "high", "V0 random in [0, 40)": "random"}


def start_values(start, n_states):
    if start == "high":
        return np.full(n_states, 40.0)
    if start == "random":
        return np.random.default_rng(5).uniform(0, 40, size=n_states)
    return np.zeros(n_states)


@lru_cache(maxsize=64)
def explorer_run(beta, start):
    """Iterates, greedy policies, V*, an optimal policy, the errors and their bound for one
    (beta, start): computed once, so that moving the sweep slider only redraws."""
    V_opt, optimal_policy = optimal_values(R, P, beta)
    iterates = sweep_values(R, P, beta, MAX_SWEEPS, start_values(start, R.shape[0]))
    greedy = [np.asarray(bellman_update(R, P, beta, V)[1]) for V in iterates]
    errors = np.maximum(np.max(np.abs(iterates - V_opt), axis=1), 1e-16)
    bound = np.maximum(beta ** np.arange(MAX_SWEEPS + 1) * errors[0], 1e-16)
    return iterates, greedy, V_opt, optimal_policy, errors, bound


# One figure for every redraw, made once with a fixed layout: show_sweep only moves its
# bars, marks and labels (the cell above says why that keeps up with the slider).
sweep_fig = redraw_figure((11, 3.8))
sweep_left, sweep_right = sweep_fig.subplots(1, 2)
sweep_fig.subplots_adjust(left=0.04, right=0.99, bottom=0.13, top=0.92, wspace=0.12)
sweep_states = np.arange(R.shape[0])
value_bars = sweep_left.bar(
    sweep_states, np.zeros(len(sweep_states)), color="tab:blue", alpha=0.7, label=r"$V_k(s)$"
)
(optimum_marks,) = sweep_left.plot(
    sweep_states,
    np.zeros(len(sweep_states)),
    "k_",
    markersize=30,
    markeredgewidth=3,
    label=r"$V^*(s)$",
)
action_labels = [sweep_left.text(s, 0, "", ha="center", fontsize=10) for s in sweep_states]
sweep_left.set_xticks(sweep_states)
sweep_left.set_xlabel("starting inventory s")
sweep_left.legend(loc="upper center", ncol=2, fontsize=8)
sweep_axis = np.arange(MAX_SWEEPS + 1)
(error_line,) = sweep_right.semilogy(
    sweep_axis, np.ones(len(sweep_axis)), color="tab:blue", label=r"$\|V_k - V^*\|_\infty$"
)
(bound_line,) = sweep_right.semilogy(
    sweep_axis,
    np.ones(len(sweep_axis)),
    "--",
    color="tab:orange",
    label=r"$\beta^k \|V_0 - V^*\|_\infty$",
)
(error_dot,) = sweep_right.plot([0], [1], "o", color="tab:red")
sweep_right.set_xlabel("sweep k")
sweep_right.legend(fontsize=8)


def show_sweep(beta, start, k):
    """Move the figure's bars, marks and labels to sweep k of the run for (beta, start), and
    show it."""
    iterates, greedy, V_opt, optimal_policy, errors, bound = explorer_run(round(beta, 2), start)
    top = max(iterates[k].max(), V_opt.max())
    for s, bar in enumerate(value_bars):
        bar.set_height(iterates[k][s])
        good = int(greedy[k][s]) == optimal_policy[s]
        action_labels[s].set(
            y=max(iterates[k][s], V_opt[s]) + 0.03 * top,
            text=f"a = {int(greedy[k][s])}",
            color="tab:green" if good else "tab:red",
        )
    optimum_marks.set_ydata(V_opt)
    sweep_left.set_ylim(min(0, iterates[k].min()), 1.35 * top)
    # y=1 puts a title where matplotlib would; without it, every draw measures the tick
    # labels again to make sure that none is in the way.
    sweep_left.set_title(f"sweep k = {k}: values and greedy actions", y=1)
    error_line.set_ydata(errors)
    bound_line.set_ydata(bound)
    error_dot.set_data([k], [errors[k]])
    sweep_right.set_ylim(1e-12, 10 * errors.max())
    sweep_right.set_title(f"error after {k} sweeps: {errors[k]:.2e}", y=1)
    display(figure_png(sweep_fig))


beta_slider = widgets.FloatSlider(
    value=0.8,
    min=0.0,
    max=0.99,
    step=0.01,
    description="β",
    continuous_update=False,
    readout_format=".2f",
)
start_menu = widgets.Dropdown(options=list(STARTS.items()), value="zeros", description="start")
sweep_slider = widgets.IntSlider(
    value=0,
    min=0,
    max=MAX_SWEEPS,
    step=1,
    description="sweep k",
    continuous_update=True,
    layout=widgets.Layout(width="60%"),
)
shown = widgets.interactive_output(
    show_sweep, {"beta": beta_slider, "start": start_menu, "k": sweep_slider}
)
display(widgets.VBox([widgets.HBox([beta_slider, start_menu]), sweep_slider, shown]))

# %% [markdown]
# ## 10 · Questions (written)
#
# Answer each question in a few sentences in the cell below it.
#
# **Question 1.** Why does the stopping rule compare the change $\|V_{k+1} - V_k\|_\infty$
# with $\varepsilon(1-\beta)/(2\beta)$ and not with $\varepsilon$ itself? Use the contraction
# to show that $\|V_{k+1} - V^*\|_\infty \le \frac{\beta}{1-\beta} \|V_{k+1} - V_k\|_\infty$,
# and say what the factor 2 is for.

# %% [markdown] nbgrader="written" grade_id="why_threshold" points=1 title="Question 1: the stopping threshold"
# ### BEGIN SOLUTION
# A small change between two sweeps does not by itself mean a small error: when β is close
# to 1, V_k can creep towards V* in tiny steps while still being far from it. The contraction
# turns the observable change into a bound on the error. By the triangle inequality and
# T V* = V*,
# ‖V_{k+1} − V*‖ ≤ ‖T V_{k+1} − T V_k‖ + ‖T V_{k+1} − T V*‖ ≤ β‖V_{k+1} − V_k‖ + β‖V_{k+1} − V*‖,
# so (1 − β)‖V_{k+1} − V*‖ ≤ β‖V_{k+1} − V_k‖. If the change is below ε(1 − β)/(2β), the
# error of V_{k+1} is below ε/2. The factor 2 leaves the other half of ε for the policy: for
# π greedy for V_{k+1}, the same argument with T_π (T_π V_{k+1} = T V_{k+1}) gives
# ‖V_π − V_{k+1}‖ ≤ β/(1 − β)‖V_{k+1} − V_k‖ < ε/2, so ‖V_π − V*‖ < ε/2 + ε/2 = ε: the
# returned policy is ε-optimal. Comparing the change with ε itself would only bound the error
# by εβ/(1 − β), e.g. 99ε for β = 0.99.
#
# Rubric (1 point): ½ for the derivation of ‖V_{k+1} − V*‖ ≤ β/(1 − β)‖V_{k+1} − V_k‖
# (triangle inequality with T V* = V* and the contraction, or the geometric sum of the
# later changes) and the consequence that comparing with ε alone bounds the error only by
# εβ/(1 − β), e.g. 99ε at β = 0.99; ½ for the factor 2: the threshold keeps the error of
# V_{k+1} below ε/2, and the other ε/2 bounds ‖V_π − V_{k+1}‖ for the greedy policy π, so
# π is ε-optimal. The bound quoted without a derivation earns nothing.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** What does a discount factor close to 1 do to the number of sweeps? Use
# the bound $\|V_{k+1} - V_k\|_\infty \le \beta^k \|V_1 - V_0\|_\infty$ to estimate the number of
# sweeps the rule needs, say how it grows as $\beta \to 1$, and compare with the table of
# section 5.

# %% [markdown] nbgrader="written" grade_id="beta_near_one" points=1 title="Question 2: β close to 1"
# ### BEGIN SOLUTION
# The changes shrink at least like β^k d_1 with d_1 = ‖V_1 − V_0‖ (6 on the warehouse from
# V_0 = 0, whatever β), so the rule has fired once β^k d_1 < ε(1 − β)/(2β), that is after
# about K ≈ [ln(2β d_1/ε) + ln(1/(1 − β))] / ln(1/β) sweeps. As β → 1, ln(1/β) ≈ 1 − β, so
# K grows like (ln(2 d_1/ε) + ln(1/(1 − β))) / (1 − β): essentially like 1/(1 − β), and a
# little faster, because the threshold itself shrinks with 1 − β. For ε = 1e-6 the estimate
# gives about 79 sweeps at β = 0.8 and 2,080 at β = 0.99, close to the table (80 and 2,060;
# 25, 175 and 373 for β = 0.5, 0.9, 0.95): going from 0.9 to 0.99 costs more than ten times
# as many sweeps. Far-sighted problems are the slow ones for value iteration; there policy
# iteration, whose number of steps barely depends on β, or faster variants (Gauss–Seidel,
# modified policy iteration) pay off.
#
# Rubric (1 point): ½ for solving β^k d_1 < ε(1 − β)/(2β) for k, giving
# K ≈ [ln(2β d_1/ε) + ln(1/(1 − β))]/ln(1/β), and with ln(1/β) ≈ 1 − β a growth like
# 1/(1 − β) times a logarithm as β → 1; ½ for the comparison with the table: estimates of
# the right size (about 80 sweeps at β = 0.8, about 2,000 at β = 0.99) and the observation
# that going from 0.9 to 0.99 costs more than ten times as many sweeps. "More sweeps as
# β → 1" without the estimate earns nothing.
# ### END SOLUTION

# %% [markdown]
# **Question 3.** Read the race. Which of the two panels stays flat as the warehouse
# grows, and why? Which method would you choose for a warehouse of capacity 1,000 with
# $\beta = 0.99$, and which for capacity 10 with $\beta = 0.999$? Argue from the cost of
# one iteration and the number of iterations, and say what you would measure to be sure.

# %% [markdown] nbgrader="written" grade_id="race_reading" points=1 title="Question 3: reading the race"
# ### BEGIN SOLUTION
# The iterations stay flat: value iteration and Gauss–Seidel need about
# ln(1/(ε(1 − β)))/(1 − β) sweeps whatever the size (283 and 139 here, Gauss–Seidel about
# half), modified policy iteration about a sixth of value iteration's steps, and policy
# iteration two or three steps. The seconds grow, because one iteration costs more as the
# model grows: a sweep of the dense arrays about S²A operations, a policy evaluation a
# linear solve of order S³. On these small models policy iteration is fastest.
# Capacity 1,000 with β = 0.99: the dense P would hold 10⁹ numbers (8 GB), so store it
# sparse (two successors per pair); a sweep then costs about 2SA ≈ 2·10⁶ operations, and
# value iteration needs thousands of sweeps (roughly ln(1/(ε(1 − β)))/(1 − β)), about
# 10¹⁰ operations. Policy iteration needs a handful of solves of 1,001 equations (about
# 3·10⁸ each with a dense solver, much less with a sparse one): policy iteration, or
# modified policy iteration, which replaces the solve by a few cheap sweeps. Capacity 10
# with β = 0.999: every iteration is cheap, so the number of iterations decides; value
# iteration needs some 10⁴ sweeps, policy iteration a few solves of 11 equations: policy
# iteration. To be sure, time the candidates on the real model, over several runs, and
# count iterations too, since times on a shared machine vary.
#
# Rubric (1 point): ½ for saying that the iteration counts stay flat (set by β and ε, not
# by the size) while the time per iteration grows with S (S²A per dense sweep, S³ per
# solve); ½ for a choice in each case argued from cost per iteration × number of
# iterations, with policy iteration or MPI when β is close to 1. A choice without an
# argument earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# - The Bellman optimality operator $(TV)(s) = \min_{a \in A(s)} \big[r(s, a) + \beta
#   \sum_{s'} P(s' \mid s, a) V(s')\big]$ is a contraction with modulus $\beta$ in the sup
#   norm; its unique fixed point is $V^*$.
# - Value iteration $V_{k+1} = TV_k$ converges from any start, with
#   $\|V_k - V^*\|_\infty \le \beta^k \|V_0 - V^*\|_\infty$; on the course's warehouse the
#   bound is nearly tight.
# - The $\varepsilon$-optimal rule stops at the first sweep whose change is below
#   $\varepsilon(1-\beta)/(2\beta)$; then $V_{k+1}$ is within $\varepsilon/2$ of $V^*$ and
#   the greedy policy is $\varepsilon$-optimal.
# - From $V_0 = 0$, 100 sweeps give $V^* \approx (26.3265, 26.3265, 23.0612, 22.7551)$ and
#   the policy $(4, 3, 0, 0)$, as the linear program and policy iteration do.
# - The number of sweeps grows roughly like $1/(1-\beta)$: value iteration is fast for a
#   short-sighted decision maker and slow for a far-sighted one.
# - From $V_0 = 0$, $V_k$ is the optimal cost of a $k$-period problem with nothing owed at
#   the end: value iteration is Lab 01's backward recursion, with an expectation and a
#   discount, run for longer and longer horizons.
# - Gauss–Seidel sweeps use each new value at once; they are a contraction with modulus
#   $\beta$ too, and halve the sweeps on the course's warehouse (40 instead of 80 for
#   $\varepsilon = 10^{-6}$).
# - A policy is optimal exactly when $T V_\pi = V_\pi$. With that test and bisection,
#   $(4, 3, 0, 0)$ is optimal for every $\beta \ge 1/2$ and $(2, 1, 0, 0)$ for every
#   $\beta \le 1/2$.
# - Iteration counts depend on $\beta$ and $\varepsilon$, hardly on the size of the model;
#   the cost of one iteration grows with it ($S^2 A$ for a dense sweep, $S^3$ for a policy
#   evaluation). Policy iteration's few expensive steps win on small models and for $\beta$
#   close to 1.
#
# ## References
#
# - M. L. Puterman, *Markov Decision Processes: Discrete Stochastic Dynamic Programming*,
#   Wiley, 1994: §6.2 (optimality equations), §6.3 (value iteration, Gauss–Seidel in
#   §6.3.3), §6.5 (modified policy iteration).
# - D. P. Bertsekas, *Dynamic Programming and Optimal Control*, Vol. II, Athena Scientific,
#   4th ed., 2012, ch. 1–2.
# - R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., MIT
#   Press, 2018, ch. 4.
# - S. P. Singh and R. C. Yee, "An upper bound on the loss from approximate optimal-value
#   functions", *Machine Learning* 16, 227–233, 1994.
#
# The series grows from the lab "Lab 10 Discounted MDPs" by Bo Tang, whose warehouse
# problem and published numbers it keeps.
