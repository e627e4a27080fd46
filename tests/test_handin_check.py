"""The hand-in check, the last cell of every lab: what the build embeds in it, what it finds in
damaged notebooks, and what it prints when run in the Colab-like runtime through JupyterLab's
way of naming the notebook, through Colab's way of sending it, and elsewhere."""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from colab_runtime import KERNEL_NAME, assert_mdplab_absent, colab_kernel_dir
from course_helpers import LAYOUT, answered
from nbclient import NotebookClient

from mdplab.course import handin_cell
from mdplab.course.execute import QUIET_KERNEL, execute_notebook
from mdplab.course.handin import HAND_IN_ID, embedded_data, hand_in_data
from mdplab.course.kernel_client import WakefulKernelManager

LABS = LAYOUT.all_labs()
LAB00 = LAYOUT.lab("lab00")


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def check_cell(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if cell.get("id") == HAND_IN_ID)


def as_file(notebook: nbformat.NotebookNode) -> dict:
    """The notebook as the check reads it: the JSON of the .ipynb file (lists of lines)."""
    return json.loads(nbformat.writes(notebook))


# The cell the build renders -----------------------------------------------------------------


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_every_lab_ends_with_the_check_of_its_own_graded_cells(lab):
    master = nbformat.read(LAYOUT.master(lab), as_version=4)
    heading, check = master.cells[-2:]
    assert heading.cell_type == "markdown" and heading.source.startswith("## Before you hand in")
    assert check.cell_type == "code" and check.id == HAND_IN_ID
    assert check.metadata.nbgrader["locked"] and not check.metadata.nbgrader["grade"]
    compile(check.source, "hand_in_check", "exec")
    data = embedded_data(check.source)
    assert data["lab"] == lab.name and data["find_cells_by"] == "metadata"
    graded = [c for c in master.cells if "nbgrader" in c.metadata and c is not check]
    assert list(data["cells"]) == [grade_id(c) for c in graded]
    for cell in graded:
        spec, meta = data["cells"][grade_id(cell)], cell.metadata.nbgrader
        assert spec["type"] == cell.cell_type
        assert (
            spec["kind"]
            == {
                (False, True): "answer",
                (True, False): "tests",
                (True, True): "written",
                (False, False): "locked",
            }[(meta["grade"], meta["solution"])]
        )
        # Every cell can be found by its content: the solution has no metadata to go by.
        assert spec.get("find") or spec["kind"] == "written", grade_id(cell)
    # Students get the master's cell as it is; the worked solution finds cells by content.
    student = nbformat.read(LAYOUT.labs / lab.notebook, as_version=4)
    assert check_cell(student).source == check.source
    solution = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
    assert embedded_data(check_cell(solution).source) == data | {"find_cells_by": "content"}
    assert "import mdplab" not in check.source and "from mdplab" not in check.source


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_released_and_solution_notebooks_have_every_cell_in_place(lab):
    """The check's own logic, run in this process on each lab's generated notebooks."""
    data = embedded_data(check_cell(nbformat.read(LAYOUT.master(lab), as_version=4)).source)
    student = as_file(nbformat.read(LAYOUT.labs / lab.notebook, as_version=4))
    solution = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
    solution_data = embedded_data(check_cell(solution).source)

    found, problems = handin_cell._hand_in_locate(data, student["cells"])
    assert problems == [] and None not in found.values()
    todos = handin_cell._hand_in_open_todos(data, student["cells"], found)
    open_parts = [g for g, spec in data["cells"].items() if spec["kind"] in ("answer", "written")]
    assert len(todos) == len(open_parts)

    cells = as_file(solution)["cells"]
    found, problems = handin_cell._hand_in_locate(solution_data, cells)
    assert problems == [] and None not in found.values()
    assert handin_cell._hand_in_open_todos(solution_data, cells, found) == []
    # By content, each cell is the right one: its position matches the master's.
    master = nbformat.read(LAYOUT.master(lab), as_version=4)
    assert found == {grade_id(c): i for i, c in enumerate(master.cells) if grade_id(c) in found}


def damaged(change: Callable[[list], None]) -> list:
    cells = as_file(answered(LAB00))["cells"]
    change(cells)
    return cells


def index_of(cells: list, wanted: str) -> int:
    return next(i for i, c in enumerate(cells) if handin_cell._hand_in_grade_id(c) == wanted)


def _renamed(cells: list) -> None:
    cell = cells[index_of(cells, "discounted_cost")]
    cell["source"] = [
        line.replace("def discounted_cost(", "def my_cost(") for line in cell["source"]
    ]


def _written_as_new_cell(cells: list) -> None:
    """The student deleted the written answer's cell and wrote the answer in a new one."""
    cells[index_of(cells, "discount_meaning")]["metadata"] = {}


def _written_deleted(cells: list) -> None:
    del cells[index_of(cells, "discount_meaning")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_renamed, "TODO cell 'discounted_cost' no longer defines discounted_cost(...)"),
        (_written_as_new_cell, "Written answer 'Question: what β means' has lost its grading"),
        (_written_deleted, "Written answer 'Question: what β means' is missing"),
    ],
    ids=["renamed function", "written answer without metadata", "written answer deleted"],
)
def test_damage_is_named_in_plain_words(change, expected):
    data = embedded_data(check_cell(answered(LAB00)).source)
    _, problems = handin_cell._hand_in_locate(data, damaged(change))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_the_check_cell_is_collapsed_and_titled_in_every_notebook(lab):
    """~300 lines a student need not read: JupyterLab hides the source (jupyter.source_hidden)
    and Colab shows the cell as a form titled by its `# @title` line."""
    for folder in (LAYOUT.labs, LAYOUT.solutions):
        cell = nbformat.read(folder / lab.notebook, as_version=4).cells[-1]
        assert cell.metadata.get("jupyter") == {"source_hidden": True}, folder
        assert cell.metadata.get("cellView") == "form", folder
        assert cell.source.startswith("# @title Hand-in check: run this cell last"), folder


def _with_error(notebook: nbformat.NotebookNode, wanted: str | None, ename: str, evalue: str):
    """A copy of the saved file in which the cell ``wanted`` (a grade_id; None: a scratch
    cell the student added after the setup cell) shows an error, as after a Run All that
    stopped there."""
    changed = copy.deepcopy(notebook)
    if wanted is None:
        cell = nbformat.v4.new_code_cell("ratio = 1 / 0  # my scratch cell")
        changed.cells.insert(3, cell)
    else:
        cell = next(c for c in changed.cells if grade_id(c) == wanted)
    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
    return changed


def test_the_report_names_the_cell_where_run_all_stopped():
    student = nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4)
    data = embedded_data(check_cell(student).source)
    notebook = _with_error(student, "test_discounted_cost", "NotImplementedError", "")
    report = handin_cell._hand_in_report(data, as_file(notebook), "the file")
    index = next(i for i, c in enumerate(notebook.cells) if grade_id(c) == "test_discounted_cost")
    expected = (
        f"  → stopped at cell {index + 1} of {len(notebook.cells)}, Test cell 'Exercise 1: "
        "discounted cost': NotImplementedError. The cells below it did not run; fix that "
        "cell, then run all cells again."
    )
    assert expected in report.splitlines(), report


def test_an_error_outside_the_graded_cells_is_named_by_its_first_line():
    """A hostile or odd error text is cut to one line of at most 160 characters."""
    student = nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4)
    data = embedded_data(check_cell(student).source)
    notebook = _with_error(student, None, "ZeroDivisionError", "x" * 500 + "\nsecond line")
    report = handin_cell._hand_in_report(data, as_file(notebook), "the file")
    line = next(line for line in report.splitlines() if line.startswith("  → stopped at"))
    assert "the code cell that starts `" in line and "second line" not in line
    assert "ZeroDivisionError: " + "x" * 100 in line and "x" * 200 not in line


def test_a_test_of_an_open_todo_that_never_ran_is_counted_once(monkeypatch):
    """Run All stopped at Exercise 1's tests; the student answered discounted_cost, and
    periods_needed is still open and never ran: its visible test meets a NameError. That
    TODO is listed, and its test waits for it rather than being a second problem; the
    NameError of the answered TODO's test still counts."""
    student = nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4)
    data = embedded_data(check_cell(student).source)
    notebook = _with_error(student, "test_discounted_cost", "NotImplementedError", "")
    answer = next(c for c in notebook.cells if grade_id(c) == "discounted_cost")
    answer.source = "def discounted_cost(costs, beta):\n    return 0.0"
    written = next(c for c in notebook.cells if grade_id(c) == "discount_meaning")
    written.source = "β weighs a cost t periods away by β^t."
    index = {grade_id(c): i for i, c in enumerate(notebook.cells)}
    not_run = "NameError: name 'periods_needed' is not defined"
    other = "NameError: name 'helper' is not defined"
    monkeypatch.setattr(
        handin_cell,
        "_hand_in_run_tests",
        lambda lab, cells, found: [
            ("Exercise 1: discounted cost", index["test_discounted_cost"], (other, False)),
            ("Exercise 2: tail bound", index["test_periods_needed"], (not_run, False)),
        ],
    )
    lines = handin_cell._hand_in_report(data, as_file(notebook), "the file").splitlines()
    todo = "  ✗ periods_needed() still raises NotImplementedError(): replace the stub with your "
    todo += "code."
    assert todo in lines, lines
    assert f"  · Exercise 2: tail bound: waits for an open TODO ({not_run})" in lines
    assert any(line.startswith(f"  ✗ Exercise 1: discounted cost: {other}") for line in lines)
    assert "2 problems to fix before you hand in; then run this cell again." in lines, lines


def test_a_name_error_below_the_stop_says_why_the_cells_above_did_not_run():
    stopped = (4, "Test cell 'Exercise 1: discounted cost'", "NotImplementedError")
    below = handin_cell._hand_in_advice("NameError: name 'f' is not defined", 9, stopped)
    assert "Run All stopped at an error further up" in below
    alone = handin_cell._hand_in_advice("NameError: name 'f' is not defined", 9, None)
    assert alone == " (run all the cells above it first)"
    assert handin_cell._hand_in_advice("AssertionError: wrong", 9, stopped) == ""


def test_a_bug_in_the_check_is_reported_not_raised(tmp_path, monkeypatch, capsys):
    path = tmp_path / LAB00.notebook
    path.write_text(nbformat.writes(answered(LAB00)), encoding="utf-8")
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    handin_cell.hand_in_check({"cells": "not what the check expects"})
    out, err = capsys.readouterr()
    assert out.startswith("The hand-in check itself ran into a problem") and err == ""


# Running the cell in the Colab-like runtime ---------------------------------------------------


@pytest.fixture(scope="module")
def colab_kernel():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(colab_kernel_dir()))
        patch.delenv("PYTHONPATH", raising=False)
        assert_mdplab_absent()
        yield KERNEL_NAME


def run(notebook: nbformat.NotebookNode, folder: Path, kernel: str) -> tuple[str, list]:
    """Execute ``notebook`` in ``folder``; the check's printed report and every error output."""
    execute_notebook(notebook, cwd=folder, kernel_name=kernel, allow_errors=True)
    outputs = check_cell(notebook).outputs
    # Nothing on stderr, no error, nothing but printed text.
    assert [(o.output_type, o.get("name")) for o in outputs] == [("stream", "stdout")], outputs
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    return outputs[0].text, [o for o in errors if o.output_type == "error"]


def saved(notebook: nbformat.NotebookNode, folder: Path) -> Path:
    """Save ``notebook`` as JupyterLab would, where the check finds it by its session name."""
    path = folder / LAB00.notebook
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    return path


def without(notebook: nbformat.NotebookNode, wanted: str) -> nbformat.NotebookNode:
    changed = copy.deepcopy(notebook)
    changed.cells = [cell for cell in changed.cells if grade_id(cell) != wanted]
    return changed


def duplicated(notebook: nbformat.NotebookNode, wanted: str) -> nbformat.NotebookNode:
    changed = copy.deepcopy(notebook)
    index = next(i for i, cell in enumerate(changed.cells) if grade_id(cell) == wanted)
    twin = copy.deepcopy(changed.cells[index])
    twin.id = f"{wanted}-copy"  # a pasted cell gets a new id; its metadata comes along
    changed.cells.insert(index + 1, twin)
    return changed


def stripped(notebook: nbformat.NotebookNode, wanted: str) -> nbformat.NotebookNode:
    changed = copy.deepcopy(notebook)
    next(cell for cell in changed.cells if grade_id(cell) == wanted).metadata = {}
    return changed


def to_markdown(notebook: nbformat.NotebookNode, wanted: str) -> nbformat.NotebookNode:
    changed = copy.deepcopy(notebook)
    index = next(i for i, cell in enumerate(changed.cells) if grade_id(cell) == wanted)
    old = changed.cells[index]
    changed.cells[index] = nbformat.v4.new_markdown_cell(old.source, metadata=old.metadata)
    changed.cells[index].id = old.id
    return changed


READY = "Ready to hand in: File → Download → .ipynb"
ALL_OK = [
    "  ✓ all 6 in place",
    "  ✓ all answered",
    "  ✓ Exercise 1: discounted cost: ok",
    "  ✓ Exercise 2: tail bound: ok",
]


@pytest.mark.slow
def test_worked_solution_is_ready(colab_kernel, tmp_path, monkeypatch):
    solution = nbformat.read(LAYOUT.solutions / LAB00.notebook, as_version=4)
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved(solution, tmp_path)))
    report, errors = run(solution, tmp_path, colab_kernel)
    assert errors == []
    assert report.startswith(
        f"Hand-in check of lab00_orientation, reading the file {LAB00.notebook}"
    )
    assert all(line in report.splitlines() for line in ALL_OK), report
    assert READY in report and "✗" not in report


@pytest.mark.slow
def test_released_notebook_lists_every_todo_and_failing_test(colab_kernel, tmp_path, monkeypatch):
    student = nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4)
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved(student, tmp_path)))
    report, errors = run(student, tmp_path, colab_kernel)
    assert {e.ename for e in errors} == {"NotImplementedError"}  # the test cells, not the check
    lines = report.splitlines()
    for expected in [
        "  ✓ all 6 in place",
        "  ✗ discounted_cost() still raises NotImplementedError(): replace the stub with your "
        "code.",
        "  ✗ periods_needed() still raises NotImplementedError(): replace the stub with your code.",
        "  ✗ 'Question: what β means' still says YOUR ANSWER HERE: write your answer there.",
        # Counted once, as their TODOs above.
        "  · Exercise 1: discounted cost: waits for an open TODO (NotImplementedError)",
        "  · Exercise 2: tail bound: waits for an open TODO (NotImplementedError)",
        "3 problems to fix before you hand in; then run this cell again.",
        "  In Colab: File → Download → Download .ipynb",
        "  In JupyterLab: save (Ctrl+S), then File → Download",
    ]:
        assert expected in lines, f"{expected!r} not in\n{report}"


@pytest.mark.slow
def test_a_wrong_answer_fails_its_visible_test_with_the_first_line_of_its_error(
    colab_kernel, tmp_path, monkeypatch
):
    notebook = answered(LAB00)
    cell = next(c for c in notebook.cells if grade_id(c) == "periods_needed")
    cell.source = "def periods_needed(c_max, beta, tolerance):\n    return 3"
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved(notebook, tmp_path)))
    report, _ = run(notebook, tmp_path, colab_kernel)
    assert (
        "  ✗ Exercise 2: tail bound: AssertionError: with c_max=8, beta=0.8, tolerance=1 the "
        "answer is 17"
    ) in report.splitlines()
    assert "  ✓ Exercise 1: discounted cost: ok" in report.splitlines()
    assert "1 problem to fix before you hand in; then run this cell again." in report


DAMAGE = {
    "deleted test cell": (
        lambda nb: without(nb, "test_periods_needed"),
        "  ✗ Test cell 'Exercise 2: tail bound' is missing. Undo the deletion, or copy the cell "
        "from a fresh copy of the lab.",
        1,
    ),
    "duplicated answer cell": (
        lambda nb: duplicated(nb, "discounted_cost"),
        "  ✗ TODO cell 'discounted_cost' appears 2 times. The grader keeps only the last one: "
        "keep your work in one copy and delete the others.",
        2,
    ),
    "stripped metadata": (
        lambda nb: stripped(nb, "periods_needed"),
        "  ✗ TODO cell 'periods_needed' has lost its grading information, so the grader cannot "
        "see it. Copy its content into the same cell of a fresh copy of the lab.",
        2,
    ),
    "changed cell type": (
        lambda nb: to_markdown(nb, "test_discounted_cost"),
        "  ✗ Test cell 'Exercise 1: discounted cost' was turned into a text cell. Turn it back "
        "into a code cell (Colab: Ctrl+M Y for code, Ctrl+M M for text; JupyterLab: Esc, then "
        "Y or M).",
        1,  # a test cell turned into text is not run
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_structure_is_reported(damage, colab_kernel, tmp_path, monkeypatch):
    change, expected, passing = DAMAGE[damage]
    notebook = change(answered(LAB00))
    monkeypatch.setenv("JPY_SESSION_NAME", str(saved(notebook, tmp_path)))
    report, errors = run(notebook, tmp_path, colab_kernel)
    assert errors == []
    lines = report.splitlines()
    assert expected in lines, f"{expected!r} not in\n{report}"
    assert "1 problem to fix before you hand in; then run this cell again." in lines
    # The test cells that are still there still run, and pass.
    assert sum(line.endswith(": ok") for line in lines) == passing


FAKE_MESSAGE = '''\
"""Stands in for Colab's google.colab._message: it answers get_ipynb with a fixed notebook
and records each request it gets."""

import json

NOTEBOOK = {notebook!r}
REQUESTS = {requests!r}


def blocking_request(request_type, request="", timeout_sec=5, parent=None):
    with open(REQUESTS, "a", encoding="utf-8") as log:
        log.write(json.dumps([request_type, request]) + "\\n")
    if request_type != "get_ipynb":
        return None
    with open(NOTEBOOK, encoding="utf-8") as handle:
        return {{"ipynb": json.load(handle)}}
'''


@pytest.mark.slow
def test_in_colab_the_check_reads_the_notebook_open_in_the_browser(
    colab_kernel, tmp_path, monkeypatch
):
    """Colab sends the notebook as it is in the browser, unsaved edits included: here it lacks
    a test cell that the executed copy still has, and no file name is known."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    browser = tmp_path / "in_the_browser.ipynb"
    browser.write_text(nbformat.writes(without(answered(LAB00), "test_periods_needed")))
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    requests = tmp_path / "requests.jsonl"
    (fake / "google" / "colab" / "_message.py").write_text(
        FAKE_MESSAGE.format(notebook=str(browser), requests=str(requests))
    )
    notebook = answered(LAB00)
    # Colab imports google.colab when its runtime starts.
    setup = f"import sys\nsys.path.insert(0, {str(fake)!r})\nimport google.colab"
    notebook.cells.insert(0, nbformat.v4.new_code_cell(setup))
    report, errors = run(notebook, tmp_path, colab_kernel)
    assert errors == []
    assert report.startswith(
        "Hand-in check of lab00_orientation, reading the notebook as it is open in Colab now."
    )
    assert "  ✗ Test cell 'Exercise 2: tail bound' is missing." in report
    assert [json.loads(line) for line in requests.read_text().splitlines()] == [["get_ipynb", ""]]


@pytest.mark.slow
def test_elsewhere_the_check_is_skipped_in_one_line_and_at_once(
    colab_kernel, tmp_path, monkeypatch
):
    """As when the autograder runs the notebook: no Colab, no notebook file named."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    notebook = answered(LAB00)
    client = NotebookClient(
        notebook,
        kernel_name=colab_kernel,
        extra_arguments=QUIET_KERNEL,
        resources={"metadata": {"path": str(tmp_path)}},
        record_timing=True,
        coalesce_streams=True,
        kernel_manager_class=WakefulKernelManager,
    )
    client.execute()
    cell = check_cell(notebook)
    assert [(o.output_type, o.get("name")) for o in cell.outputs] == [("stream", "stdout")]
    assert cell.outputs[0].text == textwrap.dedent(
        """\
        Hand-in check skipped: not running in Colab or JupyterLab, so there is no notebook to read.
        """
    )
    timing = cell.metadata.execution
    seconds = _seconds(timing["shell.execute_reply"]) - _seconds(timing["iopub.execute_input"])
    # A guard against waiting, not a speed test: the one way this path could be slow is a
    # request to a frontend that is not there (30 s), and a loaded CI machine must not fail it.
    assert seconds < 5, f"the skipped check took {seconds:.2f} s"


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_written_answer_after_a_cell_of_comments_only_is_refused():
    """The written answer is found between its neighbours' own lines; a code cell of
    comments has none, and the check would take the notebook's first cell instead."""
    master = nbformat.v4.new_notebook()
    master.cells = [
        nbformat.v4.new_markdown_cell("## Question 1\n\nWhy does the recursion run backwards?"),
        nbformat.v4.new_code_cell("# your scratch work"),
        nbformat.v4.new_markdown_cell("YOUR ANSWER HERE"),
    ]
    master.cells[2].metadata["nbgrader"] = {
        "grade": True, "solution": True, "locked": False, "grade_id": "why", "points": 1,
    }  # fmt: skip
    with pytest.raises(ValueError, match="comments only"):
        hand_in_data("lab99", master)
    master.cells[1].source += "\nscratch_result = None"
    assert hand_in_data("lab99", master)["cells"]["why"]["after"] == "scratch_result = None"
