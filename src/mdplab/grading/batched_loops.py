"""Monte Carlo loops in test cells, sent to the kernel as one request.

A visible test such as ``[simulate_run(R, P, policy, 0.5, 0, 13, rng) for _ in range(1000)]``
calls the student's function a thousand times with the same arguments. Run in the grader
(:mod:`mdplab.grading.judge`), each call is a round trip to the kernel; the same loop in
one ``repeat`` request (:meth:`~mdplab.grading.judge.RemoteFunction.repeat_with`) gives
the same results: the calls of a batch share their arguments as the passes of the loop do
(a change one call makes is seen by the next, and the generators continue their stream),
and an argument the loop makes anew on every pass (a list display ``[1, 0]``, an
operation such as ``V * 2``) is copied anew for every call.

:func:`batch_loops` rewrites such a list comprehension (in the instructor's test code only)
into a call of :func:`repeat_or_loop` that receives two closures: one that evaluates the
function, the count and the arguments once, and the original comprehension. The batch is
used only when the function turns out to be a student's function in the kernel; otherwise,
or if evaluating the parts once fails, the original comprehension runs unchanged.

Rewritten are comprehensions ``[f(a, ..., k=v, ...) for x in range(n)]`` with no condition,
whose ``f``, ``n`` and arguments are names other than ``x``, constants, and tuples, lists,
unary and binary operations of those: expressions whose value is the same on every pass,
and whose evaluation has no effect. (A list or an operation inside a tuple argument is
shared by the calls of a batch: a shallow copy of the tuple does not renew it. No test
cell passes one that a student's function could change.) A call among the arguments
(``np.random.default_rng(7)`` makes a new generator on every pass) keeps the loop as it
is.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

HELPER = "__mdplab_repeat_or_loop__"


def repeat_or_loop(parts: Callable[[], tuple], loop: Callable[[], list]) -> list:
    """``function.repeat(count, *args, **kwargs)`` for a student's function, else ``loop()``."""
    from mdplab.grading.judge import RemoteFunction  # judge imports this module

    try:
        function, count, args, kwargs, fresh = parts()
    except Exception:  # let the original loop raise it, where and as it would have
        return loop()
    if not isinstance(function, RemoteFunction) or type(count) is not int or count < 0:
        return loop()
    return function.repeat_with(count, args, kwargs, fresh=fresh)


def batch_loops(tree: ast.Module) -> ast.Module:
    """``tree`` with each eligible comprehension rewritten (see the module docstring)."""
    if _rebinds_range(tree):
        return tree
    rewritten = _Rewriter().visit(tree)
    return ast.fix_missing_locations(rewritten)


class _Rewriter(ast.NodeTransformer):
    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        # A closure in a class body cannot see the class's names; leave classes alone.
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        self.generic_visit(node)
        shape = _repeated_call(node)
        if shape is None:
            return node
        call, count = shape
        keywords = ast.Dict(
            keys=[ast.Constant(k.arg) for k in call.keywords],
            values=[k.value for k in call.keywords],
        )
        made_anew = [
            ast.Constant(index) for index, arg in enumerate(call.args) if _made_anew(arg)
        ] + [ast.Constant(k.arg) for k in call.keywords if _made_anew(k.value)]
        parts = ast.Tuple(
            elts=[
                call.func,
                count,
                ast.Tuple(elts=list(call.args), ctx=ast.Load()),
                keywords,
                ast.Tuple(elts=made_anew, ctx=ast.Load()),
            ],
            ctx=ast.Load(),
        )
        return ast.Call(
            func=ast.Name(HELPER, ctx=ast.Load()),
            args=[_closure(parts), _closure(node)],
            keywords=[],
        )


def _repeated_call(node: ast.ListComp) -> tuple[ast.Call, ast.expr] | None:
    """The call and the count of ``[f(...) for x in range(n)]``, if it is eligible."""
    if len(node.generators) != 1:
        return None
    loop = node.generators[0]
    if loop.ifs or loop.is_async or not isinstance(loop.target, ast.Name):
        return None
    iterated = loop.iter
    if not (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Name)
        and iterated.func.id == "range"
        and len(iterated.args) == 1
        and not iterated.keywords
    ):
        return None
    call = node.elt
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        return None
    variable = loop.target.id
    parts = [call.func, iterated.args[0], *call.args, *(k.value for k in call.keywords)]
    if any(k.arg is None for k in call.keywords):  # **mapping
        return None
    if not all(_stable(part, variable) for part in parts):
        return None
    return call, iterated.args[0]


def _stable(node: ast.expr, variable: str) -> bool:
    """Same value on every pass, and evaluated without effects."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id != variable
    if isinstance(node, ast.Tuple | ast.List):
        return all(_stable(e, variable) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _stable(node.operand, variable)
    if isinstance(node, ast.BinOp):
        return _stable(node.left, variable) and _stable(node.right, variable)
    return False


def _made_anew(node: ast.expr) -> bool:
    """Whether the loop makes a new object of ``node`` on every pass (a list, the result
    of an operation), which a batch must then copy for every call."""
    return isinstance(node, ast.List | ast.UnaryOp | ast.BinOp)


def _closure(body: ast.expr) -> ast.Lambda:
    arguments = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
        defaults=[],
    )  # fmt: skip
    return ast.Lambda(args=arguments, body=body)


def _rebinds_range(tree: ast.AST) -> bool:
    """Whether the cell gives ``range`` a meaning of its own (then nothing is rewritten)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound = [node.id]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound = [node.name]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound = [a.asname or a.name for a in node.names]
        elif isinstance(node, ast.arg):
            bound = [node.arg]
        else:
            continue
        if "range" in bound:
            return True
    return False


def namespace_entries() -> dict[str, Any]:
    """What a rewritten cell needs in its namespace."""
    return {HELPER: repeat_or_loop}
