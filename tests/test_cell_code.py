"""Reading a cell as Python: the names it binds, and those it takes from cells above."""

from __future__ import annotations

import pytest

from mdplab.cell_code import names_bound, names_read_before_bound, python_only


def test_ipython_lines_are_blanked_in_place():
    assert python_only("%matplotlib inline\nx = 1\n  !pip install numpy\ny = x") == (
        "\nx = 1\n\ny = x"
    )


def test_names_bound_at_the_top_level_only():
    source = (
        "import numpy as np\nimport os.path\nfrom math import tau as turn\n"
        "a, (b, c) = 1, (2, 3)\nfor i in range(3):\n    d = i\n"
        "def f(x):\n    local = x\n    return local\nclass K:\n    attribute = 1\n"
        "squares = [k * k for k in range(3)]\nwith open('f') as handle:\n    pass\n"
    )
    assert names_bound(source) == {
        "np", "os", "turn", "a", "b", "c", "i", "d", "f", "K", "squares", "handle",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "read"),
    [
        ("x = 1\nprint(x)", {"print"}),
        ("print(x)\nx = 1", {"print", "x"}),
        ("x = x + 1", {"x"}),
        ("for i in items:\n    print(i)", {"items", "print"}),
        ("for i in items:\n    pass\nprint(i)", {"items", "print", "i"}),
        ("if flag:\n    x = 1\nprint(x)", {"flag", "print", "x"}),
        ("if flag:\n    x = 1\nelse:\n    x = 2\nprint(x)", {"flag", "print", "x"}),
        ("while go:\n    y = 1\n    print(y)", {"go", "print"}),
        ("with open(path) as handle:\n    pass\nprint(handle)", {"open", "path", "print"}),
        ("[k for k in range(n)]", {"range", "n"}),
        ("def f(a):\n    b = a\n    return b + c", {"c"}),
        ("g = lambda a: a + c", {"c"}),
        ("%timeit f()\ny = 2", set()),
    ],
)
def test_names_read_before_bound(source, read):
    assert names_read_before_bound(source) == read
