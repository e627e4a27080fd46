"""``report.html``: one grading run, for the instructor who acts on it.

The terminal table has one line per file and cuts long messages; this page has the whole
of each: the grade, the status and message, and, per student, every repair the grader
made to the file (in words: "answer cell periods_needed appeared 2 times …") and every
cell that could not be judged. It is the place to look before answering a student who
asks what happened to their file.

Everything on it that a student could have chosen (ids, file names, messages their code
raised, repair descriptions that quote their cells) is escaped text, and the page carries
a policy that runs no script, as the feedback pages do.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence

from mdplab.grading.batch import Outcome, problem_text
from mdplab.grading.executor import UNJUDGED

_STYLE = """
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
main { max-width: 75rem; margin: 0 auto; padding: 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #c8c8c8; padding: 0.2rem 0.5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
th { background: #eef2f7; }
.failed { background: #fbe9e8; }
.partly { background: #fdf0dc; }
section { border-top: 1px solid #c8c8c8; margin-top: 1rem; }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = (
    "default-src 'none'; script-src 'none'; object-src 'none'; img-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'none'"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def build_report(outcomes: Sequence[Outcome], lab: str) -> str:
    """The page for the outcomes of one lab's run."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
    rows = "".join(_row(o) for o in outcomes)
    details = "".join(_details(o) for o in outcomes if o.repairs or _problems(o))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta charset="utf-8">\n<meta name="referrer" content="no-referrer">\n'
        f"<title>Grading report: {_e(lab)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<main>\n<h1>Grading report: {_e(lab)}</h1>\n<p>{_e(summary)}</p>\n"
        "<table>\n<thead><tr><th>student</th><th>Canvas id</th><th>status</th>"
        "<th>autograded</th><th>written to grade</th><th>late penalty</th><th>file</th>"
        "<th>message</th></tr></thead>\n<tbody>\n"
        f"{rows}</tbody>\n</table>\n"
        "<h2>Repairs and cells that could not be judged</h2>\n"
        f"{details or '<p>None: every file was graded as handed in.</p>'}\n"
        "</main>\n</body>\n</html>\n"
    )


def _row(o: Outcome) -> str:
    css = {"failed": ' class="failed"', "partly graded": ' class="partly"'}.get(o.status, "")
    auto = "-" if o.score is None else f"{o.score:g} / {o.max_score - o.manual_max:g}"
    late = late_text(o)
    cells = (
        o.student_id, o.lms_user_id, o.status, auto, f"{o.manual_pending:g}" if
        o.manual_pending else "", late, o.file, o.message,
    )  # fmt: skip
    return f"<tr{css}>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>\n"


def late_text(outcome: Outcome) -> str:
    """What lateness cost: the penalty, or what the LMS said when it cost nothing."""
    if outcome.late_penalty:
        return f"-{outcome.late_penalty:g} point(s)"
    return "late, no penalty" if outcome.lms_late else "-"


def _problems(o: Outcome) -> list[str]:
    """The cells of the file that could not be judged, as the batch's message says them."""
    return [problem_text(c, {}) for c in o.cells if c.get("status") in UNJUDGED]


def _details(o: Outcome) -> str:
    items = [f"<li>repaired: {_e(r)}</li>" for r in o.repairs]
    items += [f"<li>{_e(p)}</li>" for p in _problems(o)]
    return (
        f"<section><h3>{_e(o.student_id)}</h3>\n<p>{_e(o.file)}</p>\n<ul>\n"
        + "\n".join(items)
        + "\n</ul></section>\n"
    )
