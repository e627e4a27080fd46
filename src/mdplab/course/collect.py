"""Mapping downloaded submission files to a student and a lab.

LMS exports name files ``<student>_<userid>_<submissionid>_<original name>`` (Canvas;
``_LATE`` may follow the student). Colab and browsers change the original name:
``Copy of lab00_orientation.ipynb``, ``lab00_orientation (1).ipynb``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mdplab.course.layout import Lab

CANVAS = re.compile(r"^(?P<student>[A-Za-z0-9-]+?)(?:_LATE)?_(?P<user>\d+)_(?:\d+_)?(?P<rest>.+)$")
COPY_OF = re.compile(r"^(?:Copy[ _]of[ _])+", flags=re.IGNORECASE)
DUPLICATE_SUFFIX = re.compile(r"(?:[ _]?\(\d+\)|-\d+)$")


@dataclass(frozen=True)
class Placed:
    path: Path
    student_id: str
    lab: Lab


def original_name(name: str) -> str:
    """The notebook name the lab gave, with Colab's and the browser's changes undone."""
    stem = COPY_OF.sub("", Path(name).stem)
    stem = DUPLICATE_SUFFIX.sub("", stem)
    return f"{stem}.ipynb"


def place(path: Path, labs: list[Lab]) -> Placed | None:
    """The student and lab of a Canvas-named file, or None when it cannot be placed."""
    match = CANVAS.match(path.name)
    if not match:
        return None
    name = original_name(match.group("rest"))
    for lab in labs:
        if name == lab.notebook:
            return Placed(path, match.group("student").lower(), lab)
    return None
