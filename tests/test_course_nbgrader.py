"""The working course's use of nbgrader: a new gradebook does not start a process each time."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import nbgrader.api
from nbgrader.api import Gradebook

from mdplab.course.nbgrader_course import _ask_alembic_once, _put_own_scripts_on_path


def _revision(path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_alembic_is_asked_once_per_process(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # restored afterwards
    _put_own_scripts_on_path()  # as the working course does before nbgrader runs
    _ask_alembic_once()
    _ask_alembic_once()  # a second call keeps the one cache
    Gradebook(f"sqlite:///{tmp_path / 'first.db'}").close()
    started = []
    real = subprocess.check_output

    def counting(*args, **kwargs):
        started.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "check_output", counting)
    Gradebook(f"sqlite:///{tmp_path / 'second.db'}").close()
    assert started == []
    assert _revision(tmp_path / "second.db") == _revision(tmp_path / "first.db")
    assert nbgrader.api.get_alembic_version.cache_info().currsize == 1
