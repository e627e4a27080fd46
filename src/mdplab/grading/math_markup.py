"""TeX formulas as MathML, made on the server, so that a feedback page shows mathematics
without a script (its policy forbids them) and without loading anything (it works offline).

latex2mathml parses the TeX into an ElementTree. Its own serialiser is not used: it
unescapes its output, so that ``\\text{<img src=x onerror=…>}`` comes out as a live tag, and
it writes whatever attributes the TeX asked for (``\\href`` gives ``href``, ``\\style`` gives
``style``). :func:`to_mathml` writes the tree itself instead, keeping only the elements and
attributes of :data:`MATHML_TAGS` and :data:`MATHML_ATTRIBUTES` and escaping every text and
value. The page's sanitiser then checks the whole fragment again against the same lists.

A formula is student input, so its conversion is bounded: at most :data:`MAX_TEX`
characters, and a formula nested deeper than Python's stack, or one latex2mathml rejects,
gives None, for the caller to show as TeX.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from xml.etree.ElementTree import Element

from latex2mathml.converter import convert_to_element
from latex2mathml.symbols_parser import convert_symbol

__all__ = ["MATHML_ATTRIBUTES", "MATHML_TAGS", "MAX_TEX", "math_html", "safe_value", "to_mathml"]

# Longer formulas are shown as TeX: conversion takes up to ~25 ms per 2,000 characters.
MAX_TEX = 2_000

# Presentation MathML only: no maction (it acts on clicks), no annotation-xml (it may carry
# HTML), no mglyph (it loads an image).
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup",
    "mfrac", "msqrt", "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "semantics", "annotation",
})  # fmt: skip
# Layout only: no href, style, class, id, event handler, nor mathcolor and mathbackground,
# which would let a formula take on the colours of the grader's blocks.
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "mathsize", "stretchy", "fence", "separator", "form", "largeop",
    "movablelimits", "symmetric", "minsize", "maxsize", "lspace", "rspace", "voffset",
    "columnalign", "rowalign", "rowspacing", "columnspacing", "columnlines", "rowlines",
    "frame", "displaystyle", "scriptlevel", "accent", "accentunder", "width", "height",
    "depth", "linethickness", "notation", "linebreak",
})  # fmt: skip
# Lengths, keywords and alignments ("+0.833em", "right left", "true"): no parenthesis, colon
# or slash, so never url(…) nor a scheme.
_VALUE = re.compile(r"[A-Za-z0-9.%#+ -]{0,64}")
# latex2mathml keeps symbols as character references in the text of its elements.
_CHARREF = re.compile(r"&#(?:x[0-9A-Fa-f]{1,6}|[0-9]{1,7});")
# Environments latex2mathml does not know, as ones it does that look alike; "" drops the
# wrapper (equation is display math with a number).
_ALIKE = {
    "aligned": "align*", "eqnarray": "align*", "eqnarray*": "align*",
    "gather": "matrix", "gather*": "matrix", "gathered": "matrix",
    "multline": "matrix", "multline*": "matrix", "equation": "", "equation*": "",
}  # fmt: skip
_ENVIRONMENT = re.compile(r"\\(begin|end)\{(" + "|".join(map(re.escape, _ALIKE)) + r")\}")
# A backslash before a newline or a tab is TeX's control space, "\ ", which latex2mathml would
# show as a backslash; "\\" (a new row) is matched first so that it stays as it is.
_CONTROL_SPACE = re.compile(r"\\(\\|\s)")


def safe_value(value: str) -> bool:
    """Whether ``value`` may stand as the value of one of :data:`MATHML_ATTRIBUTES`."""
    return _VALUE.fullmatch(value) is not None


def math_html(source: str, tex: str, *, display: bool) -> str:
    """``tex`` as MathML or, when it cannot be converted, ``source`` (the formula as
    written, delimiters included) as escaped text in ``<code class="tex">``: a formula
    that fails loses neither its cell nor its text. A blank formula (``$$ $$``) stays text."""
    if not tex.strip():
        return html.escape(source, quote=False)
    mathml = to_mathml(tex, display=display)
    if mathml is None:
        return f'<code class="tex">{html.escape(source, quote=False)}</code>'
    return mathml


# Notebooks repeat their formulas, and an attack repeats one. A formula's MathML is at most
# some 35 kB, so the cache holds some 20 MB at worst.
@lru_cache(maxsize=512)
def to_mathml(tex: str, *, display: bool) -> str | None:
    """``<math display="block|inline">`` for ``tex``, built of allow-listed elements and
    attributes only, or None for TeX that is blank, longer than :data:`MAX_TEX`, nested
    too deeply or not understood."""
    if not tex.strip() or len(tex) > MAX_TEX:
        return None
    try:
        tree = convert_to_element(_prepare(tex), display="block" if display else "inline")
        return _write(tree)
    # latex2mathml raises its own errors on bad TeX, but also IndexError and the like, and
    # RecursionError (an Exception too) on deep nesting, 1,000 "{" being enough: no
    # formula may cost its page.
    except Exception:
        return None


def _prepare(tex: str) -> str:
    """``tex`` in the TeX latex2mathml knows: each control space written as ``\\ ``, the
    environments of :data:`_ALIKE` replaced by their look-alikes."""
    tex = _CONTROL_SPACE.sub(lambda m: m.group(0) if m.group(1) == "\\" else "\\ ", tex)
    return _ENVIRONMENT.sub(
        lambda m: f"\\{m.group(1)}{{{_ALIKE[m.group(2)]}}}" if _ALIKE[m.group(2)] else "", tex
    )


def _write(element: Element) -> str:
    """``element`` and its children as MathML text: an element not allowed becomes an
    ``mrow`` (its content stays visible), an attribute not allowed is dropped."""
    tag = element.tag if element.tag in MATHML_TAGS else "mrow"
    attributes = "".join(
        f' {name}="{html.escape(value)}"'
        for name, value in element.attrib.items()
        if name in MATHML_ATTRIBUTES and safe_value(value)
    )
    text = _delimiter(element.text) if tag == "mo" else element.text
    inner = _text(text) + "".join(_write(c) + _text(c.tail) for c in element)
    return f"<{tag}{attributes}>{inner}</{tag}>"


def _delimiter(text: str | None) -> str | None:
    """The character of an operator latex2mathml left as TeX: it does so with the
    delimiter of ``\\big\\{``, ``\\Bigl\\langle`` and the like."""
    code = convert_symbol(text) if text and text.startswith("\\") else None
    return chr(int(code, 16)) if code else text


def _text(text: str | None) -> str:
    """Text of the tree as HTML text: its character references decoded, then all of it
    escaped (latex2mathml leaves ``<`` of ``\\text{…}`` as it was written)."""
    decoded = _CHARREF.sub(lambda m: html.unescape(m.group(0)), text or "")
    return html.escape(decoded, quote=False)
