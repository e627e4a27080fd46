# %% [markdown]
# {{colab_badge}}
#
# # Lab 00 · Orientation: how the MDP Labs work
#
# This short lab shows you how every lab in the series is organised, how to check your own
# work, and how to hand it in. Along the way you write two small functions about
# **discounted costs**, the idea that the rest of the series is built on.
#
# **Learning goals.** After this lab you can
# 1. open a lab in Google Colab or JupyterLab and run it from top to bottom;
# 2. tell the read-only cells, the TODO cells and the test cells apart;
# 3. compute the discounted cost of a stream of costs, and bound what an infinite stream
#    can cost when the discount factor is below one;
# 4. download your notebook and hand it in so that it can be graded.
#
# **Points.**
#
# {{points_table}}
#
# Autograded parts are checked by the visible tests you can run here and by hidden tests
# that call your functions on other inputs. Written parts are read by your instructor.

# %% [markdown]
# ## 1 · How a lab is organised
#
# A lab mixes explanations with three kinds of code cell:
#
# - **Read-only cells** set things up (imports, data, plotting helpers). Run them; do not
#   edit them.
# - **TODO cells** contain `raise NotImplementedError()` under a `# YOUR CODE HERE` line.
#   Replace those two lines with your code. Keep the function's name and its arguments:
#   the grader calls them.
# - **Test cells** start with `# Visible tests`. Run them after your TODO cell. A test
#   cell that finishes silently has passed; one that fails says what went wrong. When
#   the lab is graded, each test cell also runs hidden checks on cases you have not seen,
#   so write functions that work for any valid input, not only for the examples.
#
# Some questions ask for a short written answer in a markdown cell that says
# `YOUR ANSWER HERE`. Double-click it (in Colab: click it), write your answer, and run it.
#
# ### Running a lab
#
# | | Google Colab | JupyterLab |
# |---|---|---|
# | open | click the *Open in Colab* badge at the top | open the `.ipynb` file from `labs/` |
# | run one cell | Shift+Enter | Shift+Enter |
# | run everything from a clean start | *Runtime → Restart session and run all* | *Kernel → Restart Kernel and Run All Cells* |
# | keep your work | *File → Save a copy in Drive* | *File → Save* |
#
# Cells share one Python session, so the order in which you run them matters. When
# something behaves strangely, restart and run all: that is also exactly what the grader
# does with your notebook.
#
# The next cell is read-only. It tells you where you are running and which versions of
# the libraries you have.

# %% nbgrader="locked" grade_id="setup"
import sys

import numpy as np

IN_COLAB = "google.colab" in sys.modules
print(
    "Running in", "Google Colab" if IN_COLAB else "Jupyter", "with Python", sys.version.split()[0]
)
print("numpy", np.__version__)

# %% [markdown]
# ## 2 · Discounted costs
#
# The labs study decisions that repeat period after period: how much a warehouse should
# produce, how many servers a service should run. Each period $t = 0, 1, 2, \dots$ brings a
# cost $c_t$. A cost paid $t$ periods from now counts less than a cost paid today: it is
# weighted by $\beta^t$, where the **discount factor** $\beta$ lies in $[0, 1)$. The
# **discounted cost** of the stream $c_0, c_1, \dots, c_{T-1}$ is
#
# $$
# C_\beta(c) \;=\; \sum_{t=0}^{T-1} \beta^t \, c_t \;=\; c_0 + \beta c_1 + \beta^2 c_2 + \dots
# $$
#
# With $\beta = 0.8$ and the costs $(6, 6, 2)$, for example,
# $C_\beta = 6 + 0.8 \cdot 6 + 0.64 \cdot 2 = 12.08$.
#
# ### Exercise 1 (autograded)
#
# Write `discounted_cost(costs, beta)` that returns $C_\beta(c)$ as a float. `costs` is
# any sequence of numbers (a list, a tuple or a numpy array, possibly empty) and `beta` a
# number in $[0, 1)$. Note that $\beta^0 = 1$, also when $\beta = 0$.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# A loop works: `total += beta ** t * c` for `t, c in enumerate(costs)`. With numpy,
# `beta ** np.arange(len(costs))` is the vector of weights, and its dot product with the
# costs is the answer. An empty sequence costs 0.0.
# </details>


# %% nbgrader="answer" grade_id="discounted_cost"
def discounted_cost(costs, beta):
    """Return sum_t beta**t * costs[t] for t = 0, 1, ..., len(costs) - 1."""
    ### BEGIN SOLUTION
    costs = np.asarray(costs, dtype=float)
    weights = beta ** np.arange(costs.size, dtype=float)
    return float(weights @ costs)
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_discounted_cost" points=2 title="Exercise 1: discounted cost"
# Visible tests
costs = [6, 6, 2]
result = discounted_cost(costs, 0.8)
assert costs == [6, 6, 2], (
    f"discounted_cost changed its argument costs in place (it is now {costs}): leave the "
    "caller's list as it is"
)
assert np.ndim(result) == 0, (
    f"discounted_cost returned {np.size(result)} numbers, not one: return the sum of the "
    "discounted costs"
)
result = float(result)  # any number is fine: a numpy float, a Fraction, ...
# What the usual mistakes give for the costs (6, 6, 2) with beta = 0.8:
assert not np.isclose(result, 14), "you get 6 + 6 + 2 = 14: the costs are not discounted"
assert not np.isclose(result, 0.8 * 12.08), (
    "you get 9.664 = 0.8 * 12.08: every cost is discounted once too often; the first cost "
    "has weight beta**0 = 1"
)
assert not np.isclose(result, 0.64 * 6 + 0.8 * 6 + 2), (
    "you get 0.64*6 + 0.8*6 + 2 = 10.64: the weights run backwards, so the last cost is not "
    "discounted; the cost of period t has weight beta**t"
)
assert not np.isclose(result, 0.8 * 6 + 0.64 * 2), (
    "you get 0.8*6 + 0.64*2 = 6.08: the first cost (period t = 0, weight 1) is left out"
)
assert np.isclose(result, 12.08), (
    "discounted_cost([6, 6, 2], 0.8) should be 6 + 0.8*6 + 0.64*2 = 12.08"
)
assert np.isclose(float(discounted_cost([5.0], 0.3)), 5.0), "the first cost is not discounted"
try:
    empty = discounted_cost([], 0.9)
except IndexError as error:
    raise AssertionError(
        f"discounted_cost([], 0.9) raised IndexError ({error}): an empty stream has no "
        "first cost to start from, and its discounted cost is 0"
    ) from None
assert np.isclose(float(empty), 0.0), "an empty stream costs nothing"
try:
    only_first = float(discounted_cost([1, 1, 1], 0.0))
except (ValueError, ZeroDivisionError) as error:
    raise AssertionError(
        f"discounted_cost([1, 1, 1], 0.0) raised {type(error).__name__} ({error}): with "
        "beta = 0 the weights are 1, 0, 0 (beta**0 = 1); compute them as beta**t, since "
        "log(0) is undefined"
    ) from None
assert not np.isclose(only_first, 1 + 0.8 + 0.64), (
    "discounted_cost([1, 1, 1], 0.0) is 1 + 0.8 + 0.64: the weights use the course's 0.8 "
    "instead of the argument beta"
)
assert np.isclose(only_first, 1.0), "with beta = 0 only the first cost counts (beta**0 = 1)"
array = np.array([6.0, 6.0, 2.0])
try:
    result = float(discounted_cost(array, 0.8))
except Exception as error:
    raise AssertionError(
        f"discounted_cost works on a list but raised {type(error).__name__} ({error}) on the "
        "numpy array np.array([6.0, 6.0, 2.0]): costs may be a list, a tuple or a numpy array"
    ) from None
assert np.array_equal(array, [6.0, 6.0, 2.0]), (
    f"discounted_cost changed its argument costs (a numpy array) in place: it is now "
    f"{array.tolist()}; work on a copy"
)
assert np.isclose(result, 12.08), "with costs as a numpy array the answer is 12.08 too"
### BEGIN HIDDEN TESTS
from mdplab.checks.lab00 import check_discounted_cost

check_discounted_cost(discounted_cost)
### END HIDDEN TESTS

# %% [markdown]
# ## 3 · Why an infinite horizon still has a finite cost
#
# If every cost lies between $0$ and $c_{\max}$, then however long the stream runs,
# $$
# 0 \;\le\; \sum_{t=0}^{\infty} \beta^t c_t \;\le\; c_{\max} \sum_{t=0}^{\infty} \beta^t
# \;=\; \frac{c_{\max}}{1 - \beta}.
# $$
# The same geometric series tells us how much the periods from $T$ onwards can still
# contribute: at most $\beta^T c_{\max} / (1 - \beta)$. This *tail bound* is how value
# iteration, later in the series, knows when it may stop.
#
# ### Exercise 2 (autograded)
#
# Write `periods_needed(c_max, beta, tolerance)` that returns the smallest whole number
# $T \ge 0$ for which the tail bound $\beta^T c_{\max} / (1 - \beta)$ is **strictly
# below** `tolerance`. Assume $c_{\max} \ge 0$, $0 \le \beta < 1$ and `tolerance` $> 0$.
# For example, with $c_{\max} = 8$, $\beta = 0.8$ and a tolerance of $1$, the bounds for
# $T = 0, 1, 2, \dots$ are $40, 32, 25.6, \dots$, and the answer is $T = 17$.
#
# *Hint:* a loop is fine. If you prefer a formula, take care of the rounding and of the
# edge cases $c_{\max} = 0$ and $\beta = 0$.


# %% [markdown]
# <details><summary>Hint (click to open)</summary>
#
# Start with `T = 0` and `bound = c_max / (1 - beta)`; while `bound >= tolerance`, add one
# to `T` and multiply `bound` by `beta`. The loop always ends: the bound shrinks by the
# factor `beta < 1`, and with `c_max = 0` or `beta = 0` it is small after at most one step.
# </details>


# %% nbgrader="answer" grade_id="periods_needed"
def periods_needed(c_max, beta, tolerance):
    """Return the smallest T >= 0 with beta**T * c_max / (1 - beta) < tolerance."""
    ### BEGIN SOLUTION
    periods, bound = 0, c_max / (1.0 - beta)
    while bound >= tolerance:
        periods += 1
        bound *= beta
    return periods
    ### END SOLUTION


# %% nbgrader="tests" grade_id="test_periods_needed" points=2 title="Exercise 2: tail bound"
# Visible tests
periods = periods_needed(8, 0.8, 1)  # a whole number of any type: 17.0 is 17
# What the usual mistakes give for c_max=8, beta=0.8, tolerance=1:
assert periods != 16, (
    "periods_needed(8, 0.8, 1) is 16, one period too few: at T = 16 the tail bound "
    "0.8**16 * 8 / 0.2 = 1.13 is not yet below the tolerance 1"
)
assert periods != 10, (
    "periods_needed(8, 0.8, 1) is 10: the bound beta**T * c_max misses the factor "
    "1 / (1 - beta) of the geometric series"
)
assert periods != 8, (
    "periods_needed(8, 0.8, 1) is 8: c_max is left out of the tail bound "
    "beta**T * c_max / (1 - beta)"
)
assert periods == 17, "with c_max=8, beta=0.8, tolerance=1 the answer is 17"
try:
    periods = periods_needed(0, 0.9, 0.5)
except (ZeroDivisionError, ValueError) as error:
    raise AssertionError(
        f"periods_needed(0, 0.9, 0.5) raised {type(error).__name__} ({error}): with c_max = 0 "
        "every tail bound is 0, so the answer is T = 0; handle c_max = 0 separately"
    ) from None
assert periods != 1, (
    "periods_needed(0, 0.9, 0.5) is 1: a stream that costs nothing needs no periods, since "
    "T counts from 0 and the bound at T = 0 is already 0"
)
assert periods == 0, "a stream that costs nothing needs no periods"
assert periods_needed(1, 0.0, 0.5) == 1, (
    "with beta=0, T=0 gives a bound of 1 (not below 0.5) and T=1 gives 0"
)
### BEGIN HIDDEN TESTS
from mdplab.checks.lab00 import check_periods_needed

check_periods_needed(periods_needed)
### END HIDDEN TESTS

# %% [markdown]
# ### Question (written)
#
# A warehouse manager discounts future costs with $\beta = 0.99$ instead of $\beta = 0.8$.
# In two or three sentences: what does that say about how she weighs next year's costs
# against this month's, and what happens to the bound $c_{\max}/(1-\beta)$?

# %% [markdown] nbgrader="written" grade_id="discount_meaning" points=1 title="Question: what β means"
# ### BEGIN SOLUTION
# With β = 0.99 a cost paid t periods ahead keeps 0.99^t of its weight, so costs far in the
# future matter almost as much as today's: she plans for the long run. The bound grows from
# 5·c_max to 100·c_max, so values are larger and, as later labs show, iterative methods need
# more periods before the tail stops mattering.
#
# Rubric (1 point): ½ for reading β as the weight β^t on a cost t periods ahead, so that
# with β = 0.99 next year's costs keep most of their weight (with monthly periods,
# 0.99^12 ≈ 0.89 against 0.8^12 ≈ 0.07): she is far-sighted; ½ for the bound rising from
# 5·c_max to 100·c_max, twenty times larger. "Future costs count less" without comparing
# the two discount factors earns nothing.
# ### END SOLUTION

# %% [markdown]
# ## 4 · Checking yourself and handing in
#
# Before you hand in:
#
# 1. **Restart and run all** (see the table in section 1). Every cell should run, and
#    every visible test cell should finish without an error. The last cell of every lab is
#    the **hand-in check**: it lists the TODOs still open, the visible tests that fail and
#    any graded cell that went missing or was damaged. (In JupyterLab, save first: it reads
#    the saved file.)
# 2. **Leave the structure alone.** Do not delete, copy, split or merge cells, do not change
#    a cell's type, and do not rename the functions you were asked to write. The grader
#    finds your answers by the cells they are in.
# 3. **Download the notebook as `.ipynb`.** In Colab: *File → Download → Download .ipynb*.
#    In JupyterLab: *File → Download*. Keep the file name the lab gave you
#    (`lab00_orientation.ipynb`); if your browser adds ` (1)` or Colab adds `Copy of`,
#    that is harmless, but a name of your own is not.
# 4. Upload that file where your instructor asks for it.
#
# Passing the visible tests is a good sign, not a guarantee: the hidden tests try other
# inputs. If a visible test fails, its message says what it expected.
#
# ## Summary
#
# - A lab has read-only cells, TODO cells and test cells; restart and run all before you
#   hand in.
# - The discounted cost of a stream weights the cost of period $t$ by $\beta^t$.
# - With $\beta < 1$ and bounded costs, even an infinite stream has a finite cost, at most
#   $c_{\max} / (1 - \beta)$, and the tail from period $T$ on is at most
#   $\beta^T c_{\max}/(1-\beta)$.
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
# Next: **Lab 01** reviews dynamic programming on a warehouse that plans a few periods
# ahead.
