"""The series' numeric policy: which answers every check accepts, and how closely.

One policy for every lab, its visible tests and its hidden checks alike (the visible tests
spell it with numpy alone, since a student's Colab runtime has no ``mdplab``):

* **A number** is anything ``float()`` takes that is a real number: ``int``, ``float``,
  ``fractions.Fraction``, ``decimal.Decimal``, any ``numbers.Real``, numpy integers and
  floats of every width. Exact arithmetic is welcome; it is compared as its float value.
* **Costs and values** (a number, a vector or a table) are compared as float64 arrays with
  ``rtol = 1e-5`` and ``atol = 1e-8`` (:data:`VALUE_RTOL`, :data:`VALUE_ATOL`): the
  defaults of ``np.allclose``, so that a visible test written ``np.allclose(got, right)``
  and a hidden check apply the same rule. float32
  (about 7 significant digits) passes; float16 (about 3) passes only where it happens to
  be exact, and otherwise fails with a message that says *precision*, not logic.
* **Probabilities** are values too, with the same tolerance; a distribution must also sum
  to one within :data:`PROBABILITY_SUM_ATOL` and have no negative entry below
  ``-VALUE_ATOL``.
* **Actions and policies** are whole numbers: ints, numpy integers, or floats and
  Fractions that are whole (``2.0`` is action 2). A fractional action is an error.
* **Containers**: a list, tuple, numpy array (of any dtype above, ``np.matrix`` and masked
  arrays included), pandas Series or DataFrame, or anything ``np.asarray`` reads as numbers.
  A vector may come as a row or column matrix of the same length. A generator, a ``map``
  or a set is not a vector: its message says so.

Ties between actions are any minimiser's: a policy passes when each of its actions is
feasible and attains the minimum within the lab's tie tolerance.
"""

from __future__ import annotations

import decimal
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from mdplab.checks.common import HiddenCheckFailure

VALUE_RTOL = 1e-5
VALUE_ATOL = 1e-8
PROBABILITY_SUM_ATOL = 1e-6


def describe_type(value: Any) -> str:
    """The kind of ``value`` in the words a student uses ("a generator", "a set")."""
    if isinstance(value, Iterator):
        return "a generator (or iterator)"
    if isinstance(value, set | frozenset):
        return "a set"
    if isinstance(value, dict):
        return "a dict"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "None"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def as_values(answer: Any, *, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``answer`` as a float64 array (of ``shape`` when given), or a failure whose message
    says what was returned instead, in the student's terms.

    A row or column matrix of a vector's length counts as that vector."""
    if isinstance(answer, Iterator | set | frozenset | dict | str):
        raise HiddenCheckFailure(
            f"{what}: your function returned {describe_type(answer)}; return a list or an "
            "array of numbers"
        )
    try:
        array = np.asarray(answer, dtype=float)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: expected numbers, but your function returned {describe_type(answer)} "
            f"that numpy cannot read as numbers ({error})"
        ) from error
    if shape is not None and array.shape != shape:
        if len(shape) == 1 and array.ndim == 2 and 1 in array.shape and array.size == shape[0]:
            array = array.reshape(shape)
        else:
            raise HiddenCheckFailure(
                f"{what}: expected shape {shape}, got an array of shape {array.shape}"
            )
    return array


def as_actions(answer: Any, *, what: str, size: int) -> np.ndarray:
    """``answer`` as an int array of ``size`` actions: whole numbers in any numeric type."""
    values = as_values(answer, what=what, shape=(size,))
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise HiddenCheckFailure(
            f"{what}: actions are whole numbers (production quantities, action indices); "
            f"got {np.asarray(answer).tolist()!r}"
        )
    return values.astype(np.int64)


def values_close(got: Any, expected: Any) -> bool:
    """Whether ``got`` equals ``expected`` to the policy's tolerance (same shape)."""
    a, b = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    return a.shape == b.shape and bool(
        np.allclose(a, b, rtol=VALUE_RTOL, atol=VALUE_ATOL, equal_nan=True)
    )


def precision_note(answer: Any, expected: Any) -> str | None:
    """A message for an answer that misses ``expected`` only by the rounding of its own
    low-precision dtype (float16, say), or None: that is a matter of precision, and the
    student should read that word, not a hint about their logic."""
    dtype = _float_dtype(answer)
    if dtype is None or np.finfo(dtype).eps <= 1e-7:
        return None
    rounded = np.asarray(expected, dtype=float).astype(dtype).astype(float)
    if values_close(answer, rounded) and not values_close(answer, expected):
        digits = int(np.finfo(dtype).precision)
        return (
            f"your numbers are {dtype.name}, which keeps only about {digits} significant "
            "digits; the values are right to that precision, but the answer needs float64 "
            "(or float32): this is precision, not logic"
        )
    return None


def _float_dtype(answer: Any) -> np.dtype | None:
    """The floating dtype ``answer`` carries, if it is a numpy float array or scalar."""
    dtype = getattr(answer, "dtype", None)
    if dtype is None and isinstance(answer, list | tuple) and answer:
        dtype = getattr(answer[0], "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return dtype
    return None


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number under the policy (bool is not)."""
    if isinstance(value, bool | np.bool_):
        return False
    # Decimal is not a numbers.Real (it refuses to mix with floats), but it is a number.
    return isinstance(value, numbers.Real | decimal.Decimal | np.integer | np.floating)


__all__ = [
    "PROBABILITY_SUM_ATOL",
    "VALUE_ATOL",
    "VALUE_RTOL",
    "as_actions",
    "as_values",
    "describe_type",
    "is_number",
    "precision_note",
    "values_close",
]
