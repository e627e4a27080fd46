"""JupyterLab in a real browser, started the way a student starts it (``make lab``).

One JupyterLab server (:mod:`lab_server`) runs for the module with the student
configuration of ``jupyter/student/`` on ``JUPYTER_CONFIG_PATH``, on copies of the
notebooks, with every Jupyter folder in a temporary workspace; as root it runs as a
throwaway unprivileged user (:mod:`unprivileged`), as students and instructors do.
Headless Chromium drives it through the menus and the keyboard, and waits on what the page
shows (the kernel's status, the cells' execution counts, their outputs), never on a fixed
delay.

- **The explorers** of lab03 to lab06 (worked solutions; sliders and a figure drawn by
  the kernel). As opened, the notebook is not trusted (no notebook from elsewhere is), and
  JupyterLab renders no widget of an untrusted notebook: the view's renderer is registered
  as unsafe, so the output falls back to another format. The build gives the view a still
  of the explorer's figure as that format (:mod:`mdplab.course.widget_state`), so the
  untrusted notebook shows the figure, not the text ``VBox(children=...``. Once trusted
  (the "Trust Notebook" command), the saved widget state must render as widgets, with no
  text in their place and the figure once, not twice. Then Run All, and each press of
  ArrowRight on the slider's handle must redraw the figure: the time from the key press
  to the new image is measured (median and max of 4 or 5 presses per lab), printed, recorded
  as properties and written to ``out/browser/redraw_times.json``. It is not asserted:
  benchmarks print, tests check behaviour.
- **The student's path** through lab01: Run All stops at the visible tests of the first
  TODO, with its NotImplementedError shown and no cell below run; the TODO answered with
  the worked solution's code (typed into the cell's editor) and run, the visible tests
  pass; once saved, the hand-in check lists the TODOs left and not the one answered, and
  the check's ~300 lines stay hidden behind its first line.
- **No instructor tools for students**: with the student configuration there is no
  Nbgrader menu, no Formgrader, Course List or Create Assignment (menu, command palette,
  sidebar) and the formgrader's pages are not served; a control server without it shows
  them all, so that these checks can fail.

Needs Playwright for Python and Debian's Chromium (``apt-get install -y chromium``): CI
(``CI=true``) fails without them, elsewhere the tests are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
import unprivileged
from browser import chromium, needs
from course_helpers import REPO
from lab_server import LabServer, jupyterlab

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("jupyterlab")]

STUDENT_CONFIG = REPO / "jupyter" / "student"
REDRAW_TIMES = REPO / "out" / "browser" / "redraw_times.json"
# worked solution -> the label of the slider whose key presses are timed, and how many
# presses its default leaves room for (lab06's fleet goes from 4 to at most 8 instances)
EXPLORERS = {
    "lab03_linear_programming": ("beta", 5),
    "lab04_policy_iteration": ("beta", 5),
    "lab05_value_iteration": ("sweep k", 5),
    "lab06_autoscaler": ("instances", 4),
}
STUDENT_LAB = "lab01_dp_review"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_TEXT = re.compile(r"\b(?:VBox|HBox|interactive)\(children=")
# What the student configuration hides: the Nbgrader menu's instructor entries, as the
# command palette lists them, and the Create Assignment panel of the right sidebar.
INSTRUCTOR_COMMANDS = ("Formgrader", "Course List", "Create assignment")
CREATE_ASSIGNMENT_PANEL = "nbgrader-create_assignemnt"  # sic: nbgrader's own id
INSTRUCTOR_PAGES = ("formgrader", "formgraders", "courses")  # the server extensions' routes

ALL_RUN = 300_000  # ms: Run All of a worked solution; about 10 s on an idle machine
STEP = 60_000  # ms: one cell, one redraw, one page


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or the reason there is none."""
    yield from chromium()


def _can_drop_root() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in unprivileged.TOOLS)


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab with the student configuration on copies of the notebooks under test; as
    a throwaway user when the tests run as root."""
    notebooks = [REPO / "solutions" / f"{lab}.ipynb" for lab in EXPLORERS]
    notebooks.append(REPO / "labs" / f"{STUDENT_LAB}.ipynb")
    with ExitStack() as stack:
        if _can_drop_root():
            user = stack.enter_context(unprivileged.unprivileged_user("mdplab-lab"))
            workspace = user.workspace / "student"
        else:
            user, workspace = None, tmp_path_factory.mktemp("student-lab")
        started = time.monotonic()
        server = stack.enter_context(
            jupyterlab(workspace, notebooks, config_path=STUDENT_CONFIG, user=user)
        )
        print(f"\nstudent JupyterLab as {server.user}: {time.monotonic() - started:.1f} s")
        yield server


OPEN: list[Any] = []  # the browser contexts of the running test


@pytest.fixture(autouse=True)
def _close_pages() -> Iterator[None]:
    """Close the pages that a test opened, whether it passed or not."""
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture(scope="module")
def redraw_times() -> dict[str, dict[str, Any]]:
    """The redraw times measured in this run, by lab."""
    return {}


# ---------------------------------------------------------------------------- the page
@dataclass
class Notebook:
    """A notebook open in JupyterLab, with the notebook file it was opened from."""

    path: Path  # the served copy
    page: Any = field(repr=False)
    cells: list[nbformat.NotebookNode] = field(repr=False)

    def cell(self, index: int) -> Any:
        return self.page.locator(f'.jp-Notebook .jp-Cell[data-windowed-list-index="{index}"]')

    def text(self, index: int, limit: int = 3000) -> str:
        """What the page shows of cell ``index`` (its output, then the head of its input),
        for a failure's message."""
        cell = self.cell(index)
        try:
            cell.scroll_into_view_if_needed(timeout=5000)
            shown = text_of(cell.locator(".jp-Cell-outputArea"))
            source = text_of(cell.locator(".jp-Cell-inputWrapper"))
        except Exception as error:  # the page itself is in trouble: say so
            return f"(cannot read cell {index}: {error})"
        return (
            f"cell {index} shows as output:\n{shown[:limit] or '(nothing)'}\n"
            f"and as input:\n{source[:600]}"
        )

    def wait(self, script: str, arg: Any, what: str, *, cell: int | None, timeout: int) -> None:
        """Wait until ``script`` (a JS function of ``arg``) is true, or fail saying ``what``
        did not happen, with the cell's visible text."""
        try:
            self.page.wait_for_function(script, arg=arg, timeout=timeout, polling=100)
            return
        except Exception as error:  # Playwright's TimeoutError; Playwright may be absent
            if "Timeout" not in type(error).__name__:
                raise
        shown = self.text(cell) if cell is not None else self.status()
        pytest.fail(f"{what} within {timeout / 1000:.0f} s\n{shown}", pytrace=False)

    def wait_for_element(self, index: int, selector: str, what: str) -> None:
        """Wait until cell ``index`` holds an element matching the CSS ``selector``."""
        script = f"cell => cell.querySelector({json.dumps(selector)}) !== null"
        self.wait(script, self.cell(index).element_handle(), what, cell=index, timeout=STEP)

    def status(self) -> str:
        return "status bar: " + self.page.locator("#jp-main-statusbar").inner_text()

    def prompt(self, index: int) -> str:
        """The cell's execution count as shown: "[3]:", "[*]:", "[ ]:", or "" (hidden)."""
        return self.cell(index).locator(".jp-InputPrompt").first.text_content() or ""

    def run_all(self) -> None:
        """Run → Run All Cells, and wait until every scheduled cell has run."""
        self.page.evaluate(WATCH_EXECUTION)
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        self.wait_idle("Run All did not finish", timeout=ALL_RUN)

    def wait_idle(self, what: str, *, timeout: int = STEP, cell: int | None = None) -> None:
        """Wait until the cells scheduled since :data:`WATCH_EXECUTION` have run."""
        self.wait(EXECUTION_DONE, None, what, cell=cell, timeout=timeout)

    def run_cell(self, index: int, keys: str = "Control+Enter") -> None:
        """Run the selected cell ``index`` with ``keys`` and wait until it has run."""
        self.page.evaluate(WATCH_EXECUTION)
        self.page.keyboard.press(keys)
        self.wait_idle(f"cell {index} did not run", cell=index)

    def executed(self, index: int) -> bool:
        return re.fullmatch(r"\[\d+\]:", self.prompt(index).strip()) is not None

    def errors(self, index: int) -> str:
        error = self.cell(index).locator('.jp-OutputArea-output[data-mime-type$="stderr"]')
        return "\n".join(text_of(error.nth(n)) for n in range(error.count()))


# A cell's text as the page shows it. JupyterLab lays out only the cells near the viewport
# (content-visibility: auto), and Chromium's innerText of a cell it has not laid out yet is
# empty: then the text of the DOM, with the editor's lines joined as lines.
TEXT_OF = """element => {
  if (element.innerText) return element.innerText;
  const editors = [...element.querySelectorAll('.cm-content')].map(editor =>
    [...editor.querySelectorAll('.cm-line')].map(line => line.textContent).join('\\n'));
  const parts = [...element.querySelectorAll('.jp-OutputArea-output, .jp-InputPlaceholder')];
  const texts = editors.concat(parts.map(part => part.textContent));
  return texts.length ? texts.join('\\n') : element.textContent;
}"""


def text_of(locator: Any) -> str:
    """The text of the element ``locator`` finds (:data:`TEXT_OF`)."""
    return locator.evaluate(TEXT_OF)


# The notebook's execution indicator (toolbar) is busy from the moment cells are scheduled
# until the last of them has run: watched from before the action, so that a quick run
# cannot be missed.
WATCH_EXECUTION = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  window.__mdplabBusy = indicator.dataset.status === 'busy';
  if (window.__mdplabWatch) window.__mdplabWatch.disconnect();
  window.__mdplabWatch = new MutationObserver(() => {
    if (indicator.dataset.status === 'busy') window.__mdplabBusy = true;
  });
  window.__mdplabWatch.observe(indicator, {attributes: true});
}"""
# The kernel's status, as the status bar and the notebook's toolbar show it.
KERNEL_IDLE = """() => /\\bIdle\\b/.test(document.querySelector('#jp-main-statusbar').innerText)
  && document.querySelector('.jp-Notebook-ExecutionIndicator').dataset.status === 'idle'"""
EXECUTION_DONE = """() => {
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-InputPrompt')];
  return window.__mdplabBusy && indicator.dataset.status === 'idle'
    && !prompts.some(prompt => prompt.textContent.includes('*'));
}"""


def new_page(browser: Any, contexts: list[Any]) -> Any:
    """A page of a new browser context (kept in ``contexts``, for closing)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(STEP)
    return page


def open_notebook(browser: Any, server: LabServer, name: str, workspace: str) -> Notebook:
    """``name`` opened in a fresh workspace, its cells all on the page and its kernel idle."""
    path = server.root / name
    cells = nbformat.read(path, as_version=4).cells
    page = new_page(browser, OPEN)
    page.goto(server.address(name, workspace))
    notebook = Notebook(path, page, cells)
    notebook.page.locator(".jp-Notebook-ExecutionIndicator").wait_for(state="attached")
    notebook.wait(
        f"n => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n"
        f" && ({KERNEL_IDLE})()",
        len(cells),
        f"{name} did not open with all its {len(cells)} cells and an idle kernel",
        cell=None,
        timeout=STEP,
    )
    return notebook


def command_palette(page: Any, query: str) -> list[str]:
    """The commands that the palette lists for ``query``."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.fill(query)
    # The palette filters on its next frame; then every item it lists marks what matched,
    # or it says that nothing matched.
    page.wait_for_function(
        "() => { const items = [...document.querySelectorAll('.lm-CommandPalette-item')];"
        " return document.querySelector('.lm-CommandPalette-emptyMessage') !== null"
        " || (items.length > 0 && items.every(item => item.querySelector('mark') !== null)); }",
        polling=100,
    )
    found = page.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel")
    labels = found.all_inner_texts()
    search.press("Escape")
    return labels


def instructor_tools(page: Any, server: LabServer) -> dict[str, Any]:
    """What of nbgrader's instructor tools the page and the server show."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Help$")).wait_for()
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    palette = {
        command: [label for label in command_palette(page, command) if label == command]
        for command in INSTRUCTOR_COMMANDS
    }
    panel = page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{CREATE_ASSIGNMENT_PANEL}"]')
    return {
        "Nbgrader menu": "Nbgrader" in menus,
        "palette": [command for command, labels in palette.items() if labels],
        "Create Assignment panel": panel.count() > 0,
        "served": [path for path in INSTRUCTOR_PAGES if server.get(path) != 404],
    }


# ---------------------------------------------------------------------------- (b) explorers
def explorer_cell(notebook: Notebook, label: str) -> int:
    """The index of the code cell that displays the explorer with the slider ``label``."""
    for index, cell in enumerate(notebook.cells):
        views = [out for out in cell.get("outputs", []) if VIEW_MIME in out.get("data", {})]
        if cell.cell_type == "code" and views and f'description="{label}"' in cell.source:
            return index
    raise AssertionError(f"no cell of {notebook.path.name} displays a slider '{label}'")


def explorer_view(cell: Any) -> dict[str, Any]:
    """What the explorer's cell shows: its sliders, whether the text of a widget stands in
    for one, and how many images (figures)."""
    area = cell.locator(".jp-Cell-outputArea")
    return {
        "sliders": area.locator(".widget-slider").count(),
        "widget text": bool(WIDGET_TEXT.search(text_of(area))),
        "figures": area.locator("img").count(),
    }


# Records, in the page's own clock, each key press and each time the images of the
# explorer's output change (a redraw): the figure is drawn by the kernel and arrives as a
# new <img> in the Output widget.
WATCH_REDRAWS = """(output) => {
  const images = () => [...output.querySelectorAll('img')].map(image => image.src).join(' ');
  const seen = window.__mdplabRedraws = {presses: [], draws: []};
  let last = images();
  document.addEventListener('keydown', () => seen.presses.push(performance.now()), true);
  new MutationObserver(() => {
    const now = images();
    if (now !== '' && now !== last) {
      last = now;
      seen.draws.push(performance.now());
    }
  }).observe(output, {subtree: true, childList: true, attributes: true});
}"""


@pytest.mark.parametrize("lab", sorted(EXPLORERS))
def test_explorer_renders_and_redraws_on_each_key_press(
    browser: Any,
    student_lab: LabServer,
    redraw_times: dict[str, dict[str, Any]],
    record_property: Any,
    lab: str,
) -> None:
    notebook = open_notebook(needs(browser), student_lab, f"{lab}.ipynb", f"explore-{lab}")
    page, (label, presses) = notebook.page, EXPLORERS[lab]
    index = explorer_cell(notebook, label)
    cell = notebook.cell(index)
    cell.scroll_into_view_if_needed()

    # As opened: untrusted, so no widget; the view's still shows the figure instead.
    notebook.wait_for_element(
        index,
        ".jp-Cell-outputArea img",
        "the explorer's still figure did not show in the untrusted notebook",
    )
    untrusted = explorer_view(cell)
    record_property("untrusted_explorer", untrusted)
    # The cell's figures as saved, the explorer's still (in its view) among them; the same
    # number must show untrusted (the still) and trusted (the widget's own figure instead).
    figures = sum("image/png" in out.get("data", {}) for out in notebook.cells[index].outputs)
    assert untrusted == {"sliders": 0, "widget text": False, "figures": figures}, (
        f"as opened, the explorer shows {untrusted}\n{notebook.text(index)}"
    )

    # Trusted: the saved widget state renders as widgets, not as their text.
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Trust Notebook")
    page.locator(".lm-CommandPalette-item", has_text=re.compile(r"^Trust Notebook$")).click()
    page.locator(".jp-Dialog-button", has_text=re.compile(r"^Trust$")).click()
    slider = cell.locator(".widget-slider").filter(has=page.get_by_text(label, exact=True))
    notebook.wait_for_element(
        index,
        ".jupyter-widgets .widget-slider",
        "the trusted notebook's saved explorer did not render as widgets",
    )
    trusted = explorer_view(cell)
    record_property("trusted_explorer", trusted)
    print(f"\n{lab}: the explorer's output as opened {untrusted}, once trusted {trusted}")
    assert not trusted["widget text"], f"the explorer shows as text\n{notebook.text(index)}"
    assert trusted["figures"] == figures, f"{trusted['figures']} figures, not {figures}"
    assert slider.count() == 1, f"no slider '{label}' in the explorer\n{notebook.text(index)}"

    # Run All: the live explorer draws its figure into its Output widget.
    notebook.run_all()
    for other, source in enumerate(notebook.cells):
        if source.cell_type == "code" and notebook.prompt(other).strip():
            assert notebook.executed(other), f"Run All skipped a cell\n{notebook.text(other)}"
    output = cell.locator(".widget-output")
    notebook.wait(
        "output => output.querySelector('img') !== null",
        output.element_handle(),
        "the explorer drew no figure after Run All",
        cell=index,
        timeout=STEP,
    )
    output.evaluate(WATCH_REDRAWS)
    readout = slider.locator(".widget-readout")
    slider.locator(".noUi-handle").focus()
    readouts = [text_of(readout)]
    times = []
    for press in range(1, presses + 1):
        page.keyboard.press("ArrowRight")
        notebook.wait(
            "n => window.__mdplabRedraws.draws.length >= n",
            press,
            f"key press {press} on '{label}' did not redraw the figure",
            cell=index,
            timeout=STEP,
        )
        notebook.wait(
            KERNEL_IDLE,
            None,
            f"the kernel stayed busy after key press {press}",
            cell=index,
            timeout=STEP,
        )
        seen = page.evaluate("() => window.__mdplabRedraws")
        assert len(seen["presses"]) == press, seen
        after = [draw for draw in seen["draws"] if draw > seen["presses"][-1]]
        assert after, f"no redraw after key press {press}: {seen}"
        times.append(after[0] - seen["presses"][-1])
        readouts.append(text_of(readout))
        assert readouts[-1] != readouts[-2], f"'{label}' did not move: {readouts}"
    assert len(page.evaluate("() => window.__mdplabRedraws").get("draws")) >= presses

    measured = {
        "slider": label,
        "presses": presses,
        "readouts": readouts,
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "times_ms": [round(t, 1) for t in times],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    redraw_times[lab] = measured
    record_property("redraw_median_ms", measured["median_ms"])
    record_property("redraw_max_ms", measured["max_ms"])
    print(
        f"{lab}: '{label}' {readouts[0]} -> {readouts[-1]}, redraw after a key press: "
        f"median {measured['median_ms']} ms, max {measured['max_ms']} ms "
        f"({', '.join(f'{t:.0f}' for t in times)} ms)"
    )
    REDRAW_TIMES.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(REDRAW_TIMES.read_text()) if REDRAW_TIMES.exists() else {}
    REDRAW_TIMES.write_text(json.dumps(known | redraw_times, indent=1) + "\n")


# ---------------------------------------------------------------------------- (c) a student
def _title(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("mdplab", {}).get("title", "")


def _defined(cell: nbformat.NotebookNode) -> str:
    match = re.search(r"^def (\w+)\(", cell.source, re.MULTILINE)
    assert match, cell.source
    return match.group(1)


def _is_todo(cell: nbformat.NotebookNode) -> bool:
    grading = cell.metadata.get("nbgrader", {})
    return bool(grading.get("solution")) and "raise NotImplementedError()" in cell.source


def test_student_runs_answers_and_checks_a_lab(browser: Any, student_lab: LabServer) -> None:
    notebook = open_notebook(needs(browser), student_lab, f"{STUDENT_LAB}.ipynb", "student")
    page, cells = notebook.page, notebook.cells
    todos = [index for index, cell in enumerate(cells) if _is_todo(cell)]
    todo = todos[0]
    tests = next(
        index
        for index in range(todo + 1, len(cells))
        if cells[index].cell_type == "code" and cells[index].source.startswith("# Visible tests")
    )
    handin = len(cells) - 1
    assert "hand_in_check" in cells[handin].source
    solution = nbformat.read(REPO / "solutions" / f"{STUDENT_LAB}.ipynb", as_version=4)
    answer = solution.cells[todo].source
    assert _defined(solution.cells[todo]) == _defined(cells[todo])

    # No instructor tools with the student configuration.
    found = instructor_tools(page, student_lab)
    assert found == {
        "Nbgrader menu": False,
        "palette": [],
        "Create Assignment panel": False,
        "served": [],
    }, f"instructor tools in the student's JupyterLab: {found}"
    assert page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate").count() == 1

    # Run All stops at the visible tests of the first TODO, and runs nothing below them.
    notebook.run_all()
    assert notebook.executed(todo), notebook.text(todo)
    assert not notebook.errors(todo), notebook.text(todo)
    notebook.wait(
        "cell => cell.querySelector('.jp-OutputArea-output')?.textContent"
        ".includes('NotImplementedError')",
        notebook.cell(tests).element_handle(),
        "the visible tests of the first TODO show no NotImplementedError",
        cell=tests,
        timeout=STEP,
    )
    assert "NotImplementedError" in notebook.errors(tests), notebook.text(tests)
    for index in range(tests + 1, len(cells)):
        if cells[index].cell_type != "code":
            continue
        prompt = notebook.prompt(index).strip()
        ran = (
            prompt not in ("[ ]:", "")
            or notebook.cell(index).locator(".jp-OutputArea-output").count()
        )
        assert not ran, f"cell {index} ran after Run All stopped\n{notebook.text(index)}"

    # The student types the answer into the TODO cell, and runs it and its visible tests.
    editor = notebook.cell(todo).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(answer)
    typed = editor.evaluate(
        "e => [...e.querySelectorAll('.cm-line')].map(line => line.textContent).join('\\n')"
    )
    assert typed == answer, f"the editor holds another text:\n{typed}"
    notebook.run_cell(todo, "Shift+Enter")  # runs it and selects the next cell
    assert not notebook.errors(todo), notebook.text(todo)
    assert "jp-mod-active" in (notebook.cell(tests).get_attribute("class") or "")
    notebook.run_cell(tests)
    assert notebook.executed(tests), notebook.text(tests)
    output = notebook.cell(tests).locator(".jp-OutputArea-output")
    assert output.count() == 0, f"the visible tests did not pass\n{notebook.text(tests)}"

    # Saved, the hand-in check lists what is left, and not the TODO just answered.
    page.keyboard.press("Control+S")
    saved = f"the saved {notebook.path.name} does not hold the answer"
    deadline = time.monotonic() + STEP / 1000
    while nbformat.read(notebook.path, as_version=4).cells[todo].source != answer:
        assert time.monotonic() < deadline, saved
        page.wait_for_timeout(200)
    notebook.cell(handin - 1).click()  # the note above it; a click on the check opens it
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")  # selects the check, still closed
    assert "jp-mod-active" in (notebook.cell(handin).get_attribute("class") or "")
    notebook.run_cell(handin)
    report = notebook.cell(handin).locator(".jp-Cell-outputArea")
    notebook.wait(
        "cell => cell.querySelector('.jp-Cell-outputArea').textContent.includes('TODOs')",
        notebook.cell(handin).element_handle(),
        "the hand-in check printed no report",
        cell=handin,
        timeout=STEP,
    )
    text = text_of(report)
    print(f"\nthe hand-in check's report:\n{text}")
    assert f"Hand-in check of {STUDENT_LAB}, reading the file" in text, text
    assert f"{_defined(cells[todo])}() still raises" not in text, text
    for left in todos[1:]:
        assert f"{_defined(cells[left])}() still raises NotImplementedError()" in text, text
    assert f"✓ {_title(cells[tests])}: ok" in text, text
    # Each open TODO counts once: the visible tests of the TODOs that never ran wait for
    # them, and are no second problem.
    listed = re.findall(r"✗ [^\n✗]*?(?:still raises|still says YOUR ANSWER HERE)", text)
    count = re.search(r"(\d+) problems? to fix", text)
    assert count and int(count.group(1)) == len(listed) >= len(todos) - 1, text

    # The check's code stays hidden behind its first line.
    check = notebook.cell(handin)
    check.scroll_into_view_if_needed()
    placeholder = check.locator(".jp-InputPlaceholder")
    placeholder.wait_for(state="visible")
    wrapper = check.locator(".jp-Cell-inputWrapper")
    assert check.locator(".jp-InputArea").count() == 0, notebook.text(handin)
    assert "def hand_in_check(" not in (wrapper.text_content() or ""), notebook.text(handin)
    first = cells[handin].source.splitlines()[0]
    assert (placeholder.text_content() or "").strip() == first, notebook.text(handin)
    height = (wrapper.bounding_box() or {}).get("height", 0)
    assert 0 < height < 100, f"the check's input is {height} px high\n{notebook.text(handin)}"


def test_without_the_student_configuration_the_instructor_tools_show(
    browser: Any, tmp_path: Path
) -> None:
    """The control of the student test's check: the same probe sees nbgrader's instructor
    tools in a JupyterLab started without ``jupyter/student``."""
    chromium_ = needs(browser)
    with jupyterlab(tmp_path, [REPO / "labs" / f"{STUDENT_LAB}.ipynb"]) as server:
        page = new_page(chromium_, OPEN)
        page.goto(server.lab("control"))
        found = instructor_tools(page, server)
    assert found == {
        "Nbgrader menu": True,
        "palette": list(INSTRUCTOR_COMMANDS),
        "Create Assignment panel": True,
        "served": list(INSTRUCTOR_PAGES),
    }, f"the control JupyterLab lacks nbgrader's instructor tools: {found}"
