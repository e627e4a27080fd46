"""Every worked solution runs without error, and every student notebook fails only where
a TODO is left: with the NotImplementedError of its stub."""

from __future__ import annotations

import nbformat
import pytest
from course_helpers import LAYOUT

from mdplab.course.execute import execute_notebook

LABS = LAYOUT.all_labs()
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_solution_executes_without_error(lab, tmp_path):
    notebook = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.solutions)


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_student_notebook_fails_only_on_todos(lab):
    notebook = nbformat.read(LAYOUT.labs / lab.notebook, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.labs, allow_errors=True)
    errors = [
        (cell.metadata.get("nbgrader", {}).get("grade_id", cell.id), output.ename)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors, "a blank student notebook should stop at its TODOs"
    assert {ename for _, ename in errors} == {"NotImplementedError"}, errors
