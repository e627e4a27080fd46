"""Student text on its way to the instructor's terminal and spreadsheet (issue 11,
findings 11 and 12)."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdplab.grading.text import printable, spreadsheet_cell


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[Hgraded 5/5", "\\x1b[2J\\x1b[Hgraded 5/5"),
        ("a\rb", "a\\x0db"),
        ("bell\x07", "bell\\x07"),
        ("c1 \x9b31m", "c1 \\x9b31m"),
        ("evil\u202etxt.ipynb", "evil\\u202etxt.ipynb"),  # right-to-left override
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("Lovelace, Ada – β ≥ ½ 学生", "Lovelace, Ada – β ≥ ½ 学生"),
    ],
)
def test_control_and_format_characters_are_escaped(text, shown):
    assert printable(text) == shown


def test_newlines_stay_only_when_asked():
    assert printable("a\nb") == "a\\x0ab"
    assert printable("a\n\x1bb", keep_newlines=True) == "a\n\\x1bb"


@given(st.text())
def test_printable_text_has_no_control_characters(text):
    shown = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("-2-3", "'-2-3"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "\\x09x"),  # escaped, so it no longer starts with a tab
        ("lovelaceada", "lovelaceada"),
        ("4.5", "4.5"),
    ],
)
def test_spreadsheet_cells_never_start_like_a_formula(text, cell):
    assert spreadsheet_cell(text) == cell


@given(st.text())
def test_every_spreadsheet_cell_is_safe_and_survives_csv(text):
    cell = spreadsheet_cell(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [cell]
