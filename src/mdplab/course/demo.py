"""The main job: build every lab, then grade each lab's bundled sample submissions with
``mdplab grade`` (correct, blank, partly wrong, Colab-renamed and broken files) and print
one grade table for all of them."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from mdplab.course.build import build
from mdplab.course.layout import Layout
from mdplab.grading.batch import FAILED, Options, Outcome, grade
from mdplab.grading.report import summary, write_all


def run_demo(layout: Layout, *, log: Callable[[str], None] = print) -> list[Outcome]:
    """Build, grade every lab's samples into ``out/demo/<lab>/``, print the table."""
    build(layout, log=log)
    root = layout.root / "out" / "demo"
    if root.exists():
        shutil.rmtree(root)
    outcomes: list[Outcome] = []
    for lab in layout.all_labs():
        samples = layout.samples / lab.assignment
        if not any(samples.glob("*.ipynb")):
            continue
        log(f"\n=== {lab.name}: mdplab grade {lab.assignment} {samples.relative_to(layout.root)}")
        out = root / lab.assignment
        run = grade(layout, lab, [samples], out, Options(announce=not outcomes), log=log)
        write_all(run, out, log=lambda _line: None)
        outcomes += run.outcomes
    log("\nAll labs (grades.csv and feedback pages in out/demo/<lab>/):\n")
    log(summary(outcomes))
    failed = [o for o in outcomes if o.status == FAILED]
    if failed:
        log(f"\n{len(failed)} file(s) could not be graded; the message says why.")
    return outcomes
