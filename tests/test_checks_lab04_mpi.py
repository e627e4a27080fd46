"""The hidden check of lab04's modified policy iteration judges against a reference written
in the check module; that reference must be mdplab's solver, step for step."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mdplab.checks import lab04
from mdplab.checks.common import HiddenCheckFailure
from mdplab.value_iteration import modified_policy_iteration


def _agree(case: lab04.Case, k: int) -> None:
    policy, V, steps = lab04.reference_modified_policy_iteration(case.R, case.P, case.beta, k)
    solved = modified_policy_iteration(case.mdp, k=k, epsilon=lab04.MPI_EPSILON, backend="numpy")
    assert steps == solved.iterations
    np.testing.assert_allclose(V, solved.values, rtol=1e-12, atol=1e-12)
    assert [int(a) for a in policy] == [int(a) for a in solved.policy]


def test_the_reference_is_mdplabs_solver_on_the_checks_own_cases():
    for case, k in lab04._mpi_cases(lab04.SEED + 6):
        _agree(case, k)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([0, 1, 3, 10, 60]))
def test_the_reference_is_mdplabs_solver_on_random_models(seed, k):
    case = lab04.random_tabular(np.random.default_rng(seed))
    assume(case.beta > 0)  # the exercise is for 0 < beta < 1; the check skips beta = 0
    _agree(case, k)


def test_every_named_mistake_is_told_apart_from_the_reference():
    """Each mistake of MPI_MISTAKES changes the values or the step count on some case of the
    check, so the check can name it (negative control of the diagnosis)."""
    cases = lab04._mpi_cases(lab04.SEED + 6)
    for mistake, _ in lab04.MPI_MISTAKES:
        differs = False
        for case, k in cases:
            _, V, steps = lab04.reference_modified_policy_iteration(case.R, case.P, case.beta, k)
            _, wrong_V, wrong_steps = lab04.reference_modified_policy_iteration(
                case.R, case.P, case.beta, k, mistake=mistake
            )
            if wrong_steps != steps or not np.allclose(V, wrong_V, rtol=1e-7, atol=1e-9):
                differs = True
                break
        assert differs, mistake


def test_the_check_names_a_mistake_in_the_students_terms():
    def k_plus_one(R, P, beta, k, epsilon=0.01, max_iter=10_000):
        return lab04.reference_modified_policy_iteration(R, P, beta, k + 1)

    try:
        lab04.check_modified_policy_iteration(k_plus_one)
    except HiddenCheckFailure as failure:
        assert "k + 1 partial evaluation sweeps" in str(failure)
    else:
        raise AssertionError("k + 1 sweeps passed the check")
