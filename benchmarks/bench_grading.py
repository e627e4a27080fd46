"""Benchmark ``mdplab grade`` against plain ``nbgrader autograde`` on the same submissions.

Run with ``.venv/bin/python benchmarks/bench_grading.py [--lab lab02] [--count 40]`` (not a
test). It makes ``--count`` submissions of one lab from its catalogue (the reference and
every wrong and correct entry, repeated), all of them valid notebooks that plain nbgrader
can grade too, and in one process times:

1. plain nbgrader 0.9: ``nbgrader autograde LAB`` once for the whole class, in a course
   whose autograde pipeline is nbgrader's default (its own ``Execute``, one kernel per
   notebook, one notebook after another);
2. ``mdplab grade`` with 1 worker and with one worker per core (sandboxed kernels, test
   cells judged in the grader's process, a process per submission, the lab's illustration
   cells, marked ``autograde="skip"``, not run);
3. ``mdplab grade --run-all-cells`` with one worker per core: the same work as plain
   nbgrader, figures and demonstrations included.

It prints the wall times, the ratios against plain nbgrader (target: at least 1.8 on 2
cores) and checks that both graders gave every student the same autograded score.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from mdplab.course.catalogue import load_catalogue
from mdplab.course.derive import fill_answers, reference_answers
from mdplab.course.layout import Layout

TARGET = 1.8
DEFAULT_PIPELINE = """
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
"""


def make_submissions(layout: Layout, lab_key: str, count: int, folder: Path) -> list[str]:
    """``count`` Canvas-named submissions; returns the student ids."""
    lab = layout.lab(lab_key)
    master = nbformat.read(layout.master(lab), as_version=4)
    student = nbformat.read(layout.labs / lab.notebook, as_version=4)
    entries = [{}] + [entry.answers for entry in load_catalogue(layout, lab)]
    students = []
    for k in range(count):
        answers = entries[k % len(entries)]
        notebook = fill_answers(student, reference_answers(master) | answers)
        student_id = f"student{k:03d}"
        nbformat.write(notebook, folder / f"{student_id}_{1000 + k}_{5000 + k}_{lab.notebook}")
        students.append(student_id)
    return students


def plain_nbgrader(layout: Layout, lab_key: str, submissions: Path, root: Path) -> float:
    """Time ``nbgrader autograde`` with nbgrader's own pipeline; returns seconds."""
    lab = layout.lab(lab_key)
    root.mkdir(parents=True)
    config = layout.nbgrader_config.read_text() + DEFAULT_PIPELINE
    (root / "nbgrader_config.py").write_text(config)
    source = root / "source" / lab.assignment
    source.mkdir(parents=True)
    shutil.copyfile(layout.master(lab), source / lab.notebook)
    nbgrader = [str(Path(sys.executable).parent / "nbgrader")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run([*nbgrader, "generate_assignment", lab.assignment, "--force"], cwd=root,
                   env=env, check=True, capture_output=True)  # fmt: skip
    for path in sorted(submissions.glob("*.ipynb")):
        student_id = path.name.split("_")[0]
        target = root / "submitted" / student_id / lab.assignment / lab.notebook
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
    started = time.perf_counter()
    subprocess.run([*nbgrader, "autograde", lab.assignment, "--force"], cwd=root, env=env,
                   check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def mdplab_grade(lab_key: str, submissions: Path, out: Path, jobs: int, *extra: str) -> float:
    command = [str(Path(sys.executable).parent / "mdplab"), "grade", lab_key, str(submissions)]
    command += ["--out", str(out), "--jobs", str(jobs), *extra]
    started = time.perf_counter()
    subprocess.run(command, check=False, capture_output=True)
    return time.perf_counter() - started


def scores(database: Path, lab: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{database}") as gradebook:
        return {
            s.student.id: sum(g.score for g in s.notebooks[0].grades if g.cell.cell_type == "code")
            for s in gradebook.find_assignment(lab).submissions
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="lab02")
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    layout = Layout.find()
    lab = layout.lab(args.lab)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        base = Path(folder)
        submissions = base / "submissions"
        submissions.mkdir()
        make_submissions(layout, args.lab, args.count, submissions)
        print(f"{args.count} submissions of {lab.name}; {cores} core(s)")
        plain = plain_nbgrader(layout, args.lab, submissions, base / "plain")
        print(f"plain nbgrader autograde:        {plain:7.1f} s  ({plain / args.count:.2f} s each)")
        timings = {}
        for jobs in sorted({1, cores}):
            seconds = mdplab_grade(args.lab, submissions, base / f"mdplab{jobs}", jobs)
            timings[jobs] = seconds
            print(
                f"mdplab grade, {jobs} worker(s):      {seconds:7.1f} s  "
                f"ratio plain/mdplab = {plain / seconds:.2f}"
            )
        if cores > 1:
            print(f"throughput, {cores} workers vs 1:  {timings[1] / timings[cores]:.2f}x")
        every = mdplab_grade(args.lab, submissions, base / "every", cores, "--run-all-cells")
        print(
            f"mdplab grade --run-all-cells, {cores} worker(s): {every:7.1f} s  ratio "
            f"plain/mdplab = {plain / every:.2f}  (illustration cells run too, as plain "
            "nbgrader runs them)"
        )
        ratio = plain / timings[cores]
        verdict = "met" if ratio >= TARGET else "MISSED"
        print(f"target: ratio >= {TARGET} on {cores} cores: {verdict} ({ratio:.2f})")
        ours = scores(base / f"mdplab{cores}" / "course" / "gradebook.db", lab.assignment)
        theirs = scores(base / "plain" / "gradebook.db", lab.assignment)
        differ = sorted(s for s in theirs if abs(theirs[s] - ours.get(s, -1)) > 1e-9)
        print("same autograded scores:", "yes" if not differ else f"NO, differ for {differ}")


if __name__ == "__main__":
    main()
