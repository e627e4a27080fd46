"""A class: one nbgrader course for a term, every lab an assignment, one gradebook.

``mdplab class init DIR`` lays it out::

    DIR/class.toml            due dates, the late policy, Canvas column names (edit it)
    DIR/roster.csv            the roster, as given (optional)
    DIR/nbgrader_config.py    the course's nbgrader settings, late penalties included
    DIR/source/ release/      nbgrader's folders: every lab's master and student notebook
    DIR/gradebook.db          the one gradebook: formgrader, manual grading, nbgrader export
    DIR/grading/labNN/        what ``mdplab grade labNN … --class DIR`` leaves per lab:
                              grades.csv, feedback pages, the journal of outcomes
    DIR/export/               what ``mdplab export DIR`` writes

``class.toml`` is the instructor's file and the gradebook follows it: every command that
opens the class writes the due dates into nbgrader's assignments and the roster into
nbgrader's students (names and Canvas user ids). A due date without a time zone is read
in the class's ``timezone`` (default UTC); nbgrader keeps UTC.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tomllib
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from traitlets.config import Config

from mdplab.course.layout import Lab, Layout
from mdplab.course.nbgrader_course import WorkingCourse
from mdplab.term.roster import Roster, read_roster

CLASS_FILE = "class.toml"
ROSTER_FILE = "roster.csv"
CONFIG_FILE = "nbgrader_config.py"
# Appended to the course's nbgrader settings: the late policy is read from class.toml each
# time nbgrader loads its configuration, so an edit there needs no other step.
CONFIG_TAIL = """

# ---- This class (written by `mdplab class init`) ----------------------------------------
# Late penalties: nbgrader's AssignLatePenalties with a share of the points per day late,
# the share read from class.toml ([late] percent_per_day) whenever nbgrader starts.
import tomllib as _tomllib  # noqa: E402

_CLASS = _tomllib.loads((Path(__file__).resolve().parent / "class.toml").read_text())
c.AssignLatePenalties.plugin_class = "mdplab.term.late.PercentPerDay"
c.PercentPerDay.percent_per_day = float(_CLASS.get("late", {}).get("percent_per_day", 0.0))
# Submissions come from the LMS, not through nbgrader's exchange; a folder of the class's
# own keeps formgrader from warning about the system-wide one.
c.Exchange.root = str(Path(__file__).resolve().parent / "exchange")
"""


@dataclass
class ClassSettings:
    """What ``class.toml`` holds."""

    timezone: str = "UTC"
    percent_per_day: float = 10.0
    due: dict[str, datetime] = field(default_factory=dict)  # lab name -> local due time
    canvas_columns: dict[str, str] = field(default_factory=dict)  # lab name -> column
    roster: str = ""  # the roster's file name in the class folder, "" for none

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"{CLASS_FILE}: unknown timezone {self.timezone!r}") from error


def parse_due(text: str, zone: ZoneInfo) -> datetime:
    """A due date as the instructor writes it (``2027-02-01T23:59``, a space for the T, or
    with an offset), as an aware datetime; a date alone means the end of that day."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ValueError(
            f"due date {text!r}: write it as 2027-02-01T23:59 (ISO 8601, in the class's time "
            "zone unless it carries an offset)"
        ) from error
    if len(text.strip()) == 10:  # a date alone
        when = when.replace(hour=23, minute=59, second=59)
    return when if when.tzinfo else when.replace(tzinfo=zone)


def read_settings(root: Path) -> ClassSettings:
    path = root / CLASS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ValueError(f"{root} is not a class: run `mdplab class init {root}` first") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from error
    settings = ClassSettings(
        timezone=str(data.get("timezone", "UTC")),
        percent_per_day=float(data.get("late", {}).get("percent_per_day", 0.0)),
        canvas_columns={str(k): str(v) for k, v in data.get("canvas", {}).items()},
        roster=str(data.get("roster", "")),
    )
    zone = settings.zone()
    for lab, value in data.get("due", {}).items():
        when = value if isinstance(value, datetime) else parse_due(str(value), zone)
        settings.due[str(lab)] = when if when.tzinfo else when.replace(tzinfo=zone)
    if not 0.0 <= settings.percent_per_day <= 100.0:
        raise ValueError(f"{path}: [late] percent_per_day must be between 0 and 100")
    return settings


def write_settings(root: Path, settings: ClassSettings) -> None:
    """``class.toml``, commented for the instructor who edits it."""

    def quoted(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string

    lines = [
        "# An MDP Labs class. Edit the due dates and the late policy here; every mdplab",
        "# command that opens the class brings the gradebook up to date with this file.",
        f"timezone = {quoted(settings.timezone)}  # due dates without an offset are in it",
        f"roster = {quoted(settings.roster)}  # Canvas gradebook columns; empty for none",
        "",
        "[late]",
        "# Share of the autograded points taken per started day late (100: a late file",
        "# scores 0). The LMS's late flag decides whether a file is late.",
        f"percent_per_day = {settings.percent_per_day:g}",
        "",
        "[due]",
        "# lab = 2027-02-01T23:59:00",
        *(
            f"{lab} = {when.isoformat(timespec='seconds')}"
            for lab, when in sorted(settings.due.items())
        ),
        "",
        "[canvas]",
        "# The Canvas gradebook column of each lab, to update an existing assignment:",
        '# lab01_dp_review = "Lab 1: DP review (123456)". Default: a new column per lab.',
        *(f"{lab} = {quoted(column)}" for lab, column in sorted(settings.canvas_columns.items())),
        "",
    ]
    (root / CLASS_FILE).write_text("\n".join(lines), encoding="utf-8")


class ClassCourse:
    """An initialised class folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.settings = read_settings(self.root)
        self.roster = (
            read_roster(self.root / self.settings.roster) if self.settings.roster else Roster()
        )

    @classmethod
    def init(
        cls,
        layout: Layout,
        root: Path,
        *,
        roster: Path | None = None,
        due: dict[str, str] | None = None,
        percent_per_day: float = 10.0,
        timezone: str = "UTC",
        log=print,
    ) -> ClassCourse:
        """Make the class folder ``root``: settings, the roster, every lab released."""
        root = root.resolve()
        if (root / CLASS_FILE).exists():
            raise ValueError(f"{root} is a class already (its {CLASS_FILE} is there)")
        if root.exists() and any(root.iterdir()):
            raise ValueError(f"{root} is not empty: a class needs a folder of its own")
        settings = ClassSettings(timezone=timezone, percent_per_day=percent_per_day)
        zone = settings.zone()
        for key, text in (due or {}).items():
            settings.due[layout.lab(key).name] = parse_due(text, zone)
        if roster is not None:
            read_roster(roster)  # refuse a bad roster before anything is written
        root.mkdir(parents=True, exist_ok=True)
        (root / "exchange").mkdir()
        if roster is not None:
            shutil.copyfile(roster, root / ROSTER_FILE)
            settings.roster = ROSTER_FILE
        write_settings(root, settings)
        (root / CONFIG_FILE).write_text(layout.nbgrader_config.read_text() + CONFIG_TAIL)
        course = WorkingCourse(root, root / CONFIG_FILE)
        for lab in layout.all_labs():
            course.add_master(lab, nbformat.read(layout.master(lab), as_version=4))
            course.generate(lab)
            log(f"released {lab.name} as assignment {lab.assignment}")
        made = cls(root)
        made.sync()
        return made

    # ------------------------------------------------------------------------ the course
    def working_course(self, overrides: Config | None = None) -> WorkingCourse:
        return WorkingCourse(self.root, self.root / CONFIG_FILE, overrides)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"

    def lab_folder(self, lab: Lab) -> Path:
        """Where ``mdplab grade`` keeps this lab's journal, grades.csv and feedback."""
        return self.root / "grading" / lab.assignment

    def labs(self) -> list[Lab]:
        """The class's labs, from its own ``source/`` folder: export and formgrader work on
        a class wherever it is, without the repository it came from."""
        found = []
        for folder in sorted((self.root / "source").glob("lab[0-9][0-9]")):
            for notebook in sorted(folder.glob("lab[0-9][0-9]_*.ipynb")):
                found.append(Lab(notebook.stem, notebook))
        return found

    def lab(self, key: str) -> Lab:
        """A lab of the class by ``lab01`` or ``lab01_dp_review``."""
        for lab in self.labs():
            if key in (lab.assignment, lab.name):
                return lab
        raise ValueError(f"no lab {key!r} in the class {self.root}")

    def due(self, lab: Lab) -> datetime | None:
        """The lab's due date in UTC, or None."""
        when = self.settings.due.get(lab.name)
        return when.astimezone(UTC) if when else None

    def set_due(self, lab: Lab, text: str) -> datetime:
        """Set a lab's due date (class.toml and the gradebook); return it in UTC."""
        self.settings.due[lab.name] = parse_due(text, self.settings.zone())
        write_settings(self.root, self.settings)
        self.sync()
        return self.settings.due[lab.name].astimezone(UTC)

    def canvas_column(self, lab: Lab, title: str) -> str:
        return self.settings.canvas_columns.get(lab.name, title)

    def sync(self) -> None:
        """Bring the gradebook up to date with class.toml and the roster."""
        warnings.filterwarnings("ignore", message="Object of type <Submitted")
        with Gradebook(self.db_url) as gradebook:
            for lab in self.labs():
                with contextlib.suppress(MissingEntry):
                    assignment = gradebook.find_assignment(lab.assignment)
                    due = self.due(lab)
                    assignment.duedate = due.replace(tzinfo=None) if due else None
            for member in self.roster:
                first, last = member.first_last
                gradebook.update_or_create_student(
                    member.student_id,
                    first_name=first,
                    last_name=last,
                    lms_user_id=member.lms_user_id,
                )
            gradebook.db.commit()

    def students_by_lms_id(self) -> dict[str, str]:
        """Canvas user id -> the student id the gradebook holds for it, read at once."""
        with Gradebook(self.db_url) as gradebook:
            return {s.lms_user_id: s.id for s in gradebook.students if s.lms_user_id}
