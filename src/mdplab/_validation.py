"""Small input checks shared by the modules of :mod:`mdplab`.

Every check raises :class:`ValueError` with a message that names the offending argument and,
where it applies, the state, action or position at fault.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

#: Absolute tolerance on ``sum_{s'} P(s' | s, a) = 1``.
ROW_SUM_TOL = 1e-9

#: Relative tolerance of the tie rule: an action ties with the best one when its Q-value is
#: within ``TIE_RTOL * (1 + |min Q|)`` of the minimum.
TIE_RTOL = 1e-9


def preview(items: Iterable[Any], limit: int = 12) -> str:
    """Render ``items`` as ``[a, b, ...]``, eliding the middle of long lists."""
    seq = [_plain(x) for x in items]
    if len(seq) <= limit:
        return "[" + ", ".join(repr(x) for x in seq) + "]"
    head = ", ".join(repr(x) for x in seq[: limit // 2])
    tail = ", ".join(repr(x) for x in seq[-(limit // 2) :])
    return f"[{head}, ... ({len(seq) - limit} more) ..., {tail}]"


def _plain(x: Any) -> Any:
    # numpy scalars print as np.int64(3) under numpy 2; users wrote 3.
    return x.item() if isinstance(x, np.generic) else x


def plain(x: Any) -> Any:
    """Convert a numpy scalar to the equivalent Python scalar (other objects pass through)."""
    return _plain(x)


def check_discount(discount: Any, *, allow_one: bool = False, name: str = "discount") -> float:
    """Return ``discount`` as a float after checking ``0 <= discount < 1`` (``<= 1`` if allowed)."""
    if isinstance(discount, bool) or not isinstance(discount, Real):
        raise ValueError(f"{name} must be a real number, got {discount!r}")
    beta = float(discount)
    upper_ok = beta <= 1.0 if allow_one else beta < 1.0
    if not (math.isfinite(beta) and beta >= 0.0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must lie in {interval}, got {beta!r}")
    return beta


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out!r}")
    return out


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    return out


def label_array(labels: Iterable[Any]) -> np.ndarray:
    """A 1-D array holding one label per entry.

    Homogeneous integer, float or string labels get a native dtype; anything else (tuples,
    mixed types) goes into an object array so that a tuple stays *one* label instead of
    becoming a row, and ``[0, "a"]`` does not silently become ``["0", "a"]``.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iufUS":
        return labels.copy()
    seq: Sequence[Any] = list(labels)
    if all(isinstance(x, Integral) and not isinstance(x, bool) for x in seq):
        return np.array([int(x) for x in seq], dtype=np.int64)
    if all(isinstance(x, float | np.floating) for x in seq):
        return np.array(seq, dtype=np.float64)
    if all(isinstance(x, str) for x in seq):
        return np.array(seq, dtype=str)
    out = np.empty(len(seq), dtype=object)
    for i, x in enumerate(seq):
        out[i] = x
    return out


def find_label(labels: np.ndarray, label: Any) -> int:
    """Index of the first entry of ``labels`` equal to ``label``, or -1."""
    if labels.dtype.kind == "O":
        for i, x in enumerate(labels):
            if x == label:
                return i
        return -1
    try:
        hits = np.flatnonzero(labels == label)
    except (TypeError, ValueError):
        return -1
    # Comparing e.g. an int array with a string yields a scalar False, not an array.
    hits = np.atleast_1d(hits)
    return int(hits[0]) if hits.size else -1


def values_vector(values: Any, n_states: int, name: str = "values") -> np.ndarray:
    """Return ``values`` as a finite float64 vector of length ``n_states`` (a fresh copy)."""
    try:
        v = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a vector of {n_states} real numbers: {exc}") from None
    if v.shape != (n_states,):
        raise ValueError(
            f"{name} must have shape ({n_states},) (one entry per state), got {v.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        raise ValueError(f"{name} must be finite; entry {int(bad[0])} is {float(v[bad[0]])!r}")
    return v
