"""The HTML of one feedback page, built so that nothing a student wrote can run or pass for
the grader.

A page is opened by the student, their TAs and the instructor, from files on disk. Every
piece of it that a student controls (markdown, code, outputs, error messages) is escaped, or
rendered by a renderer of ours and then passed through an allow-list sanitiser (nh3) that
keeps no script, event handler, ``style`` or ``id``, no ``class`` but ``<code class="tex">``
and no URL other than http(s), mailto and validated data: images. A Content-Security-Policy
forbids every script on top of that, in case the sanitiser ever lets one through.

The grader's own blocks (the summary and each test cell's result) carry classes that
student content can therefore never carry; the page's stylesheet, the only one the policy
allows, frames them and labels them "Grader". The summary sits in a header outside the
notebook, and test results span the gutter that the student's cells never reach.

Markdown goes through mistune, with a linear rule for ``$…$`` formulas, rather than through
nbconvert, whose filters take minutes on a long line of ``[`` (its ``strip_files_prefix``)
and whose math plugin is quadratic on indented ``$$`` lines. Formulas become MathML on the
server (:mod:`mdplab.grading.math_markup`), which the browser lays out itself: no MathJax,
which would be a script and a download. The MathML passes the same sanitiser as the rest,
with an allow-list of presentation elements and layout attributes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import nh3
from mistune import HTMLRenderer, InlineParser, InlineState, Markdown
from mistune.plugins.formatting import strikethrough
from mistune.plugins.table import table
from nbformat import NotebookNode
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from mdplab.course.handin import HAND_IN_ID
from mdplab.grading.math_markup import MATHML_ATTRIBUTES, MATHML_TAGS, math_html, safe_value

__all__ = ["CSP", "build_page", "image_url", "markdown", "plain_page", "sanitise", "warm"]


class Graded(Protocol):
    """What a page needs of an :class:`~mdplab.grading.batch.Outcome`."""

    student_id: str
    lab: str
    score: float | None
    max_score: float
    status: str
    message: str
    manual_pending: float
    manual_max: float  # the written answers' points, which max_score counts too
    repairs: list[str]


class CellGrade(Protocol):
    """What a page needs of a gradebook cell score."""

    score: float | None
    max_score: float


# ------------------------------------------------------------------------- the frame
_CODE_STYLE = HtmlFormatter(style="default").get_style_defs(".mdp-code")
_STYLE = (
    """
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
.mdp-page { max-width: 62rem; margin: 0 auto; padding: 1rem; }
.mdp-grader { border: 2px solid var(--ink); border-left-width: 0.6rem; background: var(--wash);
  border-radius: 4px; padding: 0.6rem 1rem; margin: 1rem 0; color: #1b1b1b; }
.mdp-grader h1, .mdp-grader h2 { margin: 0.2rem 0; font-size: 1.15rem; }
.mdp-grader h1 { font-size: 1.4rem; }
.mdp-badge { display: inline-block; margin: 0; padding: 0.05rem 0.5rem; border-radius: 3px;
  background: var(--ink); color: #fff; font-weight: 700; font-size: 0.85rem;
  letter-spacing: 0.04em; }
.mdp-summary { --ink: #174a8b; --wash: #e7effa; }
.mdp-passed { --ink: #1d6b2f; --wash: #e6f4e9; }
.mdp-partial { --ink: #8a4b00; --wash: #fdf0dc; }
.mdp-failed { --ink: #a3221b; --wash: #fbe9e8; }
.mdp-notice { --ink: #5a3d8a; --wash: #f1ecf9; }
.mdp-facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; margin: 0.4rem 0; }
.mdp-facts dt { font-weight: 700; }
.mdp-facts dd { margin: 0; }
.mdp-detail { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff;
  border: 1px solid var(--ink); padding: 0.4rem 0.6rem; margin: 0.4rem 0; font-size: 0.9rem; }
.mdp-notebook { border-top: 1px solid #c8c8c8; }
.mdp-notebook-title { font-size: 0.95rem; color: #4a4a4a; margin: 0.8rem 0 0 7rem; }
.mdp-cell { display: grid; grid-template-columns: 6.5rem minmax(0, 1fr); gap: 0.5rem;
  margin: 0.8rem 0; }
.mdp-prompt { color: #4a4a4a; font: 0.8rem/1.9 ui-monospace, monospace; text-align: right; }
.mdp-content { min-width: 0; overflow-x: auto; overflow-wrap: anywhere; }
.mdp-content img { max-width: 100%; height: auto; }
.mdp-content table { border-collapse: collapse; }
.mdp-content th, .mdp-content td { border: 1px solid #c8c8c8; padding: 0.15rem 0.4rem; }
.mdp-content pre, .mdp-code { font: 0.9rem/1.4 ui-monospace, monospace; }
.mdp-code { border: 1px solid #d8d8d8; padding: 0.4rem 0.6rem; margin: 0; overflow-x: auto; }
.mdp-output { margin: 0.3rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.mdp-stderr { background: #fff5f5; }
.mdp-omitted { color: #4a4a4a; font-style: italic; margin: 0.3rem 0 0; }
"""
    + _CODE_STYLE
    + "\n"
)
# Only the page's own stylesheet may apply: its hash is the one style source the policy names.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = (
    "default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; "
    f"img-src data:; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'"
)


def _document(title: str, header: str, body: str) -> str:
    # The policy comes first in <head>: a browser applies a <meta> policy only from there on.
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta charset="utf-8">\n<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<div class="mdp-page">\n{header}'
        '<main class="mdp-notebook" aria-labelledby="mdp-notebook-title">\n'
        '<p class="mdp-notebook-title" id="mdp-notebook-title">Your notebook as handed in '
        "(blocks labelled Grader are the grader's results)</p>\n"
        f"{body}</main>\n</div>\n</body>\n</html>\n"
    )


def _score_text(outcome: Graded) -> str:
    if outcome.score is None:
        return "no score"
    # Out of the autograded points: the written ones are a person's, said on their own line.
    return f"{outcome.score:g} / {outcome.max_score - outcome.manual_max:g}"


def _summary(outcome: Graded, notice: str = "") -> str:
    """The grader's header: who, which lab, the score, the status and the message."""
    lines = [
        '<header class="mdp-grader mdp-summary" aria-labelledby="mdp-summary-title">',
        '<p class="mdp-badge">Grader</p>',
        f'<h1 id="mdp-summary-title">Feedback: {_esc(outcome.lab)}, {_esc(outcome.student_id)}'
        "</h1>",
        '<dl class="mdp-facts">',
        f"<dt>Autograded score</dt><dd>{_score_text(outcome)}</dd>",
        f"<dt>Status</dt><dd>{_esc(outcome.status)}</dd>",
        "</dl>",
    ]
    if outcome.manual_pending:
        pending = f"{outcome.manual_pending:g}"
        lines.append(f"<p>{pending} point(s) of written answers are graded by hand.</p>")
    if outcome.message:
        lines.append(f'<p class="mdp-detail">{_esc(outcome.message)}</p>')
    repairs = outcome.repairs
    if repairs:
        lines.append(
            f"<p>The grader repaired your file before grading it ({len(repairs)} "
            f"repair{'s' if len(repairs) > 1 else ''}); keep your cells as the lab gives "
            "them, so that no repair is needed:</p>"
        )
        lines.append(
            '<ul class="mdp-repairs">' + "".join(f"<li>{_esc(r)}</li>" for r in repairs) + "</ul>"
        )
    lines.append("</header>")
    if notice:
        lines += [
            '<section class="mdp-grader mdp-notice" aria-label="Grader notice">',
            '<p class="mdp-badge">Grader · notice</p>',
            f"<p>{_esc(notice)}</p>",
            "</section>",
        ]
    return "\n".join(lines) + "\n"


def _test_result(cell: NotebookNode, grade: CellGrade, titles: Mapping[str, str]) -> str:
    """A test cell's title (the points table's, from the release), points and the message
    of each failure: never its code."""
    grade_id = cell.metadata["nbgrader"].get("grade_id", "tests")
    title = titles.get(grade_id, grade_id)
    points = grade.score or 0.0
    maximum = grade.max_score
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if points >= maximum and not errors:
        kind, label = "mdp-passed", "passed"
    elif points > 0:
        kind, label = "mdp-partial", "partly passed"
    else:
        kind, label = "mdp-failed", "failed"
    lines = [
        f'<section class="mdp-grader {kind}" aria-label="Grader: {_esc(title)}, {label}">',
        f'<p class="mdp-badge">Grader · {label}</p>',
        f"<h2>{_esc(title)}: {points:g} / {maximum:g} point(s)</h2>",
    ]
    for error in errors:
        text = f"{error.get('ename', '')}: {error.get('evalue', '')}"
        lines.append(f'<pre class="mdp-detail">{_esc(text)}</pre>')
    if not errors:
        lines.append(
            "<p>All checks passed.</p>"
            if points >= maximum
            else "<p>Not every point was earned; the checks left no message.</p>"
        )
    lines.append("</section>")
    return "\n".join(lines) + "\n"


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _cells(
    notebook: NotebookNode,
    earned: Mapping[str, CellGrade],
    render: Callable[[NotebookNode], str],
    titles: Mapping[str, str],
) -> str:
    """Each cell of the notebook: test cells as the grader's result, the others by
    ``render``. A test cell the gradebook does not know (a student may copy nbgrader's
    metadata into a cell of their own) gets no grader block, and its code is not shown:
    it might be a real test cell whose hidden code must stay hidden."""
    parts = []
    shown: set[str] = set()
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == HAND_IN_ID:
            continue  # the check a student runs before handing in: it says nothing here
        if _is_test_cell(cell):
            grade_id = cell.metadata["nbgrader"].get("grade_id", "")
            grade = earned.get(grade_id)
            if grade is not None and grade_id not in shown:
                shown.add(grade_id)
                parts.append(_test_result(cell, grade, titles))
            else:
                parts.append(_cell("", _omitted("a cell marked as tests, not graded")))
        else:
            parts.append(render(cell))
    return "".join(parts)


def _cell(prompt: str, content: str) -> str:
    return (
        f'<div class="mdp-cell"><div class="mdp-prompt">{prompt}</div>'
        f'<div class="mdp-content">{content}</div></div>\n'
    )


def _omitted(what: str) -> str:
    return f'<p class="mdp-omitted">[{_esc(what)}]</p>'


# ------------------------------------------------------------------------- text
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")


def _esc(text: object) -> str:
    """Text as HTML text, terminal colour codes dropped (tracebacks are full of them)."""
    return html.escape(_ANSI.sub("", str(text)))


def _source(value: Any) -> str:
    """A notebook string field, which nbformat allows to be a list of lines."""
    return "".join(value) if isinstance(value, list) else str(value or "")


# ------------------------------------------------------------------------- sanitiser
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "samp",
    "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var", "wbr",
} | MATHML_TAGS  # fmt: skip
# No class, style or id anywhere: those are what would let student content look like, or be
# addressed as, the grader's blocks.
_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
} | {tag: set(MATHML_ATTRIBUTES) for tag in MATHML_TAGS}
# The one class student content may carry: a formula shown as TeX. The page styles none of
# its own blocks with it.
_CLASSES = {"code": {"tex"}}
# "data" and "attachment" are let through to _attribute, which keeps them on images only.
_SCHEMES = {"http", "https", "mailto", "data", "attachment"}
_IMAGE_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
_DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.IGNORECASE | re.DOTALL)


def image_url(mime: str, payload: str | bytes) -> str | None:
    """A data: URL for an image, or None when ``payload`` is not what ``mime`` says.

    PNG, JPEG and GIF come as base64, which must decode and start with the format's
    signature; SVG comes as text (or base64) and is only ever shown through ``<img>``,
    where a browser runs none of its scripts."""
    mime = mime.lower()
    if mime == "image/svg+xml":
        data = payload.encode() if isinstance(payload, str) else payload
        if data.lstrip()[:1] != b"<":  # base64, as in a data: URL
            data = _unbase64(data) or b""
        if b"<svg" not in data[:4096].lower():
            return None
    elif mime in _IMAGE_SIGNATURES:
        data = _unbase64(payload) or b""
        if not data.startswith(_IMAGE_SIGNATURES[mime]):
            return None
    else:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _unbase64(payload: str | bytes) -> bytes | None:
    text = payload.encode() if isinstance(payload, str) else payload
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", text), validate=True)
    except (binascii.Error, ValueError):
        return None


def sanitise(fragment: str, attachments: Mapping[str, Any] | None = None) -> str:
    """``fragment`` of student HTML with only the allow-listed tags and attributes, and
    images only as validated data: URLs (``attachments`` resolves a markdown cell's
    ``attachment:name``). nh3 reparses and reserialises, so the result is balanced: it can
    never close an element of the page around it."""

    def attribute(tag: str, name: str, value: str) -> str | None:
        lowered = value.strip().lower()
        if tag == "img" and name == "src":
            if lowered.startswith("attachment:"):
                bundle = (attachments or {}).get(value.strip()[len("attachment:") :], {})
                return next(
                    (url for mime, data in bundle.items() if (url := image_url(mime, data))),
                    None,
                )
            match = _DATA_URL.fullmatch(value.strip())
            # Nothing loads from elsewhere: a remote image would tell its owner who opened
            # the page, and the policy would block it anyway.
            return image_url(match.group(1), match.group(2)) if match else None
        if lowered.startswith(("data:", "attachment:")):
            return None
        if tag in MATHML_TAGS and not safe_value(value):
            return None  # a formula's attributes are lengths and keywords, never a url(…)
        return value

    return nh3.clean(
        fragment,
        tags=_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "iframe", "object"},
        attributes=_ATTRIBUTES,
        allowed_classes=_CLASSES,
        attribute_filter=attribute,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


# ------------------------------------------------------------------------- markdown
# $…$ and $$…$$, each scan stopping at the next $, so that a page of dollar signs is
# linear; mistune's own math plugin is quadratic on indented $$ lines, which open a block
# whose end it then seeks through the rest of the cell, once per line. An inline $ follows
# pandoc's rule, so that "$4 and $5" stays text: no space after the opening $, none before
# the closing one, and no digit after it. Either kind may span lines, and a backslash
# escapes any character, a newline too (TeX's "\ " at the end of a line).
# A bare \begin{equation}…\end{equation} (or align, gather…), which Jupyter shows as
# display math, stops at the next \begin of those: linear too, and they do not nest.
_ENVIRONMENTS = r"(?:equation|align|gather|multline|eqnarray)\*?"
_MATH = (
    r"\$\$(?P<mdp_display>(?:[^$\\]|\\[\s\S])*?)\$\$"
    r"|\$(?![$\s])(?P<mdp_inline>(?:[^$\\]|\\[\s\S])+?)(?<!\s)\$(?!\d)"
    rf"|(?P<mdp_environment>\\begin\{{(?P<mdp_name>{_ENVIRONMENTS})\}}"
    rf"(?:[^\\]|\\(?!begin\{{{_ENVIRONMENTS}\}})[\s\S])*?\\end\{{(?P=mdp_name)\}})"
)


def _parse_math(inline: InlineParser, m: re.Match[str], state: InlineState) -> int:
    if m.group("mdp_inline") is not None:
        tex, display = m.group("mdp_inline"), False
    else:  # the environment is part of the TeX: latex2mathml lays out align's columns
        tex, display = m.group("mdp_display") or m.group("mdp_environment") or "", True
    attrs = {"tex": tex, "display": display}
    state.append_token({"type": "mdp_math", "raw": m.group(0), "attrs": attrs})
    return m.end()


def _render_math(renderer: HTMLRenderer, text: str, tex: str, display: bool) -> str:
    """A formula as MathML, or as its escaped TeX when it cannot be converted; either way
    safe from emphasis and links, and sanitised with the rest of the cell."""
    return math_html(text, tex, display=display)


def _math(md: Markdown) -> None:
    md.inline.register("mdp_math", _MATH, _parse_math, before="codespan")
    md.renderer.register("mdp_math", _render_math)  # type: ignore[union-attr]


# Raw HTML and every URL pass through to the sanitiser, the one place that decides.
_MARKDOWN = Markdown(
    renderer=HTMLRenderer(escape=False, allow_harmful_protocols=True),
    inline=InlineParser(),
    plugins=[strikethrough, table, _math],
)


def markdown(text: str, attachments: Mapping[str, Any] | None = None) -> str:
    """Student markdown as sanitised HTML."""
    rendered = _MARKDOWN(text)
    assert isinstance(rendered, str)
    return sanitise(rendered, attachments)


# ------------------------------------------------------------------------- cells
def _lexer() -> Lexer:
    try:  # IPython's lexer knows %magics and !shell lines; plain Python is close enough
        return get_lexer_by_name("ipython3")
    except ClassNotFound:
        return PythonLexer()


_LEXER = _lexer()
_FORMATTER = HtmlFormatter(nowrap=True)


def _code(source: str) -> str:
    return f'<pre class="mdp-code">{highlight(source, _LEXER, _FORMATTER)}</pre>'


def _rich_cell(cell: NotebookNode) -> str:
    """A student's cell, rendered: markdown sanitised, code highlighted, outputs made safe."""
    kind = cell.get("cell_type")
    source = _source(cell.get("source"))
    if kind == "markdown":
        return _cell("", markdown(source, cell.get("attachments")))
    if kind != "code":
        return _cell("", f'<pre class="mdp-output">{_esc(source)}</pre>')
    count = cell.get("execution_count")
    prompt = f"In [{count if isinstance(count, int) else ' '}]:"
    outputs = "".join(_output(o) for o in cell.get("outputs", []))
    return _cell(prompt, _code(source) + outputs)


# nbconvert's order: richest first, plain text last.
_ORDER = (
    "text/html",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/markdown",
    "text/latex",
    "text/plain",
)
_SCRIPTS = ("application/javascript", "text/javascript", "application/x-javascript")


def _output(output: NotebookNode) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        extra = " mdp-stderr" if output.get("name") == "stderr" else ""
        return f'<pre class="mdp-output{extra}">{_esc(_source(output.get("text")))}</pre>'
    if kind == "error":
        lines = [f"{output.get('ename', '')}: {output.get('evalue', '')}"]
        lines += [_source(line) for line in output.get("traceback", [])]
        return f'<pre class="mdp-output mdp-stderr">{_esc(chr(10).join(lines))}</pre>'
    if kind not in ("display_data", "execute_result"):
        return ""
    data = output.get("data", {})
    parts = []
    if any(mime in data for mime in _SCRIPTS):
        parts.append(_omitted("a JavaScript output, not run: feedback pages run no script"))
    parts.append(_display(data))
    return "".join(parts)


def _display(data: Mapping[str, Any]) -> str:
    """The first of an output's forms that shows something once made safe."""
    for mime in _ORDER:
        if mime not in data:
            continue
        value = data[mime]
        if mime.startswith("image/"):
            url = image_url(mime, _source(value) if isinstance(value, list) else value)
            if url is not None:
                return f'<div class="mdp-output"><img src="{url}" alt="output image"></div>'
            continue
        text = _source(value)
        if mime == "text/html":
            shown = sanitise(text)
        elif mime == "text/markdown":
            shown = markdown(text)
        else:
            return f'<pre class="mdp-output">{_esc(text)}</pre>'
        if shown.strip():
            return f'<div class="mdp-output">{shown}</div>'
    others = sorted(set(data) - set(_SCRIPTS))
    return _omitted(f"an output of type {', '.join(others)}, not shown") if others else ""


def _plain_cell(cell: NotebookNode) -> str:
    """A student's cell as escaped text only: what a page falls back to."""
    parts = [_source(cell.get("source"))]
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(_source(output.get("text")))
        elif kind == "error":
            parts.append(f"{output.get('ename', '')}: {output.get('evalue', '')}")
        elif "text/plain" in output.get("data", {}):
            parts.append(_source(output["data"]["text/plain"]))
    return _cell("", f'<pre class="mdp-output">{_esc(chr(10).join(parts))}</pre>')


# ------------------------------------------------------------------------- pages
def build_page(
    notebook: NotebookNode,
    outcome: Graded,
    earned: Mapping[str, CellGrade],
    titles: Mapping[str, str] | None = None,
) -> str:
    """The feedback page of a graded notebook: the grader's summary, then the student's
    cells with every test cell replaced by its result, under its exercise title
    (``titles``: grade_id -> title, from the release; the grade_id where none)."""
    return _document(
        f"Feedback: {outcome.lab}, {outcome.student_id}",
        _summary(outcome),
        _cells(notebook, earned, _rich_cell, titles or {}),
    )


def plain_page(
    notebook: NotebookNode,
    outcome: Graded,
    earned: Mapping[str, CellGrade],
    reason: str,
    titles: Mapping[str, str] | None = None,
) -> str:
    """The page as escaped text, for a notebook that :func:`build_page` could not render
    in time: the same frame, score and test results, and the student's cells as text."""
    notice = f"This page shows the notebook as plain text: {reason}."
    return _document(
        f"Feedback: {outcome.lab}, {outcome.student_id}",
        _summary(outcome, notice),
        _cells(notebook, earned, _plain_cell, titles or {}),
    )


def warm() -> None:
    """Run each renderer once, so that processes forked afterwards inherit them ready."""
    markdown("*a* $x$ <b>b</b>")
    _code("x = 1")
