"""Text that came from a student (file names, ids, messages their code raised) made safe for
the places the grader writes it: a terminal, and a spreadsheet that opens ``grades.csv``.

A student chooses the name of the file they upload, and their code chooses the text of the
exceptions it raises; both end up in the instructor's terminal and in the grade table.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text
# (bidirectional overrides and isolates, zero-width joiners, the BOM): a terminal or an
# editor would obey them, so that a line could rewrite itself or show what it does not hold.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)
# OWASP's list for CSV injection: a cell starting with one of these may be read as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character written as an escape (``\\x1b``,
    ``\\u202e``); with ``keep_newlines``, line feeds stay as they are. Printable text,
    accents and other scripts included, is unchanged."""
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def spreadsheet_cell(text: str) -> str:
    """``text`` for one cell of a CSV file that a spreadsheet will open: control
    characters escaped, and a leading ``'`` where the cell would otherwise start like a
    formula (OWASP's CSV injection advice). A spreadsheet shows the quote-prefixed text as
    text, and hides the quote."""
    text = printable(unicodedata.normalize("NFC", text))
    return "'" + text if text.startswith(_FORMULA_START) else text
