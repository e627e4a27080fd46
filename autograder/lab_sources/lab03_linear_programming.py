# %% [markdown]
# {{colab_badge}}
#
# # Lab 03 · Solving the MDP with linear programming
#
# Lab 02 wrote the warehouse down as a discounted MDP and evaluated a given policy. Now we
# look for the **best** policy. The Bellman optimality equation has a minimum in it, so it
# is not a linear system; but it can be turned into a **linear program** (LP), and an LP
# solver then returns the optimal values $V^*$ and, read off the right constraints, an
# optimal policy. This lab builds that LP with **gurobipy**, first for the warehouse and then
# for any finite MDP, explains why it works, and studies its **dual**, whose variables
# count how often each state and action is used.
#
# **Learning goals.** After this lab you can
# 1. explain why $V^*$ is the largest function that satisfies the Bellman inequalities
#    $V(s) \le r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s')$, and why the LP therefore
#    **maximises** $\sum_s V(s)$;
# 2. write this LP with gurobipy, constraint by constraint for the warehouse and from cost
#    and transition arrays for any finite MDP;
# 3. read an optimal policy from the **tight** constraints at the optimum;
# 4. write the dual LP over discounted state-action frequencies $x(s, a)$, solve it, read a
#    policy from it, and explain what its variables mean;
# 5. add a constraint on how the system is run to the dual LP (a constrained MDP), read the
#    randomised policy it may need, and interpret the constraint's shadow price.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests here and by hidden tests that call your
# functions on other models (warehouses with other capacities, costs, demands and discount
# factors, and randomly drawn MDPs). Written parts are read by your instructor.

# %% [markdown]
# This lab needs **gurobipy**, Gurobi's Python interface. `pip install gurobipy` comes with a
# size-limited licence (at most 2000 variables and 2000 constraints), far more than the
# models of this lab need. The next (read-only) cell installs gurobipy only if it is missing,
# as it is on a fresh Colab runtime; then the setup cell imports everything.

# %% nbgrader="locked" grade_id="install"
import importlib.util

if importlib.util.find_spec("gurobipy") is None:  # a fresh Colab runtime
    # %pip install -q gurobipy
    print("gurobipy installed")

# %% nbgrader="locked" grade_id="setup"
import sys

import gurobipy as gp
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from gurobipy import GRB
from IPython.display import display

IN_COLAB = "google.colab" in sys.modules
print(
    "Running in", "Google Colab" if IN_COLAB else "Jupyter", "with Python", sys.version.split()[0]
)
print("numpy", np.__version__, "| gurobipy", ".".join(map(str, gp.gurobi.version())))
# Silence Gurobi's solver log for every model of this session. Starting Gurobi prints one
# line about its licence ("Restricted license - for non-production use only"): that is
# expected, and it is the only line Gurobi prints.
gp.setParam("OutputFlag", 0)

# %% [markdown]
# ## 1 · The model in brief
#
# A discounted MDP has finitely many **states** $s \in S$, in each state a set $A(s)$ of
# **feasible actions**, a one-period **cost** $r(s, a)$, **transition probabilities**
# $P(s' \mid s, a)$ and a **discount factor** $0 \le \beta < 1$. The smallest expected
# discounted cost from each state, $V^*(s)$, solves the **Bellman optimality equation**
#
# $$
# V^*(s) \;=\; \min_{a \in A(s)} \Big[\, r(s, a) + \beta \sum_{s' \in S} P(s' \mid s, a)\,
# V^*(s') \Big] \qquad \text{for every } s \in S ,
# $$
#
# and a policy that picks a minimising action in every state is optimal.
#
# **The warehouse.** A warehouse holds at most $C$ units. The state $s \in \{0, \dots, C\}$
# is the inventory at the **start** of a period, the action $a \ge 0$ the number of units
# produced (ready at once). A period costs
#
# $$
# r(s, a) \;=\; K \cdot [a > 0] \;+\; c \cdot a \;+\; h \cdot s ,
# $$
#
# a setup cost $K$ if anything is produced, $c$ per unit produced, and a holding cost $h$ per
# unit of the **starting** inventory $s$. (Some texts charge holding on the ending
# inventory; this series charges the starting inventory, as the course's published numbers
# do.) The demand $D$ is drawn from a pmf $p_D$, must always be met, and what is left,
# $s + a - D$, is the next state and must fit in the warehouse. With $d_{\min}$ and
# $d_{\max}$ the smallest and largest demand,
#
# $$
# A(s) = \{\, a \ge 0 : s + a \ge d_{\max},\ s + a - d_{\min} \le C \,\},
# \qquad P(s' \mid s, a) = p_D(s + a - s').
# $$
#
# The course's instance has $C = 3$, $K = 4$, $c = h = 1$, demand 1 or 2 with probability
# $\frac12$ each, and $\beta = 0.8$. Its feasible actions and costs:
#
# | state $s$ | feasible $a$ | $r(s, a)$ | after demand 1 / 2 the next state is |
# |---|---|---|---|
# | 0 | 2, 3, 4 | 6, 7, 8 | $a - 1$ / $a - 2$ |
# | 1 | 1, 2, 3 | 6, 7, 8 | $a$ / $a - 1$ |
# | 2 | 0, 1, 2 | 2, 7, 8 | $a + 1$ / $a$ |
# | 3 | 0, 1 | 3, 8 | $a + 2$ / $a + 1$ |
#
# In Lab 02 you saw that the policy $(2, 1, 0, 0)$ costs $V = (30, 30, 26, 25.4)$ and that
# looking one period ahead suggests $(4, 3, 0, 0)$ instead. This lab proves that
# $(4, 3, 0, 0)$ is optimal.

# %% [markdown]
# ## 2 · Why a linear program finds $V^*$
#
# Write $T$ for the **Bellman operator**: for any function $V$ on the states,
# $(TV)(s) = \min_{a \in A(s)} \big[ r(s, a) + \beta \sum_{s'} P(s' \mid s, a) V(s') \big]$.
# The optimality equation says $V^* = TV^*$. Two facts about $T$ carry the whole argument:
#
# - **$T$ is monotone:** if $V \le W$ in every state, then $TV \le TW$ in every state (the
#   probabilities and $\beta$ are non-negative, and a minimum of larger numbers is larger).
# - **$T$ is a contraction** with modulus $\beta$ in the sup norm,
#   $\max_s |TU(s) - TV(s)| \le \beta \max_s |U(s) - V(s)|$, so for any $V$ the sequence
#   $V, TV, T^2V, \dots$ converges to $V^*$, the only fixed point of $T$. We use it here;
#   Lab 05 (section 2) proves it in a few lines, and value iteration is exactly this
#   sequence.
#
# **Step 1: a linear description.** Call $V$ a **sub-solution** when $V \le TV$ in every
# state. A number is at most a minimum exactly when it is at most every term of the minimum,
# so $V \le TV$ means
#
# $$
# V(s) \;\le\; r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s')
# \qquad \text{for every state } s \text{ and every feasible action } a \in A(s).
# $$
#
# These are **linear inequalities** in the unknowns $V(s)$, one per feasible pair $(s, a)$.
#
# **Step 2: every sub-solution lies below $V^*$.** If $V \le TV$, monotonicity gives
# $TV \le T^2 V$, then $T^2 V \le T^3 V$, and so on:
# $V \le TV \le T^2 V \le \dots \to V^*$. Hence $V \le V^*$ in every state.
#
# **Step 3: $V^*$ is a sub-solution**, since $V^* = TV^*$.
#
# So among all $V$ that satisfy the inequalities, $V^*$ is the largest **in every state at
# once**. Whatever positive weights we give the states, $V^*$ maximises the weighted sum,
# and it is the only maximiser (a sub-solution below $V^*$ everywhere and strictly below
# somewhere has a smaller sum). The **primal LP** is therefore
#
# $$
# \max_{V} \; \sum_{s \in S} V(s)
# \quad \text{subject to} \quad
# V(s) - \beta \sum_{s'} P(s' \mid s, a)\, V(s') \;\le\; r(s, a)
# \quad \text{for all } s \in S,\ a \in A(s),
# $$
#
# with **free** variables $V(s)$: values may be negative (costs can be negative, i.e.
# rewards), so no bound $V(s) \ge 0$ belongs in the model.
#
# **Step 4: tight constraints give optimal actions.** At the optimum $V = V^*$, the
# constraint of $(s, a)$ holds with equality, it is **tight**, exactly when $a$ attains the
# minimum in the optimality equation, i.e. when $a$ is an optimal action in $s$. Every state
# has at least one tight constraint; the others are **slack**. Section 4 reads the policy off
# this way.
#
# ### 2.1 The course's LP, written out
#
# For the course's warehouse the LP has 4 variables and $3 + 3 + 3 + 2 = 11$ constraints
# (all probabilities are $\frac12$):
#
# $$
# \begin{aligned}
# \max\;& V_0 + V_1 + V_2 + V_3 \quad \text{subject to} \\
# s = 0:\;& V_0 \le 6 + 0.8\,(\tfrac12 V_0 + \tfrac12 V_1), \quad
#           V_0 \le 7 + 0.8\,(\tfrac12 V_1 + \tfrac12 V_2), \quad
#           V_0 \le 8 + 0.8\,(\tfrac12 V_2 + \tfrac12 V_3) \\
# s = 1:\;& V_1 \le 6 + 0.8\,(\tfrac12 V_0 + \tfrac12 V_1), \quad
#           V_1 \le 7 + 0.8\,(\tfrac12 V_1 + \tfrac12 V_2), \quad
#           V_1 \le 8 + 0.8\,(\tfrac12 V_2 + \tfrac12 V_3) \\
# s = 2:\;& V_2 \le 2 + 0.8\,(\tfrac12 V_0 + \tfrac12 V_1), \quad
#           V_2 \le 7 + 0.8\,(\tfrac12 V_1 + \tfrac12 V_2), \quad
#           V_2 \le 8 + 0.8\,(\tfrac12 V_2 + \tfrac12 V_3) \\
# s = 3:\;& V_3 \le 3 + 0.8\,(\tfrac12 V_1 + \tfrac12 V_2), \quad
#           V_3 \le 8 + 0.8\,(\tfrac12 V_2 + \tfrac12 V_3)
# \end{aligned}
# $$
#
# Each future term follows the last column of the table in section 1: in state 0, producing
# $a = 3$ leaves 2 or 1 units, so that constraint's future term is
# $\tfrac12 V_2 + \tfrac12 V_1$.

# %% [markdown]
# ### 2.2 gurobipy in five lines
#
# A gurobipy model holds variables, constraints and an objective. The read-only cell below
# solves a small LP, $\max\ 3x + 2y$ subject to $x + y \le 4$, $x + 3y \le 9$, $x \le 3$,
# $x, y \ge 0$, and shows every call this lab needs:
#
# | call | what it does |
# |---|---|
# | `model = gp.Model()` | an empty model |
# | `model.Params.OutputFlag = 0` | no solver log (the setup cell already silenced all models) |
# | `v = model.addVar(lb=-GRB.INFINITY)` | one **free** variable; the default is `lb=0`! |
# | `v = model.addVars(4, lb=-GRB.INFINITY)` | four variables `v[0], ..., v[3]` |
# | `model.addConstr(expression <= number)` | one linear constraint; returns it |
# | `gp.quicksum(...)` | a fast `sum` for linear expressions |
# | `model.setObjective(expression, GRB.MAXIMIZE)` | the objective and its direction |
# | `model.optimize()` | solve |
# | `model.Status == GRB.OPTIMAL` | did it find an optimum? |
# | `v.X`, `constraint.Pi` | a variable's value, a constraint's dual value (after solving) |
#
# `constraint.Pi` is the constraint's **dual value** (shadow price): how much the optimal
# objective would change per unit increase of the constraint's right-hand side. Section 5
# gives it a meaning for MDPs.

# %% nbgrader="locked" grade_id="gurobi_demo"
demo = gp.Model()
x = demo.addVar(name="x")  # lb=0 by default
y = demo.addVar(name="y")
first = demo.addConstr(x + y <= 4)
second = demo.addConstr(x + 3 * y <= 9)
third = demo.addConstr(x <= 3)
demo.setObjective(3 * x + 2 * y, GRB.MAXIMIZE)
demo.optimize()
print("optimal:", demo.Status == GRB.OPTIMAL, "| objective", demo.ObjVal)
print("x =", x.X, " y =", y.X)
print("dual values (Pi):", [first.Pi, second.Pi, third.Pi])

# %% [markdown]
# When an LP has no optimum, Gurobi has no values to read, and your functions should raise
# an error that says so (the exercises ask you to check `model.Status`). The tests use the
# read-only helper below to put such an error into words: what Gurobi's status means, and
# the mistakes that usually cause it.

# %% nbgrader="locked" grade_id="lp_help"
import re

STATUS_WORDS = {
    GRB.INFEASIBLE: "infeasible: no solution satisfies every constraint",
    GRB.INF_OR_UNBD: "infeasible or unbounded (Gurobi stopped before telling which)",
    GRB.UNBOUNDED: "unbounded: the objective improves without limit",
}
USUAL_CAUSES = {
    ("primal", "unbounded"): "The primal LP MAXIMISES sum V subject to V(s) - beta * sum_s' "
    "P(s'|s,a) V(s') <= r(s, a); minimising, writing the inequalities with >=, or leaving out "
    "beta makes it unbounded.",
    ("primal", "infeasible"): "No V satisfies every constraint: check that each reads "
    "V(s) - beta * sum_s' P(s'|s,a) V(s') <= r(s, a).",
    ("primal", "negative"): "Some optimal values here are negative (costs that are rewards): "
    "variables left at Gurobi's default bound lb=0 make the LP infeasible; use "
    "lb=-GRB.INFINITY.",
    ("dual", "infeasible"): "The balance equations cannot all hold without the factor beta "
    "on the inflow (added up over the states, their left-hand sides cancel), or without "
    "alpha[s'] on the right of the equation of s'.",
    ("dual", "unbounded"): "The frequencies must satisfy x >= 0 (Gurobi's default lb=0); free "
    "variables (lb=-GRB.INFINITY) make the dual unbounded.",
}


def explained(error, lp, negative_values=False):
    """The error an LP function raised, with Gurobi's status in words and its usual causes
    (lp is "primal" or "dual"; negative_values: some optimal values of the model are < 0);
    an error that is not about a missing optimum comes back as it is."""
    text = f"{type(error).__name__}: {error}"
    status = re.search(r"status\D{0,12}(\d+)", text, flags=re.IGNORECASE)
    if status and int(status.group(1)) in STATUS_WORDS:
        words = STATUS_WORDS[int(status.group(1))]
        kinds = [kind for kind in ("unbounded", "infeasible") if kind in words]
        meaning = f"Gurobi's status {status.group(1)} means the LP is {words}."
    elif "Unable to retrieve attribute" in text:
        kinds = ["unbounded", "infeasible"]
        meaning = (
            "Gurobi has no solution to read: the LP was not solved to optimality (check "
            "model.Status == GRB.OPTIMAL before reading .X or .Pi)."
        )
    else:
        return error
    if lp == "primal" and negative_values:
        kinds = ["negative" if kind == "infeasible" else kind for kind in kinds]
    causes = " Or: ".join(USUAL_CAUSES[lp, kind] for kind in kinds)
    return AssertionError(f"{text}. {meaning} {causes}")


# %% [markdown]
# The optimum is $x = 3$, $y = 1$ with objective 11. The first and third constraints are
# tight, and their dual values say that one more unit of the first right-hand side would
# raise the objective by 2, one more of the third by 1. The second constraint is slack
# ($3 + 3 < 9$), so loosening it is worth nothing: its dual value is 0.
#
# ### Exercise 1 (autograded): the warehouse LP, constraint by constraint
#
# Write `warehouse_lp(capacity, setup_cost, unit_cost, holding_cost, demand_pmf, beta)` that
# builds the primal LP of the warehouse with gurobipy, solves it and returns $V^*$ as a
# numpy array of length $C + 1$. `demand_pmf` is a dictionary `{demand: probability}` (keys
# in any order, every probability positive), like `{1: 0.5, 2: 0.5}`.
#
# - One variable per state, with `lb=-GRB.INFINITY`.
# - One constraint per **feasible** pair $(s, a)$ (section 1), built from the model: the
#   cost $r(s, a)$, and the future term $\beta \sum_d p_D(d)\, V(s + a - d)$. Infeasible
#   actions get no constraint.
# - Objective: maximise $\sum_s V(s)$.
#
# Check `model.Status == GRB.OPTIMAL` before you read the values: if the LP has no optimum
# (an unbounded LP is the usual sign of a mistake in it), raise an error that says so.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `V = model.addVars(capacity + 1, lb=-GRB.INFINITY)` gives the free variables. In state `s`
# the feasible productions run from `max(0, max(demand_pmf) - s)` to
# `capacity + min(demand_pmf) - s`; for each, add `V[s] <= cost + beta * future`, with the
# future as `gp.quicksum(...)` of `p * V[s + a - d]` over `demand_pmf.items()`. Maximise
# `V.sum()`, and read `V[s].X` only after checking `model.Status == GRB.OPTIMAL`.
# </details>


# %% nbgrader="answer" grade_id="warehouse_lp"
def warehouse_lp(capacity, setup_cost, unit_cost, holding_cost, demand_pmf, beta):
    """V* of the warehouse, from the primal LP written constraint by constraint."""
    ### BEGIN SOLUTION
    states = range(capacity + 1)
    lp = gp.Model("warehouse")
    lp.Params.OutputFlag = 0
    V = lp.addVars(states, lb=-GRB.INFINITY, name="V")
    for s in states:
        lowest = max(0, max(demand_pmf) - s)  # meet the largest demand
        highest = capacity + min(demand_pmf) - s  # fit after the smallest demand
        for a in range(lowest, highest + 1):
            cost = setup_cost * (a > 0) + unit_cost * a + holding_cost * s
            future = gp.quicksum(p * V[s + a - d] for d, p in demand_pmf.items())
            lp.addConstr(V[s] <= cost + beta * future, name=f"s{s}_a{a}")
    lp.setObjective(V.sum(), GRB.MAXIMIZE)
    lp.optimize()
    if lp.Status != GRB.OPTIMAL:
        raise RuntimeError(f"the LP has no optimal solution (status {lp.Status})")
    return np.array([V[s].X for s in states])
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_warehouse_lp" points=2 title="Exercise 1: the warehouse LP"
# Visible tests
course_demand = {1: 0.5, 2: 0.5}
try:
    V = warehouse_lp(3, 4, 1, 1, course_demand, 0.8)
except Exception as error:  # an LP without an optimum: say why in words
    raise explained(error, "primal") from None
assert course_demand == {1: 0.5, 2: 0.5}, (
    f"warehouse_lp changed demand_pmf in place (it now holds {course_demand}); the caller "
    "still needs it: read it (demand_pmf.items()), do not pop or clear it"
)
assert not any(isinstance(v, gp.Var) for v in np.ravel(np.asarray(V, dtype=object))), (
    "warehouse_lp returned gurobipy variables (Var objects); return their values, V[s].X, "
    "read after model.optimize()"
)
V = np.asarray(V, dtype=float).reshape(-1)
assert V.shape == (4,), f"one value per state 0..3: expected 4 values, got {V.size}"
# The values that the usual mistakes give for the course's warehouse, first:
usual_mistakes = [
    ([30, 30, 30, 31], "the setup cost is charged even when nothing is produced (a = 0)"),
    (
        [28.0510, 27.0510, 22.5408, 21.3367],
        "holding is charged on the expected ENDING "
        "inventory s + a - E[D]; this lab charges it on the STARTING inventory s",
    ),
    (
        [35.5510, 34.5510, 30.0408, 28.8367],
        "holding is charged on the stock after "
        "production, s + a; this lab charges it on the STARTING inventory s",
    ),
    (
        [6, 6, 2, 3],
        "these are the one-period costs min_a r(s, a): the future term "
        "beta * sum_d p(d) V(s + a - d) is missing",
    ),
    (
        [40, 40, 40, 40],
        "these are the values of the COSTLIEST policy: an LP that minimises "
        "sum V subject to >= constraints; maximise sum V subject to V(s) <= r(s, a) + beta * E[V(next)]",
    ),
]
for values, mistake in usual_mistakes:
    assert not np.allclose(V, values, atol=1e-4), f"course warehouse: got {V}: {mistake}"
exact_V = np.array([1290, 1290, 1130, 1115]) / 49  # (26.3265, 26.3265, 23.0612, 22.7551)
too_low = V - exact_V
assert not (np.all(too_low <= 1e-6) and np.any(too_low < -1e-4)), (
    f"course warehouse: got {V}, too low in some state: the LP has a constraint too many, "
    "e.g. for a production that is infeasible (a must meet the LARGEST demand and fit after "
    "the SMALLEST one)"
)
assert np.allclose(V, exact_V, atol=1e-4), (
    f"course warehouse: V* should be about (26.3265, 26.3265, 23.0612, 22.7551), got {V}"
)
V = np.asarray(warehouse_lp(3, 4, 1, 1, {2: 0.5, 1: 0.5}, 0.0), dtype=float).reshape(-1)
assert not np.allclose(V, exact_V, atol=1e-4), (
    "beta = 0: these are the values for beta = 0.8, the course's discount: use the argument beta"
)
assert np.allclose(V, [6, 6, 2, 3]), (
    f"with beta = 0 only one period counts: V*(s) = min_a r(s, a) = (6, 6, 2, 3), got {V}"
)
V = np.asarray(warehouse_lp(2, 3, 1, 0, {1: 1.0}, 0.5), dtype=float).reshape(-1)
assert np.allclose(V, [20 / 3, 10 / 3, 5 / 3]), (
    "capacity 2, setup 3, unit 1, no holding cost, demand always 1, beta 0.5: producing 2 "
    f"units every other period gives V* = (20/3, 10/3, 5/3), got {V}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_warehouse_lp

check_warehouse_lp(warehouse_lp)
### END HIDDEN TESTS

# %% [markdown]
# ## 3 · The LP of any finite MDP
#
# The warehouse LP knew the model's formulas. A solver for any finite MDP takes the model as
# arrays instead, as in Lab 02:
#
# - `R` of shape `(S, A)`: `R[s, a]` $= r(s, a)$ for a feasible pair, `np.inf` otherwise;
# - `P` of shape `(S, A, S)`: `P[s, a]` is the row $P(\cdot \mid s, a)$, all zeros when $a$ is
#   infeasible in $s$.
#
# The read-only cell below holds `warehouse_model`, which builds these arrays for any
# warehouse (it is Lab 02's `build_model`), and two small models for the tests: `toy_R`,
# `toy_P`, a two-state MDP whose costs can be negative, and `tie_R`, `tie_P`, a one-state MDP
# in which two actions are equally good.


# %% nbgrader="locked" grade_id="models"
def warehouse_model(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    """(R, P) of the warehouse: R[s, a] (np.inf if infeasible) and P[s, a, s']."""
    n_states = capacity + 1
    n_actions = capacity + min(demand_pmf) + 1  # column a = produce a units
    R = np.full((n_states, n_actions), np.inf)
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(max(0, max(demand_pmf) - s), capacity + min(demand_pmf) - s + 1):
            R[s, a] = setup_cost * (a > 0) + unit_cost * a + holding_cost * s
            for d, p in demand_pmf.items():
                P[s, a, s + a - d] += p
    return R, P


course_R, course_P = warehouse_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})
course_beta = 0.8

# Two states; action 1 is infeasible in state 1. Staying in state 1 earns 2 per period.
toy_R = np.array([[1.0, 0.0], [-2.0, np.inf]])
toy_P = np.zeros((2, 2, 2))
toy_P[0, 0] = [1.0, 0.0]  # state 0, action 0: stay in state 0
toy_P[0, 1] = [0.0, 1.0]  # state 0, action 1: move to state 1
toy_P[1, 0] = [0.0, 1.0]  # state 1, action 0: stay in state 1

# One state, three actions that all stay there; actions 0 and 1 cost the same.
tie_R = np.array([[1.0, 1.0, 2.0]])
tie_P = np.ones((1, 3, 1))

print("course warehouse: R =")
print(course_R)


# %% [markdown]
# ### Exercise 2 (autograded): an LP solver for any finite MDP
#
# Write `solve_mdp_lp(R, P, beta)` that solves the primal LP of the MDP given by the arrays
# and returns the pair `(V, x)`:
#
# - `V`: the optimal values, a numpy array of length $S$;
# - `x`: a numpy array of the same shape as `R` that holds the **dual value** (`Pi`) of the
#   constraint of each feasible pair $(s, a)$, and 0 for infeasible pairs.
#
# Write each constraint as $V(s) - \beta \sum_{s'} P(s' \mid s, a)\, V(s') \le r(s, a)$: in a
# maximisation, Gurobi's dual values of `<=` constraints are then $\ge 0$. (If you write a
# constraint the other way round, with `>=`, its `Pi` comes out with the opposite sign, and
# you must flip it.) Loops over the pairs with `addConstr` are fine; so is gurobipy's matrix
# interface (`model.addMVar`, `model.addConstr(A @ v <= b)`), if you know it. Only feasible
# pairs (finite `R[s, a]`) get a constraint, and check the status as in Exercise 1.
#
# The first test cell checks `V`, the second one `x`.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Loop over the feasible pairs only, `for s, a in zip(*np.nonzero(np.isfinite(R)))`, add
# `V[s] - beta * gp.quicksum(P[s, a, t] * V[t] for t in ...) <= R[s, a]` and keep the
# constraint that `addConstr` returns in a dictionary keyed by `(s, a)`. After a successful
# `optimize()`, start from `x = np.zeros(R.shape)` and fill in `constraint.Pi` for every
# stored pair; the infeasible pairs stay 0.
# </details>


# %% nbgrader="answer" grade_id="solve_mdp_lp"
def solve_mdp_lp(R, P, beta):
    """Primal LP of a finite MDP: (V*, x) with x[s, a] the dual value of constraint (s, a)."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    n_states = R.shape[0]
    lp = gp.Model("mdp")
    lp.Params.OutputFlag = 0
    V = lp.addVars(n_states, lb=-GRB.INFINITY, name="V")
    constraints = {}
    for s, a in zip(*np.nonzero(np.isfinite(R)), strict=True):
        future = gp.quicksum(P[s, a, t] * V[t] for t in range(n_states) if P[s, a, t] > 0)
        constraints[s, a] = lp.addConstr(V[s] - beta * future <= R[s, a])
    lp.setObjective(V.sum(), GRB.MAXIMIZE)
    lp.optimize()
    if lp.Status != GRB.OPTIMAL:
        raise RuntimeError(f"the LP has no optimal solution (status {lp.Status})")
    x = np.zeros(R.shape)
    for (s, a), constraint in constraints.items():
        x[s, a] = constraint.Pi
    return np.array([V[s].X for s in range(n_states)]), x
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_solve_mdp_lp_values" points=2 title="Exercise 2a: LP values"
# Visible tests
R_given, P_given = course_R.copy(), course_P.copy()
try:
    V, x = solve_mdp_lp(R_given, P_given, course_beta)
except Exception as error:  # an LP without an optimum: say why in words
    raise explained(error, "primal") from None
for name, given, original in [("R", R_given, course_R), ("P", P_given, course_P)]:
    assert np.array_equal(given, original), (
        f"solve_mdp_lp changed its argument {name} in place; the caller still needs it as it "
        f"was: work on a copy (np.array({name}, dtype=float) copies, np.asarray({name}) does not)"
    )
V = np.asarray(V, dtype=float).reshape(-1)
assert V.shape == (4,), f"one value per state: expected 4 values, got {V.size}"
assert not np.allclose(V, [40, 40, 40, 40]), (
    "course warehouse: these are the values of the COSTLIEST policy, from an LP that minimises "
    "sum V subject to >= constraints; maximise sum V subject to "
    "V(s) - beta * sum_s' P(s'|s,a) V(s') <= r(s, a)"
)
assert not np.allclose(V, [6, 6, 2, 3]), (
    "course warehouse: these are the one-period costs min_a r(s, a): the future term "
    "beta * sum_s' P(s'|s,a) V(s') is missing"
)
assert np.allclose(V, [1290 / 49, 1290 / 49, 1130 / 49, 1115 / 49]), (
    f"course warehouse: V* = (26.3265, 26.3265, 23.0612, 22.7551), got {V}"
)
try:
    V, x = solve_mdp_lp(toy_R, toy_P, 0.5)
except Exception as error:  # the toy model's optimal values are negative
    raise explained(error, "primal", negative_values=True) from None
V = np.asarray(V, dtype=float).reshape(-1)
assert not np.allclose(V, [-8, -10]), (
    "toy model, beta 0.5: these are the values for beta = 0.8 (course_beta, the course's "
    "discount): use the argument beta"
)
assert np.allclose(V, [-2, -4]), (
    "toy model, beta 0.5: moving to state 1 and staying there earns 2 per period, so "
    f"V* = (0 + 0.5 * (-4), -2 / (1 - 0.5)) = (-2, -4); got {V}"
    + (
        ". Values may be negative: are your variables free (lb=-GRB.INFINITY)?"
        if np.all(V >= -1e-9)
        else ""
    )
)
V, x = solve_mdp_lp(tie_R, tie_P, 0.5)
assert np.allclose(np.asarray(V, dtype=float), [2]), f"tie model: V* = 1 / (1 - 0.5) = 2, got {V}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_solve_mdp_lp_values

check_solve_mdp_lp_values(solve_mdp_lp)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_solve_mdp_lp_duals" points=1 title="Exercise 2b: LP dual values"
# Visible tests
try:
    V, x = solve_mdp_lp(course_R, course_P, course_beta)
except Exception as error:  # an LP without an optimum: say why in words
    raise explained(error, "primal") from None
x = np.asarray(x, dtype=float)
assert x.shape != (np.isfinite(course_R).sum(),), (
    f"x has one entry per feasible pair, shape {x.shape}; return an array of the shape of R, "
    f"{course_R.shape}, with the dual value of the constraint of (s, a) at x[s, a]"
)
assert x.shape == course_R.shape, f"x has the shape of R, {course_R.shape}; got {x.shape}"
assert np.all(x[np.isinf(course_R)] == 0), "infeasible pairs have no constraint: x = 0 there"
expected_x = np.zeros((4, 5))
expected_x[[0, 1, 2, 3], [4, 3, 0, 0]] = [175 / 49, 265 / 49, 45 / 7, 225 / 49]
assert not np.allclose(-x, expected_x), (
    "course warehouse: the dual values have the wrong sign: a constraint written with >= "
    "(e.g. r + beta * P V >= V) has Pi <= 0; write it as V(s) - beta * sum P V <= r(s, a), or "
    "flip the sign of its Pi"
)
assert not np.isclose(np.sum(x[np.isfinite(course_R)] * course_R[np.isfinite(course_R)]), 160), (
    "course warehouse: these are the dual values of an LP whose optimum is the COSTLIEST "
    "policy (sum r * x = 160); the primal maximises sum V subject to <= constraints"
)
exact_V = np.array([1290, 1290, 1130, 1115]) / 49
slack = np.where(
    np.isfinite(course_R), course_R + course_beta * course_P @ exact_V - exact_V[:, None], 0
)
assert not np.allclose(x, slack), (
    "course warehouse: these are the constraints' slacks (the Slack attribute), not their "
    "dual values (the Pi attribute)"
)
assert np.all(x >= -1e-9), (
    "the dual values of the <= constraints of a maximisation are >= 0, but x has negative entries"
)
assert np.allclose(x, expected_x), (
    "course warehouse: only the four tight constraints have a positive dual value, "
    f"x[0, 4] = 3.5714, x[1, 3] = 5.4082, x[2, 0] = 6.4286, x[3, 0] = 4.5918; got\n{x}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_solve_mdp_lp_duals

check_solve_mdp_lp_duals(solve_mdp_lp)
### END HIDDEN TESTS

# %% [markdown]
# ### Question 1 (written)
#
# We want the *smallest* expected cost, yet the LP *maximises* $\sum_s V(s)$. In three to
# five sentences: what goes wrong if you minimise $\sum_s V(s)$ over the same constraints
# (think of $V = -c$ in every state, for a large number $c$), and why does maximising give the
# smallest cost? Would maximising $\sum_s w(s) V(s)$ with other positive weights $w(s)$
# change the answer?

# %% [markdown] nbgrader="written" grade_id="why_maximise" points=1 title="Question 1: why the LP maximises"
# ### BEGIN SOLUTION
# The constraints only say V ≤ TV; they bound V from above, not from below. The constant
# V = −c satisfies every constraint as soon as −c(1 − β) ≤ r(s, a) for all pairs, so
# minimising ΣV can drive the values to −∞: the LP is unbounded and says nothing. Every
# feasible V is a lower bound on V* (V ≤ TV ≤ T²V ≤ … → V*), so each V(s) can be at most
# V*(s), and V* itself is feasible; the largest feasible V, which is what maximising finds, is
# therefore V*, the smallest expected cost. Because V* is the largest in every state at
# once, any positive weights w(s) give the same unique optimum V* (only the objective value
# changes); with zero weights the LP could leave some V(s) below V*.
#
# Rubric (1 point): ½ for unboundedness: the constraints bound V only from above, and
# V = −c satisfies them all once −c(1 − β) ≤ min r(s, a), so minimising ΣV goes to −∞;
# ½ for why the maximum is V*: every feasible V has V ≤ TV ≤ T²V ≤ … → V*, and V* is
# feasible, so V* is the largest feasible V in every state at once, which also shows that
# any positive weights w(s) give the same V*. "The LP finds the tightest lower bound"
# without the argument that V ≤ V* earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## 4 · Reading the policy off the tight constraints
#
# By Step 4 of section 2, an action is optimal exactly when its constraint is tight at
# $V^*$. The **slack** of the constraint of a feasible pair $(s, a)$ at a value function $V$ is
#
# $$
# \text{slack}(s, a) \;=\; r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V(s') - V(s)
# \;\;\ge 0 \text{ at a feasible } V .
# $$
#
# A solver computes in floating point, so a tight constraint has a slack of about $10^{-12}$,
# rarely exactly 0: call a constraint tight when its slack is at most a small tolerance.
#
# ### Exercise 3 (autograded): the optimal actions
#
# Write `policy_from_lp(R, P, beta, V, tol=1e-6)` that returns a numpy array of $S$ whole
# numbers: for every state, an action column whose constraint is tight at `V`, i.e. whose
# slack is at most `tol`. Infeasible pairs are never chosen. When several actions of a state
# are tight, take the **smallest** one (the grader accepts any optimal action where several
# are optimal). `V` is an optimal value function, e.g. the one your LP returns.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# No LP is needed here. In each state `s`, take the feasible columns
# `feasible = np.flatnonzero(np.isfinite(R[s]))` and all their slacks at once,
# `R[s, feasible] + beta * P[s, feasible] @ V - V[s]`. Then `feasible[slack <= tol]` lists
# the tight actions in increasing order, so its first entry is the smallest; if it is
# empty, fall back on the feasible action with the smallest slack (`np.argmin`).
# </details>


# %% nbgrader="answer" grade_id="policy_from_lp"
def policy_from_lp(R, P, beta, V, tol=1e-6):
    """For every state, the smallest action whose LP constraint is tight at V."""
    ### BEGIN SOLUTION
    R, P, V = (np.asarray(z, dtype=float) for z in (R, P, V))
    policy = np.zeros(R.shape[0], dtype=int)
    for s in range(R.shape[0]):
        feasible = np.flatnonzero(np.isfinite(R[s]))
        slack = R[s, feasible] + beta * P[s, feasible] @ V - V[s]
        tight = feasible[slack <= tol]
        # V from a solver is optimal up to rounding, so some action is tight; if V were
        # not optimal, fall back on the action with the smallest slack.
        policy[s] = tight[0] if tight.size else feasible[np.argmin(slack)]
    return policy
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_policy_from_lp" points=2 title="Exercise 3: policy from tight constraints"
# Visible tests
exact_V = np.array([1290, 1290, 1130, 1115]) / 49
R_given, P_given, V_given = course_R.copy(), course_P.copy(), exact_V.copy()
try:
    result = policy_from_lp(R_given, P_given, course_beta, V_given)
except IndexError as error:
    raise AssertionError(
        f"policy_from_lp raised IndexError: {error}. If it found no tight action in some "
        "state: solvers round, so compare each slack with tol, not with 0"
    ) from None
for name, given, original in [
    ("R", R_given, course_R),
    ("P", P_given, course_P),
    ("V", V_given, exact_V),
]:
    assert np.array_equal(given, original), (
        f"policy_from_lp changed its argument {name} in place; the caller still needs it as "
        f"it was: work on a copy (np.nan_to_num(..., copy=False) and np.asarray do not copy)"
    )
assert hasattr(result, "__len__"), (
    f"policy_from_lp returned a {type(result).__name__}; return a numpy array (a generator "
    "can be read only once)"
)
policy = [int(a) for a in result]
assert policy != [2, 2, 0, 0], (
    "course warehouse: (2, 2, 0, 0) are positions in the lists of feasible actions; return "
    "the action columns a themselves (the index into R[s])"
)
assert policy != [2, 1, 1, 1], (
    "course warehouse: (2, 1, 1, 1) takes in every state the action with the LARGEST slack, "
    "the least tight constraint; optimal actions have a tight constraint, slack 0"
)
assert policy == [4, 3, 0, 0], f"course warehouse: the optimal policy is (4, 3, 0, 0), got {policy}"
noisy_V = exact_V + np.array([3e-10, -2e-10, 1e-10, -4e-10])  # what a solver may return
try:
    policy = [int(a) for a in policy_from_lp(course_R, course_P, course_beta, noisy_V)]
except IndexError as error:
    raise AssertionError(
        f"policy_from_lp raised IndexError: {error}. Values a solver returns are exact only "
        "up to rounding: compare each slack with tol, not with 0"
    ) from None
assert policy == [4, 3, 0, 0], (
    f"values a solver returns are exact only up to rounding; compare slacks with tol, got {policy}"
)
policy = [int(a) for a in policy_from_lp(toy_R, toy_P, 0.5, [-2.0, -4.0], tol=1e-8)]
assert policy == [1, 0], (
    f"toy model: move to state 1 (action 1), then stay (action 0); got {policy}"
)
policy = [int(a) for a in policy_from_lp(tie_R, tie_P, 0.5, [2.0])]
assert policy[0] in (0, 1), f"tie model: actions 0 and 1 are both optimal, got {policy}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_policy_from_lp

check_policy_from_lp(policy_from_lp)
### END HIDDEN TESTS

# %% [markdown]
# ### The course's warehouse, solved
#
# The read-only cells below solve the course's LP with your functions and draw the result.
# On the left, $V^*$ per state with the optimal production written above each bar. On the
# right, the slack of every constraint: grey cells are infeasible pairs, and the outlined
# cells with slack 0 are the tight constraints, one per state here, which spell out the
# optimal policy $(4, 3, 0, 0)$. Notice how expensive the slack actions are in states 2 and
# 3: producing there means paying a setup for stock that is already on hand.


# %% nbgrader="locked" grade_id="plot_helpers"
def slack_table(R, P, beta, V):
    """slack(s, a) = r(s, a) + beta * sum_s' P(s'|s, a) V(s') - V(s); nan where infeasible."""
    R, P, V = (np.asarray(z, dtype=float) for z in (R, P, V))
    feasible = np.isfinite(R)
    return np.where(feasible, np.where(feasible, R, 0.0) + beta * P @ V - V[:, None], np.nan)


def plot_lp_solution(R, P, beta, V, policy, title="", tol=1e-6):
    """V* per state with the chosen actions, and the slack of every LP constraint."""
    V = np.asarray(V, dtype=float)
    slack = slack_table(R, P, beta, V)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [4, max(4, slack.shape[1])]}
    )
    states = np.arange(V.size)
    left.bar(states, V, color="tab:blue")
    for s in states:
        left.text(
            s, V[s], f"{V[s]:.4g}\nproduce {int(policy[s])}", ha="center", va="bottom", fontsize=8
        )
    left.set_ylim(min(0.0, V.min() * 1.2), max(0.0, V.max() * 1.25) + 1e-9)
    left.set(
        xticks=states,
        xlabel="starting inventory s",
        ylabel="$V^*(s)$",
        title=f"optimal values and policy {title}",
    )
    colours = plt.get_cmap("Oranges").copy()
    colours.set_bad("0.85")
    image = right.imshow(np.ma.masked_invalid(slack), cmap=colours)
    for (s, a), value in np.ndenumerate(slack):
        if np.isnan(value):
            right.text(a, s, "-", ha="center", va="center", fontsize=8, color="0.4")
            continue
        tight = abs(value) <= tol
        right.text(
            a,
            s,
            "tight" if tight else f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold" if tight else "normal",
            color="white" if image.norm(value) > 0.6 else "black",  # dark cells, light text
        )
        if tight:
            right.add_patch(
                plt.Rectangle(
                    (a - 0.5, s - 0.5), 1, 1, fill=False, edgecolor="tab:blue", linewidth=2.5
                )
            )
    right.set(
        xticks=range(slack.shape[1]),
        yticks=states,
        xlabel="action a (units produced)",
        ylabel="state s",
        title="slack of each constraint (outlined: tight)",
    )
    fig.colorbar(image, ax=right, label="slack")
    fig.tight_layout()
    plt.show()


# %% nbgrader="locked" grade_id="plot_course" autograde="skip"
V, x = solve_mdp_lp(course_R, course_P, course_beta)
policy = policy_from_lp(course_R, course_P, course_beta, V)
print("V* =", np.round(np.asarray(V, dtype=float), 4))
print("optimal policy:", [int(a) for a in policy])
plot_lp_solution(course_R, course_P, course_beta, V, policy, title="(course warehouse)")

# %% [markdown]
# ## 5 · The dual LP: discounted state-action frequencies
#
# Every LP has a **dual**. Take the primal with positive weights $\alpha(s)$ in the
# objective, $\max \sum_s \alpha(s) V(s)$. Give each primal constraint $(s, a)$ a multiplier
# $x(s, a) \ge 0$ and each free variable $V(s')$ an equality; the LP dual is
#
# $$
# \min_{x \ge 0} \; \sum_{s, a} r(s, a)\, x(s, a)
# \quad \text{subject to} \quad
# \sum_{a \in A(s')} x(s', a) \;-\; \beta \sum_{s} \sum_{a \in A(s)} P(s' \mid s, a)\, x(s, a)
# \;=\; \alpha(s') \quad \text{for every } s' ,
# $$
#
# with one variable for each **feasible** pair and one equality for each state.
#
# **What $x$ means.** Start the warehouse in a random state drawn with probabilities
# $\alpha$ (if the weights sum to 1) and follow a policy $\pi$. Then
#
# $$
# x(s, a) \;=\; \sum_{t=0}^{\infty} \beta^t \Pr(s_t = s,\ a_t = a)
# $$
#
# is the **discounted number of periods** spent in $s$ taking action $a$, and it satisfies the
# constraint above: the discounted visits to $s'$ (left) are the visits of period 0,
# $\alpha(s')$, plus $\beta$ times the visits that arrive in $s'$ from one period earlier. Its
# objective, $\sum r x$, is the expected discounted cost $\sum_s \alpha(s) V_\pi(s)$. So the
# dual picks the cheapest way to spend discounted time in the states, and **strong duality**
# says its optimum equals the primal's:
#
# $$
# \min_x \sum_{s, a} r(s, a)\, x(s, a) \;=\; \sum_s \alpha(s)\, V^*(s) .
# $$
#
# When every weight $\alpha(s)$ is positive, every state is visited,
# $\sum_a x(s, a) \ge \alpha(s) > 0$, and a vertex of the dual has at most $S$ positive
# entries, one per balance equation. A simplex solver returns a vertex, so each state then
# has exactly one action with $x(s, a) > 0$: a deterministic policy, and an optimal one
# (Puterman, 1994, §6.9). If several policies are optimal the dual has several optimal
# vertices and the solver returns one of them; and a state with $\alpha(s) = 0$ that no
# optimal policy reaches gets $x(s, \cdot) = 0$, which says nothing about its action. With
# $\alpha > 0$ the policy is read from $x$ as the action with the **largest** $x(s, a)$ in
# each state. With $\alpha \equiv 1$
# the dual optimum is the vector of dual values (`Pi`) that your `solve_mdp_lp` returned.
#
# ### Exercise 4 (autograded): the dual LP
#
# Write `solve_dual_lp(R, P, beta, alpha)` that builds and solves the dual LP with gurobipy
# and returns the pair `(x, policy)`:
#
# - `x`: a numpy array of the shape of `R` with the optimal $x(s, a)$ of every feasible pair
#   and 0 for infeasible pairs (they get no variable: an `inf` cost cannot enter a model);
# - `policy`: a numpy array of $S$ whole numbers, in each state the action with the largest
#   $x(s, a)$ (the smallest such action if there is a tie).
#
# `alpha` is a list or array of $S$ positive weights. The first test cell checks `x`, the
# second the policy.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# With `pairs = list(zip(*np.nonzero(np.isfinite(R))))`, `model.addVars(pairs)` gives one
# variable `x[s, a] >= 0` per feasible pair (keep the default `lb=0`). For each state `t`,
# add `out_flow - beta * in_flow == alpha[t]`: `out_flow` sums `x[s, a]` over the pairs with
# `s == t`, `in_flow` sums `P[s, a, t] * x[s, a]` over all pairs. Minimise Σ r x, read `.X`,
# put -1 at infeasible pairs and take `np.argmax(..., axis=1)` (first action of a tie).
# </details>


# %% nbgrader="answer" grade_id="solve_dual_lp"
def solve_dual_lp(R, P, beta, alpha):
    """Dual LP: optimal discounted state-action frequencies x[s, a] and the policy from x."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    n_states = R.shape[0]
    pairs = list(zip(*np.nonzero(np.isfinite(R)), strict=True))
    lp = gp.Model("dual")
    lp.Params.OutputFlag = 0
    x = lp.addVars(pairs, lb=0.0, name="x")
    for target in range(n_states):
        out_flow = gp.quicksum(x[s, a] for s, a in pairs if s == target)
        in_flow = gp.quicksum(P[s, a, target] * x[s, a] for s, a in pairs if P[s, a, target] > 0)
        lp.addConstr(out_flow - beta * in_flow == alpha[target], name=f"balance{target}")
    lp.setObjective(gp.quicksum(R[s, a] * x[s, a] for s, a in pairs), GRB.MINIMIZE)
    lp.optimize()
    if lp.Status != GRB.OPTIMAL:
        raise RuntimeError(f"the dual LP has no optimal solution (status {lp.Status})")
    frequencies = np.zeros(R.shape)
    for s, a in pairs:
        frequencies[s, a] = x[s, a].X
    masked = np.where(np.isfinite(R), frequencies, -1.0)  # never pick an infeasible pair
    return frequencies, np.argmax(masked, axis=1)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_dual_frequencies" points=2 title="Exercise 4a: dual frequencies"
# Visible tests
R_given, P_given, alpha_given = course_R.copy(), course_P.copy(), np.ones(4)
try:
    result = solve_dual_lp(R_given, P_given, course_beta, alpha_given)
except Exception as error:  # an LP without an optimum: say why in words
    raise explained(error, "dual") from None
for name, given, original in [
    ("R", R_given, course_R),
    ("P", P_given, course_P),
    ("alpha", alpha_given, np.ones(4)),
]:
    assert np.array_equal(given, original), (
        f"solve_dual_lp changed its argument {name} in place; the caller still needs it as "
        f"it was: work on a copy (np.array({name}, dtype=float) copies, np.asarray does not)"
    )
x, policy = result
assert not (np.shape(x) == (4,) and np.shape(policy) == course_R.shape), (
    "the pair comes in the order (x, policy); yours is the other way round"
)
x = np.asarray(x, dtype=float)
assert x.shape == course_R.shape, f"x has the shape of R, {course_R.shape}; got {x.shape}"
assert np.all(x[np.isinf(course_R)] == 0), "x = 0 at infeasible pairs (they get no variable)"
assert np.all(x >= -1e-9), (
    "x has negative entries, but frequencies are >= 0. With Gurobi's default lb=0 that means "
    "the X values read are no solution at all: check model.Status == GRB.OPTIMAL before "
    "reading them (balance equations without the factor beta, for one, cannot all hold)"
)
assert not np.isclose(x.sum(), 1 / (1 - 0.8)), (
    f"with alpha = 1 the frequencies add up to {x.sum():.4f} = 1 / (1 - beta), as if alpha had "
    "been divided by its sum: use alpha as given (it need not sum to 1); they should add up "
    "to sum(alpha) / (1 - beta) = 20"
)
assert not np.allclose((1 - 0.8) * x.sum(axis=1), 1), (
    "in the balance equation of state s' the inflow must collect beta * P(s'|s,a) x(s,a) over "
    "ALL pairs (s, a) that can lead to s'; yours uses only the pairs of s' itself (s and s' "
    "mixed up in P)"
)
assert np.isclose(x.sum(), 4 / (1 - 0.8)), (
    f"with alpha = 1 the frequencies add up to sum(alpha) / (1 - beta) = 20, got {x.sum():.4f}"
)
exact_V = np.array([1290, 1290, 1130, 1115]) / 49
cost = np.sum(x[np.isfinite(course_R)] * course_R[np.isfinite(course_R)])
assert not np.isclose(cost, 160), (
    "sum r * x = 160 is the cost of the COSTLIEST policy: the dual LP MINIMISES sum r(s, a) x(s, a)"
)
assert np.isclose(cost, exact_V.sum()), "strong duality: sum r * x should equal sum V* = 98.4694"
assert np.allclose(x[[0, 1, 2, 3], [4, 3, 0, 0]], [175 / 49, 265 / 49, 45 / 7, 225 / 49]), (
    "with alpha = 1, x is the vector of dual values of the primal: "
    f"x[0, 4], x[1, 3], x[2, 0], x[3, 0] = 3.5714, 5.4082, 6.4286, 4.5918; got\n{x}"
)
alpha = [0.4, 0.3, 0.2, 0.1]
x, policy = solve_dual_lp(course_R, course_P, course_beta, alpha)
x = np.asarray(x, dtype=float)
cost = np.sum(x[np.isfinite(course_R)] * course_R[np.isfinite(course_R)])
assert not np.isclose(cost, exact_V.sum()), (
    f"alpha = {alpha}: sum r * x = {cost:.4f} is sum V*, the optimum for alpha = 1: the "
    "right-hand side of the balance equation of state s' must be alpha[s'], the weights passed in"
)
assert np.isclose(cost, np.dot(alpha, exact_V)), (
    f"alpha = {alpha}: sum r * x should equal alpha . V* = {np.dot(alpha, exact_V):.4f}, got "
    f"{cost:.4f}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_dual_frequencies

check_dual_frequencies(solve_dual_lp)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_dual_policy" points=1 title="Exercise 4b: policy from the dual"
# Visible tests
try:
    x, policy = solve_dual_lp(course_R, course_P, course_beta, np.ones(4))
except Exception as error:  # an LP without an optimum: say why in words
    raise explained(error, "dual") from None
assert not (np.shape(x) == (4,) and np.shape(policy) == course_R.shape), (
    "the pair comes in the order (x, policy); yours is the other way round"
)
assert hasattr(policy, "__len__"), (
    f"the policy is a {type(policy).__name__}; return a numpy array (a generator can be read "
    "only once)"
)
policy = [int(a) for a in policy]
x = np.asarray(x, dtype=float)
exact_V = np.array([1290, 1290, 1130, 1115]) / 49
cost = np.sum(x[np.isfinite(course_R)] * course_R[np.isfinite(course_R)])
assert policy == [4, 3, 0, 0] or np.isclose(cost, exact_V.sum()), (
    f"course warehouse: the optimal policy is (4, 3, 0, 0), got {policy}; the policy is read "
    f"from x, and your x is not optimal (sum r * x = {cost:.4f}, not sum V* = 98.4694): fix x "
    "first (Exercise 4a)"
)
assert policy != [2, 1, 1, 1], (
    "course warehouse: (2, 1, 1, 1) takes in every state an action with x(s, a) = 0, which "
    "the optimal policy never uses; read the action with the LARGEST x(s, a)"
)
assert policy == [4, 3, 0, 0], f"course warehouse: the optimal policy is (4, 3, 0, 0), got {policy}"
x, policy = solve_dual_lp(toy_R, toy_P, 0.5, [1.0, 2.0])
assert [int(a) for a in policy] == [1, 0], f"toy model: the optimal policy is (1, 0), got {policy}"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03 import check_dual_policy

check_dual_policy(solve_dual_lp)
### END HIDDEN TESTS

# %% [markdown]
# ### Both LPs side by side
#
# The read-only cell below solves the course's warehouse both ways and draws the primal's
# dual values next to the dual's frequencies (with $\alpha \equiv 1$): they agree, and both
# are positive only on the tight pairs. It also checks strong duality with other weights.
# In state 2, $x(2, 0) \approx 6.43$: out of the $4 / (1 - 0.8) = 20$ discounted periods that
# four warehouses, one starting in each state, spend in total, about 6.43 are spent with two
# units on hand and no production.

# %% nbgrader="locked" grade_id="plot_dual"
V, primal_x = solve_mdp_lp(course_R, course_P, course_beta)
V = np.asarray(V, dtype=float)
dual_x, dual_policy = solve_dual_lp(course_R, course_P, course_beta, np.ones(4))
feasible = np.isfinite(course_R)
pairs = np.argwhere(feasible)
labels = [f"({s},{a})" for s, a in pairs]
fig, ax = plt.subplots(figsize=(10, 3.5))
positions = np.arange(len(pairs))
ax.bar(
    positions - 0.2,
    np.asarray(primal_x, dtype=float)[feasible],
    width=0.4,
    label="primal: dual values Pi of the constraints",
)
ax.bar(
    positions + 0.2,
    np.asarray(dual_x, dtype=float)[feasible],
    width=0.4,
    label="dual: frequencies x(s, a), alpha = 1",
)
ax.set(xticks=positions, xlabel="feasible pair (s, a)", ylabel="discounted periods")
ax.set_xticklabels(labels)
ax.set_title("the primal's dual values are the dual's optimal frequencies")
ax.legend()
fig.tight_layout()
plt.show()
print("policy from the dual:", [int(a) for a in dual_policy])
for alpha in ([1, 1, 1, 1], [1, 0.01, 0.01, 0.01], [0.1, 0.2, 0.3, 0.4]):
    alpha = np.asarray(alpha, dtype=float)
    x_alpha, _ = solve_dual_lp(course_R, course_P, course_beta, alpha)
    cost = np.sum(np.asarray(x_alpha, dtype=float)[feasible] * course_R[feasible])
    print(f"alpha = {alpha.tolist()}: sum r x = {cost:.4f}, alpha . V* = {alpha @ V:.4f}")

# %% [markdown]
# ### Question 2 (written)
#
# In three to five sentences: what does $x(s, a)$ mean (say it for the course's warehouse,
# e.g. for $x(0, 4) \approx 3.57$ with $\alpha \equiv 1$), and why is $x(s, a) = 0$ for every
# action that is not optimal? The same numbers are the dual values of the primal's
# constraints: what happens to $\sum_s V^*(s)$ if the cost $r(0, 4)$ rises by a small amount
# $\delta$?

# %% [markdown] nbgrader="written" grade_id="dual_meaning" points=1 title="Question 2: what the dual variables mean"
# ### BEGIN SOLUTION
# x(s, a) is the expected discounted number of periods in which the system is in state s
# and takes action a, Σ_t β^t Pr(s_t = s, a_t = a), when it starts from the weights α and
# follows the optimal policy; with α ≡ 1 it adds this up over four warehouses, one starting
# in each state: x(0, 4) ≈ 3.57 of their 20 discounted periods are spent empty and
# producing 4 units. A non-optimal action is never used by the optimal policy, so it is
# visited zero times; equivalently, by complementary slackness a slack primal constraint has
# dual value 0. As a dual value, x(0, 4) is the sensitivity of the primal objective to the
# right-hand side r(0, 4): raising r(0, 4) by a small δ raises Σ_s V*(s) by about 3.57 δ (each
# of the 3.57 discounted uses pays δ more), as long as (4, 3, 0, 0) stays optimal.
#
# Rubric (1 point): ½ for x(s, a) = Σ_t β^t Pr(s_t = s, a_t = a), the expected discounted
# number of periods spent in s taking a under the optimal policy from α, read for the
# warehouse (3.57 of the 20 = 4/(1 − β) discounted periods of four warehouses are spent
# empty and producing 4); ½ for x = 0 off the optimal actions (never taken, or complementary
# slackness) and for ΣV* rising by about 3.57δ while (4, 3, 0, 0) stays optimal. Calling x
# "the dual variable" without its meaning as discounted time earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## 5.1 · What the dual is best at: constraints
#
# The dual's variables are quantities an operator can read: how much discounted time the
# warehouse spends in each state doing each thing. So a rule about **how** the warehouse is
# run, not only what it costs, is one more linear constraint on $x$. Suppose an insurer caps
# the stock the warehouse may carry: the expected discounted number of units on hand at the
# start of a period, over the whole future, must not exceed a budget $H$. With a resource
# $d(s, a) \ge 0$ used by each pair (here $d(s, a) = s$, the units on hand) the
# **constrained MDP** is the dual LP with one more row:
#
# $$
# \min_{x \ge 0} \sum_{s, a} r(s, a)\, x(s, a)
# \quad\text{s.t.}\quad
# \sum_a x(s', a) - \beta \sum_{s, a} P(s' \mid s, a)\, x(s, a) = \alpha(s') \;\; \forall s',
# \qquad
# \sum_{s, a} d(s, a)\, x(s, a) \le H .
# $$
#
# Here $\alpha$ is the distribution of the starting state (weights that sum to 1), so
# $\sum_{s,a} d\,x$ is an expected discounted total. Three facts carry over from the
# unconstrained dual, and one does not:
#
# - every feasible $x$ is the discounted frequency of some policy, and the policy
#   $\pi(a \mid s) = x(s, a) / \sum_{a'} x(s, a')$ generates it (every state is visited when
#   $\alpha > 0$), so the LP optimum is the best policy that keeps the budget (Altman, 1999,
#   ch. 3; Puterman, 1994, §6.9 for the unconstrained dual);
# - **but that policy may have to randomise.** A vertex of the LP has at most as many
#   positive variables as it has rows, $S + 1$: one per state and one more, so at most one
#   state uses two actions. A deterministic policy can only spend the budget in jumps, and
#   when $H$ falls between two of them, the optimum mixes two actions in one state;
# - the budget row's dual value is its **shadow price**. Gurobi's `Pi` of a $\le$ row in a
#   minimisation is $\le 0$; $\lambda = -\texttt{Pi} \ge 0$ is how much the optimal cost
#   falls per unit of extra budget (for small changes), and $\lambda = 0$ when the cap does
#   not bind.
#
# ### Exercise 5 (autograded): a budget on stock
#
# Write `solve_constrained_dual_lp(R, P, beta, alpha, D, budget)` that adds the row
# $\sum_{s,a} D[s, a]\, x(s, a) \le$ `budget` to your dual LP of Exercise 4 and returns
# `(x, pi, shadow_price)`:
#
# - `x`: the optimal frequencies, an array of the shape of `R` (0 at infeasible pairs);
# - `pi`: the policy as an array of the shape of `R`, `pi[s, a]` $= x(s, a) / \sum_{a'}
#   x(s, a')$, each row summing to 1;
# - `shadow_price`: $\lambda = -$`Pi` of the budget row, a float $\ge 0$.
#
# `D` has the shape of `R`; only its entries at feasible pairs matter. When no policy keeps
# the budget, the LP is infeasible: raise a `ValueError` that says so.

# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Start from your `solve_dual_lp`: the same variables and balance rows, plus
# `budget_row = model.addConstr(gp.quicksum(D[s, a] * x[s, a] for s, a in pairs) <= budget)`.
# After `optimize()`, `model.Status == GRB.INFEASIBLE` means no policy keeps the budget;
# otherwise `budget_row.Pi` is the dual value. For `pi`, divide each row of `x` by its sum
# (`x / x.sum(axis=1, keepdims=True)`).
# </details>


# %% nbgrader="answer" grade_id="solve_constrained_dual_lp"
def solve_constrained_dual_lp(R, P, beta, alpha, D, budget):
    """Dual LP with sum D x <= budget: (x, randomised policy pi, shadow price of the budget)."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    alpha, D = np.asarray(alpha, dtype=float), np.asarray(D, dtype=float)
    pairs = list(zip(*np.nonzero(np.isfinite(R)), strict=True))
    lp = gp.Model("constrained dual")
    lp.Params.OutputFlag = 0
    x = lp.addVars(pairs, lb=0.0, name="x")
    for target in range(R.shape[0]):
        out_flow = gp.quicksum(x[s, a] for s, a in pairs if s == target)
        in_flow = gp.quicksum(P[s, a, target] * x[s, a] for s, a in pairs if P[s, a, target] > 0)
        lp.addConstr(out_flow - beta * in_flow == alpha[target])
    budget_row = lp.addConstr(gp.quicksum(D[s, a] * x[s, a] for s, a in pairs) <= budget)
    lp.setObjective(gp.quicksum(R[s, a] * x[s, a] for s, a in pairs), GRB.MINIMIZE)
    lp.optimize()
    if lp.Status in (GRB.INFEASIBLE, GRB.INF_OR_UNBD):
        raise ValueError(f"no policy keeps sum D x <= {budget}: the LP is infeasible")
    if lp.Status != GRB.OPTIMAL:
        raise RuntimeError(f"the constrained dual LP has no optimum (status {lp.Status})")
    frequencies = np.zeros(R.shape)
    for s, a in pairs:
        frequencies[s, a] = x[s, a].X
    pi = frequencies / frequencies.sum(axis=1, keepdims=True)
    return frequencies, pi, -budget_row.Pi
    ### END SOLUTION


# %% [markdown]
# The course's warehouse starts in each state with probability $\frac14$, and $d(s, a) = s$.
# Without a cap, $(4, 3, 0, 0)$ costs $\alpha \cdot V^* \approx 24.6173$ and carries
# $\approx 8.0102$ discounted units; the leanest policy, $(2, 1, 0, 0)$, carries $3.7$ and
# costs $27.85$. The tests use the caps in between, above and below, through the helper
# `constrained(budget)` of the next (read-only) cell.


# %% nbgrader="locked" grade_id="exercise5_helpers"
# Fresh arrays: an earlier function that changed course_R in place must not spoil these tests.
cap_R, cap_P = warehouse_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})
alpha_q = np.full(4, 0.25)
D_stock = np.where(np.isfinite(cap_R), np.arange(4)[:, None] * 1.0, 0.0)


def constrained(budget):
    """(x, pi, shadow price) of your solve_constrained_dual_lp on the course's warehouse,
    started in each state with probability 1/4, with a cap `budget` on the stock carried."""
    try:
        result = solve_constrained_dual_lp(
            cap_R.copy(), cap_P.copy(), 0.8, alpha_q.copy(), D_stock.copy(), budget
        )
    except ValueError:
        raise
    except Exception as error:  # an LP without an optimum: say why in words
        raise explained(error, "dual") from None
    assert isinstance(result, tuple | list) and len(result) == 3, (
        "return the triple (x, pi, shadow_price)"
    )
    x, pi, price = result
    x, pi = np.asarray(x, dtype=float), np.asarray(pi, dtype=float)
    assert x.shape == cap_R.shape and pi.shape == cap_R.shape, (
        f"x and pi have the shape of R, {cap_R.shape}; got {x.shape} and {pi.shape}"
    )
    return x, pi, float(price)


# %% nbgrader="tests" grade_id="test_constrained_lp" points=2 title="Exercise 5a: the constrained optimum"
# Visible tests
x, pi, price = constrained(10.0)
cost = float(np.sum(x[np.isfinite(cap_R)] * cap_R[np.isfinite(cap_R)]))
assert np.isclose(cost, 24.617347, atol=1e-4), (
    f"with a cap of 10 the cap does not bind (the optimal policy carries 8.0102): the cost is "
    f"the unconstrained alpha . V* = 24.6173, got {cost:.4f}"
    + (". Is the budget row an equality? It is an upper limit, <=" if cost > 24.62 else "")
)
x, pi, price = constrained(5.0)
cost = float(np.sum(x[np.isfinite(cap_R)] * cap_R[np.isfinite(cap_R)]))
held = float(np.sum(D_stock * x))
assert not np.isclose(cost, 24.617347, atol=1e-4), (
    "with a cap of 5 the optimum is still the unconstrained one (cost 24.6173, 8.0102 units "
    "carried): the budget row must be sum D x <= budget, an upper limit"
)
assert held <= 5 + 1e-6, f"x carries {held:.4f} discounted units, more than the cap of 5"
assert np.isclose(cost, 26.875, atol=1e-4), (
    f"with a cap of 5 the least cost is 26.875; got {cost:.4f}"
)
assert np.allclose(pi.sum(axis=1), 1), (
    f"each row of pi is a distribution over actions and sums to 1; the rows sum to "
    f"{pi.sum(axis=1)}: divide each row of x by its own sum"
)
assert not np.allclose(pi, np.round(pi)), (
    "pi is deterministic, but with a cap of 5 no deterministic policy is optimal: pi[s, a] = "
    "x(s, a) / sum_a' x(s, a'), not a 0/1 choice of the largest x"
)
mixed = [s for s in range(4) if np.sum(pi[s] > 1e-9) > 1]
assert mixed == [1] and np.allclose(pi[1, [1, 3]], [25 / 38, 13 / 38], atol=1e-6), (
    "with a cap of 5 the optimum produces 1 unit in state 1 with probability 25/38 = 0.6579 "
    f"and 3 units with probability 13/38 = 0.3421, and is deterministic elsewhere; got {pi}"
)
try:
    constrained(3.0)
except ValueError:
    pass
else:
    raise AssertionError(
        "with a cap of 3 no policy keeps the budget (the leanest carries 3.7): raise a ValueError"
    )
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03_constrained import check_constrained_optimum

check_constrained_optimum(solve_constrained_dual_lp)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_shadow_price" points=1 title="Exercise 5b: the shadow price"
# Visible tests
_, _, price = constrained(5.0)
assert not np.isclose(price, -0.75), (
    "the shadow price is -0.75: that is Gurobi's Pi of the budget row; the price is -Pi >= 0, "
    "the cost saved per unit of extra budget"
)
assert np.isclose(price, 0.75, atol=1e-6), (
    f"with a cap of 5 every extra unit of budget saves 0.75 in expected cost; got {price}"
)
_, _, price = constrained(10.0)
assert np.isclose(price, 0.0, atol=1e-9), (
    f"with a cap of 10 the cap does not bind, so its shadow price is 0; got {price}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab03_constrained import check_shadow_price

check_shadow_price(solve_constrained_dual_lp)
### END HIDDEN TESTS

# %% [markdown]
# Run the next cell: it solves the capped warehouse for caps from 3.7 to 8.2 and plots the
# least cost and the probability of the action that the cap makes the warehouse mix.

# %% nbgrader="locked" grade_id="plot_budget" autograde="skip"
caps = np.linspace(3.7, 8.2, 46)
costs, shares, prices = [], [], []
for cap in caps:
    x_cap, pi_cap, price_cap = solve_constrained_dual_lp(cap_R, cap_P, 0.8, alpha_q, D_stock, cap)
    costs.append(float(np.sum(x_cap[np.isfinite(cap_R)] * cap_R[np.isfinite(cap_R)])))
    shares.append((float(pi_cap[1, 3]), float(pi_cap[0, 4])))
    prices.append(float(price_cap))
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
left.plot(caps, costs, "o-", markersize=3)
left.set(
    xlabel="cap H on discounted units carried",
    ylabel="least expected cost",
    title="the cost of a tighter cap: slope -0.75 until it stops binding",
)
shares = np.array(shares)
right.plot(caps, shares[:, 0], "o-", markersize=3, label="P(produce 3 | s = 1)")
right.plot(caps, shares[:, 1], "s-", markersize=3, label="P(produce 4 | s = 0)")
right.set(xlabel="cap H", ylabel="probability", title="the randomised state moves from 1 to 0")
right.legend()
fig.tight_layout()
plt.show()
print("shadow prices over the caps:", sorted(set(np.round(prices, 6))))

# %% [markdown]
# The cost falls in a straight line with slope $-0.75$ as the cap loosens, until the cap
# reaches the $8.0102$ units that the unconstrained optimum carries; from there the cap is
# slack and costs nothing. Along the way the mixed state moves: for tight caps the warehouse
# mixes "produce 1" and "produce 3" when it holds one unit; for looser caps it always
# produces 3 there and mixes "produce 2" and "produce 4" when empty.
#
# ### Question 3 (written)
#
# Why can no deterministic policy be optimal when the cap is 5, and what would you tell an
# operator who asks for "a rule, not a lottery"? Say what the shadow price 0.75 means in the
# warehouse's terms, and how the operator could use it.

# %% [markdown] nbgrader="written" grade_id="cap_meaning" points=1 title="Question 3: a lottery and a price"
# ### BEGIN SOLUTION
# A deterministic policy carries one of finitely many amounts of stock (a jump from one
# policy to the next), and the cap of 5 falls between the amounts of two of them: the
# cheapest deterministic policy under the cap wastes part of the budget, while mixing the
# two actions of state 1 uses exactly 5 units and costs less. The LP's vertex has S + 1 = 5
# positive variables at most, so the mix is needed in one state only. An operator who wants
# a rule can have one: take the best deterministic policy that keeps the cap (it costs a
# little more), or alternate the two actions in state 1 on a schedule (produce 3 in about
# 13 of every 38 visits), which keeps the cap on average. The shadow price 0.75 says that
# each extra unit of allowed discounted stock lowers the expected discounted cost by 0.75:
# if the insurer charges less than 0.75 per unit to raise the cap, raising it pays, and
# more than that it does not; equivalently, putting a price of 0.75 per unit of stock on
# holding (a Lagrange multiplier) makes the capped policy optimal for the priced problem.
#
# Rubric (1 point): ½ for the jumps of deterministic policies and a randomisation in one
# state; ½ for reading λ = 0.75 as cost saved per unit of extra cap (or the price that
# would make the cap worth buying). A rule for the operator earns no extra credit but a
# wrong claim (e.g. that a deterministic policy is as good) loses the first half.
# ### END SOLUTION

# %% [markdown]
# ## 6 · Explore: how the optimal policy responds to the costs
#
# The read-only cell below builds a warehouse (demand 1 or 2, unit cost 1) from the sliders
# and solves it with **your** `solve_mdp_lp` and `policy_from_lp` every time you release a
# slider. Some things to try:
#
# - set the setup cost to 0: production no longer needs to be bundled, and the policy
#   produces just enough;
# - raise the holding cost: stock becomes expensive and the warehouse fills up less;
# - lower $\beta$: the future counts less, and an expensive setup now to save setups later
#   stops paying off;
# - a larger capacity: how far up does the optimal policy fill the warehouse?
#
# (The explorer is not graded. If the sliders do not show, run the cell again; in an
# exported notebook the explorer shows no output.)


# %% nbgrader="locked" grade_id="redraw_helpers"
# {{module:mdplab.redraw}}

# %% nbgrader="locked" grade_id="explorer"
# One figure for every redraw, made once with a fixed layout: explore only moves its bars
# and labels (the cell above says why that keeps up with the sliders).
lp_fig = redraw_figure((8, 3.6))
lp_ax = lp_fig.subplots()
lp_fig.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.9)
# One bar and one label per state of the largest warehouse; a smaller one hides the bars
# and labels it does not have.
MAX_CAPACITY = 8
most_states = np.arange(MAX_CAPACITY + 1)
value_bars = lp_ax.bar(most_states, np.zeros(most_states.size), color="tab:blue")
value_labels = [lp_ax.text(s, 0, "", ha="center", va="bottom", fontsize=8) for s in most_states]
lp_ax.set(xlabel="starting inventory s", ylabel="optimal expected cost")


def explore(beta=0.8, setup_cost=4.0, holding_cost=1.0, capacity=3):
    R, P = warehouse_model(capacity, setup_cost, 1.0, holding_cost, {1: 0.5, 2: 0.5})
    try:
        V, _ = solve_mdp_lp(R, P, beta)
        policy = policy_from_lp(R, P, beta, V)
    except NotImplementedError:
        print("Finish Exercises 2 and 3 first: the explorer solves the LP with your functions.")
        return
    V = np.asarray(V, dtype=float)
    states = np.arange(capacity + 1)
    for s, (bar, label) in enumerate(zip(value_bars, value_labels, strict=True)):
        shown = s <= capacity
        bar.set_visible(shown)
        label.set_visible(shown)
        if shown:
            bar.set_height(V[s])
            label.set(y=V[s], text=f"{V[s]:.2f}\nproduce {int(policy[s])}")
    lp_ax.set_xticks(states)
    lp_ax.relim(visible_only=True)  # the x limits that matplotlib would choose for these bars
    lp_ax.autoscale_view()
    lp_ax.set_ylim(0, V.max() * 1.3 + 1e-9)
    # y=1 puts the title where matplotlib would; without it, every draw measures the tick
    # labels again to make sure that none is in the way.
    lp_ax.set_title(
        f"beta = {beta:.2f}, setup {setup_cost:g}, holding {holding_cost:g}, "
        f"capacity {capacity}: policy {[int(a) for a in policy]}",
        y=1,
    )
    display(figure_png(lp_fig))


explorer = widgets.interactive(
    explore,
    beta=widgets.FloatSlider(
        value=0.8, min=0.5, max=0.98, step=0.01, description="beta", continuous_update=False
    ),
    setup_cost=widgets.FloatSlider(
        value=4.0, min=0.0, max=20.0, step=0.5, description="setup cost", continuous_update=False
    ),
    holding_cost=widgets.FloatSlider(
        value=1.0, min=0.0, max=5.0, step=0.25, description="holding cost", continuous_update=False
    ),
    capacity=widgets.IntSlider(
        value=3, min=1, max=MAX_CAPACITY, description="capacity", continuous_update=False
    ),
)
display(explorer)

# %% [markdown]
# ## Summary
#
# - A function $V$ with $V \le TV$ (the **Bellman inequalities**, one linear inequality per
#   feasible pair) lies below $V^*$ in every state, and $V^*$ satisfies them. So $V^*$ is the
#   unique optimum of $\max \sum_s V(s)$ subject to
#   $V(s) - \beta \sum_{s'} P(s' \mid s, a) V(s') \le r(s, a)$, with free variables; any
#   positive weights give the same optimum, and minimising would be unbounded.
# - The constraints that are **tight** at $V^*$ are exactly the optimal actions; read them off
#   with a tolerance, since solvers round.
# - The **dual LP** minimises $\sum r x$ over discounted state-action frequencies $x \ge 0$
#   that balance visits, $\sum_a x(s', a) - \beta \sum_{s, a} P(s' \mid s, a) x(s, a) =
#   \alpha(s')$. Its optimum is $\sum_s \alpha(s) V^*(s)$, its positive entries mark an
#   optimal policy, and with $\alpha \equiv 1$ it equals the primal's dual values.
# - For the course's warehouse: $V^* \approx (26.3265, 26.3265, 23.0612, 22.7551)$ and the
#   optimal policy is $(4, 3, 0, 0)$: an empty or nearly empty warehouse fills up to 4 units
#   before demand, so that one setup serves about three units of demand. It has the
#   **$(s, S)$ shape** of optimal inventory policies with a setup cost (Scarf, 1960): when
#   the stock is at most $s = 1$, produce up to $S = 4$ units on hand; otherwise produce
#   nothing.
#
# - A constraint on discounted frequencies, such as a cap on the stock carried, is one more
#   row of the dual LP: the **constrained MDP**. Its optimum may randomise, in at most one
#   state per extra row, and the row's dual value is the shadow price of the cap (0.75 per
#   unit of stock on the course's warehouse with a cap between 3.7 and 8.0102).
#
# ## References
#
# - M. L. Puterman, *Markov Decision Processes*, Wiley, 1994: §6.2 (optimality equations),
#   §6.9 (linear programming).
# - E. Altman, *Constrained Markov Decision Processes*, Chapman & Hall/CRC, 1999, ch. 3.
# - H. Scarf, "The optimality of (S, s) policies in the dynamic inventory problem", in
#   *Mathematical Methods in the Social Sciences*, Stanford University Press, 1960.
# - D. P. Bertsekas, *Dynamic Programming and Optimal Control*, Vol. II, 4th ed., 2012.
# - R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., 2018,
#   ch. 4.
#
# The series grows from the lab "Lab 10 Discounted MDPs" by Bo Tang, whose warehouse
# problem and published numbers it keeps.
#
# Next: **policy iteration** reaches the same policy without an LP solver, by alternating the
# exact evaluation of Lab 02 with one-step improvements.
