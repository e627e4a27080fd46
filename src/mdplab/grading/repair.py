"""Reading a student's submission, and repairing it against its lab's released notebook
before nbgrader sees it.

nbgrader trusts the grading metadata inside the submitted file, and editors damage it.
Each repair exists because nbgrader 0.9 would otherwise grade the submission wrongly, or
not at all:

- a duplicated grade_id (a copied cell): nbgrader 0.9 empties the copy's metadata and then
  aborts the whole batch with a misleading "old version of the nbgrader metadata" error;
- lost grading metadata (Colab or another editor may drop it, on a cell or everywhere):
  nbgrader no longer sees the cells, and the submission grades as a silent zero;
- a deleted grade cell: its test is never run, or its answer has nowhere to be graded;
- a changed cell type (an answer turned into markdown): the student's code never runs;
- nbgrader metadata on a cell of the student's own, or with an unknown grade_id: nbgrader's
  metadata check fails on it;
- Colab's metadata, stale outputs and a different kernelspec: noise in the graded file, or
  a kernel nbgrader cannot start.

Cells in the log are numbered from 1, in the order of the submitted notebook.
"""

from __future__ import annotations

import codecs
import copy
import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.reader import NotJSONError, parse_json

STUB_MARKERS = ("YOUR CODE HERE", "YOUR ANSWER HERE")
# Limits on what is read at all. A lab has about a hundred cells of a few KB each, and a
# notebook with figures a few MB; each limit is far above that, and below what would let
# one file hold up the batch (every step below is linear, but not free).
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_CELLS = 3_000
MAX_CELL_SOURCE_CHARS = 1_000_000
# Nesting of the file's JSON: a notebook's own structure is about six deep, and widget
# state or a JSON output a few dozen more. Anything deeper is no notebook; reading it would
# only exhaust the recursion of the readers after json (nbformat, jsonschema, deepcopy).
MAX_JSON_DEPTH = 200
COLAB_NOTEBOOK_KEYS = ("colab", "accelerator", "gpuClass")
COLAB_CELL_KEYS = ("id", "outputId", "executionInfo", "colab")
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")
DEFINED_NAME = re.compile(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", flags=re.MULTILINE)

# Alignment scores: a cell claimed for a release cell (by grade_id or unmistakable text)
# outweighs any number of guesses; guesses rank text evidence above mere position.
CLAIMED = 1000.0
SAME_TEXT = 2.0
SAME_NAME = 1.5
BLANK_STUB = 1.5
POSITION = 0.5
SIMILAR_ENOUGH = 0.6


class SubmissionError(ValueError):
    """A file that cannot be read as a notebook; ``reason`` says why, in plain words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Submission:
    """A student's notebook as read from ``path`` (format 4.5), and what reading fixed."""

    path: Path
    notebook: NotebookNode
    log: tuple[str, ...]


class Kind(Enum):
    """The role of a release cell in grading, worded for the log."""

    ANSWER = "answer cell"
    WRITTEN = "written answer"
    TEST = "test cell"
    LOCKED = "read-only cell"
    PLAIN = "cell"


@dataclass(frozen=True)
class ReleaseCell:
    """One cell of the released notebook, with its grading role."""

    index: int
    cell: NotebookNode
    kind: Kind
    grade_id: str | None

    @property
    def graded(self) -> bool:
        return self.kind is not Kind.PLAIN

    @property
    def is_answer(self) -> bool:
        return self.kind in (Kind.ANSWER, Kind.WRITTEN)

    @cached_property
    def text(self) -> str:
        return _normalise(self.cell.source)

    @cached_property
    def stub_prefix(self) -> str:
        """The text the release shows above the stub marker (e.g. the function signature)."""
        lines = self.text.splitlines()
        for n, line in enumerate(lines):
            if any(marker in line for marker in STUB_MARKERS):
                return _normalise("\n".join(lines[:n]))
        return ""

    @cached_property
    def names(self) -> frozenset[str]:
        """Functions and classes the stub defines: an answer that defines one is this one."""
        return frozenset(DEFINED_NAME.findall(self.stub_prefix))

    def describe(self) -> str:
        return f"{self.kind.value} {self.grade_id}"


# Reading ---------------------------------------------------------------------------------
def read_submission(path: Path) -> Submission:
    """Read a student's file as a format 4.5 notebook, fixing what nbformat can fix.

    Raises :class:`SubmissionError` when the file is not a notebook at all: empty, not
    UTF-8, invalid JSON, not a JSON object, or an unknown notebook format.
    """
    log: list[str] = []
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SubmissionError(
                path, f"the file is {_mb(size)}, larger than the limit of {_mb(MAX_FILE_BYTES)}"
            )
        raw = path.read_bytes()
    except OSError as error:
        raise SubmissionError(path, f"cannot be read: {error.strerror or error}") from error
    text = _decode(path, raw, log)
    data = _parse(path, text)
    _check_size(path, data)
    try:
        notebook = _to_v4(path, data, log)
        notebook = _validated(path, notebook, log)
    except RecursionError as error:  # a limit we did not foresee; still the file's fault
        raise SubmissionError(path, "not a notebook: its JSON is nested too deeply") from error
    return Submission(path, notebook, tuple(log))


def _decode(path: Path, raw: bytes, log: list[str]) -> str:
    if not raw.strip():
        raise SubmissionError(path, "empty file")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SubmissionError(path, "not a notebook: the file is UTF-16 text, not UTF-8")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
        log.append("removed a UTF-8 byte-order mark from the start of the file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SubmissionError(
            path, f"not a notebook: the file is not UTF-8 text (bad byte at offset {error.start})"
        ) from error


def _parse(path: Path, text: str) -> dict:
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise SubmissionError(
            path,
            f"not a notebook: its JSON is nested {depth} deep (a notebook needs a few dozen "
            f"at most; the limit is {MAX_JSON_DEPTH})",
        )
    try:
        data = parse_json(text)
    except NotJSONError as error:
        cause = error.__cause__
        where = (
            f" (line {cause.lineno}, column {cause.colno})"
            if isinstance(cause, json.JSONDecodeError)
            else ""
        )
        raise SubmissionError(path, f"not a notebook: invalid JSON{where}") from error
    if not isinstance(data, dict):
        raise SubmissionError(
            path, f"not a notebook: the JSON holds a {type(data).__name__}, not an object"
        )
    return data


def _json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest, in one linear pass that
    skips strings (where brackets are only characters)."""
    # Strings are removed first (escapes included), so that what remains is structure.
    structure = _JSON_STRING.sub("", text)
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(structure):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', flags=re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _check_size(path: Path, data: object) -> None:
    """Refuse a notebook with more cells, or a longer cell, than a lab could need."""
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return  # the format checks that follow say what is wrong
    if len(cells) > MAX_CELLS:
        raise SubmissionError(
            path, f"the notebook has {len(cells)} cells; the limit is {MAX_CELLS}"
        )
    for number, cell in enumerate(cells, start=1):
        source = cell.get("source") if isinstance(cell, dict) else None
        if isinstance(source, list):
            length = sum(len(line) for line in source if isinstance(line, str))
        else:
            length = len(source) if isinstance(source, str) else 0
        if length > MAX_CELL_SOURCE_CHARS:
            raise SubmissionError(
                path,
                f"cell {number} holds {length:,} characters; the limit for one cell is "
                f"{MAX_CELL_SOURCE_CHARS:,}",
            )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _to_v4(path: Path, data: dict, log: list[str]) -> NotebookNode:
    """The notebook in format 4.5: older formats converted, 4.x minors normalised."""
    major, minor = data.get("nbformat"), data.get("nbformat_minor")
    if not _is_int(major) or major not in nbformat.versions or major > 4:
        shown = "none given" if major is None else repr(major)
        raise SubmissionError(path, f"unknown notebook format (nbformat: {shown})")
    if major == 4 and not _is_int(minor):
        data["nbformat_minor"] = minor = 0
        log.append("the notebook did not say its format's minor version; read it as 4.0")
    if major == 4:
        _fix_structure(path, data, log)
    try:
        notebook = nbformat.versions[major].to_notebook_json(data, minor=minor)
        if major < 4:
            notebook = nbformat.convert(notebook, 4)
            log.append(f"converted the notebook from format {major} to format 4")
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise SubmissionError(path, f"not a notebook: {error}") from error
    current = nbformat.v4.nbformat_minor
    if major == 4 and minor > current:
        log.append(f"read a format 4.{minor} notebook as format 4.{current}")
    notebook.nbformat, notebook.nbformat_minor = 4, current
    renamed = _unique_cell_ids(notebook.cells)
    if renamed:
        log.append(f"gave {renamed} cell(s) an id (theirs was missing, invalid or repeated)")
    return notebook


def _fix_structure(path: Path, data: dict, log: list[str]) -> None:
    """Fill the fields a format 4 cell needs (metadata, outputs) in the file's own JSON,
    which nbformat's reader expects to find, and name the cells beyond repair."""
    if not isinstance(data.get("cells"), list):
        raise SubmissionError(path, "not a notebook: it has no list of cells")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    fixed = 0
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            kind = cell.get("cell_type") if isinstance(cell, dict) else type(cell).__name__
            raise SubmissionError(path, f"not a notebook: cell {number} has unknown type {kind!r}")
        fixed += _fill_cell_fields(cell)
    if fixed:
        log.append(f"filled in missing fields of {fixed} cell(s)")


def _fill_cell_fields(cell: dict) -> int:
    """Make one cell structurally valid; 1 if anything had to change, else 0."""
    before = copy.deepcopy(cell)
    if not isinstance(cell.get("metadata"), dict):
        cell["metadata"] = {}
    if not isinstance(cell.get("source"), str | list):
        cell["source"] = ""
    if cell["cell_type"] == "code":
        if not isinstance(cell.get("outputs"), list):
            cell["outputs"] = []
        cell.setdefault("execution_count", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return int(cell != before)


def _validated(path: Path, notebook: NotebookNode, log: list[str]) -> NotebookNode:
    """The notebook after nbformat's own repairs; an error if it still is not valid."""
    changes, fixed = nbformat.validator.normalize(notebook, strip_invalid_metadata=True)
    notebook = nbformat.from_dict(fixed)
    if changes:
        log.append(f"nbformat repaired {changes} invalid metadata field(s)")
    try:
        nbformat.validate(notebook)
        return notebook
    except nbformat.ValidationError as error:
        first = str(error).strip().splitlines()[0]
    # Outputs are thrown away before grading anyway, so broken ones need not be fatal.
    cleared = _clear_outputs(notebook.cells)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        raise SubmissionError(path, f"not a valid notebook: {first}") from error
    log.append(f"cleared the outputs of {cleared} cell(s): they were not valid notebook outputs")
    return notebook


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# Repairing -------------------------------------------------------------------------------
def repair(submission: NotebookNode, release: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """A new notebook that nbgrader 0.9 grades as the student meant, and a log of repairs.

    Grade cells are matched to the release's by grade_id, or where the metadata was lost,
    by their text (see the module docstring for the repairs and why each is needed).
    ``submission`` is not changed.
    """
    log: list[str] = []
    notebook = copy.deepcopy(submission)
    spec = release_cells(release)
    cells = list(notebook.cells)
    _remove_colab_metadata(notebook, cells, log)
    _clear_outputs(cells)
    _use_release_kernel(notebook, release, log)

    claims = _claim_by_grade_id(cells, spec, log)
    by_content = _claim_by_text(cells, spec, claims)
    aligned = _align(cells, spec, claims)
    for i, r in aligned.items():
        if spec[r].graded and i not in claims:
            claims[i] = r
            by_content.add(i)
    kept, removed = _resolve_duplicates(cells, spec, claims, aligned, log)

    placed: list[tuple[NotebookNode, int | None]] = []
    for i, cell in enumerate(cells):
        if i in removed:
            continue
        if i in kept:
            rc = spec[kept[i]]
            placed.append((_restore(cell, rc, i + 1, i in by_content, log), rc.index))
        else:  # the student's own cell, or an earlier version of a duplicated answer
            _drop_grading_metadata(cell)
            # A cell the student kept from the release (unchanged text) marks a position.
            anchor = aligned.get(i)
            plain = anchor is not None and not spec[anchor].graded
            placed.append((cell, anchor if plain else None))
    _put_back_missing(placed, spec, log)

    notebook.cells = [cell for cell, _ in placed]
    _unique_cell_ids(notebook.cells)
    notebook.nbformat, notebook.nbformat_minor = 4, max(release.nbformat_minor, 5)
    nbformat.validate(notebook)
    return notebook, log


def release_cells(release: NotebookNode) -> list[ReleaseCell]:
    """Every cell of the released notebook with its grading role."""
    return [ReleaseCell(n, cell, *_role(cell)) for n, cell in enumerate(release.cells)]


def _role(cell: NotebookNode) -> tuple[Kind, str | None]:
    meta = cell.metadata.get("nbgrader") or {}
    grade_id = meta.get("grade_id")
    if not grade_id:
        return Kind.PLAIN, None
    if meta.get("solution"):
        return (Kind.WRITTEN if cell.cell_type == "markdown" else Kind.ANSWER), grade_id
    if meta.get("grade"):
        return Kind.TEST, grade_id
    if meta.get("locked") or meta.get("task"):
        return Kind.LOCKED, grade_id
    return Kind.PLAIN, None


# Notebook-wide clean-up
def _remove_colab_metadata(notebook: NotebookNode, cells: list, log: list[str]) -> None:
    found = [key for key in COLAB_NOTEBOOK_KEYS if notebook.metadata.pop(key, None) is not None]
    touched = 0
    for cell in cells:
        dropped = [cell.metadata.pop(key) for key in COLAB_CELL_KEYS if key in cell.metadata]
        touched += bool(dropped)
    if found or touched:
        where = f"the notebook ({', '.join(found)})" if found else ""
        where += " and " if found and touched else ""
        where += f"{touched} cell(s)" if touched else ""
        log.append(f"removed Colab's metadata from {where}")


def _clear_outputs(cells: list) -> int:
    """Empty every code cell's outputs (nbgrader runs the code again); return how many."""
    cleared = 0
    for cell in cells:
        if cell.cell_type == "code":
            cleared += bool(cell.get("outputs")) or cell.get("execution_count") is not None
            cell.outputs, cell.execution_count = [], None
    return cleared


def _use_release_kernel(notebook: NotebookNode, release: NotebookNode, log: list[str]) -> None:
    for key in ("kernelspec", "language_info"):
        theirs = notebook.metadata.get(key)
        ours = release.metadata.get(key)
        if key == "kernelspec" and theirs and ours and theirs.get("name") != ours.get("name"):
            log.append(
                f"set the kernel to the lab's {ours.get('name')!r} (was {theirs.get('name')!r})"
            )
        if ours is None:
            notebook.metadata.pop(key, None)
        else:
            notebook.metadata[key] = copy.deepcopy(ours)


# Matching cells to the release
def _claim_by_grade_id(cells: list, spec: list[ReleaseCell], log: list[str]) -> dict[int, int]:
    """submission index -> release index, for cells whose grade_id the release knows.

    Grading metadata with an unknown grade_id, or too broken to read, is removed here, so
    that every cell left with metadata is claimed.
    """
    by_id = {rc.grade_id: rc.index for rc in spec if rc.graded}
    claims = {}
    for i, cell in enumerate(cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if grade_id in by_id:
            claims[i] = by_id[grade_id]
            continue
        cell.metadata.pop("nbgrader")
        if grade_id:
            log.append(
                f"removed grading metadata from cell {i + 1}: "
                f"grade_id {grade_id!r} is not in this lab"
            )
        elif meta:
            log.append(f"removed incomplete grading metadata from cell {i + 1}")
    return claims


def _claim_by_text(cells: list, spec: list[ReleaseCell], claims: dict[int, int]) -> set[int]:
    """Add to ``claims`` the cells without metadata whose text names their release cell
    unmistakably: the exact text of a read-only or test cell, or an answer that starts with
    the lines the release shows above its stub. Such text is unmistakable in any order, so
    shuffled cells are found too. Returns the indices it claimed."""
    counts = Counter(rc.text for rc in spec)
    exact = {
        rc.text: rc.index
        for rc in spec
        if rc.kind in (Kind.TEST, Kind.LOCKED) and rc.text and counts[rc.text] == 1
    }
    prefixed = [rc for rc in spec if rc.kind is Kind.ANSWER and rc.stub_prefix]
    found = set()
    for i, cell in enumerate(cells):
        if i in claims or "nbgrader" in cell.metadata:
            continue
        text = _normalise(cell.source)
        r = exact.get(text)
        if r is None:
            r = _answer_by_prefix(text, prefixed)
        if r is not None:
            claims[i] = r
            found.add(i)
    return found


def _answer_by_prefix(text: str, answers: list[ReleaseCell]) -> int | None:
    """The answer whose stub prefix ``text`` starts with; the longest wins, ties match none."""
    hits = [
        rc for rc in answers if text == rc.stub_prefix or text.startswith(rc.stub_prefix + "\n")
    ]
    if not hits:
        return None
    longest = max(len(rc.stub_prefix) for rc in hits)
    best = [rc for rc in hits if len(rc.stub_prefix) == longest]
    return best[0].index if len(best) == 1 else None


def _align(cells: list, spec: list[ReleaseCell], claims: dict[int, int]) -> dict[int, int]:
    """An order-preserving alignment of submission cells to release cells (submission index
    -> release index) that maximises the total score: claimed cells anchor it, and the
    cells left over are matched by type, text and position between those anchors."""
    claimed = set(claims.values())
    texts = [_normalise(cell.source) for cell in cells]

    def score(i: int, r: int) -> float:
        if i in claims:
            return CLAIMED if claims[i] == r else 0.0
        if r in claimed:
            return 0.0
        return _guess(cells[i], texts[i], spec[r])

    n, m = len(cells), len(spec)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    took = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            s = score(i - 1, j - 1)
            took[i][j] = best[i - 1][j - 1] + s if s > 0 else -1.0
            best[i][j] = max(best[i - 1][j], best[i][j - 1], took[i][j])
    pairs, i, j = {}, n, m
    while i and j:
        if took[i][j] >= 0 and best[i][j] == took[i][j]:
            pairs[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif best[i][j] == best[i - 1][j]:
            i -= 1
        else:
            j -= 1
    return pairs


def _guess(cell: NotebookNode, text: str, rc: ReleaseCell) -> float:
    """How well an unclaimed cell without metadata fits an unclaimed release cell."""
    if rc.kind is Kind.PLAIN:
        return SAME_TEXT if cell.cell_type == rc.cell.cell_type and text == rc.text else 0.0
    if rc.kind in (Kind.TEST, Kind.LOCKED):
        similarity = _similarity(text, rc.text)
        return 1.0 + similarity if similarity else 0.0
    if rc.kind is Kind.ANSWER:
        if rc.names and rc.names & set(DEFINED_NAME.findall(text)):
            return SAME_NAME
        return POSITION if cell.cell_type == "code" else 0.0
    if cell.cell_type != "markdown":  # a written answer
        return 0.0
    return BLANK_STUB if text == rc.text else POSITION


def _similarity(a: str, b: str) -> float:
    """difflib's ratio when at least SIMILAR_ENOUGH (an edited test), else 0."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR_ENOUGH or matcher.quick_ratio() < SIMILAR_ENOUGH:
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= SIMILAR_ENOUGH else 0.0


# Duplicates
def _resolve_duplicates(
    cells: list,
    spec: list[ReleaseCell],
    claims: dict[int, int],
    aligned: dict[int, int],
    log: list[str],
) -> tuple[dict[int, int], set[int]]:
    """One submission cell per release cell: (kept: submission -> release index, removed
    copies). Copies in neither stay as ordinary cells (earlier versions of an answer)."""
    copies: dict[int, list[int]] = {}
    for i in sorted(claims):
        copies.setdefault(claims[i], []).append(i)
    kept, removed = {}, set()
    for r, found in sorted(copies.items()):
        rc = spec[r]
        if len(found) == 1:
            kept[found[0]] = r
            continue
        if rc.is_answer:
            keeper, blank, earlier = _pick_answer(cells, rc, found)
            removed |= blank
            changed = _normalise(cells[keeper].source) != rc.text
            log.append(_answer_duplicates_message(rc, found, keeper, changed, blank, earlier))
        else:
            keeper = _pick_fixed(rc, found, aligned)
            removed |= set(found) - {keeper}
            log.append(
                f"{rc.describe()} appeared {len(found)} times ({_cells(found)}); kept "
                f"cell {keeper + 1} and removed the other copies (nbgrader restores its text)"
            )
        kept[keeper] = r
    return kept, removed


def _pick_answer(cells: list, rc: ReleaseCell, found: list[int]) -> tuple[int, set[int], set[int]]:
    """The copy the student changed last (in notebook order), the blank copies to remove,
    and the earlier changed copies, kept as ordinary cells: they may define helpers the
    kept copy uses, and running them first cannot override it."""
    changed = [i for i in found if _normalise(cells[i].source) != rc.text]
    keeper = changed[-1] if changed else found[0]
    blank = {i for i in found if i not in changed and i != keeper}
    earlier = {i for i in changed if i != keeper}
    return keeper, blank, earlier


def _pick_fixed(rc: ReleaseCell, found: list[int], aligned: dict[int, int]) -> int:
    """A test or read-only copy: the one where the release has it, by the alignment; else
    the last test copy (it must run after the answers) or the first read-only one (setup
    must run before the cells that use it)."""
    placed = [i for i in found if aligned.get(i) == rc.index]
    if placed:
        return placed[0]
    return found[-1] if rc.kind is Kind.TEST else found[0]


def _answer_duplicates_message(
    rc: ReleaseCell,
    found: list[int],
    keeper: int,
    changed: bool,
    blank: set[int],
    earlier: set[int],
) -> str:
    why = "the last one changed from the blank stub" if changed else "all of them are blank"
    parts = [
        f"{rc.describe()} appeared {len(found)} times ({_cells(found)}); "
        f"kept cell {keeper + 1}, {why}"
    ]
    if blank:
        copies = "copy" if len(blank) == 1 else "copies"
        parts.append(f"removed the blank {copies} ({_cells(blank)})")
    if earlier:
        versions = "version" if len(earlier) == 1 else "versions"
        parts.append(f"kept the earlier {versions} ({_cells(earlier)}) as ordinary, ungraded cells")
    return "; ".join(parts)


# Building the repaired cells
def _restore(
    cell: NotebookNode, rc: ReleaseCell, number: int, by_content: bool, log: list[str]
) -> NotebookNode:
    """The student's cell with the release's type and grading metadata."""
    if by_content:
        log.append(f"re-attached grading metadata to cell {number} ({rc.grade_id})")
    elif cell.metadata.get("nbgrader") != rc.cell.metadata.get("nbgrader"):
        log.append(f"restored the grading metadata of cell {number} ({rc.grade_id})")
    metadata = {k: v for k, v in cell.metadata.items() if k != "nbgrader"}
    metadata.update(copy.deepcopy(rc.cell.metadata))
    if cell.cell_type == rc.cell.cell_type:
        cell.metadata = nbformat.from_dict(metadata)
        return cell  # as it was otherwise: a written answer keeps its attached images
    log.append(
        f"cell {number} ({rc.grade_id}) had been turned into a {cell.cell_type} cell; it "
        f"is a {rc.cell.cell_type} cell again, with the student's text"
    )
    return _new_cell(rc.cell.cell_type, cell.source, metadata, cell.get("id"))


def _new_cell(cell_type: str, source: str, metadata: dict, cell_id: str | None) -> NotebookNode:
    make = {
        "code": nbformat.v4.new_code_cell,
        "markdown": nbformat.v4.new_markdown_cell,
        "raw": nbformat.v4.new_raw_cell,
    }[cell_type]
    cell = make(source=source, metadata=metadata)
    if cell_id:
        cell.id = cell_id
    return cell


def _drop_grading_metadata(cell: NotebookNode) -> None:
    """A cell that is not graded carries no nbgrader metadata (nbgrader would check it)."""
    cell.metadata.pop("nbgrader", None)


def _put_back_missing(
    placed: list[tuple[NotebookNode, int | None]], spec: list[ReleaseCell], log: list[str]
) -> None:
    """Insert each missing grade cell from the release right after the nearest release cell
    before it that the submission has (so consecutive missing cells keep their order)."""
    present = {r for _, r in placed if r is not None}
    for rc in spec:
        if not rc.graded or rc.index in present:
            continue
        before = [r for r in present if r < rc.index]
        at = 0
        if before:
            anchor = max(before)
            at = next(n for n, (_, r) in enumerate(placed) if r == anchor) + 1
        placed.insert(at, (copy.deepcopy(rc.cell), rc.index))
        present.add(rc.index)
        log.append(_missing_message(rc))


def _missing_message(rc: ReleaseCell) -> str:
    if rc.is_answer:
        return f"{rc.describe()} was missing; the blank stub was put back"
    return f"{rc.describe()} was missing; it was put back from the release"


def _unique_cell_ids(cells: list) -> int:
    """Give every cell a valid id that no other cell has; return how many changed.

    Linear in the number of cells: each new id's number continues from the last one
    tried for its base, so no number is tried twice."""
    valid = [
        cell.get("id")
        if isinstance(cell.get("id"), str) and CELL_ID.match(cell.get("id"))
        else None
        for cell in cells
    ]
    taken = {cell_id for cell_id in valid if cell_id is not None}
    seen: set[str] = set()
    next_number: dict[str, int] = {}
    changed = 0
    for cell, cell_id in zip(cells, valid, strict=True):
        if cell_id is None or cell_id in seen:
            base = cell_id[:56] if cell_id is not None else "cell"
            n = next_number.get(base, 1)
            while f"{base}-{n}" in taken:
                n += 1
            next_number[base] = n + 1
            cell_id = f"{base}-{n}"
            cell.id = cell_id
            taken.add(cell_id)
            changed += 1
        seen.add(cell_id)
    return changed


def _normalise(text: str) -> str:
    """Text compared without trailing spaces and surrounding blank lines."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip()


def _cells(indices: list[int] | set[int]) -> str:
    """Submission cells by number, counted from 1: "cell 7" or "cells 5, 6"."""
    numbers = ", ".join(str(i + 1) for i in sorted(indices))
    return f"cell {numbers}" if len(indices) == 1 else f"cells {numbers}"
