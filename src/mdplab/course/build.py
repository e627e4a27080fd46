"""The one command that turns each lab's source into every generated file, and the
check that those files are up to date.

For each lab source ``autograder/lab_sources/labNN_topic.py`` it writes

- ``autograder/source/labNN/labNN_topic.ipynb``: the nbgrader master;
- ``labs/labNN_topic.ipynb``: the student notebook, from nbgrader's generate_assignment;
- ``solutions/labNN_topic.ipynb``: the worked solution, executed so that outputs show;
- ``autograder/samples/labNN/*.ipynb``: the sample submissions (see :mod:`.samples`);

and the lab table of ``README.md``.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors.coalescestreams import CoalesceStreamsPreprocessor

from mdplab.course.authoring import build_master, relink_badge, write_notebook
from mdplab.course.derive import solution_notebook
from mdplab.course.execute import execute_notebook
from mdplab.course.layout import Lab, Layout
from mdplab.course.nbgrader_course import WorkingCourse
from mdplab.course.readme import render_readme
from mdplab.course.samples import SampleSubmission, build_samples
from mdplab.course.widget_state import settle_widgets


@dataclass
class BuiltLab:
    """Everything generated from one lab source, in memory."""

    lab: Lab
    master: nbformat.NotebookNode
    student: nbformat.NotebookNode
    solution: nbformat.NotebookNode
    samples: list[SampleSubmission] = field(default_factory=list)

    def files(self, layout: Layout) -> dict[Path, nbformat.NotebookNode]:
        files = {
            layout.master(self.lab): self.master,
            layout.labs / self.lab.notebook: self.student,
            layout.solutions / self.lab.notebook: self.solution,
        }
        return files

    def sample_files(self, layout: Layout) -> dict[Path, bytes]:
        return {layout.samples / self.lab.assignment / s.file_name: s.content for s in self.samples}


def build_lab(lab: Lab, layout: Layout, *, execute: bool = True) -> BuiltLab:
    """Master, student notebook (through nbgrader), solution and samples of ``lab``."""
    master = build_master(lab, layout)
    with tempfile.TemporaryDirectory(prefix="mdplab-build-") as work:
        course = WorkingCourse(Path(work), layout.nbgrader_config)
        course.add_master(lab, master)
        student = nbformat.read(course.generate(lab), as_version=4)
    solution = solution_notebook(master)
    relink_badge(solution, layout, f"solutions/{lab.notebook}")
    if execute:
        metadata = copy.deepcopy(solution.metadata)
        execute_notebook(solution, cwd=layout.solutions)
        # A cell's printout may arrive in one stream message or several, depending on
        # timing; merged, the file is the same on every rebuild.
        solution, _ = CoalesceStreamsPreprocessor().preprocess(solution, {})
        # The kernel records its Python version; keep the file the same on every machine,
        # but keep the widgets' saved state so that explorers render when opened.
        widgets = solution.metadata.get("widgets")
        solution.metadata = metadata
        if widgets:
            solution.metadata["widgets"] = widgets
            settle_widgets(solution, lab.assignment)
    samples = build_samples(lab, layout, master, student)
    return BuiltLab(lab, master, student, solution, samples)


def build(layout: Layout, labs: list[Lab] | None = None, *, log=print) -> list[Path]:
    """Write every generated file of ``labs`` (default: all) and the README's lab table."""
    written: list[Path] = []
    for lab in labs or layout.all_labs():
        log(f"building {lab.name}")
        built = build_lab(lab, layout)
        # Samples are regenerated whole, so a sample dropped from the list disappears.
        for old in (layout.samples / lab.assignment).glob("*.ipynb"):
            old.unlink()
        for path, notebook in built.files(layout).items():
            write_notebook(notebook, path)
            written.append(path)
        for path, content in built.sample_files(layout).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(path)
    layout.readme.write_text(render_readme(layout), encoding="utf-8")
    written.append(layout.readme)
    return written


def stale_files(layout: Layout) -> list[str]:
    """Generated files that differ from what their sources give now, with the reason.

    Solutions are compared without outputs (running them again is the executing test's
    job); everything else is compared byte for byte.
    """
    problems: list[str] = []
    for lab in layout.all_labs():
        built = build_lab(lab, layout, execute=False)
        expected = built.files(layout)
        for path, notebook in expected.items():
            relative = path.relative_to(layout.root)
            if not path.exists():
                problems.append(f"{relative}: missing")
                continue
            if path.parent == layout.solutions:
                on_disk = nbformat.read(path, as_version=4)
                if _without_outputs(on_disk) != _without_outputs(notebook):
                    problems.append(f"{relative}: differs from its source")
                if any(c.cell_type == "code" and c.execution_count is None for c in on_disk.cells):
                    problems.append(f"{relative}: not executed")
            elif path.read_text(encoding="utf-8") != nbformat.writes(notebook) + "\n":
                problems.append(f"{relative}: differs from its source")
        samples = built.sample_files(layout)
        for path, content in samples.items():
            if not path.exists():
                problems.append(f"{path.relative_to(layout.root)}: missing")
            elif path.read_bytes() != content:
                problems.append(f"{path.relative_to(layout.root)}: differs from its source")
        sample_dir = layout.samples / lab.assignment
        for extra in set(sample_dir.glob("*.ipynb")) - set(samples):
            problems.append(f"{extra.relative_to(layout.root)}: no longer generated")
    readme = layout.readme.read_text(encoding="utf-8") if layout.readme.exists() else ""
    if readme != render_readme(layout):
        problems.append("README.md: its lab table differs from the labs")
    return problems


def _without_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    bare = copy.deepcopy(notebook)
    for cell in bare.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    bare.metadata.pop("widgets", None)  # saved widget state changes with every run
    return bare
