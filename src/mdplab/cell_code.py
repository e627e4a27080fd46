"""Reading a notebook code cell as Python: IPython-only lines dropped, and the global
names it binds and reads.

The course build uses the names to check that a cell the grader skips binds nothing that a
later cell reads; the grader uses :func:`python_only` to parse instructor cells.
"""

from __future__ import annotations

import ast

__all__ = ["names_bound", "names_read_before_bound", "python_only", "statements"]


def python_only(source: str) -> str:
    """The source with IPython-only lines (magics, shell escapes) blanked, so that line
    numbers stay as they were."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


def statements(source: str) -> list[ast.stmt]:
    """The cell's statements; raises SyntaxError as ``ast.parse`` does."""
    return ast.parse(python_only(source)).body


def names_bound(source: str) -> set[str]:
    """The global names the cell binds (assigns, imports, defines)."""
    return set().union(*(_bound(statement) for statement in statements(source)))


def names_read_before_bound(source: str) -> set[str]:
    """Names a cell reads that it has not bound before: what it takes from the cells above.

    Statements are followed in order. What the body of a loop or a branch binds counts
    inside that body only, since the body may not run; a ``with`` body always runs. So a
    name is never missed, at the price of reporting one that both branches bind."""
    read: set[str] = set()
    _follow(statements(source), set(), read)
    return read


def _follow(body: list[ast.stmt], bound: set[str], read: set[str]) -> None:
    """Add to ``read`` the names ``body`` reads before binding; update ``bound``."""
    for statement in body:
        if isinstance(statement, ast.For | ast.AsyncFor):
            read |= _reads(statement.iter, frozenset()) - bound
            inner = bound | _bound(ast.Assign(targets=[statement.target], value=ast.Constant(0)))
            _follow(statement.body, inner, read)
            _follow(statement.orelse, set(bound), read)
        elif isinstance(statement, ast.If | ast.While):
            read |= _reads(statement.test, frozenset()) - bound
            _follow(statement.body, set(bound), read)
            _follow(statement.orelse, set(bound), read)
        elif isinstance(statement, ast.With | ast.AsyncWith):
            for item in statement.items:
                read |= _reads(item.context_expr, frozenset()) - bound
                if item.optional_vars is not None:
                    bound |= _bound(ast.Assign(targets=[item.optional_vars], value=ast.Constant(0)))
            _follow(statement.body, bound, read)
        else:
            read |= _reads(statement, frozenset()) - bound
            bound |= _bound(statement)


_SCOPES = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _reads(node: ast.AST, local: frozenset[str]) -> set[str]:
    """Global names ``node`` reads: not the variables of its comprehensions, nor the
    parameters and local variables of its functions."""
    if isinstance(node, _SCOPES):
        local = local | {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
    elif isinstance(node, _FUNCTIONS):
        local = local | {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        if not isinstance(node, ast.Lambda):  # and the names its body assigns
            local = local | set().union(*(_bound(statement) for statement in node.body))
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return set() if node.id in local else {node.id}
    names: set[str] = set()
    for child in ast.iter_child_nodes(node):
        names |= _reads(child, local)
    return names


def _bound(statement: ast.stmt) -> set[str]:
    """The global names ``statement`` binds (not inside its functions or comprehensions)."""
    names: set[str] = set()
    pending: list[ast.AST] = [statement]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue  # its body binds its own locals
        if isinstance(node, (*_SCOPES, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(node))
    return names
