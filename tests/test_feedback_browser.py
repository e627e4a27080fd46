"""Feedback pages opened in a real browser run none of the student's payloads.

tests/test_feedback_page.py checks the HTML; this opens the pages built from the same
payloads in headless Chromium, from file:// URLs as a TA would, hovers and clicks every
element of the notebook, and checks that no payload left any of its traces: a dialog, a
changed title or window.name, a request (to a local server that records hits, or anywhere
else). A control page without the sanitiser and the policy shows that the harness does see
a script that runs, and a page with a script slipped past the sanitiser shows that the
Content-Security-Policy alone stops it. A page of the labs' formulas shows them as MathML
that Chromium lays out, with no request but the page's own.

Needs Playwright for Python and Debian's Chromium (``apt-get install -y chromium``): CI
(``CI=true``) fails without them, elsewhere the tests are skipped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
from browser import chromium, needs
from test_feedback_page import EARNED, outcome, payload_notebook, script

from mdplab.grading.feedback_page import build_page, plain_page

TITLE = "Feedback: lab09_example, student<1>"


# ---------------------------------------------------------------------------- fixtures
class _Beacon(BaseHTTPRequestHandler):
    """Records the path of every request; answers anything, to anyone."""

    hits: list[str]

    def _answer(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Private-Network", "true")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


@pytest.fixture(scope="module")
def beacon() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server's base URL, and the paths it has been asked for."""
    hits: list[str] = []
    handler = type("Beacon", (_Beacon,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hit", hits
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or the reason there is none."""
    yield from chromium()


# ---------------------------------------------------------------------------- a visit
@dataclass
class Visit:
    """What a page did while it was open, hovered and clicked."""

    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    titles: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)


def visit(browser: Any, path: Path, *, interact: bool = True) -> Visit:
    """Open ``path``, then hover and click every element of the notebook, noting after
    each action the title, window.name and where the page is."""
    seen = Visit()
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: seen.requests.append(request.url))
    url = path.as_uri()

    def note() -> None:
        seen.urls.add(page.url)
        try:  # read at once: a followed link may commit between two reads
            title, name, where = page.evaluate("() => [document.title, window.name, location.href]")
        except Exception:  # the page was navigating meanwhile
            return
        if where == url:
            seen.titles.add(title)
            seen.names.add(name)

    page.goto(url)
    page.wait_for_timeout(500)
    note()
    if interact:
        count = page.locator("main *").count()
        for index in range(count):
            element = page.locator("main *").nth(index)
            for action in (element.hover, element.click):
                try:
                    action(timeout=300, force=True, no_wait_after=True)
                except Exception:  # hidden, detached or zero-sized: nothing to act on
                    continue
                page.wait_for_timeout(20)
                note()
                if page.url != url:  # a relative link was followed: come back
                    page.goto(url)
        page.wait_for_timeout(300)
        note()
    context.close()
    return seen


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- tests
def test_the_harness_sees_a_script_that_runs(browser, beacon, tmp_path):
    """The positive control: an unsanitised page's script leaves every trace."""
    base, hits = beacon
    page = f"<!DOCTYPE html><title>control</title><script>{script('control', base)}</script>"
    seen = visit(needs(browser), _write(tmp_path, "control.html", page), interact=False)
    assert seen.dialogs == ["control"]
    assert seen.titles == {"pwned-control"} and seen.names == {"pwned-control"}
    assert f"{base}/control" in seen.requests
    assert "/hit/control" in hits


def test_the_harness_hovers_and_clicks_what_the_payloads_use(browser, beacon, tmp_path):
    """The positive control of the interaction: unsanitised, a hover handler and a
    javascript: link do run when :func:`visit` goes over the notebook."""
    base, _ = beacon
    page = (
        "<!DOCTYPE html><title>control</title><main>"
        f'<p onmouseover="{script("hovered", base)}">hover me</p>'
        f'<a href="javascript:{script("clicked", base)}">click me</a></main>'
    )
    seen = visit(needs(browser), _write(tmp_path, "interact.html", page))
    assert {"hovered", "clicked"} <= set(seen.dialogs)
    assert "pwned-clicked" in seen.titles


@pytest.mark.parametrize("kind", ["rendered", "plain"])
def test_no_payload_runs_when_the_page_is_opened_hovered_and_clicked(
    browser, beacon, tmp_path, kind
):
    base, hits = beacon
    notebook = payload_notebook(base)
    if kind == "rendered":
        text = build_page(notebook, outcome(), EARNED)
    else:
        text = plain_page(notebook, outcome(), EARNED, "rendering it took too long")
    before = len(hits)
    path = _write(tmp_path, f"{kind}.html", text)
    _write(tmp_path, "relative", "the target of the payloads' relative link")
    seen = visit(needs(browser), path)
    assert seen.dialogs == []
    assert seen.titles == {TITLE} and seen.names == {""}
    # Nothing is loaded from elsewhere (images are data: URLs); the one file: request
    # beside the page is the relative link that was clicked, resolved without the <base>.
    folder = path.parent.as_uri() + "/"
    assert [r for r in seen.requests if not r.startswith((folder, "data:"))] == []
    assert hits[before:] == []
    # Only relative links lead anywhere, and only to files beside the page.
    assert {u for u in seen.urls if not u.startswith("file://")} == set()


def test_the_policy_alone_stops_a_script_the_sanitiser_missed(browser, beacon, tmp_path):
    """Defence in depth: a script put into a built page after sanitising does not run."""
    base, hits = beacon
    text = build_page(payload_notebook(base), outcome(), EARNED)
    slipped = (
        f"<script>{script('slipped', base)}</script>"
        f'<img src="x" onerror="{script("slipped_handler", base)}">'
        f'<div style="background: url({base}/slipped_style)">styled</div>'
        f'<img src="{base}/slipped_image">'
    )
    before = len(hits)
    path = _write(tmp_path, "slipped.html", text.replace("</main>", slipped + "</main>"))
    seen = visit(needs(browser), path, interact=False)
    assert seen.dialogs == [] and seen.titles == {TITLE} and seen.names == {""}
    assert hits[before:] == []


def test_the_grader_block_looks_unlike_the_forged_one(browser, tmp_path):
    """The grader's result has the frame, the background and the "Grader" label; the
    student's copy of it has none of them, and sits in the notebook's column while the
    grader's block reaches into the gutter left of it."""
    path = _write(tmp_path, "page.html", build_page(payload_notebook(), outcome(), EARNED))
    context = needs(browser).new_context()
    page = context.new_page()
    page.goto(path.as_uri())
    grader = page.locator("section.mdp-grader", has_text="test_answer")
    forged = page.locator("main p", has_text="Tests test_answer: 2 / 2 point(s)").first
    assert grader.count() == 1 and forged.count() == 1
    style = grader.evaluate(
        "e => { const s = getComputedStyle(e);"
        " return [s.borderLeftWidth, s.borderTopWidth, s.backgroundColor]; }"
    )
    assert float(style[0].removesuffix("px")) >= 8 and float(style[1].removesuffix("px")) >= 1
    assert style[2] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert grader.locator(".mdp-badge").inner_text().startswith("Grader")
    # From the forged paragraph up to the notebook: no frame, no background, no label.
    framing = forged.evaluate(
        """e => { const found = [];
            for (let n = e; n && n.tagName !== 'MAIN'; n = n.parentElement) {
                const s = getComputedStyle(n);
                if (parseFloat(s.borderLeftWidth) > 0 || parseFloat(s.borderTopWidth) > 0
                    || s.backgroundColor !== 'rgba(0, 0, 0, 0)') found.push(n.tagName);
            }
            return [found, e.closest('.mdp-grader') === null]; }"""
    )
    assert framing == [[], True]
    assert grader.bounding_box()["x"] + 40 < forged.bounding_box()["x"]
    context.close()


# ---------------------------------------------------------------------------- formulas
# Formulas as the labs write them: inline, display, over several lines, with a TeX line
# break at the end of a line, and an aligned block.
LAB_MARKDOWN = r"""
## Policy evaluation

For a stationary policy $\pi$, the value satisfies
$V^\pi(s) = c(s,\pi(s)) + \beta \sum_{s'} P(s' \mid s,\pi(s)) V^\pi(s')$ for every state $s$.

$$f_n(s)=\min_{x}\{\dots\}$$

$$
A(s) \;=\; \big\{\, a \in \{0, 1, 2, \dots\} \;:\; s + a \ge d_{\max} \ \text{ and } \
s + a - d_{\min} \le C \,\big\},
\qquad
P(s' \mid s, a) \;=\; p_D(s + a - s') ,
$$

The Bellman optimality operator $(TV)(s) = \min_{a \in A(s)} \big[r(s, a) + \beta
\sum_{s'} P(s' \mid s, a) V(s')\big]$ is a contraction with modulus $\beta$, and
$\|V\|_\infty \le \frac{c_{\max}}{1 - \beta}$.

$$
\begin{aligned}
\max\;& V_0 + V_1 \quad \text{subject to} \\
s = 0:\;& V_0 \le 6 + 0.8\,(\tfrac12 V_0 + \tfrac12 V_1)
\end{aligned}
$$
"""


def test_formulas_are_laid_out_by_the_browser_with_nothing_loaded(browser, tmp_path):
    """The formulas of a page are MathML that Chromium lays out itself: no TeX is left in
    the visible text, every formula has a size, a fraction stands over its denominator,
    and the page asks for nothing but itself."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(LAB_MARKDOWN)])
    path = _write(tmp_path, "formulas.html", build_page(notebook, outcome(), EARNED))
    context = needs(browser).new_context()
    page = context.new_page()
    requests: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_timeout(300)  # anything the page would fetch late, it has asked for now

    text = page.inner_text("body")
    assert "$" not in text
    assert "\\" not in text, re.findall(r"\\\S+", text)  # no \sum, \beta, \min, \{ …
    boxes = page.locator("main math").evaluate_all(
        """ms => ms.map(m => { const r = m.getBoundingClientRect();
            return [m.getAttribute('display'), r.width, r.height]; })"""
    )
    assert [kind for kind, _, _ in boxes] == ["inline"] * 3 + ["block"] * 2 + ["inline"] * 3 + [
        "block"
    ]
    assert all(width > 0 and height > 0 for _, width, height in boxes), boxes
    # MathML layout, not text in unknown elements: the numerator sits above the denominator.
    numerator, denominator = (
        page.locator("main mfrac").first.locator(":scope > *").nth(i).bounding_box() for i in (0, 1)
    )
    assert numerator["y"] + numerator["height"] <= denominator["y"] + 1
    assert requests == [path.as_uri()] and failed == []
    context.close()
