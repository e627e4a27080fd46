"""nbgrader's own API on a working course folder.

The committed course in ``autograder/`` holds the configuration and the masters. Building
and grading happen in a *working course*: a folder with the same configuration, the
masters under ``source/`` and nbgrader's usual ``release/``, ``submitted/``,
``autograded/`` and ``gradebook.db``. nbgrader stays the record: formgrader and
``nbgrader export`` work on a working course as on any other.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import nbgrader.api
import nbgrader.nbgraderformat.common
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from mdplab.course.authoring import write_notebook
from mdplab.course.layout import Lab


class NbgraderError(RuntimeError):
    """nbgrader reported failure; the message carries its log."""


@dataclass(frozen=True)
class CellScore:
    grade_id: str
    score: float | None  # None: waits for a manual grade
    max_score: float
    autograded: bool


@dataclass(frozen=True)
class SubmissionScore:
    student_id: str
    cells: tuple[CellScore, ...]
    # What nbgrader's AssignLatePenalties took off, on the points the autograder gave.
    late_penalty: float = 0.0

    @property
    def auto_score(self) -> float:
        return sum(c.score or 0.0 for c in self.cells if c.autograded)

    @property
    def auto_max_score(self) -> float:
        return sum(c.max_score for c in self.cells if c.autograded)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)

    @property
    def pending_manual(self) -> float:
        """Points that wait for a person to grade the written answers."""
        return sum(c.max_score for c in self.cells if not c.autograded and c.score is None)


class WorkingCourse:
    """An nbgrader course folder at ``root`` using the settings in ``config_file``."""

    def __init__(self, root: Path, config_file: Path, overrides: Config | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        own = self.root / "nbgrader_config.py"
        if config_file.resolve() != own:  # a class folder holds its own configuration
            shutil.copyfile(config_file, own)
        self._config_file = config_file
        self.overrides = overrides or Config()

    def _api(self) -> NbGraderAPI:
        _put_own_scripts_on_path()
        _ask_alembic_once()
        _check_metadata_schema_once()
        loader = PyFileConfigLoader(self._config_file.name, path=str(self._config_file.parent))
        config = Config(loader.load_config())
        config.CourseDirectory.root = str(self.root)
        config.Application.log_level = logging.WARNING
        config.merge(self.overrides)
        return NbGraderAPI(config=config)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def add_master(self, lab: Lab, master: nbformat.NotebookNode) -> None:
        write_notebook(master, self.root / "source" / lab.assignment / lab.notebook)

    def generate(self, lab: Lab) -> Path:
        """Run generate_assignment; return the student notebook it released."""
        _check(self._api().generate_assignment(lab.assignment, force=True), "generate_assignment")
        return self.root / "release" / lab.assignment / lab.notebook

    def submit(
        self,
        lab: Lab,
        student_id: str,
        notebook: nbformat.NotebookNode,
        submitted_at: datetime | None = None,
    ) -> None:
        """Place a notebook where autograde looks for it. ``submitted_at`` (UTC) goes into
        nbgrader's ``timestamp.txt``, from which autograde learns how late the file is;
        without it, nbgrader counts the file as on time."""
        folder = self.root / "submitted" / student_id / lab.assignment
        if folder.exists():
            shutil.rmtree(folder)
        write_notebook(notebook, folder / lab.notebook)
        if submitted_at is not None:
            stamp = submitted_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
            (folder / "timestamp.txt").write_text(stamp + "\n")

    def autograde(self, lab: Lab, student_id: str) -> SubmissionScore:
        _check(self._api().autograde(lab.assignment, student_id, force=True), "autograde")
        return self.score(lab, student_id)

    def score(self, lab: Lab, student_id: str) -> SubmissionScore:
        with Gradebook(self.db_url) as gradebook:
            try:
                notebook = gradebook.find_submission_notebook(lab.name, lab.assignment, student_id)
            except MissingEntry as missing:
                raise NbgraderError(f"no graded {lab.name} for {student_id}") from missing
            cells = tuple(
                CellScore(
                    grade.name,
                    None if grade.score is None or grade.needs_manual_grade else grade.score,
                    grade.max_score,
                    # Authoring keeps written answers in markdown, so code means tests.
                    grade.cell.cell_type == "code",
                )
                for grade in sorted(notebook.grades, key=lambda g: g.name)
            )
            penalty = float(notebook.late_submission_penalty or 0.0)
        return SubmissionScore(student_id, cells, penalty)

    def released_notebook(self, lab: Lab) -> Path:
        return self.root / "release" / lab.assignment / lab.notebook

    def autograded_notebook(self, lab: Lab, student_id: str) -> Path:
        return self.root / "autograded" / student_id / lab.assignment / lab.notebook


def _ask_alembic_once() -> None:
    """nbgrader 0.9 runs ``alembic heads`` in a subprocess for every gradebook it creates,
    which takes seconds, to learn its newest database revision: a constant of the installed
    nbgrader. Ask once per process; a grading batch asks before it forks its workers."""
    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.cache(nbgrader.api.get_alembic_version)


def _check_metadata_schema_once() -> None:
    """nbgrader checks the grading metadata of each cell with ``jsonschema.validate``,
    which first checks the schema itself against jsonschema's meta-schema: a constant of
    the installed nbgrader, checked again for every cell (twice per notebook autograded, a
    quarter of a second for lab06, nine tenths of the checking). Check each schema once per
    process; every cell's metadata is still checked as before (:class:`_SchemaCheckedOnce`)."""
    common = nbgrader.nbgraderformat.common
    if not isinstance(common.jsonschema, _SchemaCheckedOnce):
        common.jsonschema = _SchemaCheckedOnce()


class _SchemaCheckedOnce:
    """Stands in for the ``jsonschema`` module in nbgrader's metadata checks, which call
    its ``validate`` alone: the same validation, with the same validator class and the same
    error raised, but each schema checked and its validator made once."""

    def __init__(self) -> None:
        # By the schema's text: nbgrader reads its schema file anew for each validator.
        self._validators: dict[str, Any] = {}

    def validate(self, instance: Any, schema: dict) -> None:
        """``jsonschema.validate(instance, schema)``."""
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            kind = jsonschema.validators.validator_for(schema)
            kind.check_schema(schema)
            validator = self._validators[key] = kind(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error


def _put_own_scripts_on_path() -> None:
    """nbgrader runs ``alembic`` from PATH; an unactivated virtual environment's scripts
    are not on it, so add the folder of the running interpreter."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([scripts, path]) if path else scripts


def _check(result: dict, step: str) -> None:
    if not result.get("success"):
        details = "\n".join(filter(None, [result.get("log"), result.get("error")])) or "no log"
        raise NbgraderError(f"nbgrader {step} failed:\n{details}")
