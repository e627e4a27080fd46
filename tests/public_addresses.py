"""Find the web addresses in generated files, and those that do not come from the one
setting that names the course's public home, ``[tool.mdplab]`` in ``pyproject.toml``.

An address *names the public home* when it points into GitHub: the repository's pages
(``github.com``), its raw files (``raw.githubusercontent.com``) or a notebook that Colab opens
from GitHub (``colab.research.google.com/github/``). Each such address must start with what
:class:`~mdplab.course.layout.Layout` derives from the setting. Every other address must be
one of a short list of third-party ones, so that a hard-coded link of any kind shows up.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mdplab.course.layout import Layout

URL = re.compile(r"https?://[^\s\"'<>()\[\]\\`]+")
# Addresses that are not the course's and need not follow it: Colab's badge image and
# nbgrader's documentation in the README.
THIRD_PARTY = (
    "https://colab.research.google.com/assets/colab-badge.svg",
    "https://nbgrader.readthedocs.io/",
)
# The machine itself: the capstone's test server (whose port the site's highlighting splits
# off).
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def addresses(text: str) -> list[str]:
    """Every http(s) address in ``text``, without trailing punctuation."""
    return [url.rstrip(".,;:") for url in URL.findall(text)]


def names_public_home(url: str) -> bool:
    parts = urlsplit(url)
    if parts.hostname in ("github.com", "www.github.com", "raw.githubusercontent.com"):
        return True
    return parts.hostname == "colab.research.google.com" and parts.path.startswith("/github/")


def derived_prefixes(layout: Layout) -> tuple[str, ...]:
    return (layout.repository + "/", layout.colab_url(""), layout.raw_url(""))


def foreign_addresses(text: str, layout: Layout) -> list[str]:
    """The addresses in ``text`` that neither follow ``layout``'s public home nor are a
    known third-party page."""
    prefixes = derived_prefixes(layout)
    foreign = []
    for url in addresses(text):
        if names_public_home(url):
            if not (url == layout.repository or url.startswith(prefixes)):
                foreign.append(url)
        elif not url.startswith(THIRD_PARTY) and urlsplit(url).hostname not in LOCAL_HOSTS:
            foreign.append(url)
    return foreign
