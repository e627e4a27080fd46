"""Catalogues of answers to a lab: plausible wrong ones that must lose points and
differently written correct ones that must keep full marks.

A catalogue is a TOML file ``tests/catalogue/labNN_topic.toml``::

    [wrong.no_discount]
    description = "adds the costs without discounting"
    fails = ["test_discounted_cost"]          # test cells that must lose their points
    says.test_discounted_cost = ["discount"]  # words the cell's message must contain
    answers.discounted_cost = '''
    def discounted_cost(costs, beta):
        return float(sum(costs))
    '''

    [correct.loop]
    description = "a plain loop"
    answers.discounted_cost = '''...'''

Answer cells an entry does not name hold the reference solution.

``says`` gives, for a test cell the entry fails, words (case-insensitive) that the
message of that cell must contain under grading: the words that name the mistake in the
student's terms. A lost cell without ``says`` is one whose message is not known to name
the mistake; the catalogue test requires such cells to be few (:func:`named_share`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from mdplab.course.layout import Lab, Layout


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # "wrong.no_discount" or "correct.loop"
    description: str
    answers: dict[str, str]
    fails: tuple[str, ...]  # empty for correct entries
    says: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.name.startswith("correct.")


def catalogue_path(layout: Layout, lab: Lab) -> Path:
    return layout.root / "tests" / "catalogue" / f"{lab.name}.toml"


def load_catalogue(layout: Layout, lab: Lab) -> list[CatalogueEntry]:
    path = catalogue_path(layout, lab)
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    unknown = set(data) - {"wrong", "correct"}
    if unknown:
        raise ValueError(f"{path}: top-level tables are [wrong.*] and [correct.*], not {unknown}")
    entries = []
    for kind in ("wrong", "correct"):
        for key, entry in data.get(kind, {}).items():
            name = f"{kind}.{key}"
            fails = tuple(entry.get("fails", ()))
            if kind == "wrong" and not fails:
                raise ValueError(f"{path}: {name} must list the test cells it fails")
            if kind == "correct" and fails:
                raise ValueError(f"{path}: {name} is correct, so it fails nothing")
            if not entry.get("answers"):
                raise ValueError(f"{path}: {name} gives no answers")
            says = {cell: tuple(words) for cell, words in entry.get("says", {}).items()}
            if set(says) - set(fails):
                raise ValueError(f"{path}: {name} says words of cells it does not fail")
            if any(
                not words or not all(isinstance(w, str) for w in words) for words in says.values()
            ):
                raise ValueError(f"{path}: {name}: each says.<cell> is a list of words")
            entries.append(
                CatalogueEntry(
                    name, entry.get("description", ""), dict(entry["answers"]), fails, says
                )
            )
    return entries


def catalogue_entry(layout: Layout, lab: Lab, name: str) -> CatalogueEntry:
    for entry in load_catalogue(layout, lab):
        if entry.name == name:
            return entry
    raise ValueError(f"{catalogue_path(layout, lab)} has no entry {name!r}")


def named_share(entries: list[CatalogueEntry]) -> tuple[int, int]:
    """(lost cells whose message is declared to name the mistake, all lost cells) over
    ``entries``: the catalogue test checks every declared word, so the first number counts
    cells whose message is known to name what went wrong."""
    lost = [(entry, cell) for entry in entries for cell in entry.fails]
    return sum(cell in entry.says for entry, cell in lost), len(lost)
