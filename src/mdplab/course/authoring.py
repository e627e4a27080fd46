"""A lab's one hand-edited source, in jupytext's percent format, into its nbgrader master.

A source is a Python file of ``# %%`` cells. Graded cells carry three short keys on their
header line, which this module expands into nbgrader's full cell metadata::

    # %% nbgrader="answer" grade_id="discounted_sum"
    # %% nbgrader="tests" grade_id="test_discounted_sum" points=2 title="Discounted sum"
    # %% [markdown] nbgrader="written" grade_id="why_discount" points=1 title="Why β < 1"
    # %% nbgrader="locked" grade_id="setup"
    # %% nbgrader="locked" grade_id="plot_runs" autograde="skip"

``answer`` cells hold the reference solution between ``### BEGIN SOLUTION`` and
``### END SOLUTION``; ``tests`` cells may hold instructor-only checks between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``; ``written`` cells are graded by
hand. Markdown may use the placeholders ``{{colab_badge}}``, ``{{points_table}}``,
``{{repository}}`` and ``{{raw_url}}``; code cells may use ``{{repository}}`` and
``{{raw_url}}``. A locked code cell may also consist of one line
``# {{module:mdplab.some.module}}``, which the build replaces by that module's source: the
way a lab shows students code that the reference library also uses (the data generator of
the capstone, say) without keeping two copies. Such a module may import nothing from
``mdplab``, since students run it where the package is absent.

A locked code cell that only illustrates (draws a figure, runs a demonstration) may say
``autograde="skip"``: ``mdplab grade`` then does not run it, since nothing graded depends
on it, and the build checks that claim: no later cell may read a name the skipped cell
binds. Students and the worked solution run it as any other cell.

Every master ends with the students' hand-in check, which the build adds (a "Before you
hand in" heading and a locked cell ``hand_in_check``; see :mod:`mdplab.course.handin`).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from mdplab.cell_code import names_bound, names_read_before_bound
from mdplab.course.handin import HAND_IN_ID, HEADING, hand_in_data, render_check
from mdplab.course.layout import Lab, Layout

SCHEMA_VERSION = 3
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"

# role -> (grade, solution, locked): nbgrader's three flags for each kind of cell.
ROLES: dict[str, tuple[bool, bool, bool]] = {
    "answer": (False, True, False),
    "tests": (True, False, True),
    "written": (True, True, False),
    "locked": (False, False, True),
}
SOURCE_KEYS = {"nbgrader", "grade_id", "points", "title", "autograde"}
SKIP = "skip"  # the one value of autograde=...
GRADE_ID = re.compile(r"^[A-Za-z0-9_-]{1,60}$")
MODULE_PLACEHOLDER = re.compile(r"#\s*\{\{module:(?P<module>[A-Za-z_][\w.]*)\}\}")


class LabSourceError(ValueError):
    """A lab source breaks one of the authoring rules; the message names the cell."""


@dataclass(frozen=True)
class GradedPart:
    """One line of a lab's points table."""

    grade_id: str
    title: str
    kind: str  # "autograded" or "written"
    points: float


def read_source(lab: Lab) -> nbformat.NotebookNode:
    return jupytext.read(lab.source, fmt="py:percent")


def build_master(lab: Lab, layout: Layout) -> nbformat.NotebookNode:
    """The nbgrader master notebook of ``lab``, with deterministic cell ids."""
    source = read_source(lab)
    master = nbformat.v4.new_notebook()
    master.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(source.cells):
        master.cells.append(_master_cell(lab, index, cell))
    _check_graded_cells(lab, master)
    _check_skipped_cells(lab, master)
    _fill_placeholders(lab, layout, master, notebook_path=f"labs/{lab.notebook}")
    _append_hand_in_check(lab, master)
    return master


def graded_parts(notebook: nbformat.NotebookNode) -> list[GradedPart]:
    """The graded cells of a master notebook, in order."""
    parts = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            kind = "written" if meta.get("solution") else "autograded"
            title = cell.metadata.get("mdplab", {}).get("title", meta["grade_id"])
            parts.append(GradedPart(meta["grade_id"], title, kind, float(meta["points"])))
    return parts


def points_table(parts: list[GradedPart]) -> str:
    """A markdown table of the graded parts and their total."""
    lines = ["| Part | Graded | Points |", "|---|---|---:|"]
    lines += [f"| {p.title} | {p.kind} | {_number(p.points)} |" for p in parts]
    total = sum(p.points for p in parts)
    lines.append(f"| **Total** | | **{_number(total)}** |")
    return "\n".join(lines)


def colab_badge(url: str) -> str:
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def _master_cell(lab: Lab, index: int, cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    where = f"{lab.source.name}, cell {index + 1}"
    unknown = set(cell.metadata) - SOURCE_KEYS - {"lines_to_next_cell"}
    if unknown:
        raise LabSourceError(f"{where}: unknown header keys {sorted(unknown)}")
    if cell.cell_type == "markdown":
        new = nbformat.v4.new_markdown_cell(cell.source)
    elif cell.cell_type == "code":
        new = nbformat.v4.new_code_cell(cell.source)
    else:
        raise LabSourceError(f"{where}: cells are code or markdown, not {cell.cell_type}")
    role = cell.metadata.get("nbgrader")
    if "autograde" in cell.metadata and (
        cell.metadata["autograde"] != SKIP or role != "locked" or new.cell_type != "code"
    ):
        raise LabSourceError(
            f'{where}: autograde="{SKIP}" is for read-only code cells that only illustrate'
        )
    if role is None:
        if set(cell.metadata) & {"grade_id", "points"}:
            raise LabSourceError(f"{where}: grade_id/points without nbgrader=...")
        new["id"] = f"{lab.assignment}-cell-{index:03d}"
        return new
    if role not in ROLES:
        raise LabSourceError(f"{where}: nbgrader={role!r}; use one of {sorted(ROLES)}")
    grade_id = cell.metadata.get("grade_id")
    if not isinstance(grade_id, str) or not GRADE_ID.match(grade_id):
        raise LabSourceError(f"{where}: a {role} cell needs grade_id of letters, digits, _ or -")
    if grade_id == HAND_IN_ID:
        raise LabSourceError(
            f"{where}: grade_id {HAND_IN_ID} is kept for the build's hand-in check"
        )
    meta = _nbgrader_metadata(role, grade_id)
    if meta["grade"]:
        points = cell.metadata.get("points")
        if not isinstance(points, int | float) or isinstance(points, bool) or points <= 0:
            raise LabSourceError(f"{where}: graded cell {grade_id} needs points > 0")
        meta["points"] = points
        new.metadata["mdplab"] = {"title": str(cell.metadata.get("title", grade_id))}
    elif "points" in cell.metadata:
        raise LabSourceError(f"{where}: {role} cell {grade_id} is not graded; drop points")
    if role == "written" and new.cell_type != "markdown":
        raise LabSourceError(f"{where}: written answers are markdown cells")
    if "autograde" in cell.metadata:
        new.metadata["mdplab"] = {"autograde": SKIP}
    _check_markers(where, role, new)
    new.metadata["nbgrader"] = meta
    new["id"] = grade_id
    return new


def _nbgrader_metadata(role: str, grade_id: str) -> dict:
    """nbgrader's cell metadata for a cell of ``role`` (points are added for graded cells)."""
    grade, solution, locked = ROLES[role]
    return {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }


def _append_hand_in_check(lab: Lab, master: nbformat.NotebookNode) -> None:
    """End the lab with a heading and the locked cell of the students' hand-in check, made
    from the master's own graded cells."""
    heading = nbformat.v4.new_markdown_cell(HEADING)
    heading["id"] = f"{lab.assignment}-cell-{len(master.cells):03d}"
    master.cells.append(heading)
    check = nbformat.v4.new_code_cell(render_check(hand_in_data(lab.name, master)))
    check.metadata["nbgrader"] = _nbgrader_metadata("locked", HAND_IN_ID)
    # Its source is some 300 lines that a student need not read: JupyterLab collapses it,
    # and Colab shows the cell as a form with the `# @title` line as its title.
    check.metadata["jupyter"] = {"source_hidden": True}
    check.metadata["cellView"] = "form"
    check["id"] = HAND_IN_ID
    master.cells.append(check)


def _check_markers(where: str, role: str, cell: nbformat.NotebookNode) -> None:
    text = cell.source
    has_solution = BEGIN_SOLUTION in text
    if role == "answer" and cell.cell_type == "code" and not has_solution:
        raise LabSourceError(f"{where}: an answer cell needs {BEGIN_SOLUTION} ... {END_SOLUTION}")
    if has_solution != (END_SOLUTION in text):
        raise LabSourceError(f"{where}: unbalanced solution markers")
    if (BEGIN_HIDDEN in text) != (END_HIDDEN in text):
        raise LabSourceError(f"{where}: unbalanced hidden-test markers")
    if BEGIN_HIDDEN in text and role != "tests":
        raise LabSourceError(f"{where}: hidden tests belong in tests cells only")
    if has_solution and role not in ("answer", "written"):
        raise LabSourceError(f"{where}: solution markers belong in answer or written cells")


def _check_graded_cells(lab: Lab, master: nbformat.NotebookNode) -> None:
    ids = [c.metadata["nbgrader"]["grade_id"] for c in master.cells if "nbgrader" in c.metadata]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise LabSourceError(f"{lab.source.name}: grade_id used twice: {repeated}")
    if not graded_parts(master):
        raise LabSourceError(f"{lab.source.name}: a lab needs at least one graded cell")


def skipped_when_grading(notebook: nbformat.NotebookNode) -> list[str]:
    """The grade ids of the cells marked ``autograde="skip"``."""
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in notebook.cells
        if cell.metadata.get("mdplab", {}).get("autograde") == SKIP
    ]


def _check_skipped_cells(lab: Lab, master: nbformat.NotebookNode) -> None:
    """A skipped cell's names must not be read by a later cell that grading runs (a later
    skipped cell is not run either), where grading would miss them."""
    for index, cell in enumerate(master.cells):
        if cell.metadata.get("mdplab", {}).get("autograde") != SKIP:
            continue
        bound = names_bound(cell.source)
        for later in master.cells[index + 1 :]:
            skipped = later.metadata.get("mdplab", {}).get("autograde") == SKIP
            if later.cell_type != "code" or skipped:
                continue
            used = bound & names_read_before_bound(later.source)
            if used:
                raise LabSourceError(
                    f"{lab.source.name}: cell {cell.metadata['nbgrader']['grade_id']} is "
                    f'autograde="{SKIP}", but a later cell reads {sorted(used)}, which it '
                    "binds; grading would run that cell without them"
                )


def _fill_placeholders(
    lab: Lab, layout: Layout, notebook: nbformat.NotebookNode, *, notebook_path: str
) -> None:
    shared = {"{{repository}}": layout.repository, "{{raw_url}}": layout.raw_url("")}
    markdown = shared | {
        "{{colab_badge}}": colab_badge(layout.colab_url(notebook_path)),
        "{{points_table}}": points_table(graded_parts(notebook)),
    }
    for cell in notebook.cells:
        if "{{" not in cell.source:
            continue
        if cell.cell_type == "code":
            cell.source = _inline_module(lab, cell)
        for placeholder, value in (markdown if cell.cell_type == "markdown" else shared).items():
            cell.source = cell.source.replace(placeholder, value)
        # In code, "{{...}}" is also ordinary Python (braces in an f-string); only a module
        # placeholder that is not alone in its cell, or a markdown-only one, is an error.
        pattern = (
            r"\{\{[^}]*\}\}"
            if cell.cell_type == "markdown"
            else r"\{\{(?:module:[\w.]+|colab_badge|points_table)\}\}"
        )
        leftover = re.findall(pattern, cell.source)
        if leftover:
            raise LabSourceError(f"{lab.source.name}: unknown placeholders {leftover}")


def _inline_module(lab: Lab, cell: nbformat.NotebookNode) -> str:
    """The source of a ``# {{module:NAME}}`` cell: the module's text, checked to be free of
    mdplab imports; any other code cell is returned as it is."""
    match = MODULE_PLACEHOLDER.fullmatch(cell.source.strip())
    if match is None:
        return cell.source
    where = f"{lab.source.name}, cell {cell.get('id')}"
    if not cell.metadata.get("nbgrader", {}).get("locked"):
        raise LabSourceError(f"{where}: a module is inlined into locked cells only")
    spec = importlib.util.find_spec(match["module"])
    if spec is None or spec.origin is None:
        raise LabSourceError(f"{where}: no module {match['module']}")
    text = Path(spec.origin).read_text(encoding="utf-8")
    if re.search(r"^\s*(from|import)\s+mdplab\b", text, flags=re.MULTILINE):
        raise LabSourceError(f"{where}: {match['module']} imports mdplab; it cannot be inlined")
    return text.rstrip("\n")


def _number(points: float) -> str:
    return f"{points:g}"


def relink_badge(notebook: nbformat.NotebookNode, layout: Layout, notebook_path: str) -> None:
    """Point the Colab badge of a derived notebook at ``notebook_path`` instead of labs/."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and "colab.research.google.com/github/" in cell.source:
            cell.source = re.sub(
                r"\(https://colab\.research\.google\.com/github/[^)]*\)",
                f"({layout.colab_url(notebook_path)})",
                cell.source,
            )


def write_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validate(notebook)
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
