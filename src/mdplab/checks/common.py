"""What every lab's hidden checks share: calling student code and reporting failures."""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdplab.grading.agent import MAX_MESSAGE, cell_line

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


def policy_before_beta(
    function: Callable[..., Any],
    arguments: tuple,
    expected: Any,
    what: str,
    close: Callable[[Any, Any], bool],
) -> None:
    """Fail with a clear message if ``function`` gives ``expected`` when called with the
    policy before beta, as (R, P, policy, beta, ...) instead of the series' (R, P, beta,
    policy, ...) that ``arguments`` holds. The swapped call is only a probe: whatever it
    raises counts as "no"."""
    R, P, beta, policy, *rest = arguments
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            swapped = function(R.copy(), P.copy(), policy, beta, *rest)
        ok = close(np.asarray(swapped, dtype=float).ravel(), np.asarray(expected).ravel())
    except Exception:
        ok = False
    if ok:
        raise HiddenCheckFailure(
            f"{what}: your function takes the policy before beta; the series' order is the "
            "model R, P, beta first, then the policy: evaluate_policy(R, P, beta, policy)"
        )


def call_student(function: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
    """Call the student's ``function``; turn any exception into a failure that says which
    call raised what, and where, so that a crash reads as feedback rather than a traceback:
    "``what``: your `f` raised ValueError: ... (line 4 of your cell)", the same words under
    ``mdplab grade`` as in the student's kernel (see :func:`student_error`). Warnings are
    silenced: nbgrader zeroes a test cell that writes to stderr, and a RuntimeWarning from
    a correct answer is no reason to lose its points."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    except NotImplementedError as error:
        name = student_error(function, error).subject
        raise HiddenCheckFailure(f"{what}: {name} is not implemented yet") from error
    except Exception as error:  # any crash of student code is feedback, not a traceback
        raise HiddenCheckFailure(f"{what}: {student_error(function, error).text()}") from error


def call_repeatedly(
    function: Callable[..., Any], n: int, *args: Any, what: str, **kwargs: Any
) -> list:
    """The results of ``n`` calls of the student's ``function`` with the same arguments, as
    a loop ``[function(*args, **kwargs) for _ in range(n)]`` gives them: every call gets the
    same argument objects, so a generator among them continues its stream from call to
    call, and a change one call makes to an argument is seen by the next. Under ``mdplab
    grade`` the function lives in the student's kernel, and the grader's agent there makes
    the ``n`` calls in one request instead of ``n`` (and the arguments' final state comes
    back); anywhere else they are made here. A call that raises fails the check with the
    same message either way, which names the call: "... (line 4 of your cell, in call 3 of
    10)"."""
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
        name = student_error(function, error).subject
        raise HiddenCheckFailure(f"{what}: {name} is not implemented yet") from error
    except Exception as error:  # any crash of student code is feedback, not a traceback
        index = getattr(error, "repeat_index", None)
        call = (index + 1, n) if isinstance(index, int) and n > 1 else None
        raise HiddenCheckFailure(f"{what}: {student_error(function, error).text(call)}") from error


@dataclass(frozen=True)
class StudentError:
    """What a student's function raised, in the words the student reads.

    ``function`` is the function's name (None when it has none worth showing, such as a
    lambda's), ``kind`` the exception's type name, ``line`` the line of the notebook cell
    the exception was raised from (None when it was not raised from a cell)."""

    function: str | None
    kind: str
    message: str
    line: int | None = None

    @property
    def subject(self) -> str:
        """Whose the exception is: "your `f`", or "your function" without a name."""
        return f"your `{self.function}`" if self.function else "your function"

    def text(self, call: tuple[int, int] | None = None) -> str:
        """The words the student reads, such as "your `f` raised ValueError: message
        (line 4 of your cell, in call 3 of 10)"; ``call`` is (which call, of how many) for
        repeated calls."""
        text = f"{self.subject} raised {self.kind}"
        if self.message:
            text += f": {self.message}"
        where = []
        if self.line is not None:
            where.append(f"line {self.line} of your cell")
        if call is not None:
            where.append(f"in call {call[0]} of {call[1]}")
        return text + (f" ({', '.join(where)})" if where else "")


def student_error(function: Any, error: BaseException) -> StudentError:
    """What the student's ``function`` raised as ``error``, ready to be worded.

    Under ``mdplab grade`` the grader's stand-in for the function raises an exception that
    already carries it (as ``student_error``, set by :mod:`mdplab.grading.judge` from the
    kernel's reply). Anywhere else it is read here: the function's name, the exception,
    and the line of the innermost frame of its traceback that runs code from a notebook
    cell (:func:`mdplab.grading.agent.cell_line`, the logic the grader's agent uses in the
    kernel), so that both say the same thing."""
    known = getattr(error, "student_error", None)
    if isinstance(known, StudentError):
        return known
    try:
        message = str(error)[:MAX_MESSAGE]  # as much as the grader's agent sends
    except Exception:  # a broken __str__: the type still says what happened
        message = ""
    return StudentError(function_name(function), type(error).__name__, message, cell_line(error))


def function_name(function: Any) -> str | None:
    """The name the student gave ``function``, or None (a lambda, a partial)."""
    name = getattr(function, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        return None
    return name


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
