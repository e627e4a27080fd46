"""Where the course's files live, read from the repository's ``pyproject.toml``.

The repository root is the nearest folder, from the working directory upwards, whose
``pyproject.toml`` has a ``[tool.mdplab]`` table. That table names the public repository
once; Colab badges and data download links are built from it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

LAB_NAME = re.compile(r"^(?P<assignment>lab\d\d)_(?P<topic>[a-z0-9_]+)$")


@dataclass(frozen=True)
class Lab:
    """One lab: nbgrader assignment ``labNN`` holding the notebook ``labNN_topic.ipynb``."""

    name: str
    source: Path

    @property
    def assignment(self) -> str:
        return self.name[:5]

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"


@dataclass(frozen=True)
class Layout:
    """The repository's folders. Every generated path is derived from ``root``."""

    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Layout:
        """Walk up from ``start`` (default: the working directory) to the repository root."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file() and "mdplab" in _tool_table(pyproject, required=False):
                return cls(folder)
        raise FileNotFoundError(
            f"no MDP Labs repository at or above {here}: looked for a pyproject.toml "
            "with a [tool.mdplab] table"
        )

    @cached_property
    def settings(self) -> dict[str, str]:
        return _tool_table(self.root / "pyproject.toml", required=True)["mdplab"]

    @property
    def repository(self) -> str:
        """The public repository's URL, e.g. ``https://github.com/owner/name``."""
        return self.settings["repository"].rstrip("/")

    @property
    def branch(self) -> str:
        return self.settings.get("branch", "main")

    @property
    def github_path(self) -> str:
        """``owner/name`` of the repository, as Colab's GitHub links want it."""
        match = re.match(r"https://github\.com/([^/]+/[^/]+)$", self.repository)
        if not match:
            raise ValueError(
                f"[tool.mdplab] repository must be https://github.com/OWNER/NAME, "
                f"not {self.repository!r}"
            )
        return match.group(1)

    def colab_url(self, relative_path: str) -> str:
        return (
            f"https://colab.research.google.com/github/{self.github_path}/blob/"
            f"{self.branch}/{relative_path}"
        )

    def raw_url(self, relative_path: str) -> str:
        return f"https://raw.githubusercontent.com/{self.github_path}/{self.branch}/{relative_path}"

    # Folders ------------------------------------------------------------------------
    @property
    def autograder(self) -> Path:
        return self.root / "autograder"

    @property
    def lab_sources(self) -> Path:
        return self.autograder / "lab_sources"

    @property
    def masters(self) -> Path:
        return self.autograder / "source"

    @property
    def samples(self) -> Path:
        return self.autograder / "samples"

    @property
    def nbgrader_config(self) -> Path:
        return self.autograder / "nbgrader_config.py"

    @property
    def labs(self) -> Path:
        return self.root / "labs"

    @property
    def solutions(self) -> Path:
        return self.root / "solutions"

    @property
    def readme(self) -> Path:
        return self.root / "README.md"

    def master(self, lab: Lab) -> Path:
        return self.masters / lab.assignment / lab.notebook

    def all_labs(self) -> list[Lab]:
        """Every lab with a source, in lab order."""
        labs = []
        for source in sorted(self.lab_sources.glob("lab*.py")):
            if not LAB_NAME.match(source.stem):
                raise ValueError(
                    f"{source}: a lab source is named labNN_topic.py (lower case, digits, _)"
                )
            labs.append(Lab(source.stem, source))
        assignments = [lab.assignment for lab in labs]
        if len(set(assignments)) != len(assignments):
            raise ValueError(f"two lab sources share an assignment number: {assignments}")
        return labs

    def lab(self, key: str) -> Lab:
        """The lab named ``key``: its assignment (``lab00``) or its full name."""
        for lab in self.all_labs():
            if key in (lab.assignment, lab.name):
                return lab
        known = ", ".join(lab.name for lab in self.all_labs())
        raise ValueError(f"no lab {key!r}; the labs are: {known}")


def _tool_table(pyproject: Path, *, required: bool) -> dict:
    with pyproject.open("rb") as handle:
        tool = tomllib.load(handle).get("tool", {})
    if required and "mdplab" not in tool:
        raise ValueError(f"{pyproject} has no [tool.mdplab] table")
    return tool
