"""The ``mdplab`` command: ``mdplab build`` writes every generated file of the course,
``mdplab build --check`` lists stale ones and ``mdplab build --repository URL`` first points
the course at another public home. ``mdplab check LAB`` runs a lab's hidden tests on its
reference and catalogue answers, ``mdplab demo`` is the README's main job,
``mdplab grade`` grades a class's submissions and ``mdplab site`` builds the static
self-study website in ``out/site/``. For a term: ``mdplab class init DIR`` makes one course
for every lab, ``mdplab grade LAB FILES --class DIR`` grades into it,
``mdplab formgrader DIR`` opens nbgrader's formgrader on it and ``mdplab export DIR``
writes the final grades and Canvas's import file.

Exit codes: 0 when the command did its work (for ``grade``: every file has its status in
grades.csv, failed files included); 1 when something it checks is wrong (stale files, a
catalogue entry graded otherwise than declared) or the grader itself failed (for ``site``:
Sphinx or npm failed); 2 for a mistake in the command line or the course's files, with a
message that names it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from mdplab.course.layout import Layout, set_public_address


class _DefaultsShown(argparse.HelpFormatter):
    """Help that ends each option's line with its default, when it has one to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and action.option_strings:
            text += " (default: %(default)s)"
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mdplab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="generate masters, labs, solutions, samples")
    build_cmd.add_argument("labs", nargs="*", help="lab00 or lab00_orientation (default: all)")
    build_cmd.add_argument("--check", action="store_true", help="list stale files, write nothing")
    build_cmd.add_argument(
        "--repository",
        metavar="URL",
        help="first make URL (https://github.com/OWNER/NAME, your fork) the course's public "
        "address: [tool.mdplab] in pyproject.toml, which every Colab badge and data link "
        "follows; then rebuild every lab",
    )
    build_cmd.add_argument(
        "--branch", help="with --repository: the branch the badges open (default: kept)"
    )
    commands.add_parser("demo", help="build the labs and grade the bundled samples")
    data_cmd = commands.add_parser("data", help="write the capstone's telemetry trace (data/)")
    data_cmd.add_argument("--check", action="store_true", help="verify the file, write nothing")
    check_cmd = commands.add_parser(
        "check", help="run a lab's hidden tests on the reference and its catalogue (no nbgrader)"
    )
    check_cmd.add_argument("lab", help="lab00 or lab00_orientation")
    check_cmd.add_argument("entries", nargs="*", help="catalogue entries (default: all)")
    grade_cmd = commands.add_parser(
        "grade",
        help="grade a folder or LMS zip of submissions through nbgrader, safely",
        description="Grade a lab's submissions: grades.csv, feedback pages and an nbgrader "
        "gradebook in --out. Exit code 0 when every file has its status (failed files "
        "included), 1 when the grader itself failed, 2 for a mistake in the command.",
        formatter_class=_DefaultsShown,
    )
    grade_cmd.add_argument("lab", help="lab01 or lab01_dp_review")
    grade_cmd.add_argument("submissions", nargs="+", type=Path, help=".ipynb, folders, .zip")
    where = grade_cmd.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="results folder of a one-off run")
    where.add_argument(
        "--class",
        dest="classroom",
        type=Path,
        metavar="DIR",
        help="a class made by `mdplab class init`: grade into its one gradebook",
    )
    grade_cmd.add_argument(
        "--due",
        metavar="WHEN",
        help="with --class: set the lab's due date first, e.g. 2027-02-01T23:59 (in the "
        "class's time zone); late files lose points as class.toml's [late] says",
    )
    grade_cmd.add_argument(
        "--pattern",
        help="regex for file names with groups 'student' and optionally 'lab' "
        "(when not given: Canvas's names, student_userid_submissionid_file)",
    )
    grade_cmd.add_argument(
        "--student",
        nargs="+",
        metavar="NAME",
        help="grade only these students' files (the others keep their last outcome)",
    )
    grade_cmd.add_argument(
        "--force", action="store_true", help="grade again the files unchanged since the last run"
    )
    grade_cmd.add_argument(
        "--jobs", type=int, default=None, help="workers (when not given: the machine's cores)"
    )
    grade_cmd.add_argument("--cell-timeout", type=float, default=120.0, help="seconds")
    grade_cmd.add_argument("--notebook-timeout", type=float, default=900.0, help="seconds")
    grade_cmd.add_argument("--memory-mb", type=int, default=4096, help="per process")
    grade_cmd.add_argument(
        "--max-processes", type=int, default=512, help="processes and threads of a kernel"
    )
    grade_cmd.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the hidden checks' instances (when not given: fresh for each run; the "
        "journal and the start of the output give it, to regrade with the same instances)",
    )
    grade_cmd.add_argument(
        "--run-all-cells",
        action="store_true",
        help='also run the read-only cells the lab marks autograde="skip" (figures and '
        "demonstrations that nothing graded depends on)",
    )
    site_cmd = commands.add_parser(
        "site",
        help="build the static self-study website (out/site/) from the worked solutions",
        formatter_class=_DefaultsShown,
    )
    site_cmd.add_argument("--out", type=Path, help="the site's folder (default: out/site)")
    site_cmd.add_argument(
        "--repository",
        metavar="URL",
        help="the public repository for the Colab badges (default: [tool.mdplab]'s)",
    )
    site_cmd.add_argument("--branch", help="its branch (default: [tool.mdplab]'s)")
    site_cmd.add_argument("--jobs", type=int, default=1, help="Sphinx processes")
    _term_commands(commands)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as error:
        # Authoring and layout mistakes: the message names the file and cell.
        print(f"mdplab {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command in ("export", "formgrader"):
        return _term(None, args)  # a class is a folder of its own: no repository needed
    layout = Layout.find()
    if args.command == "build":
        from mdplab.course.build import build, stale_files

        if args.repository is None and args.branch is not None:
            raise ValueError("--branch goes with --repository")
        if args.repository is not None:
            if args.check or args.labs:
                # Every generated file names the address: a partial rebuild leaves stale ones.
                raise ValueError("--repository rebuilds every lab: give no lab names or --check")
            pyproject = layout.root / "pyproject.toml"
            set_public_address(pyproject, args.repository, args.branch)
            layout = Layout(layout.root)  # read the new address back
            print(
                f"pyproject.toml: [tool.mdplab] repository = {layout.repository!r}, "
                f"branch = {layout.branch!r}"
            )
        if args.check:
            problems = stale_files(layout)
            for problem in problems:
                print(f"stale: {problem}")
            print(
                "all generated files are up to date"
                if not problems
                else f"{len(problems)} stale file(s): run `mdplab build`"
            )
            return 1 if problems else 0
        labs = [layout.lab(key) for key in args.labs] or None
        for path in build(layout, labs):
            print(f"wrote {path.relative_to(layout.root)}")
        return 0
    if args.command == "check":
        from mdplab.course.check import check_lab

        return 0 if check_lab(layout.lab(args.lab), layout, args.entries) else 1
    if args.command == "grade":
        return _grade(layout, args)
    if args.command == "class":
        return _term(layout, args)
    if args.command == "data":
        return _data(layout, args.check)
    if args.command == "site":
        return _site(layout, args)
    if args.command == "demo":
        from mdplab.course.demo import run_demo

        run_demo(layout)
        return 0
    return 2


def _data(layout: Layout, check: bool) -> int:
    """Regenerate data/autoscaler_telemetry.csv; with ``check``, compare bytes instead."""
    import tempfile

    from mdplab.autoscaler.telemetry import generate_telemetry, write_csv

    path = layout.root / "data" / "autoscaler_telemetry.csv"
    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / path.name
        write_csv(generate_telemetry(), fresh)
        if check:
            same = path.is_file() and path.read_bytes() == fresh.read_bytes()
            print(f"{path.relative_to(layout.root)} is " + ("up to date" if same else "stale"))
            return 0 if same else 1
        path.write_bytes(fresh.read_bytes())
    print(f"wrote {path.relative_to(layout.root)}")
    return 0


def _site(layout: Layout, args: argparse.Namespace) -> int:
    """Build the website and print its closing note: the pages, their sizes, the time."""
    from mdplab.site.build import build_site

    try:
        report = build_site(
            layout, args.out, repository=args.repository, branch=args.branch, jobs=args.jobs
        )
    except RuntimeError as error:  # Sphinx or npm failed: their messages say why
        print(f"mdplab site: {error}", file=sys.stderr)
        return 1
    print(report.describe())
    return 0


def _grade(layout: Layout, args: argparse.Namespace) -> int:
    import re

    from mdplab.grading.batch import Options, grade
    from mdplab.grading.report import write_all
    from mdplab.grading.sandbox import Limits

    defaults = Options()
    options = Options(
        jobs=args.jobs or defaults.jobs,
        limits=Limits(
            cell_seconds=args.cell_timeout,
            notebook_seconds=args.notebook_timeout,
            memory_bytes=args.memory_mb * 1024 * 1024,
            processes=args.max_processes,
        ),
        pattern=re.compile(args.pattern) if args.pattern else None,
        run_all_cells=args.run_all_cells,
        seed=args.seed,
        force=args.force,
        students=frozenset(args.student) if args.student else None,
    )
    lab = layout.lab(args.lab)
    out = args.out
    if args.classroom is not None:
        from mdplab.term.classroom import ClassCourse

        classroom = ClassCourse(args.classroom)
        if args.due:
            when = classroom.set_due(lab, args.due)
            print(f"{lab.name} is due {when.isoformat(timespec='minutes')} UTC")
        options = dataclasses.replace(options, classroom=classroom)
        out = classroom.lab_folder(lab)
    elif args.due:
        raise ValueError("--due needs --class: a one-off run has no due dates")
    run = grade(layout, lab, args.submissions, out, options)
    write_all(run, out)
    return 0  # every file has its status, a failed one too: grades.csv says which


def _term_commands(commands: argparse._SubParsersAction) -> None:
    """``class init``, ``export`` and ``formgrader``: the commands of a term."""
    class_cmd = commands.add_parser("class", help="a class: one course for every lab")
    class_commands = class_cmd.add_subparsers(dest="class_command", required=True)
    init_cmd = class_commands.add_parser(
        "init",
        help="make a class folder: every lab released, one gradebook",
        formatter_class=_DefaultsShown,
    )
    init_cmd.add_argument("folder", type=Path, help="a new or empty folder")
    init_cmd.add_argument(
        "--roster", type=Path, help="CSV with Canvas's columns Student, ID (a gradebook export)"
    )
    init_cmd.add_argument(
        "--due",
        nargs="+",
        default=[],
        metavar="LAB=WHEN",
        help="due dates, e.g. lab01=2027-02-01T23:59 (also in class.toml later)",
    )
    init_cmd.add_argument(
        "--late-percent-per-day",
        type=float,
        default=10.0,
        help="share of the autograded points a late file loses per started day",
    )
    init_cmd.add_argument("--timezone", default="UTC", help="of due dates without an offset")
    export_cmd = commands.add_parser(
        "export", help="a class's final grades (per lab, term) and Canvas's import CSV"
    )
    export_cmd.add_argument("folder", type=Path, help="the class folder")
    export_cmd.add_argument(
        "--lab", nargs="+", default=[], help="these labs only (default: every lab graded so far)"
    )
    formgrader_cmd = commands.add_parser(
        "formgrader", help="open nbgrader's formgrader on a class (manual grading)"
    )
    formgrader_cmd.add_argument(
        "folder", type=Path, help="a class folder, or the course/ folder of a --out run"
    )
    formgrader_cmd.add_argument("--port", type=int, help="(default: Jupyter's, 8888 or free)")
    formgrader_cmd.add_argument(
        "--no-browser", action="store_true", help="print the address instead of opening it"
    )


def _term(layout: Layout | None, args: argparse.Namespace) -> int:
    from mdplab.term.classroom import ClassCourse

    if args.command == "class":
        assert layout is not None
        due = {}
        for item in args.due:
            lab, sep, when = item.partition("=")
            if not sep:
                raise ValueError(f"--due {item!r}: write LAB=WHEN, e.g. lab01=2027-02-01T23:59")
            due[lab] = when
        classroom = ClassCourse.init(
            layout,
            args.folder,
            roster=args.roster,
            due=due,
            percent_per_day=args.late_percent_per_day,
            timezone=args.timezone,
        )
        print(
            f"class ready in {classroom.root}: {len(classroom.labs())} labs, "
            f"{len(classroom.roster)} student(s) on the roster; edit class.toml for due dates"
        )
        return 0
    if args.command == "export":
        from mdplab.term.export import describe, export

        classroom = ClassCourse(args.folder)
        print(describe(export(classroom, [classroom.lab(key) for key in args.lab])))
        return 0
    from mdplab.term.formgrader import run_formgrader

    return run_formgrader(args.folder, port=args.port, browser=not args.no_browser)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mdplab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


if __name__ == "__main__":
    sys.exit(main())
