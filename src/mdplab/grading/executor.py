"""nbgrader's execution step, replaced: the notebook runs in a sandboxed kernel, test cells
run in the grader's process (:mod:`mdplab.grading.judge`), and one failure costs one cell.

nbgrader's own ``Execute`` stops at a dead kernel, so ``os._exit`` or a loop that swallows
KeyboardInterrupt loses the whole notebook, earlier correct answers included. Here:

- a cell that errs is recorded and the run goes on, as in nbgrader;
- a cell that runs too long is interrupted; if it will not stop, the kernel is killed;
- after a kernel dies, a new one is started and the cells that had finished are run again
  (their outputs are kept from the first run), so later answers are still graded;
- when the notebook's own time runs out or the kernel cannot be restored, every test
  cell not yet run gets an error output saying why: nbgrader gives full marks to a test
  cell without an error, so a cell that never ran must never look like a pass.

It is enabled by the course's ``nbgrader_config.py`` through
``Autograde.autograde_preprocessors``; the per-cell story goes to ``report_file`` as JSON,
which :mod:`mdplab.grading.batch` reads to tell graded from partly graded.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, List, Unicode

from mdplab.grading.judge import Judge, _error, helper_definitions
from mdplab.grading.kernel import BOX_PREFIX, GraderFault, Kernel, KernelDied, box_parent
from mdplab.grading.sandbox import Limits, probe

SUPPORT_FILE_BYTES = 200 * 1024 * 1024
SKIPPED_NOTE = nbformat.v4.new_output(
    "stream",
    name="stdout",
    text="[grader: not run when grading; this read-only cell only illustrates, and nothing "
    "graded depends on it]\n",
)


@dataclass
class CellEvent:
    index: int
    grade_id: str
    kind: str  # test, answer, locked, other
    status: str  # ok, error, passed, failed, timeout, died, output-cap, not-run, skipped
    seconds: float
    message: str = ""
    note: str = ""  # why it was stopped, where more is known than the time (a fork bomb)


# The statuses of a cell the kernel could not finish: its outcome could not be judged.
UNJUDGED = frozenset({"timeout", "died", "output-cap", "not-run"})


@dataclass
class RunReport:
    cells: list[CellEvent] = field(default_factory=list)
    kernel_starts: int = 0
    calls: int = 0
    lost: str = ""  # why the rest of the notebook did not run, if it did not
    isolation: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[CellEvent]:
        return [c for c in self.cells if c.status in UNJUDGED]


class SandboxedExecute(NbGraderPreprocessor):
    """Run a submission safely; see the module docstring."""

    cell_timeout = Float(60.0, help="Seconds one cell (or one test cell's calls) may run.").tag(
        config=True
    )
    notebook_timeout = Float(600.0, help="Seconds the whole notebook may run.").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address space of each sandboxed process, MiB.").tag(
        config=True
    )
    output_limit_kb = Integer(1024, help="Output one cell may produce, KiB.").tag(config=True)
    process_limit = Integer(
        512, help="Processes and threads the kernel may run (RLIMIT_NPROC)."
    ).tag(config=True)
    report_file = Unicode("", help="Where to write the per-cell JSON report.").tag(config=True)
    skip_cells = List(
        Unicode(),
        help="Grade ids of read-only cells not to run: the lab marks them as illustrations "
        "that nothing graded depends on (taken from the instructor's master, never from a "
        "submission).",
    ).tag(config=True)

    def limits(self) -> Limits:
        return Limits(
            cell_seconds=self.cell_timeout,
            notebook_seconds=self.notebook_timeout,
            memory_bytes=self.memory_limit_mb * 1024 * 1024,
            output_bytes=self.output_limit_kb * 1024,
            processes=self.process_limit,
        )

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        limits = self.limits()
        isolation = probe()
        report = RunReport(isolation=[m.name for m in isolation.missing])
        with tempfile.TemporaryDirectory(prefix=BOX_PREFIX, dir=box_parent()) as folder:
            box = Path(folder)
            _copy_support_files(resources, box)
            _seed_font_cache(box / ".matplotlib")
            kernel = Kernel(isolation, limits, box)
            try:
                _Run(nb, kernel, limits, report, set(self.skip_cells)).all_cells()
            except GraderFault as fault:
                # nbgrader then records no grades, and the batch reports the submission
                # as failed with this line, rather than a zero the student did not earn.
                raise RuntimeError(f"grader error, not the submission's: {fault}") from None
            finally:
                report.kernel_starts = kernel.starts
                kernel.shutdown()
        if self.report_file:
            Path(self.report_file).write_text(json.dumps(asdict(report), indent=1))
        return nb, resources


class _Run:
    """The cell loop of one notebook."""

    def __init__(
        self,
        nb: NotebookNode,
        kernel: Kernel,
        limits: Limits,
        report: RunReport,
        skip: set[str] = frozenset(),
    ) -> None:
        self.nb, self.kernel, self.limits, self.report = nb, kernel, limits, report
        self.skip = skip
        self.judge = Judge(kernel, limits.cell_seconds)
        self.deadline = time.monotonic() + limits.notebook_seconds
        self.finished_sources: list[str] = []  # kernel cells to replay after a restart
        self.read_only_sources: list[str] = []  # released locked and test cells so far

    def all_cells(self) -> None:
        try:
            self.kernel.start()
        except KernelDied as died:
            # Nothing of the submission has run yet, so this is the grader's failure.
            raise GraderFault(str(died)) from None
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            kind = cell_kind(cell)
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            started = time.monotonic()
            status, message = self._one_cell(cell, kind)
            seconds = round(time.monotonic() - started, 3)
            note = self.kernel.stop_note if status == "timeout" else ""
            self.report.cells.append(
                CellEvent(index, grade_id, kind, status, seconds, message, note)
            )
        self.report.calls = self.judge.calls

    def _one_cell(self, cell: NotebookNode, kind: str) -> tuple[str, str]:
        if not self.report.lost and time.monotonic() > self.deadline:
            self.report.lost = (
                f"the notebook's time limit ({self.limits.notebook_seconds:g} s) was reached"
            )
        if self.report.lost:
            if kind == "test":
                cell.outputs = [_error("NotRun", f"not run: {self.report.lost}")]
            return "not-run", self.report.lost
        seconds = min(self.limits.cell_seconds, max(self.deadline - time.monotonic(), 0.1))
        if kind == "locked" and cell.metadata["nbgrader"].get("grade_id") in self.skip:
            cell.outputs = [copy.deepcopy(SKIPPED_NOTE)]  # outputs may be edited later
            return "skipped", ""
        if kind == "test":
            helpers = helper_definitions(self.read_only_sources)
            outputs, status = self.judge.run(cell.source, seconds, helpers)
            self.read_only_sources.append(cell.source)
            cell.outputs = outputs
            message = outputs[-1].evalue if status != "passed" else ""
            if not self.kernel.alive():
                self._restore()
            return status, message
        if kind == "locked":
            self.read_only_sources.append(cell.source)
        run = self.kernel.run_cell(cell.source, seconds)
        cell.outputs = run.outputs
        cell.execution_count = run.execution_count
        if run.status in {"ok", "error"}:
            self.finished_sources.append(cell.source)
        else:
            explanation = {
                "timeout": f"this cell was stopped after {seconds:g} s"
                + (f" ({self.kernel.stop_note})" if self.kernel.stop_note else ""),
                "died": "the kernel died while running this cell; it was restarted",
                "output-cap": run.message,
            }[run.status]
            cell.outputs.append(_error("GraderStopped", explanation))
            if not self.kernel.alive():
                self._restore()
        return run.status, run.message

    def _restore(self) -> None:
        """A new kernel, brought to where the old one was by replaying finished cells."""
        try:
            self.kernel.restart()
        except KernelDied as died:
            self.report.lost = f"the kernel could not be restarted: {died}"
            return
        for source in self.finished_sources:
            seconds = min(self.limits.cell_seconds, self.deadline - time.monotonic())
            if seconds <= 0:
                self.report.lost = "the notebook's time limit was reached while restarting"
                return
            run = self.kernel.run_cell(source, seconds)
            if run.status not in {"ok", "error"}:
                self.report.lost = "the kernel died again while earlier cells were replayed"
                return


def cell_kind(cell: NotebookNode) -> str:
    """test (a graded cell without an answer), answer, locked or other."""
    if utils.is_grade(cell) and not utils.is_solution(cell):
        return "test"
    if utils.is_solution(cell):
        return "answer"
    if utils.is_locked(cell):
        return "locked"
    return "other"


def _copy_support_files(resources: dict, box: Path) -> None:
    """Data files that nbgrader put beside the notebook, so the lab can read them."""
    folder = Path(resources.get("metadata", {}).get("path") or ".")
    budget = SUPPORT_FILE_BYTES
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb":
            continue
        size = path.stat().st_size
        if size > budget:
            continue
        budget -= size
        target = box / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _seed_font_cache(folder: Path) -> None:
    """Give the kernel matplotlib's font list, as the grader's own matplotlib built it.

    The kernel's matplotlib folder is new for each submission, and without the list the
    kernel's first ``import matplotlib`` scans every font on the machine again (a third of
    a second a notebook). The sandbox shows the same system fonts; should a listed font be
    missing there, matplotlib notices and rebuilds the list, as it would have anyway."""
    try:
        import matplotlib
        import matplotlib.font_manager  # builds the grader's list if it is missing
    except ImportError:
        return
    for path in Path(matplotlib.get_cachedir()).glob("fontlist-v*.json"):
        folder.mkdir(exist_ok=True)
        shutil.copyfile(path, folder / path.name)
