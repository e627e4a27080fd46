"""Running notebooks with nbclient, in a kernel of the current Python."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

__all__ = ["QUIET_KERNEL", "CellExecutionError", "execute_notebook"]

# ipykernel logs a warning about its TCP transport on every start; it says nothing about
# the notebook, so keep the kernel's own log to errors. Cell output is unaffected.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:"]


def execute_notebook(
    notebook: nbformat.NotebookNode,
    *,
    cwd: Path,
    timeout: int = 600,
    kernel_name: str = "python3",
    allow_errors: bool = False,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` in place, in ``cwd``; raise CellExecutionError on the first error
    unless ``allow_errors``. Figures render inline with a fixed backend and DPI."""
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=allow_errors,
        # Timestamps would make every rebuild a diff.
        record_timing=False,
        extra_arguments=QUIET_KERNEL,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return notebook
