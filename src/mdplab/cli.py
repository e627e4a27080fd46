"""The ``mdplab`` command: ``mdplab build`` writes every generated file of the course,
``mdplab build --check`` lists stale ones, ``mdplab check LAB`` runs a lab's hidden tests on
its reference and catalogue answers, ``mdplab demo`` is the README's main job."""

from __future__ import annotations

import argparse
import sys

from mdplab.course.layout import Layout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mdplab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="generate masters, labs, solutions, samples")
    build_cmd.add_argument("labs", nargs="*", help="lab00 or lab00_orientation (default: all)")
    build_cmd.add_argument("--check", action="store_true", help="list stale files, write nothing")
    commands.add_parser("demo", help="build the labs and grade the bundled samples")
    check_cmd = commands.add_parser(
        "check", help="run a lab's hidden tests on the reference and its catalogue (no nbgrader)"
    )
    check_cmd.add_argument("lab", help="lab00 or lab00_orientation")
    check_cmd.add_argument("entries", nargs="*", help="catalogue entries (default: all)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as error:
        # Authoring and layout mistakes: the message names the file and cell.
        print(f"mdplab {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    layout = Layout.find()
    if args.command == "build":
        from mdplab.course.build import build, stale_files

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
    if args.command == "demo":
        from mdplab.course.demo import run_demo

        rows = run_demo(layout)
        return 0 if all(row.status == "graded" for row in rows) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
