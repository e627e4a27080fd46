"""Each lab's catalogue, graded through nbgrader: every wrong answer loses exactly the
points of the test cells it names, every correct one keeps full marks."""

from __future__ import annotations

import nbformat
import pytest
from course_helpers import LAYOUT, answered

from mdplab.course.catalogue import CatalogueEntry, catalogue_path, load_catalogue
from mdplab.course.layout import Lab
from mdplab.course.nbgrader_course import WorkingCourse

pytestmark = pytest.mark.slow

LABS = LAYOUT.all_labs()
REFERENCE = CatalogueEntry("correct.reference", "the worked solution", {}, ())
# A lab without a catalogue yet still gets its reference graded; the size test fails it.
CASES = [
    (lab, entry)
    for lab in LABS
    for entry in [
        REFERENCE,
        *(load_catalogue(LAYOUT, lab) if catalogue_path(LAYOUT, lab).exists() else []),
    ]
]
_courses: dict[str, WorkingCourse] = {}


def course_for(lab: Lab, tmp_path_factory) -> WorkingCourse:
    if lab.name not in _courses:
        course = WorkingCourse(tmp_path_factory.mktemp(lab.assignment), LAYOUT.nbgrader_config)
        course.add_master(lab, nbformat.read(LAYOUT.master(lab), as_version=4))
        course.generate(lab)
        _courses[lab.name] = course
    return _courses[lab.name]


@pytest.mark.parametrize("lab", LABS, ids=[lab.name for lab in LABS])
def test_catalogue_is_big_enough(lab):
    assert catalogue_path(LAYOUT, lab).exists(), f"{lab.name} has no catalogue"
    entries = load_catalogue(LAYOUT, lab)
    assert sum(not e.correct for e in entries) >= 8, lab.name
    assert sum(e.correct for e in entries) >= 3, lab.name


@pytest.mark.parametrize(
    ("lab", "entry"), CASES, ids=[f"{lab.assignment}-{entry.name}" for lab, entry in CASES]
)
def test_catalogue_entry_is_graded_as_expected(lab, entry, tmp_path_factory):
    course = course_for(lab, tmp_path_factory)
    submission = answered(lab, entry.answers)
    student_id = entry.name.replace(".", "-").replace("_", "-")
    course.submit(lab, student_id, submission)
    score = course.autograde(lab, student_id)
    lost = sorted(c.grade_id for c in score.cells if c.autograded and c.score != c.max_score)
    assert lost == sorted(entry.fails), f"{entry.name} ({entry.description})"
