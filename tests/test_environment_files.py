"""environment.yml (conda) and pyproject.toml (pip) name the same dependencies."""

from __future__ import annotations

import re
import tomllib

import yaml
from course_helpers import REPO


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in ("dev",):
        requirements += project["optional-dependencies"][extra]
    return {_name(r): r.replace(" ", "") for r in requirements}


def environment_requirements() -> dict[str, str]:
    """The conda and pip entries of environment.yml, without python and pip themselves."""
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    entries: list[str] = []
    for item in spec["dependencies"]:
        entries += item["pip"] if isinstance(item, dict) else [item]
    return {_name(e): e.replace(" ", "") for e in entries if _name(e) not in {"python", "pip"}}


def test_both_files_list_the_same_packages():
    assert set(environment_requirements()) == set(pyproject_requirements())


def test_both_files_ask_for_the_same_versions():
    conda = environment_requirements()
    for name, requirement in pyproject_requirements().items():
        assert conda[name].removeprefix(name) == requirement.lower().removeprefix(name), name
