"""Reading submissions and repairing them against the released notebook, so that nbgrader
grades what the student wrote: real cases built from the released labs and the samples."""

from __future__ import annotations

import copy
import json
import warnings

import nbformat
import pytest
from course_helpers import LAYOUT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbgrader.nbgraderformat import MetadataValidator

from mdplab.course.nbgrader_course import NbgraderError, WorkingCourse
from mdplab.grading.repair import SubmissionError, read_submission, release_cells, repair

LAB00 = LAYOUT.lab("lab00")
LAB02 = LAYOUT.lab("lab02")
RELEASE00 = nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4)
RELEASE02 = nbformat.read(LAYOUT.labs / LAB02.notebook, as_version=4)
# Reference answers, saved by Colab (colab and accelerator metadata).
ADA00 = LAYOUT.samples / "lab00" / "lovelaceada_1001_5001_lab00_orientation.ipynb"
ADA02 = LAYOUT.samples / "lab02" / "lovelaceada_1001_5201_lab02_mdp_model.ipynb"
REFERENCE00 = nbformat.read(ADA00, as_version=4)
REFERENCE02 = nbformat.read(ADA02, as_version=4)


def at(nb, grade_id: str) -> int:
    """The position of the cell with ``grade_id`` in ``nb``."""
    return next(
        n
        for n, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


# Cell positions in lab00's release; the reference sample has the same cells.
SETUP, DISCOUNTED, TEST_DISCOUNTED, PERIODS, TEST_PERIODS, WRITTEN = (
    at(RELEASE00, grade_id)
    for grade_id in (
        "setup",
        "discounted_cost",
        "test_discounted_cost",
        "periods_needed",
        "test_periods_needed",
        "discount_meaning",
    )
)
CELLS00 = len(RELEASE00.cells)


def grading(nb) -> list[tuple[str, str]]:
    """(grade_id, cell_type) of every graded cell, in order."""
    return [
        (c.metadata.nbgrader["grade_id"], c.cell_type) for c in nb.cells if "nbgrader" in c.metadata
    ]


def answers(nb, *, code_only: bool = False) -> dict[str, str]:
    """grade_id -> source of every answer cell (code answers only, if asked)."""
    return {
        c.metadata.nbgrader["grade_id"]: c.source
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
        and not (code_only and c.cell_type != "code")
    }


def assert_gradable(nb, release) -> None:
    """What nbgrader 0.9 needs: a valid notebook, valid grading metadata, every grade cell
    of the release exactly once and of the release's type."""
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)
    expected = [(rc.grade_id, rc.cell.cell_type) for rc in release_cells(release) if rc.graded]
    assert sorted(grading(nb)) == sorted(expected)
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def stripped(nb, cells=None):
    """A copy of ``nb`` whose cells (all, or those listed) lost every metadata key."""
    out = copy.deepcopy(nb)
    for n, cell in enumerate(out.cells):
        if cells is None or n in cells:
            cell.metadata = nbformat.NotebookNode()
    return out


def stub_of(release, n):
    cell = copy.deepcopy(release.cells[n])
    cell.id = f"stub-copy-{n}"
    return cell


# Reading -----------------------------------------------------------------------------------
TEXT00 = ADA00.read_text(encoding="utf-8")


def as_json(change) -> bytes:
    data = json.loads(TEXT00)
    change(data)
    return json.dumps(data).encode()


def _old_minor(data):
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id")


def _missing_fields(data):
    del data["cells"][SETUP]["outputs"]
    del data["cells"][SETUP]["metadata"]


def _repeated_ids(data):
    data["cells"][1]["id"] = data["cells"][0]["id"]


def _bad_output(data):
    data["cells"][SETUP]["outputs"] = [{"output_type": "no such output"}]


def _bad_metadata(data):
    data["metadata"]["kernelspec"] = {"name": 3}


V3 = nbformat.writes(nbformat.convert(copy.deepcopy(REFERENCE00), 3), version=3).encode()
READABLE = {
    "bom": (b"\xef\xbb\xbf" + TEXT00.encode(), "removed a UTF-8 byte-order mark"),
    "format 3": (V3, "converted the notebook from format 3 to format 4"),
    "format 4.4": (as_json(_old_minor), f"gave {CELLS00} cell(s) an id"),
    "format 4.9": (as_json(lambda d: d.update(nbformat_minor=9)), "read a format 4.9 notebook"),
    "missing fields": (as_json(_missing_fields), "filled in missing fields of 1 cell(s)"),
    "repeated ids": (as_json(_repeated_ids), "gave 1 cell(s) an id"),
    "bad output": (as_json(_bad_output), "cleared the outputs of 1 cell(s)"),
    "bad metadata": (as_json(_bad_metadata), "nbformat repaired 1 invalid metadata field(s)"),
}


@pytest.mark.parametrize(("raw", "logged"), READABLE.values(), ids=READABLE.keys())
def test_readable_damage_is_repaired_and_logged(tmp_path, raw, logged):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nbformat's own repairs warn; ours must not need them
        submission = read_submission(path)
    assert any(line.startswith(logged) for line in submission.log), submission.log
    nbformat.validate(submission.notebook)
    assert (submission.notebook.nbformat, submission.notebook.nbformat_minor) == (4, 5)
    assert answers(submission.notebook) == answers(REFERENCE00)


def test_the_reference_sample_has_the_release_cells():
    """The cell positions above hold for the reference sample too."""

    def grade_ids(nb):
        return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]

    assert grade_ids(REFERENCE00) == grade_ids(RELEASE00)


def test_a_clean_submission_reads_without_a_log():
    submission = read_submission(ADA00)
    assert submission.log == ()
    assert submission.notebook == REFERENCE00


UNREADABLE = {
    "empty": (b"", "empty file"),
    "blank": (b" \n\t\n", "empty file"),
    "invalid json": (b'{\n "cells": [\n   {,\n', "not a notebook: invalid JSON (line 3, column 5)"),
    "a list": (b"[1, 2, 3]", "not a notebook: the JSON holds a list, not an object"),
    "format 5": (as_json(lambda d: d.update(nbformat=5)), "unknown notebook format (nbformat: 5)"),
    "no format": (
        as_json(lambda d: d.pop("nbformat")),
        "unknown notebook format (nbformat: none given)",
    ),
    "latin-1": (
        TEXT00.replace("β", "b").encode().replace(b"Lab 00", b"Lab\xe9 00"),
        "not a notebook: the file is not UTF-8 text (bad byte at offset",
    ),
    "utf-16": (TEXT00.encode("utf-16"), "not a notebook: the file is UTF-16 text, not UTF-8"),
    # The red team's crafted files (issue 11): each once crashed or held up the batch.
    "deep list": (b"[" * 100_000 + b"]" * 100_000, "not a notebook: its JSON is nested 100000"),
    "deep metadata": (
        TEXT00.replace(
            '"metadata": {', '"metadata": {"x": ' + "[" * 600 + "]" * 600 + ",", 1
        ).encode(),
        "not a notebook: its JSON is nested 60",
    ),
    "40,000 cells": (
        as_json(lambda d: d["cells"].extend([{"cell_type": "raw", "source": ""}] * 40_000)),
        f"the notebook has {CELLS00 + 40_000} cells; the limit is 3000",
    ),
    "a huge cell": (
        as_json(lambda d: d["cells"].append({"cell_type": "raw", "source": ["[" * 600_000] * 2})),
        f"cell {CELLS00 + 1} holds 1,200,000 characters; the limit for one cell is 1,000,000",
    ),
    "bad cell": (
        as_json(lambda d: d["cells"].append({"cell_type": "heading"})),
        f"not a notebook: cell {CELLS00 + 1} has unknown type 'heading'",
    ),
}


@pytest.mark.parametrize(("raw", "reason"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_files_raise_submission_error(tmp_path, raw, reason):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(raw)
    with pytest.raises(SubmissionError) as caught:
        read_submission(path)
    assert caught.value.reason.startswith(reason)
    assert caught.value.path == path
    assert str(caught.value).startswith("broken.ipynb: ")


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    """The depth limit reads structure, not text: a cell of brackets is a cell."""
    path = tmp_path / "brackets.ipynb"
    path.write_text(as_json(lambda d: d["cells"][0].update(source="[{" * 5_000)).decode())
    assert read_submission(path).notebook.cells[0].source == "[{" * 5_000


def test_a_file_over_the_size_limit_is_not_read(tmp_path, monkeypatch):
    from mdplab.grading import repair as module

    monkeypatch.setattr(module, "MAX_FILE_BYTES", 1000)
    with pytest.raises(SubmissionError) as caught:
        read_submission(ADA00)
    assert caught.value.reason.startswith("the file is ")
    assert caught.value.reason.endswith("larger than the limit of 0.0 MB")


def test_cell_ids_are_made_unique_in_linear_time():
    """3,000 cells without ids, and as many sharing one: the red team's 40,000 cells took
    two minutes in the old loop, which restarted its count for every cell."""
    from mdplab.grading.repair import _unique_cell_ids

    cells = [nbformat.v4.new_raw_cell("") for _ in range(3_000)]
    for cell in cells[:1500]:
        del cell["id"]
    for cell in cells[1500:]:
        cell.id = "same"
    cells.append(nbformat.v4.new_raw_cell("", id="cell-2"))  # taken later in the notebook
    assert _unique_cell_ids(cells) == 1500 + 1499
    ids = [cell.id for cell in cells]
    assert len(set(ids)) == len(ids)
    assert ids[:3] == ["cell-1", "cell-3", "cell-4"] and ids[1500:1502] == ["same", "same-1"]


# Repairing: the unchanged case and the notebook-wide clean-up -------------------------------
def test_a_clean_submission_only_loses_colab_metadata():
    original = copy.deepcopy(REFERENCE00)
    repaired, log = repair(REFERENCE00, RELEASE00)
    assert log == ["removed Colab's metadata from the notebook (colab, accelerator)"]
    assert original == REFERENCE00, "the submission itself is not changed"
    assert [c.source for c in repaired.cells] == [c.source for c in REFERENCE00.cells]
    assert [c.id for c in repaired.cells] == [c.id for c in REFERENCE00.cells]
    assert_gradable(repaired, RELEASE00)


def test_colab_metadata_outputs_and_kernel_are_normalised():
    submission = copy.deepcopy(REFERENCE00)
    submission.metadata.gpuClass = "standard"
    submission.metadata.kernelspec = {"name": "ir", "display_name": "R", "language": "R"}
    submission.metadata.language_info = {"name": "R"}
    for cell in submission.cells[:4]:
        cell.metadata.update(id="x1", colab={"base_uri": "https://localhost:8080/"})
    submission.cells[SETUP].metadata.update(outputId="abc", executionInfo={"status": "ok"})
    submission.cells[SETUP].outputs = [nbformat.v4.new_output("stream", text="numpy 2.0\n")]
    submission.cells[SETUP].execution_count = 3

    repaired, log = repair(submission, RELEASE00)
    assert log == [
        "removed Colab's metadata from the notebook (colab, accelerator, gpuClass) and 4 cell(s)",
        "set the kernel to the lab's 'python3' (was 'ir')",
    ]
    assert not {"colab", "accelerator", "gpuClass"} & set(repaired.metadata)
    assert repaired.metadata.kernelspec == RELEASE00.metadata.kernelspec
    assert repaired.metadata.language_info == RELEASE00.metadata.language_info
    for cell in repaired.cells:
        assert not {"id", "colab", "outputId", "executionInfo"} & set(cell.metadata)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert_gradable(repaired, RELEASE00)


# Lost metadata ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reference", "release"),
    [(REFERENCE00, RELEASE00), (REFERENCE02, RELEASE02)],
    ids=["lab00", "lab02"],
)
def test_a_notebook_stripped_of_all_metadata_gets_it_back(reference, release):
    repaired, log = repair(stripped(reference), release)
    assert_gradable(repaired, release)
    assert answers(repaired) == answers(reference)
    graded = [rc for rc in release_cells(release) if rc.graded]
    attached = [line for line in log if line.startswith("re-attached grading metadata")]
    assert len(attached) == len(graded)
    first = next(rc for rc in graded if rc.is_answer)
    assert f"re-attached grading metadata to cell {first.index + 1} ({first.grade_id})" in log


def test_one_cell_that_lost_its_metadata_is_matched_by_its_signature():
    submission = stripped(REFERENCE00, cells={PERIODS})
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [f"re-attached grading metadata to cell {PERIODS + 1} (periods_needed)"]
    assert repaired.cells[PERIODS].metadata == RELEASE00.cells[PERIODS].metadata
    assert repaired.cells[PERIODS].source == REFERENCE00.cells[PERIODS].source
    assert_gradable(repaired, RELEASE00)


def test_an_answer_with_a_changed_signature_is_matched_by_position_and_name():
    submission = stripped(REFERENCE00, cells={DISCOUNTED})
    cell = submission.cells[DISCOUNTED]
    cell.source = "def discounted_cost(costs, beta=0.9):\n    return sum(costs)"
    repaired, log = repair(submission, RELEASE00)
    assert f"re-attached grading metadata to cell {DISCOUNTED + 1} (discounted_cost)" in log
    assert answers(repaired)["discounted_cost"] == cell.source
    assert_gradable(repaired, RELEASE00)


def test_an_edited_test_cell_without_metadata_is_found_by_similar_text():
    submission = stripped(REFERENCE00, cells={TEST_PERIODS})
    cell = submission.cells[TEST_PERIODS]
    cell.source = cell.source.replace("assert periods_needed(8", "# assert periods_needed(8")
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [
        f"re-attached grading metadata to cell {TEST_PERIODS + 1} (test_periods_needed)"
    ]
    assert_gradable(repaired, RELEASE00)


def test_stale_or_tampered_metadata_is_restored_from_the_release():
    submission = copy.deepcopy(REFERENCE00)
    meta = submission.cells[TEST_DISCOUNTED].metadata
    meta.nbgrader.update(points=100, locked=False, schema_version=1)
    del meta["editable"]
    repaired, log = repair(submission, RELEASE00)
    assert (
        f"restored the grading metadata of cell {TEST_DISCOUNTED + 1} (test_discounted_cost)" in log
    )
    assert repaired.cells[TEST_DISCOUNTED].metadata == RELEASE00.cells[TEST_DISCOUNTED].metadata


# Duplicates --------------------------------------------------------------------------------
def test_a_duplicated_answer_keeps_the_last_changed_copy():
    submission = copy.deepcopy(REFERENCE00)
    first_try = copy.deepcopy(submission.cells[DISCOUNTED])
    first_try.id, first_try.source = "first-try", "def discounted_cost(costs, beta):\n    return 0"
    submission.cells.insert(DISCOUNTED, first_try)  # an earlier attempt, then the answer
    submission.cells.insert(DISCOUNTED + 2, stub_of(RELEASE00, DISCOUNTED))  # then a blank copy
    repaired, log = repair(submission, RELEASE00)
    n = DISCOUNTED + 1
    assert log[1] == (
        f"answer cell discounted_cost appeared 3 times (cells {n}, {n + 1}, {n + 2}); kept cell "
        f"{n + 1}, the last one changed from the blank stub; removed the blank copy (cell "
        f"{n + 2}); kept the earlier version (cell {n}) as ordinary, ungraded cells"
    )
    assert answers(repaired) == answers(REFERENCE00)
    earlier = repaired.cells[DISCOUNTED]
    assert earlier.source == first_try.source and "nbgrader" not in earlier.metadata
    assert len(repaired.cells) == len(REFERENCE00.cells) + 1
    assert_gradable(repaired, RELEASE00)


def test_a_changed_copy_after_the_original_wins():
    submission = copy.deepcopy(nbformat.read(LAYOUT.labs / LAB00.notebook, as_version=4))
    copy_cell = copy.deepcopy(REFERENCE00.cells[PERIODS])
    copy_cell.id = "my-copy"
    submission.cells.insert(TEST_PERIODS + 1, copy_cell)  # pasted below the tests
    repaired, log = repair(submission, RELEASE00)
    original, pasted = PERIODS + 1, TEST_PERIODS + 2
    assert log[0] == (
        f"answer cell periods_needed appeared 2 times (cells {original}, {pasted}); kept cell "
        f"{pasted}, the last one changed from the blank stub; removed the blank copy (cell "
        f"{original})"
    )
    assert answers(repaired)["periods_needed"] == REFERENCE00.cells[PERIODS].source
    assert_gradable(repaired, RELEASE00)


def test_duplicated_blank_answers_keep_the_first():
    submission = copy.deepcopy(RELEASE00)
    submission.cells.insert(WRITTEN + 1, stub_of(RELEASE00, WRITTEN))
    repaired, log = repair(submission, RELEASE00)
    n = WRITTEN + 1
    assert log == [
        f"written answer discount_meaning appeared 2 times (cells {n}, {n + 1}); kept cell {n}, "
        f"all of them are blank; removed the blank copy (cell {n + 1})"
    ]
    assert_gradable(repaired, RELEASE00)


def test_duplicated_test_and_read_only_cells_keep_one_copy():
    submission = copy.deepcopy(REFERENCE00)
    test_copy = copy.deepcopy(submission.cells[TEST_DISCOUNTED])
    test_copy.id = "test-copy"
    setup_copy = copy.deepcopy(submission.cells[SETUP])
    setup_copy.id = "setup-copy"
    submission.cells.insert(DISCOUNTED, test_copy)  # a test copy above its answer
    submission.cells.append(setup_copy)  # a setup copy at the very end
    repaired, log = repair(submission, RELEASE00)
    setup, test_above, test = SETUP + 1, DISCOUNTED + 1, TEST_DISCOUNTED + 2
    assert log[1:] == [
        f"read-only cell setup appeared 2 times (cells {setup}, {CELLS00 + 2}); kept cell "
        f"{setup} and removed the other copies (nbgrader restores its text)",
        f"test cell test_discounted_cost appeared 2 times (cells {test_above}, {test}); kept "
        f"cell {test} and removed the other copies (nbgrader restores its text)",
    ]
    assert [c.source for c in repaired.cells] == [c.source for c in REFERENCE00.cells]
    assert_gradable(repaired, RELEASE00)


def test_duplicates_without_metadata_are_resolved_too():
    submission = stripped(REFERENCE00)
    submission.cells.insert(TEST_DISCOUNTED, stripped(RELEASE00).cells[DISCOUNTED])
    repaired, log = repair(submission, RELEASE00)
    assert any(line.startswith("answer cell discounted_cost appeared 2 times") for line in log)
    assert answers(repaired) == answers(REFERENCE00)
    assert_gradable(repaired, RELEASE00)


# Deleted cells, changed types, extra cells --------------------------------------------------
def test_deleted_grade_cells_are_put_back_at_their_release_position():
    submission = copy.deepcopy(REFERENCE00)
    for n in (TEST_PERIODS, PERIODS, TEST_DISCOUNTED):
        del submission.cells[n]
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [
        "test cell test_discounted_cost was missing; it was put back from the release",
        "answer cell periods_needed was missing; the blank stub was put back",
        "test cell test_periods_needed was missing; it was put back from the release",
    ]
    assert [c.source for c in repaired.cells] == [
        (RELEASE00 if n in (TEST_DISCOUNTED, PERIODS, TEST_PERIODS) else REFERENCE00)
        .cells[n]
        .source
        for n in range(len(RELEASE00.cells))
    ]
    assert_gradable(repaired, RELEASE00)


def test_a_notebook_with_no_cells_gets_the_whole_release_back():
    submission = copy.deepcopy(REFERENCE00)
    submission.cells = []
    repaired, log = repair(submission, RELEASE00)
    graded = [rc for rc in release_cells(RELEASE00) if rc.graded]
    assert len(log) == 1 + len(graded)
    assert [c.source for c in repaired.cells] == [rc.cell.source for rc in graded]
    assert_gradable(repaired, RELEASE00)


def test_changed_cell_types_are_restored_with_the_students_text():
    submission = copy.deepcopy(REFERENCE00)
    answer = submission.cells[DISCOUNTED]
    submission.cells[DISCOUNTED] = nbformat.v4.new_markdown_cell(
        answer.source, metadata=answer.metadata, id=answer.id
    )
    written = submission.cells[WRITTEN]
    submission.cells[WRITTEN] = nbformat.v4.new_code_cell(
        written.source, metadata=written.metadata, id=written.id
    )
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [
        f"cell {DISCOUNTED + 1} (discounted_cost) had been turned into a markdown cell; it is a "
        "code cell again, with the student's text",
        f"cell {WRITTEN + 1} (discount_meaning) had been turned into a code cell; it is a "
        "markdown cell again, with the student's text",
    ]
    assert answers(repaired) == answers(REFERENCE00)
    assert_gradable(repaired, RELEASE00)


def test_a_changed_type_is_restored_even_without_metadata():
    submission = stripped(REFERENCE00, cells={DISCOUNTED})
    answer = submission.cells[DISCOUNTED]
    submission.cells[DISCOUNTED] = nbformat.v4.new_markdown_cell(answer.source, id=answer.id)
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [
        f"re-attached grading metadata to cell {DISCOUNTED + 1} (discounted_cost)",
        f"cell {DISCOUNTED + 1} (discounted_cost) had been turned into a markdown cell; it is a "
        "code cell again, with the student's text",
    ]
    assert answers(repaired) == answers(REFERENCE00)


def test_extra_cells_stay_where_the_student_put_them():
    submission = copy.deepcopy(REFERENCE00)
    scratch = nbformat.v4.new_code_cell("print(discounted_cost([1, 2], 0.5))", id="scratch")
    note = nbformat.v4.new_markdown_cell("My notes", id="note")
    submission.cells.insert(TEST_DISCOUNTED, scratch)
    submission.cells.insert(0, note)
    del submission.cells[PERIODS + 2]  # and one answer deleted, which comes back
    repaired, log = repair(submission, RELEASE00)
    ids = [c.id for c in repaired.cells]
    assert ids[0] == "note"
    assert ids.index("scratch") == at(repaired, "discounted_cost") + 1
    assert at(repaired, "test_discounted_cost") == ids.index("scratch") + 1
    assert at(repaired, "periods_needed") == at(repaired, "test_periods_needed") - 1
    assert log[-1] == "answer cell periods_needed was missing; the blank stub was put back"
    assert_gradable(repaired, RELEASE00)


def test_grading_metadata_the_release_does_not_know_is_removed():
    submission = copy.deepcopy(REFERENCE00)
    foreign = nbformat.v4.new_code_cell("x = 1", id="foreign")
    foreign.metadata.nbgrader = copy.deepcopy(
        RELEASE02.cells[at(RELEASE02, "feasible_actions")].metadata.nbgrader
    )
    broken = nbformat.v4.new_code_cell("y = 2", id="broken", metadata={"nbgrader": {}})
    submission.cells[3:3] = [foreign, broken]
    repaired, log = repair(submission, RELEASE00)
    assert log[1:] == [
        "removed grading metadata from cell 4: grade_id 'feasible_actions' is not in this lab"
    ]
    assert_gradable(repaired, RELEASE00)
    assert [c.id for c in repaired.cells][3:5] == ["foreign", "broken"]


def test_a_cell_id_taken_by_the_student_is_not_repeated():
    submission = copy.deepcopy(REFERENCE00)
    submission.cells[0].id = "test_periods_needed"  # the id of a cell that will come back
    del submission.cells[TEST_PERIODS]
    repaired, _ = repair(submission, RELEASE00)
    assert_gradable(repaired, RELEASE00)


# Property: any shuffle, duplication and stripping repairs back to the reference answers -----
@st.composite
def damaged(draw, reference, release):
    """The reference submission, shuffled, with copies (identical or blank) and some or all
    cells stripped of their metadata."""
    cells = [copy.deepcopy(c) for c in reference.cells]
    for n in draw(st.lists(st.integers(0, len(cells) - 1), max_size=4)):
        source = cells[n] if draw(st.booleans()) else release.cells[n]
        extra = copy.deepcopy(source)
        extra.id = f"dup-{len(cells)}"
        cells.append(extra)
    cells = draw(st.permutations(cells))
    strip_all = draw(st.booleans())
    lost = draw(st.sets(st.integers(0, len(cells) - 1)))
    submission = copy.deepcopy(reference)
    submission.cells = [
        stripped_cell(c) if strip_all or n in lost else c for n, c in enumerate(cells)
    ]
    return submission


def stripped_cell(cell):
    cell = copy.deepcopy(cell)
    cell.metadata = nbformat.NotebookNode()
    return cell


PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@PROPERTY
@given(data=st.data())
def test_damaged_lab00_repairs_to_the_reference_answers(data):
    submission = data.draw(damaged(REFERENCE00, RELEASE00))
    repaired, _ = repair(submission, RELEASE00)
    assert_gradable(repaired, RELEASE00)
    assert answers(repaired, code_only=True) == answers(REFERENCE00, code_only=True)


@PROPERTY
@given(data=st.data())
def test_damaged_lab02_repairs_to_the_reference_answers(data):
    submission = data.draw(damaged(REFERENCE02, RELEASE02))
    repaired, _ = repair(submission, RELEASE02)
    assert_gradable(repaired, RELEASE02)
    assert answers(repaired, code_only=True) == answers(REFERENCE02, code_only=True)


# Through nbgrader itself ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    working = WorkingCourse(tmp_path_factory.mktemp("repair-course"), LAYOUT.nbgrader_config)
    working.add_master(LAB00, nbformat.read(LAYOUT.master(LAB00), as_version=4))
    working.generate(LAB00)
    return working


def duplicated_answer():
    submission = copy.deepcopy(REFERENCE00)
    submission.cells.insert(PERIODS + 1, stub_of(RELEASE00, PERIODS))
    return submission


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
def test_nbgrader_fails_the_damaged_submissions_without_repair(course):
    course.submit(LAB00, "stripped-raw", stripped(REFERENCE00))
    assert course.autograde(LAB00, "stripped-raw").auto_score == 0  # the silent zero
    course.submit(LAB00, "duplicate-raw", duplicated_answer())
    with pytest.raises(NbgraderError, match="old version"):  # the misleading abort
        course.autograde(LAB00, "duplicate-raw")


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
@pytest.mark.parametrize(
    "damage", [stripped(REFERENCE00), duplicated_answer()], ids=["stripped", "duplicate"]
)
def test_nbgrader_gives_repaired_submissions_full_marks(course, damage):
    student = f"repaired-{len(damage.cells)}-{bool(damage.cells[SETUP].metadata)}".lower()
    course.submit(LAB00, student, repair(damage, RELEASE00)[0])
    score = course.autograde(LAB00, student)
    assert score.auto_max_score == 4
    assert score.auto_score == score.auto_max_score


def test_a_written_answer_keeps_its_attached_image():
    submission = copy.deepcopy(REFERENCE00)
    written = submission.cells[WRITTEN]
    written.source = "As the sketch shows: ![sketch](attachment:sketch.png)"
    written.attachments = {"sketch.png": {"image/png": "iVBORw0KGgo="}}
    repaired, _ = repair(submission, RELEASE00)
    assert repaired.cells[WRITTEN].attachments == written.attachments
    assert_gradable(repaired, RELEASE00)


def test_a_notebook_without_cell_ids_comes_back_with_them():
    submission = copy.deepcopy(REFERENCE00)
    submission.nbformat_minor = 4
    for cell in submission.cells:
        del cell["id"]
    repaired, _ = repair(submission, RELEASE00)
    assert repaired.nbformat_minor == 5
    assert_gradable(repaired, RELEASE00)
