"""Notebook execution for the build: a cell past its time limit is raised at once (the
notebook is not run again); a cell's text on one stream is one output however the kernel
flushed it."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from mdplab.course.execute import execute_notebook


def test_a_cell_past_its_time_limit_is_raised_after_one_run(tmp_path):
    runs = tmp_path / "runs.txt"
    stall = (
        f"import time\nwith open({str(runs)!r}, 'a') as f:\n    f.write('run\\n')\ntime.sleep(60)"
    )
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(stall), nbformat.v4.new_code_cell("print(6 * 7)")]
    )
    with pytest.raises(CellTimeoutError):
        execute_notebook(notebook, cwd=tmp_path, timeout=2)
    assert runs.read_text() == "run\n"
    assert notebook.cells[1].outputs == []


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
