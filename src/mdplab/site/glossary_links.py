"""Sphinx extension: on every lab page, the first use of each glossary entry links to it.

The notebooks stay as they are: the links are made while Sphinx reads a page. ``conf.py``
names, for each glossary term, the words (regular expressions, searched case-insensitively
in the running text) and the formulas (regular expressions that must match the whole TeX
source of an inline formula) that count as a use of it::

    mdplab_glossary_first_uses = {
        "discount factor": {"words": [r"discount factor"], "tex": [r"\\beta"]},
    }

The first use on a page, in reading order, becomes a ``:term:`` reference, so Sphinx
resolves it like one that an author wrote, and warns when the term is missing from the
glossary. Headings, code, outputs, links, the labs' collapsed hints (``<details>``) and the
sections named in ``mdplab_glossary_skipped_sections`` (a lab's references) are left
alone: a link there would be hidden, would turn a heading into a link, or would point a
book's title at a definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The class of a first-use link's text, for the site's style sheet and for the tests.
LINK_CLASS = "glossary-first-use"

# Where a use is never linked: code and outputs, headings, text that already links, and
# raw markup.
_SKIPPED = (
    nodes.FixedTextElement,  # literal blocks, doctest blocks, math blocks
    nodes.literal,
    nodes.title,
    nodes.subtitle,
    nodes.rubric,
    nodes.reference,
    nodes.target,
    nodes.raw,
    nodes.comment,
    nodes.term,
    nodes.substitution_definition,
    addnodes.pending_xref,
    addnodes.toctree,
)
# myst-nb puts a notebook's code and outputs in containers of these classes.
_SKIPPED_CLASSES = {"cell_input", "cell_output", "output"}


@dataclass(frozen=True)
class Term:
    """A glossary term and the patterns of its uses."""

    name: str
    words: re.Pattern[str] | None
    tex: re.Pattern[str] | None


def compile_terms(table: dict[str, dict[str, list[str]]]) -> list[Term]:
    """The terms of ``mdplab_glossary_first_uses``; a bad pattern names its term."""
    terms = []
    for name, patterns in table.items():
        unknown = set(patterns) - {"words", "tex"}
        if unknown:
            raise ValueError(f"glossary term {name!r}: unknown keys {sorted(unknown)}")
        try:
            # Whole words only: "feasible action" must not link the end of "infeasible".
            whole = [rf"\b(?:{pattern})\b" for pattern in patterns.get("words", [])]
            words = _alternation(whole, re.IGNORECASE)
            tex = _alternation(patterns.get("tex", []), 0)
        except re.error as error:
            raise ValueError(f"glossary term {name!r}: bad pattern: {error}") from error
        terms.append(Term(name, words, tex))
    return terms


def _alternation(patterns: list[str], flags: int) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), flags)


class FirstUses(SphinxTransform):
    """Wraps the first use of each configured term on a lab page in a term reference."""

    # After MyST's and myst-nb's own transforms have settled the tree, before Sphinx
    # collects the references.
    default_priority = 880

    def apply(self, **kwargs: Any) -> None:
        docname = self.env.current_document.docname
        if not re.search(self.config.mdplab_glossary_pages, docname):
            return
        pending = compile_terms(self.config.mdplab_glossary_first_uses)
        skipped_sections = set(self.config.mdplab_glossary_skipped_sections)
        details = 0  # how deep inside raw <details> blocks (the labs' hints) we are
        for node in list(self.document.findall(_candidate)):
            if isinstance(node, nodes.raw):
                details += _details_change(node.astext())
                continue
            if details > 0 or _in_skipped(node, skipped_sections):
                continue
            if isinstance(node, nodes.math):
                pending = self._link_formula(node, pending, docname)
            else:
                pending = self._link_text(node, pending, docname)
            if not pending:
                break

    def _link_formula(self, node: nodes.math, pending: list[Term], docname: str) -> list[Term]:
        source = node.astext()
        for term in pending:
            if term.tex is not None and term.tex.fullmatch(source.strip()):
                node.replace_self(_reference(term, node.deepcopy(), docname))
                return [other for other in pending if other is not term]
        return pending

    def _link_text(self, node: nodes.Text, pending: list[Term], docname: str) -> list[Term]:
        text = str(node)
        pieces: list[nodes.Node] = []
        start = 0
        while True:
            found = _earliest(text, start, pending)
            if found is None:
                break
            term, match = found
            if match.start() > start:
                pieces.append(nodes.Text(text[start : match.start()]))
            pieces.append(_reference(term, nodes.Text(match.group()), docname))
            pending = [other for other in pending if other is not term]
            start = match.end()
        if pieces:
            if start < len(text):
                pieces.append(nodes.Text(text[start:]))
            node.parent.replace(node, pieces)
        return pending


def _candidate(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Text | nodes.math | nodes.raw) and not isinstance(
        node.parent, nodes.math
    )


def _details_change(html: str) -> int:
    return len(re.findall(r"<details\b", html, re.IGNORECASE)) - len(
        re.findall(r"</details\s*>", html, re.IGNORECASE)
    )


def _in_skipped(node: nodes.Node, sections: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, _SKIPPED):
            return True
        if isinstance(parent, nodes.Element) and _SKIPPED_CLASSES & set(parent["classes"]):
            return True
        if isinstance(parent, nodes.section) and sections & set(parent["ids"]):
            return True
        parent = parent.parent
    return False


def _earliest(text: str, start: int, terms: list[Term]) -> tuple[Term, re.Match[str]] | None:
    """The term whose words occur first in ``text`` from ``start``; the longer match of
    two that start together (so "Bellman optimality operator" beats a shorter one)."""
    best: tuple[Term, re.Match[str]] | None = None
    for term in terms:
        match = term.words.search(text, start) if term.words is not None else None
        if match is None or not match.group():
            continue
        if best is None or (match.start(), -len(match.group())) < (
            best[1].start(),
            -len(best[1].group()),
        ):
            best = (term, match)
    return best


def _reference(term: Term, content: nodes.Node, docname: str) -> addnodes.pending_xref:
    """A ``:term:`` reference around ``content``, as the role would make it."""
    reference = addnodes.pending_xref(
        "",
        refdomain="std",
        reftype="term",
        reftarget=term.name,
        refexplicit=True,
        refwarn=True,
        refdoc=docname,
    )
    reference += nodes.inline("", "", content, classes=[LINK_CLASS])
    return reference


def check_terms(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about configured terms that the glossary lacks and entries nothing links to."""
    glossary = env.config.mdplab_glossary_document
    defined = {
        name.lower()
        for name, _, kind, docname, _, _ in env.get_domain("std").get_objects()
        if kind == "term" and docname == glossary
    }
    configured = {
        term.name.lower() for term in compile_terms(env.config.mdplab_glossary_first_uses)
    }
    for name in sorted(configured - defined):
        logger.warning("mdplab_glossary_first_uses names %r, which %s.md lacks", name, glossary)
    for name in sorted(defined - configured):
        logger.warning(
            "glossary entry %r has no patterns in mdplab_glossary_first_uses: no page links it",
            name,
        )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("mdplab_glossary_first_uses", {}, "env", types=frozenset({dict}))
    app.add_config_value("mdplab_glossary_pages", r"^labs/", "env", types=frozenset({str}))
    app.add_config_value("mdplab_glossary_document", "glossary", "env", types=frozenset({str}))
    app.add_config_value(
        "mdplab_glossary_skipped_sections", ["references"], "env", types=frozenset({list})
    )
    app.add_transform(FirstUses)
    app.connect("env-check-consistency", check_terms)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
