"""What every lab's hidden checks share: calling student code and reporting failures."""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np

# The seed of this grading run, or None: each lab's checks then draw from their own fixed
# seed, so that the worked solutions, the catalogues and ``mdplab check`` see the same
# instances every time. ``mdplab grade`` sets a fresh one for each run (and records it), so
# that an instance a student saw in their feedback is worth nothing at the next grading.
_run_seed: int | None = None


def use_run_seed(seed: int | None) -> None:
    """Make the checks draw their instances from ``seed`` (None: the labs' fixed seeds)."""
    global _run_seed
    _run_seed = None if seed is None else int(seed)


def run_seed() -> int | None:
    """The grading run's seed now in force, or None."""
    return _run_seed


def instance_seed(fixed: int) -> int:
    """The seed a check draws its instances from: the lab's ``fixed`` seed, or that seed
    mixed with the grading run's seed when one is set (distinct labs and offsets stay
    distinct streams).

    Called when a check runs, never when its module is imported: the grader imports the
    checks before it sets the run's seed (and then forks a worker per submission)."""
    if _run_seed is None:
        return fixed
    return int(np.random.SeedSequence([fixed, _run_seed]).generate_state(1, np.uint64)[0])


def instance_rng(fixed: int) -> np.random.Generator:
    """A generator for a check's hidden instances: ``default_rng(instance_seed(fixed))``.
    Every random draw of a hidden instance comes from one of these, so that a run seed
    renews them all, and no run seed leaves every instance as it was."""
    return np.random.default_rng(instance_seed(fixed))


class HiddenCheckFailure(AssertionError):
    """A hidden check failed; the message is meant for the student."""


def known_mistake(
    got: Any,
    expected: Any,
    mistakes: Iterable[tuple[Any, str]],
    close: Callable[[Any, Any], bool],
) -> str | None:
    """The description of the first mistake whose answer ``got`` matches, or None.

    ``mistakes`` pairs the answer a known mistake gives (None when it cannot be computed)
    with its description. A mistake whose answer is close to ``expected`` on this instance
    is passed over: it is not what went wrong here."""
    for answer, description in mistakes:
        if answer is None or close(answer, expected):
            continue
        if close(got, answer):
            return description
    return None


def call_student(function: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
    """Call the student's ``function``; turn any exception into a failure that says which
    call raised what, so that a crash reads as feedback rather than a traceback. Warnings
    are silenced: nbgrader zeroes a test cell that writes to stderr, and a RuntimeWarning
    from a correct answer is no reason to lose its points."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    except NotImplementedError as error:
        raise HiddenCheckFailure(f"{what}: the function is not implemented yet") from error
    except Exception as error:  # any crash of student code is feedback, not a traceback
        raise HiddenCheckFailure(
            f"{what}: the function raised {type(error).__name__}: {error}"
        ) from error


def call_repeatedly(
    function: Callable[..., Any], n: int, *args: Any, what: str, **kwargs: Any
) -> list:
    """The results of ``n`` calls of the student's ``function`` with the same arguments, as
    ``[call_student(function, *args, what=what, **kwargs) for _ in range(n)]`` would give
    them: a generator among the arguments continues its stream from call to call. Under
    ``mdplab grade`` the function lives in the student's kernel, and the grader's agent
    there makes the ``n`` calls in one request instead of ``n``; anywhere else they are
    made here. A call that raises fails the check with the same message either way."""
    batched = _batched(function)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if batched is not None:
                return batched(n, *args, **kwargs)
            results = []
            for index in range(n):
                try:
                    results.append(function(*args, **kwargs))
                except Exception as error:
                    with suppress(Exception):  # an exception class that takes no attributes
                        error.repeat_index = index  # type: ignore[attr-defined]
                    raise
            return results
    except NotImplementedError as error:
        raise HiddenCheckFailure(f"{what}: the function is not implemented yet") from error
    except Exception as error:  # any crash of student code is feedback, not a traceback
        index = getattr(error, "repeat_index", None)
        where = f" (in call {index + 1} of {n})" if isinstance(index, int) and n > 1 else ""
        raise HiddenCheckFailure(
            f"{what}: the function raised {type(error).__name__}: {error}{where}"
        ) from error


def _batched(function: Any) -> Callable[..., list] | None:
    """The ``repeat`` of the grader's stand-in for a function in the student's kernel
    (:class:`mdplab.grading.judge.RemoteFunction`), or None for any other callable: a
    ``repeat`` the student's own object offers is not trusted to report its calls."""
    judge = sys.modules.get("mdplab.grading.judge")
    remote = getattr(judge, "RemoteFunction", None)
    if isinstance(remote, type) and isinstance(function, remote):
        return function.repeat
    return None


def as_float(value: Any, *, what: str) -> float:
    """``value`` as a float, or a failure that says it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise HiddenCheckFailure(
            f"{what}: expected a number, got {type(value).__name__}"
        ) from error


class TimeUp(BaseException):
    """Raised inside student code whose time is up: a BaseException, so that neither the
    student's ``except Exception`` nor :func:`call_student` swallows it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`TimeUp` in the code of the ``with`` block after ``seconds`` (a real-time
    alarm; no limit where there are no alarms, as on Windows or outside the main thread)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
