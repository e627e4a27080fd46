"""Building a lab writes the bytes that are committed, so ``make demo`` (which builds every
lab) leaves ``git status`` clean.

Why the bytes are stable: the kernel that executes a worked solution runs in an environment
of the build's own (``KERNEL_ENV`` and ``KERNEL_CONFIG`` in :mod:`mdplab.course.execute`),
not the machine's. Before, every PNG carried matplotlib's version in a text chunk
("Software: Matplotlib version3.11.2, ..."), and the host's settings reached the kernel:
a ``mathtext.fontset`` in ~/.config/matplotlib/matplotlibrc redrew every figure with a
formula or a log axis (lab04-lab06), ``InlineBackend.figure_formats = {'retina'}`` in
~/.ipython doubled every PNG, ``MPLBACKEND=Agg`` drew none; the hash salt and the BLAS
thread count are fixed as well. Now the PNGs hold pixels only, drawn with matplotlib's
defaults. The pixels are still matplotlib's own: another matplotlib (3.10.0, as in Colab)
draws some figures a pixel narrower, so this holds in the project's environment.

Each lab of ``REBUILT`` is built once and compared with its committed solution; the committed
file came from an earlier build, so equal bytes show two builds agree. Only when they differ
is the lab built a second time, to tell a build that varies from a committed file that is
out of date.
"""

from __future__ import annotations

import difflib

import nbformat
import pytest
from course_helpers import LAYOUT

from mdplab.course.build import build_lab
from mdplab.course.layout import Lab

LABS_WITH_FIGURES = [
    lab
    for lab in LAYOUT.all_labs()
    if '"image/png"' in (LAYOUT.solutions / lab.notebook).read_text(encoding="utf-8")
]
pytestmark = pytest.mark.slow


def built_solution(lab: Lab) -> str:
    """The text ``mdplab build`` writes to ``solutions/`` for ``lab``, built in memory."""
    return nbformat.writes(build_lab(lab, LAYOUT).solution) + "\n"


def first_difference(before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return "\n".join(line[:160] for line in list(lines)[:8])


# The labs whose figures made `make demo` leave a dirty tree (issue 13), built here once
# more each: the build's kernel environment is the same for every lab, and
# tests/test_course_execute.py checks it on a figure drawn under a hostile host setup.
REBUILT = [lab for lab in LABS_WITH_FIGURES if lab.assignment in {"lab05", "lab06"}]


def test_the_figure_labs_are_covered():
    assert {"lab05", "lab06"} <= {lab.assignment for lab in LABS_WITH_FIGURES}


@pytest.mark.parametrize("lab", REBUILT, ids=[lab.name for lab in REBUILT])
def test_a_rebuilt_solution_is_the_committed_file(lab):
    committed = (LAYOUT.solutions / lab.notebook).read_text(encoding="utf-8")
    first = built_solution(lab)
    if first == committed:
        return
    second = built_solution(lab)
    assert first == second, (
        f"two builds of {lab.name} differ, so the build is not deterministic:\n"
        + first_difference(first, second)
    )
    pytest.fail(
        f"solutions/{lab.notebook} is not what the build writes (the same twice); "
        f"run `mdplab build {lab.assignment}`:\n" + first_difference(committed, first)
    )
