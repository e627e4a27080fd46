# %% [markdown]
# {{colab_badge}}
#
# # Lab 01 · Dynamic programming review: a warehouse that knows its demand
#
# Before demand becomes random and the horizon endless, we plan a warehouse over a few
# periods in which every demand is known in advance. This is classical, deterministic
# **dynamic programming (DP)**: cut the problem into stages, describe each stage by a
# state, and solve the stages one at a time, from the last back to the first.
#
# **Learning goals.** After this lab you can
# 1. name the stages, states, decisions, transitions and immediate costs of a DP model;
# 2. write the backward recursion $f_n(s) = \min_x \big[ h_n(s, x) + f_{n+1}(g_n(s, x)) \big]$
#    for any horizon, with terminal values $f_{N+1}$;
# 3. store the optimal decision of every stage and state, and read an optimal plan off
#    that table for any starting inventory;
# 4. explain why the recursion runs backwards and what a state must contain.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests here and by hidden tests that call your
# functions on other warehouses (other horizons, capacities, costs, demands and terminal
# values). Written parts are read by your instructor.

# %% [markdown]
# ## 1 · The ingredients of a dynamic program
#
# A deterministic DP over $N$ stages has
#
# - **stages** $n = 1, 2, \dots, N$, the points at which a decision is taken (here: periods);
# - a **state** $s_n$ at each stage, which summarises everything about the past that matters
#   for the rest of the problem;
# - a **decision** $x_n$, chosen from the decisions that are feasible in state $s_n$;
# - a **transition** $s_{n+1} = g_n(s_n, x_n)$ that gives the next state, with certainty;
# - an **immediate cost** $h_n(s_n, x_n)$ paid at stage $n$;
# - **terminal values** $f_{N+1}(s)$: what ending the horizon in state $s$ costs (often 0).
#
# Let $f_n(s)$ be the smallest total cost of stages $n, n+1, \dots, N$ plus the terminal value,
# when stage $n$ starts in state $s$. Whatever we decide at stage $n$, the best we can do
# afterwards is $f_{n+1}$ of the state we land in, so
#
# $$
# f_n(s) \;=\; \min_{x \text{ feasible in } s} \Big[\, h_n(s, x) + f_{n+1}\big(g_n(s, x)\big) \Big],
# \qquad n = N, N-1, \dots, 1 .
# $$
#
# Start from the known $f_{N+1}$, compute $f_N$, then $f_{N-1}$, and so on back to $f_1$: that
# is the **backward recursion**. A decision that attains the minimum is an optimal decision
# $x_n^*(s)$ for stage $n$ in state $s$.
#
# ## 2 · The warehouse with known demand
#
# The warehouse of the series holds at most **$C = 3$ units**. Each period $n$ it faces a
# demand $d_n$ that is **known in advance** (in this lab; it turns random in the next ones)
# and must be met on time. In the model:
#
# | DP ingredient | the warehouse |
# |---|---|
# | stage $n$ | period $n = 1, \dots, N$ |
# | state $s_n$ | inventory at the **start** of period $n$, one of $0, 1, \dots, C$ |
# | decision $x_n$ | units produced in period $n$ (a whole number $\ge 0$) |
# | feasible decisions | demand met, $s + x \ge d_n$; no overflow at the end, $s + x - d_n \le C$ |
# | transition | $g_n(s, x) = s + x - d_n$, the inventory left for the next period |
# | immediate cost | $h_n(s, x) = K \cdot [x > 0] + c_p\, x + c_h\, s$ |
# | terminal values | $f_{N+1}(s)$, zero unless stated otherwise |
#
# with a **setup cost** $K = 4$ paid in every period that produces anything, a **unit cost**
# $c_p = 1$ per unit produced, and a **holding cost** $c_h = 1$ per unit of the **starting**
# inventory $s$. (Some textbooks charge holding on the ending inventory $s + x - d_n$
# instead; this series charges the starting inventory, as the course's published numbers do.)
# Production itself has no upper limit other than the capacity at the end of the period.
#
# Demands are whole numbers between $0$ and $C$, so whatever the starting inventory, some
# production meets the demand without overflowing: every state always has at least one
# feasible decision, and every $f_n(s)$ is a finite number.
#
# Our worked example has $N = 4$ periods with demands $(d_1, d_2, d_3, d_4) = (1, 2, 1, 2)$.
#
# ### Counting from 0 in Python
#
# Python counts from 0, so the code numbers the periods $0, 1, \dots, N-1$:
#
# | mathematics | code |
# |---|---|
# | period $n = 1, \dots, N$ | index `n - 1` $= 0, \dots, N-1$ |
# | demand $d_n$ | `demands[n - 1]` |
# | $f_n(s)$ | `f[n - 1][s]` |
# | terminal values $f_{N+1}(s)$ | `f[N][s]`, the last row |
# | optimal decision $x^*_n(s)$ | `decisions[n - 1][s]` |
#
# So `f` has $N + 1$ rows and `decisions` has $N$ rows, each with $C + 1$ columns
# (inventories $0, \dots, C$). The next cell is read-only: it holds the example's data.

# %% nbgrader="locked" grade_id="setup"
import itertools

import matplotlib.pyplot as plt
import numpy as np

CAPACITY = 3
SETUP_COST = 4
UNIT_COST = 1
HOLDING_COST = 1
DEMANDS = [1, 2, 1, 2]

print("capacity", CAPACITY, "| setup", SETUP_COST, "| unit", UNIT_COST, "| holding", HOLDING_COST)
print("demands per period:", DEMANDS)

# %% [markdown]
# ## 3 · One period at a time
#
# ### Exercise 1 (autograded): feasible decisions
#
# Write `feasible_decisions(s, demand, capacity)` that returns the list of all feasible
# productions $x$ for starting inventory `s` and the period's `demand`, **in increasing
# order**. A production is feasible when it is a whole number $x \ge 0$ with
# $s + x \ge$ `demand` and $s + x -$ `demand` $\le$ `capacity`.
#
# For example, an empty warehouse ($s = 0$) facing a demand of 2 with capacity 3 may produce
# 2, 3, 4 or 5 units: 2 just meets the demand, 5 ends the period with a full warehouse.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Demand is met when `s + x >= demand`, so the smallest production is
# `max(0, demand - s)`; the warehouse does not overflow when `s + x - demand <= capacity`,
# so the largest is `capacity + demand - s`. `list(range(smallest, largest + 1))` gives
# them in increasing order.
# </details>


# %% nbgrader="answer" grade_id="feasible_decisions"
def feasible_decisions(s, demand, capacity):
    """Productions x (increasing) that meet demand and end with at most `capacity` units."""
    ### BEGIN SOLUTION
    lowest = max(0, demand - s)  # enough to meet demand, and never negative
    highest = capacity + demand - s  # ends the period exactly at capacity
    return list(range(lowest, highest + 1))
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_feasible_decisions" points=1 title="Exercise 1: feasibility"
# Visible tests
got = feasible_decisions(0, 2, 3)
assert hasattr(got, "__len__"), (
    "feasible_decisions returned a generator (or iterator), which can be read only once: "
    "return a list"
)
got = [float(x) for x in got]  # whole numbers of any type: 2.0 is production 2
assert got != [2, 3], (
    "from s=0 with demand 2 and capacity 3 you allow only 2 and 3: the capacity bounds the "
    "inventory left after demand, s + x - demand, not s + x"
)
assert got != [0, 1, 2, 3, 4, 5], (
    "from s=0 with demand 2 you allow 0 and 1, which leave demand unmet (s + x >= demand)"
)
assert got != [2, 3, 4], (
    "from s=0 with demand 2 and capacity 3 the production 5, which ends the period exactly "
    "at capacity, is missing: range(a, b) stops before b"
)
assert got == [2, 3, 4, 5], (
    "from s=0 with demand 2 and capacity 3 the feasible productions are 2, 3, 4, 5"
)
assert [int(x) for x in feasible_decisions(3, 1, 3)] == [0, 1], (
    "from a full warehouse (s=3) with demand 1 you may produce 0 or 1 unit"
)
assert [int(x) for x in feasible_decisions(2, 0, 3)] == [0, 1], (
    "with no demand, s=2 can take at most 1 more unit"
)
assert [int(x) for x in feasible_decisions(1, 1, 2)] == [0, 1, 2], (
    "s=1, demand 1, capacity 2: produce 0, 1 or 2"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_feasible_decisions

check_feasible_decisions(feasible_decisions)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (autograded): the cost and the transition of one period
#
# Write `stage_cost(s, x, setup_cost, unit_cost, holding_cost)`, the immediate cost
# $h_n(s, x) = K \cdot [x > 0] + c_p\, x + c_h\, s$, and `next_state(s, x, demand)`, the
# inventory $s + x - d_n$ at the start of the next period. You may assume that `x` is feasible.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `stage_cost` adds three terms: `setup_cost` only when `x > 0`, `unit_cost * x` and
# `holding_cost * s` (the starting inventory). `next_state` is one subtraction.
# </details>


# %% nbgrader="answer" grade_id="stage_cost"
def stage_cost(s, x, setup_cost, unit_cost, holding_cost):
    """Setup (only if x > 0) + unit cost per unit produced + holding per unit of s."""
    ### BEGIN SOLUTION
    setup = setup_cost if x > 0 else 0
    return setup + unit_cost * x + holding_cost * s
    ### END SOLUTION


# %% nbgrader="answer" grade_id="next_state"
def next_state(s, x, demand):
    """Inventory at the start of the next period."""
    ### BEGIN SOLUTION
    return s + x - demand
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_one_period" points=1 title="Exercise 2: one period"
# Visible tests
# float(): any number is fine (a numpy float, a Fraction, ...)
produce = float(stage_cost(0, 3, 4, 1, 1))
idle = float(stage_cost(2, 0, 4, 1, 1))
other_costs = float(stage_cost(3, 1, 2.5, 0.5, 2))
assert not (np.isclose(idle, 6) and np.isclose(produce, 7)), (
    "stage_cost(2, 0, 4, 1, 1) is 6: the setup cost is paid only in a period that produces (x > 0)"
)
assert not np.isclose(idle, 0), (
    "stage_cost(2, 0, 4, 1, 1) is 0: the holding cost of the starting inventory s is missing"
)
assert not np.isclose(produce, 10), (
    "stage_cost(0, 3, 4, 1, 1) is 10: holding is charged on the starting inventory s, before "
    "production, not on s + x"
)
assert not np.isclose(other_costs, 8), (
    "stage_cost(3, 1, 2.5, 0.5, 2) is 8, the cost with the course's setup 4, unit 1 and "
    "holding 1: use the arguments setup_cost, unit_cost and holding_cost"
)
assert np.isclose(produce, 7), "s=0, x=3: setup 4 + 3 units = 7"
assert np.isclose(idle, 2), "s=2, x=0: no setup when nothing is produced, holding 2 units costs 2"
assert np.isclose(float(stage_cost(1, 2, 4, 1, 1)), 7), (
    "s=1, x=2: setup 4 + 2 units + holding 1 = 7"
)
assert np.isclose(other_costs, 9), "s=3, x=1 with setup 2.5, unit 0.5, holding 2: 2.5 + 0.5 + 6 = 9"
assert next_state(0, 3, 1) != 3, "next_state(0, 3, 1) is 3: the demand is not subtracted"
assert next_state(0, 3, 1) == 2, "produce 3 from empty, sell 1: 2 units are left"
assert next_state(2, 0, 2) == 0, "2 units in stock, no production, demand 2: empty"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_one_period

check_one_period(stage_cost, next_state)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (autograded): what does a plan cost?
#
# A **plan** fixes the production of every period in advance, e.g. $(3, 0, 3, 0)$. Write
#
# ```python
# plan_cost(plan, start, demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None)
# ```
#
# that follows `plan` forwards from the starting inventory `start` and returns its total
# cost: the immediate costs of all periods plus the terminal value of the inventory left at
# the end (`terminal[s]`; no terminal value when `terminal` is `None`). If the plan breaks a
# rule in some period (demand not met, or more than `capacity` units left at the end of
# the period), return `np.inf`. Productions in `plan` are whole numbers $\ge 0$; `plan` and
# `demands` have the same length and may be lists, tuples or numpy arrays.
#
# Use your functions from Exercises 1 and 2.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Walk through the periods with `for x, demand in zip(plan, demands)`: if `x` is not in
# `feasible_decisions(s, demand, capacity)`, return `np.inf`; otherwise add
# `stage_cost(...)` and move on with `s = next_state(s, x, demand)`. After the loop add
# `terminal[s]` when there are terminal values.
# </details>


# %% nbgrader="answer" grade_id="plan_cost"
def plan_cost(plan, start, demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
    """Total cost of following `plan` from inventory `start`; np.inf if it breaks a rule."""
    ### BEGIN SOLUTION
    s, total = start, 0.0
    for x, demand in zip(plan, demands, strict=True):
        if x not in feasible_decisions(s, demand, capacity):
            return np.inf
        total += stage_cost(s, x, setup_cost, unit_cost, holding_cost)
        s = next_state(s, x, demand)
    if terminal is not None:
        total += terminal[s]
    return float(total)
    ### END SOLUTION


# %% [markdown]
# The test cells from here on build on your functions of Exercises 1 and 2. When a result
# is wrong, they first try those functions on the examples above, so that the message
# points at the function at fault. The next cell is read-only: it holds that check.


# %% nbgrader="locked" grade_id="one_period_helper"
def one_period_problem(user):
    """What is wrong with the functions of Exercises 1 and 2 on their examples, for the
    function `user` that builds on them; None when they pass."""
    if [float(x) for x in feasible_decisions(0, 2, 3)] != [2, 3, 4, 5]:
        function = "feasible_decisions (Exercise 1)"
    elif not np.allclose(
        [float(stage_cost(0, 3, 4, 1, 1)), float(stage_cost(2, 0, 4, 1, 1))], [7, 2]
    ) or not np.isclose(float(stage_cost(3, 1, 2.5, 0.5, 2)), 9):
        function = "stage_cost (Exercise 2)"
    elif next_state(0, 3, 1) != 2 or next_state(2, 0, 2) != 0:
        function = "next_state (Exercise 2)"
    else:
        return None
    return f"your {function} fails its tests, and {user} builds on it: fix it first"


# %% nbgrader="tests" grade_id="test_plan_cost" points=1 title="Exercise 3: cost of a plan"
# Visible tests
args = (CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
plan, demands, terminal = [3, 0, 3, 2], list(DEMANDS), [0, -2, -4, -6]
with_terminal = plan_cost(plan, 0, demands, *args, terminal)
for name, value, given in [
    ("plan", plan, [3, 0, 3, 2]),
    ("demands", demands, DEMANDS),
    ("terminal", terminal, [0, -2, -4, -6]),
]:
    assert value == given, (
        f"plan_cost changed its argument {name} in place (it is now {value}): leave the "
        "caller's list as it is"
    )
unmet = plan_cost([0, 2, 1, 2], 0, list(DEMANDS), *args)  # period 1 starts empty, makes 0
overflow = plan_cost([5, 0, 0, 0], 0, list(DEMANDS), *args)  # 5 - 1 = 4 units > capacity
assert unmet is not None and overflow is not None, (
    "plan_cost returned None for a plan that breaks a rule: return np.inf"
)
# float(): any number is fine (a numpy float, a Fraction, a Decimal, ...)
costs = [
    float(plan_cost([3, 0, 3, 0], 0, list(DEMANDS), *args)),  # 7 + 2 + 7 + 2 = 18
    float(plan_cost([1, 2, 1, 2], 0, list(DEMANDS), *args)),  # 5 + 6 + 5 + 6 = 22
    float(plan_cost([4, 0, 0, 2], 0, list(DEMANDS), *args, [0, -2, -4, -6])),  # 18 + 0
    float(with_terminal),  # plan (3, 0, 3, 2): 7 + 2 + 7 + 8 - 4 = 20
    float(unmet),
    float(overflow),
]
if not np.allclose(costs, [18, 22, 18, 20, np.inf, np.inf]):
    problem = one_period_problem("plan_cost")
    assert problem is None, problem
assert not np.isclose(costs[0], 16), (
    "plan (3, 0, 3, 0) costs 7 + 2 + 7 + 2 = 18, you get 16: the last period is not counted "
    "(loop over every period of the plan)"
)
assert not np.isclose(costs[3], 24), (
    "plan (3, 0, 3, 2) ends with 2 units: you get 24 = 7 + 2 + 7 + 8, so their terminal value "
    "-4 is not added (terminal[s] of the inventory s left at the end)"
)
assert not np.isclose(costs[3], 22), (
    "plan (3, 0, 3, 2) with terminal values [0, -2, -4, -6]: you get 22, which charges holding "
    "on each period's ending inventory; this lab charges the starting inventory"
)
assert costs[4] == np.inf, (
    "plan (0, 2, 1, 2) leaves the demand of period 1 unmet (it starts empty and produces "
    "nothing), so its cost is np.inf"
)
assert costs[5] == np.inf, (
    "plan (5, 0, 0, 0) ends period 1 with 5 - 1 = 4 units, more than the capacity 3, so its "
    "cost is np.inf"
)
assert np.isclose(costs[0], 18), "plan (3, 0, 3, 0) from an empty warehouse: 7 + 2 + 7 + 2 = 18"
assert np.isclose(costs[1], 22), "producing each period's demand from empty: 5 + 6 + 5 + 6 = 22"
assert np.isclose(costs[2], 8 + 3 + 1 + 6), (
    "plan (4, 0, 0, 2) costs 8 + 3 + 1 + 6 and ends empty, where the terminal value is 0"
)
assert np.isclose(costs[3], 7 + 2 + 7 + 8 - 4), (
    "plan (3, 0, 3, 2) ends with 2 units, whose terminal value -4 is added"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_plan_cost

check_plan_cost(
    plan_cost,
    feasible_decisions=feasible_decisions,
    stage_cost=stage_cost,
    next_state=next_state,
)
### END HIDDEN TESTS

# %% [markdown]
# ### Trying every plan
#
# With `plan_cost` we can already solve the example by brute force: try every plan with
# productions $0, 1, \dots, C + \max_n d_n$ in each period and keep the cheapest. Run the
# next cell.


# %% nbgrader="locked" grade_id="brute_force_demo"
def brute_force(start, demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
    """The cheapest plan and its cost, by trying every plan (short horizons only)."""
    choices = range(capacity + max(demands) + 1)
    best_plan, best_cost, tried = None, np.inf, 0
    for plan in itertools.product(choices, repeat=len(demands)):
        tried += 1
        cost = plan_cost(
            plan, start, demands, capacity, setup_cost, unit_cost, holding_cost, terminal
        )
        if cost < best_cost:
            best_plan, best_cost = plan, cost
    return best_plan, best_cost, tried


plan, cost, tried = brute_force(0, DEMANDS, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
print(f"tried {tried} plans; the first cheapest one is {plan}, costing {cost:g}")

# %% [markdown]
# The search works, but the number of plans grows like $(C + \max d + 1)^N$: six choices per
# period give $6^4 = 1296$ plans for four periods, but more than two billion for twelve. The
# backward recursion of the next section needs, per stage, one minimum over at most $C + 1$
# feasible decisions for each of the $C + 1$ states: its work grows only **linearly** with
# $N$.

# %% [markdown]
# ## 4 · The backward recursion
#
# ### Exercise 4 (autograded): the value table and the decision table
#
# Write
#
# ```python
# backward_recursion(demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None)
# ```
#
# for **any** horizon $N$ = `len(demands)` and any parameters. It returns two tables:
#
# - `f`, a table of $N + 1$ rows and $C + 1$ columns with `f[N]` = the terminal values (zeros
#   when `terminal` is `None`) and `f[k][s]` $= f_{k+1}(s)$, the least cost of periods
#   $k, \dots, N-1$ (counted from 0) plus the terminal value, starting period $k$ with
#   inventory $s$;
# - `decisions`, a table of $N$ rows and $C + 1$ columns of whole numbers, with
#   `decisions[k][s]` an optimal production in period $k$ with starting inventory $s$.
#
# A numpy array is the natural choice for both tables, but any table that is read as
# `f[k][s]` (a list of lists, say) is accepted.
#
# Fill the rows from the last period backwards: row $k$ needs row $k + 1$. Use your
# functions from Exercises 1 and 2.
#
# **Tie rule.** When several decisions reach the same minimum, keep the **smallest** of
# them: scan the decisions in increasing order and replace the best one only when a
# decision is strictly cheaper. The example has such ties: with an empty warehouse in
# period 1, producing 3 or 4 units leads to the same total cost. The grader accepts any
# optimal decision where there are ties; the rule makes your table reproducible.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `for k in range(N - 1, -1, -1)` runs over the periods backwards. For each state `s`,
# try every `x` of `feasible_decisions(s, demands[k], capacity)` and keep the smallest
# `stage_cost(s, x, ...) + f[k + 1][next_state(s, x, demands[k])]`, replacing the best only
# when a decision is strictly cheaper (that keeps the smallest `x` among ties).
# </details>


# %% nbgrader="answer" grade_id="backward_recursion"
def backward_recursion(demands, capacity, setup_cost, unit_cost, holding_cost, terminal=None):
    """Value table f (N + 1 rows) and decision table (N rows) of the warehouse."""
    ### BEGIN SOLUTION
    horizon = len(demands)
    f = np.zeros((horizon + 1, capacity + 1))
    decisions = np.zeros((horizon, capacity + 1), dtype=int)
    if terminal is not None:
        f[horizon] = terminal
    for k in range(horizon - 1, -1, -1):
        for s in range(capacity + 1):
            best_cost, best_x = np.inf, None
            for x in feasible_decisions(s, demands[k], capacity):  # increasing order
                cost = stage_cost(s, x, setup_cost, unit_cost, holding_cost)
                cost += f[k + 1][next_state(s, x, demands[k])]
                if cost < best_cost:  # strictly cheaper: ties keep the smaller x
                    best_cost, best_x = cost, x
            f[k][s] = best_cost
            decisions[k][s] = best_x
    return f, decisions
    ### END SOLUTION


# %% [markdown]
# The first test cell checks the value table `f`; the second checks that every decision in
# `decisions` is feasible and optimal. When the first row `f[0]` of the example is one that a
# usual mistake gives, they name the mistake; the next read-only cell lists those rows.


# %% nbgrader="locked" grade_id="usual_mistakes"
def usual_mistake(first_row):
    """The usual mistake whose f[0] on the example (no terminal values) is `first_row`."""
    mistakes = {
        (34, 34, 34, 34): "the largest cost over the decisions is kept (max), not the smallest",
        (18, 14, 14, 11): "holding is charged on the ending inventory s + x - d, not on the "
        "starting inventory s",
        (24, 20, 20, 17): "holding is charged on s + x (after production), not on the "
        "starting inventory s",
        (22, 22, 23, 24): "the setup cost is charged also when nothing is produced (x = 0)",
        (14, 9, 8, 7): "the holding cost of the starting inventory is missing",
        (6, 6, 7, 8): "the setup cost is missing",
        (6, 10, 15, 16): "the costs are those of stage_cost(x, s, ...): the order of the "
        "arguments is stage_cost(s, x, setup_cost, unit_cost, holding_cost)",
        (16, 16, 14, 12): "row k uses another period's demand; row k needs demands[k]",
        (0, 0, 0, 0): "row 0 is never computed: the loop over the stages stops before k = 0",
    }
    for row, mistake in mistakes.items():
        if np.allclose(first_row, row):
            return mistake
    return None


# %% nbgrader="tests" grade_id="test_backward_values" points=2 title="Exercise 4a: value table"
# Visible tests
demands = list(DEMANDS)
try:
    f, decisions = backward_recursion(demands, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
except Exception:  # name the function of Exercise 1 or 2 at fault, if one is
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
    raise
assert demands == DEMANDS, (
    f"backward_recursion changed its argument demands in place (it is now {demands}): leave "
    "the caller's list as it is"
)
assert not (len(f) == 4 and len(decisions) == 5), (
    "the first table has 4 rows and the second 5: return the tables in the order (f, decisions)"
)
assert len(f) == 5, f"f needs N + 1 = 5 rows (4 periods, then the terminal row), not {len(f)}"
F = np.array([[f[k][s] for s in range(4)] for k in range(5)], dtype=float)  # f as an array
if not (np.allclose(F[0], [18, 15, 16, 14]) and np.allclose(F[3], [6, 6, 2, 3])):
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
    mistake = usual_mistake(F[0])
    assert mistake is None, f"f[0] is {F[0].tolist()}: {mistake}"
assert np.allclose(F[4], 0), "without terminal values the last row f[N] is zero"
assert np.allclose(F[3], [6, 6, 2, 3]), (
    "f[3] (the last period) should be [6, 6, 2, 3]: the cheapest way to meet a demand of 2"
)
assert np.allclose(F[0], [18, 15, 16, 14]), (
    "f[0] should be [18, 15, 16, 14]; if f[3] is right, check how f[k + 1] enters row k"
)
terminal = [0, -2, -4, -6]
f, decisions = backward_recursion(
    list(DEMANDS), CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST, terminal
)
assert terminal == [0, -2, -4, -6], (
    f"backward_recursion changed its argument terminal in place (it is now {terminal})"
)
F = np.array([[f[k][s] for s in range(4)] for k in range(5)], dtype=float)
if not (np.allclose(F[0], [15, 12, 13, 13]) and np.allclose(F[3], [3, 3, 2, 1])):
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
assert not np.allclose(F[4], 0), (
    "with terminal values [0, -2, -4, -6] the last row f[N] is zero: the terminal values "
    "were ignored"
)
assert np.allclose(F[4], [0, -2, -4, -6]), "the last row f[N] holds the terminal values"
assert not np.allclose(F[0], [18, 15, 16, 14]), (
    "with terminal values [0, -2, -4, -6], f[0] is what it is without them: the terminal "
    "values in f[N] must enter row N - 1 like every other row f[k + 1] enters row k"
)
assert np.allclose(F[3], [3, 3, 2, 1]), (
    "with terminal values [0, -2, -4, -6], f[3] should be [3, 3, 2, 1]"
)
assert np.allclose(F[0], [15, 12, 13, 13]), (
    "with terminal values [0, -2, -4, -6], f[0] should be [15, 12, 13, 13]"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_backward_values

check_backward_values(
    backward_recursion,
    feasible_decisions=feasible_decisions,
    stage_cost=stage_cost,
    next_state=next_state,
)
### END HIDDEN TESTS

# %% nbgrader="tests" grade_id="test_backward_decisions" points=1 title="Exercise 4b: decisions"
# Visible tests
demands = list(DEMANDS)
try:
    f, decisions = backward_recursion(demands, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
except Exception:  # name the function of Exercise 1 or 2 at fault, if one is
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
    raise
assert demands == DEMANDS, (
    f"backward_recursion changed its argument demands in place (it is now {demands}): leave "
    "the caller's list as it is"
)
assert not (len(f) == 4 and len(decisions) == 5), (
    "the first table has 4 rows and the second 5: return the tables in the order (f, decisions)"
)
assert len(decisions) == 4, f"decisions needs one row per period (4), not {len(decisions)}"
# Where several productions are optimal, any of them is accepted.
optimal = [
    [{3, 4}, {0}, {0}, {0}],
    [{3, 5}, {2, 4}, {0}, {0}],
    [{3}, {0}, {0}, {0}],
    [{2}, {1}, {0}, {0}],
]
got = [[float(decisions[k][s]) for s in range(4)] for k in range(4)]  # 3.0 is production 3
first_row = [float(f[0][s]) for s in range(4)]
if not all(got[k][s] in optimal[k][s] for k in range(4) for s in range(4)):
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
    mistake = usual_mistake(first_row)
    assert mistake is None, f"the decisions are not optimal, and f[0] is {first_row}: {mistake}"
    assert got != [[2, 0, 0, 0], [1, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]], (
        "the decisions are positions in the list of feasible decisions (an argmin index), "
        "not numbers of units produced"
    )
for k in range(4):
    for s in range(4):
        assert int(decisions[k][s]) in optimal[k][s], (
            f"decisions[{k}][{s}] = {decisions[k][s]} is not optimal; "
            f"optimal: {sorted(optimal[k][s])}"
        )
f, decisions = backward_recursion(
    list(DEMANDS), CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST, [0, -2, -4, -6]
)
expected = [[4, 0, 0, 0], [3, 2, 0, 0], [1, 0, 0, 0], [5, 4, 0, 0]]
got = [[int(decisions[k][s]) for s in range(4)] for k in range(4)]
if got != expected:
    problem = one_period_problem("backward_recursion")
    assert problem is None, problem
    mistake = usual_mistake(first_row)  # f[0] of the example without terminal values
    assert mistake is None, f"the decisions are not optimal, and f[0] is {first_row}: {mistake}"
    assert not np.allclose([float(f[0][s]) for s in range(4)], [18, 15, 16, 14]), (
        "with terminal values [0, -2, -4, -6], f[0] and the decisions are those without "
        "them: the terminal values in f[N] must enter row N - 1 like every other row"
    )
    assert got != [[3, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [3, 3, 0, 0]], (
        "the decisions are positions in the list of feasible decisions (an argmin index), "
        "not numbers of units produced"
    )
assert got == expected, (
    f"with terminal values [0, -2, -4, -6] the optimal decisions (no ties here) are "
    f"{expected}, not {got}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_backward_decisions

check_backward_decisions(
    backward_recursion,
    feasible_decisions=feasible_decisions,
    stage_cost=stage_cost,
    next_state=next_state,
)
### END HIDDEN TESTS

# %% [markdown]
# ## 5 · From the tables to a plan
#
# The decision table answers more than the question we asked: it holds an optimal decision
# for **every** period and **every** inventory. The **optimal first decision** from a
# starting inventory $s_1$ is `decisions[0][s1]`, and $f_1(s_1)$ = `f[0][s1]` is what the
# whole horizon costs. To get the **optimal plan**, follow the table forwards: decide
# $x_1 = x_1^*(s_1)$, move to $s_2 = g_1(s_1, x_1)$, read $x_2 = x_2^*(s_2)$, and so on.
#
# ### Exercise 5 (autograded): the optimal plan
#
# Write `optimal_plan(decisions, start, demands)` that follows a decision table (a
# list of lists or a 2-d array, one row per period) from the inventory `start` and returns
# the list of the $N$ productions, one per period. Use `next_state`.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Start at `s = start`; in period `k` read `x = decisions[k][s]`, append it, and move on to
# `s = next_state(s, x, demands[k])`.
# </details>


# %% nbgrader="answer" grade_id="optimal_plan"
def optimal_plan(decisions, start, demands):
    """Follow the decision table forwards from inventory `start`: one production per period."""
    ### BEGIN SOLUTION
    plan, s = [], start
    for k, demand in enumerate(demands):
        x = int(decisions[k][s])
        plan.append(x)
        s = next_state(s, x, demand)
    return plan
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_optimal_plan" points=1 title="Exercise 5: optimal plan"
# Visible tests
table = [[3, 0, 0, 0], [3, 2, 0, 0], [3, 0, 0, 0], [2, 1, 0, 0]]  # the example's decisions
demands = list(DEMANDS)
plan = optimal_plan(table, 3, demands)
assert demands == DEMANDS, (
    f"optimal_plan changed its argument demands in place (it is now {demands}): leave the "
    "caller's list as it is"
)
assert table == [[3, 0, 0, 0], [3, 2, 0, 0], [3, 0, 0, 0], [2, 1, 0, 0]], (
    "optimal_plan changed its argument decisions in place"
)
assert hasattr(plan, "__len__"), (
    "optimal_plan returned a generator (or iterator), which can be read only once: return a list"
)
plan = [float(x) for x in plan]  # whole numbers of any type: 3.0 is production 3
if plan != [0, 0, 3, 0]:
    assert next_state(0, 3, 1) == 2 and next_state(2, 0, 2) == 0, (
        "your next_state (Exercise 2) fails its tests, and optimal_plan builds on it: fix it first"
    )
assert plan != [3, 0, 3, 0], (
    "from start=3 you return the plan from an empty warehouse: follow the table from the "
    "inventory start"
)
assert plan != [0, 0, 0, 0], (
    "from start=3 every period is read in column 3: the inventory is never updated (after "
    "period n it becomes s + x - demands[n])"
)
assert plan != [3, 2, 0, 2], (
    "from start=3 you return the inventories at the start of each period (3, 2, 0, 2), not "
    "the productions"
)
assert plan == [0, 0, 3, 0], (
    "from s=3: produce 0 (stock 2), then 0 (stock 0), then 3 (stock 2), then 0"
)
assert [int(x) for x in optimal_plan(table, 0, list(DEMANDS))] == [3, 0, 3, 0], (
    "from s=0: produce 3 (stock 2 after demand 1), then 0 (stock 0), then 3, then 0"
)
assert [int(x) for x in optimal_plan(np.array(table), 1, list(DEMANDS))] == [0, 3, 0, 2], (
    "from s=1: 0 (stock 0), 3 (stock 1), 0 (stock 0), 2 (stock 0)"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab01 import check_optimal_plan

check_optimal_plan(optimal_plan, next_state=next_state)
### END HIDDEN TESTS

# %% [markdown]
# Run the next cell: it solves the example, reads off the first decision and the plan from an
# empty warehouse, and adds up the plan's cost forwards: it matches $f_1(0)$ and the
# brute-force search of section 3.

# %% nbgrader="locked" grade_id="read_off_plan"
f, decisions = backward_recursion(DEMANDS, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
start = 0
plan = optimal_plan(decisions, start, DEMANDS)
print("optimal first decision from s1 = 0:", int(decisions[0][start]))
print("optimal plan:", plan, "with total cost", f[0][start])
s = start
for k, (x, demand) in enumerate(zip(plan, DEMANDS, strict=True)):
    print(f"  period {k + 1}: start with {s}, produce {x}, sell {demand}", end="")
    s = next_state(s, x, demand)
    print(f", keep {s}")
cost = plan_cost(plan, start, DEMANDS, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
print("cost of the plan, added up forwards:", cost)

# %% [markdown]
# ## 6 · Looking at the tables
#
# The left panel shows the value table: one column per stage, one row per inventory, each
# cell holding $f_n(s)$ and the optimal production $x^*_n(s)$ (the smallest one where there
# are ties); the last column, $n = N + 1$, holds the terminal values. The right panel shows
# the optimal plan from an empty warehouse: what is produced and sold in each period, and
# the inventory at the start of each period (the last dot is what is left at the end). Notice how the
# plan produces for two periods at a time: one setup cost for two periods of demand,
# paid for with a little holding cost.


# %% nbgrader="locked" grade_id="plot_helpers"
def plot_tables(f, decisions, start, demands, capacity):
    """Value/decision heatmap and the optimal plan from `start`."""
    horizon = len(demands)
    f = np.array([[f[n][s] for s in range(capacity + 1)] for n in range(horizon + 1)], dtype=float)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    image = left.imshow(f.T, origin="lower", cmap="viridis", aspect="auto")
    for n in range(horizon + 1):
        for s in range(capacity + 1):
            label = f"{f[n, s]:g}"
            if n < horizon:
                label += f"\nx*={int(decisions[n][s])}"
            dark = image.norm(f[n, s]) > 0.6  # light cell colours get dark text
            left.text(
                n,
                s,
                label,
                ha="center",
                va="center",
                fontsize=9,
                color="black" if dark else "white",
            )
    left.set_xticks(range(horizon + 1), [f"n={n + 1}" for n in range(horizon + 1)])
    left.set_yticks(range(capacity + 1))
    left.set_xlabel("stage (period)")
    left.set_ylabel("starting inventory s")
    left.set_title("value $f_n(s)$ and optimal production $x^*_n(s)$")
    fig.colorbar(image, ax=left, label="least cost to go")

    plan = optimal_plan(decisions, start, demands)
    stock = [start]
    for x, demand in zip(plan, demands, strict=True):
        stock.append(next_state(stock[-1], x, demand))
    periods = np.arange(1, horizon + 1)
    right.bar(periods - 0.2, plan, width=0.4, label="production $x_n$")
    right.bar(periods + 0.2, demands, width=0.4, label="demand $d_n$")
    right.plot(np.arange(1, horizon + 2), stock, "ko-", label="starting inventory $s_n$")
    right.axhline(capacity, color="grey", linestyle=":", label="capacity")
    right.set_xticks(np.arange(1, horizon + 2))
    right.set_xlabel("period n")
    right.set_ylabel("units")
    right.set_title(f"optimal plan from s = {start}, total cost {f[0, start]:g}")
    right.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    plt.show()


# %%
f, decisions = backward_recursion(DEMANDS, CAPACITY, SETUP_COST, UNIT_COST, HOLDING_COST)
plot_tables(f, decisions, 0, DEMANDS, CAPACITY)

# %% [markdown]
# Change the demands (any list of whole numbers between 0 and the capacity, of any length)
# or the costs in the next cell and run it again: the same functions solve every such
# warehouse. Try a setup cost of 0, or a holding cost of 5, and explain what you see.

# %%
my_demands = [2, 1, 3, 0, 2, 1, 1, 3]
f, decisions = backward_recursion(my_demands, 3, 4, 1, 1)
plot_tables(f, decisions, 0, my_demands, 3)

# %% [markdown]
# ## 7 · Questions (written)
#
# Answer each question in two to four sentences in the cell below it.
#
# **Question 1.** Why does the recursion run **backwards**, from period $N$ to period 1? What
# would you be missing if you tried to choose period 1's production first?

# %% [markdown] nbgrader="written" grade_id="why_backward" points=1 title="Q1: why backwards"
# ### BEGIN SOLUTION
# The best decision in period n depends on what the resulting inventory is worth later,
# f_(n+1), and that is only known once the later periods are solved; only the terminal
# values f_(N+1) are known at the start. Going backwards, every f_(n+1) is ready when row n
# needs it, and each stage is solved once for every state instead of once per plan.
# Choosing period 1 first you would not know the future cost of each inventory, so you
# could only guess or be greedy (produce just the demand, which costs 22 instead of 18 from
# an empty warehouse), or try every plan. The backward pass also gives an optimal decision
# for every period and inventory, not only along one plan. (For a deterministic problem
# with a known start, a forward recursion over "cheapest cost of reaching s" also works, but
# it does not carry over to random demand, where backward recursion is the method.)
#
# Rubric (1 point): ½ for saying that the best decision in period n needs f_(n+1), the
# cost-to-go of the inventory it leaves, which is known only once the later periods are
# solved (at the start only the terminal values f_(N+1) are); ½ for what choosing period 1
# first lacks: without f_2 one can only be greedy (producing just the demand costs 22
# instead of 18 from an empty warehouse) or try every plan, exponentially many in N.
# Restating the recursion without saying why f_(n+1) must be known first earns nothing.
# ### END SOLUTION

# %% [markdown]
# **Question 2.** The state is the inventory at the start of a period. Suppose the setup
# cost were waived in any period that follows a period with production (the line is still
# running). Is the starting inventory still a good state? In general, what must a state
# contain?

# %% [markdown] nbgrader="written" grade_id="state_contents" points=1 title="Q2: what a state holds"
# ### BEGIN SOLUTION
# No. The cost of period n would then depend on whether period n-1 produced, which the
# inventory alone does not tell; two histories with the same inventory could have different
# future costs, so f_n(s) would not be well defined. The state must be extended to
# (inventory, produced last period yes/no), i.e. twice as many states. In general a state
# must contain everything about the past that the feasible decisions, the costs and the
# transitions from now on depend on, so that the future can be optimised from the state
# alone; and it should contain nothing more, because every extra piece multiplies the
# number of states the recursion visits.
#
# Rubric (1 point): ½ for "no" with the reason (whether period n − 1 produced changes the
# cost of period n but cannot be read from the inventory, so f_n(s) is not well defined)
# and the repair, the state (inventory, produced last period) with twice as many states;
# ½ for the general rule that a state must hold everything about the past on which the
# feasible decisions, the costs and the transitions from then on depend. A bare "no", or a
# rule that only says "all the relevant information", earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# - A deterministic DP has stages, states, decisions, transitions $s_{n+1} = g_n(s_n, x_n)$,
#   immediate costs $h_n(s_n, x_n)$ and terminal values $f_{N+1}$.
# - The backward recursion $f_n(s) = \min_x \big[ h_n(s, x) + f_{n+1}(g_n(s, x)) \big]$ solves
#   the stages from the last to the first; its work grows linearly with the horizon, while
#   the number of plans grows exponentially.
# - Storing a minimising decision for every stage and state gives a decision table; with
#   the smallest-decision tie rule it is unique. The optimal plan from any starting inventory
#   is read off by following that table forwards.
# - For the warehouse with demands $(1, 2, 1, 2)$, an empty warehouse costs $f_1(0) = 18$,
#   for example with the plan $(3, 0, 3, 0)$: each setup serves two periods of demand.
# - A state must carry everything about the past that the future depends on.
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
# Next: **Lab 02** makes demand random and the horizon infinite: the warehouse becomes a
# Markov decision process, and $f_n$ becomes a single value function $V$ with a discount
# factor $\beta$.
