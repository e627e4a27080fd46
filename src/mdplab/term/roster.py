"""A class roster: who is enrolled, with the ids the LMS needs to take grades back.

The roster is a CSV with Canvas's gradebook columns, so the file Canvas exports
(Grades → Export) serves as it is: ``Student`` ("Last, First"), ``ID`` (the Canvas user id,
which is also the number in the names of a bulk download), and optionally ``SIS User
ID``, ``SIS Login ID`` and ``Section``. Other columns are ignored, and so is the
"Points Possible" row of an export.

Each member gets the nbgrader student id that Canvas's own download names give them:
the sortable name in lower case with everything but letters and digits dropped
("Lovelace, Ada" → ``lovelaceada``), so that a download and the roster agree without
being told. Where they do not (a name changed during the term), the Canvas id decides:
a file is graded under the student id the gradebook holds for its Canvas id.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("Student", "ID")
OPTIONAL = ("SIS User ID", "SIS Login ID", "Section")
MAX_ROWS = 20_000


@dataclass(frozen=True)
class Member:
    """One enrolled student, as the LMS lists them."""

    name: str  # "Last, First", as Canvas sorts names
    lms_user_id: str
    student_id: str  # the nbgrader id
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def first_last(self) -> tuple[str, str]:
        """(first name, last name) from a "Last, First" name; a name without a comma is
        all last name."""
        last, _, first = self.name.partition(",")
        return first.strip(), last.strip()


def canvas_slug(name: str) -> str:
    """The student part of a Canvas download's file names: the sortable name, letters and
    digits only, lower case, accents dropped ("Lovelace, Ada" → "lovelaceada")."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


@dataclass(frozen=True)
class Roster:
    """The members of a class, in the roster's order; ids are unique."""

    members: tuple[Member, ...] = ()

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def by_lms_id(self, lms_user_id: str) -> Member | None:
        return next((m for m in self.members if m.lms_user_id == lms_user_id), None)

    def by_student_id(self, student_id: str) -> Member | None:
        return next((m for m in self.members if m.student_id == student_id), None)


def read_roster(path: Path) -> Roster:
    """The roster in ``path``; ValueError names the file, the line and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"roster {path}: cannot be read ({error})") from error
    rows = csv.reader(text.splitlines())
    header = [h.strip() for h in next(rows, [])]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ValueError(
            f"roster {path}: no column {', '.join(missing)} in the first line (a Canvas "
            "gradebook export has Student, ID, SIS User ID, SIS Login ID, Section)"
        )
    where = {column: header.index(column) for column in (*REQUIRED, *OPTIONAL) if column in header}
    members: list[Member] = []
    seen_lms: set[str] = set()
    seen_students: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if line > MAX_ROWS:
            raise ValueError(f"roster {path}: more than {MAX_ROWS} rows")
        cells = {column: row[i].strip() if i < len(row) else "" for column, i in where.items()}
        if not any(cells.values()) or cells["Student"].startswith("Points Possible"):
            continue
        name, lms = cells["Student"], cells["ID"]
        if not name or not lms.isdigit():
            raise ValueError(
                f"roster {path}, line {line}: a student needs a name and a numeric Canvas ID "
                f"(got {name!r}, {lms!r})"
            )
        if lms in seen_lms:
            raise ValueError(f"roster {path}, line {line}: Canvas ID {lms} is listed twice")
        seen_lms.add(lms)
        slug = canvas_slug(name) or f"student{lms}"
        if slug in seen_students:  # two "Smith, J." in one class: the id tells them apart
            slug = f"{slug}{lms}"
        seen_students[slug] = line
        members.append(
            Member(
                name,
                lms,
                slug,
                cells.get("SIS User ID", ""),
                cells.get("SIS Login ID", ""),
                cells.get("Section", ""),
            )
        )
    return Roster(tuple(members))
