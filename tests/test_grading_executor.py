"""Read-only cells that the lab marks ``autograde="skip"`` are not run by the grader (and
are run with ``--run-all-cells``); a submission cannot mark cells to skip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
import pytest

from mdplab.grading.executor import SKIPPED_NOTE, RunReport, _Run
from mdplab.grading.kernel import Kernel
from mdplab.grading.sandbox import Limits, probe


def _cell(source: str, grade_id: str | None, *, locked=False, test=False, points=0, meta=None):
    cell = nbformat.v4.new_code_cell(source)
    if grade_id is not None:
        cell.metadata["nbgrader"] = {
            "grade_id": grade_id, "locked": locked or test, "grade": test, "solution": False,
            "points": points, "schema_version": 3,
        }  # fmt: skip
    cell.metadata.update(meta or {})
    return cell


def _notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            _cell("drawn = []\ndef value():\n    return 6 * 7", "setup", locked=True),
            _cell(
                "drawn.append('figure')\nopen('drawn.txt', 'w').write('x')",
                "figure",
                locked=True,
                meta={"mdplab": {"autograde": "skip"}},
            ),
            _cell("student_answer = 41", None),
            _cell("assert value() == 42", "test_value", test=True, points=1),
            _cell("print(len(drawn))", "count", locked=True),
        ]
    )


def _run(skip: set[str]) -> tuple[nbformat.NotebookNode, RunReport, Path]:
    folder = Path(tempfile.mkdtemp(prefix="mdplab-box-"))
    kernel = Kernel(probe(), Limits(cell_seconds=30, notebook_seconds=120), folder)
    notebook, report = _notebook(), RunReport()
    try:
        _Run(notebook, kernel, Limits(cell_seconds=30), report, skip).all_cells()
    finally:
        kernel.shutdown()
    return notebook, report, folder


@pytest.mark.parametrize("skip", [set(), {"figure"}])
def test_a_cell_named_to_skip_is_not_run_and_says_so(skip):
    notebook, report, folder = _run(skip)
    statuses = {event.grade_id: event.status for event in report.cells}
    assert statuses["test_value"] == "passed"
    figure, count = notebook.cells[1], notebook.cells[4]
    if skip:
        assert statuses["figure"] == "skipped" and not report.problems
        assert figure.outputs == [SKIPPED_NOTE]
        assert not (folder / "drawn.txt").exists()
        assert count.outputs[0].text == "0\n"
    else:
        assert statuses["figure"] == "ok"
        assert (folder / "drawn.txt").exists()
        assert count.outputs[0].text == "1\n"


def test_only_read_only_cells_are_skipped():
    """The skip list names grade ids; an answer or test cell carrying one still runs (a
    submission could give its own cell a skipped cell's id)."""
    _, report, _ = _run({"test_value", "setup"})
    statuses = {event.grade_id: event.status for event in report.cells}
    assert statuses["test_value"] == "failed"  # setup was skipped, so value() is missing
    assert statuses["setup"] == "skipped"
