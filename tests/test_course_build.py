"""The generated files: up to date with their sources, free of solutions where students
see them, and a hand edit of any of them is caught."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from course_helpers import LAYOUT, REPO

from mdplab.course.build import stale_files
from mdplab.course.layout import Layout

LABS = LAYOUT.all_labs()


def test_generated_files_are_up_to_date():
    assert stale_files(LAYOUT) == []


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    """The parts of the repository the build reads and writes, in a scratch folder."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    for folder in ("autograder", "labs", "solutions", "tests/catalogue"):
        shutil.copytree(REPO / folder, root / folder)
    return Layout(root)


@pytest.mark.parametrize(
    "relative",
    [
        "labs/lab00_orientation.ipynb",
        "solutions/lab00_orientation.ipynb",
        "autograder/source/lab00/lab00_orientation.ipynb",
        "autograder/samples/lab00/lovelaceada_1001_5001_lab00_orientation.ipynb",
    ],
)
def test_a_hand_edited_notebook_is_stale(repo_copy, relative):
    path = repo_copy.root / relative
    original = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(original, as_version=4)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.source += "\nprint('edited by hand')"
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    try:
        assert stale_files(repo_copy) == [f"{relative}: differs from its source"]
    finally:
        path.write_text(original, encoding="utf-8")


def test_an_edited_source_makes_its_outputs_stale(repo_copy):
    source = repo_copy.lab_sources / "lab00_orientation.py"
    original = source.read_text(encoding="utf-8")
    source.write_text(original.replace("numpy", "NumPy", 1), encoding="utf-8")
    try:
        problems = stale_files(repo_copy)
    finally:
        source.write_text(original, encoding="utf-8")
    assert "labs/lab00_orientation.ipynb: differs from its source" in problems
    assert "solutions/lab00_orientation.ipynb: differs from its source" in problems


def test_missing_and_extra_generated_files_are_reported(repo_copy):
    student = repo_copy.labs / "lab00_orientation.ipynb"
    extra = repo_copy.samples / "lab00" / "nobody_9_9_lab00_orientation.ipynb"
    saved = student.read_bytes()
    student.unlink()
    extra.write_bytes(saved)
    try:
        problems = stale_files(repo_copy)
    finally:
        student.write_bytes(saved)
        extra.unlink()
    assert "labs/lab00_orientation.ipynb: missing" in problems
    assert f"{extra.relative_to(repo_copy.root)}: no longer generated" in problems


def test_readme_table_lists_every_lab_with_colab_links():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for lab in LABS:
        assert f"labs/{lab.notebook}" in readme
        assert f"colab.research.google.com/github/{LAYOUT.github_path}/blob/main/labs/" in readme


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_student_notebooks_hold_no_outputs_solutions_or_hidden_tests(lab):
    student = nbformat.read(LAYOUT.labs / lab.notebook, as_version=4)
    master = nbformat.read(LAYOUT.master(lab), as_version=4)
    text = "\n".join(cell.source for cell in student.cells)
    for marker in (
        "BEGIN SOLUTION",
        "END SOLUTION",
        "HIDDEN TESTS",
        "import mdplab",
        "from mdplab",
    ):
        assert marker not in text
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    # Each answer cell is its master with the solution regions replaced by the stub.
    stub = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}
    for cell in master.cells:
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        inside, outside = _split_solution_region(cell.source)
        assert inside - outside, f"{cell.id}: the reference adds nothing to the stub"
        released = next(c for c in student.cells if c.get("id") == cell.id)
        lines = {line.strip() for line in released.source.splitlines() if line.strip()}
        assert not (lines & (inside - outside)), f"{cell.id}: solution lines reached students"
        assert lines <= outside | stub, f"{cell.id}: unexpected lines {lines - outside - stub}"


def _split_solution_region(text: str) -> tuple[set[str], set[str]]:
    """The stripped lines inside and outside the solution regions of a master cell."""
    inside: set[str] = set()
    outside: set[str] = set()
    in_region = False
    for raw in text.splitlines():
        line = raw.strip()
        if line == "### BEGIN SOLUTION":
            in_region = True
        elif line == "### END SOLUTION":
            in_region = False
        elif line:
            (inside if in_region else outside).add(line)
    return inside, outside


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_solutions_are_executed_and_carry_no_grading_metadata(lab):
    solution = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
    code = [c for c in solution.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is not None for c in code)
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    assert all("nbgrader" not in c.metadata for c in solution.cells)
