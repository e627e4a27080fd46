"""The static self-study website (``make site``, :mod:`mdplab.site`).

The site is built once for the module, from the committed worked solutions, into a
temporary folder. The tests check that every lab has its page, with the student notebook
to download and a Colab badge whose address follows ``[tool.mdplab]``; then headless
Chromium opens every page from a local HTTP server with every other host cut off, and
checks that each page loads with no console error and no failed request, that MathJax
(served by the site itself) left no raw TeX and no error, that every image loads and that
every internal link leads to an existing page and anchor. The closing note of the build
(pages, sizes, time) and each page's load time are printed and recorded as properties.

The browser part needs Playwright for Python and Debian's Chromium
(``apt-get install -y chromium``): CI (``CI=true``) fails without them, elsewhere those
tests are skipped. The build needs npm once, to fetch MathJax into ``out/cache/``.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from browser import chromium, needs
from course_helpers import LAYOUT, REPO
from public_addresses import foreign_addresses

from mdplab.cli import main
from mdplab.course.layout import Published
from mdplab.site.build import (
    SiteReport,
    build_site,
    ensure_mathjax,
    lab_page,
    stage,
)
from mdplab.site.glossary_links import LINK_CLASS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("site")]

FORK = {"repository": "https://github.com/someone-else/mdp-fork", "branch": "spring-term"}
# TeX that MathJax should have turned into formulas: seen outside code, it was not.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\frac|\\beta|\\(?:[a-zA-Z]{2,})\b")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SiteReport:
    """The website, built once from the repository as it is."""
    folder = tmp_path_factory.mktemp("site")
    report = build_site(LAYOUT, folder / "site", work=folder / "work")
    print(f"\n{report.describe()}")
    return report


@dataclass
class Anchors:
    """What an HTML file holds: the ids it defines and the links it makes."""

    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (tag, attrs)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = Anchors()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.found.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.found.ids.add(values["name"])
        self.found.links.append((tag, values))


def parsed(path: Path) -> Anchors:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector.found


# ---------------------------------------------------------------------------- the pages
def test_every_lab_has_a_page_with_its_download_and_colab_badge(site: SiteReport) -> None:
    labs = LAYOUT.all_labs()
    assert site.labs == [lab.name for lab in labs]
    pages = {page.path for page in site.pages}
    assert {"index.html", "glossary.html", "references.html", "search.html"} <= pages
    for lab in labs:
        page = site.root / "labs" / f"{lab.name}.html"
        assert page.is_file(), f"no page for {lab.name}"
        tags = parsed(page).links
        hrefs = [attrs.get("href", "") for tag, attrs in tags if tag == "a"]
        colab = LAYOUT.colab_url(f"labs/{lab.notebook}")
        assert colab.startswith("https://colab.research.google.com/github/")
        assert colab in hrefs, f"{lab.name}: no Colab badge linking {colab}"
        assert not any("/solutions/" in href for href in hrefs if "colab" in href), (
            f"{lab.name}: the page still carries the solution's own Colab badge"
        )
        downloads = [
            href
            for href in hrefs
            if href.endswith(f"/{lab.notebook}") and not re.match(r"^[a-z]+:", href)
        ]
        assert downloads, f"{lab.name}: no download link for the student notebook"
        for href in downloads:
            target = (page.parent / unquote(href)).resolve()
            assert target.read_bytes() == (LAYOUT.labs / lab.notebook).read_bytes(), href
        assert f"{lab.assignment[3:]} ·" in page.read_text(encoding="utf-8")


def test_the_badges_follow_tool_mdplab(tmp_path: Path) -> None:
    """Staged with another public address, every lab page's badge names that address
    and none names the repository's own."""
    published = Published(REPO, FORK)
    labs = stage(published, tmp_path / "source", ensure_mathjax(REPO / "out" / "cache"))
    assert (
        json.loads((tmp_path / "source" / "_site.json").read_text())["repository"]
        == (FORK["repository"])
    )
    for lab in labs:
        page = nbformat.read(tmp_path / "source" / "labs" / lab.notebook, as_version=4)
        markdown = "\n".join(cell.source for cell in page.cells if cell.cell_type == "markdown")
        expected = (
            "https://colab.research.google.com/github/someone-else/mdp-fork/blob/"
            f"spring-term/labs/{lab.notebook}"
        )
        assert expected in markdown, lab.name
        assert LAYOUT.github_path not in markdown, lab.name


def test_every_address_on_the_site_follows_tool_mdplab(site: SiteReport) -> None:
    """Badges, data links and the repository link of every page come from the setting
    (tests/test_public_address.py checks the notebooks the same way)."""
    found = {}
    for page in site.pages:
        foreign = foreign_addresses((site.root / page.path).read_text(encoding="utf-8"), LAYOUT)
        if foreign:
            found[page.path] = sorted(set(foreign))
    assert not found, found


def test_a_bad_repository_address_is_refused_before_building(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["site", "--out", str(tmp_path), "--repository", "https://example.org/x"]) == 2
    assert "https://github.com/OWNER/NAME" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_lab_page_is_its_solution_under_a_header() -> None:
    """The header follows the title; the solution's own badge, the hand-in check and the
    widget view go; the visible tests fold away; a widget's still stays, with a note."""
    view = nbformat.v4.new_output(
        "display_data",
        data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "m-000"},
            "image/png": "iVBORw0KGgo=",
            "text/plain": "Interactive explorer: run the cell to use it.",
        },
        metadata={"mdplab": {"still": True}},
    )
    printed = nbformat.v4.new_output("stream", name="stdout", text="solved\n")
    explorer = nbformat.v4.new_code_cell("explorer = widgets.interactive(explore)")
    explorer.outputs = [view, printed]
    solution = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                "(https://colab.research.google.com/github/o/r/blob/main/solutions/x.ipynb)\n\n"
                "# Lab 09 · Example\n\nThe lab's introduction."
            ),
            nbformat.v4.new_code_cell("# Visible tests\nassert True"),
            explorer,
            nbformat.v4.new_markdown_cell("## Before you hand in\n\nRun the cell below last."),
            nbformat.v4.new_code_cell("# @title Hand-in check: run this cell last\npass"),
        ],
        metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}},
    )
    page = lab_page(solution, colab_url="https://colab.example/x", download="../student/x.ipynb")
    first = page.cells[0].source
    assert first.startswith("# Lab 09 · Example\n\n:::{container} lab-links")
    assert "(https://colab.example/x)" in first and "<../student/x.ipynb>" in first
    assert "solutions/x.ipynb" not in first and first.rstrip().endswith("introduction.")
    assert page.cells[1].metadata["tags"] == ["hide-input"]
    note, still, line = page.cells[2].outputs
    assert "Below is what it first drew" in note["data"]["text/html"]
    assert still["data"]["image/png"] == "iVBORw0KGgo=" and set(still["data"]) == {
        "image/png",
        "text/plain",
    }
    assert line == printed
    assert len(page.cells) == 3 and "widgets" not in page.metadata
    assert "widgets" in solution.metadata, "the solution itself is left as it was"


def test_hints_are_collapsed_and_the_hand_in_check_is_left_out(site: SiteReport) -> None:
    for lab in LAYOUT.all_labs():
        solution = nbformat.read(LAYOUT.solutions / lab.notebook, as_version=4)
        hints = sum(
            cell.source.count("<summary>Hint")
            for cell in solution.cells
            if cell.cell_type == "markdown"
        )
        html = (site.root / "labs" / f"{lab.name}.html").read_text(encoding="utf-8")
        assert html.count("<summary>Hint") == hints, lab.name
        assert not re.search(r"<details[^>]*\bopen\b", html), lab.name
        assert 'id="before-you-hand-in"' not in html, lab.name
        assert "def hand_in_check" not in html, lab.name


def test_first_uses_link_the_glossary(site: SiteReport) -> None:
    glossary = parsed(site.root / "glossary.html").ids
    linked: set[str] = set()
    for lab in LAYOUT.all_labs():
        html = (site.root / "labs" / f"{lab.name}.html").read_text(encoding="utf-8")
        targets = re.findall(
            rf'<a class="reference internal" href="\.\./glossary\.html#([^"]+)">'
            rf'<span class="{LINK_CLASS}">',
            html,
        )
        assert targets, f"{lab.name}: no glossary links"
        assert len(targets) == len(set(targets)), f"{lab.name}: a term linked twice"
        assert set(targets) <= glossary, set(targets) - glossary
        # A link starts and ends at a word's edge ("in" + "feasible action" was one).
        split = re.search(
            rf'\w<a class="reference internal" href="\.\./glossary\.html#[^"]+">'
            rf'<span class="{LINK_CLASS}">|{LINK_CLASS}">[^<]*</span></a>\w',
            html,
        )
        assert split is None, f"{lab.name}: a glossary link splits a word: {split.group(0)}"
        linked |= set(targets)
    for term in ("term-discount-factor", "term-Q-value", "term-contraction", "term-policy"):
        assert term in linked, f"no lab page links {term}"


def test_references_credit_the_seed_lab(site: SiteReport) -> None:
    html = (site.root / "references.html").read_text(encoding="utf-8")
    assert "Lab 10 Discounted MDPs" in html and "Bo Tang" in html
    for author in ("Puterman", "Bertsekas", "Sutton", "Altman", "Scarf", "Singh"):
        assert author in html, author


def test_no_page_names_another_host_for_what_it_loads(site: SiteReport) -> None:
    """Scripts, styles, fonts and images come from the site: with the network closed it
    still works (links to other sites, such as the Colab badge's, are fine)."""
    for page in site.pages:
        for tag, attrs in parsed(site.root / page.path).links:
            address = attrs.get("src") or (attrs.get("href") if tag == "link" else None)
            if address:
                assert not re.match(r"^(?:[a-z]+:)?//", address), f"{page.path}: {tag} {address}"
    for style in (site.root / "_static").rglob("*.css"):
        text = style.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", text), style


def test_the_closing_note_lists_every_page(site: SiteReport) -> None:
    note = site.describe()
    for page in site.pages:
        assert page.path in note and f"{page.size:,} bytes" in note
    assert re.search(r"built in \d+\.\d s", note)
    assert site.seconds < 300, f"the site took {site.seconds:.0f} s to build"


# ---------------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def served(site: SiteReport) -> Iterator[str]:
    """The site's base URL on a local HTTP server."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site.root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, or the reason there is none."""
    yield from chromium()


# Runs in the page once it has loaded: waits for MathJax's first typesetting and for every
# image, then reports what the page shows.
_INSPECT = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const images = [...document.images];
  for (const image of images) image.loading = "eager";
  await Promise.all(images.map((image) => image.complete ? null : new Promise(
    (done) => { image.addEventListener("load", done); image.addEventListener("error", done); }
  )));
  const text = document.body.cloneNode(true);
  text.querySelectorAll("pre, code, script, style, template, mjx-container, .highlight")
    .forEach((node) => node.remove());
  return {
    text: text.textContent,
    mathErrors: document.querySelectorAll("mjx-merror").length,
    formulas: document.querySelectorAll("mjx-container").length,
    brokenImages: images.filter((image) => !(image.naturalWidth > 0)).map((i) => i.src),
    ids: [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.name),
    links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
  };
}
"""


@dataclass
class Visit:
    """What one page did and showed."""

    seconds: float
    console: list[str]
    failed: list[str]
    report: dict[str, Any]


def _visit(context: Any, url: str) -> Visit:
    page = context.new_page()
    page.set_default_timeout(120_000)  # MathJax on a long page, on a busy machine
    console: list[str] = []
    failed: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.on(
        "response", lambda r: failed.append(f"{r.url} ({r.status})") if r.status >= 400 else None
    )
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    report = page.evaluate(_INSPECT)
    seconds = time.perf_counter() - started
    page.close()
    return Visit(seconds, console, failed, report)


def test_every_page_loads_cleanly_offline(
    site: SiteReport, served: str, browser: Any, record_property: Any
) -> None:
    chromium = needs(browser)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def closed_network(route: Any) -> None:
        # Nothing but the site itself: a request elsewhere fails, and is counted.
        if route.request.url.startswith(served):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", closed_network)
    visits = {page.path: _visit(context, served + page.path) for page in site.pages}
    context.close()

    problems: list[str] = [f"a request to another host: {url}" for url in outside]
    for path, visit in visits.items():
        problems += [f"{path}: console error: {text}" for text in visit.console]
        problems += [f"{path}: failed request: {text}" for text in visit.failed]
        report = visit.report
        problems += [f"{path}: image did not load: {src}" for src in report["brokenImages"]]
        if report["mathErrors"]:
            problems.append(f"{path}: {report['mathErrors']} formula(s) MathJax could not read")
        for match in RAW_TEX.finditer(report["text"]):
            context_text = report["text"][max(0, match.start() - 40) : match.end() + 40]
            problems.append(f"{path}: raw TeX {match.group()!r} in {context_text!r}")
    # Every internal link leads to a file of the site, and its anchor to an id there.
    ids = {path: set(visit.report["ids"]) for path, visit in visits.items()}
    for path, visit in visits.items():
        for link in visit.report["links"]:
            if not link.startswith(served):
                continue
            target, _, anchor = link[len(served) :].partition("#")
            target = unquote(urlsplit(target).path) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (site.root / target).is_file():
                problems.append(f"{path}: link to a missing file: {link}")
            elif anchor and target.endswith(".html") and unquote(anchor) not in ids[target]:
                problems.append(f"{path}: link to a missing anchor: {link}")
    assert not problems, "\n".join(problems[:60])

    lab_pages = [path for path in visits if path.startswith("labs/")]
    assert all(visits[path].report["formulas"] > 0 for path in lab_pages)
    timings = {path: round(visit.seconds, 2) for path, visit in visits.items()}
    record_property("site_build_seconds", round(site.seconds, 1))
    record_property("page_load_seconds", timings)
    print("\npage load times (s):", json.dumps(timings, indent=1))


def test_search_finds_a_word_offline(site: SiteReport, served: str, browser: Any) -> None:
    chromium = needs(browser)
    page = chromium.new_page()
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(served) else route.abort(),
    )
    page.goto(served + "search.html?q=contraction", wait_until="load")
    page.wait_for_selector("#search-results li a", timeout=30_000)
    found = page.eval_on_selector_all("#search-results li a", "(links) => links.map(a => a.href)")
    page.close()
    assert any("lab05_value_iteration.html" in href for href in found), found
