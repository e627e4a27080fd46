"""What students run works in a bare Colab-like runtime (no ``mdplab``): every worked
solution executes without error, and every student notebook fails only where a TODO is
left, with the NotImplementedError of its stub. Both run as in JupyterLab, which names the
notebook's file to the kernel, so that their last cell, the hand-in check, does its job:
the solution is ready to hand in, the blank notebook is not."""

from __future__ import annotations

import nbformat
import pytest
from colab_runtime import KERNEL_NAME, assert_mdplab_absent, colab_kernel_dir
from course_helpers import LAYOUT

from mdplab.course.execute import execute_notebook
from mdplab.course.handin import HAND_IN_ID

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


def hand_in_report(notebook: nbformat.NotebookNode) -> str:
    """What the notebook's hand-in check printed: one text on stdout and nothing else."""
    outputs = next(cell for cell in notebook.cells if cell.get("id") == HAND_IN_ID).outputs
    assert [(o.output_type, o.get("name")) for o in outputs] == [("stream", "stdout")], outputs
    return outputs[0].text


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_solution_executes_without_error(lab, colab_kernel, monkeypatch):
    path = LAYOUT.solutions / lab.notebook
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    notebook = nbformat.read(path, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.solutions, kernel_name=colab_kernel)
    report = hand_in_report(notebook)
    assert "Ready to hand in" in report and "✗" not in report, report


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_student_notebook_fails_only_on_todos(lab, colab_kernel, monkeypatch):
    path = LAYOUT.labs / lab.notebook
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    notebook = nbformat.read(path, as_version=4)
    execute_notebook(notebook, cwd=LAYOUT.labs, kernel_name=colab_kernel, allow_errors=True)
    assert "problems to fix before you hand in" in hand_in_report(notebook)
    errors = [
        (cell.metadata.get("nbgrader", {}).get("grade_id", cell.id), output.ename)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert errors, "a blank student notebook should stop at its TODOs"
    assert {ename for _, ename in errors} == {"NotImplementedError"}, errors
