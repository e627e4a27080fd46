"""Running notebooks with nbclient, in a kernel of the current Python."""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from mdplab.course.kernel_client import WakefulKernelManager

__all__ = ["QUIET_KERNEL", "CellExecutionError", "execute_notebook"]

# ipykernel logs a warning about its TCP transport on every start; it says nothing about
# the notebook, so keep the kernel's own log to errors. Cell output is unaffected.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:"]


def execute_notebook(
    notebook: nbformat.NotebookNode,
    *,
    cwd: Path,
    timeout: int = 300,
    kernel_name: str = "python3",
    allow_errors: bool = False,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` in place, as if it sat in the folder ``cwd``; raise
    CellExecutionError on the first error unless ``allow_errors``.

    The kernel runs in a scratch folder laid out like ``cwd``'s parent: a folder named like
    ``cwd`` next to a link to the sibling ``data/``. A lab reads the shipped data as it does
    from a clone (``../data``), and what it writes (an exported policy, a downloaded trace)
    never lands in the repository.

    The client is :class:`~mdplab.course.kernel_client.WakefulKernelManager`'s, which does
    not sleep through a reply when a cell clears an Output widget (jupyter/nbclient#312),
    so a cell past ``timeout`` seconds really is stuck: CellTimeoutError is raised.

    Consecutive output on one stream is merged into one output, as the kernel happened to
    flush it.
    """
    with tempfile.TemporaryDirectory(prefix="mdplab-run-") as scratch:
        run = Path(scratch) / cwd.name
        run.mkdir()
        data = cwd.parent / "data"
        if data.is_dir():
            (Path(scratch) / "data").symlink_to(data.resolve(), target_is_directory=True)
        client = NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name=kernel_name,
            allow_errors=allow_errors,
            # Timestamps would make every rebuild a diff.
            record_timing=False,
            # The kernel flushes stdout on a timer, so under load one print may arrive as
            # two messages; merged, a cell's text is the same on every run.
            coalesce_streams=True,
            extra_arguments=QUIET_KERNEL,
            resources={"metadata": {"path": str(run)}},
            kernel_manager_class=WakefulKernelManager,
        )
        client.execute()
    return notebook
