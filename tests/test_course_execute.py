"""Notebook execution for the build: a cell past its time limit gets the notebook one more
run in a fresh kernel; a second timeout is raised; a cell's text on one stream is one
output however the kernel flushed it."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from mdplab.course.execute import execute_notebook


def _notebook(marker, *, always: bool) -> nbformat.NotebookNode:
    stall = (
        "import time\ntime.sleep(60)"
        if always
        else f"import os, time\nif not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n    time.sleep(60)"
    )
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(stall), nbformat.v4.new_code_cell("print(6 * 7)")]
    )


def test_a_notebook_that_stalls_once_is_run_again(tmp_path):
    notebook = _notebook(tmp_path / "stalled-once", always=False)
    execute_notebook(notebook, cwd=tmp_path, timeout=3)
    assert notebook.cells[1].outputs[0].text == "42\n"
    assert (tmp_path / "stalled-once").exists()


def test_a_notebook_that_stalls_twice_fails(tmp_path):
    with pytest.raises(CellTimeoutError):
        execute_notebook(_notebook(tmp_path / "unused", always=True), cwd=tmp_path, timeout=2)


def test_text_flushed_in_pieces_is_one_output(tmp_path):
    # sys.stdout.flush() forces the split that a loaded machine causes by chance.
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import sys\nprint('first', end='')\nsys.stdout.flush()\n"
                "print(' second')\nprint('apart', file=sys.stderr)"
            )
        ]
    )
    execute_notebook(notebook, cwd=tmp_path)
    outputs = notebook.cells[0].outputs
    texts = [(output.name, output.text) for output in outputs]
    assert texts == [("stdout", "first second\n"), ("stderr", "apart\n")]
