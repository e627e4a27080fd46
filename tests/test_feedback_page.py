"""Feedback pages are safe to open and cannot be forged (issue 11, findings 4, 9, 10, 12).

A student controls the markdown, code, outputs and error messages of their notebook, and
with them what the feedback page holds. These tests build pages from a notebook that tries
every kind of script, event handler, navigation and resource load a page could be made to
run, and check the HTML: nothing of it is left live, the grader's blocks are the only ones
that carry the grader's frame, a page too slow to render falls back to plain text within its
time limit, and grades.csv cells cannot be read as formulas. tests/test_feedback_browser.py
opens the same pages in a browser.
"""

from __future__ import annotations

import csv
import html
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from latex2mathml.converter import convert_to_element

from mdplab.course.handin import HAND_IN_ID
from mdplab.course.nbgrader_course import CellScore, SubmissionScore
from mdplab.grading import feedback_page
from mdplab.grading.batch import GradingRun, Outcome
from mdplab.grading.feedback_page import (
    CSP,
    build_page,
    image_url,
    markdown,
    plain_page,
    sanitise,
)
from mdplab.grading.math_markup import MAX_TEX, to_mathml
from mdplab.grading.report import summary, write_csv, write_feedback

LABS_FOLDER = Path(__file__).resolve().parents[1] / "labs"

LAB = "lab09_example"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
HIDDEN = "### BEGIN HIDDEN TESTS\ncheck_secret_value(answer)\n### END HIDDEN TESTS"


# ---------------------------------------------------------------------------- payloads
def script(name: str, beacon: str) -> str:
    """JavaScript that leaves four traces if it runs: a dialog, the title, window.name and
    a request to ``beacon``. No spaces, so that it also fits in a markdown link."""
    return (
        f"alert('{name}');document.title='pwned-{name}';window.name='pwned-{name}';"
        f"fetch('{beacon}/{name}')"
    )


def html_payloads(beacon: str) -> dict[str, str]:
    """Student HTML, as a text/html output or raw HTML in markdown, by name."""
    js = {name: script(name, beacon) for name in ("a", "b", "c", "d", "e", "f", "g", "h")}
    return {
        "script": f"<script>{js['a']}</script><b>bold survives</b>",
        "img_onerror": f'<img src="x" onerror="{js["b"]}" alt="broken">',
        "mouseover": f'<p onmouseover="{js["c"]}" onclick="{js["c"]}">hover or click me</p>',
        "svg_inline": f'<svg onload="{js["d"]}"><script>{js["d"]}</script><a href="#">s</a></svg>',
        "javascript_link": f'<a href="javascript:{js["e"]}">click me</a>',
        "javascript_link_obfuscated": f'<a href="jav&#x09;ascript:{js["e"]}">click me too</a>',
        "data_link": f'<a href="data:text/html,<script>{js["f"]}</script>">data link</a>',
        "iframe": f'<iframe src="{beacon}/iframe" srcdoc="<script>{js["g"]}</script>"></iframe>',
        "object": f'<object data="{beacon}/object"></object><embed src="{beacon}/embed">',
        "meta_refresh": f'<meta http-equiv="refresh" content="0;url={beacon}/refresh">',
        "base_href": f'<base href="{beacon}/base/"><a href="relative">relative link</a>',
        "form": f'<form action="{beacon}/form"><input name="q"><button>send</button></form>',
        "style_expression": (
            '<div style="width: expression(alert(1)); '
            f'background: url(javascript:{js["h"]})">styled</div>'
        ),
        "style_url": f'<div style="background-image: url({beacon}/css)">css image</div>',
        "style_element": f"<style>@import url({beacon}/import); body {{ display: none }}</style>",
        "link_stylesheet": f'<link rel="stylesheet" href="{beacon}/stylesheet">',
        "remote_image": f'<img src="{beacon}/image" alt="remote">',
        "details_toggle": f'<details open ontoggle="{js["a"]}"><summary>more</summary>x</details>',
        "mxss_noscript": (
            f'<noscript><p title="</noscript><img src=x onerror="{js["b"]}">"></noscript>'
        ),
        "template": f"<template><script>{js['c']}</script></template>",
        "math": f'<math><mtext><table><mglyph><style><img src=x onerror="{js["d"]}">',
        "forged_class": (
            '<section class="mdp-grader mdp-passed" id="mdp-summary-title" '
            'style="border: 5px solid green">Grader · passed: Tests test_answer: 2 / 2 '
            "point(s)</section>"
        ),
        "breakout": "</div></div></main><section>outside the notebook</section>",
    }


def payload_notebook(beacon: str = "http://127.0.0.1:9/hit") -> nbformat.NotebookNode:
    """A graded notebook whose student parts try every payload; ``beacon`` is the URL a
    payload requests to show that it ran or loaded."""
    js = script("markdown", beacon)
    cells = [
        nbformat.v4.new_markdown_cell(
            "# My answers\n\nSome *emphasis*, `code`, and $x_1 * y_2 = \\beta_t$.\n\n"
            f"<script>{script('md_script', beacon)}</script>\n\n"
            f'<img src="x" onerror="{script("md_img", beacon)}" alt="md image">\n\n'
            f"[markdown javascript link](javascript:{js})\n\n"
            f"[markdown data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)\n\n"
            f"![remote image]({beacon}/md-image)\n\n"
            "![attached](attachment:plot.png)\n"
        ),
        # The forged grader blocks of finding 10, in markdown as a student would write them.
        nbformat.v4.new_markdown_cell(
            "# Feedback: lab09_example, student\n\n**Autograded score:** 4 / 5  \n"
            "**Status:** graded\n\n**Tests `test_answer`: 2 / 2 point(s)**\n\n"
            "All checks passed."
        ),
        nbformat.v4.new_markdown_cell(
            "\n\n".join(f"{name}: {payload}" for name, payload in html_payloads(beacon).items())
        ),
    ]
    cells[0].attachments = {"plot.png": {"image/png": PNG}}
    answer = nbformat.v4.new_code_cell(
        "answer = '<script>alert(1)</script>'\nprint(answer)", execution_count=1
    )
    answer.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "answer"}
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" onload="'
        + script("svg_output", beacon)
        + f'"><script>{script("svg_output_script", beacon)}</script>'
        '<rect width="10" height="10"/></svg>'
    )
    answer.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="<script>alert(1)</script>\n"),
        *(
            nbformat.v4.new_output("display_data", data={"text/html": payload, "text/plain": name})
            for name, payload in html_payloads(beacon).items()
        ),
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/javascript": script("js_output", beacon),
                "text/plain": "<IPython.core.display.Javascript object>",
            },
        ),
        nbformat.v4.new_output(
            "display_data", data={"text/markdown": f"[md output](javascript:{js})"}
        ),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": svg}),
        nbformat.v4.new_output("display_data", data={"image/png": PNG}),
        nbformat.v4.new_output(
            "display_data", data={"image/png": "not base64 <script>", "text/plain": "bad png"}
        ),
        nbformat.v4.new_output(
            "error",
            ename="ValueError",
            evalue=f"see javascript:{js} <script>{js}</script>",
            traceback=["\x1b[31mValueError\x1b[0m: <img src=x onerror=alert(1)>"],
        ),
    ]
    test = nbformat.v4.new_code_cell(f"assert answer == 42\n{HIDDEN}", execution_count=2)
    test.metadata["nbgrader"] = {
        "grade": True, "solution": False, "grade_id": "test_answer", "points": 2,
    }  # fmt: skip
    test.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue=(
                f"answer('<b>x</b>') gave javascript:{js} "
                f'<a href="javascript:{js}">link</a> <script>{js}</script>'
            ),
            traceback=["check_secret_value(answer)"],
        )
    ]
    passing = nbformat.v4.new_code_cell("check_secret_value(42)", execution_count=3)
    passing.metadata["nbgrader"] = {
        "grade": True, "solution": False, "grade_id": "test_other", "points": 1,
    }  # fmt: skip
    # A student's own cell dressed as a test cell: the gradebook does not know it.
    fake = nbformat.v4.new_code_cell("print('Tests fake: 9 / 9 point(s)')")
    fake.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "fake", "points": 9}
    return nbformat.v4.new_notebook(cells=[*cells, answer, test, passing, fake])


EARNED = {
    "test_answer": CellScore("test_answer", 0.0, 2.0, True),
    "test_other": CellScore("test_other", 1.0, 1.0, True),
}


def outcome(student_id: str = "student<1>", message: str = "") -> Outcome:
    return Outcome(student_id, LAB, 1.0, 3.0, "graded", message or "ran <b>fine</b>")


# ---------------------------------------------------------------------------- HTML checks
class _Elements(HTMLParser):
    """Every start tag of a page with its attributes, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


OWN_CLASSES = re.compile(r"mdp-[a-z-]+( mdp-[a-z-]+)*")  # the page's own, and pygments' below
# <math> is allowed, for formulas, but none of MathML's elements that act or load.
FORBIDDEN_TAGS = {
    "script", "iframe", "object", "embed", "base", "form", "input", "button", "link", "svg",
    "template", "noscript", "textarea", "frame", "frameset", "applet", "section", "maction",
    "annotation-xml", "mglyph", "malignmark",
}  # fmt: skip


def assert_inert(page: str) -> None:
    """No element or attribute of ``page`` can run script, load anything or navigate
    by itself, and only the page's own markup has class, style or id."""
    parsed = elements(page)
    tags = [tag for tag, _ in parsed.elements]
    grader_sections = sum(
        1
        for tag, attrs in parsed.elements
        if tag == "section" and "mdp-grader" in attrs.get("class", "")
    )
    assert tags.count("section") == grader_sections, "a section not of the grader's"
    assert not (set(tags) - {"section"}) & FORBIDDEN_TAGS, set(tags) & FORBIDDEN_TAGS
    assert tags.count("style") == 1 and tags.count("meta") == 4
    metas = [attrs for tag, attrs in parsed.elements if tag == "meta"]
    assert metas[0] == {"http-equiv": "Content-Security-Policy", "content": CSP}
    assert "script-src 'none'" in CSP and "default-src 'none'" in CSP
    assert not any(a.get("http-equiv") == "refresh" for a in metas)
    in_code = False
    for tag, attrs in parsed.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert name != "style", (tag, value)
            squeezed = re.sub(r"\s", "", value).lower()
            assert "javascript:" not in squeezed, (tag, name, value)
            if name in ("href", "src"):
                assert re.match(
                    r"(https?:|mailto:|#|data:image/(png|jpeg|gif|svg\+xml);)", value
                ) or (":" not in value.split("/")[0]), (tag, name, value)
                if value.startswith("data:"):
                    assert tag == "img", (tag, value)
        if tag == "pre" and "mdp-code" in attrs.get("class", ""):
            in_code = True
        if "class" in attrs and (tag, attrs["class"]) == ("code", "tex"):
            pass  # a formula shown as TeX: the one class student content may carry
        elif "class" in attrs and not OWN_CLASSES.fullmatch(attrs["class"]):
            assert in_code and tag == "span" and re.fullmatch(r"[a-z0-9]{1,3}", attrs["class"]), (
                tag,
                attrs,
            )
        if tag == "div" and attrs.get("class") == "mdp-cell":
            in_code = False


GRADER_BLOCK = re.compile(r'<(section|header) class="mdp-grader[^"]*".*?</\1>', re.DOTALL)


def grader_blocks(page: str) -> list[str]:
    """The grader's framed blocks: student content can carry neither <section> nor
    <header>, so these are exactly the elements of that class."""
    return [m.group(0) for m in GRADER_BLOCK.finditer(page)]


def student_part(page: str) -> str:
    """The notebook's cells without the grader's blocks."""
    cells = page.split('id="mdp-notebook-title"', 1)[1].split("</p>", 1)[1]
    return GRADER_BLOCK.sub("", cells)


# ---------------------------------------------------------------------------- the builder
def test_every_payload_is_inert():
    page = build_page(payload_notebook(), outcome(), EARNED)
    assert_inert(page)
    assert "<b>bold survives</b>" in page  # the sanitiser keeps harmless markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # printed text stays text


def test_the_fallback_page_is_inert_too():
    page = plain_page(payload_notebook(), outcome(), EARNED, "a <reason>")
    assert_inert(page)
    assert "plain text: a &lt;reason&gt;." in page


def test_javascript_outputs_are_dropped_with_a_visible_note():
    page = build_page(payload_notebook(), outcome(), EARNED)
    assert "js_output" not in page
    assert "a JavaScript output, not run: feedback pages run no script" in page
    assert "&lt;IPython.core.display.Javascript object&gt;" in page


def test_images_are_validated_data_urls_and_svg_is_never_inline():
    page = build_page(payload_notebook(), outcome(), EARNED)
    sources = [a["src"] for t, a in elements(page).elements if t == "img" and "src" in a]
    kinds = sorted(re.match(r"data:(image/[a-z+]+);base64,", s).group(1) for s in sources)
    # The PNG output, the markdown attachment, and the SVG output as an image.
    assert kinds == ["image/png", "image/png", "image/svg+xml"]
    assert "<svg" not in page and "svg_output" not in page
    assert "bad png" in page  # an image that is not one falls back to its text
    assert image_url("image/png", "bm90IGEgUE5H") is None  # base64, but not a PNG
    assert image_url("image/png", "%%%") is None
    assert image_url("image/jpeg", PNG) is None
    assert image_url("text/html", PNG) is None
    assert image_url("image/svg+xml", "<svg/>") == "data:image/svg+xml;base64,PHN2Zy8+"


def test_markdown_is_rendered_and_formulas_become_mathml():
    rendered = markdown(
        "**bold** and $x_1 * y_2$ and $$\\sum_i a_i * b_i$$\n\n| a | b |\n|---|---|\n| 1 | 2 |"
        "\n\n[ok](https://example.org/) ~~gone~~"
    )
    assert "<strong>bold</strong>" in rendered
    assert "$" not in rendered and "<em>" not in rendered  # the * stay in the formulas
    assert '<math display="inline"><mrow><msub><mi>x</mi><mn>1</mn></msub><mo>*</mo>' in rendered
    assert '<math display="block"><mrow><munder><mo>∑</mo><mi>i</mi></munder>' in rendered
    assert "<table>" in rendered and "<del>gone</del>" in rendered
    assert '<a href="https://example.org/" rel="noopener noreferrer nofollow">ok</a>' in rendered


def test_markdown_links_to_javascript_and_data_lose_their_target():
    for text in (
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x]( javascript:alert(1))",
        "[x](data:text/html,hi)",
        "<a href='vbscript:msgbox(1)'>x</a>",
    ):
        assert "href" not in markdown(text), text


# ---------------------------------------------------------------------------- formulas
HOSTILE_TEX = [
    r"$\href{javascript:alert(1)}{x}$",
    r"$<script>alert(1)</script>$",
    r"$\text{<img src=x onerror=alert(1)>}$",
    r"$\style{background:url(//evil)}{x}$",
    r"$\text{</math><img src=x onerror=alert(1)>}$",
    r"$\text{\"><svg onload=alert(1)>}$",
    r"$\color{red}{x} \colorbox{green}{Grader} \rule{1em}{1em}$",
    r"$\href{http://evil.example/}{\text{click}}$",
    r"$$\style{background-image:url(http://evil.example/x.png)}{x}$$",
    "\\begin{align}\n\\text{<script>alert(1)</script>} &= 1\n\\end{align}",
]


def assert_harmless(fragment: str) -> None:
    """No element or attribute of ``fragment`` runs script, loads or links anything."""
    parsed = elements(fragment)
    tags = {tag for tag, _ in parsed.elements}
    assert not tags & FORBIDDEN_TAGS and "img" not in tags and "a" not in tags, tags
    for tag, attrs in parsed.elements:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in ("href", "src", "style", "xlink:href", "mathcolor"), (tag, name)
            assert not re.search(r"url\(|javascript:|//", value), (tag, name, value)
    # Text may keep "onerror" (as text); a target of a link or a style may not stay at all.
    assert "evil" not in fragment and "javascript" not in fragment


@pytest.mark.parametrize("tex", HOSTILE_TEX)
def test_hostile_tex_becomes_harmless_mathml(tex):
    rendered = markdown(tex)
    assert "<math" in rendered  # converted, not dropped: the attack is in the conversion
    assert_harmless(rendered)
    # The generator alone is safe too, before the sanitiser sees its output.
    body = tex.strip("$") if tex.startswith("$") else tex
    mathml = to_mathml(body, display=tex.startswith("$$"))
    assert mathml is not None
    assert_harmless(mathml)
    # Nothing for the sanitiser to take out (it writes a no-break space as &nbsp;).
    assert sanitise(mathml) == mathml.replace("\xa0", "&nbsp;")


def test_text_in_a_formula_stays_text():
    rendered = markdown(r"$\text{<img src=x onerror=alert(1)>}$")
    assert "<mtext>&lt;img&nbsp;src=x&nbsp;onerror=alert(1)&gt;</mtext>" in rendered
    assert "<mo>&lt;</mo><mi>s</mi><mi>c</mi>" in markdown("$<script>$")


def test_big_delimiters_are_characters_not_tex():
    """latex2mathml leaves the delimiter of \\big\\{ as TeX; the page shows the brace."""
    rendered = markdown(r"$\big\{ x \Bigr\| \big\langle y \big\}$")
    assert "\\" not in rendered
    assert [m.group(1) for m in re.finditer(r"<mo [^>]*>(.)</mo>", rendered)] == list("{‖⟨}")


def test_mathml_a_student_writes_is_sanitised_like_the_rest():
    rendered = markdown(
        '<math><mi href="javascript:alert(1)" onclick="alert(1)" style="color:red">x</mi>'
        '<maction actiontype="statusline"><mi>y</mi><mtext>status</mtext></maction>'
        '<semantics><mi>z</mi><annotation-xml encoding="text/html"><img src=x onerror=alert(1)>'
        '</annotation-xml></semantics><mglyph src="http://evil.example/x.png"></mglyph>'
        '<mspace width="url(//evil.example)" height="1em"></mspace></math>'
    )
    assert_harmless(rendered)
    assert rendered == (
        "<p><math><mi>x</mi><mi>y</mi><mtext>status</mtext><semantics><mi>z</mi></semantics>"
        '<mspace height="1em"></mspace></math></p>\n'
    )


@pytest.mark.parametrize(
    "tex", [r"$\mathrm$", "$x^$", r"$\left( x$", r"$\begin{align} x$", "${$", r"$\sqrt[$"]
)
def test_tex_that_cannot_be_converted_is_shown_as_tex(tex):
    rendered = markdown(f"before {tex} after <b>kept</b>")
    assert rendered == f'<p>before <code class="tex">{tex}</code> after <b>kept</b></p>\n'


def test_tex_that_cannot_be_converted_is_escaped():
    rendered = markdown(r"$\left( <img src=x onerror=alert(1)>$")
    assert rendered == (
        '<p><code class="tex">$\\left( &lt;img src=x onerror=alert(1)&gt;$</code></p>\n'
    )


@pytest.mark.parametrize(
    "tex",
    [
        "{" * 20_000,  # far past the length cap
        "x+" * 100_000,  # a 200 kB formula
        "{" * 999 + "x" + "}" * 999,  # under the cap, too deep for latex2mathml's recursion
        r"\sqrt" * 330 + "x",
    ],
    ids=["20000-braces", "200-kB", "nested-999", "sqrt-330"],
)
def test_a_huge_or_deep_formula_is_bounded_and_shown_as_tex(tex):
    to_mathml.cache_clear()
    start = time.perf_counter()
    rendered = markdown(f"see ${tex}$ and $x$")
    assert time.perf_counter() - start < 2.0
    assert rendered.startswith(f'<p>see <code class="tex">${tex[:100]}')
    formula = '<math display="inline"><mrow><mi>x</mi></mrow></math>'
    assert rendered.endswith(f"</code> and {formula}</p>\n")


def test_deep_nesting_is_caught_where_latex2mathml_overflows():
    """The case the length cap does not cover: latex2mathml itself runs out of stack."""
    tex = "{" * 999 + "x" + "}" * 999
    assert len(tex) <= MAX_TEX
    with pytest.raises(RecursionError):
        convert_to_element(tex)
    assert to_mathml(tex, display=False) is None
    assert to_mathml("{" * (MAX_TEX + 1), display=True) is None  # refused unparsed
    assert to_mathml("{{{x}}}", display=True) is not None  # and the interpreter is fine


@pytest.mark.parametrize(
    ("text", "formulas"),
    [
        ("It costs $4 and $5.", 0),
        ("From $3.50 to $4.20 a day.", 0),
        ("Between $4 and $ 5, or $ 6 and 7$.", 0),
        ("Pay $5 and then $x$ more.", 1),
        ("Escaped \\$x\\$ dollars, and $y$.", 1),
        ("$x$5 is not a formula, $x$ is.", 1),
        ("A formula over\n$two\nlines$, and $120 a day.", 1),
    ],
)
def test_dollar_amounts_stay_text(text, formulas):
    rendered = markdown(text)
    assert rendered.count("<math") == formulas, rendered
    assert "<code" not in rendered
    shown = re.sub(r"<math.*?</math>", "", rendered, flags=re.DOTALL)
    assert shown.count("$") == text.replace("\\$", "$").count("$") - 2 * formulas


def test_equation_environments_are_display_math():
    rendered = markdown(
        "\\begin{align}\na &= b \\\\\nc &= d\n\\end{align}\n\n"
        "\\begin{equation*} E = mc^2 \\end{equation*}\n\n"
        "$$\n\\begin{aligned}\nx &= 1 \\\\\ny &= 2\n\\end{aligned}\n$$"
    )
    assert rendered.count('<math display="block">') == 3, rendered
    assert rendered.count("<mtable") == 2 and "\\" not in rendered and "&amp;" not in rendered


def test_a_backslash_at_the_end_of_a_line_is_a_space_and_a_double_one_a_new_row():
    spaced = markdown("$$a \\text{ and } \\\nb$$")
    assert "\\" not in spaced and "<mtext>&nbsp;</mtext><mi>b</mi>" in spaced
    assert '<mi>a</mi><mspace linebreak="newline"></mspace><mi>b</mi>' in markdown("$$a\\\\\nb$$")


def test_a_page_of_formulas_loads_nothing():
    """No MathJax, no CDN, no URL at all: formulas are MathML, laid out by the browser."""
    cell = nbformat.v4.new_markdown_cell(
        "$V^\\pi(s) = c(s,\\pi(s)) + \\beta \\sum_{s'} P(s' \\mid s,\\pi(s)) V^\\pi(s')$\n\n"
        "$$f_n(s)=\\min_{x}\\{\\dots\\}$$"
    )
    page = build_page(nbformat.v4.new_notebook(cells=[cell]), outcome(), EARNED)
    assert_inert(page)
    assert page.count("<math") == 2
    assert not re.search(r"mathjax|katex|cdn|https?:|//", page, re.IGNORECASE)


def test_the_grader_blocks_are_the_only_framed_ones_and_forgeries_are_plain():
    titles = {"test_answer": "Exercise 1: the <answer>"}  # test_other has no title
    page = build_page(payload_notebook(), outcome(), EARNED, titles)
    blocks = grader_blocks(page)
    # The header, then the two test cells the gradebook knows, in the notebook's order.
    assert len(blocks) == 3
    assert blocks[0].startswith('<header class="mdp-grader mdp-summary"')
    assert "Autograded score</dt><dd>1 / 3</dd>" in blocks[0]
    # Each block is named by the points table's title (escaped), or else by its grade_id.
    assert "<h2>Exercise 1: the &lt;answer&gt;: 0 / 2 point(s)</h2>" in blocks[1]
    assert "Grader · failed" in blocks[1]
    assert "<h2>test_other: 1 / 1 point(s)</h2>" in blocks[2]
    assert "Grader · passed" in blocks[2] and "All checks passed." in blocks[2]
    student = student_part(page)
    # The forged blocks are there, as the student's text, without the grader's frame.
    assert "Tests <code>test_answer</code>: 2 / 2 point(s)" in student
    assert "Grader · passed: Tests test_answer: 2 / 2 point(s)" in student
    assert "mdp-grader" not in student and "mdp-summary-title" not in student
    assert 'id="' not in student
    # The student's own "test cell" gets neither a block nor its code shown.
    assert "Tests fake" not in page and "a cell marked as tests, not graded" in student
    # The header is outside the notebook, where no student content is.
    assert page.index("<header") < page.index('<main class="mdp-notebook"')


def test_error_messages_are_text_and_test_code_stays_hidden():
    for page in (
        build_page(payload_notebook(), outcome(), EARNED),
        plain_page(payload_notebook(), outcome(), EARNED, "slow"),
    ):
        (failure,) = [block for block in grader_blocks(page) if "test_answer" in block]
        assert (
            "AssertionError: answer(&#x27;&lt;b&gt;x&lt;/b&gt;&#x27;) gave javascript:" in failure
        )
        assert "check_secret_value" not in page and "BEGIN HIDDEN" not in page
        assert "\x1b" not in page


def test_the_summary_shows_score_status_and_message_escaped():
    page = build_page(
        payload_notebook(), outcome(message="reached the limit of 64 processes <i>"), EARNED
    )
    header = grader_blocks(page)[0]
    assert "Feedback: lab09_example, student&lt;1&gt;" in header
    assert "<dt>Status</dt><dd>graded</dd>" in header
    assert "reached the limit of 64 processes &lt;i&gt;" in header
    assert "<title>Feedback: lab09_example, student&lt;1&gt;</title>" in page


def test_the_score_is_out_of_the_autograded_points():
    """A perfect autograded answer reads 4 / 4, not 4 / 5 with a written point to grade."""
    graded = Outcome("ada", LAB, 4.0, 5.0, "graded", "", manual_pending=1.0, manual_max=1.0)
    header = grader_blocks(build_page(payload_notebook(), graded, EARNED))[0]
    assert "Autograded score</dt><dd>4 / 4</dd>" in header


def test_the_summary_lists_each_repair_in_words_and_drops_the_hand_in_check():
    repaired = outcome()
    repaired.repairs = [
        "stage_cost appeared 2 times (cells 4 and 9); kept cell 9, the last one changed",
        "restored the grading metadata of cell 12 (test_stage_cost) <script>",
    ]
    notebook = payload_notebook()
    hand_in = nbformat.v4.new_code_cell("def hand_in_check(data):\n    ...  # 300 lines")
    hand_in.metadata["nbgrader"] = {"grade_id": HAND_IN_ID, "locked": True}
    hand_in.outputs = [nbformat.v4.new_output("stream", text="Hand-in check skipped: no file.")]
    notebook.cells.append(hand_in)
    page = build_page(notebook, repaired, EARNED)
    header = grader_blocks(page)[0]
    assert "repaired your file before grading it (2 repairs)" in header
    assert "<li>stage_cost appeared 2 times (cells 4 and 9); kept cell 9" in header
    assert "(test_stage_cost) &lt;script&gt;</li>" in header
    assert "hand_in_check" not in page and "Hand-in check skipped" not in page
    assert "repaired" not in grader_blocks(build_page(notebook, outcome(), EARNED))[0]


def test_a_page_is_the_same_byte_for_byte_when_made_again():
    first = build_page(payload_notebook(), outcome(), EARNED)
    assert build_page(payload_notebook(), outcome(), EARNED) == first


@pytest.mark.parametrize(
    "line",
    [
        "[" * 150_000,
        "[](" * 50_000,
        " $$\n" * 37_500,
        "$`a" * 50_000,
        "*_" * 75_000,
        "\\begin{align}" * 11_500,
        "$x_1$ " * 25_000,
        "".join(f"$x_{{{i}}}$ " for i in range(15_000)),
    ],
    ids=[
        "brackets",
        "empty-links",
        "indented-dollars",
        "dollar-backticks",
        "emphasis",
        "unended-environments",
        "one-formula-repeated",
        "distinct-formulas",
    ],
)
def test_a_150_kb_markdown_cell_renders_in_seconds(line):
    """nbconvert's classic template took 242 s here on the first; mistune's math plugin
    takes minutes on the third."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(line)])
    start = time.perf_counter()
    page = build_page(notebook, outcome(), EARNED)
    assert time.perf_counter() - start < 10.0  # about 1 s for the brackets here
    assert_inert(page)


# ---------------------------------------------------------------------------- write_feedback
class _Lab:
    name = LAB


class _Course:
    """The two things feedback pages read from a course: graded notebooks and scores."""

    def __init__(self, root: Path, notebooks: dict[str, nbformat.NotebookNode]) -> None:
        self.root = root
        for student_id, notebook in notebooks.items():
            path = self.autograded_notebook(_Lab(), student_id)
            path.parent.mkdir(parents=True)
            nbformat.write(notebook, path)

    def autograded_notebook(self, lab: _Lab, student_id: str) -> Path:
        return self.root / student_id / f"{lab.name}.ipynb"

    def released_notebook(self, lab: _Lab) -> Path:
        path = self.root / "release" / f"{lab.name}.ipynb"
        if not path.exists():  # the release: where the exercise titles come from
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(payload_notebook(), path)
        return path

    def score(self, lab: _Lab, student_id: str) -> SubmissionScore:
        return SubmissionScore(student_id, tuple(EARNED.values()))


def _run(tmp_path: Path, notebooks: dict[str, nbformat.NotebookNode], jobs: int = 2) -> GradingRun:
    course = _Course(tmp_path / "course", notebooks)
    outcomes = [Outcome(s, LAB, 1.0, 3.0, "graded", "") for s in notebooks]
    return GradingRun(course, _Lab(), None, outcomes, jobs=jobs)  # type: ignore[arg-type]


def _page(folder: Path, student_id: str) -> str:
    return (folder / student_id / f"{LAB}.html").read_text(encoding="utf-8")


@pytest.fixture
def two_students(tmp_path):
    return _run(tmp_path, {"slow": payload_notebook(), "quick": payload_notebook()})


def test_a_page_that_overruns_its_time_limit_falls_back_to_plain_text(
    two_students, tmp_path, monkeypatch
):
    real = feedback_page.build_page

    def stalling(notebook, outcome, earned, titles):
        if outcome.student_id == "slow":
            time.sleep(60)
        return real(notebook, outcome, earned, titles)

    monkeypatch.setattr(feedback_page, "build_page", stalling)
    start = time.monotonic()
    written, problems = write_feedback(two_students, tmp_path / "out", page_seconds=2)
    assert time.monotonic() - start < 20  # the sleeping child was killed, not waited for
    assert written == 2
    assert problems == [
        "slow: plain-text page written instead: rendering it took longer than 2 s and was stopped"
    ]
    slow, quick = _page(tmp_path / "out", "slow"), _page(tmp_path / "out", "quick")
    assert "plain text: rendering it took longer than 2 s" in slow
    assert "<pre" in slow and "<img" not in slow  # the notebook as text only
    assert "Autograded score</dt><dd>1 / 3</dd>" in slow
    assert "<h2>test_answer: 0 / 2 point(s)</h2>" in slow
    assert_inert(slow)
    assert "plain text" not in quick and "<img" in quick
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_a_page_whose_renderer_fails_or_dies_falls_back(two_students, tmp_path, monkeypatch):
    def failing(notebook, outcome, earned, titles):
        if outcome.student_id == "slow":
            raise RuntimeError("renderer <broke>")
        os._exit(7)

    monkeypatch.setattr(feedback_page, "build_page", failing)
    written, problems = write_feedback(two_students, tmp_path / "out", page_seconds=10)
    assert written == 2
    assert sorted(problems) == [
        "quick: plain-text page written instead: rendering it failed (the renderer ended "
        "with code 7)",
        "slow: plain-text page written instead: rendering it failed (RuntimeError: renderer "
        "<broke>)",
    ]
    assert "renderer &lt;broke&gt;" in _page(tmp_path / "out", "slow")


def test_html_too_deep_to_sanitise_in_time_gets_a_plain_page(tmp_path):
    """No mock: nh3 is quadratic in nesting depth (a minute for 100,000 <div>s)."""
    notebook = payload_notebook()
    notebook.cells[3].outputs.append(
        nbformat.v4.new_output("display_data", data={"text/html": "<div>" * 100_000})
    )
    run = _run(tmp_path, {"deep": notebook, "fine": payload_notebook()}, jobs=1)
    written, problems = write_feedback(run, tmp_path / "out", page_seconds=3)
    assert written == 2 and len(problems) == 1 and problems[0].startswith("deep: plain-text")
    assert_inert(_page(tmp_path / "out", "deep"))


def test_pages_are_the_same_when_made_again(tmp_path):
    run = _run(tmp_path, {"a": payload_notebook(), "b": payload_notebook()})
    assert write_feedback(run, tmp_path / "one") == (2, [])
    assert write_feedback(run, tmp_path / "two") == (2, [])
    for student in ("a", "b"):
        assert _page(tmp_path / "one", student) == _page(tmp_path / "two", student)


# ---------------------------------------------------------------------------- grades.csv
FORMULAS = ["-2-3", '=HYPERLINK("http://x")', "+1+1", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("text", FORMULAS)
def test_grades_csv_cells_never_start_like_a_formula(tmp_path, text):
    outcomes = [Outcome(text, LAB, -1.0, 5.0, "graded", text, manual_pending=0)]
    write_csv(outcomes, tmp_path / "grades.csv")
    with (tmp_path / "grades.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    for cell in (row["student_id"], row["message"]):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
        # A formula character is kept behind a quote; a tab or return is escaped instead.
        assert cell in (f"'{text}", f"\\x{ord(text[0]):02x}{text[1:]}"), cell
    assert row["score"] == "-1" and row["max_score"] == "5"  # numbers stay numbers


def test_grades_csv_escapes_control_characters_and_keeps_plain_text(tmp_path):
    outcomes = [
        Outcome("alice", LAB, 4.0, 5.0, "graded", "fine; café"),
        Outcome("bob\x1b[2J", LAB, None, 5.0, "failed", "bad\u202egnp.exe\nnext line"),
    ]
    write_csv(outcomes, tmp_path / "grades.csv")
    with (tmp_path / "grades.csv").open(newline="") as handle:
        alice, bob = list(csv.DictReader(handle))
    assert (alice["student_id"], alice["message"], alice["score"]) == ("alice", "fine; café", "4")
    assert bob["student_id"] == "bob\\x1b[2J"
    assert bob["message"] == "bad\\u202egnp.exe\\x0anext line"
    assert bob["score"] == ""


def test_the_summary_table_prints_student_text_harmlessly():
    table = summary([Outcome("eve\x1b]0;owned\x07", LAB, 1.0, 2.0, "graded", "a\u202eb\rc")])
    assert "\x1b" not in table and "\u202e" not in table and "\r" not in table
    assert "eve\\x1b]0;owned\\x07" in table and "a\\u202eb\\x0dc" in table


@pytest.mark.parametrize("notebook", sorted(LABS_FOLDER.glob("lab*.ipynb")), ids=lambda p: p.stem)
def test_every_formula_of_the_labs_becomes_mathml(notebook):
    """What a student reads on a feedback page: the labs' own markdown holds no TeX once
    rendered, outside code (a dollar amount such as "$120" is text, not math)."""
    leftover = []
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "markdown":
            continue
        page = re.sub(
            r"<code[^>]*>.*?</code>|<pre[^>]*>.*?</pre>|<math.*?</math>",
            "",
            feedback_page.markdown(cell.source),
            flags=re.DOTALL,
        )
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        leftover += [(index, hit) for hit in re.findall(r"\$(?!\d)|\\[A-Za-z]+", text)]
    assert not leftover, f"raw TeX on the page (cell, text): {leftover[:10]}"
