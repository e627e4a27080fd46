"""Arguments a student's function must leave as they were (R, P, V, demand_pmf, alpha, ...).

A check takes a :func:`snapshot` of the watched arguments before the call and hands the
same objects to the function; :func:`check_kept` then fails, naming the argument and
saying *in place*, when the call changed one of them. Under ``mdplab grade`` the arguments'
final state comes back from the student's kernel, so the same check sees the change there.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from mdplab.checks.common import HiddenCheckFailure


def snapshot(args: tuple[Any, ...], watch: Mapping[int, str] | None) -> dict[int, Any]:
    """Deep copies of the arguments at the positions ``watch`` names."""
    return {index: copy.deepcopy(args[index]) for index in (watch or {})}


def changed(before: Any, after: Any) -> bool:
    """Whether an argument no longer holds what it held before the call (same numbers in the
    same shape, or the same dictionary)."""
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        return not isinstance(after, Mapping) or dict(before) != dict(after)
    try:
        kept, now = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    except (TypeError, ValueError):
        return True
    return kept.shape != now.shape or not bool(np.array_equal(kept, now, equal_nan=True))


def check_kept(
    what: str,
    function: str,
    args: tuple[Any, ...],
    kept: Mapping[int, Any],
    watch: Mapping[int, str] | None,
) -> None:
    """Fail when the call of ``function`` changed a watched argument away from ``kept``."""
    for index, name in (watch or {}).items():
        if not changed(kept[index], args[index]):
            continue
        if isinstance(kept[index], Mapping):
            now = args[index]
            shown = f"{dict(now)!r}" if isinstance(now, Mapping) else "something else"
            raise HiddenCheckFailure(
                f"{what}: {function} changed its argument {name} in place (afterwards it held "
                f"{shown}); the caller passes the same dictionary again, so read it (e.g. "
                f"{name}.items()) and do not pop, clear or add entries"
            )
        raise HiddenCheckFailure(
            f"{what}: {function} changed its argument {name} in place; the caller still needs "
            f"{name} as it was: work on a copy (np.array({name}, dtype=float) copies, "
            f"np.asarray({name}) does not)"
        )


__all__ = ["changed", "check_kept", "snapshot"]
