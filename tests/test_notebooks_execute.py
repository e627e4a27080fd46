"""What students run works in a bare Colab-like runtime (no ``mdplab``): every worked
solution executes without error, and every student notebook fails only where a TODO is
left, with the NotImplementedError of its stub."""

from __future__ import annotations

import nbformat
import pytest
from colab_runtime import KERNEL_NAME, assert_mdplab_absent, colab_kernel_dir
from course_helpers import LAYOUT

from mdplab.course.execute import execute_notebook

LABS = LAYOUT.all_labs()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def colab_kernel(monkeypatch_module):
    monkeypatch_module.setenv("JUPYTER_PATH", str(colab_kernel_dir()))
    monkeypatch_module.delenv("PYTHONPATH", raising=False)
    assert_mdplab_absent()
    return KERNEL_NAME


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_solution_executes_without_error(lab, colab_kernel):
    notebook = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.solutions, kernel_name=colab_kernel)


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_student_notebook_fails_only_on_todos(lab, colab_kernel):
    notebook = nbformat.read(LAYOUT.labs / lab.notebook, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.labs, kernel_name=colab_kernel, allow_errors=True)
    errors = [
        (cell.metadata.get("nbgrader", {}).get("grade_id", cell.id), output.ename)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors, "a blank student notebook should stop at its TODOs"
    assert {ename for _, ename in errors} == {"NotImplementedError"}, errors
