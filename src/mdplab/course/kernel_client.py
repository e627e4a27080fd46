"""A kernel client for nbclient that does not sleep through a cell's reply.

nbclient waits for a cell's ``execute_reply`` with one poll of the shell socket that lasts
the whole cell timeout. A cell that clears an ipywidgets ``Output`` widget makes nbclient
send comm messages on that same socket while the poll waits (its stand-in for the widget
syncs the outputs back to the kernel). ZeroMQ reports readiness through an edge-triggered
file descriptor, and such a send can take the edge of a reply that has just arrived: the
poll then wakes only when its timeout ends, and the cell, finished long before, seems to
hang (jupyter/nbclient#312). Measured here: cells of 0.3 s that clear an Output widget 60
times took exactly the 8 s timeout, in one run of 6 such cells out of two; lab04's
explorer took 300 s in CI.

:class:`WakefulKernelManager` hands nbclient a client whose channels poll in slices of
:data:`POLL_SLICE` seconds. Each new poll reads the socket's state before it waits, so a
lost edge costs at most one slice (with 1 s slices, the same cells took at most 1.0 s).
For nbgrader, whose ``Execute`` preprocessor is an nbclient, the course configuration sets
``c.Execute.kernel_manager_class`` to it.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = ["POLL_SLICE", "WakefulKernelClient", "WakefulKernelManager"]

POLL_SLICE = 0.25


class WakefulChannel(AsyncZMQSocketChannel):
    """A channel whose ``get_msg`` waits in slices; same contract: a message, or Empty once
    ``timeout`` seconds have passed (never, if it is None)."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await super().get_msg(timeout=min(POLL_SLICE, left))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise


class WakefulKernelClient(AsyncKernelClient):
    shell_channel_class = Type(WakefulChannel)  # type: ignore[arg-type]
    iopub_channel_class = Type(WakefulChannel)  # type: ignore[arg-type]


class WakefulKernelManager(AsyncKernelManager):
    client_class = DottedObjectName("mdplab.course.kernel_client.WakefulKernelClient")
    client_factory = Type(WakefulKernelClient, klass=AsyncKernelClient)
