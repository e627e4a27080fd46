"""Running notebooks with nbclient, in a kernel of the current Python."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

__all__ = ["CellExecutionError", "execute_notebook"]


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
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return notebook
