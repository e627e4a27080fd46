# %% [markdown]
# {{colab_badge}}
#
# # Lab 02 · From dynamic programming to MDPs: the warehouse model
#
# Lab 01 planned a few periods ahead and solved the problem backwards from its last
# period. A warehouse that expects to stay in business has no last period, and its demand
# is not known in advance. This lab makes both changes, writes down the resulting model,
# a **discounted Markov decision process** (MDP), and builds it in code for the warehouse
# that runs through the series. Then it answers the first question one asks of any
# policy: *what does it cost?*, once exactly, by solving a linear system, and once
# approximately, by simulating the warehouse.
#
# **Learning goals.** After this lab you can
# 1. explain what changes between a finite-horizon dynamic program and a discounted MDP:
#    an unbounded horizon with a discount factor, random transitions, and stationarity;
# 2. use the notation $S$, $A(s)$, $r(s, a)$, $P(s' \mid s, a)$, $\beta$, $\pi$, $V_\pi$, and
#    write the Bellman equation of a policy and the optimality equation;
# 3. state the warehouse as an MDP precisely and build its cost and transition arrays for
#    any capacity, costs and demand distribution;
# 4. evaluate a policy exactly, from $(I - \beta P_\pi) V_\pi = r_\pi$, and by Monte Carlo
#    simulation with a standard error, and explain why a finite simulation horizon is enough.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests here and by hidden tests that call your
# functions on other warehouses (other capacities, costs, demand distributions and discount
# factors). Written parts are read by your instructor.

# %% [markdown]
# This lab needs only numpy and matplotlib, which every Colab runtime has. Run the next
# (read-only) cell first.

# %% nbgrader="locked" grade_id="setup"
import sys

import matplotlib.pyplot as plt
import numpy as np

IN_COLAB = "google.colab" in sys.modules
print(
    "Running in", "Google Colab" if IN_COLAB else "Jupyter", "with Python", sys.version.split()[0]
)
print("numpy", np.__version__)

# %% [markdown]
# ## 1 · From dynamic programming to Markov decision processes
#
# ### 1.1 Where we come from
#
# A finite-horizon dynamic program, as in Lab 01, has stages $n = 1, \dots, N$. At stage $n$
# the system is in a state $s_n$, we pick a decision $x_n$ among those allowed in $s_n$, pay
# $h_n(s_n, x_n)$, and the next state is a known function $s_{n+1} = g_n(s_n, x_n)$. Because
# there is a last stage, the best cost-to-go can be computed backwards, starting from the
# terminal values $f_{N+1}$ (often zero):
#
# $$
# f_n(s) \;=\; \min_{x} \Big[\, h_n(s, x) + f_{n+1}\big(g_n(s, x)\big) \Big],
# \qquad n = N, N-1, \dots, 1.
# $$
#
# (The series always **minimises costs**; a problem stated with rewards is the same problem
# with costs equal to minus the rewards.)
#
# ### 1.2 Three changes
#
# **An infinite horizon, discounted.** From now on the stages are time periods
# $t = 0, 1, 2, \dots$ that never end: a business plans to keep running. Without a last
# period there is nowhere to start a backward recursion, and an undiscounted total cost
# would usually be infinite. As in Lab 00 we weight the cost of period $t$ by $\beta^t$, with
# a **discount factor** $\beta \in [0, 1)$: a cost next period is worth $\beta$ of the same
# cost today. (One reading: money paid later can earn interest meanwhile. Another: each
# period the business stops for good with probability $1 - \beta$.)
#
# **Random transitions.** The next state is no longer a function of the state and the
# decision. Given the state $s$ and the action $a$, it is drawn from a probability
# distribution $P(\cdot \mid s, a)$ on the states:
#
# $$
# P(s' \mid s, a) \;=\; \Pr\big(s_{t+1} = s' \,\big|\, s_t = s,\ a_t = a\big),
# \qquad P(s' \mid s, a) \ge 0, \qquad \sum_{s'} P(s' \mid s, a) = 1 .
# $$
#
# Writing it this way, conditioned on the current state and action only, is the
# **Markov property**: how the system moves on depends on its history only through
# $(s_t, a_t)$; earlier states and actions add nothing. Since the future is random, we
# compare decisions by their **expected** discounted cost.
#
# **Stationarity.** The states, the feasible actions, the costs and the transition
# probabilities are the same in every period. Then the problem seen from period $t$, in state
# $s$, is the problem seen from period $0$ in state $s$, only scaled by $\beta^t$. The best
# decision therefore depends on the state and not on the date, and we drop the time index.

# %% [markdown]
# ### Warm-up question (written): the warehouse as an MDP
#
# Before you read the table in section 1.3, which answers it, formulate the warehouse of
# the series yourself. It holds at most 3 units; producing in a period costs a setup fee of
# 4 plus 1 per unit; each unit on hand at the **start** of a period costs 1 to hold; demand
# is 1 or 2 units with probability $\tfrac12$ each and must always be met; the discount
# factor is 0.8. Write one line for each of: (a) when a decision is taken; (b) the states;
# (c) the actions feasible in each state; (d) the one-period cost $r(s, a)$; (e) the
# transition probabilities $P(s' \mid s, a)$; (f) the discount factor. Then compare with
# the table.

# %% [markdown] nbgrader="written" grade_id="formulation" points=1 title="Warm-up: the warehouse as an MDP"
# ### BEGIN SOLUTION
# (a) At the start of every period, after the stock is observed and before demand arrives.
# (b) s ∈ {0, 1, 2, 3}, the units on hand at the start of the period.
# (c) a ∈ A(s) = {a ≥ 0 : s + a ≥ 2 and s + a − 1 ≤ 3}: demand of 2 must be met and a
# demand of 1 must not overflow, so A(0) = {2, 3, 4}, A(1) = {1, 2, 3}, A(2) = {0, 1, 2},
# A(3) = {0, 1}.
# (d) r(s, a) = 4·[a > 0] + a + s (setup, units, holding on the starting stock).
# (e) s' = s + a − D with D = 1 or 2, so P(s + a − 1 | s, a) = P(s + a − 2 | s, a) = ½.
# (f) β = 0.8.
#
# Rubric (1 point): ½ for (b) and (c) with the feasible sets right (an action set that
# allows unmet demand or overflow loses this half); ½ for (d) and (e), with holding charged
# on the starting stock and both successor states. (a) and (f) are expected but earn nothing
# on their own.
# ### END SOLUTION

# %% [markdown]
# ### 1.3 Notation
#
# | Symbol | Meaning | In the warehouse |
# |---|---|---|
# | $S$ | finite set of states | inventory at the start of a period, $0, \dots, C$ |
# | $A(s)$ | actions feasible in state $s$ | production quantities that meet every demand and fit in the warehouse |
# | $r(s, a)$ | one-period cost of action $a$ in state $s$ | setup + production + holding cost |
# | $P(s' \mid s, a)$ | probability that the next state is $s'$ | probability of the demand that leaves $s'$ units |
# | $\beta$ | discount factor, $0 \le \beta < 1$ | $0.8$ |
# | $\pi$ | a stationary policy: one action $\pi(s) \in A(s)$ per state | e.g. produce $(2, 1, 0, 0)$ in states $0, 1, 2, 3$ |
# | $V_\pi(s)$ | expected discounted cost of following $\pi$ from state $s$ | |
# | $V^*(s)$ | the smallest expected discounted cost from $s$, whatever the rule for choosing actions (section 1.4) | |
#
# Written out, with $s_0 = s$ and $s_{t+1}$ drawn from $P(\cdot \mid s_t, \pi(s_t))$,
#
# $$
# V_\pi(s) \;=\; \mathbb{E}\Big[\, \sum_{t=0}^{\infty} \beta^t\, r\big(s_t, \pi(s_t)\big)
# \;\Big|\; s_0 = s \Big].
# $$
#
# ### 1.4 The Bellman equations
#
# Split the sum into the first period and the rest. The rest is a discounted cost that
# starts one period later, in the random state $s_1$: by the Markov property the process from
# $s_1$ on forgets how it got there, and by stationarity it is a copy of the process started
# in $s_1$. Its expected value is therefore $\beta\, V_\pi(s_1)$, and averaging over $s_1$
# gives the **Bellman equation of the policy** $\pi$:
#
# $$
# V_\pi(s) \;=\; r\big(s, \pi(s)\big) \;+\; \beta \sum_{s' \in S} P\big(s' \mid s, \pi(s)\big)\,
# V_\pi(s') \qquad \text{for every } s \in S .
# $$
#
# These are $|S|$ *linear* equations in the $|S|$ unknowns $V_\pi(s)$. Collect the costs
# $r_\pi(s) = r(s, \pi(s))$ in a vector and the probabilities
# $P_\pi[s, s'] = P(s' \mid s, \pi(s))$ in a matrix whose rows sum to one; then
#
# $$
# V_\pi = r_\pi + \beta P_\pi V_\pi
# \quad\Longleftrightarrow\quad
# (I - \beta P_\pi)\, V_\pi = r_\pi .
# $$
#
# For $\beta < 1$ the matrix $I - \beta P_\pi$ is invertible, with
# $(I - \beta P_\pi)^{-1} = \sum_{t \ge 0} \beta^t P_\pi^t$: row $s$ of $P_\pi^t$ is the
# distribution of the state in period $t$, so $\beta^t P_\pi^t r_\pi$ is the discounted
# expected cost of period $t$, and the series adds them all up.
#
# The best we can do from $s$ obeys the same split, except that the first action is now ours
# to choose. This is the **Bellman optimality equation**:
#
# $$
# V^*(s) \;=\; \min_{a \in A(s)} \Big[\, r(s, a) + \beta \sum_{s' \in S} P(s' \mid s, a)\,
# V^*(s') \Big] \qquad \text{for every } s \in S .
# $$
#
# Because of the minimum it is no longer linear. The next labs solve it three ways (a linear
# program in Lab 03, policy iteration in Lab 04 and value iteration in Lab 05). A policy that
# picks, in every state, an action attaining the minimum is optimal.
#
# **Why stationary policies are enough.** $V^*(s)$ above means the least expected
# discounted cost over *every* rule for choosing actions, including rules that look at the
# whole history or flip coins. For a finite MDP with $\beta < 1$ the optimality equation
# has exactly one solution, that solution is $V^*$, and a stationary deterministic policy
# that attains the minimum in every state achieves it (Puterman, 1994, §6.2). So an optimal
# policy always exists among the finitely many stationary deterministic ones, and the labs
# search only there. (Lab 05 proves the uniqueness: the right-hand side is a contraction.)

# %% [markdown]
# ## 2 · The warehouse, stated precisely
#
# A warehouse stores a single product and holds at most $C$ units. Each period runs as
# follows.
#
# 1. The manager sees the inventory $s \in \{0, 1, \dots, C\}$ at the **start** of the
#    period. This is the state.
# 2. She decides to produce $a \ge 0$ units (a whole number). Production is ready at once,
#    so $s + a$ units are on hand before demand arrives. This is the action.
# 3. The period costs
#    $$
#    r(s, a) \;=\; K \cdot [a > 0] \;+\; c \cdot a \;+\; h \cdot s ,
#    $$
#    a **setup cost** $K$ in any period with production, a **unit cost** $c$ per unit
#    produced, and a **holding cost** $h$ per unit of the **starting** inventory $s$.
# 4. The demand $D$ is drawn from a known distribution $p_D(d) = \Pr(D = d)$ on a few
#    non-negative whole numbers, independently of everything that happened before.
#    **All demand must be met**, from the $s + a$ units on hand.
# 5. What is left, $s + a - D$, is the next period's starting inventory. It must fit in the
#    warehouse: $s + a - D \le C$.
#
# The action is chosen before the demand is known, so both requirements must hold **for
# every possible demand**. With $d_{\max}$ and $d_{\min}$ the largest and the smallest
# demand,
#
# $$
# A(s) \;=\; \big\{\, a \in \{0, 1, 2, \dots\} \;:\; s + a \ge d_{\max} \ \text{ and } \
# s + a - d_{\min} \le C \,\big\},
# \qquad
# P(s' \mid s, a) \;=\; p_D(s + a - s') ,
# $$
#
# where $p_D(s + a - s') = 0$ when $s + a - s'$ is not a possible demand.
#
# The course's instance has $C = 3$, $K = 4$, $c = 1$, $h = 1$, a demand of 1 or 2 units
# with probability $\tfrac12$ each, and $\beta = 0.8$. For example, an empty warehouse
# ($s = 0$) must produce at least 2 units (demand may be 2) and at most 4 (if demand is 1,
# then $4 - 1 = 3$ units remain, which just fit), so $A(0) = \{2, 3, 4\}$; producing 2 units
# costs $r(0, 2) = 4 + 2 + 0 = 6$ and leaves 0 or 1 unit, each with probability $\tfrac12$.
#
# > **A note on conventions.** Some texts charge holding on the *ending* inventory
# > $s + a - D$ (in expectation, $s + a - \mathbb{E}[D]$). The numbers published for this
# > course, and every lab of the series, charge the **starting** inventory $s$, as above.
# > Both give a valid MDP; they just price a different warehouse.

# %% [markdown]
# ### Question 1 (written)
#
# In two to four sentences: what makes the warehouse a *Markov* decision process, with the
# starting inventory alone as the state? Name the assumption about demand that this relies
# on, and give an example of a demand pattern for which the starting inventory would no
# longer be enough as a state.

# %% [markdown] nbgrader="written" grade_id="markov_property" points=1 title="Question 1: why the warehouse is Markov"
# ### BEGIN SOLUTION
# The next state is s + a − D, so given the inventory s and the production a its law is
# the law of the demand D. Because each period's demand is independent of all earlier
# demands and decisions (and has the same distribution every period), knowing more of the
# history would not change P(s' | s, a): that is the Markov property. If demand were
# correlated over time, say a busy season in which a high demand tends to be followed by
# another one, the last demand would help predict the next, and the state would have to
# include it (or the season) besides the inventory.
#
# Rubric (1 point): ½ for s' = s + a − D, so that given (s, a) the law of s' is the law of
# D, with the assumption that each demand is independent of the earlier demands and
# decisions (and identically distributed), so more history cannot change P(s' | s, a);
# ½ for a demand pattern with memory (e.g. a high demand tends to follow a high one, or a
# seasonal pattern) and what the state must then add (the last demand, the season). "The
# future depends only on the present" without the independence of demand earns nothing.
# ### END SOLUTION

# %% [markdown]
# ### Exercise 1 (autograded): feasible actions
#
# Write `feasible_actions(s, capacity, demand_pmf)` that returns $A(s)$ as a list of whole
# numbers in increasing order. `demand_pmf` is a dictionary `{demand value: probability}`,
# for example `{1: 0.5, 2: 0.5}`; every listed value has a positive probability, and the
# keys need not come in increasing order. Assume that $A(s)$ is not empty.
#
# *Hint:* `max(demand_pmf)` and `min(demand_pmf)` give the largest and smallest demand
# value of a dictionary.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# An action is feasible when the largest demand can be met, `s + a >= max(demand_pmf)`, and
# the smallest demand leaves no overflow, `s + a - min(demand_pmf) <= capacity`. A
# `range` from the first bound to the second, turned into a list, gives them in order.
# </details>


# %% nbgrader="answer" grade_id="feasible_actions"
def feasible_actions(s, capacity, demand_pmf):
    """Production quantities a >= 0 that meet every demand and keep s + a - D <= capacity."""
    ### BEGIN SOLUTION
    largest, smallest = max(demand_pmf), min(demand_pmf)
    lowest = max(0, largest - s)
    highest = capacity + smallest - s
    return list(range(lowest, highest + 1))
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_feasible_actions" points=1 title="Exercise 1: feasible actions"
# Visible tests
course_demand = {1: 0.5, 2: 0.5}
got = [[int(a) for a in feasible_actions(state, 3, course_demand)] for state in range(4)]
assert course_demand == {1: 0.5, 2: 0.5}, (
    f"feasible_actions changed demand_pmf in place (it now holds {course_demand}); the caller "
    "still needs it: read the dictionary, do not remove or add entries"
)
# The usual mistakes first: what they give, and what is wrong with it.
assert got[0] != [1, 2, 3, 4], (
    "course warehouse: A(0) includes a = 1, which cannot meet the largest demand, 2. All "
    "demand must be met, whichever value it takes: s + a >= max demand"
)
always_2 = [int(a) for a in feasible_actions(0, 3, {2: 1.0})]  # demand is always 2
assert always_2 != [2, 3], (
    "capacity 3, demand always 2, s=0: A(0) = [2, 3, 4, 5], got [2, 3]. The capacity limits "
    "the ENDING inventory s + a - D (here a - 2 <= 3), not the stock s + a after production"
)
assert always_2 != [2, 3, 4], (
    "capacity 3, demand always 2, s=0: A(0) = [2, 3, 4, 5], got [2, 3, 4]: the largest "
    "feasible quantity, capacity + min demand - s, is missing (does a range() stop one short?)"
)
reordered = [int(a) for a in feasible_actions(0, 3, {2: 0.5, 1: 0.5})]
assert reordered == [2, 3, 4], (
    f"with the keys of demand_pmf in the order {{2: 0.5, 1: 0.5}}, A(0) should still be "
    f"[2, 3, 4], got {reordered}: the order of the keys must not matter (max(demand_pmf) "
    "and min(demand_pmf) do not depend on it)"
)
for state, expected in enumerate([[2, 3, 4], [1, 2, 3], [0, 1, 2], [0, 1]]):
    assert got[state] == expected, (
        f"course warehouse, s={state}: expected A(s) = {expected}, got {got[state]}"
    )
larger = [int(a) for a in feasible_actions(0, 5, {0: 0.5, 3: 0.5})]
assert larger != [3], (
    "capacity 5, demand 0 or 3, s=0: A(0) = [3, 4, 5], got [3], which is A(0) for a capacity "
    "of 3: use the argument capacity, not the course's 3"
)
assert larger == [3, 4, 5], f"capacity 5, demand 0 or 3, s=0: A(0) = [3, 4, 5], got {larger}"
assert [int(a) for a in feasible_actions(4, 5, {0: 0.5, 3: 0.5})] == [0, 1], (
    "capacity 5, demand 0 or 3, s=4: a=0 meets demand 3 and a=1 leaves at most 5 units"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_feasible_actions

check_feasible_actions(feasible_actions)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (autograded): the one-period cost
#
# Write `cost(s, a, setup_cost, unit_cost, holding_cost)` that returns $r(s, a)$ as a
# number: the setup cost if $a > 0$, plus the unit cost times $a$, plus the holding cost
# times the **starting** inventory $s$. The costs may be any non-negative numbers, not
# necessarily whole ones.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Three terms: the setup cost only when `a > 0`, the unit cost times `a`, and the holding
# cost times the **starting** inventory `s` (not the ending one).
# </details>


# %% nbgrader="answer" grade_id="cost"
def cost(s, a, setup_cost, unit_cost, holding_cost):
    """One-period cost r(s, a): setup if a > 0, per-unit production, holding on s."""
    ### BEGIN SOLUTION
    setup = setup_cost if a > 0 else 0.0
    return float(setup + unit_cost * a + holding_cost * s)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_cost" points=1 title="Exercise 2: one-period cost"
# Visible tests
pairs = [(0, 2), (1, 1), (2, 0), (3, 0)]
got = [float(cost(state, produced, 4, 1, 1)) for state, produced in pairs]
# The costs that the usual mistakes give for these four pairs of the course warehouse:
usual_mistakes = [
    (
        [8, 7, 2, 3],
        "holding is charged on the stock after production, s + a; this lab charges "
        "it on the STARTING inventory s",
    ),
    ([6, 6, 6, 7], "the setup cost is charged even when nothing is produced (a = 0)"),
    (
        [9, 6, 2, 3],
        "setup_cost and unit_cost are swapped; the arguments come in the order "
        "(s, a, setup_cost, unit_cost, holding_cost)",
    ),
    ([10, 6, 2, 3], "the setup cost is charged per unit; it is paid once with production"),
    ([6, 5, 0, 0], "the holding cost of the starting inventory is missing"),
]
for costs, mistake in usual_mistakes:
    assert not np.allclose(got, costs), (
        f"course warehouse, r(s, a) for (s, a) in {pairs}: got {got}: {mistake}"
    )
for (state, produced), expected, one_cost in zip(pairs, [6, 6, 2, 3], got, strict=True):
    assert np.isclose(one_cost, expected), (
        f"course warehouse: r({state}, {produced}) should be {expected}, got {one_cost}"
    )
assert np.isclose(float(cost(1, 0, 4, 1, 1)), 1), (
    "no setup cost is paid in a period without production"
)
assert np.isclose(float(cost(2, 3, 2.5, 0.5, 0.25)), 4.5), (
    "setup 2.5 + 3 units at 0.5 + holding 2 units at 0.25 = 4.5"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_cost

check_cost(cost)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (autograded): transition probabilities
#
# Write `transition_probabilities(s, a, capacity, demand_pmf)` that returns the row
# $P(\cdot \mid s, a)$ as a numpy array of length `capacity + 1`: entry $s'$ is the
# probability that the next starting inventory is $s'$. Assume that $a \in A(s)$, so every
# next state lies between $0$ and the capacity.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Start from `np.zeros(capacity + 1)` and, for every `(d, p)` in `demand_pmf.items()`, add
# `p` to entry `s + a - d`. Add (`+=`), do not assign: two demands could lead to the same
# state in other models.
# </details>


# %% nbgrader="answer" grade_id="transition_probabilities"
def transition_probabilities(s, a, capacity, demand_pmf):
    """Row P(. | s, a) over the next states 0..capacity, as a numpy array."""
    ### BEGIN SOLUTION
    row = np.zeros(capacity + 1)
    for demand, probability in demand_pmf.items():
        row[s + a - demand] += probability
    return row
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_transition_probabilities" points=1 title="Exercise 3: transition probabilities"
# Visible tests
course_demand = {1: 0.5, 2: 0.5}
first = transition_probabilities(0, 2, 3, course_demand)
assert course_demand == {1: 0.5, 2: 0.5}, (
    f"transition_probabilities changed demand_pmf in place (it now holds {course_demand}); "
    "the caller passes the same dictionary again: read it (demand_pmf.items()), do not pop "
    "or clear it"
)
assert hasattr(first, "__len__"), (
    f"transition_probabilities returned a {type(first).__name__}; return a numpy array "
    "(a generator can be read only once)"
)
rows = {
    (state, produced): np.asarray(
        transition_probabilities(state, produced, 3, course_demand), dtype=float
    )
    for state, produced in [(0, 2), (0, 4), (3, 0)]
}
for (state, produced), row in rows.items():
    assert row.shape == (4,), f"P(. | {state}, {produced}) needs one entry per state 0..3"
# The usual mistakes first: what they give, and what is wrong with it.
assert not np.allclose(rows[0, 2], [0.5, 0, 0, 0.5]), (
    "P(. | 0, 2) = [0.5, 0, 0, 0.5]: the next state is off by one (and wraps around to 3); "
    "after demand d it is s + a - d"
)
assert not np.allclose(rows[0, 4], [0, 0.5, 0.5, 0]), (
    "P(. | 0, 4) = [0, 0.5, 0.5, 0]: the probability of demand d is put at index d; it "
    "belongs to the next state s + a - d"
)
for (state, produced), expected in {
    (0, 2): [0.5, 0.5, 0, 0],  # 2 units on hand, demand 1 or 2 leaves 1 or 0
    (0, 4): [0, 0, 0.5, 0.5],
    (3, 0): [0, 0.5, 0.5, 0],
}.items():
    got = rows[state, produced]
    assert np.allclose(got, expected), f"P(. | {state}, {produced}) should be {expected}, got {got}"
for state, actions in enumerate([[2, 3, 4], [1, 2, 3], [0, 1, 2], [0, 1]]):
    for produced in actions:
        row = np.asarray(transition_probabilities(state, produced, 3, course_demand), dtype=float)
        assert np.isclose(row.sum(), 1), f"P(. | {state}, {produced}) must sum to 1"
got = np.asarray(transition_probabilities(1, 2, 4, {2: 0.8, 0: 0.2}), dtype=float)
assert not np.allclose(got, [0, 0.5, 0, 0.5, 0]), (
    "capacity 4, s=1, a=2, demand 0 (prob 0.2) or 2 (prob 0.8): every demand value gets the "
    "same probability; use the probabilities of demand_pmf"
)
assert not np.allclose(got, [0, 0.2, 0, 0.8, 0]), (
    "capacity 4, s=1, a=2, demand 0 (prob 0.2) or 2 (prob 0.8): the probabilities are "
    "attached to the wrong demand values"
)
assert np.allclose(got, [0, 0.8, 0, 0.2, 0]), (
    "capacity 4, s=1, a=2, demand 0 (prob 0.2) or 2 (prob 0.8): the next state is 3 or 1"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_transition_probabilities

check_transition_probabilities(transition_probabilities)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (autograded): the whole model as two arrays
#
# Solvers want the model as arrays. We index actions by the production quantity itself:
# column $a$ means "produce $a$ units". No state can ever produce more than
# $C + d_{\min}$ units (from an empty warehouse, anything more would not fit even after the
# smallest demand), so the columns run over $a = 0, 1, \dots, C + d_{\min}$.
#
# Write `build_model(capacity, setup_cost, unit_cost, holding_cost, demand_pmf)` that
# returns the pair `(R, P)` of numpy float arrays, with $S = C + 1$ states and
# $A = C + d_{\min} + 1$ action columns:
#
# - `R` of shape `(S, A)`: `R[s, a]` $= r(s, a)$ when $a \in A(s)$, and `np.inf` when the
#   action is infeasible (an infinite cost: no minimisation will ever pick it);
# - `P` of shape `(S, A, S)`: `P[s, a]` is the row $P(\cdot \mid s, a)$ when $a \in A(s)$,
#   and all zeros otherwise.
#
# Use your three functions above.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Create `R = np.full((S, A), np.inf)` and `P = np.zeros((S, A, S))`, then loop over the
# states and over `feasible_actions(s, capacity, demand_pmf)` only, filling `R[s, a]` with
# `cost(...)` and `P[s, a]` with `transition_probabilities(...)`.
# </details>


# %% nbgrader="answer" grade_id="build_model"
def build_model(capacity, setup_cost, unit_cost, holding_cost, demand_pmf):
    """Return (R, P): costs R[s, a] (np.inf if infeasible) and transitions P[s, a, s']."""
    ### BEGIN SOLUTION
    n_states = capacity + 1
    n_actions = capacity + min(demand_pmf) + 1
    R = np.full((n_states, n_actions), np.inf)
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in feasible_actions(s, capacity, demand_pmf):
            R[s, a] = cost(s, a, setup_cost, unit_cost, holding_cost)
            P[s, a] = transition_probabilities(s, a, capacity, demand_pmf)
    return R, P
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_build_model" points=2 title="Exercise 4: the model arrays"
# Visible tests
# build_model relies on your three functions: first, they must leave demand_pmf alone.
for name, function, arguments in [
    ("feasible_actions", feasible_actions, (0, 3)),
    ("transition_probabilities", transition_probabilities, (0, 2, 3)),
]:
    pmf = {1: 0.5, 2: 0.5}
    function(*arguments, pmf)
    assert pmf == {1: 0.5, 2: 0.5}, (
        f"{name} changes demand_pmf in place (it left {pmf}), so build_model would see "
        f"another demand after its first call: fix {name} first"
    )
row = transition_probabilities(0, 2, 3, {1: 0.5, 2: 0.5})
assert hasattr(row, "__len__"), (
    f"transition_probabilities returns a {type(row).__name__}, which build_model cannot "
    "store in P[s, a]: fix transition_probabilities first (return a numpy array)"
)
course_demand = {1: 0.5, 2: 0.5}
R, P = (np.asarray(array, dtype=float) for array in build_model(3, 4, 1, 1, course_demand))
assert course_demand == {1: 0.5, 2: 0.5}, (
    f"build_model changed demand_pmf in place (it now holds {course_demand})"
)
assert R.shape == (4, 5), f"R should have shape (S, A) = (4, 5), got {R.shape}"
assert P.shape == (4, 5, 4), f"P should have shape (S, A, S) = (4, 5, 4), got {P.shape}"
for state, expected in enumerate([[2, 3, 4], [1, 2, 3], [0, 1, 2], [0, 1]]):
    finite = np.flatnonzero(np.isfinite(R[state])).tolist()
    yours = [int(a) for a in feasible_actions(state, 3, {1: 0.5, 2: 0.5})]
    assert finite == expected or yours == expected, (
        f"R[{state}] is finite at a in {finite}, but A({state}) = {expected}, and your "
        f"feasible_actions({state}, 3, ...) returns {yours}: fix feasible_actions first"
    )
    assert finite == expected, (
        f"R[{state}] should be finite exactly at a in A({state}) = {expected}, not {finite}: "
        "an infeasible pair costs np.inf"
    )
    assert np.all(np.isposinf(R[state][~np.isfinite(R[state])])), "infeasible costs are np.inf"
course_pairs = [(0, 2), (1, 1), (2, 0), (3, 0)]
got = [R[state, produced] for state, produced in course_pairs]
assert not np.allclose(got, [6.5, 5.5, 0.5, 1.5]), (
    "R charges holding on the expected ENDING inventory s + a - E[D]; this lab charges it on "
    "the STARTING inventory s"
)
for (state, produced), expected, one_cost in zip(course_pairs, [6, 6, 2, 3], got, strict=True):
    yours = float(cost(state, produced, 4, 1, 1))
    assert np.isclose(one_cost, expected) or np.isclose(yours, expected), (
        f"R[{state}, {produced}] should be {expected}, and your cost({state}, {produced}, 4, 1, 1) "
        f"returns {yours}: fix cost first"
    )
    assert np.isclose(one_cost, expected), (
        f"R[{state}, {produced}] should be {expected}, got {one_cost}"
    )
feasible = np.isfinite(R)
yours = np.asarray(transition_probabilities(0, 2, 3, {1: 0.5, 2: 0.5}), dtype=float)
assert np.allclose(P[0, 2], [0.5, 0.5, 0, 0]) or np.allclose(yours, [0.5, 0.5, 0, 0]), (
    f"P[0, 2] should be [0.5, 0.5, 0, 0], and your transition_probabilities(0, 2, 3, ...) "
    f"returns {yours}: fix transition_probabilities first"
)
assert np.allclose(P[0, 2], [0.5, 0.5, 0, 0]), f"P[0, 2] should be [0.5, 0.5, 0, 0], got {P[0, 2]}"
assert np.allclose(P[feasible].sum(axis=1), 1), "every feasible row P[s, a] must sum to 1"
assert np.all(P[~feasible] == 0), "P[s, a] must be all zeros when a is infeasible in s"
R6, P6 = build_model(6, 3, 2, 0.5, {0: 0.25, 3: 0.75})
assert np.shape(R6) == (7, 7) and np.shape(P6) == (7, 7, 7), (
    "capacity 6 with smallest demand 0: S = 7 states and A = 6 + 0 + 1 = 7 action columns, "
    f"got R of shape {np.shape(R6)} and P of shape {np.shape(P6)}"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_build_model

check_build_model(
    build_model,
    feasible_actions=feasible_actions,
    cost=cost,
    transition_probabilities=transition_probabilities,
)
### END HIDDEN TESTS

# %% [markdown]
# Time to look at what you built. The read-only cell below draws the cost array `R` of the
# course's warehouse and of a larger one (capacity 6, demand 0, 2 or 5). Grey cells are
# infeasible. The feasible actions form a diagonal band: the fuller the warehouse, the less
# it may produce, and no state has more than $C - (d_{\max} - d_{\min}) + 1$ feasible actions.


# %% nbgrader="locked" grade_id="plot_helpers"
def show_table(ax, table, title, xlabel, ylabel, cmap="viridis", fmt="{:g}"):
    """Draw a 2-D array as an annotated heatmap; infinite or nan entries are grey and '-'."""
    table = np.asarray(table, dtype=float)
    colours = plt.get_cmap(cmap).copy()
    colours.set_bad("0.85")
    image = ax.imshow(np.ma.masked_invalid(table), cmap=colours)
    for (row_index, column), value in np.ndenumerate(table):
        if np.isfinite(value):
            red, green, blue, _ = image.cmap(image.norm(value))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
            ax.text(
                column,
                row_index,
                fmt.format(round(value, 2)),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
        else:
            ax.text(column, row_index, "-", ha="center", va="center", fontsize=8, color="0.4")
    ax.set_xticks(range(table.shape[1]))
    ax.set_yticks(range(table.shape[0]))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return image


# %% nbgrader="locked" grade_id="plot_costs" autograde="skip"
fig, axes = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [5, 8]})
course_R = np.asarray(build_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})[0], dtype=float)
show_table(axes[0], course_R, "course warehouse: r(s, a)", "production a", "starting inventory s")
larger_R = np.asarray(build_model(6, 4, 1, 1, {0: 0.2, 2: 0.5, 5: 0.3})[0], dtype=float)
show_table(
    axes[1], larger_R, "capacity 6, demand 0/2/5: r(s, a)", "production a", "starting inventory s"
)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3 · What does a policy cost? The exact answer
#
# A stationary policy is one production quantity per state; we store it as a sequence
# `policy` with `policy[s]` $= \pi(s)$. The cheapest-looking policy produces as little as
# feasibility allows: $\pi = (2, 1, 0, 0)$, which brings the stock up to 2 whenever it is
# below 2. A more generous one is $(4, 3, 0, 0)$, which fills up to 4 instead.
#
# With the arrays of Exercise 4, $r_\pi$ and $P_\pi$ are one fancy-indexing step away:
# `R[states, policy]` and `P[states, policy]`, with `states = np.arange(S)`. The read-only
# cell below draws $P_\pi$ for both policies. Row $s$ is where the inventory goes next from
# $s$. Under $(2, 1, 0, 0)$ the states 0, 1 and 2 all lead to the same row, because all three
# start the demand with 2 units on hand.

# %% nbgrader="locked" grade_id="plot_policy_transitions" autograde="skip"
course_model = build_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})
course_R, course_P = (np.asarray(x, dtype=float) for x in course_model)
all_states = np.arange(4)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, shown_policy in zip(axes, [(2, 1, 0, 0), (4, 3, 0, 0)], strict=True):
    show_table(
        ax,
        course_P[all_states, list(shown_policy)],
        f"P_pi for pi = {shown_policy}",
        "next state s'",
        "state s",
        cmap="Blues",
    )
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 5 (autograded): exact policy evaluation
#
# Write `evaluate_policy(R, P, beta, policy)` that returns $V_\pi$ as a numpy array of
# length $S$, by solving $(I - \beta P_\pi) V_\pi = r_\pi$ with `np.linalg.solve`. `R` and
# `P` are arrays as in Exercise 4 (any number of states and action columns), `policy` is a
# list, tuple or array of feasible action columns, one per state, and $0 \le \beta < 1$.
# The order of the arguments is the one every lab of the series keeps: the model
# `R, P, beta` first, then the policy (and, in the simulations below, what the run needs).
#
# The tests use two models written out by hand in the read-only cell below, so that they do
# not depend on your `build_model`: a toy model with two states, and the four rows of the
# course's warehouse that the policy $(2, 1, 0, 0)$ uses (all other pairs are marked
# infeasible there).

# %% nbgrader="locked" grade_id="test_models"
# A toy model: 2 states, 2 actions; action 1 is infeasible in state 1.
toy_R = np.array([[1.0, 3.0], [2.0, np.inf]])
toy_P = np.zeros((2, 2, 2))
toy_P[0, 0] = [0.0, 1.0]  # state 0, action 0: move to state 1
toy_P[0, 1] = [0.5, 0.5]  # state 0, action 1: toss a fair coin
toy_P[1, 0] = [1.0, 0.0]  # state 1, action 0: back to state 0

# The course's warehouse, keeping only the pairs (s, pi(s)) of pi = (2, 1, 0, 0).
seed_R = np.full((4, 5), np.inf)
seed_P = np.zeros((4, 5, 4))
for (state, produced), one_cost in {(0, 2): 6.0, (1, 1): 6.0, (2, 0): 2.0, (3, 0): 3.0}.items():
    seed_R[state, produced] = one_cost
    on_hand = state + produced
    seed_P[state, produced, on_hand - 1] += 0.5  # demand 1
    seed_P[state, produced, on_hand - 2] += 0.5  # demand 2

# When a function fails its test, the test asks whether it would pass with the policy
# before beta, so that the message can name that mistake rather than its side effects.
# name: (the arguments after R, P, policy, beta, with None for a fresh generator; the
# toy model's right answer for policy (0, 0) and beta = 0.5)
ORDER_PROBES = {
    "evaluate_policy": ((), [8 / 3, 10 / 3]),
    "simulate_run": ((0, 3, None), [2.25]),
    "policy_value_by_simulation": ((0, 3, 5, None), [2.25, 0.0]),
}


def takes_policy_before_beta(name):
    """Whether your function `name` answers the toy model right when it is called with
    the policy before beta: name(R, P, policy, beta, ...)."""
    rest, answer = ORDER_PROBES[name]
    rest = [np.random.default_rng(0) if value is None else value for value in rest]
    try:
        got = globals()[name](toy_R.copy(), toy_P.copy(), [0, 0], 0.5, *rest)
        return bool(np.allclose(np.asarray(got, dtype=float).ravel(), answer))
    except Exception:
        return False


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# With `states = np.arange(S)` and `actions = np.array([policy[s] for s in states])`,
# `R[states, actions]` is $r_\pi$ and `P[states, actions]` is $P_\pi$; then
# `np.linalg.solve(np.eye(S) - beta * P_pi, r_pi)`.
# </details>


# %% nbgrader="answer" grade_id="evaluate_policy"
def evaluate_policy(R, P, beta, policy):
    """Exact V_pi: solve (I - beta P_pi) V = r_pi for the policy choosing column policy[s]."""
    ### BEGIN SOLUTION
    R, P = np.asarray(R, dtype=float), np.asarray(P, dtype=float)
    states = np.arange(R.shape[0])
    chosen = np.asarray(policy, dtype=int)
    r_pi = R[states, chosen]
    P_pi = P[states, chosen]
    return np.linalg.solve(np.eye(states.size) - beta * P_pi, r_pi)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_evaluate_policy" points=2 title="Exercise 5: exact policy evaluation"
# Visible tests
R_given, P_given, policy_given = toy_R.copy(), toy_P.copy(), [0, 0]
try:
    V = evaluate_policy(R_given, P_given, 0.5, policy_given)
except Exception as error:
    assert not takes_policy_before_beta("evaluate_policy"), (
        "evaluate_policy takes the policy before beta; the order is evaluate_policy(R, P, "
        "beta, policy): the model first, then the policy"
    )
    if isinstance(error, np.linalg.LinAlgError):
        raise AssertionError(
            f"evaluate_policy met a singular matrix ({error}): I - P_pi is singular for "
            "every policy (its rows sum to 0), so the discount beta must multiply P_pi"
        ) from None
    raise
for name, given, original in [
    ("R", R_given, toy_R),
    ("P", P_given, toy_P),
    ("policy", policy_given, [0, 0]),
]:
    assert np.array_equal(given, original), (
        f"evaluate_policy changed its argument {name} in place; the caller still needs it as "
        "it was: work on a copy"
    )
V = np.asarray(V, dtype=float).reshape(-1)  # a row or column matrix counts as a vector
assert V.shape == (2,), f"one value per state: expected 2 values, got {V.size}"
if not np.allclose(V, [8 / 3, 10 / 3]):
    assert not takes_policy_before_beta("evaluate_policy"), (
        "evaluate_policy takes the policy before beta; the order is evaluate_policy(R, P, "
        "beta, policy): the model first, then the policy"
    )
# Toy model, policy (0, 0), beta = 0.5: the usual mistakes first.
assert not np.allclose(V, [0, 2]), (
    "a sign is wrong: V = r_pi + beta P_pi V, so solve (I - beta P_pi) V = r_pi"
)
assert not np.allclose(V, [65 / 9, 70 / 9]), (
    "these are the values for beta = 0.8, the course's discount: use the argument beta (here 0.5)"
)
assert not np.allclose(V, [1, 2]), (
    "only the first period is counted; the discounted future beta P_pi V is missing"
)
assert np.allclose(V, [8 / 3, 10 / 3]), (
    "toy model, policy (0, 0), beta=0.5: costs alternate 1, 2, 1, 2, ... so "
    f"V = ((1 + 2*0.5) / 0.75, (2 + 0.5) / 0.75) = (2.667, 3.333); got {V}"
)
V = np.asarray(evaluate_policy(toy_R, toy_P, 0.5, (1, 0)), dtype=float).reshape(-1)
assert not np.allclose(V, [6.4, 3.6]), (
    "toy model, policy (1, 0): P_pi is used transposed; row s of P_pi is the distribution of "
    "the next state from s"
)
assert np.allclose(V, [5.6, 4.8]), (
    f"toy model, policy (1, 0), beta=0.5: expected (5.6, 4.8), got {V}"
)
V = evaluate_policy(seed_R, seed_P, 0.8, np.array([2, 1, 0, 0]))
V = np.asarray(V, dtype=float).reshape(-1)
assert np.allclose(V, [30, 30, 26, 25.4]) or not np.allclose(V, [30, 30, 26, 25.4], rtol=1e-3), (
    f"course warehouse, policy (2, 1, 0, 0), beta=0.8: got {V}, close to (30, 30, 26, 25.4) "
    "but not accurate to 1e-5; an iteration that stops too early? np.linalg.solve gives "
    "the values exactly"
)
assert np.allclose(V, [30, 30, 26, 25.4]), (
    f"course warehouse, policy (2, 1, 0, 0), beta=0.8: expected (30, 30, 26, 25.4), got {V}"
)
V = np.asarray(evaluate_policy(seed_R, seed_P, 0.0, [2, 1, 0, 0]), dtype=float).reshape(-1)
assert np.allclose(V, [6, 6, 2, 3]), "with beta=0 only the first period counts: V = r_pi"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_evaluate_policy

check_evaluate_policy(evaluate_policy)
### END HIDDEN TESTS

# %% [markdown]
# ### Is $(2, 1, 0, 0)$ optimal?
#
# The read-only cell below evaluates both policies on the model you built and then looks
# one period ahead: for every pair it computes
# $Q(s, a) = r(s, a) + \beta \sum_{s'} P(s' \mid s, a)\, V_\pi(s')$, the cost of doing $a$
# now and following $\pi$ afterwards. If $V_\pi$ satisfies the optimality equation, no
# $Q(s, a)$ is below $V_\pi(s)$ and the policy is optimal. For $(2, 1, 0, 0)$ you should see
# $V_\pi = (30, 30, 26, 25.4)$ and better actions in states 0 and 1, the ones that
# $(4, 3, 0, 0)$ takes; for $(4, 3, 0, 0)$ the optimality equation holds. Lab 04 turns this
# observation into an algorithm, policy iteration.

# %% nbgrader="locked" grade_id="look_ahead"
course_model = build_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})
course_R, course_P = (np.asarray(x, dtype=float) for x in course_model)
for looked_policy in [(2, 1, 0, 0), (4, 3, 0, 0)]:
    if not np.all(np.isfinite(course_R[np.arange(4), list(looked_policy)])):
        print(f"policy {looked_policy} is infeasible in your model: check build_model first")
        continue
    V_pi = np.asarray(evaluate_policy(course_R, course_P, 0.8, looked_policy), dtype=float)
    Q = course_R + 0.8 * course_P @ V_pi  # Q[s, a]; infeasible pairs stay at inf
    print(f"policy {looked_policy}: V_pi = {np.round(V_pi, 4)}")
    print("  Q(s, a) for a =", " ".join(f"{a:7d}" for a in range(Q.shape[1])), "   best a")
    for state, q_row in enumerate(Q):
        shown = " ".join(f"{q:7.2f}" if np.isfinite(q) else "      -" for q in q_row)
        print(f"  s = {state}          ", shown, f"{q_row.argmin():9d}")
    print()

# %% [markdown]
# ## 4 · What does a policy cost? Asking a simulator
#
# Solving the linear system needs the whole of $P$. Often we only have a **simulator**: a
# program that plays one period forward from a state and an action (a digital twin of the
# warehouse, say). Then we can estimate $V_\pi(s)$ by **Monte Carlo**: run the system from
# $s$ many times, compute each run's discounted cost, and average.
#
# A run cannot last forever. Stop it after $T$ periods (periods $t = 0, \dots, T - 1$). If
# every one-period cost lies in $[0, c_{\max}]$, the costs we ignore add up to at most
# $\beta^T c_{\max} / (1 - \beta)$ (the tail bound of Lab 00), so choosing $T$ with
# `periods_needed(c_max, beta, tolerance)` (your Lab 00 function, given below) makes the
# truncation bias smaller than `tolerance`.
#
# Randomness comes from a numpy **generator** `rng = np.random.default_rng(seed)`, passed
# to your functions. Draw every random number from it, for instance
# `rng.choice(len(row), p=row)`, which returns index $i$ with probability `row[i]`. Two
# generators made with the same seed then give exactly the same runs, which makes results
# reproducible and tests possible.


# %% nbgrader="locked" grade_id="periods_needed"
def periods_needed(c_max, beta, tolerance):
    """Smallest T >= 0 with beta**T * c_max / (1 - beta) < tolerance (Lab 00, Exercise 2)."""
    if not np.isfinite(c_max):
        raise ValueError(f"c_max must be a finite number, got {c_max}")
    horizon, tail = 0, c_max / (1.0 - beta)
    while tail >= tolerance:
        horizon, tail = horizon + 1, tail * beta
    return horizon


print("course warehouse, c_max = 8, beta = 0.8, tolerance 0.01:", periods_needed(8, 0.8, 0.01))


# %% [markdown]
# ### Exercise 6 (autograded): one simulated run
#
# Write `simulate_run(R, P, beta, policy, start, horizon, rng)` that simulates one run of
# `horizon` periods under `policy`, starting in state `start`, and returns its discounted
# cost $\sum_{t=0}^{T-1} \beta^t\, r(s_t, \pi(s_t))$ as a number. In period $t$: take the
# action $a = \pi(s_t)$, add the discounted cost of $(s_t, a)$, then draw $s_{t+1}$ from the
# row `P[s_t, a]` with `rng`. A horizon of 0 costs nothing.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Keep `total = 0.0`, `discount = 1.0` and `s = start`. In each of `horizon` periods:
# `a = policy[s]`, `total += discount * R[s, a]`, `s = rng.choice(len(P[s, a]), p=P[s, a])`
# and `discount *= beta`. Draw from the row of the state you are in, before moving on.
# </details>


# %% nbgrader="answer" grade_id="simulate_run"
def simulate_run(R, P, beta, policy, start, horizon, rng):
    """Discounted cost of one simulated run of `horizon` periods from `start` under `policy`."""
    ### BEGIN SOLUTION
    state, total, weight = start, 0.0, 1.0
    for _ in range(horizon):
        action = policy[state]
        total += weight * R[state, action]
        state = rng.choice(len(P[state, action]), p=P[state, action])
        weight *= beta
    return total
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_simulate_run" points=2 title="Exercise 6: one simulated run"
# Visible tests
rng = np.random.default_rng(0)
R_given, P_given, policy_given = toy_R.copy(), toy_P.copy(), [0, 0]
try:
    got = float(simulate_run(R_given, P_given, 0.5, policy_given, 0, 3, rng))
except Exception:
    got = None
if got is None or not np.isclose(got, 2.25):
    assert not takes_policy_before_beta("simulate_run"), (
        "simulate_run takes the policy before beta; the order is simulate_run(R, P, beta, "
        "policy, start, horizon, rng): the model first, then the policy and the run"
    )
if got is None:
    got = float(simulate_run(R_given, P_given, 0.5, policy_given, 0, 3, rng))  # its error
for name, given, original in [
    ("R", R_given, toy_R),
    ("P", P_given, toy_P),
    ("policy", policy_given, [0, 0]),
]:
    assert np.array_equal(given, original), f"simulate_run changed its argument {name} in place"
# Under policy (0, 0) the toy model moves 0 -> 1 -> 0 -> ... for sure, so a run of 3
# periods from state 0 costs 1 + 0.5*2 + 0.25*1 = 2.25. What the usual mistakes give:
usual_mistakes = {
    4.0: "the costs are added up without the discount beta**t",
    1.125: "every cost is discounted once too often; period 0 has weight beta**0 = 1",
    2.5: "one period too many: a horizon of 3 covers periods 0, 1 and 2",
    2.0: "one period too few: a horizon of 3 covers periods 0, 1 and 2",
    3.0: "each period is charged the cost of the state it moves to; period t costs "
    "r(s_t, pi(s_t)) for the state s_t it starts in",
    1.75: "the state never changes; draw the next state from the row P[s, pi(s)] every period",
}
for wrong, mistake in usual_mistakes.items():
    assert not np.isclose(got, wrong), (
        f"toy model, policy (0, 0), start 0, 3 periods: got {got}: {mistake}"
    )
assert np.isclose(got, 2.25), (
    f"toy model, policy (0, 0), start 0, 3 periods: 1 + 0.5*2 + 0.25*1 = 2.25, got {got}"
)
assert np.isclose(simulate_run(toy_R, toy_P, 0.5, [0, 0], 1, 2, rng), 2.5), (
    "toy model, policy (0, 0), start 1, 2 periods: 2 + 0.5*1 = 2.5"
)
assert np.isclose(simulate_run(toy_R, toy_P, 0.5, [0, 0], 1, 0, rng), 0), "0 periods cost nothing"
assert np.isclose(simulate_run(toy_R, toy_P, 0.0, [0, 0], 1, 5, rng), 2), (
    "with beta=0 only period 0 counts"
)
first = [simulate_run(toy_R, toy_P, 0.5, [1, 0], 0, 10, np.random.default_rng(7)) for _ in range(3)]
again = [simulate_run(toy_R, toy_P, 0.5, [1, 0], 0, 10, np.random.default_rng(7)) for _ in range(3)]
assert first == again, (
    "runs with generators seeded alike must agree: draw every random number from rng "
    "(not from np.random or the random module)"
)
rng = np.random.default_rng(1)
runs = np.array([simulate_run(toy_R, toy_P, 0.5, [1, 0], 0, 13, rng) for _ in range(1000)])
assert runs.std() > 0, (
    "all runs under policy (1, 0) cost the same, but the next state from state 0 is random: "
    "draw it from the row P[s, pi(s)] with rng (e.g. rng.choice(len(row), p=row))"
)
assert abs(runs.mean() - 5.6) < 5 * runs.std() / np.sqrt(runs.size) + 1e-3, (
    f"toy model, policy (1, 0), start 0: the average of 1000 runs ({runs.mean():.4f}) should be "
    "close to V(0) = 5.6"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_simulate_run

check_simulate_run(simulate_run)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 7 (autograded): the Monte Carlo estimate and its standard error
#
# Write `policy_value_by_simulation(R, P, beta, policy, start, horizon, n_runs, rng)` that
# calls `simulate_run` `n_runs` times (at least 2) with the same `rng` and returns the pair
# `(estimate, standard_error)`: the average of the runs' discounted costs, and the sample
# standard deviation of those costs (`ddof=1`) divided by $\sqrt{n}$. The interval
# `estimate ± 1.96 * standard_error` then covers the truncated value about 95% of the time.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# `costs = np.array([simulate_run(R, P, beta, policy, start, horizon, rng) for _ in
# range(n_runs)])`, then `costs.mean()` and `costs.std(ddof=1) / np.sqrt(n_runs)`. Pass the
# same `rng` to every run; a new generator per run would repeat the same draws.
# </details>


# %% nbgrader="answer" grade_id="policy_value_by_simulation"
def policy_value_by_simulation(R, P, beta, policy, start, horizon, n_runs, rng):
    """(estimate, standard error) of V_pi(start) from n_runs simulated runs."""
    ### BEGIN SOLUTION
    runs = np.array([simulate_run(R, P, beta, policy, start, horizon, rng) for _ in range(n_runs)])
    return runs.mean(), runs.std(ddof=1) / np.sqrt(n_runs)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_policy_value_by_simulation" points=1 title="Exercise 7: Monte Carlo estimate"
# Visible tests
R_given, P_given, policy_given = toy_R.copy(), toy_P.copy(), [0, 0]
try:
    estimate, standard_error = policy_value_by_simulation(
        R_given, P_given, 0.5, policy_given, 0, 3, 5, np.random.default_rng(0)
    )
except Exception:
    assert not takes_policy_before_beta("policy_value_by_simulation"), (
        "policy_value_by_simulation takes the policy before beta; the order is "
        "policy_value_by_simulation(R, P, beta, policy, start, horizon, n_runs, rng)"
    )
    raise
if not (np.isclose(estimate, 2.25) and np.isclose(standard_error, 0)):
    assert not takes_policy_before_beta("policy_value_by_simulation"), (
        "policy_value_by_simulation takes the policy before beta; the order is "
        "policy_value_by_simulation(R, P, beta, policy, start, horizon, n_runs, rng)"
    )
for name, given, original in [
    ("R", R_given, toy_R),
    ("P", P_given, toy_P),
    ("policy", policy_given, [0, 0]),
]:
    assert np.array_equal(given, original), (
        f"policy_value_by_simulation changed its argument {name} in place"
    )
assert not (np.isclose(estimate, 0) and np.isclose(standard_error, 2.25)), (
    "the pair comes in the order (estimate, standard_error); yours is the other way round"
)
one_run = float(simulate_run(toy_R, toy_P, 0.5, [0, 0], 0, 3, np.random.default_rng(0)))
assert np.isclose(one_run, 2.25), (
    f"toy model, policy (0, 0): every run costs 2.25, but your simulate_run gives {one_run}: "
    "fix simulate_run first"
)
assert not np.isclose(estimate, 3.24), (
    "toy model, policy (0, 0), beta=0.5: the estimate 3.24 is the cost of the run with "
    "beta = 0.8, the course's discount: pass the argument beta on to simulate_run"
)
assert np.isclose(estimate, 2.25), "toy model, policy (0, 0): every run costs 2.25"
assert np.isclose(standard_error, 0), "identical runs have a standard error of 0"
estimate, standard_error = policy_value_by_simulation(
    toy_R, toy_P, 0.5, [1, 0], 0, 13, 400, np.random.default_rng(3)
)
if np.isclose(standard_error, 0):  # every run cost the same: find out why
    rng = np.random.default_rng(3)
    runs = [simulate_run(toy_R, toy_P, 0.5, [1, 0], 0, 13, rng) for _ in range(20)]
    assert np.ptp(runs) > 0, (
        "your simulate_run gives every run under policy (1, 0) the same cost, but the next "
        "state from state 0 is random: fix simulate_run first"
    )
    raise AssertionError(
        "toy model, policy (1, 0), 400 runs: the runs are identical (standard error 0), "
        "though simulate_run varies with rng: pass the generator rng you were given to every "
        "call (a new generator made from one seed repeats the same run)"
    )
# The exact standard deviation of one run is about 0.218, so the standard error is near 0.011.
assert not 0.15 < standard_error < 0.3, (
    f"toy model, policy (1, 0), 400 runs: got {standard_error:.4g}, the standard deviation of "
    "one run; the standard error of the average divides it by sqrt(n_runs)"
)
assert not 0.00006 < standard_error < 0.00025, (
    f"toy model, policy (1, 0), 400 runs: got {standard_error:.4g}, the variance divided by "
    "n_runs; the standard error is its square root, sd / sqrt(n_runs)"
)
assert not 0.0004 < standard_error < 0.0008, (
    f"toy model, policy (1, 0), 400 runs: got {standard_error:.4g}: the standard deviation is "
    "divided by n_runs; divide it by sqrt(n_runs)"
)
assert 0.0075 < standard_error < 0.016, (
    f"toy model, policy (1, 0), 400 runs: the standard error should be near 0.011, "
    f"got {standard_error:.4g} (sample standard deviation divided by sqrt(n_runs))"
)
assert abs(estimate - 5.6) < 5 * standard_error + 1e-3, (
    f"toy model, policy (1, 0): the estimate {estimate:.4f} should be close to V(0) = 5.6"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab02 import check_policy_value_by_simulation

check_policy_value_by_simulation(policy_value_by_simulation, simulate_run=simulate_run)
### END HIDDEN TESTS

# %% [markdown]
# ### Watching the estimate converge
#
# The read-only cell below simulates 2,000 runs from an empty warehouse under each policy,
# with a horizon that makes the truncation bias below 0.01, and draws the running average
# with its 95% band against the exact value from your `evaluate_policy`. Two things to
# notice. Under $(4, 3, 0, 0)$ the band shrinks like $1/\sqrt{n}$: four times as many runs
# halve its width. Under $(2, 1, 0, 0)$ every run from state 0 costs the same, so there is
# no band at all; can you see from the heatmap of $P_\pi$ in section 3 why?

# %% nbgrader="locked" grade_id="plot_convergence" autograde="skip"
course_model = build_model(3, 4, 1, 1, {1: 0.5, 2: 0.5})
course_R, course_P = (np.asarray(x, dtype=float) for x in course_model)
rng = np.random.default_rng(2026)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for colour, shown_policy in zip(
    ["tab:orange", "tab:blue"], [(2, 1, 0, 0), (4, 3, 0, 0)], strict=True
):
    r_pi = course_R[np.arange(4), list(shown_policy)]
    if not np.all(np.isfinite(r_pi)):
        print(f"pi = {shown_policy} is infeasible in your model: check build_model first")
        continue
    horizon = periods_needed(r_pi.max(), 0.8, 0.01)
    exact = np.asarray(evaluate_policy(course_R, course_P, 0.8, shown_policy), dtype=float)[0]
    runs = np.array(
        [simulate_run(course_R, course_P, 0.8, shown_policy, 0, horizon, rng) for _ in range(2000)]
    )
    counts = np.arange(1, runs.size + 1)
    running_mean = np.cumsum(runs) / counts
    spread = np.maximum(np.cumsum(runs**2) - counts * running_mean**2, 0.0)
    running_se = np.sqrt(spread[1:] / (counts[1:] - 1)) / np.sqrt(counts[1:])
    axes[0].plot(counts, running_mean, color=colour, label=f"running average, pi = {shown_policy}")
    axes[0].fill_between(
        counts[1:],
        running_mean[1:] - 1.96 * running_se,
        running_mean[1:] + 1.96 * running_se,
        color=colour,
        alpha=0.25,
    )
    axes[0].axhline(
        exact, color=colour, linestyle="--", linewidth=1, label=f"exact V(0) = {exact:.4f}"
    )
    if np.ptp(runs) > 1e-9 * abs(exact):  # the runs differ (beyond rounding)
        axes[1].hist(runs, bins=30, color=colour, alpha=0.6, label=f"pi = {shown_policy}")
        axes[1].axvline(exact, color=colour, linestyle="--", linewidth=1)
    else:
        axes[1].axvline(
            runs[0],
            color=colour,
            linewidth=2,
            label=f"pi = {shown_policy}: every run costs {runs[0]:.3f}",
        )
axes[0].set(
    xscale="log",
    xlabel="number of runs n",
    ylabel="estimate of V(0)",
    title="Monte Carlo estimate with a 95% band",
)
axes[0].legend(fontsize=8)
axes[1].set(
    xlabel="discounted cost of one run",
    ylabel="number of runs",
    title="costs of the 2,000 runs from state 0",
)
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Question 2 (written)
#
# In three to five sentences: why is $V_\pi(s)$ finite although the warehouse runs forever,
# and what would go wrong with $\beta = 1$ (think of the sum of costs, and of the matrix
# $I - \beta P_\pi$)? Explain also why simulating only $T$ periods is good enough, and how
# you would choose $T$ for a given accuracy.

# %% [markdown] nbgrader="written" grade_id="why_finite" points=1 title="Question 2: why the value is finite"
# ### BEGIN SOLUTION
# Every one-period cost lies between 0 and c_max (finitely many states and actions), and the
# cost of period t is weighted by β^t, so V_π(s) ≤ Σ_t β^t c_max = c_max / (1 − β) < ∞: the
# geometric series converges because β < 1. With β = 1 the warehouse pays at least a positive
# amount every period under (2, 1, 0, 0) (at least 2 per period), so the total cost is
# infinite; correspondingly I − P_π is singular, since P_π 1 = 1 means (I − P_π) 1 = 0, and
# the Bellman equation of the policy no longer has a unique solution. A run stopped after T
# periods misses at most β^T c_max / (1 − β) of the cost, which shrinks geometrically; choose
# the smallest T that makes this bound smaller than the accuracy wanted (periods_needed from
# Lab 00), and in practice well below the standard error of the Monte Carlo estimate.
#
# Rubric (1 point): ½ for V_π(s) ≤ Σ_t β^t c_max = c_max/(1 − β), from bounded costs and
# β < 1, and for β = 1: the costs are at least 2 a period, so the sum diverges, and
# (I − P_π) 1 = 0 (rows of P_π sum to 1) makes I − P_π singular; ½ for the tail bound
# β^T c_max/(1 − β) and T chosen as the smallest number of periods that puts it below the
# accuracy wanted. "Because β < 1" without the geometric series earns nothing, and "the
# matrix is singular" without a reason does not complete the first half.
# ### END SOLUTION

# %% [markdown]
# ## Summary
#
# - A discounted MDP has states $S$, feasible actions $A(s)$, one-period costs $r(s, a)$,
#   transition probabilities $P(s' \mid s, a)$ that depend only on the current state and
#   action (Markov), are the same in every period (stationary), and a discount factor
#   $\beta \in [0, 1)$.
# - The warehouse: the state is the starting inventory, the action the production quantity;
#   an action is feasible when it meets the largest demand and leaves at most $C$ units
#   after the smallest one; $r(s, a) = K[a > 0] + c\,a + h\,s$ and
#   $P(s' \mid s, a) = p_D(s + a - s')$.
# - A policy's value solves the linear Bellman equation $(I - \beta P_\pi) V_\pi = r_\pi$;
#   for the course's warehouse, $(2, 1, 0, 0)$ costs $V = (30, 30, 26, 25.4)$.
# - Monte Carlo estimates the same value from simulated runs, with a standard error
#   $\hat\sigma / \sqrt{n}$; truncating runs after $T$ periods costs at most
#   $\beta^T c_{\max} / (1 - \beta)$.
# - The optimal values solve the Bellman optimality equation, with a minimum over actions.
#   Looking one period ahead already shows that $(2, 1, 0, 0)$ can be improved.
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
# Next: **Lab 03** solves the optimality equation as a linear program; Labs 04 and 05 solve
# it by policy iteration and by value iteration.
