"""Where the course's files live, read from the repository's ``pyproject.toml``.

The repository root is the nearest folder, from the working directory upwards, whose
``pyproject.toml`` has a ``[tool.mdplab]`` table. That table names the public repository
once; Colab badges and data download links are built from it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
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
        return github_path(self.repository)

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


@dataclass(frozen=True)
class Published(Layout):
    """The layout with the public address replaced, without touching ``pyproject.toml``:
    to preview a fork's site, or to check that every link follows ``[tool.mdplab]``."""

    override: dict[str, str] = field(default_factory=dict)

    @cached_property
    def settings(self) -> dict[str, str]:
        return {**super().settings, **self.override}


GITHUB_REPOSITORY = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")
# Git's rules for branch names, in short: no spaces, no "..", no control characters, and
# nothing that would end or break a URL path or a TOML string.
BRANCH = re.compile(r"(?!.*\.\.)(?!/)(?!.*/$)[A-Za-z0-9_./-]+")


def github_path(repository: str) -> str:
    """``owner/name`` of ``https://github.com/owner/name``; :class:`ValueError` otherwise."""
    match = GITHUB_REPOSITORY.fullmatch(repository.rstrip("/"))
    if not match or match.group(1).endswith(".git"):
        raise ValueError(
            f"[tool.mdplab] repository must be https://github.com/OWNER/NAME, not {repository!r}"
        )
    return match.group(1)


def set_public_address(pyproject: Path, repository: str, branch: str | None = None) -> None:
    """Write ``repository`` (and ``branch``) into ``pyproject.toml``'s ``[tool.mdplab]``.

    Only those lines change; comments and the rest of the file stay as they are. The
    address is checked first, so a bad one leaves the file untouched.
    """
    values = {"repository": repository.rstrip("/")}
    github_path(values["repository"])
    if branch is not None:
        if not BRANCH.fullmatch(branch):
            raise ValueError(f"[tool.mdplab] branch {branch!r} is not a usable branch name")
        values["branch"] = branch
    lines = pyproject.read_text(encoding="utf-8").splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "[tool.mdplab]")
    except StopIteration:
        raise ValueError(f"{pyproject} has no [tool.mdplab] table") from None
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    for key, value in values.items():
        line = f'{key} = "{value}"\n'
        found = [i for i in range(start + 1, end) if re.match(rf"\s*{key}\s*=", lines[i])]
        if found:
            lines[found[0]] = line
        else:  # after the table's last line, before the blank lines that end it
            last = max(i for i in range(start, end) if lines[i].strip())
            lines.insert(last + 1, line)
            end += 1
    text = "".join(lines)
    settings = tomllib.loads(text)["tool"]["mdplab"]  # what Layout will read back
    if any(settings.get(key) != value for key, value in values.items()):
        raise ValueError(f"{pyproject}: [tool.mdplab] did not take {values}")
    pyproject.write_text(text, encoding="utf-8")


def _tool_table(pyproject: Path, *, required: bool) -> dict:
    with pyproject.open("rb") as handle:
        tool = tomllib.load(handle).get("tool", {})
    if required and "mdplab" not in tool:
        raise ValueError(f"{pyproject} has no [tool.mdplab] table")
    return tool
