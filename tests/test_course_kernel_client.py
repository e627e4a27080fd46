"""The kernel client that does not sleep through a reply: it polls in slices, keeps the
channel's contract (a message, or Empty once the timeout has passed), and it is the one
the build and nbgrader use."""

from __future__ import annotations

import asyncio
from queue import Empty

import pytest
from course_helpers import LAYOUT
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets.config.loader import PyFileConfigLoader

from mdplab.course import kernel_client
from mdplab.course.kernel_client import (
    POLL_SLICE,
    WakefulChannel,
    WakefulKernelClient,
    WakefulKernelManager,
)


class Socket:
    """Stands in for the ZeroMQ poll: Empty for the first ``misses`` polls, then a message."""

    def __init__(self, misses: int) -> None:
        self.misses = misses
        self.timeouts: list[float | None] = []

    async def get_msg(self, channel, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.misses:
            raise Empty
        return {"msg_type": "execute_reply"}


@pytest.fixture
def socket(monkeypatch):
    def install(misses: int, clock: list[float] | None = None) -> Socket:
        fake = Socket(misses)

        async def poll(channel, timeout=None):
            if clock is not None:  # each poll that finds nothing lasts its whole slice
                clock[0] += timeout or 0.0
            return await fake.get_msg(channel, timeout)

        monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", poll)
        if clock is not None:
            monkeypatch.setattr(kernel_client, "monotonic", lambda: clock[0])
        return fake

    return install


def _get(timeout):
    channel = WakefulChannel.__new__(WakefulChannel)  # no socket: the poll is stubbed
    return asyncio.run(channel.get_msg(timeout=timeout))


def test_a_reply_a_missed_poll_slept_through_is_read_by_the_next_slice(socket):
    fake = socket(misses=3)
    assert _get(timeout=None) == {"msg_type": "execute_reply"}
    assert fake.timeouts == [POLL_SLICE] * 4


def test_a_finite_timeout_is_cut_into_slices_and_kept(socket):
    clock = [100.0]
    fake = socket(misses=10**6, clock=clock)
    with pytest.raises(Empty):
        _get(timeout=1.1)
    assert all(t <= POLL_SLICE for t in fake.timeouts)
    assert sum(fake.timeouts) == pytest.approx(1.1)
    assert clock[0] == pytest.approx(101.1)


def test_a_zero_timeout_polls_once(socket):
    fake = socket(misses=10**6, clock=[0.0])
    with pytest.raises(Empty):
        _get(timeout=0)
    assert fake.timeouts == [0.0]


def test_the_manager_hands_out_the_wakeful_client():
    client = WakefulKernelManager().client()
    assert isinstance(client, WakefulKernelClient)
    assert isinstance(client.shell_channel, WakefulChannel)
    assert isinstance(client.iopub_channel, WakefulChannel)
    client.stop_channels()


def test_nbgrader_runs_cells_with_the_wakeful_client():
    config_file = LAYOUT.nbgrader_config
    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    assert config.Execute.kernel_manager_class == (
        f"{WakefulKernelManager.__module__}.{WakefulKernelManager.__name__}"
    )
