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
- so the comparisons, numpy and the hidden checks (``mdplab.checks``) are the grader's, and
  the only thing student code controls is what its functions return, which is what is
  being graded.

The cell's verdict becomes its outputs as nbgrader expects them: nothing (or its printed
text) when it passed, one ``error`` output when it failed. Tracebacks are reduced to the
exception line, so feedback never shows hidden test code.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import operator
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from mdplab.cell_code import python_only
from mdplab.grading.agent import Opaque, decode, decode_many, encode
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


def _exception_from(error: Any) -> Exception:
    if not isinstance(error, dict):
        error = {"type": "NoReply", "message": "an unreadable reply"}
    name = str(error.get("type", "Exception"))[:100]
    message = str(error.get("message", ""))[:_MESSAGE_CHARS]
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

    def repeat(self, n: int, *args: Any, **kwargs: Any) -> list:
        """The results of ``n`` calls with these arguments, in one round trip (see
        :meth:`Judge.repeat`)."""
        return self.judge.repeat(self.name, n, args, kwargs)

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
        self.calls += 1
        generators = [a for a in [*args, *kwargs.values()] if _is_generator(a)]
        reply = self._session().request(
            "call",
            self._seconds_left(),
            name=name,
            args=encode(list(args)),
            kwargs=encode(dict(kwargs)),
        )
        if "error" in reply:
            error = reply["error"]
            no_reply = isinstance(error, dict) and error.get("type") == "NoReply"
            if no_reply and not self.kernel.alive():
                raise KernelDied("the kernel died while the tests called " + name)
            raise _exception_from(error)
        _sync(generators, reply)
        return decode(reply.get("result"))

    def repeat(self, name: str, count: int, args: tuple, kwargs: dict) -> list:
        """The results of ``count`` calls of the student's ``name`` with the same arguments,
        as ``count`` calls of :meth:`call` would give them (the generators among the
        arguments continue their stream from call to call), but made by the agent in as
        few requests as it takes (one, unless the results are large). Each request is under
        the test cell's time limit, as a call is. The first exception raised is raised here,
        with the index of the call that raised it as ``repeat_index``; the generators are
        then where that call found them."""
        count = operator.index(count)
        if count < 0:
            raise ValueError(f"cannot call a function {count} times")
        generators = [a for a in [*args, *kwargs.values()] if _is_generator(a)]
        results: list = []
        while len(results) < count:
            wanted = count - len(results)
            reply = self._session().request(
                "repeat",
                self._seconds_left(),
                name=name,
                count=wanted,
                args=encode(list(args)),  # the generators' states as of now
                kwargs=encode(dict(kwargs)),
            )
            done = reply.get("results")
            if not isinstance(done, list) or len(done) > wanted:
                done = []
            error = reply.get("error")
            if isinstance(error, dict):
                self.calls += len(done) + 1
                if error.get("type") == "NoReply" and not self.kernel.alive():
                    raise KernelDied("the kernel died while the tests called " + name)
                _sync(generators, reply)
                index = error.get("index")
                failure = _exception_from(error)
                failure.repeat_index = len(results) + (  # type: ignore[attr-defined]
                    index if isinstance(index, int) and 0 <= index <= len(done) else len(done)
                )
                raise failure
            if not done:  # a reply that is no answer: it must not make this loop endless
                raise _exception_from({"type": "NoReply", "message": "an unreadable reply"})
            self.calls += len(done)
            _sync(generators, reply)
            results += decode_many(done)  # one reply, one budget
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
                namespace[name] = Opaque("module", str(reply.get("module", "")))
            elif kind == "callable":
                namespace[name] = RemoteFunction(name, self)
            elif kind == "value":
                namespace[name] = decode(reply.get("value"))
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


def _sync(generators: list, reply: dict) -> None:
    """The student's function drew numbers from the kernel's copies of ``generators``;
    advance ours the same way."""
    states = reply.get("generators")
    states = [s for s in states if s is not None] if isinstance(states, list) else []
    for generator, state in zip(generators, states, strict=False):
        with contextlib.suppress(Exception):
            generator.bit_generator.state = decode(state)


def _is_generator(value: Any) -> bool:
    try:
        import numpy as np
    except ImportError:
        return False
    return isinstance(value, np.random.Generator)


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
