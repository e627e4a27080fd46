"""The code of the hand-in check, the last cell of every lab (see :mod:`mdplab.course.handin`).

Everything below the cut line is copied into the cell, followed by the lab's data
(``HAND_IN_LAB = {...}``) and the call ``hand_in_check(HAND_IN_LAB)``. It runs where the
students work: the standard library and IPython only, no course package. Keeping it a real
module lets ruff check it and lets the tests call its functions directly.

Imports sit inside the functions so that the cell adds no names to the student's session
but its own, which all start with ``hand_in``, ``_hand_in`` or ``HAND_IN``.
"""

# ---- cut: the cell starts below ----
# @title Hand-in check: run this cell last (its code is hidden; open it to read it)
# In JupyterLab, save first (Ctrl+S): the check reads the saved file. It finds the cells
# the grader needs, lists the TODOs still open, reruns the visible tests in your current
# session, names the cell where Run All stopped, and tells you whether the notebook is ready
# to hand in. It changes nothing in your notebook.


def hand_in_check(lab):
    """Print what is left to do before this lab is handed in, or that it is ready.

    ``lab`` describes the cells the grader needs (HAND_IN_LAB, at the end of this cell).
    The check never stops with an error: a problem inside the check itself is reported as
    such, because it says nothing about your work.
    """
    try:
        notebook, source = _hand_in_read_notebook(lab)
        if notebook is None:
            print(f"Hand-in check skipped: {source}.")
        else:
            print(_hand_in_report(lab, notebook, source))
    except KeyboardInterrupt:
        print("Hand-in check stopped before it finished.")
    except Exception as error:
        print(
            "The hand-in check itself ran into a problem (this says nothing about your work; "
            f"please tell your instructor): {_hand_in_first_line(error)}"
        )


# Reading the notebook ---------------------------------------------------------------------


def _hand_in_read_notebook(lab):
    """(the notebook as a dict, a phrase saying where it came from), or (None, why not)."""
    import sys

    if "google.colab" in sys.modules:
        notebook = _hand_in_from_colab()
        if notebook is not None:
            return notebook, "the notebook as it is open in Colab now"
    path, why_not = _hand_in_notebook_path()
    if path is None:
        return None, why_not
    return _hand_in_from_file(lab, path)


def _hand_in_from_colab():
    """The notebook as it is in the browser now, asked from Colab's frontend (the way
    Colab's own tools get it); None when the frontend does not answer."""
    import json

    try:
        from google.colab import _message

        reply = _message.blocking_request("get_ipynb", request="", timeout_sec=30)
        notebook = reply["ipynb"]
        notebook = json.loads(notebook) if isinstance(notebook, str) else notebook
    except Exception:
        return None
    return notebook if _hand_in_cells(notebook) else None


def _hand_in_notebook_path():
    """(the saved file of this notebook, None), or (None, why it cannot be found)."""
    import os

    names = [os.environ.get("JPY_SESSION_NAME")]  # set by Jupyter Server 2 and later
    shell = _hand_in_shell()
    if shell is not None:
        # IPython kernels copy the session name; VS Code names the file its own way.
        names += [shell.user_ns.get("__session__"), shell.user_ns.get("__vsc_ipynb_file__")]
    names = [name for name in names if isinstance(name, str) and name.endswith(".ipynb")]
    if not names:
        return None, "not running in Colab or JupyterLab, so there is no notebook to read"
    for name in names:
        # A relative name may be relative to the server's folder; the kernel itself starts
        # in the notebook's folder.
        for path in (name, os.path.basename(name)):
            if os.path.isfile(path):
                return path, None
    return None, (
        f"cannot find the file {names[0]} (was it renamed? Save it, restart the kernel and "
        "run all cells again)"
    )


def _hand_in_from_file(lab, path):
    """The saved notebook at ``path`` if it is this lab, and a phrase saying when it was saved."""
    import json
    import os
    import time

    try:
        with open(path, encoding="utf-8") as handle:
            notebook = json.load(handle)
    except (OSError, ValueError) as error:
        return None, f"cannot read {path} ({_hand_in_first_line(error)})"
    if not any(
        "def hand_in_check(" in text and lab["lab"] in text
        for text in map(_hand_in_text, _hand_in_cells(notebook))
    ):
        return None, f"{path} is not the notebook of {lab['lab']}"
    saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))
    return notebook, f"the file {os.path.basename(path)} as saved at {saved}"


def _hand_in_shell():
    try:
        from IPython import get_ipython

        return get_ipython()
    except Exception:
        return None


# Small helpers on notebook cells (plain dicts, as in the .ipynb file) -----------------------


def _hand_in_cells(notebook):
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    return [cell for cell in cells if isinstance(cell, dict)] if isinstance(cells, list) else []


def _hand_in_text(cell):
    """A cell's source as one string (files store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _hand_in_grade_id(cell):
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None


def _hand_in_has(cell, start):
    """Whether a line of the cell starts with ``start`` (leading spaces aside)."""
    return any(line.strip().startswith(start) for line in _hand_in_text(cell).splitlines())


def _hand_in_is_check(cell):
    return _hand_in_grade_id(cell) == "hand_in_check" or _hand_in_has(cell, "def hand_in_check(")


def _hand_in_first_line(error):
    return _hand_in_error_line(type(error).__name__, error)


def _hand_in_error_line(name, message):
    """``name: the message's first line``, cut to one line of the report."""
    lines = str(message).strip().splitlines()
    text = f"{name}: {lines[0]}" if lines else name
    return text if len(text) <= 160 else text[:157] + "..."


# Checking --------------------------------------------------------------------------------


def _hand_in_label(spec):
    kind = {"answer": "TODO cell", "tests": "Test cell", "written": "Written answer"}
    return f"{kind.get(spec['kind'], 'Read-only cell')} '{spec['title']}'"


def _hand_in_by_content(cells, spec, unmarked):
    """Indices of the cells that hold ``spec``'s content; with ``unmarked``, only among the
    cells without grading information."""
    usable = [
        index
        for index, cell in enumerate(cells)
        if not _hand_in_is_check(cell) and not (unmarked and _hand_in_grade_id(cell))
    ]
    if spec.get("find"):
        return [index for index in usable if _hand_in_has(cells[index], spec["find"])]
    # A written answer has no fixed text: it is the cell between its two neighbours.
    start, end = 0, len(cells)
    if spec.get("after"):
        starts = [i for i, cell in enumerate(cells) if _hand_in_has(cell, spec["after"])]
        if not starts:
            return []
        start = starts[0] + 1
    if spec.get("before"):
        ends = [i for i in range(start, len(cells)) if _hand_in_has(cells[i], spec["before"])]
        end = ends[0] if ends else end
    return [index for index in usable if start <= index < end][:1]


def _hand_in_locate(lab, cells):
    """grade_id -> index of the cell the grader will use (None if there is none), and the
    problems with the notebook's structure, one sentence each."""
    by_id = {}
    for index, cell in enumerate(cells):
        by_id.setdefault(_hand_in_grade_id(cell), []).append(index)
    found, problems = {}, []
    for grade_id, spec in lab["cells"].items():
        label = _hand_in_label(spec)
        if lab["find_cells_by"] == "metadata":
            indices, lost = by_id.get(grade_id, []), False
            if not indices:
                indices = _hand_in_by_content(cells, spec, unmarked=True)[:1]
                lost = bool(indices)
        else:  # the worked solution carries no grading information: go by content
            indices, lost = _hand_in_by_content(cells, spec, unmarked=False), False
        if not indices:
            found[grade_id] = None
            problems.append(
                f"{label} is missing. Undo the deletion, or copy the cell from a fresh copy "
                "of the lab."
            )
            continue
        if len(indices) > 1:
            problems.append(
                f"{label} appears {len(indices)} times. The grader keeps only the last one: "
                "keep your work in one copy and delete the others."
            )
        index = indices[-1]
        found[grade_id] = index
        if lost:
            problems.append(
                f"{label} has lost its grading information, so the grader cannot see it. "
                "Copy its content into the same cell of a fresh copy of the lab."
            )
        cell_type = cells[index].get("cell_type")
        if cell_type != spec["type"]:
            word = {"code": "code", "markdown": "text"}
            problems.append(
                f"{label} was turned into a {word.get(cell_type, cell_type)} cell. Turn it "
                f"back into a {word[spec['type']]} cell (Colab: Ctrl+M Y for code, Ctrl+M M "
                "for text; JupyterLab: Esc, then Y or M)."
            )
        elif spec["kind"] == "answer" and not _hand_in_has(cells[index], spec["find"]):
            problems.append(
                f"{label} no longer defines {spec['title']}(...). The grader calls your "
                f"function by that name: keep the line `{spec['find']}...` as it was."
            )
    return found, problems


def _hand_in_open_todos(lab, cells, found):
    """(index, sentence) of each answer cell that still holds the stub it was handed out
    with, and of each written answer still to write."""
    todos = []
    for grade_id, spec in lab["cells"].items():
        index = found.get(grade_id)
        if index is None:
            continue
        text = _hand_in_text(cells[index])
        if spec["kind"] == "answer" and "raise NotImplementedError()" in text:
            todos.append(
                (
                    index,
                    f"{spec['title']}() still raises NotImplementedError(): replace the stub "
                    "with your code.",
                )
            )
        elif spec["kind"] == "written" and "YOUR ANSWER HERE" in text:
            todos.append(
                (index, f"'{spec['title']}' still says YOUR ANSWER HERE: write your answer there.")
            )
    return todos


def _hand_in_first_error(lab, cells, found):
    """(index, where, error) of the first code cell whose saved output is an error, or None.
    Run All stops there, and the cells below it keep whatever they showed before."""
    labels = {index: _hand_in_label(lab["cells"][key]) for key, index in found.items()}
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code" or _hand_in_is_check(cell):
            continue
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else []:
            if isinstance(output, dict) and output.get("output_type") == "error":
                name = str(output.get("ename", "an error"))
                text = _hand_in_error_line(name, output.get("evalue", ""))
                first = _hand_in_text(cell).strip().splitlines()
                where = labels.get(index) or (
                    f"the code cell that starts `{first[0][:60]}`" if first else "an empty cell"
                )
                return index, where, text
    return None


def _hand_in_run_tests(lab, cells, found):
    """(title, cell index, None if it passes else (the first line of its error, whether an
    open TODO raised it)) for each visible test cell, run on a copy of the session's
    variables so that the tests change none of yours."""
    shell = _hand_in_shell()
    if shell is None:
        return []
    namespace = dict(shell.user_ns)
    results = []
    for grade_id, spec in lab["cells"].items():
        index = found.get(grade_id)
        if spec["kind"] != "tests" or index is None or cells[index].get("cell_type") != "code":
            continue
        results.append((spec["title"], index, _hand_in_run_test(shell, namespace, cells[index])))
    return results


def _hand_in_run_test(shell, namespace, cell):
    """None if the cell runs without an error, else (the first line of the error, whether it
    is the NotImplementedError of an open TODO). Whatever the test prints or warns is kept
    out of the report."""
    import contextlib
    import io
    import warnings

    try:
        code = compile(shell.transform_cell(_hand_in_text(cell)), "<visible test>", "exec")
        quiet = io.StringIO()
        with (
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # SystemExit too: a test must not end the check
        return _hand_in_first_line(error), isinstance(error, NotImplementedError)
    return None


# The report ------------------------------------------------------------------------------


def _hand_in_waits(lab, found, todos, index):
    """Whether the visible test at ``index`` tests an open TODO: the nearest TODO cell above
    it still holds its stub. Whatever that test meets (the stub's NotImplementedError, or a
    NameError because Run All stopped above and the cells before it never ran), it cannot
    pass before the TODO is answered, which the report already lists."""
    above = [
        found[grade_id]
        for grade_id, spec in lab["cells"].items()
        if spec["kind"] == "answer" and found.get(grade_id, index) < index
    ]
    return bool(above) and max(above) in {todo for todo, _ in todos}


def _hand_in_advice(error, index, stopped):
    """What to do about a failing visible test, where its first line alone does not say."""
    if not error.startswith("NameError"):
        return ""
    if stopped is not None and stopped[0] < index:
        return " (a cell above it did not run: Run All stopped at an error further up, see below)"
    return " (run all the cells above it first)"


def _hand_in_report(lab, notebook, source):
    """The text the check prints: one section per kind of problem, then the verdict."""
    cells = _hand_in_cells(notebook)
    found, structure = _hand_in_locate(lab, cells)
    todos = _hand_in_open_todos(lab, cells, found)
    tests = _hand_in_run_tests(lab, cells, found)
    stopped = _hand_in_first_error(lab, cells, found)
    lines = [f"Hand-in check of {lab['lab']}, reading {source}."]
    if source.startswith("the file"):
        lines.append("Changes you have not saved are not in the file: save (Ctrl+S) first.")
    lines += ["", "Cells the grader needs"]
    lines += [f"  ✗ {problem}" for problem in structure] or [
        f"  ✓ all {len(lab['cells'])} in place"
    ]
    lines += ["TODOs"] + ([f"  ✗ {todo}" for _, todo in todos] or ["  ✓ all answered"])
    lines.append("Visible tests, rerun now in your current session")
    failing = 0
    for title, index, error in tests:
        if error is None:
            lines.append(f"  ✓ {title}: ok")
        elif error[1] or _hand_in_waits(lab, found, todos, index):  # counted as its TODO
            lines.append(f"  · {title}: waits for an open TODO ({error[0]})")
        else:
            failing += 1
            lines.append(f"  ✗ {title}: {error[0]}{_hand_in_advice(error[0], index, stopped)}")
    if not tests:
        lines.append("  (none found)")
    if stopped is not None:
        index, where, text = stopped
        lines += [
            "Run All",
            f"  → stopped at cell {index + 1} of {len(cells)}, {where}: {text}. The cells below "
            "it did not run; fix that cell, then run all cells again.",
        ]
    count = len(structure) + len(todos) + failing
    lines.append("")
    if count:
        plural = "s" if count > 1 else ""
        lines.append(
            f"{count} problem{plural} to fix before you hand in; then run this cell again."
        )
    else:
        lines.append("Ready to hand in: File → Download → .ipynb")
    lines += [
        "  In Colab: File → Download → Download .ipynb",
        "  In JupyterLab: save (Ctrl+S), then File → Download",
        "  Keep the file name the lab gave you.",
    ]
    return "\n".join(lines)
