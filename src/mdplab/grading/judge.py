"""Test cells run in the grader's process, not in the student's kernel.

This is the second layer of the defence (the first is :mod:`mdplab.grading.sandbox`). A
test cell that ran in the student's kernel would share it with student code, which can
patch ``np.allclose`` or ``np.testing``, redefine helpers the tests call, register an
input transformer that blanks later cells, or install an exception handler that hides
failures. Here a test cell is compiled and executed in a namespace of the grader's own:

- a name the cell reads and does not define is looked up in the kernel. A function
  becomes a :class:`RemoteFunction` that calls the student's function in the kernel with
  the arguments sent over the wire; data is copied; a module stays a name (an
  :class:`~mdplab.grading.agent.Opaque`): importing here a module that the student's
  kernel names would run code of the student's choosing as the grader (the test cells
  get their modules from their own imports and the read-only cells');
- a call must do what it would do in the student's own kernel, so that a cell's verdict
  here is the verdict there: values cross as what they are (:mod:`mdplab.grading.agent`),
  the arguments the student's function changed come back changed (written into the
  grader's own objects, in place, by :func:`_write_back`), and an exception it raised is
  raised here under its builtin type, worded for the student: "your `f` raised
  ValueError: ... (line 4 of your cell)" (:class:`~mdplab.checks.common.StudentError`,
  the words :func:`~mdplab.checks.common.call_student` uses in a plain kernel too);
- so the comparisons, numpy and the hidden checks (``mdplab.checks``) are the grader's, and
  the only thing student code controls is what its functions return, which is what is
  being graded.

The cell's verdict becomes its outputs as nbgrader expects them: nothing (or its printed
text) when it passed, one ``error`` output when it failed. Tracebacks are reduced to the
exception line, so feedback never shows hidden test code.
"""

from __future__ import annotations

import array
import ast
import builtins
import contextlib
import decimal
import fractions
import importlib
import io
import operator
import re
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from mdplab.cell_code import python_only
from mdplab.checks.common import StudentError
from mdplab.grading.agent import MAX_DEPTH, Opaque, decode, decode_many, encode_arguments
from mdplab.grading.batched_loops import batch_loops, namespace_entries
from mdplab.grading.kernel import GraderFault, Kernel, KernelDied, OutOfTime, Session

# Exceptions that cross back under their own type, so that checks which diagnose by type
# (a singular matrix, a KeyError from a wrong index) still can. Others get a stand-in class.
_NAMED_ERRORS: dict[str, type[Exception]] = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception)
}
# Imported on first use by jupyter_client (the kernel spec) and nbconvert (IPython's input
# transformer); preloaded with the checks.
_MACHINERY = ("ipykernel.kernelspec", "IPython.core.inputtransformer2")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,80}$")
# Characters kept of an exception's message from the kernel (the agent sends no more).
_MESSAGE_CHARS = 2000


class RemoteError(Exception):
    """Base of the stand-ins for exceptions raised by student code that have no local
    class (gurobipy's, or the student's own)."""


def _exception_from(error: Any, function: str | None = None) -> Exception:
    """The exception a reply's ``error`` describes, of its builtin type where there is one
    (numpy's LinAlgError too), else of a stand-in class of its name.

    When the student's ``function`` raised it (the agent says so), its message is worded
    for the student, "your `f` raised ValueError: ... (line 4 of your cell)", and the
    exception carries the parts as ``student_error`` (a StudentError), from which
    :func:`~mdplab.checks.common.call_student` words its failure without wording it twice.
    """
    if not isinstance(error, dict):
        error = {"type": "NoReply", "message": "an unreadable reply"}
    name = str(error.get("type", "Exception"))[:100]
    message = str(error.get("message", ""))[:_MESSAGE_CHARS]
    parts = None
    if function is not None and error.get("student") is True:
        line = error.get("line")
        line = line if type(line) is int and 0 < line < 10**7 else None
        parts = StudentError(function, name, message, line)
        message = parts.text()
    raised = _exception_named(name, message)
    if parts is not None:
        with contextlib.suppress(Exception):  # an exception class that takes no attributes
            raised.student_error = parts  # type: ignore[attr-defined]
    return raised


def _exception_named(name: str, message: str) -> Exception:
    if name == "LinAlgError":
        import numpy as np

        return np.linalg.LinAlgError(message)
    local = _NAMED_ERRORS.get(name)
    if local is not None and name not in {"StopIteration", "StopAsyncIteration"}:
        try:
            return local(message)
        except Exception:  # an exception class with an unusual constructor
            pass
    clean = name if _IDENTIFIER.match(name) else "RemoteError"
    return type(clean, (RemoteError,), {})(message)


@dataclass
class RemoteFunction:
    """A student's function living in the kernel; calling it runs it there."""

    name: str
    judge: Judge

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.judge.call(self.name, args, kwargs)

    @property
    def __name__(self) -> str:
        """The student's name for the function, as a function's ``__name__`` gives it."""
        return self.name

    def repeat(self, n: int, *args: Any, **kwargs: Any) -> list:
        """The results of ``n`` calls with these arguments, in one round trip (see
        :meth:`Judge.repeat`)."""
        return self.judge.repeat(self.name, n, args, kwargs)

    def repeat_with(
        self, n: int, args: tuple, kwargs: dict, *, fresh: Iterable[int | str] = ()
    ) -> list:
        """:meth:`repeat`, for a loop that makes the arguments ``fresh`` (positions and
        keywords) anew on every pass, as it does a list display ``[1, 0]`` or ``V * 2``:
        each call gets a shallow copy of them (see :meth:`Judge.repeat`)."""
        return self.judge.repeat(self.name, n, tuple(args), dict(kwargs), fresh=fresh)

    def __repr__(self) -> str:
        return f"<student function {self.name}>"


class Judge:
    """Runs test cells for one notebook against one kernel."""

    def __init__(self, kernel: Kernel, call_seconds: float) -> None:
        self.kernel = kernel
        self.call_seconds = call_seconds
        self.deadline = float("inf")
        self.calls = 0
        self.session: Session | None = None

    # ----------------------------------------------------------------- remote calls
    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        """The student's ``name`` called in the kernel with ``args`` and ``kwargs``, as a
        call in this process would be: its result, decoded; the arguments it changed
        written back into ``args`` and ``kwargs`` (also when it raised); its exception
        raised here (see :func:`_exception_from`)."""
        self.calls += 1
        sent_args, sent_kwargs = encode_arguments(args, kwargs)
        reply = self._session().request(
            "call", self._seconds_left(), name=name, args=sent_args, kwargs=sent_kwargs
        )
        if "error" in reply:
            error = reply["error"]
            no_reply = isinstance(error, dict) and error.get("type") == "NoReply"
            if no_reply and not self.kernel.alive():
                raise KernelDied("the kernel died while the tests called " + name)
            _settle(name, args, kwargs, reply, [])
            raise _exception_from(error, name)
        return _settle(name, args, kwargs, reply, [reply.get("result")])[0]

    def repeat(
        self, name: str, count: int, args: tuple, kwargs: dict, fresh: Iterable[int | str] = ()
    ) -> list:
        """The results of ``count`` calls of the student's ``name`` with the same arguments,
        as a loop of ``count`` calls of :meth:`call` would give them: every call gets the
        same argument objects in the kernel, so a generator continues its stream and a
        change one call makes to an argument is seen by the next; after the batch the
        arguments' new state is written back here. The calls are made by the agent in as
        few requests as it takes (one, unless the results are large; a further request
        sends the arguments as they now are). Each request is under the test cell's time
        limit, as a call is. The first exception raised is raised here, with the index of
        the call that raised it as ``repeat_index``; the arguments are then as that call
        left them.

        The arguments named in ``fresh`` (positions, keywords) are those the loop would
        make anew on every pass: each call gets a shallow copy of them, and they are not
        written back."""
        count = operator.index(count)
        if count < 0:
            raise ValueError(f"cannot call a function {count} times")
        renewed = {"fresh": list(fresh)} if fresh else {}
        results: list = []
        while len(results) < count:
            wanted = count - len(results)
            sent_args, sent_kwargs = encode_arguments(args, kwargs)  # their state as of now
            reply = self._session().request(
                "repeat",
                self._seconds_left(),
                name=name,
                count=wanted,
                args=sent_args,
                kwargs=sent_kwargs,
                **renewed,
            )
            done = reply.get("results")
            if not isinstance(done, list) or len(done) > wanted:
                done = []
            error = reply.get("error")
            if isinstance(error, dict):
                self.calls += len(done) + 1
                if error.get("type") == "NoReply" and not self.kernel.alive():
                    raise KernelDied("the kernel died while the tests called " + name)
                _settle(name, args, kwargs, reply, [])
                index = error.get("index")
                failure = _exception_from(error, name)
                failure.repeat_index = len(results) + (  # type: ignore[attr-defined]
                    index if isinstance(index, int) and 0 <= index <= len(done) else len(done)
                )
                raise failure
            if not done:  # a reply that is no answer: it must not make this loop endless
                raise _exception_from({"type": "NoReply", "message": "an unreadable reply"})
            self.calls += len(done)
            results += _settle(name, args, kwargs, reply, done)  # one reply, one budget
        return results

    def _session(self) -> Session:
        if self.session is None or self.session.closed:
            self.session = self.kernel.session()
        return self.session

    def _end_session(self) -> None:
        # A session that is closed already was abandoned, and its kernel cell stopped.
        if self.session is not None and not self.session.closed:
            self.session.close()
        self.session = None

    def _seconds_left(self) -> float:
        left = min(self.call_seconds, self.deadline - time.monotonic())
        if left <= 0:
            raise OutOfTime()
        return left

    def bind(self, names: Iterable[str], namespace: dict[str, Any]) -> None:
        """Bind each name the kernel has, as a remote function or a copy of its value. A
        module is never imported on the kernel's word (see the module docstring): it is
        bound as an :class:`Opaque` naming it."""
        for name in names:
            reply = self._session().request("describe", self._seconds_left(), name=name)
            kind = reply.get("kind")
            if kind == "module":
                module = str(reply.get("module", ""))
                namespace[name] = Opaque("module", module, "", f"your `{name}` is")
            elif kind == "callable":
                namespace[name] = RemoteFunction(name, self)
            elif kind == "value":
                namespace[name] = decode(reply.get("value"), subject=f"your `{name}` is")
            elif "error" in reply and not self.kernel.alive():
                raise KernelDied("the kernel died")

    # ----------------------------------------------------------------- test cells
    def run(
        self, source: str, seconds: float, helpers: ast.Module | None = None
    ) -> tuple[list[NotebookNode], str]:
        """Run a test cell; its outputs and a status: passed, failed, timeout or died.

        ``helpers`` are the imports, functions and classes of the read-only cells above the
        test (from the released source, not the student's copy). They are defined here, so
        a student who redefines a helper the tests use changes nothing."""
        self.deadline = time.monotonic() + seconds
        self.kernel.stop_note = ""
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        printed = io.StringIO()
        try:
            tree = ast.parse(python_only(source))
            wanted = _names_read(tree) + (_names_read(helpers) if helpers is not None else [])
            code = compile(batch_loops(tree), "<test cell>", "exec")
            namespace.update(namespace_entries())
            if helpers is not None:
                _define(helpers, namespace)
            self.bind([n for n in dict.fromkeys(wanted) if n not in namespace], namespace)
            with (
                contextlib.redirect_stdout(printed),
                contextlib.redirect_stderr(printed),
                warnings.catch_warnings(),
            ):
                # Warnings are not failures; nbgrader would zero a cell for stderr text.
                warnings.simplefilter("ignore")
                exec(code, namespace)
        except OutOfTime:
            self.session = None  # abandoned, and the kernel's cell stopped, by the request
            text = self._timeout_text(seconds, self.kernel.stop_note)
            return self._outputs(printed, _error("TimeoutError", text))
        except KernelDied as died:
            self.session = None
            return self._outputs(printed, _error("KernelDied", str(died) or "the kernel died"))
        except GraderFault:
            raise
        except BaseException as error:
            # Exceptions, and any other BaseException (SystemExit, KeyboardInterrupt): a
            # test cell that raises one has failed, and nothing the kernel sends may end
            # the grading worker, which would report a graded submission as failed. Only
            # the grader's own OutOfTime, KernelDied (above) and GraderFault are not.
            self._end_session()
            return self._outputs(printed, _error(type(error).__name__, str(error)))
        self._end_session()
        return self._outputs(printed, None)

    @staticmethod
    def _timeout_text(seconds: float, note: str = "") -> str:
        why = note or "an endless loop, or far too slow?"
        return (
            f"the tests of this cell did not finish within {seconds:g} s; your code was "
            f"stopped ({why})"
        )

    @staticmethod
    def _outputs(printed: io.StringIO, error: NotebookNode | None) -> tuple[list, str]:
        outputs = []
        text = printed.getvalue()
        if text:
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text[:100_000]))
        if error is None:
            return outputs, "passed"
        outputs.append(error)
        status = {"TimeoutError": "timeout", "KernelDied": "died"}.get(error.ename, "failed")
        return outputs, status


def _error(name: str, message: str) -> NotebookNode:
    # Only the exception line: a full traceback would show the hidden test code.
    return nbformat.v4.new_output(
        "error", ename=name, evalue=message, traceback=[f"{name}: {message}"]
    )


def helper_definitions(sources: Iterable[str]) -> ast.Module:
    """The import, def and class statements of read-only cells, as one module."""
    body: list[ast.stmt] = []
    for source in sources:
        try:
            tree = ast.parse(python_only(source))
        except SyntaxError:
            continue
        body += [
            node
            for node in tree.body
            if isinstance(
                node,
                ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
            )
        ]
    return ast.Module(body=body, type_ignores=[])


def preload(sources: Iterable[str]) -> None:
    """Import, in this process, what the read-only and test cells in ``sources`` import.

    The batch calls it once, before it forks a process per submission, so that each of
    those inherits the modules (the hidden checks, matplotlib, the kernel machinery that
    jupyter_client looks up) instead of importing them again: about a second a submission.
    Only the instructor's cells are read here, never a student's."""
    statements = [
        node
        for node in helper_definitions(sources).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _define(ast.Module(body=statements, type_ignores=[]), {"__name__": "__preload__"})
        for name in _MACHINERY:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)


def _define(helpers: ast.Module, namespace: dict[str, Any]) -> None:
    """Run each helper statement on its own: one import missing here must not stop the rest."""
    for node in helpers.body:
        module = ast.Module(body=[node], type_ignores=[])
        with contextlib.suppress(Exception):
            exec(compile(module, "<read-only cell>", "exec"), namespace)


# ----------------------------------------------------------------- arguments written back
def _settle(name: str, args: tuple, kwargs: dict, reply: dict, results: list) -> list:
    """The decoded ``results`` of a reply, once the arguments the reply says the call
    changed are written back into ``args`` and ``kwargs``. The results and the arguments'
    new states are one reply, decoded with one budget of items."""
    changes = _changes(reply.get("changed"), args, kwargs)
    subjects = [f"your `{name}` returned"] * len(results)
    subjects += [f"an argument your `{name}` changed holds"] * len(changes)
    decoded = decode_many([*results, *(data for _, data in changes)], subject=subjects)
    for (target, _), new in zip(changes, decoded[len(results) :], strict=True):
        _write_back(target, new)
    return decoded[: len(results)]


def _changes(changed: Any, args: tuple, kwargs: dict) -> list[tuple[Any, Any]]:
    """(the grader's argument, its new state as the reply encodes it) for each entry of a
    reply's ``changed``, ``[position or keyword, encoding]``, that names an argument of
    the call. Other entries are ignored, and so is any past one per argument: the reply
    may have been forged by student code."""
    if not isinstance(changed, list):
        return []
    found = []
    for entry in changed[: len(args) + len(kwargs)]:
        if not isinstance(entry, list) or len(entry) != 2:
            continue
        key, data = entry
        if type(key) is int and 0 <= key < len(args):
            found.append((args[key], data))
        elif type(key) is str and key in kwargs:
            found.append((kwargs[key], data))
    return found


def _write_back(target: Any, new: Any) -> None:
    """Make the grader's argument ``target`` hold ``new``, the state the student's code
    left the kernel's copy of it in, in place (see :func:`_assign`). Never raises: what
    cannot be written stays as it was."""
    with contextlib.suppress(Exception):
        _assign(target, new, 0)


def _assign(target: Any, new: Any, depth: int) -> bool:
    """Write ``new`` (decoded data, never an object of the student's) into ``target`` (an
    object of the grader's) in place; whether ``target`` now holds it.

    - a numpy generator takes the new state of the same bit generator;
    - an ndarray, or a view of one, takes the new values (np.copyto; a masked array its
      mask too) if they have its shape and a dtype it takes. One that is read-only, or
      whose kernel copy changed shape or dtype (``V.resize``), is left as it is: it
      cannot be written in place, and replacing it is not a change to an argument;
    - a list is slice-assigned, a dict and a set are cleared and refilled, a bytearray
      and an array.array slice-assigned;
    - a tuple cannot change, but its mutable items are updated;
    - anything else (a number, a string, an object the wire could only describe) is not.

    The items of a list or a dict are updated in place where they can be, so that they
    keep their identity (an array in a dict of arrays stays the same array); an item that
    cannot be is replaced by the new one if it was data the wire carries as it is (else
    the kernel's copy of it was only a description, and the grader's object stays)."""
    if depth > MAX_DEPTH or isinstance(new, Opaque):
        return False
    import numpy as np

    if isinstance(target, np.random.Generator):
        if not isinstance(new, np.random.Generator):
            return False
        if type(new.bit_generator) is not type(target.bit_generator):
            return False
        target.bit_generator.state = new.bit_generator.state
        return True
    if isinstance(target, np.ndarray):
        return _assign_array(np, target, new)
    if isinstance(target, list):
        if type(new) is not list:
            return False
        old = list(target)
        target[:] = [
            _merged(old[index], item, depth) if index < len(old) else item
            for index, item in enumerate(new)
        ]
        return True
    if isinstance(target, dict):
        if not isinstance(new, dict):
            return False
        items = [
            (key, _merged(target[key], item, depth) if key in target else item)
            for key, item in new.items()
        ]
        target.clear()
        for key, item in items:  # not update(): a Counter's would add
            target[key] = item
        return True
    if isinstance(target, set):
        if not isinstance(new, set | frozenset):
            return False
        target.clear()
        target.update(new)
        return True
    if isinstance(target, tuple):
        if not isinstance(new, tuple) or len(new) != len(target):
            return False
        # Its items of immutable types cannot have changed in the kernel's copy either.
        held = [
            _try_assign(old, item, depth) or not _mutable(old)
            for old, item in zip(target, new, strict=True)
        ]
        return all(held)
    if isinstance(target, bytearray):
        if not isinstance(new, bytes | bytearray):
            return False
        target[:] = new
        return True
    if isinstance(target, array.array):
        if not isinstance(new, array.array) or new.typecode != target.typecode:
            return False
        target[:] = new
        return True
    if isinstance(target, memoryview):
        if target.readonly or not isinstance(new, memoryview):
            return False
        return _assign_array(np, np.asarray(target), np.asarray(new))
    return False


def _merged(old: Any, new: Any, depth: int) -> Any:
    """What a container holds after the write-back where it held ``old`` and the kernel's
    copy holds ``new``: ``old`` updated in place if it can be, else ``new`` if ``old`` was
    data the wire carries as it is, else ``old``."""
    if _try_assign(old, new, depth):
        return old
    return new if _carried(old) else old


def _try_assign(old: Any, new: Any, depth: int) -> bool:
    """:func:`_assign` for an item of a container one level down; False if it raises."""
    try:
        return _assign(old, new, depth + 1)
    except Exception:  # this item cannot take it; the container's other items still can
        return False


def _mutable(value: Any) -> bool:
    import numpy as np

    mutable = (list, dict, set, bytearray, array.array, memoryview, np.ndarray)
    return isinstance(value, mutable | np.random.Generator)


# What the wire carries as it is: an item of one of these types that the student's code
# replaced is replaced here too. A grader object of another type crossed as a description
# (or converted, as a DataFrame crosses as an array) and is never replaced.
_CARRIED = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    fractions.Fraction,
    decimal.Decimal,
    list,
    tuple,
    dict,
    set,
    frozenset,
    range,
    array.array,
    memoryview,
)


def _carried(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (*_CARRIED, np.ndarray, np.generic, np.random.Generator))


def _assign_array(np: Any, target: Any, new: Any) -> bool:
    if not isinstance(new, np.ndarray) or not target.flags.writeable:
        return False
    masked = sys.modules.get("numpy.ma")  # only if imported: else nothing here is masked
    values = masked.getdata(new) if masked is not None else new
    if values.shape != target.shape or not np.can_cast(values.dtype, target.dtype, "same_kind"):
        return False
    if masked is not None and isinstance(target, masked.MaskedArray):
        np.copyto(masked.getdata(target), values, casting="same_kind")
        target.mask = masked.getmaskarray(new)
        return True
    np.copyto(target, values, casting="same_kind")
    return True


def _names_read(tree: ast.AST) -> list[str]:
    """Names the cell reads that it does not import or define, in order; builtins excluded.
    A name the cell assigns before reading it is looked up too, which costs only that."""
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
    seen: dict[str, None] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id not in defined
            and not hasattr(builtins, node.id)
        ):
            seen.setdefault(node.id, None)
    return list(seen)


__all__ = ["Judge", "Opaque", "RemoteError", "RemoteFunction"]
