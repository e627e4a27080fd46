"""Notebook execution for the build: a cell past its time limit is raised at once (the
notebook is not run again); a cell's text on one stream is one output however the kernel
flushed it; a figure's bytes do not depend on the machine's settings."""

from __future__ import annotations

import base64

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


FIGURE = (
    "import os\n"
    "import matplotlib.pyplot as plt\n"
    "fig, ax = plt.subplots(figsize=(3, 2))\n"
    "ax.semilogy([1, 2, 3], [1e-3, 1e-1, 1], label=r'$\\beta^k \\|V_k - V^*\\|_\\infty$')\n"
    "ax.legend()\n"
    "plt.show()\n"
    "print(os.environ.get('PYTHONHASHSEED'), os.environ.get('OPENBLAS_NUM_THREADS'))"
)


def drawn(tmp_path) -> tuple[bytes, str]:
    """The PNG and the printout of a notebook that draws a formula on a log axis."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FIGURE)])
    execute_notebook(notebook, cwd=tmp_path)
    outputs = notebook.cells[0].outputs
    assert [output.output_type for output in outputs] == ["display_data", "stream"], outputs
    return base64.b64decode(outputs[0].data["image/png"]), outputs[1].text


def test_a_figure_does_not_depend_on_the_machine(tmp_path, monkeypatch):
    png, printed = drawn(tmp_path)
    # What a user may have set, none of which reaches the kernel.
    config = tmp_path / "config"
    (config / "matplotlib").mkdir(parents=True)
    (config / "matplotlib" / "matplotlibrc").write_text("mathtext.fontset: cm\n")
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.InlineBackend.figure_formats = {'retina'}\n"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    assert drawn(tmp_path) == (png, printed)
    assert b"tEXt" not in png and b"Matplotlib" not in png  # no version stamp
    assert printed == "0 1\n"


def test_the_kernel_listens_on_unix_sockets_not_tcp_ports(tmp_path):
    """A TCP port chosen free can be taken before the kernel binds it; the kernel then dies
    at start-up and the client waits for it forever. Unix sockets in the scratch folder
    cannot collide."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(
        nbformat.v4.new_code_cell(
            "from ipykernel import get_connection_info\n"
            "print(get_connection_info(unpack=True)['transport'])"
        )
    )
    execute_notebook(notebook, cwd=tmp_path)
    assert notebook.cells[0].outputs[0]["text"].strip() == "ipc"


def test_a_run_without_figures_draws_none_and_runs_on(tmp_path):
    """draw_figures=False (the catalogue's plain runs): plt.show() puts no image in the
    notebook, and the cells after it still run."""
    source = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\nprint('after')"
    drawn, undrawn = (nbformat.v4.new_notebook() for _ in range(2))
    for notebook in (drawn, undrawn):
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    execute_notebook(drawn, cwd=tmp_path)
    execute_notebook(undrawn, cwd=tmp_path, draw_figures=False)
    kinds = [[o.get("data", {}).keys() for o in nb.cells[0].outputs] for nb in (drawn, undrawn)]
    assert any("image/png" in k for k in kinds[0])
    assert not any("image/png" in k for k in kinds[1])
    assert any("after" in o.get("text", "") for o in undrawn.cells[0].outputs)
