"""Sphinx configuration of the course's self-study website.

Do not run sphinx-build on this folder directly: ``mdplab site`` (``make site``) copies it
into a staging folder together with the executed worked solutions, the student notebooks,
MathJax and a ``_site.json`` of build settings, and builds that (:mod:`mdplab.site.build`).
"""

from __future__ import annotations

import json
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SETTINGS = _HERE / "_site.json"
if not _SETTINGS.is_file():
    raise RuntimeError(
        f"{_SETTINGS} is missing: build the site with `mdplab site` (make site), which "
        "stages the notebooks next to this configuration"
    )
_site = json.loads(_SETTINGS.read_text(encoding="utf-8"))

project = "MDP Labs"
author = "the MDP Labs authors"
copyright = "MDP Labs authors; the series grows from Bo Tang's lab “Lab 10 Discounted MDPs”"
release = version = _site["version"]

extensions = ["myst_nb", "sphinx.ext.mathjax", "mdplab.site.glossary_links"]
# The student notebooks are downloads, not pages; _generated/ holds included fragments.
exclude_patterns = ["_build", "student", "_generated", "_site.json", "**.ipynb_checkpoints"]

# -- MyST and the notebooks ----------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# The notebooks, like Jupyter, let $$...$$ start inside a paragraph or a list item: without
# this, MyST leaves such a formula as raw TeX.
myst_dmath_double_inline = True
# The pages show the committed outputs of the worked solutions; nothing is executed here.
nb_execution_mode = "off"
nb_merge_streams = True
# myst-nb loads require.js and the widget manager from CDNs when a notebook holds widget
# state; the site serves every file itself (the staged notebooks carry no widget state).
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
# mdplab.site.build folds away one kind of cell only, the visible tests of the exercises.
nb_code_prompt_show = "Show the visible tests"
nb_code_prompt_hide = "Hide the visible tests"

# -- Maths: MathJax 3 served from the site itself, never from a CDN ----------------------
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {
    # MathJax loads its fonts and the TeX extensions it needs from the folder of its own
    # script, so the site's copy (staged by mdplab.site.build) is all it ever asks for.
    "tex": {"tags": "ams"},
}

# -- The glossary's first-use links (mdplab.site.glossary_links) -------------------------
# For each glossary term: the words (regular expressions, case-insensitive, searched in the
# running text) and the formulas (regular expressions that must match an inline formula's
# whole TeX source, so that only a formula that *is* the notation links, not a long one
# that contains it) whose first occurrence on a lab page links to the term's entry.
mdplab_glossary_document = "glossary"
mdplab_glossary_pages = r"^labs/"
mdplab_glossary_skipped_sections = ["references"]  # a lab's bibliography links nothing
_ARGUMENT = r"(?:\(s\)|\[s, ?s'\]|\[s, ?\\cdot\])?"  # V(s), P[s, s'], P[s, \cdot]
mdplab_glossary_first_uses = {
    "state": {"words": [r"\bstates?\b"], "tex": [r"s \\in S"]},
    "feasible action": {"words": [r"feasible actions?"], "tex": [r"(?:a \\in )?A\(s\)"]},
    "one-period cost": {"words": [r"one-period cost"], "tex": [r"r\(s, ?a\)"]},
    "transition probability": {
        "words": [r"transition probabilit(?:y|ies)"],
        "tex": [r"P\(s' \\mid s, ?a\)"],
    },
    "Markov property": {"words": [r"Markov property"]},
    "discount factor": {
        "words": [r"discount factor"],
        # Lab 06 writes gamma, as reinforcement learning does.
        "tex": [r"\\(?:beta|gamma)(?: = 0?\.\d+)?", r"\\beta \\in \[0, ?1\)", r"0 \\le \\beta < 1"],
    },
    "policy": {
        "words": [r"stationary (?:deterministic )?polic(?:y|ies)"],
        "tex": [r"\\pi", r"\\pi\(s\)"],
    },
    "randomised policy": {"words": [r"randomi[sz]ed polic(?:y|ies)", r"\brandomi[sz]es?\b"]},
    "value of a policy": {
        "words": [r"value of a policy"],
        "tex": [rf"V_\\pi{_ARGUMENT}", rf"V_{{\\pi}}{_ARGUMENT}"],
    },
    "cost vector and transition matrix of a policy": {
        "tex": [rf"[Pr]_\\pi{_ARGUMENT}", rf"[Pr]_{{\\pi}}{_ARGUMENT}"],
    },
    "Bellman equation of a policy": {
        "words": [r"Bellman equations? of (?:the|a) policy", r"policy evaluation"],
    },
    "optimal value": {"words": [r"optimal values?"], "tex": [rf"V\^\*{_ARGUMENT}"]},
    "Bellman optimality equation": {
        "words": [r"Bellman optimality equation", r"optimality equation"],
    },
    # Not the bare T, which Lab 00 uses for a period.
    "Bellman operator": {
        "words": [r"Bellman (?:optimality )?operator"],
        "tex": [r"T_\\pi", r"T_{\\pi}"],
    },
    "contraction": {"words": [r"contractions?\b"]},
    "fixed point": {"words": [r"fixed[- ]points?"]},
    "Q-value": {"words": [r"Q-values?"], "tex": [r"Q(?:_V|_\{V\})?\(s, ?a\)"]},
    # "greedy policy", "greedy action", "greedy for V", "**greedy**": not Lab 01's "be greedy
    # (produce just the demand)", which means short-sighted.
    "greedy policy": {"words": [r"\bgreedy(?=\s+(?:polic|action|for\b)|$)"]},
    "policy iteration": {"words": [r"(?<!modified )policy iteration"]},
    "modified policy iteration": {"words": [r"modified policy iteration"]},
    "value iteration": {"words": [r"(?<!Gauss–Seidel )value iteration"]},
    "Gauss–Seidel value iteration": {"words": [r"Gauss[–-]Seidel"]},
    "ε-optimal stopping rule": {
        "words": [r"stopping rule", r"Bellman error"],
        "tex": [r"\\varepsilon"],
    },
    "sup norm": {"words": [r"sup norm"], "tex": [r"\\\|[A-Za-z]\\\|_\\infty"]},
    "linear program": {"words": [r"linear programs?\b", r"\bLPs?\b"]},
    "Bellman inequalities": {"words": [r"Bellman inequalit(?:y|ies)", r"sub-solutions?"]},
    "occupancy measure": {
        "words": [r"occupancy measures?", r"state-action frequencies", r"dual LP"],
        "tex": [r"x\(s, ?a\)"],
    },
    "shadow price": {"words": [r"shadow prices?", r"dual values?"]},
    "constrained MDP": {"words": [r"constrained MDPs?"]},
    "(s, S) policy": {"words": [r"\(s, S\)(?: shape| polic(?:y|ies))?"], "tex": [r"\(s, ?S\)"]},
    "finite-horizon dynamic program": {
        "words": [r"dynamic programs?\b", r"backward recursion"],
        "tex": [r"f_n(?:\(s\))?"],
    },
    "Monte Carlo estimate": {"words": [r"Monte Carlo"]},
    "standard error": {"words": [r"standard errors?"]},
}

# -- HTML ------------------------------------------------------------------------------------
html_title = "MDP Labs"
html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
# A favicon of the site's own: without one, browsers ask for /favicon.ico and log its 404.
html_favicon = "_static/favicon.svg"
# pydata-sphinx-theme logs an error on the first visit when no mode is set.
html_context = {"default_mode": "auto"}
html_css_files = ["mdplab-site.css"]
html_theme_options = {
    "repository_url": _site["repository"],
    "repository_branch": _site["branch"],
    "use_repository_button": True,
    # The page's own source is the staged worked solution: the student notebook is the
    # download a lab page offers (its header), so the theme's download button would confuse.
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
}
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
# Search works offline: Sphinx's own index (searchindex.js) and search page.
html_search_language = "en"
