"""The ways a submission file gets broken on its way from the student to the grader.

Used to make the bundled broken samples and the tamper catalogue's file-level cases.
Each change is a short string:

- ``strip_metadata``: every cell loses its nbgrader metadata (some editors drop it);
- ``duplicate:<grade_id>``: the cell is copied right below itself (Colab does not lock);
- ``delete:<grade_id>``: the cell is deleted;
- ``markdown:<grade_id>``: the cell becomes a markdown cell with the same text;
- ``corrupt_json``: the file is cut off after 2000 bytes (an interrupted download);
- ``nbformat5``: the file claims a notebook format that does not exist yet.

And the ways a hostile student crafts one, to hold up or crash the grader:

- ``deep_json:<n>``: the notebook's metadata holds a list nested ``n`` deep;
- ``deep_metadata:<n>``: the first cell's metadata holds a list nested ``n`` deep;
- ``many_cells:<n>``: ``n`` empty code cells without ids are appended;
- ``bracket_line:<n>``: a markdown cell holding one line of ``n`` ``[`` characters, which
  super-quadratic link-matching regexes choke on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence

import nbformat


def damaged_file(notebook: nbformat.NotebookNode, changes: Sequence[str]) -> bytes:
    """The bytes of ``notebook`` as written after ``changes``, in order."""
    notebook = copy.deepcopy(notebook)
    raw: bytes | None = None
    for change in changes:
        action, _, grade_id = change.partition(":")
        if action == "strip_metadata":
            for cell in notebook.cells:
                cell.metadata.pop("nbgrader", None)
        elif action == "duplicate":
            index = _index(notebook, grade_id)
            twin = copy.deepcopy(notebook.cells[index])
            twin.id = f"{twin.id}-copy"[:64]
            notebook.cells.insert(index + 1, twin)
        elif action == "delete":
            del notebook.cells[_index(notebook, grade_id)]
        elif action == "markdown":
            index = _index(notebook, grade_id)
            old = notebook.cells[index]
            notebook.cells[index] = nbformat.v4.new_markdown_cell(old.source, id=old.id)
        elif action == "corrupt_json":
            raw = nbformat.writes(notebook).encode()[:2000]
        elif action == "nbformat5":
            data = json.loads(nbformat.writes(notebook))
            data["nbformat"], data["nbformat_minor"] = 5, 0
            raw = json.dumps(data, indent=1).encode()
        elif action in ("deep_json", "deep_metadata"):
            # Written by hand: json.dumps itself recurses, and gives up long before n.
            depth = int(grade_id)
            text = nbformat.writes(notebook)
            marker = '"metadata": {'
            # The notebook's own metadata follows its cells; the first cell's comes first.
            at = text.rindex(marker) if action == "deep_json" else text.index(marker)
            deep = '"deep": ' + "[" * depth + "]" * depth + ", "
            at += len(marker)
            raw = (text[:at] + deep + text[at:]).encode()
        elif action == "many_cells":
            for _ in range(int(grade_id)):
                cell = nbformat.v4.new_code_cell("")
                del cell["id"]
                notebook.cells.append(cell)
        elif action == "bracket_line":
            notebook.cells.append(nbformat.v4.new_markdown_cell("[" * int(grade_id)))
        else:
            raise ValueError(f"unknown damage {change!r}; see mdplab.course.damage")
    return raw if raw is not None else (nbformat.writes(notebook) + "\n").encode()


def _index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    for index, cell in enumerate(notebook.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise ValueError(f"no cell with grade_id {grade_id!r} to damage")
