"""The grading worker: whatever a file holds, it fails that file alone, with a message,
under a memory limit of the worker's own (issue 11, findings 3 and 6)."""

from __future__ import annotations

import json
import multiprocessing
import resource

import pytest
from course_helpers import LAYOUT

from mdplab.grading import batch
from mdplab.grading.collect import Placed

LAB = LAYOUT.lab("lab00")


class _NoCourse:
    """A course that must never be reached: reading fails first."""

    def submit(self, *args, **kwargs):
        raise AssertionError("a file that cannot be read must not be submitted")


@pytest.mark.parametrize(
    ("raised", "message"),
    [
        (RecursionError("maximum recursion depth exceeded"), "nested too deeply to read"),
        (MemoryError(), "more memory than the grader allows"),
        (KeyError("cells"), "the file could not be read (KeyError: 'cells')"),
    ],
)
def test_any_exception_while_reading_fails_the_file_with_a_message(
    tmp_path, monkeypatch, raised, message
):
    def read(path):
        raise raised

    monkeypatch.setattr(batch, "read_submission", read)
    monkeypatch.setattr(batch, "_limit_memory", lambda headroom: None)
    item = Placed(tmp_path / "x.ipynb", "mallory", LAB)
    batch._worker(_NoCourse(), LAB, None, item, tmp_path)
    record = json.loads((tmp_path / "mallory.result.json").read_text())
    assert message in record["unreadable"]


def _allocate(size: int, queue) -> None:
    batch._limit_memory(batch.WORKER_MEMORY_HEADROOM)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    try:
        block = bytearray(size)
        queue.put(("allocated", soft, len(block)))
    except MemoryError:
        queue.put(("MemoryError", soft, 0))


def test_the_worker_cannot_grow_past_its_headroom():
    """A forged reply that decodes into gigabytes raises MemoryError in the worker instead
    of growing the grader until the machine swaps; a modest allocation still works."""
    context = multiprocessing.get_context("fork")
    results = []
    for size in (64 * 1024**2, batch.WORKER_MEMORY_HEADROOM + 1024**3):
        queue = context.Queue()
        process = context.Process(target=_allocate, args=(size, queue))
        process.start()
        results.append(queue.get(timeout=60))
        process.join(timeout=60)
    (small, soft, _), (large, _, _) = results
    assert small == "allocated" and soft != resource.RLIM_INFINITY
    assert large == "MemoryError"


def test_the_limit_is_soft_so_kernels_may_set_their_own():
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child(queue) -> None:
        before = resource.getrlimit(resource.RLIMIT_AS)[1]
        batch._limit_memory(1024**3)
        queue.put((before, resource.getrlimit(resource.RLIMIT_AS)[1]))

    process = context.Process(target=child, args=(queue,))
    process.start()
    before, after = queue.get(timeout=60)
    process.join(timeout=60)
    assert before == after  # the hard limit is untouched
