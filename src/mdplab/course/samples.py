"""The bundled sample submissions that the main job grades.

``autograder/samples/samples.toml`` lists them: for each, the lab, the file name an LMS
download gives it, and what its answer cells hold: ``reference`` (the worked solution),
``blank`` (the notebook as released) or ``catalogue:<entry>`` (an entry of the lab's
catalogue, e.g. ``catalogue:wrong.no_discount``), and optionally ``damage``: how the file
got broken on the way (see :mod:`mdplab.course.damage`). The build writes the files to
``autograder/samples/labNN/``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import nbformat

from mdplab.course.catalogue import catalogue_entry
from mdplab.course.damage import damaged_file
from mdplab.course.derive import fill_answers, reference_answers
from mdplab.course.layout import Lab, Layout


@dataclass(frozen=True)
class SampleSubmission:
    file_name: str
    answers: str
    content: bytes  # the file as downloaded; damaged ones are not valid notebooks


def sample_specs(layout: Layout) -> list[dict]:
    path = layout.samples / "samples.toml"
    with path.open("rb") as handle:
        specs = tomllib.load(handle).get("sample", [])
    for spec in specs:
        missing = {"lab", "file", "answers"} - set(spec)
        if missing:
            raise ValueError(f"{path}: a [[sample]] lacks {sorted(missing)}: {spec}")
    return specs


def build_samples(
    lab: Lab,
    layout: Layout,
    master: nbformat.NotebookNode,
    student: nbformat.NotebookNode,
) -> list[SampleSubmission]:
    """The sample submissions of ``lab``, as the student would download them."""
    samples = []
    for spec in sample_specs(layout):
        if spec["lab"] != lab.assignment:
            continue
        answers = _answers(spec["answers"], lab, layout, master)
        notebook = fill_answers(student, answers)
        if spec.get("colab", False):
            # What Colab adds to every notebook it saves.
            notebook.metadata["colab"] = {"provenance": [], "toc_visible": True}
            notebook.metadata["accelerator"] = "None"
        content = damaged_file(notebook, spec.get("damage", []))
        samples.append(SampleSubmission(spec["file"], spec["answers"], content))
    return samples


def _answers(kind: str, lab: Lab, layout: Layout, master: nbformat.NotebookNode) -> dict[str, str]:
    if kind == "blank":
        return {}
    reference = reference_answers(master)
    if kind == "reference":
        return reference
    if kind.startswith("catalogue:"):
        entry = catalogue_entry(layout, lab, kind.removeprefix("catalogue:"))
        return reference | entry.answers
    raise ValueError(f"sample answers are reference, blank or catalogue:<entry>, not {kind!r}")
