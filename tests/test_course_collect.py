"""Placing downloaded files: LMS names and the renames Colab and browsers make."""

from __future__ import annotations

from pathlib import Path

import pytest
from course_helpers import LAYOUT

from mdplab.course.collect import original_name, place

LABS = LAYOUT.all_labs()


@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("Copy of lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("Copy of Copy of lab00_orientation.ipynb", "lab00_orientation.ipynb"),
        ("lab00_orientation (1).ipynb", "lab00_orientation.ipynb"),
        ("Copy of lab00_orientation (12).ipynb", "lab00_orientation.ipynb"),
        ("lab00_orientation-2.ipynb", "lab00_orientation.ipynb"),
    ],
)
def test_original_name_undoes_renames(name, original):
    assert original_name(name) == original


def test_canvas_names_give_student_and_lab():
    placed = place(Path("turingalan_LATE_1004_5004_Copy of lab00_orientation (1).ipynb"), LABS)
    assert placed is not None
    assert (placed.student_id, placed.lab.assignment) == ("turingalan", "lab00")
    placed = place(Path("hopperg_1003_5003_lab00_orientation.ipynb"), LABS)
    assert placed is not None and placed.student_id == "hopperg"


@pytest.mark.parametrize(
    "name", ["lab00_orientation.ipynb", "hopperg_1003_5003_my_homework.ipynb", "x_y_z.ipynb"]
)
def test_unplaceable_files_give_none(name):
    assert place(Path(name), LABS) is None
