"""Build the course's static website: ``mdplab site`` (``make site``) writes ``out/site/``.

The site is the Sphinx project in ``site/`` (configuration, home page, glossary and
references) plus one page per lab, made by myst-nb from the lab's executed worked solution
in ``solutions/``; nothing is executed. Each lab page gets a header with the Colab badge of
the student notebook (the address comes from ``[tool.mdplab]`` in ``pyproject.toml``) and
a link that downloads the student notebook from the site itself. MathJax is served from the
site too: a copy of the npm package, fetched once into a cache folder. The finished site
asks no other host for anything, so it works from a folder, offline.

Everything Sphinx reads is staged first into a work folder, so that ``site/``, ``labs/`` and
``solutions/`` are only ever read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mdplab.course.layout import Lab, Layout, Published
from mdplab.course.widget_state import images

#: MathJax 3 brings its fonts along (MathJax 4 fetches them from a CDN by default).
MATHJAX_VERSION = "3.2.2"
# The parts of the package's es5/ folder that the page script tex-chtml.js may load:
# TeX extensions, fonts, the menu and, once a reader turns them on, the accessibility tools.
_MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_NOTE = (
    '<p class="widget-note"><em>An interactive explorer appears here when the notebook '
    "runs (in Colab or Jupyter); this static page cannot run it.{still}</em></p>"
)
_STILL_NOTE = " Below is what it first drew, at its default settings."
# The first line of the hand-in check's cell ("# @title Hand-in check: ..." for Colab).
_HAND_IN = re.compile(r"^#.*\bHand-in check\b", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    """One HTML page of the built site."""

    path: str  # relative to the site's root, with forward slashes
    size: int  # bytes


@dataclass(frozen=True)
class SiteReport:
    """What a build wrote, and how long it took."""

    root: Path
    pages: list[Page]
    total_bytes: int
    seconds: float
    labs: list[str]

    def describe(self) -> str:
        """The closing note: every page with its size, the site's size and build time."""
        width = max(len(page.path) for page in self.pages)
        lines = [f"{page.path:<{width}}  {page.size:>9,} bytes" for page in self.pages]
        lines.append(
            f"{len(self.pages)} pages ({sum(page.size for page in self.pages):,} bytes of "
            f"HTML), {self.total_bytes:,} bytes in all, built in {self.seconds:.1f} s "
            f"into {self.root}"
        )
        return "\n".join(lines)


def build_site(
    layout: Layout,
    out: Path | None = None,
    *,
    repository: str | None = None,
    branch: str | None = None,
    work: Path | None = None,
    mathjax_cache: Path | None = None,
    jobs: int = 1,
) -> SiteReport:
    """Build the website into ``out`` (default ``out/site``), replacing what was there.

    ``repository`` and ``branch`` replace ``[tool.mdplab]``'s for the Colab badges and the
    repository link. ``work`` is the staging folder (default ``out/site-work``), kept after
    the build for inspection; ``mathjax_cache`` holds MathJax between builds (default
    ``out/cache``). Raises :class:`RuntimeError` with Sphinx's messages when the build
    fails, leaving the site that was there; warnings fail it too, so that a broken link
    or a glossary term without an entry never ships.
    """
    started = time.perf_counter()
    override = {
        key: value
        for key, value in (("repository", repository), ("branch", branch))
        if value is not None
    }
    published = Published(layout.root, override)
    _ = published.github_path  # a bad address fails here, before any work, with its message
    out = (out or layout.root / "out" / "site").resolve()
    work = (work or layout.root / "out" / "site-work").resolve()
    mathjax = ensure_mathjax(mathjax_cache or layout.root / "out" / "cache")
    shutil.rmtree(work, ignore_errors=True)
    source = work / "source"
    labs = stage(published, source, mathjax)
    # Sphinx writes into the work folder (myst-nb puts its output images beside the HTML
    # folder, in jupyter_execute/), and the finished site replaces the old one only then.
    html = work / "html"
    _sphinx(source, html, work / "doctrees", jobs)
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(html, out)
    pages = [
        Page(path.relative_to(out).as_posix(), path.stat().st_size)
        for path in sorted(out.rglob("*.html"))
        if "_static" not in path.relative_to(out).parts  # the theme's template fragments
    ]
    total = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return SiteReport(out, pages, total, time.perf_counter() - started, [lab.name for lab in labs])


def stage(layout: Layout, source: Path, mathjax: Path) -> list[Lab]:
    """Lay out everything Sphinx reads in ``source``: the ``site/`` project, one page per
    lab, the student notebooks, the bibliography and MathJax. Returns the labs staged."""
    shutil.copytree(layout.root / "site", source, ignore=shutil.ignore_patterns("_build"))
    labs = layout.all_labs()
    (source / "labs").mkdir()
    (source / "student").mkdir()
    solutions = {}
    for lab in labs:
        for needed in (layout.labs / lab.notebook, layout.solutions / lab.notebook):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed} is missing: run `mdplab build`")
        shutil.copyfile(layout.labs / lab.notebook, source / "student" / lab.notebook)
        solution = nbformat.read(layout.solutions / lab.notebook, as_version=4)
        solutions[lab] = solution
        page = lab_page(
            solution,
            colab_url=layout.colab_url(f"labs/{lab.notebook}"),
            download=f"../student/{lab.notebook}",
        )
        nbformat.write(page, source / "labs" / lab.notebook)
    (source / "_generated").mkdir()
    (source / "_generated" / "bibliography.md").write_text(
        bibliography(solutions), encoding="utf-8"
    )
    _copy_mathjax(mathjax, source / "_static" / "mathjax")
    settings = {
        "repository": layout.repository,
        "branch": layout.branch,
        "version": _version(),
    }
    (source / "_site.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
    return labs


def lab_page(
    solution: nbformat.NotebookNode, *, colab_url: str, download: str
) -> nbformat.NotebookNode:
    """A lab's page: its worked solution, with a header that links the student notebook.

    The solution's own Colab badge (which opens the solution) gives way to the header;
    the hand-in check, which has nothing to check on a web page, is left out; the visible
    tests are folded away; an interactive widget, which a static page cannot run, becomes
    a note saying so.
    """
    page = nbformat.from_dict(json.loads(json.dumps(solution)))
    page.metadata.pop("widgets", None)
    cells = []
    for cell in page.cells:
        text = cell.source
        if cell.cell_type == "markdown":
            if text.lstrip().startswith("## Before you hand in"):
                continue
            text = "\n".join(
                line for line in text.splitlines() if "colab-badge.svg" not in line
            ).lstrip("\n")
        elif cell.cell_type == "code":
            if _HAND_IN.match(text.lstrip()):
                continue
            if text.lstrip().startswith("# Visible tests"):
                cell.metadata.setdefault("tags", []).append("hide-input")
            cell.outputs = _without_widgets(cell.get("outputs", []))
        cell.source = text
        cells.append(cell)
    page.cells = cells
    _insert_header(page, _header(colab_url, download))
    return page


def _header(colab_url: str, download: str) -> str:
    name = download.rsplit("/", 1)[-1]
    return (
        ":::{container} lab-links\n"
        f"[![Open In Colab](../_static/colab-badge.svg)]({colab_url})\n"
        f"{{download}}`Download the student notebook ({name}) <{download}>`\n"
        ":::\n\n"
        "This page is the lab's **worked solution**, with the outputs it printed and drew. "
        "To do the lab yourself, open the student notebook in Colab or download it and run "
        "it in Jupyter."
    )


def _insert_header(page: nbformat.NotebookNode, header: str) -> None:
    """Put ``header`` right under the page's title, the first level-1 heading."""
    for cell in page.cells:
        if cell.cell_type != "markdown":
            continue
        match = re.search(r"^# .*$", cell.source, flags=re.MULTILINE)
        if match:
            cell.source = (
                f"{cell.source[: match.end()]}\n\n{header}\n\n{cell.source[match.end() :].lstrip()}"
            ).rstrip() + "\n"
            return
    raise ValueError("a worked solution needs a '# Lab NN · Title' heading")


def _without_widgets(outputs: list[nbformat.NotebookNode]) -> list[nbformat.NotebookNode]:
    """``outputs`` with each widget view replaced by a note, followed by the still of the
    explorer that the build put into the view (:mod:`mdplab.course.widget_state`), if any:
    the page shows the image, and the note points to it."""
    kept = []
    for output in outputs:
        data = output.get("data", {})
        if _WIDGET_VIEW not in data:
            kept.append(output)
            continue
        still = images(output)
        note = _WIDGET_NOTE.format(still=_STILL_NOTE if still else "")
        kept.append(
            nbformat.v4.new_output(
                "display_data", data={"text/html": note, "text/plain": "(interactive explorer)"}
            )
        )
        if still:
            metadata = {k: v for k, v in output.get("metadata", {}).items() if k != "mdplab"}
            kept.append(
                nbformat.v4.new_output(
                    "display_data",
                    data={**still, "text/plain": "(the explorer's first drawing)"},
                    metadata=metadata,
                )
            )
    return kept


# ------------------------------------------------------------------------- bibliography
def bibliography(solutions: dict[Lab, nbformat.NotebookNode]) -> str:
    """The works the labs cite, once each, with links to the labs that cite them.

    A work is known by its authors (the text before the first comma); labs that cite it
    with other details (another section, a shorter title) share one entry, which shows
    the most common wording.
    """
    works: dict[str, dict[str, list[Lab]]] = {}
    for lab, notebook in solutions.items():
        for item in references_of(notebook):
            authors = item.split(",", 1)[0]
            works.setdefault(authors, {}).setdefault(item, []).append(lab)
    if not works:
        raise ValueError("no lab has a '## References' list")
    lines = []
    for wordings in works.values():
        shown = max(wordings, key=lambda item: (len(wordings[item]), len(item)))
        citing = sorted({lab for labs in wordings.values() for lab in labs}, key=lambda x: x.name)
        links = ", ".join(f"{{doc}}`Lab {lab.assignment[3:]} </labs/{lab.name}>`" for lab in citing)
        lines.append(f"- {shown} Cited in {links}.")
    return "\n".join(lines) + "\n"


def references_of(notebook: nbformat.NotebookNode) -> list[str]:
    """The items of a notebook's ``## References`` list, each on one line."""
    for cell in notebook.cells:
        if cell.cell_type != "markdown" or "## References" not in cell.source:
            continue
        items: list[str] = []
        lines = cell.source.split("## References", 1)[1].splitlines()
        for line in lines:
            if line.startswith("- "):
                items.append(line[2:].strip())
            elif line.startswith("  ") and items and line.strip():
                items[-1] += " " + line.strip()
            elif line.strip() and items:
                break  # the paragraph after the list
        return items
    return []


# ---------------------------------------------------------------------------- MathJax
def ensure_mathjax(cache: Path) -> Path:
    """The ``es5`` folder of MathJax |MATHJAX_VERSION|, fetched once with npm into
    ``cache``. ``MDPLAB_MATHJAX`` may name an ``es5`` folder to use instead (a machine
    without npm)."""
    given = os.environ.get("MDPLAB_MATHJAX")
    if given:
        folder = Path(given)
        if not (folder / "tex-chtml.js").is_file():
            raise FileNotFoundError(f"MDPLAB_MATHJAX={given}: no tex-chtml.js in that folder")
        return folder
    folder = cache / f"mathjax-{MATHJAX_VERSION}"
    es5 = folder / "node_modules" / "mathjax" / "es5"
    if (es5 / "tex-chtml.js").is_file():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            "the site serves MathJax itself and fetches it with npm, which is not installed "
            "(apt-get install npm), or set MDPLAB_MATHJAX to a MathJax 3 es5 folder"
        )
    cache.mkdir(parents=True, exist_ok=True)
    # Install beside the cache entry and rename, so that two builds at once never see a
    # half-written copy.
    scratch = Path(tempfile.mkdtemp(dir=cache, prefix=".mathjax-"))
    try:
        command = [npm, "install", "--prefix", str(scratch), "--no-save", "--no-audit"]
        command += ["--no-fund", "--ignore-scripts", "--no-package-lock"]
        command.append(f"mathjax@{MATHJAX_VERSION}")
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise RuntimeError(f"npm could not fetch MathJax:\n{run.stdout}{run.stderr}")
        try:
            scratch.rename(folder)
        except OSError:
            if not (es5 / "tex-chtml.js").is_file():  # not another build's copy: a real error
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return es5


def _copy_mathjax(es5: Path, target: Path) -> None:
    for part in _MATHJAX_PARTS:
        origin = es5 / part
        if origin.is_dir():
            shutil.copytree(origin, target / part)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(origin, target / part)


# ----------------------------------------------------------------------------- Sphinx
def _sphinx(source: Path, out: Path, doctrees: Path, jobs: int) -> None:
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-W", "--keep-going"]
    command += ["-j", str(jobs), "-d", str(doctrees), str(source), str(out)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {run.returncode}):\n{run.stderr}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mdplab")
    except PackageNotFoundError:
        return "unknown"
