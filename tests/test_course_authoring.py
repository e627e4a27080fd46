"""Lab sources into nbgrader masters: metadata, ids, placeholders, and the errors an
author gets for a malformed source."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from course_helpers import LAYOUT

from mdplab.course.authoring import (
    LabSourceError,
    build_master,
    graded_parts,
    skipped_when_grading,
)
from mdplab.course.derive import reference_answers, solution_notebook, strip_hidden_tests
from mdplab.course.handin import embedded_data
from mdplab.course.layout import Lab

GOOD = """\
# %% [markdown]
# {{colab_badge}}
# # Lab 07 · Tiny
#
# {{points_table}}

# %% nbgrader="answer" grade_id="double"
def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% nbgrader="tests" grade_id="test_double" points=3 title="Doubling"
assert double(2) == 4
### BEGIN HIDDEN TESTS
assert double(-1) == -2
### END HIDDEN TESTS

# %% [markdown] nbgrader="written" grade_id="why" points=1
# ### BEGIN SOLUTION
# Because.
# ### END SOLUTION
"""


def lab_from(tmp_path: Path, text: str) -> Lab:
    source = tmp_path / "lab07_tiny.py"
    source.write_text(textwrap.dedent(text), encoding="utf-8")
    return Lab("lab07_tiny", source)


def test_master_carries_full_nbgrader_metadata(tmp_path):
    master = build_master(lab_from(tmp_path, GOOD), LAYOUT)
    answer, tests, written, check = (c for c in master.cells if "nbgrader" in c.metadata)
    assert answer.metadata.nbgrader == {
        "grade": False,
        "grade_id": "double",
        "locked": False,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    assert tests.metadata.nbgrader["grade"] and tests.metadata.nbgrader["locked"]
    assert tests.metadata.nbgrader["points"] == 3
    assert written.metadata.nbgrader["solution"] and written.metadata.nbgrader["grade"]
    # The build ends every lab with the students' hand-in check, a locked cell.
    assert check.metadata.nbgrader["locked"] and not check.metadata.nbgrader["grade"]
    assert list(embedded_data(check.source)["cells"]) == ["double", "test_double", "why"]
    # Cell ids are deterministic, so rebuilding gives the same file.
    assert [c.id for c in master.cells] == [
        "lab07-cell-000",
        "double",
        "test_double",
        "why",
        "lab07-cell-004",
        "hand_in_check",
    ]


def test_placeholders_become_badge_and_points_table(tmp_path):
    master = build_master(lab_from(tmp_path, GOOD), LAYOUT)
    intro = master.cells[0].source
    assert "colab.research.google.com/github/" in intro
    assert "blob/main/labs/lab07_tiny.ipynb" in intro
    assert "| Doubling | autograded | 3 |" in intro
    assert "| **Total** | | **4** |" in intro
    assert [p.points for p in graded_parts(master)] == [3, 1]


def test_solution_drops_markers_hidden_tests_and_metadata(tmp_path):
    master = build_master(lab_from(tmp_path, GOOD), LAYOUT)
    solution = solution_notebook(master)
    text = "\n".join(c.source for c in solution.cells)
    assert "return 2 * x" in text
    assert "###" not in text.replace("# # Lab", "")
    assert "double(-1)" not in text
    assert all("nbgrader" not in c.metadata for c in solution.cells)
    assert reference_answers(master)["double"].count("return 2 * x") == 1


def test_strip_hidden_tests_keeps_visible_lines():
    text = "a\n### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc"
    assert strip_hidden_tests(text) == "a\nc"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('grade_id="double"', 'grade_id="double" points=2'), "not graded; drop points"),
        (("points=3", "points=0"), "needs points > 0"),
        (('grade_id="test_double"', 'grade_id="double"'), "grade_id used twice"),
        (('nbgrader="answer"', 'nbgrader="anwser"'), "use one of"),
        (("    ### END SOLUTION\n", ""), "unbalanced solution markers"),
        (("### END HIDDEN TESTS\n", ""), "unbalanced hidden-test markers"),
        (('grade_id="double"', 'grade_id="dou ble"'), "needs grade_id"),
        (("{{points_table}}", "{{points_tabel}}"), "unknown placeholders"),
        (('# %% [markdown] nbgrader="written"', '# %% nbgrader="written"'), "written answers"),
        (('title="Doubling"', 'titel="Doubling"'), "unknown header keys"),
        (('grade_id="double"', 'grade_id="hand_in_check"'), "kept for the build's hand-in check"),
    ],
)
def test_malformed_sources_name_the_problem(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(LabSourceError, match=message):
        build_master(lab_from(tmp_path, GOOD.replace(old, new, 1)), LAYOUT)


def test_answer_cell_without_solution_region_is_refused(tmp_path):
    text = GOOD.replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION\n", "")
    with pytest.raises(LabSourceError, match="needs ### BEGIN SOLUTION"):
        build_master(lab_from(tmp_path, text), LAYOUT)


INLINED = """\
# %% nbgrader="locked" grade_id="shown_module"
# {{module:lab07_shown}}

# %% nbgrader="locked" grade_id="data_link"
URL = "{{raw_url}}data/trace.csv"
PAIRS = {f"{{k}}": k for k in range(2)}
"""


def test_locked_cell_inlines_a_module_and_code_gets_links(tmp_path, monkeypatch):
    (tmp_path / "lab07_shown.py").write_text('"""Shown."""\n\nSHOWN = 41 + 1\n', "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    master = build_master(lab_from(tmp_path, GOOD + "\n" + INLINED), LAYOUT)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in master.cells}
    assert cells["shown_module"] == '"""Shown."""\n\nSHOWN = 41 + 1'
    assert f'URL = "{LAYOUT.raw_url("")}data/trace.csv"' in cells["data_link"]
    assert 'f"{{k}}"' in cells["data_link"]  # ordinary Python braces are left alone


@pytest.mark.parametrize(
    ("module_text", "role", "message"),
    [
        ("from mdplab import warehouse\n", "locked", "imports mdplab"),
        ("X = 1\n", None, "locked cells only"),
    ],
)
def test_inlined_module_must_be_standalone_and_locked(
    tmp_path, monkeypatch, module_text, role, message
):
    (tmp_path / "lab07_shown.py").write_text(module_text, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    header = 'nbgrader="locked" grade_id="shown_module"'
    source = INLINED if role else INLINED.replace(header, "")
    with pytest.raises(LabSourceError, match=message):
        build_master(lab_from(tmp_path, GOOD + "\n" + source), LAYOUT)


def test_unknown_module_is_named(tmp_path):
    source = INLINED.replace("lab07_shown", "lab07_nowhere")
    with pytest.raises(LabSourceError, match="no module lab07_nowhere"):
        build_master(lab_from(tmp_path, GOOD + "\n" + source), LAYOUT)


# ------------------------------------------------------------- cells grading may skip
ILLUSTRATION = """\
# %% nbgrader="locked" grade_id="picture" autograde="skip"
shown = [double(k) for k in range(3)]
for colour, value in zip("rgb", shown):
    print(colour, value)
with open("picture.txt", "w") as handle:
    handle.write(str(shown))

# %% nbgrader="locked" grade_id="after"
for colour in "xyz":  # binds colour before reading it
    print(colour)
{later}
"""


def test_a_skipped_illustration_is_marked_in_the_master(tmp_path):
    text = (
        GOOD + "\n" + ILLUSTRATION.format(later="print([k for k in range(2)], lambda value: value)")
    )
    master = build_master(lab_from(tmp_path, text), LAYOUT)
    assert skipped_when_grading(master) == ["picture"]


@pytest.mark.parametrize("later", ["print(shown)", "print(handle)", "if value:\n    pass"])
def test_a_later_cell_that_needs_a_skipped_cells_names_is_refused(tmp_path, later):
    with pytest.raises(LabSourceError, match='autograde="skip", but a later cell reads'):
        build_master(lab_from(tmp_path, GOOD + "\n" + ILLUSTRATION.format(later=later)), LAYOUT)


def test_a_later_skipped_cell_may_read_a_skipped_cells_names(tmp_path):
    """Grading runs neither of them, so the second one misses nothing (lab06's plots and
    tracks read the replay's results)."""
    text = (
        GOOD
        + "\n"
        + ILLUSTRATION.format(
            later='\n# %% nbgrader="locked" grade_id="plot" autograde="skip"\nprint(shown)'
        )
    )
    master = build_master(lab_from(tmp_path, text), LAYOUT)
    assert skipped_when_grading(master) == ["picture", "plot"]


@pytest.mark.parametrize(
    "header",
    [
        '# %% nbgrader="answer" grade_id="picture" autograde="skip"',
        '# %% nbgrader="locked" grade_id="picture" autograde="never"',
        '# %% autograde="skip"',
    ],
)
def test_only_read_only_code_cells_may_be_skipped(tmp_path, header):
    text = ILLUSTRATION.format(later="").replace(
        '# %% nbgrader="locked" grade_id="picture" autograde="skip"', header
    )
    with pytest.raises(LabSourceError, match="autograde="):
        build_master(lab_from(tmp_path, GOOD + "\n" + text), LAYOUT)
