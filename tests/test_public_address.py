"""One place names the course's public home: ``[tool.mdplab]`` in ``pyproject.toml``.

- every address in the generated files (student notebooks, solutions with their outputs,
  nbgrader masters, sample submissions, the README's lab table) either follows that
  setting or is a known third-party page (tests/public_addresses.py says which);
- built with a fork's address instead, every generated file follows the fork, and none
  keeps the course's own;
- ``mdplab build --repository URL [--branch B]``, the one step the README gives adopting
  instructors, rewrites just those lines of ``pyproject.toml``, and refuses a bad address,
  or a partial rebuild, before writing anything.

The site's pages are checked the same way in tests/test_site.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from course_helpers import LAYOUT, REPO
from public_addresses import addresses, foreign_addresses

from mdplab.cli import main
from mdplab.course.build import build_lab
from mdplab.course.layout import Layout, Published, set_public_address

FORK = {"repository": "https://github.com/a-teacher/mdp-labs-fall", "branch": "fall-2027"}


def generated_files() -> list[Path]:
    return sorted(
        [
            *LAYOUT.labs.glob("*.ipynb"),
            *LAYOUT.solutions.glob("*.ipynb"),
            *LAYOUT.masters.glob("*/*.ipynb"),
            *LAYOUT.samples.glob("*/*.ipynb"),
        ]
    )


def test_every_address_in_the_generated_files_follows_tool_mdplab() -> None:
    files = generated_files()
    assert len(files) > 3 * len(LAYOUT.all_labs())
    found = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        foreign = foreign_addresses(text, LAYOUT)
        if foreign:
            found[str(path.relative_to(REPO))] = sorted(set(foreign))
    assert not found, found


def test_the_readme_lab_table_follows_tool_mdplab() -> None:
    text = LAYOUT.readme.read_text(encoding="utf-8")
    table = text[text.index("<!-- labs:begin") : text.index("<!-- labs:end")]
    assert len(addresses(table)) >= 2 * len(LAYOUT.all_labs())
    assert foreign_addresses(table, LAYOUT) == []


def test_every_student_notebook_has_its_colab_badge() -> None:
    for lab in LAYOUT.all_labs():
        student = (LAYOUT.labs / lab.notebook).read_text(encoding="utf-8")
        assert LAYOUT.colab_url(f"labs/{lab.notebook}") in student, lab.name
        solution = (LAYOUT.solutions / lab.notebook).read_text(encoding="utf-8")
        assert LAYOUT.colab_url(f"solutions/{lab.notebook}") in solution, lab.name


def test_the_scan_sees_a_hard_coded_address() -> None:
    """The check above can fail: the course's address with another owner, branch or
    repository, or any unknown page, is reported."""
    own = LAYOUT.colab_url("labs/lab01_dp_review.ipynb")
    assert foreign_addresses(f"[badge]({own})", LAYOUT) == []
    wrong = [
        own.replace(LAYOUT.github_path, "someone/else"),
        own.replace(f"/blob/{LAYOUT.branch}/", "/blob/dev/"),
        LAYOUT.repository + "-old/raw/main/data/x.csv",
        "https://raw.githubusercontent.com/someone/else/main/data/autoscaler_telemetry.csv",
        "https://example.org/data.csv",
    ]
    for url in wrong:
        assert foreign_addresses(f"see <{url}>", LAYOUT) == [url], url


def test_a_fork_address_reaches_every_generated_file() -> None:
    """Built with a fork's address, every lab's files name the fork, never the course."""
    fork = Published(REPO, FORK)
    for lab in LAYOUT.all_labs():
        built = build_lab(lab, fork, execute=False)
        notebooks = {
            "master": built.master,
            "student": built.student,
            "solution": built.solution,
        }
        texts = {role: nbformat.writes(notebook) for role, notebook in notebooks.items()}
        texts |= {f"sample {s.file_name}": s.content.decode() for s in built.samples}
        for role, text in texts.items():
            assert foreign_addresses(text, fork) == [], (lab.name, role)
            assert LAYOUT.github_path not in text, (lab.name, role)
        assert fork.colab_url(f"labs/{lab.notebook}") in texts["student"], lab.name
        assert fork.colab_url(f"solutions/{lab.notebook}") in texts["solution"], lab.name


# ------------------------------------------------------------------ the one step
@pytest.fixture
def pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's pyproject.toml in a folder that is the working one."""
    copy = tmp_path / "pyproject.toml"
    shutil.copy(REPO / "pyproject.toml", copy)
    monkeypatch.chdir(tmp_path)
    return copy


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_set_public_address_rewrites_just_its_lines(pyproject: Path) -> None:
    before = pyproject.read_text()
    set_public_address(pyproject, FORK["repository"] + "/", FORK["branch"])
    after = pyproject.read_text()
    assert changed_lines(before, after) == [
        (f'repository = "{LAYOUT.repository}"', f'repository = "{FORK["repository"]}"'),
        (f'branch = "{LAYOUT.branch}"', f'branch = "{FORK["branch"]}"'),
    ]
    layout = Layout(pyproject.parent)
    assert (layout.repository, layout.branch) == (FORK["repository"], FORK["branch"])
    set_public_address(pyproject, LAYOUT.repository)  # the branch is kept
    assert changed_lines(before, pyproject.read_text()) == [
        (f'branch = "{LAYOUT.branch}"', f'branch = "{FORK["branch"]}"')
    ]


def test_a_missing_branch_line_is_added_to_the_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\n\n[tool.mdplab]\n# where\nrepository = "https://github.com/a/b"'
        '\n\n[tool.other]\nbranch = "not this one"\n'
    )
    set_public_address(pyproject, "https://github.com/c/d", "spring")
    layout = Layout(tmp_path)
    assert (layout.repository, layout.branch) == ("https://github.com/c/d", "spring")
    assert 'repository = "https://github.com/c/d"\nbranch = "spring"\n\n[tool.other]' in (
        pyproject.read_text()
    )
    assert 'branch = "not this one"' in pyproject.read_text()


@pytest.mark.parametrize(
    ("repository", "branch"),
    [
        ("http://github.com/a/b", None),
        ("https://gitlab.com/a/b", None),
        ("https://github.com/a", None),
        ("https://github.com/a/b/tree/main", None),
        ("https://github.com/a/b.git", None),
        ('https://github.com/a/b"\n[tool.evil]\nx = "', None),
        ("https://github.com/a/b", "two words"),
        ("https://github.com/a/b", 'main"\nrepository = "https://github.com/e/v'),
        ("https://github.com/a/b", "../up"),
    ],
)
def test_a_bad_address_is_refused_and_nothing_is_written(
    pyproject: Path, capsys: pytest.CaptureFixture[str], repository: str, branch: str | None
) -> None:
    before = pyproject.read_text()
    command = ["build", "--repository", repository]
    if branch is not None:
        command += ["--branch", branch]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "https://github.com/OWNER/NAME" in error or "branch" in error, error
    assert pyproject.read_text() == before


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["build", "lab01", "--repository", FORK["repository"]], "rebuilds every lab"),
        (["build", "--check", "--repository", FORK["repository"]], "rebuilds every lab"),
        (["build", "--branch", "fall"], "--branch goes with --repository"),
    ],
)
def test_a_partial_rebuild_with_a_new_address_is_refused(
    pyproject: Path, capsys: pytest.CaptureFixture[str], command: list[str], message: str
) -> None:
    before = pyproject.read_text()
    assert main(command) == 2
    assert message in capsys.readouterr().err
    assert pyproject.read_text() == before


def test_the_readme_gives_the_one_step_and_the_one_line(
    pyproject: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's command for adopting instructors writes the address and rebuilds every
    lab (the build itself is replaced here: test_course_build covers it), and the line it
    tells them to edit is pyproject.toml's."""
    import mdplab.course.build

    readme = LAYOUT.readme.read_text(encoding="utf-8")
    section = readme[readme.index("## Adopting the course") :]
    command = next(line for line in section.splitlines() if "mdplab build --repository" in line)
    assert f'repository = "{LAYOUT.repository}"' in section
    assert f'repository = "{LAYOUT.repository}"' in pyproject.read_text().splitlines()
    built: list[object] = []
    monkeypatch.setattr(mdplab.course.build, "build", lambda layout, labs: built.append(labs) or [])
    assert main(command.split()[1:]) == 0
    assert built == [None], "every lab is rebuilt"
    layout = Layout(pyproject.parent)
    assert layout.repository == "https://github.com/YOU/YOUR-FORK"
    assert "YOU/YOUR-FORK" in capsys.readouterr().out
