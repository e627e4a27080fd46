# %% [markdown]
# {{colab_badge}}
#
# # Lab 04 · Policy iteration
#
# Lab 02 asked what a given policy costs and answered with a linear system. This lab turns
# that answer into an algorithm that finds the **best** policy. Policy iteration
# alternates two steps: it *evaluates* the current policy exactly, then *improves* it by
# looking one period ahead with those values, and it repeats until the policy no longer
# changes. On the course's warehouse it needs two evaluations; on much larger warehouses
# it still needs only a handful.
#
# **Learning goals.** After this lab you can
# 1. evaluate a policy by solving $(I - \beta P_\pi) V = r_\pi$, with numpy and as a system
#    of equality constraints in Gurobi;
# 2. compute the Q-values $Q(s, a)$ of a value vector and extract a greedy policy from them,
#    never choosing an infeasible action;
# 3. implement policy iteration for any finite MDP given as arrays, with a stopping rule that
#    is guaranteed to end;
# 4. implement modified policy iteration, which evaluates each policy only partly with $k$
#    sweeps, and see value iteration ($k = 0$) and policy iteration ($k \to \infty$) as its
#    two ends;
# 5. tell when policy iteration has converged, explain why it stops after finitely many
#    steps with an optimal policy, and say what a good starting policy is;
# 6. price the warehouse with holding charged on the ending inventory, and show why that
#    convention is the starting one with holding $h/\beta$;
# 7. read the steps of policy iteration off a picture, and explore how the optimal policy of
#    a larger warehouse depends on its costs and on the discount factor.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests here and by hidden tests that call your
# functions on other models: warehouses with other capacities, costs, demand distributions
# and discount factors, and small random MDPs (some with negative costs). Written parts are
# read by your instructor.

# %% [markdown]
# One exercise uses Gurobi through its Python package `gurobipy`. A fresh Colab runtime
# does not have it, so the next cell installs it there; where it is already installed, the
# cell does nothing. Run it first. The free package comes with a size-limited licence, which
# is plenty for the models of this lab.

# %% nbgrader="locked" grade_id="install"
import importlib.util

if importlib.util.find_spec("gurobipy") is None:
    # %pip install -q gurobipy
    print("gurobipy installed")

# %% [markdown]
# The next cell is read-only. It imports the libraries, opens a quiet Gurobi environment,
# and defines the helpers this lab relies on:
#
# - `warehouse_arrays(capacity, setup_cost, unit_cost, holding_cost, demand_pmf)` returns
#   the arrays `(R, P)` of a warehouse, exactly as you built them in Lab 02: `R[s, a]` is
#   the one-period cost (`np.inf` when producing `a` units is infeasible in state `s`) and
#   `P[s, a, s2]` the probability of moving from `s` to `s2` (a row of zeros when infeasible);
# - `smallest_feasible_policy(R)`, the policy that produces as little as feasibility allows;
# - the course's warehouse as `R`, `P`, `BETA`, and a two-state toy model `TOY_R`, `TOY_P`
#   used by some tests.

# %% nbgrader="locked" grade_id="setup"
import sys

import gurobipy as gp
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from gurobipy import GRB
from IPython.display import display

IN_COLAB = "google.colab" in sys.modules
GUROBI_ENV = gp.Env(params={"OutputFlag": 0})  # models made with env=GUROBI_ENV print nothing
TIE_TOL = 1e-9  # Q-values closer than TIE_TOL * (1 + |smallest|) count as tied


def warehouse_arrays(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    """(R, P) of the warehouse: states 0..capacity, action columns 0..capacity + min demand."""
    low, high = min(demand_pmf), max(demand_pmf)
    n_states, n_actions = capacity + 1, capacity + low + 1
    R = np.full((n_states, n_actions), np.inf)
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        # feasible: meet the largest demand, and fit after the smallest one
        for a in range(max(0, high - s), capacity + low - s + 1):
            R[s, a] = (setup_cost if a > 0 else 0.0) + unit_cost * a + holding_cost * s
            for demand, probability in demand_pmf.items():
                P[s, a, s + a - demand] += probability
    return R, P


def smallest_feasible_policy(R):
    """In every state, the smallest action column with a finite cost."""
    return np.isfinite(np.asarray(R, dtype=float)).argmax(axis=1)


COURSE = {"capacity": 3, "setup_cost": 4, "unit_cost": 1, "holding_cost": 1}
COURSE_DEMAND = {1: 0.5, 2: 0.5}
BETA = 0.8
R, P = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)

# A toy model with 2 states and 3 action columns; some pairs are infeasible, one cost is
# negative (a reward).
TOY_R = np.array([[2.0, -1.0, np.inf], [1.0, np.inf, 0.0]])
TOY_P = np.zeros((2, 3, 2))
TOY_P[0, 0] = [0.0, 1.0]  # state 0, action 0: move to state 1
TOY_P[0, 1] = [0.5, 0.5]  # state 0, action 1: a fair coin decides
TOY_P[1, 0] = [0.0, 1.0]  # state 1, action 0: stay
TOY_P[1, 2] = [1.0, 0.0]  # state 1, action 2: back to state 0

print(
    "Running in", "Google Colab" if IN_COLAB else "Jupyter", "with Python", sys.version.split()[0]
)
print("numpy", np.__version__, "| gurobipy", ".".join(map(str, gp.gurobi.version())))
print("course warehouse: R has shape", R.shape, "and P has shape", P.shape)
print("smallest feasible policy:", smallest_feasible_policy(R))

# %% [markdown]
# ## 1 · The warehouse and the idea of policy iteration
#
# **The warehouse.** A warehouse holds at most $C = 3$ units. The state $s \in \{0, \dots, C\}$
# is the inventory at the **start** of a period, and the action $a$ is the number of units
# produced, ready before demand arrives. A period costs
# $r(s, a) = K\,[a > 0] + c\,a + h\,s$: a setup cost $K = 4$ when anything is produced, a
# unit cost $c = 1$, and a holding cost $h = 1$ per unit of the **starting** inventory. (Some
# texts charge holding on the ending inventory instead; §7 prices that convention and
# shows what it changes.) The demand $D$ is 1 or 2 with probability $\tfrac12$ each and must be met,
# and what is left must fit: an action is feasible when $s + a \ge 2$ and $s + a - 1 \le 3$.
# The next state is $s + a - D$, and costs are discounted with $\beta = 0.8$.
#
# In code, a model is the pair of arrays `(R, P)` from the setup cell, with **one column per
# production quantity**, plus the discount `beta`. A (stationary, deterministic) **policy**
# is one action per state; we store it as an array `policy` with `policy[s]` $= \pi(s)$, the
# column of the chosen action. Some tests pass a policy as a list or as a dictionary
# `{state: action}` instead; your functions should accept all three.
#
# **Two things we can already do.** For a policy $\pi$, collect its costs
# $r_\pi(s) = r(s, \pi(s))$ and its transition rows $P_\pi[s, \cdot] = P(\cdot \mid s, \pi(s))$.
#
# - *Evaluation:* the value $V_\pi$ of the policy solves the linear system
#   $$ (I - \beta P_\pi)\, V_\pi = r_\pi . $$
# - *Looking one period ahead:* for any value vector $V$, the **Q-value**
#   $$ Q_V(s, a) \;=\; r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s') $$
#   is the cost of taking action $a$ now and then paying $V$ from wherever we land. A policy
#   that picks in every state an action with the smallest Q-value is **greedy** for $V$.
#
# **Policy iteration** combines the two:
#
# > start from a feasible policy $\pi_0$; for $k = 0, 1, 2, \dots$
# > 1. **evaluate**: solve $(I - \beta P_{\pi_k}) V_k = r_{\pi_k}$;
# > 2. **improve**: let $\pi_{k+1}$ be greedy for $V_k$, keeping $\pi_k(s)$ in every state where
# >    that action is tied with the best one;
# > 3. if $\pi_{k+1} = \pi_k$, stop: $\pi_k$ is optimal and $V_k = V^*$.
#
# The course starts from $\pi_0 = (2, 1, 0, 0)$, the smallest feasible production in every
# state. Its values are $V_{\pi_0} = (30, 30, 26, 25.4)$, one improvement gives
# $(4, 3, 0, 0)$, and that policy is already optimal, with
# $V^* \approx (26.3265, 26.3265, 23.0612, 22.7551)$. You will reproduce these numbers, and
# then run the same code on warehouses where the algorithm has more to do.

# %% [markdown]
# ## 2 · Policy evaluation
#
# ### Exercise 1 (autograded): evaluation with numpy
#
# Write `evaluate_policy(R, P, beta, policy)` that returns $V_\pi$ as a numpy array with one
# value per state, by solving $(I - \beta P_\pi) V = r_\pi$ with `np.linalg.solve`.
#
# - `R` has shape `(S, A)` and `P` shape `(S, A, S)`, for any numbers of states and action
#   columns; $0 \le \beta < 1$.
# - `policy` holds one feasible action column per state, as a list, a tuple, a numpy array
#   or a dictionary `{state: action}`. A dictionary can be turned into a list with
#   `[policy[s] for s in range(S)]`.
# - Fancy indexing picks a policy's rows: with `states = np.arange(S)` and `actions` an
#   integer array, `R[states, actions]` is $r_\pi$ and `P[states, actions]` is $P_\pi$.
#
# The order of the arguments is Lab 02's, which the whole series keeps: the model
# `R, P, beta` first, then the policy.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Turn the policy into an integer array first (`[policy[s] for s in range(S)]` works for a
# dictionary and for a list alike), then `r_pi = R[states, actions]`,
# `P_pi = P[states, actions]` and `np.linalg.solve(np.eye(S) - beta * P_pi, r_pi)`.
# Do not invert the matrix: `solve` is faster and more accurate.
# </details>


# %% nbgrader="answer" grade_id="evaluate_policy"
def evaluate_policy(R, P, beta, policy):
    """V_pi, the solution of (I - beta P_pi) V = r_pi, for the policy choosing policy[s]."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    n_states = R.shape[0]
    if isinstance(policy, dict):
        policy = [policy[s] for s in range(n_states)]
    states = np.arange(n_states)
    actions = np.asarray(policy, dtype=int)
    r_pi = R[states, actions]
    P_pi = P[states, actions]
    return np.linalg.solve(np.eye(n_states) - beta * P_pi, r_pi)
    ### END SOLUTION


# %% [markdown]
# The tests below use a small read-only helper: when your function fails, it checks whether
# it works with the policy before `beta`, so that the message can say so.


# %% nbgrader="locked" grade_id="evaluation_helpers"
def takes_policy_before_beta():
    """Whether your evaluate_policy gives the course's values when called with the policy
    before beta: evaluate_policy(R, P, policy, beta)."""
    try:
        V = evaluate_policy(R.copy(), P.copy(), [2, 1, 0, 0], BETA)
        return bool(np.allclose(np.asarray(V, dtype=float).ravel(), [30, 30, 26, 25.4]))
    except Exception:
        return False


# %% nbgrader="tests" grade_id="test_evaluate_policy" points=2 title="Exercise 1: evaluation with numpy"
# Visible tests
R_given, P_given, policy = R.copy(), P.copy(), np.array([2, 1, 0, 0])
try:
    V = evaluate_policy(R_given, P_given, BETA, policy)
except Exception as error:
    assert not takes_policy_before_beta(), (
        "evaluate_policy takes the policy before beta; the order is evaluate_policy(R, P, "
        "beta, policy), as in Lab 02: the model first, then the policy"
    )
    assert not isinstance(error, np.linalg.LinAlgError), (
        "np.linalg.solve says the matrix is singular: I - P_pi is singular for every policy, "
        "so beta must multiply P_pi: solve (I - beta P_pi) V = r_pi"
    )
    raise
for name, given, original in [
    ("R", R_given, R),
    ("P", P_given, P),
    ("policy", policy, [2, 1, 0, 0]),
]:
    assert np.array_equal(given, original), (
        f"evaluate_policy changed its argument {name} in place; leave it as it was given and "
        "work on new arrays (np.where(...), a copy)"
    )
assert not hasattr(V, "__next__"), "evaluate_policy returned a generator; return a numpy array"
V = np.asarray(V, dtype=float).ravel()
assert V.shape == (4,), f"one value per state: expected shape (4,), got {V.shape}"
# V of (2, 1, 0, 0) is (30, 30, 26, 25.4). The usual mistakes give other numbers:
MISTAKES = [  # (what a usual mistake gives, the mistake)
    ([3.33333, 3.33333, -0.66667, 1.93333], "a sign is wrong: (I + beta P_pi) V = r_pi"),
    ([38.8, 40, 3.2, 3], "P_pi is used transposed: row s of P_pi is where state s goes next"),
    (
        [18, 22, 22, 24.6],
        "the indices are swapped: the row is P[s, policy[s]], not P[policy[s], s]",
    ),
    ([32.02381, 32.02381, 30.69048, 30.22619], "every feasible action is averaged in"),
    ([6, 6, 2, 3], "only the first period is counted: the future beta P_pi V is missing"),
    ([24, 24, 20.8, 20.32], "the cost of the current period is discounted too"),
]
for wrong_values, mistake in MISTAKES:
    assert not np.allclose(V, wrong_values), f"policy (2, 1, 0, 0): got V = {V}: {mistake}"
if not np.allclose(V, [30, 30, 26, 25.4]):
    assert not takes_policy_before_beta(), (
        "evaluate_policy takes the policy before beta; the order is evaluate_policy(R, P, "
        "beta, policy), as in Lab 02: the model first, then the policy"
    )
assert np.allclose(V, [30, 30, 26, 25.4]), (
    f"course warehouse, policy (2, 1, 0, 0): expected V = (30, 30, 26, 25.4), got {V}"
)
try:
    V = evaluate_policy(R, P, BETA, {0: 4, 1: 3, 2: 0, 3: 0})
except (TypeError, KeyError, IndexError, ValueError) as error:
    raise AssertionError(
        "with the policy given as a dictionary {0: 4, 1: 3, 2: 0, 3: 0}, evaluate_policy "
        f"raised {type(error).__name__}: {error}. Turn a dictionary into a list first: "
        "[policy[s] for s in range(S)]"
    ) from None
V = np.asarray(V, dtype=float).ravel()
assert np.allclose(V, np.array([1290, 1290, 1130, 1115]) / 49), (
    "course warehouse, policy {0: 4, 1: 3, 2: 0, 3: 0} given as a dictionary: expected "
    f"V = (26.3265, 26.3265, 23.0612, 22.7551), got {V}"
)
V = np.asarray(evaluate_policy(R, P, 0.0, np.array([2, 1, 0, 0])), dtype=float).ravel()
assert not np.allclose(V, [30, 30, 26, 25.4]), (
    "with beta = 0 you get the values for beta = 0.8: evaluate_policy uses the notebook's "
    "BETA (or 0.8) instead of its argument beta"
)
assert np.allclose(V, [6, 6, 2, 3]), (
    f"with beta = 0 only the first period counts: V = r_pi, got {V}"
)
V = np.asarray(evaluate_policy(TOY_R, TOY_P, 0.5, (1, 2)), dtype=float).ravel()
assert np.allclose(V, [-1.6, -0.8]), (
    f"toy model, policy (1, 2), beta = 0.5: expected V = (-1.6, -0.8), got {V}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_evaluate_policy

check_evaluate_policy(evaluate_policy)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (autograded): the same equations in Gurobi
#
# An optimisation solver can solve a linear system too: declare one variable per state,
# state the Bellman equation of the policy as one **equality constraint** per state, and
# ask for any feasible point (a constant objective). This time, write the equations
# straight from the warehouse's description rather than from arrays:
#
# $$
# V(s) \;=\; K\,[\pi(s) > 0] + c\,\pi(s) + h\,s \;+\;
# \beta \sum_{d} p_D(d)\; V\big(s + \pi(s) - d\big) \qquad s = 0, 1, \dots, C .
# $$
#
# Write `evaluate_policy_gurobi(capacity, setup_cost, unit_cost, holding_cost, demand_pmf,
# beta, policy)` that builds and solves this model with `gurobipy` and returns the values as
# a numpy array (`V[s].X` after `optimize()`). `demand_pmf` is a dictionary
# `{demand: probability}`, and `policy` a feasible policy (list, array or dictionary).
#
# Useful pieces, all imported by the setup cell:
#
# ```python
# model = gp.Model(env=GUROBI_ENV)                  # a model that prints nothing
# V = model.addVars(n, lb=-GRB.INFINITY, name="V")  # V[0], ..., V[n-1]
# model.addConstr(V[0] == 6 + 0.8 * (0.5 * V[0] + 0.5 * V[1]))
# model.setObjective(0, GRB.MINIMIZE)
# model.optimize()
# ```
#
# Gurobi's variables are non-negative unless you say otherwise; a value function may well
# be negative (think of rewards), so give the variables `lb=-GRB.INFINITY`.
# `gp.quicksum(...)` adds up many terms.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Loop over the states: with `a = policy[s]`, the cost is
# `setup_cost * (a > 0) + unit_cost * a + holding_cost * s`, and the future is
# `gp.quicksum(p * V[s + a - d] for d, p in demand_pmf.items())`. One `addConstr(V[s] == ...)`
# per state, a constant objective, `optimize()`, then `np.array([V[s].X for s in ...])`.
# </details>


# %% nbgrader="answer" grade_id="evaluate_policy_gurobi"
def evaluate_policy_gurobi(capacity, setup_cost, unit_cost, holding_cost, demand_pmf, beta, policy):
    """V_pi of the warehouse, from one Gurobi equality constraint per state."""
    ### BEGIN SOLUTION
    states = range(capacity + 1)
    model = gp.Model("policy_evaluation", env=GUROBI_ENV)
    V = model.addVars(states, lb=-GRB.INFINITY, name="V")
    for s in states:
        a = int(policy[s])
        cost = (setup_cost if a > 0 else 0.0) + unit_cost * a + holding_cost * s
        future = gp.quicksum(p * V[s + a - d] for d, p in demand_pmf.items())
        model.addConstr(V[s] == cost + beta * future, name=f"bellman_{s}")
    model.setObjective(0, GRB.MINIMIZE)
    model.optimize()
    return np.array([V[s].X for s in states])
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_evaluate_policy_gurobi" points=2 title="Exercise 2: evaluation with Gurobi"
# Visible tests
demand, policy = {1: 0.5, 2: 0.5}, [2, 1, 0, 0]
try:
    V = evaluate_policy_gurobi(3, 4, 1, 1, demand, 0.8, policy)
except AttributeError as error:
    raise AssertionError(
        f"evaluate_policy_gurobi raised AttributeError: {error}. Gurobi found no solution, so "
        "the equations as written have none; with the discount beta in front of the future "
        "values they always have one"
    ) from None
assert demand == {1: 0.5, 2: 0.5} and policy == [2, 1, 0, 0], (
    "evaluate_policy_gurobi changed its argument demand_pmf or policy in place; leave them as "
    "they were given"
)
V = np.asarray(V, dtype=float).ravel()
assert V.shape == (4,), f"one value per state: expected shape (4,), got {V.shape}"
# V of (2, 1, 0, 0) is (30, 30, 26, 25.4). The usual mistakes give other numbers:
MISTAKES = [  # (what a usual mistake gives, the mistake)
    ([30.5, 29.5, 24.5, 23.1], "holding is charged on the expected ending inventory, not on s"),
    ([38, 37, 32, 30.6], "holding is charged on the stock after production, s + a, not on s"),
    ([30, 30, 30, 31], "the setup cost is charged even where nothing is produced (a = 0)"),
    ([6, 6, 2, 3], "only the first period is counted: the discounted future is missing"),
    ([24, 24, 20.8, 20.32], "the cost of the current period is discounted too"),
]
for wrong_values, mistake in MISTAKES:
    assert not np.allclose(V, wrong_values), f"policy (2, 1, 0, 0): got V = {V}: {mistake}"
assert np.allclose(V, [30, 30, 26, 25.4], atol=1e-6), (
    f"course warehouse, policy (2, 1, 0, 0): expected V = (30, 30, 26, 25.4), got {V}"
)
V = evaluate_policy_gurobi(3, 4, 1, 1, COURSE_DEMAND, 0.8, {0: 4, 1: 3, 2: 0, 3: 0})
V = np.asarray(V, dtype=float).ravel()
assert np.allclose(V, np.array([1290, 1290, 1130, 1115]) / 49, atol=1e-6), (
    f"course warehouse, policy {{0: 4, 1: 3, 2: 0, 3: 0}}: expected V = V*, got {V}"
)
V = evaluate_policy_gurobi(5, 2.5, 0.5, 0.25, {0: 0.3, 3: 0.7}, 0.9, [5, 4, 3, 0, 0, 0])
V = np.asarray(V, dtype=float).ravel()
assert not np.allclose(V[:3], [19.1, 18.85, 18.6]), (
    "with beta = 0.9 you get the values for beta = 0.8: evaluate_policy_gurobi uses the "
    "notebook's BETA (or 0.8) instead of its argument beta"
)
assert np.allclose(V[:3], [36.725, 36.475, 36.225], atol=1e-6), (
    "capacity 5, costs (2.5, 0.5, 0.25), demand 0 or 3 with probabilities 0.3 and 0.7, "
    f"beta = 0.9, policy (5, 4, 3, 0, 0, 0): V[:3] should be (36.725, 36.475, 36.225), got {V[:3]}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_evaluate_policy_gurobi

check_evaluate_policy_gurobi(evaluate_policy_gurobi)
### END HIDDEN TESTS

# %% [markdown]
# The numpy solve and Gurobi agree. For policy evaluation alone, `np.linalg.solve` is the
# simpler and faster tool; the Gurobi model pays off when the equations become inequalities
# and an objective appears, as in the linear-programming formulation of Lab 03.
#
# ## 3 · Policy improvement
#
# ### Exercise 3 (autograded): Q-values
#
# Write `q_values(R, P, beta, V)` that returns the array `Q` of shape `(S, A)` with
# $Q[s, a] = R[s, a] + \beta \sum_{s'} P[s, a, s']\, V[s']$. Infeasible pairs must come
# out as `np.inf`; since their cost is `np.inf` and their row of `P` is zero, the formula
# already does that. `V` is a list or an array with one number per state. One line of numpy
# does it (`P @ V` multiplies the last axis of `P` with `V`); two loops are fine too.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `np.asarray(R, dtype=float) + beta * (np.asarray(P, dtype=float) @ np.asarray(V, dtype=float))`
# has shape `(S, A)`. At an infeasible pair `P[s, a] @ V` is 0, and `np.inf + 0` stays
# `np.inf`.
# </details>


# %% nbgrader="answer" grade_id="q_values"
def q_values(R, P, beta, V):
    """Q[s, a] = R[s, a] + beta * sum_s' P[s, a, s'] V[s'] (np.inf where infeasible)."""
    ### BEGIN SOLUTION
    R, P, V = (np.asarray(x, dtype=float) for x in (R, P, V))
    return R + beta * (P @ V)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_q_values" points=1 title="Exercise 3: Q-values"
# Visible tests
R_given, P_given, V_given = R.copy(), P.copy(), np.array([30, 30, 26, 25.4])
Q = q_values(R_given, P_given, BETA, V_given)
for name, given, original in [
    ("R", R_given, R),
    ("P", P_given, P),
    ("V", V_given, [30, 30, 26, 25.4]),
]:
    assert np.array_equal(given, original), (
        f"q_values changed its argument {name} in place; leave it as it was given"
    )
Q = np.asarray(Q, dtype=float)
assert Q.shape == (4, 5), f"one Q-value per state and action column: shape (4, 5), not {Q.shape}"
# Q[0, 2:] is (30, 29.4, 28.56) for V = (30, 30, 26, 25.4). The usual mistakes give:
MISTAKES = [  # (what a usual mistake gives, the mistake)
    ([36, 35, 33.7], "the discount beta is missing in front of the future values"),
    ([24, 22.4, 20.56], "the immediate cost R[s, a] is missing"),
    ([-18, -15.4, -12.56], "the future term has the wrong sign"),
    ([30, 31, 32], "the future is valued at V[s] of the current state, not at the next state's"),
    ([18, 7, 8], "the sum runs over the wrong index of P: the next state s' is the last index"),
]
for wrong_values, mistake in MISTAKES:
    assert not np.allclose(Q[0, 2:], wrong_values), f"got Q[0, 2:] = {Q[0, 2:]}: {mistake}"
assert np.allclose(Q[0, 2:], [30, 29.4, 28.56]), (
    f"Q[0, 2:4] should be (30, 29.4, 28.56) for V = (30, 30, 26, 25.4); got {Q[0, 2:]}"
)
assert np.allclose(Q[3, :2], [25.4, 28.56]), f"Q[3, :2] should be (25.4, 28.56), got {Q[3, :2]}"
assert np.all(np.isposinf(Q[~np.isfinite(R)])), "infeasible pairs must have Q = np.inf"
Q = np.asarray(q_values(R, P, 0.0, [30, 30, 26, 25.4]), dtype=float)
assert not np.allclose(Q[0, 2:], [30, 29.4, 28.56]), (
    "with beta = 0 you get the Q-values for beta = 0.8: q_values uses the notebook's BETA (or "
    "0.8) instead of its argument beta"
)
assert np.allclose(Q[np.isfinite(R)], R[np.isfinite(R)]), "with beta = 0, Q = R"
Q = np.asarray(q_values(TOY_R, TOY_P, 0.5, [3.0, 2.0]), dtype=float)
assert np.allclose(Q[np.isfinite(TOY_R)], [3.0, 0.25, 2.0, 1.5]), (
    f"toy model, V = (3, 2), beta = 0.5: the feasible Q-values are 3, 0.25, 2 and 1.5; got {Q}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_q_values

check_q_values(q_values)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (autograded): a greedy policy
#
# Write `improve_policy(R, P, beta, V)` that returns a greedy policy for `V`: an integer
# numpy array with, for every state, an action column of smallest Q-value. Use your
# `q_values`.
#
# **Ties.** Floating-point arithmetic can make two equally good actions differ in the last
# digits, so treat $Q(s, a)$ as tied with the best value $m(s) = \min_a Q(s, a)$ when
# $Q(s, a) \le m(s) + \tau\,(1 + |m(s)|)$ with $\tau$ = `TIE_TOL`, and pick the
# **smallest** tied action column. (`np.flatnonzero(mask)[0]` is the first index where
# `mask` is true, and `mask.argmax(axis=1)` does the same for every row.) The grader
# accepts any greedy action; the rule makes your policy reproducible.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `Q = q_values(R, P, beta, V)`, `m = Q.min(axis=1, keepdims=True)`, then the mask of tied
# actions is `Q <= m + TIE_TOL * (1 + np.abs(m))`, and `mask.argmax(axis=1)` is the first
# (smallest) tied column in every row.
# </details>


# %% nbgrader="answer" grade_id="improve_policy"
def improve_policy(R, P, beta, V):
    """A greedy policy for V: in every state the smallest action column of minimal Q."""
    ### BEGIN SOLUTION
    Q = q_values(R, P, beta, V)
    best = Q.min(axis=1, keepdims=True)
    tied = Q - best <= TIE_TOL * (1 + np.abs(best))
    return tied.argmax(axis=1)  # the first tied column of each row
    ### END SOLUTION


# %% [markdown]
# Your `improve_policy` builds on your `q_values`, and your `policy_iteration` on all three
# functions so far. So that a mistake in one of them is reported where it is, and not as a
# mystery further on, the tests below first run a quick test of the functions they build on,
# with the read-only helper of the next cell.


# %% nbgrader="locked" grade_id="quick_tests"
def passes_quick_test(name):
    """Whether your function `name` (evaluate_policy, q_values or improve_policy) gets the
    course's warehouse right and leaves its arguments as they were given."""
    R_fresh, P_fresh = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)
    R_given, P_given = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)
    V_pi = np.array([30, 30, 26, 25.4])
    try:
        if name == "evaluate_policy":
            V = evaluate_policy(R_given, P_given, BETA, [2, 1, 0, 0])
            V_zero = evaluate_policy(R_given, P_given, 0.0, np.array([4, 3, 0, 0]))
            ok = np.allclose(np.asarray(V, dtype=float).ravel(), V_pi) and np.allclose(
                np.asarray(V_zero, dtype=float).ravel(), [8, 8, 2, 3]
            )
        elif name == "q_values":
            Q = np.asarray(q_values(R_given, P_given, BETA, V_pi), dtype=float)
            Q_zero = np.asarray(q_values(R_given, P_given, 0.0, V_pi), dtype=float)
            ok = (
                Q.shape == (4, 5)
                and np.allclose(Q[0, 2:], [30, 29.4, 28.56])
                and np.allclose(Q[3, :2], [25.4, 28.56])
                and np.all(np.isposinf(Q[~np.isfinite(R_fresh)]))
                and np.allclose(Q_zero[np.isfinite(R_fresh)], R_fresh[np.isfinite(R_fresh)])
            )
        else:
            policy = improve_policy(R_given, P_given, BETA, V_pi)
            ok = not hasattr(policy, "__next__") and [int(a) for a in policy] == [4, 3, 0, 0]
    except NotImplementedError:
        raise  # not written yet
    except Exception:
        return False
    return bool(ok) and np.array_equal(R_given, R_fresh) and np.array_equal(P_given, P_fresh)


# %% nbgrader="tests" grade_id="test_improve_policy" points=2 title="Exercise 4: policy improvement"
# Visible tests
assert passes_quick_test("q_values"), (
    "improve_policy uses your q_values, which does not pass the tests of Exercise 3 yet: fix "
    "q_values first"
)
policy = improve_policy(R, P, BETA, np.array([30, 30, 26, 25.4]))
assert not hasattr(policy, "__next__"), (
    "improve_policy returned a generator; return an integer numpy array (np.array(...))"
)
new = [int(a) for a in np.asarray(policy, dtype=float).ravel()]
assert new != [0, 0, 3, 2], (
    "the policy (0, 0, 3, 2) picks infeasible actions (R = inf there): improvement takes the "
    "SMALLEST Q-value, and infeasible pairs keep Q = +inf (no argmax, no -inf mask)"
)
assert new != [2, 1, 0, 0], (
    "the policy (2, 1, 0, 0) is the cheapest in the current period only: compare the "
    "Q-values, which add the discounted future, not the costs R[s, a]"
)
assert new == [4, 3, 0, 0], (
    f"one improvement of (2, 1, 0, 0), whose values are (30, 30, 26, 25.4), gives (4, 3, 0, 0); got {new}"
)
new = [int(a) for a in improve_policy(R, P, BETA, np.array([1290, 1290, 1130, 1115]) / 49)]
assert new == [4, 3, 0, 0], f"the greedy policy for V* is (4, 3, 0, 0) again; got {new}"
new = [int(a) for a in improve_policy(R, P, BETA, np.zeros(4))]
assert new == [2, 1, 0, 0], (
    f"with V = 0 only the immediate cost counts: the cheapest feasible actions are (2, 1, 0, 0); got {new}"
)
new = [int(a) for a in improve_policy(TOY_R, TOY_P, 0.5, [3.0, 2.0])]
assert new == [1, 2], f"toy model, V = (3, 2), beta = 0.5: the greedy policy is (1, 2); got {new}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_improve_policy

check_improve_policy(improve_policy, q_values)
### END HIDDEN TESTS

# %% [markdown]
# Here is that first improvement step in full. Each row lists the Q-values of the feasible
# actions for $V_{\pi_0} = (30, 30, 26, 25.4)$; the current action is marked with `*` and
# the greedy one with `<`. In states 0 and 1, producing more than the minimum now costs a
# little more this period but leaves the warehouse fuller, and the cheaper future
# (a fuller warehouse skips the next setup) more than pays for it.

# %% nbgrader="locked" grade_id="show_improvement"
start = smallest_feasible_policy(R)
V0 = np.asarray(evaluate_policy(R, P, BETA, start), dtype=float)
Q0 = np.asarray(q_values(R, P, BETA, V0), dtype=float)
greedy = np.asarray(improve_policy(R, P, BETA, V0))
print("V of", tuple(int(a) for a in start), "=", np.round(V0, 4))
for s in range(R.shape[0]):
    cells = []
    for a in np.flatnonzero(np.isfinite(R[s])):
        mark = ("*" if a == start[s] else " ") + ("<" if a == greedy[s] else " ")
        cells.append(f"a={a}: {Q0[s, a]:6.2f}{mark}")
    print(f"s = {s}   " + "   ".join(cells))
print("improved policy:", tuple(int(a) for a in greedy))

# %% [markdown]
# ### Question 1 (written): has the policy converged?
#
# One improvement step turned $\pi_0 = (2, 1, 0, 0)$ into $\pi_1 = (4, 3, 0, 0)$. Has policy
# iteration converged? Say what you have to compute to know, compute it in the cell below
# with your `evaluate_policy` and `improve_policy`, and answer with the numbers that settle
# it.

# %%
# Your computation for Question 1: evaluate pi_1, then improve it.
pi_1 = np.array([4, 3, 0, 0])

# %% [markdown] nbgrader="written" grade_id="has_it_converged" points=1 title="Question 1: has the policy converged?"
# ### BEGIN SOLUTION
# One step cannot tell, and neither can how far the values fall: policy iteration has
# converged when the improvement step gives back the policy it was given, so π1 has to be
# evaluated and improved once more. Evaluating (4, 3, 0, 0) gives
# V = (1290/49, 1290/49, 1130/49, 1115/49) ≈ (26.33, 26.33, 23.06, 22.76), lower than
# (30, 30, 26, 25.4) in every state. Improving it gives (4, 3, 0, 0) again: in each state the
# current action has the smallest Q-value, by 0.43 in states 0 and 1 and by more than 3 in
# states 2 and 3. So V_π1 solves the Bellman optimality equation, (4, 3, 0, 0) is optimal
# and its values are V*: policy iteration stops after two evaluations.
#
# Rubric (1 point): ½ for the criterion (the improved policy equals the current one; a small
# or large change in the values decides nothing); ½ for carrying it out: the values of
# (4, 3, 0, 0), about (26.33, 26.33, 23.06, 22.76), and the improvement returning the same
# policy. "Yes, because (4, 3, 0, 0) is optimal" without the check earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## 4 · Iterating to the optimum
#
# ### Exercise 5 (autograded): policy iteration
#
# Write `policy_iteration(R, P, beta, policy0, max_iter=100)` that runs policy iteration
# from the feasible policy `policy0` (a list, an array or a dictionary) and returns the
# triple `(policy, V, history)`:
#
# - `policy`: the final policy, an integer numpy array;
# - `V`: its values, which are the optimal values $V^*$;
# - `history`: a list with one pair `(policy_k, V_k)` per policy evaluated, in order. The
#   first pair is `policy0` with its values, the last one is `(policy, V)`, and
#   `len(history)` is the number of evaluations. Store copies of the policies, not one
#   array you keep changing.
#
# Use `evaluate_policy`, `q_values` and `improve_policy`. **Stopping rule:** stop as soon as
# the improved policy equals the current one. To make sure this happens, keep the current
# action $\pi_k(s)$ in every state where it is tied with the best Q-value (same tolerance as
# in Exercise 4), and take the greedy action only where it is strictly better. Do not stop
# because the values changed little: a step can improve the values by a tiny amount and
# still leave better policies to find.
#
# `max_iter` is a safety net. On the models of this lab a correct policy iteration needs a
# handful of evaluations; if the policy is still changing after `max_iter` of them, raise a
# `RuntimeError` instead of looping forever. (A mistake elsewhere, a wrong sign in
# `evaluate_policy` say, can make the policies go round in circles.)
#
# The first test cell checks the final policy and values, the second one the history.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# In a loop: `V = evaluate_policy(R, P, beta, policy)`, append `(policy.copy(), V)` to the
# history, then `greedy = improve_policy(R, P, beta, V)`. Keep the current action where it
# is tied with the best Q-value: `new = np.where(tied_current, policy, greedy)`, with
# `tied_current` the states where `Q[s, policy[s]]` is within the tolerance of the minimum.
# Stop when `np.array_equal(new, policy)`.
# </details>


# %% nbgrader="answer" grade_id="policy_iteration"
def policy_iteration(R, P, beta, policy0, max_iter=100):
    """Policy iteration from policy0: (final policy, its values V*, history of (policy, V))."""
    ### BEGIN SOLUTION
    n_states = np.shape(R)[0]
    if isinstance(policy0, dict):
        policy0 = [policy0[s] for s in range(n_states)]
    policy = np.array(policy0, dtype=int)
    states = np.arange(n_states)
    history = []
    for _ in range(max_iter):
        V = evaluate_policy(R, P, beta, policy)
        history.append((policy.copy(), V))
        Q = q_values(R, P, beta, V)
        best = Q.min(axis=1)
        keep = Q[states, policy] <= best + TIE_TOL * (1 + np.abs(best))
        improved = np.where(keep, policy, improve_policy(R, P, beta, V))
        if np.array_equal(improved, policy):
            return policy, V, history
        policy = improved
    raise RuntimeError(f"the policy was still changing after {max_iter} evaluations")
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_policy_iteration" points=2 title="Exercise 5a: policy iteration finds the optimum"
# Visible tests
for name in ["evaluate_policy", "q_values", "improve_policy"]:
    assert passes_quick_test(name), (
        f"policy_iteration uses your {name}, which does not pass its tests yet: fix {name} first"
    )
V_star = np.array([1290, 1290, 1130, 1115]) / 49
policy, V, history = policy_iteration(R, P, BETA, [2, 1, 0, 0])
assert not (np.allclose(np.asarray(policy, dtype=float).ravel(), V_star)), (
    "the results come in the order (policy, V, history); yours has V first"
)
assert [int(a) for a in np.asarray(policy).ravel()] == [4, 3, 0, 0], (
    f"course warehouse: pi* = (4, 3, 0, 0), got {policy}"
)
assert np.allclose(np.asarray(V, dtype=float).ravel(), V_star), (
    f"course warehouse: V* = (26.3265, 26.3265, 23.0612, 22.7551), got {V}"
)
R12, P12 = warehouse_arrays(12, 10, 1, 1, {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})
start = smallest_feasible_policy(R12)
try:
    policy, V, history = policy_iteration(R12, P12, 0.9, start)
except IndexError as error:
    raise AssertionError(
        "policy_iteration works on the course's 4 states but raised IndexError on the "
        f"capacity-12 warehouse (13 states): {error}. Is a size or a policy of the course "
        "written into it? Start from policy0, and read the number of states from R"
    ) from None
assert np.array_equal(start, smallest_feasible_policy(R12)), (
    "policy_iteration changed the array policy0 it was given, in place; start from a copy, "
    "np.array(policy0)"
)
assert [int(a) for a in np.asarray(policy).ravel()][:4] != [11, 10, 9, 8], (
    "capacity 12: the policy returned is the result of a single improvement step, which is "
    "not optimal here; repeat evaluation and improvement until the policy stops changing"
)
V = np.asarray(V, dtype=float).ravel()
assert np.allclose(np.min(R12 + 0.9 * P12 @ V, axis=1), V), (
    "capacity 12, setup cost 10, demand 1-4: the values returned do not satisfy the "
    "Bellman optimality equation V(s) = min_a Q_V(s, a)"
)
assert [int(a) for a in np.asarray(policy).ravel()] == [8, 7, 6, 5] + [0] * 9, (
    f"capacity 12, setup cost 10, demand 1-4: produce up to 8 units when below 4; got {policy}"
)
assert np.isclose(V[0], 109.11523919), f"capacity 12: V*(0) = 109.1152, got {V[0]:.4f}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_policy_iteration

check_policy_iteration(policy_iteration, evaluate_policy, q_values, improve_policy)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_policy_iteration_history" points=1 title="Exercise 5b: the steps of policy iteration"
# Visible tests
for name in ["evaluate_policy", "q_values", "improve_policy"]:
    assert passes_quick_test(name), (
        f"policy_iteration uses your {name}, which does not pass its tests yet: fix {name} first"
    )
V_star = np.array([1290, 1290, 1130, 1115]) / 49
policy, V, history = policy_iteration(R, P, BETA, {0: 2, 1: 1, 2: 0, 3: 0})
assert not (np.allclose(np.asarray(policy, dtype=float).ravel(), V_star)), (
    "the results come in the order (policy, V, history); yours has V first"
)
policies = [[int(a) for a in step_policy] for step_policy, _ in history]
final = [int(a) for a in np.asarray(policy).ravel()]
assert not (len(policies) > 1 and all(p == final for p in policies)), (
    f"every entry of history shows the final policy {final}: store a copy of each policy "
    "(policy.copy()), not the array that the loop keeps changing"
)
assert policies != [[2, 1, 0, 0], [4, 3, 0, 0], [4, 3, 0, 0]], (
    "the final policy (4, 3, 0, 0) is evaluated and recorded twice: stop as soon as the "
    "improved policy equals the current one, before evaluating it again"
)
assert len(history) == 2, (
    f"course warehouse from (2, 1, 0, 0): two evaluations, (2, 1, 0, 0) then (4, 3, 0, 0); "
    f"got {len(history)}"
)
first_policy, first_V = history[0]
assert [int(a) for a in first_policy] == [2, 1, 0, 0], (
    "history[0] holds the starting policy policy0 (and its values)"
)
assert np.allclose(np.asarray(first_V, dtype=float).ravel(), [30, 30, 26, 25.4]), (
    "history[0] holds V = (30, 30, 26, 25.4)"
)
last_policy, last_V = history[-1]
assert not (
    [int(a) for a in last_policy] == [2, 1, 0, 0]
    and np.allclose(np.asarray(last_V, dtype=float).ravel(), V_star)
), (
    "history[1] pairs the policy (2, 1, 0, 0) with V*, the values of (4, 3, 0, 0), not its "
    "own: each policy must be stored with its own values, (policy_k, V_k)"
)
assert [int(a) for a in last_policy] == [4, 3, 0, 0], "history[-1] holds the final policy"
R12, P12 = warehouse_arrays(12, 10, 1, 1, {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})
start = smallest_feasible_policy(R12)
try:
    policy, V, history = policy_iteration(R12, P12, 0.9, start)
except IndexError as error:
    raise AssertionError(
        "policy_iteration works on the course's 4 states but raised IndexError on the "
        f"capacity-12 warehouse (13 states): {error}. Is a size or a policy of the course "
        "written into it? Start from policy0, and read the number of states from R"
    ) from None
assert np.array_equal(start, smallest_feasible_policy(R12)), (
    "policy_iteration changed the array policy0 it was given, in place; start from a copy, "
    "np.array(policy0)"
)
assert not (len(history) == 2 and [int(a) for a in history[-1][0]][:4] == [11, 10, 9, 8]), (
    "capacity 12: policy iteration stopped after a single improvement step, which is not "
    "optimal here; repeat evaluation and improvement until the policy stops changing"
)
assert len(history) == 3, f"capacity 12 from the smallest policy: 3 evaluations, not {len(history)}"
assert [int(a) for a in history[1][0][:4]] == [11, 10, 9, 8], (
    "capacity 12: the first improvement produces up to 11 units when below 4 (then PI corrects "
    f"it to 8); history[1] starts with {history[1][0][:4]}"
)
for k in range(len(history) - 1):
    assert np.all(
        np.asarray(history[k + 1][1], dtype=float).ravel()
        <= np.asarray(history[k][1], dtype=float).ravel() + 1e-9
    ), f"the values can only go down from one policy to the next (step {k} to {k + 1})"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_policy_iteration_history

check_policy_iteration_history(policy_iteration, evaluate_policy, q_values, improve_policy)
### END HIDDEN TESTS

# %% [markdown]
# ### The steps, drawn
#
# The read-only cell below defines `plot_steps(history)`: on the left the values $V_k(s)$
# of every policy evaluated, one line per step (lighter lines are earlier steps); on the
# right the policies themselves, one row per step, with the production quantity written in
# every cell and the quantities that changed at that step outlined. It then draws the
# course's warehouse and the capacity-12 warehouse of the tests. Notice that every line
# lies below the one before, in every state at once, and that on the larger warehouse the
# first improvement overshoots (it fills up to 11 units) before the second one settles on
# filling up to 8.


# %% nbgrader="locked" grade_id="plot_steps" autograde="skip"
def plot_steps(history, title):
    """Values per state (left) and policy per step (right) of a policy-iteration run."""
    policies = np.array([np.asarray(p, dtype=int) for p, _ in history])
    values = np.array([np.asarray(v, dtype=float) for _, v in history])
    n_steps, n_states = policies.shape
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 0.9 + 0.55 * max(n_steps, 5)), gridspec_kw={"width_ratios": [1, 1.2]}
    )
    shades = plt.get_cmap("Blues")(np.linspace(0.35, 1.0, n_steps))
    for k in range(n_steps):
        left.plot(range(n_states), values[k], "o-", color=shades[k], label=f"$V_{k}$")
    left.set(
        xlabel="starting inventory s",
        ylabel="expected discounted cost",
        title=f"{title}: values of each policy",
    )
    left.set_xticks(range(0, n_states, max(1, n_states // 10)))
    left.legend(fontsize=8)
    image = right.imshow(policies, cmap="Oranges", aspect="auto", vmin=0)
    for k in range(n_steps):
        for s in range(n_states):
            dark = image.norm(policies[k, s]) > 0.6
            right.text(
                s,
                k,
                str(policies[k, s]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
            if k > 0 and policies[k, s] != policies[k - 1, s]:
                right.add_patch(
                    plt.Rectangle(
                        (s - 0.5, k - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5
                    )
                )
    right.set_yticks(range(n_steps), [f"$\\pi_{k}$" for k in range(n_steps)])
    right.set_xticks(range(n_states))
    right.set(xlabel="starting inventory s", title="production chosen in each state")
    fig.tight_layout()
    plt.show()


_, _, course_history = policy_iteration(R, P, BETA, smallest_feasible_policy(R))
plot_steps(course_history, "course warehouse")
R12, P12 = warehouse_arrays(12, 10, 1, 1, {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})
_, _, history12 = policy_iteration(R12, P12, 0.9, smallest_feasible_policy(R12))
plot_steps(history12, "capacity 12, setup 10, demand 1-4")

# %% [markdown]
# ## 5 · Between the two: modified policy iteration
#
# Policy iteration solves a linear system for every policy it meets: exact, but one full
# solve per step. **Value iteration** (Lab 05) does the opposite: one cheap sweep per
# step, $V_{n+1} = T V_n$ with the Bellman operator
# $(TV)(s) = \min_a \big[R(s,a) + \beta \sum_{s'} P(s' \mid s,a)\, V(s')\big]$, and many
# steps. **Modified policy iteration** (Puterman 1994, §6.5) sits in between: it improves
# the policy as policy iteration does, then evaluates it only *partly*, with $k$ sweeps of
# the policy's own operator $T_\pi u = R_\pi + \beta P_\pi u$ instead of a solve. From
# $V_0 = 0$, step $n = 0, 1, 2, \dots$ is
#
# 1. **improve:** $u_0 = T V_n$, with $\pi$ a greedy policy that attains it (on a tie the
#    smallest action, as `np.argmin` picks);
# 2. **stop** if $\|u_0 - V_n\|_\infty < \varepsilon (1-\beta) / (2\beta)$, and return the
#    greedy policy for $u_0$, the values $u_0$ and the number of improvement steps made;
# 3. **evaluate partly:** $u_{j+1} = R_\pi + \beta P_\pi u_j$ for $j = 0, \dots, k-1$, and
#    $V_{n+1} = u_k$.
#
# With $k = 0$, step 3 does nothing and this *is* value iteration; as $k \to \infty$, $u_k$
# tends to $V_\pi$ and it becomes policy iteration. For every $k \ge 0$ the values converge
# to $V^*$ (Puterman 1994, §6.5). The stopping rule is value iteration's, and so is its
# guarantee: whatever $V_n$ it stops at, $\|u_0 - V^*\|_\infty < \varepsilon / 2$ and the
# greedy policy for $u_0$ is $\varepsilon$-optimal, because the argument (Lab 05, §3) uses
# only $u_0 = T V_n$ and the fact that $T$ and $T_\pi$ are $\beta$-contractions in the
# max norm (proved in Lab 05, §2).
#
# ### Exercise 6 (autograded): modified policy iteration
#
# Write `modified_policy_iteration(R, P, beta, k, epsilon=0.01, max_iter=10_000)` that
# runs the three steps above from $V_0 = 0$ (for $0 < \beta < 1$) and returns the triple
# `(policy, V, steps)`:
#
# - `policy`: the greedy policy for the returned values, an integer numpy array;
# - `V`: the values $u_0$ of the last step;
# - `steps`: the number of improvement steps, counting the last one (the one that
#   stopped).
#
# Raise a `RuntimeError` if the rule has not stopped after `max_iter` improvement steps.
# `R` holds `np.inf` where an action is not allowed, so the minimum of `R + beta * (P @ V)`
# never picks one. Use numpy only.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Each step: `Q = R + beta * (P @ V)`, `policy = Q.argmin(axis=1)`,
# `u = Q[states, policy]` (that is $T V_n$). Stop if `np.max(np.abs(u - V))` is below
# `epsilon * (1 - beta) / (2 * beta)`; otherwise apply
# `u = R[states, policy] + beta * P[states, policy] @ u` k times and set `V = u`.
# </details>


# %% nbgrader="answer" grade_id="modified_policy_iteration"
def modified_policy_iteration(R, P, beta, k, epsilon=0.01, max_iter=10_000):
    """Modified policy iteration with k partial evaluation sweeps: (policy, V, steps)."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    threshold = epsilon * (1 - beta) / (2 * beta)
    V = np.zeros(R.shape[0])
    for step in range(1, max_iter + 1):
        Q = R + beta * (P @ V)
        policy = Q.argmin(axis=1)
        u = Q[states, policy]
        if np.max(np.abs(u - V)) < threshold:
            return (R + beta * (P @ u)).argmin(axis=1), u, step
        for _ in range(k):
            u = R[states, policy] + beta * (P[states, policy] @ u)
        V = u
    raise RuntimeError(f"no stop after {max_iter} improvement steps")
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_modified_policy_iteration" points=2 title="Exercise 6: modified policy iteration"
# Visible tests: the course warehouse with epsilon = 0.01, so the rule stops once a sweep
# changes the values by less than 0.01 * 0.2 / 1.6 = 0.00125.
V_star = np.array([1290, 1290, 1130, 1115]) / 49
R_course, P_course = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)  # fresh copies
runs = {}
for k in (0, 5, 100):
    try:
        runs[k] = modified_policy_iteration(R_course, P_course, BETA, k)
    except NotImplementedError:
        raise
    except RuntimeError as error:
        raise AssertionError(
            f"k = {k}: the rule never stopped ({error}). With k = 0 each step must still move "
            "V to u_0 = T V_n: the partial evaluation starts from u_0, not from V_n"
        ) from None
    assert isinstance(runs[k], tuple) and len(runs[k]) == 3, (
        f"k = {k}: return the triple (policy, V, steps), got {type(runs[k]).__name__}"
    )
assert int(runs[0][2]) != 29, (
    "k = 0 stops after 29 steps: the rule compares the change with epsilon; compare it with "
    "epsilon (1 - beta) / (2 beta)"
)
for k, (policy, V, _) in runs.items():
    V = np.asarray(V, dtype=float).ravel()
    assert not np.all(np.abs(V - 40) < 0.01), (
        f"k = {k}: V = {V} is the value of producing as much as possible: costs are "
        "minimised (min and argmin)"
    )
    assert [int(a) for a in np.asarray(policy).ravel()] == [4, 3, 0, 0], (
        f"k = {k}: the policy returned should be pi* = (4, 3, 0, 0), got {policy}"
    )
    near = np.all(np.abs(V - V_star) < 0.005)
    one_more = np.min(R_course + BETA * (P_course @ V), axis=1)  # T V: a sweep from your V
    assert near or not np.all(np.abs(one_more - V_star) < 0.005), (
        f"k = {k}: V = {V} is one sweep short: on stopping it returns V_n, the values before "
        "the last sweep; return u_0 = T V_n"
    )
    assert near, (
        f"k = {k}: V = {V} should be within epsilon / 2 = 0.005 of V* = {np.round(V_star, 4)}"
    )
steps = {k: int(result[2]) for k, result in runs.items()}
assert steps[0] != 38, "k = 0 counts 38 steps: count every improvement step, the last one too"
assert steps[0] != 20, (
    "k = 0 takes 20 steps: with k = 0 there is no partial evaluation at all; yours makes one "
    "sweep too many (k + 1)"
)
assert steps[0] == 39, f"k = 0 is value iteration from V_0 = 0: 39 steps here; got {steps[0]}"
assert steps[5] != 37, "k = 5 counts 37: count the improvement steps, not every sweep"
assert steps[5] != 5, (
    "k = 5 takes 5 steps: the partial evaluation updates u state by state in place "
    "(Gauss-Seidel); compute each sweep from the whole previous u"
)
assert steps[5] != 8, (
    "k = 5 takes 8 steps: the partial sweeps take the minimum over actions again (value "
    "iteration); they apply the policy fixed at the start of the step, R_pi + beta P_pi u"
)
assert steps[5] != 9, (
    "k = 5 takes 9 steps: one partial sweep too few per step. Make k sweeps, starting from "
    "u_0 = T V_n (the sweep that chose the policy), not from V_n"
)
assert steps[5] == 7, f"k = 5 stops after 7 steps here; got {steps[5]}"
assert steps[100] == 3, f"k = 100 behaves as policy iteration: 3 steps here; got {steps[100]}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04 import check_modified_policy_iteration

check_modified_policy_iteration(modified_policy_iteration)
### END HIDDEN TESTS

# %% [markdown]
# ### Sweeps against solves
#
# The next cell runs your function for several $k$ on the course warehouse and on the
# capacity-12 warehouse of Exercise 5 and counts the work: each improvement step is one
# sweep of $T$, plus $k$ sweeps of $T_\pi$. More sweeps per step buy fewer steps, until
# the policy is right after a step or two and the extra sweeps only polish the values.

# %% nbgrader="locked" grade_id="mpi_table" autograde="skip"
larger = warehouse_arrays(12, 10, 1, 1, {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25})  # Exercise 5's
print(f"{'':12s} {'k':>4s} {'steps':>6s} {'sweeps':>7s}")
for name, (R_m, P_m, beta_m) in {
    "course": (R, P, BETA),
    "capacity 12": (*larger, 0.9),
}.items():
    for k in (0, 1, 2, 5, 10, 20, 50):
        _, _, n = modified_policy_iteration(R_m, P_m, beta_m, k)
        print(f"{name:12s} {k:4d} {n:6d} {n * (1 + k) - k:7d}")


# %% [markdown]
# ## 6 · Why policy iteration stops, and where to start
#
# Two facts do the work.
#
# **Improvement.** Let $\pi'$ be greedy for $V_\pi$, keeping $\pi$'s action where it is tied.
# In every state, $r_{\pi'} + \beta P_{\pi'} V_\pi \le r_\pi + \beta P_\pi V_\pi = V_\pi$, because
# $\pi'$ picks a smallest Q-value. Apply the same one-period look-ahead with $\pi'$ again
# and again: each application can only lower the right-hand side further (the entries of
# $P_{\pi'}$ are non-negative), and the repeated look-ahead converges to $V_{\pi'}$. So
# $V_{\pi'} \le V_\pi$ in every state, with strict inequality in the states where $\pi'$
# changed the action, since it changes only where it is strictly better.
#
# **Optimality at the end.** If improving gives back the same policy, then
# $V_\pi(s) = \min_a Q_{V_\pi}(s, a)$ in every state: $V_\pi$ solves the Bellman optimality
# equation, whose only solution is $V^*$.
#
# ### Question 2 (written)
#
# Use these facts to explain, in three to five sentences, why policy iteration must stop
# after finitely many evaluations, for any finite MDP and any feasible start. Give a bound
# on the number of evaluations for the course's warehouse (how many policies does it have?),
# and say what could go wrong if a tied current action were replaced by another tied one.

# %% [markdown] nbgrader="written" grade_id="why_it_stops" points=2 title="Question 2: why policy iteration stops"
# ### BEGIN SOLUTION
# Every step that changes the policy lowers its values: V_{k+1} <= V_k in every state and
# strictly in at least one (the changed states), so the sequence of value vectors strictly
# decreases and no policy can be visited twice (a repeated policy would have the same
# values). There are only finitely many deterministic stationary policies, the product of
# the numbers of feasible actions |A(s)| over the states, so after at most that many
# evaluations the improvement step must return the current policy, and then V_k solves the
# optimality equation, so the policy is optimal. For the course's warehouse
# |A(0)| |A(1)| |A(2)| |A(3)| = 3 * 3 * 3 * 2 = 54 policies, so at most 54 evaluations (it
# needs 2). If a tied current action were swapped for another tied one, the policy could
# change without any improvement: two policies with equal values could alternate forever
# (rounding errors in the Q-values can make the "best" tied action flip from one step to the
# next), and the rule "stop when the policy repeats" would never fire. Keeping the current
# action when tied makes every change a strict improvement.
#
# Rubric (2 points): ½ for the strict decrease (V_{k+1} ≤ V_k everywhere, strictly where
# the policy changed), so no policy is evaluated twice; ½ for the finite number of
# policies together with optimality at the stop (V_k then solves the optimality equation);
# ½ for the count 3·3·3·2 = 54 as the product of the |A(s)|, hence at most 54 evaluations
# (5⁴ = 625, which also counts infeasible actions, does not earn it); ½ for the tie rule:
# swapping tied actions changes the policy without improving it, so two equally good
# policies can alternate (rounding can flip the tie) and "stop when the policy repeats"
# never fires. "It converges" or "the values decrease" without ruling out a repeated
# policy earns nothing.
# ### END SOLUTION

# %% [markdown]
# ### Question 3 (written)
#
# The course starts from $\pi_0 = (2, 1, 0, 0)$, the smallest feasible production in every
# state. In two to four sentences: why is that a reasonable start? Would another feasible
# start change the result of policy iteration, and could it change the number of
# evaluations? (The explorer below lets you start from the largest feasible production
# instead.)

# %% [markdown] nbgrader="written" grade_id="why_smallest_start" points=1 title="Question 3: the starting policy"
# ### BEGIN SOLUTION
# Policy iteration needs a feasible policy to evaluate, and producing the smallest feasible
# quantity is feasible in every state by construction (it just meets the largest demand), so
# it can be written down without any computation, for any capacity and demand. It is also the
# natural myopic policy: it minimises this period's production cost and holds as little
# stock as possible, a sensible baseline that the improvement step then corrects where
# producing more pays off later. Any other feasible start leads to the same optimal values V*
# (and to an optimal policy, the same one unless there are ties), because the algorithm only
# stops at a solution of the optimality equation; but the path and the number of evaluations
# depend on the start (from the largest production the capacity-12 warehouse needs 4
# evaluations instead of 3).
#
# Rubric (1 point): ½ for feasibility in every state by construction (the smallest
# production just meets the largest demand), so the start needs no computation for any
# capacity or demand; ½ for any feasible start reaching the same V* (policy iteration stops
# only at the unique solution of the optimality equation; the policy can differ only among
# tied actions) while the number of evaluations can change. "It is simple" without
# feasibility earns nothing; a claim that another start changes V* loses the second half.
# ### END SOLUTION

# %% [markdown]
# ## 7 · The other convention: holding on the ending inventory
#
# Every lab of the series charges holding on the **starting** inventory $s$, as the course's
# published numbers do. Many texts charge it instead on what is left at the **end** of the
# period, $s + a - D$. The warehouse does not change (same states, actions, feasibility and
# transitions), only its one-period cost. Demand is random, so the expected cost of a
# period is
#
# $$
# r^{\text{end}}(s, a) \;=\; K\,[a > 0] + c\,a + h\,\big(s + a - \mathbb{E}[D]\big),
# \qquad \mathbb{E}[D] = \sum_d d\, p_D(d),
# $$
#
# which is never negative, since every feasible action meets the largest demand.
#
# ### Exercise 7 (autograded): the costs of the other convention
#
# Write `ending_holding_costs(capacity, setup_cost, unit_cost, holding_cost, demand_pmf)`
# that returns the array `R_end` of $r^{\text{end}}(s, a)$, laid out as the `R` of
# `warehouse_arrays`: shape `(capacity + 1, capacity + min(demand_pmf) + 1)`, with `np.inf`
# exactly where `warehouse_arrays`' `R` has it. Leave `demand_pmf` as it was given. You may
# call `warehouse_arrays` from the setup cell.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# The two conventions differ by $h\,(s + a - \mathbb{E}[D]) - h\,s = h\,(a - \mathbb{E}[D])$
# in every feasible pair. With `R, _ = warehouse_arrays(...)` and
# `a = np.arange(R.shape[1])`, the expression `R + holding_cost * (a - mean)` adds it to
# every column at once, and `np.inf` plus a number stays `np.inf`. The mean demand weights
# each value by its probability: `sum(d * p for d, p in demand_pmf.items())`.
# </details>


# %% nbgrader="answer" grade_id="ending_holding_costs"
def ending_holding_costs(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    """R_end[s, a] = K [a > 0] + c a + h (s + a - E[D]) where feasible, np.inf elsewhere."""
    ### BEGIN SOLUTION
    R, _ = warehouse_arrays(capacity, setup_cost, unit_cost, holding_cost, demand_pmf)
    mean_demand = sum(d * p for d, p in demand_pmf.items())
    produced = np.arange(R.shape[1])
    return R + holding_cost * (produced - mean_demand)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_ending_holding_costs" points=2 title="Exercise 7: holding on the ending inventory"
# Visible tests
R_course, P_course = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)  # fresh arrays
demand = dict(COURSE_DEMAND)
R_end = ending_holding_costs(3, 4, 1, 1, demand)
assert demand == COURSE_DEMAND, (
    "ending_holding_costs changed its argument demand_pmf in place; read it, do not pop from it"
)
assert R_end is not None, "ending_holding_costs returned None; did you forget `return`?"
assert not isinstance(R_end, tuple), (
    "ending_holding_costs returned a tuple; return the array R_end alone, not the pair (R, P)"
)
R_end = np.asarray(R_end, dtype=float)
assert R_end.shape == R_course.shape, (
    f"R_end has the layout of warehouse_arrays' R, shape {R_course.shape}; got shape {R_end.shape}"
)
assert np.array_equal(np.isinf(R_end), np.isinf(R_course)), (
    "R_end is np.inf exactly where R is: at the infeasible pairs, and only there"
)
feasible = np.isfinite(R_course)
# On the course's warehouse E[D] = 1.5. What the usual mistakes give, feasible pairs only:
a_grid = np.arange(R_course.shape[1])[None, :]
s_grid = np.arange(R_course.shape[0])[:, None]
K_grid = np.where(a_grid > 0, 4.0, 0.0)
MISTAKES = [  # (what a usual mistake gives, the mistake)
    (R_course, "these are the costs with holding on the STARTING inventory s; charge s + a - E[D]"),
    (
        K_grid + a_grid + (s_grid + a_grid),
        "holding is charged on s + a, the stock after production; the period's demand "
        "leaves before its end: s + a - E[D]",
    ),
    (
        K_grid + a_grid + (s_grid + a_grid - 2),
        "holding is charged on s + a - max(D); use the expected demand E[D]",
    ),
    (
        K_grid + a_grid + (s_grid + a_grid - 1),
        "holding is charged on s + a - min(D); use the expected demand E[D]",
    ),
    (
        4.0 + a_grid + (s_grid + a_grid - 1.5),
        "the setup cost is charged even where nothing is produced (a = 0)",
    ),
]
for wrong, mistake in MISTAKES:
    assert not np.allclose(R_end[feasible], np.broadcast_to(wrong, R_course.shape)[feasible]), (
        f"course warehouse: {mistake}"
    )
assert np.allclose(R_end[feasible], (K_grid + a_grid + (s_grid + a_grid - 1.5))[feasible]), (
    f"course warehouse: R_end[s, a] = 4 [a > 0] + a + (s + a - 1.5) where feasible; got\n{R_end}"
)
# A demand whose values are not equally likely: E[D] = 0*0.25 + 1*0.75 = 0.75, not 0.5.
R_toy, _ = warehouse_arrays(2, 3, 2, 1, {0: 0.25, 1: 0.75})
R_end = np.asarray(ending_holding_costs(2, 3, 2, 1, {0: 0.25, 1: 0.75}), dtype=float)
toy_feasible = np.isfinite(R_toy)
a_toy = np.arange(R_toy.shape[1])[None, :]
assert not np.allclose(R_end[toy_feasible], (R_toy + (a_toy - 0.5))[toy_feasible]), (
    "demand {0: 0.25, 1: 0.75}: E[D] is the probability-weighted mean 0.75, not the plain "
    "average 0.5 of the demand values"
)
s_toy = np.arange(R_toy.shape[0])[:, None]
assert not np.allclose(
    R_end[toy_feasible], (np.where(a_toy > 0, 4, 0) + a_toy + s_toy + a_toy - 0.75)[toy_feasible]
), "these are the course's costs K = 4, c = 1, h = 1; use the arguments of the call"
assert np.allclose(R_end[toy_feasible], (R_toy + (a_toy - 0.75))[toy_feasible]), (
    "capacity 2, K = 3, c = 2, h = 1, demand {0: 0.25, 1: 0.75}: expected R_end[s, a] = "
    f"3 [a > 0] + 2 a + (s + a - 0.75) where feasible; got\n{R_end}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab04_ending import check_ending_holding_costs

check_ending_holding_costs(ending_holding_costs)
### END HIDDEN TESTS

# %% [markdown]
# ### The same optimum, other values
#
# The read-only cell below runs **your** `policy_iteration` on both conventions of the
# course's warehouse, and on a third warehouse: the starting-inventory one with holding
# cost $h/\beta$ instead of $h = 1$, whose values it prints less $h s/\beta$. It does so for
# the course's $\beta = 0.8$ and again for $\beta = 0.6$.


# %% nbgrader="locked" grade_id="conventions_compared" autograde="skip"
def optimum(costs, beta):
    """Your policy_iteration from the smallest feasible policy: (policy, values)."""
    best, values, _ = policy_iteration(costs, P_course, beta, smallest_feasible_policy(costs))
    return tuple(int(a) for a in best), np.asarray(values, dtype=float)


# Fresh arrays: a cell above may have changed R or P in place.
R_start, P_course = warehouse_arrays(**COURSE, demand_pmf=COURSE_DEMAND)
R_end = np.asarray(ending_holding_costs(**COURSE, demand_pmf=COURSE_DEMAND), dtype=float)
for beta in (BETA, 0.6):
    R_scaled, _ = warehouse_arrays(3, 4, 1, 1 / beta, COURSE_DEMAND)
    print(f"beta = {beta:g}: {'holding charged on':<45} {'optimum':<14} values V*(0..3)")
    for label, costs, shift in [
        ("the starting inventory, h = 1", R_start, 0.0),
        ("the ending inventory, h = 1", R_end, 0.0),
        (f"the starting inventory, h = {1 / beta:.4g}, less h s", R_scaled, np.arange(4) / beta),
    ]:
        policy, values = optimum(costs, beta)
        print(f"{'':<11}{label:<45} {policy!s:<14} {np.round(values - shift, 4)}")

# %% [markdown]
# Both conventions of the course's warehouse are solved by $(4, 3, 0, 0)$, with other
# values: $V^{*,\text{end}} \approx (28.0510, 27.0510, 22.5408, 21.3367)$. The third line
# of each table explains why. Along any run the ending inventory of period $t$ is the starting inventory
# of period $t + 1$, $s_{t+1} = s_t + a_t - D_t$, so under every policy $\pi$
#
# $$
# \mathbb{E}\sum_{t \ge 0} \beta^t h\, s_{t+1}
# \;=\; \frac{h}{\beta}\, \mathbb{E}\sum_{t \ge 1} \beta^t s_t
# \;=\; \frac{h}{\beta}\, \mathbb{E}\sum_{t \ge 0} \beta^t s_t \;-\; \frac{h}{\beta}\, s_0 ,
# \qquad\text{hence}\qquad
# V^{\text{end}, h}_\pi(s) \;=\; V^{\text{start}, h/\beta}_\pi(s) - \frac{h}{\beta}\, s .
# $$
#
# (The expectation of $s + a - D$ is what $r^{\text{end}}$ charges, so the identity holds for
# the expected costs too.) The last term does not depend on the policy. So **holding $h$ on
# the ending inventory is holding $h/\beta$ on the starting inventory**, less a constant per
# start state, and the two conventions share their optimal policies exactly when the
# warehouse with holding $h$ and the one with holding $h/\beta$ do. On the course's warehouse
# they do. They need not: at $\beta = 0.6$, the starting convention still produces up to
# 4 units, $(4, 3, 0, 0)$, while the ending one, whose holding is in effect $1/0.6 \approx 1.67$,
# produces only what demand requires, $(2, 1, 0, 0)$. The convention is part of the model,
# and the labs state theirs.

# %% [markdown]
# ## 8 · Explore: policy iteration on a larger warehouse
#
# The explorer below runs **your** `policy_iteration` on a warehouse with capacity 10 to 20,
# unit cost 1 and a demand of 1, 2, 3 or 4 units with probability ¼ each. The sliders set the
# capacity, the discount factor β, the setup cost $K$ and the holding cost $h$, and the start
# (smallest or largest feasible production); the *step* slider walks through the policies
# that policy iteration evaluates. On the left: the values of the current step (blue), the
# earlier steps (grey) and the optimal values (dashed). On the right: the production chosen
# in every state, with the quantities that changed at this step in orange, and the stock
# level $s + \pi(s)$ after production.
#
# Things to try:
# - How many evaluations does policy iteration need as the capacity grows? Compare with the
#   number of policies, which is astronomically large.
# - Raise the setup cost: how do the level below which the warehouse produces and the level
#   it fills up to move? What happens with a setup cost of 0?
# - Raise the holding cost, or lower β: why does the warehouse keep less stock?

# %% nbgrader="locked" grade_id="redraw_helpers"
# {{module:mdplab.redraw}}

# %% nbgrader="locked" grade_id="explorer" autograde="skip"
EXPLORER_DEMAND = {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25}
style = {"description_width": "90px"}
capacity_slider = widgets.IntSlider(
    value=12, min=10, max=20, description="capacity", continuous_update=False, style=style
)
beta_slider = widgets.FloatSlider(
    value=0.9,
    min=0.5,
    max=0.99,
    step=0.01,
    description="beta",
    continuous_update=False,
    style=style,
)
setup_slider = widgets.FloatSlider(
    value=10.0,
    min=0.0,
    max=40.0,
    step=1.0,
    description="setup cost K",
    continuous_update=False,
    style=style,
)
holding_slider = widgets.FloatSlider(
    value=1.0,
    min=0.0,
    max=3.0,
    step=0.25,
    description="holding h",
    continuous_update=False,
    style=style,
)
start_choice = widgets.Dropdown(
    options=["smallest feasible", "largest feasible"],
    value="smallest feasible",
    description="start",
    style=style,
)
step_slider = widgets.IntSlider(
    value=0, min=0, max=0, description="step k", continuous_update=False, style=style
)
explorer_out = widgets.Output()
explorer = {"history": [], "capacity": 0, "busy": False}


# One figure for every redraw, made once with a fixed layout: explorer_draw only moves its
# lines, bars and labels (the cell above says why that keeps up with the sliders).
pi_fig = redraw_figure((13, 4))
pi_left, pi_right = pi_fig.subplots(1, 2)
pi_fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.93, wspace=0.15)
# All the earlier steps' values are one grey line, broken (by NaN) between steps.
(earlier_lines,) = pi_left.plot([], [], ".-", color="0.75")
(current_line,) = pi_left.plot([], [], "o-", color="tab:blue", label="$V_k$ (step k)")
(optimal_line,) = pi_left.plot([], [], "--", color="tab:green", label="$V^*$ (last step)")
pi_left.set(xlabel="starting inventory s", ylabel="expected discounted cost")
step_label = pi_left.legend(fontsize=8).get_texts()[0]  # says which step the blue line is
# One bar per state of the largest warehouse; a smaller one hides the bars it does not have.
most_states = np.arange(capacity_slider.max + 1)
production_bars = pi_right.bar(
    most_states,
    np.zeros(most_states.size),
    color="tab:blue",
    label="production $\\pi_k(s)$ (orange: changed)",
)
(stock_marks,) = pi_right.plot([], [], "k.", label="stock after production")
pi_right.set(xlabel="starting inventory s", ylabel="units")
pi_right.legend(fontsize=8, loc="upper right")


def explorer_run(change=None):
    """Rebuild the warehouse from the sliders, run policy iteration, show step 0."""
    capacity = capacity_slider.value
    R_x, P_x = warehouse_arrays(
        capacity, setup_slider.value, 1.0, holding_slider.value, EXPLORER_DEMAND
    )
    if start_choice.value == "smallest feasible":
        start_policy = smallest_feasible_policy(R_x)
    else:
        start_policy = R_x.shape[1] - 1 - np.isfinite(R_x)[:, ::-1].argmax(axis=1)
    _, _, history = policy_iteration(R_x, P_x, beta_slider.value, start_policy)
    explorer.update(history=history, capacity=capacity, busy=True)
    step_slider.max = len(history) - 1
    step_slider.value = 0
    explorer["busy"] = False
    explorer_draw()


def explorer_draw(change=None):
    """Draw the step chosen with the step slider."""
    if explorer["busy"]:
        return
    history, k = explorer["history"], step_slider.value
    policies = [np.asarray(p, dtype=int) for p, _ in history]
    values = [np.asarray(v, dtype=float) for _, v in history]
    states = np.arange(explorer["capacity"] + 1)
    # The earlier steps' values one after the other, each followed by a break (NaN).
    earlier_lines.set_data(
        np.tile(np.append(states, np.nan), k),
        np.concatenate([np.append(v, np.nan) for v in values[:k]]) if k else [],
    )
    current_line.set_data(states, values[k])
    step_label.set_text(f"$V_{k}$ (step {k})")
    optimal_line.set_data(states, values[-1])
    # y=1 puts a title where matplotlib would; without it, every draw measures the tick
    # labels again to make sure that none is in the way.
    pi_left.set_title(f"step {k} of {len(history) - 1}: values", y=1)
    changed = np.zeros(states.size, dtype=bool)
    if k > 0:
        changed = policies[k] != policies[k - 1]
    for s, bar in enumerate(production_bars):
        bar.set_visible(s < states.size)
        if s < states.size:
            bar.set_height(policies[k][s])
            bar.set_facecolor("tab:orange" if changed[s] else "tab:blue")
    stock_marks.set_data(states, states + policies[k])
    pi_right.set_title(f"policy {k}: {changed.sum()} state(s) changed", y=1)
    for ax in (pi_left, pi_right):  # the limits that matplotlib would choose for this data
        ax.relim(visible_only=True)
        ax.autoscale_view()
    with explorer_out:
        explorer_out.clear_output(wait=True)
        display(figure_png(pi_fig))
        print(
            f"policy iteration evaluated {len(history)} policies; "
            f"warehouse with {states.size} states"
        )


for control in (capacity_slider, beta_slider, setup_slider, holding_slider, start_choice):
    control.observe(explorer_run, names="value")
step_slider.observe(explorer_draw, names="value")
display(
    widgets.VBox(
        [
            widgets.HBox([capacity_slider, beta_slider, start_choice]),
            widgets.HBox([setup_slider, holding_slider]),
            step_slider,
            explorer_out,
        ]
    )
)
explorer_run()

# %% [markdown]
# ## Summary
#
# - Policy iteration alternates **evaluation**, the linear system
#   $(I - \beta P_\pi) V = r_\pi$ (numpy's `solve`, or equality constraints in Gurobi), and
#   **improvement**, a greedy policy for the Q-values
#   $Q(s, a) = r(s, a) + \beta \sum_{s'} P(s' \mid s, a) V(s')$, with infeasible pairs at
#   $+\infty$.
# - A change of policy raises no value and strictly lowers the value of every state whose
#   action changed; keeping the current action when it is tied makes the rule "stop when
#   the policy repeats" safe, and there are only finitely many policies, so the method
#   stops, with a solution of the optimality equation.
# - Modified policy iteration replaces the exact evaluation by $k$ sweeps of
#   $u \mapsto R_\pi + \beta P_\pi u$: $k = 0$ is value iteration, large $k$ behaves as policy
#   iteration, and a few sweeps per step usually need the least work in all.
# - On the course's warehouse, $(2, 1, 0, 0)$ with $V = (30, 30, 26, 25.4)$ improves in one
#   step to the optimal $(4, 3, 0, 0)$, $V^* \approx (26.3265, 26.3265, 23.0612, 22.7551)$.
# - Holding $h$ charged on the ending inventory is holding $h/\beta$ on the starting one, less
#   $h s/\beta$, which no policy changes: on the course's warehouse both conventions have the
#   optimum $(4, 3, 0, 0)$, but not for every $\beta$.
# - In practice the number of evaluations is tiny compared with the number of policies,
#   even on larger warehouses, although each evaluation solves a linear system with one
#   unknown per state.
#
# ## References
#
# - M. L. Puterman, *Markov Decision Processes: Discrete Stochastic Dynamic Programming*,
#   Wiley, 1994: §6.1–6.2 (discounted models, optimality equations), §6.3–6.5 (value,
#   policy and modified policy iteration), §6.9 (linear programming).
# - D. P. Bertsekas, *Dynamic Programming and Optimal Control*, Vol. I (4th ed., 2017) and
#   Vol. II (4th ed., 2012), Athena Scientific.
# - R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., MIT
#   Press, 2018, ch. 4.
#
# The series grows from the lab "Lab 10 Discounted MDPs" by Bo Tang, whose warehouse
# problem and published numbers it keeps.
#
# Next: **Lab 05** solves the same optimality equation by value iteration, which trades the
# exact evaluations for many cheap Bellman updates.
