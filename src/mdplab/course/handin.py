"""The hand-in check: the last cell of every lab, which students run before they download
their notebook.

It reports the cells the grader needs that are missing, duplicated, stripped of their
nbgrader metadata or turned into another cell type (Colab enforces none of nbgrader's
locks), the TODOs still open and the visible tests that fail, then says whether the notebook
is ready to hand in. Its code is :mod:`mdplab.course.handin_cell`; the build adds what the check
knows about its lab as a literal dict, taken from the master, so lab authors write nothing.

The worked solution carries no grading metadata, so its copy of the check finds the cells
by their content instead (``"find_cells_by": "content"``).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

HAND_IN_ID = "hand_in_check"
HEADING = """\
## Before you hand in

Run the cell below last; in JupyterLab, save first (Ctrl+S). It lists the graded cells that
are missing or damaged, the TODOs still open and the visible tests that fail, and tells you
when the notebook is ready to download and hand in. It changes nothing in your notebook."""
DATA_NAME = "HAND_IN_LAB"
CUT = "# ---- cut: the cell starts below ----\n"
# A line that picks out a cell should say something: a short one like ``import sys`` may
# well turn up in a student's own cell.
MIN_MARK_LENGTH = 12
MAX_MARK_LENGTH = 60  # the start of a line is enough, and keeps the data readable
DEF_LINE = re.compile(r"^def ([A-Za-z_]\w*)\(")
IMPORT = re.compile(r"^(import|from) ")


def hand_in_data(lab_name: str, master: nbformat.NotebookNode) -> dict:
    """What the check knows about a lab: for each nbgrader cell of ``master``, its kind,
    cell type, title and how to find it by its content when its metadata is gone."""
    cells = {}
    for index, cell in enumerate(master.cells):
        meta = cell.metadata.get("nbgrader")
        if not meta or meta["grade_id"] == HAND_IN_ID:
            continue
        kind = _kind(meta)
        spec = {"kind": kind, "type": cell.cell_type, "title": _title(kind, meta, cell)}
        if kind == "written":
            # Its text is the student's own; its neighbours are not.
            spec["after"] = _mark(master, index - 1) if index > 0 else None
            spec["before"] = _mark(master, index + 1) if index + 1 < len(master.cells) else None
            if index > 0 and spec["after"] is None:
                # Without it the check would take the notebook's first cell for the answer.
                raise ValueError(
                    f"{lab_name}: the cell before the written answer {meta['grade_id']} has "
                    "no line of its own (a code cell of comments only?), so a notebook "
                    "without grading information cannot be searched for the answer"
                )
        else:
            spec["find"] = _mark(master, index)
        cells[meta["grade_id"]] = spec
    return {"lab": lab_name, "find_cells_by": "metadata", "cells": cells}


def render_check(data: dict) -> str:
    """The source of the check cell for a lab described by ``data``."""
    return f"{_template().rstrip()}\n\n\n{_data_literal(data)}\n\n{HAND_IN_ID}({DATA_NAME})"


def embedded_data(source: str) -> dict:
    """The data a rendered check cell carries (the inverse of :func:`render_check`)."""
    for node in ast.parse(source).body:
        targets = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if targets == [DATA_NAME]:
            return ast.literal_eval(node.value)
    raise ValueError(f"no {DATA_NAME} = {{...}} in this cell")


def for_solution(source: str) -> str:
    """The check cell of the worked solution, which has no grading metadata to go by."""
    return render_check(embedded_data(source) | {"find_cells_by": "content"})


def _kind(meta: dict) -> str:
    if meta.get("grade"):
        return "written" if meta.get("solution") else "tests"
    return "answer" if meta.get("solution") else "locked"


def _title(kind: str, meta: dict, cell: nbformat.NotebookNode) -> str:
    """How the report names the cell: a test's or question's title, a TODO's function."""
    if kind in ("tests", "written"):
        return cell.metadata.get("mdplab", {}).get("title", meta["grade_id"])
    if kind == "answer":
        for line in _visible_lines(cell.source):
            match = DEF_LINE.match(line)
            if match:
                return match.group(1)
    return meta["grade_id"]


def _mark(master: nbformat.NotebookNode, index: int) -> str | None:
    """The start of a line that students see in cell ``index`` and that starts no line of any
    other cell (solutions and hidden tests included, since the worked solution shows them):
    the ``def`` line of a TODO cell, else preferably a line of some length that is not an
    import, which a student's own cell may well repeat."""
    cell = master.cells[index]
    others = {
        line.strip()
        for position, other in enumerate(master.cells)
        if position != index
        for line in other.source.splitlines()
    }
    candidates = [_shortened(line) for line in _visible_lines(cell.source) if line]
    definitions = [match.group(0) for match in map(DEF_LINE.match, candidates) if match]
    if definitions:
        candidates = definitions
    elif cell.cell_type == "code":
        candidates = [line for line in candidates if not line.startswith("#")]
    unique = [c for c in candidates if not any(other.startswith(c) for other in others)]
    preferred = [c for c in unique if len(c) >= MIN_MARK_LENGTH and not IMPORT.match(c)]
    return (preferred or unique or [None])[0]


def _shortened(line: str) -> str:
    """The line's start up to a space, within MAX_MARK_LENGTH characters."""
    if len(line) <= MAX_MARK_LENGTH:
        return line
    cut = line[: MAX_MARK_LENGTH + 1].rsplit(" ", 1)[0].rstrip()
    return cut if len(cut) >= MIN_MARK_LENGTH else line[:MAX_MARK_LENGTH]


def _visible_lines(text: str) -> list[str]:
    """The stripped lines of a master cell that students see: nbgrader's ``### BEGIN ...`` /
    ``### END ...`` regions (solutions, hidden tests) removed."""
    lines, hidden = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("### BEGIN "):
            hidden = True
        elif line.startswith("### END "):
            hidden = False
        elif not hidden:
            lines.append(line)
    return lines


def _template() -> str:
    text = Path(__file__).with_name("handin_cell.py").read_text(encoding="utf-8")
    return text.split(CUT, 1)[1]


def _data_literal(data: dict) -> str:
    """``HAND_IN_LAB = {...}`` as readable Python: one line per cell."""
    lines = [
        "# What this check knows about the lab, written when the lab was built: each cell the",
        "# grader needs, by its nbgrader grade_id, with its kind, cell type and title, and the",
        '# start of a line that finds it when its grading information is lost ("find"; for a',
        "# written answer, lines of the cells just before and after it).",
        f"{DATA_NAME} = {{",
        f'    "lab": {_literal(data["lab"])},',
        f'    "find_cells_by": {_literal(data["find_cells_by"])},',
        '    "cells": {',
    ]
    for grade_id, spec in data["cells"].items():
        fields = ", ".join(f"{_literal(key)}: {_literal(value)}" for key, value in spec.items())
        lines.append(f"        {_literal(grade_id)}: {{{fields}}},")
    lines += ["    },", "}"]
    return "\n".join(lines)


def _literal(value: object) -> str:
    """A Python literal for a string or None: in double quotes unless the string holds some
    (JSON's escapes are Python's too), with non-ASCII letters kept readable."""
    if isinstance(value, str) and '"' not in value:
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
