"""Late penalties through nbgrader's own mechanism.

nbgrader's autograde runs ``AssignLatePenalties``, which asks a ``LateSubmissionPlugin``
for the penalty of each late notebook; lateness is the submission's ``timestamp.txt``
against the assignment's due date in the gradebook. nbgrader ships two methods, none and
zero; a class uses this plugin, which takes a share of the autograded points per day late:

    penalty = score × min(1, ⌈seconds late / 86 400⌉ × percent_per_day / 100)

so that 10 percent a day costs a file 1 minute late a tenth of its points, and one 10
days late all of them; ``percent_per_day = 100`` is nbgrader's "zero". As with every
nbgrader plugin, the penalty is set when the file is autograded, on the points it had then:
points a person adds later for the written answers are not reduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

DAY_SECONDS = 86_400


class PercentPerDay(LateSubmissionPlugin):
    """A share of the autograded points for each day, or part of a day, late."""

    percent_per_day = Float(
        10.0, help="Percent of the notebook's points taken per started day late (0 to 100)."
    ).tag(config=True)

    def late_submission_penalty(
        self, student_id: str, score: float, total_seconds_late: float
    ) -> float | None:
        if total_seconds_late <= 0:
            return None
        return late_penalty(score, total_seconds_late, self.percent_per_day)


def late_penalty(score: float, seconds_late: float, percent_per_day: float) -> float:
    """The points taken from ``score`` for a file ``seconds_late`` late."""
    if seconds_late <= 0 or score <= 0:
        return 0.0
    days = math.ceil(seconds_late / DAY_SECONDS)
    share = min(1.0, days * max(0.0, percent_per_day) / 100.0)
    return score * share


@dataclass(frozen=True)
class Lateness:
    """When a file counts as handed in, for nbgrader (UTC), and what the grader tells the
    instructor about it."""

    submitted_at: datetime | None
    note: str = ""


def lateness(modified: float, lms_late: bool | None, due: datetime | None) -> Lateness:
    """The submission time nbgrader gets for a file.

    The LMS's late flag (Canvas's ``_LATE`` in a download's names) decides *whether* a file
    is late, since the LMS knows about extensions and the grader does not; the file's time
    (a zip member's date, a file's mtime) decides *by how much*. A file the LMS calls late
    whose time is not after the due date counts as late by under a day; a file the LMS
    calls on time counts as on time whatever its time. Without an LMS flag, the file's
    time alone decides. ``modified`` is in seconds since the epoch, 0 when unknown.
    """
    at = datetime.fromtimestamp(modified, UTC) if modified > 0 else None
    if due is None:
        note = "the LMS marked it late, but the lab has no due date: no penalty" if lms_late else ""
        return Lateness(at, note)
    if lms_late:
        if at is None or at <= due:
            return Lateness(
                due + timedelta(seconds=1),
                "the LMS marked it late; its time is not after the due date, so it counts "
                "as late by less than a day",
            )
        return Lateness(at)
    if lms_late is False and at is not None and at > due:
        return Lateness(due, "on time as the LMS says (an extension?), though its time is later")
    return Lateness(at)
