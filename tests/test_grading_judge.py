"""Repeated calls in one request (``RemoteFunction.repeat``, the agent's ``repeat`` op):
the same results and generator stream as single calls, failures with the index of the
call, the test cell's time limit over the whole batch, a kernel that dies mid-batch, and
replies that stay data. These start one real sandboxed kernel (seconds, not minutes)."""

from __future__ import annotations

import ast
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from mdplab.checks.common import HiddenCheckFailure, call_repeatedly
from mdplab.grading.agent import Opaque
from mdplab.grading.batched_loops import HELPER, batch_loops
from mdplab.grading.executor import _seed_font_cache
from mdplab.grading.judge import Judge, RemoteFunction, preload
from mdplab.grading.kernel import Kernel, KernelDied
from mdplab.grading.sandbox import Limits, probe

DEFINITIONS = """
import time
import numpy as np

def noisy(x, rng, scale=1.0):
    return x + scale * rng.normal() + rng.integers(0, 3)

def grows(items, rng):
    items.append(rng.random())  # changes its argument: the next call must not see it
    return len(items), np.asarray(items)

calls = [0]

def third_fails(rng):
    calls[0] += 1
    value = rng.random()
    if calls[0] == 3:
        raise ValueError("no third time")
    return value

def slow():
    time.sleep(0.2)
    return 1

class Liar:
    def __eq__(self, other):
        return True
    def __float__(self):
        return 42.0

def lies():
    return Liar()

def dies_third():
    calls[0] += 1
    if calls[0] == 3:
        import os
        os._exit(1)
    return calls[0]
"""


def _third_fails(rng, calls=[0]):  # noqa: B006 - the same counter as the kernel's
    calls[0] += 1
    value = rng.random()
    if calls[0] == 3:
        raise ValueError("no third time")
    return value


@pytest.fixture(scope="module")
def kernel():
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as folder:
        kernel = Kernel(probe(), Limits(cell_seconds=30), Path(folder))
        kernel.start()
        try:
            run = kernel.run_cell(DEFINITIONS, 20)
            assert run.status == "ok", run
            yield kernel
        finally:
            kernel.shutdown()


@pytest.fixture
def judge(kernel):
    if not kernel.alive():
        kernel.restart()
        assert kernel.run_cell(DEFINITIONS, 20).status == "ok"
    judge = Judge(kernel, 30)
    judge.deadline = time.monotonic() + 30
    yield judge
    judge._end_session()


def test_repeat_gives_the_results_and_stream_of_single_calls(judge):
    noisy = RemoteFunction("noisy", judge)
    single_rng, batch_rng = np.random.default_rng(7), np.random.default_rng(7)
    singles = [noisy(2.5, single_rng, scale=0.5) for _ in range(40)]
    batch = noisy.repeat(40, 2.5, batch_rng, scale=0.5)
    assert batch == singles
    assert batch_rng.bit_generator.state == single_rng.bit_generator.state
    local_rng = np.random.default_rng(7)
    local = [2.5 + 0.5 * local_rng.normal() + local_rng.integers(0, 3) for _ in range(40)]
    assert batch == local
    # call_repeatedly takes the batched path for a remote function and agrees with a loop.
    rng = np.random.default_rng(7)
    assert call_repeatedly(noisy, 40, 2.5, rng, scale=0.5, what="noisy") == local
    assert rng.bit_generator.state == local_rng.bit_generator.state
    assert noisy.repeat(0, 2.5, rng) == []


def test_each_call_of_a_batch_gets_fresh_arguments(judge):
    grows = RemoteFunction("grows", judge)
    single_rng, batch_rng = np.random.default_rng(1), np.random.default_rng(1)
    singles = [grows([0.5], single_rng) for _ in range(5)]
    batch = grows.repeat(5, [0.5], batch_rng)
    assert [n for n, _ in batch] == [n for n, _ in singles] == [2] * 5
    for (_, got), (_, want) in zip(batch, singles, strict=True):
        assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    assert batch_rng.bit_generator.state == single_rng.bit_generator.state


def test_a_failing_call_is_reported_with_its_index(judge, kernel):
    third_fails = RemoteFunction("third_fails", judge)
    kernel_rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="no third time") as raised:
        third_fails.repeat(10, kernel_rng)
    assert raised.value.repeat_index == 2
    # The generator is where the failing call found it: two draws along.
    after_two = np.random.default_rng(3)
    after_two.random(2)
    assert kernel_rng.bit_generator.state == after_two.bit_generator.state
    # The check's message names the call, the same in the grader and in a plain kernel.
    judge._end_session()
    assert kernel.run_cell("calls[0] = 0", 10).status == "ok"
    judge.deadline = time.monotonic() + 30
    messages = []
    for function in (third_fails, _third_fails):
        with pytest.raises(HiddenCheckFailure) as failed:
            call_repeatedly(function, 10, np.random.default_rng(3), what="third_fails(rng)")
        messages.append(str(failed.value))
    assert (
        messages[0]
        == messages[1]
        == ("third_fails(rng): the function raised ValueError: no third time (in call 3 of 10)")
    )


def test_the_time_limit_covers_the_whole_batch(judge):
    cell = (
        "from mdplab.checks.common import call_repeatedly\n"
        "call_repeatedly(slow, 100, what='slow()')\n"
    )
    started = time.monotonic()
    outputs, status = judge.run(cell, 1.5)
    assert status == "timeout", outputs
    assert time.monotonic() - started < 10
    # The kernel was stopped in the batch and still answers.
    judge.deadline = time.monotonic() + 30
    assert RemoteFunction("noisy", judge)(1.0, np.random.default_rng(0), scale=0.0) in {1, 2, 3}


def test_results_of_a_batch_are_data_not_objects(judge):
    results = RemoteFunction("lies", judge).repeat(3)
    assert all(isinstance(r, Opaque) for r in results)
    assert all(r != 42 and (r == 42) is False for r in results)
    with pytest.raises(TypeError):
        float(results[0])


def test_a_hostile_agent_cannot_end_the_batch_with_no_answer(judge, kernel):
    patch = (
        "import sys\n"
        "agent = sys.modules['mdplab_agent']\n"
        "agent.repeat = lambda name, count, args, kwargs, ns: {{'results': {}}}\n"
    )
    for results in ("[]", "[1.0] * (count + 1)"):
        judge._end_session()
        assert kernel.run_cell(patch.format(results), 10).status == "ok"
        judge.deadline = time.monotonic() + 30
        with pytest.raises(Exception, match="an unreadable reply"):
            RemoteFunction("slow", judge).repeat(4)
    judge._end_session()
    kernel.run_cell("del sys.modules['mdplab_agent']", 10)  # the next session reinstalls it


def test_a_kernel_that_dies_mid_batch_is_reported(judge, kernel):
    judge._end_session()
    assert kernel.run_cell("calls[0] = 0", 10).status == "ok"
    judge.deadline = time.monotonic() + 30
    with pytest.raises(KernelDied):
        RemoteFunction("dies_third", judge).repeat(10)
    assert not kernel.alive()


# ------------------------------------------------------------- loops in test cells, batched
def _rewritten(source: str) -> bool:
    return HELPER in ast.unparse(batch_loops(ast.parse(source)))


@pytest.mark.parametrize(
    "source",
    [
        "runs = [f(R, P, [1, 0], 0.5, 0, 13, rng) for _ in range(1000)]",
        "runs = np.array([f(x, rng, scale=-0.5) for k in range(n_runs)])",
        "def helper():\n    return [f(a, (b, 2 * c)) for _ in range(n + 1)]",
    ],
)
def test_loops_with_the_same_arguments_on_every_pass_are_batched(source):
    assert _rewritten(source)


@pytest.mark.parametrize(
    "source",
    [
        # a new generator on every pass: one batch would share one stream
        "runs = [f(R, np.random.default_rng(7)) for _ in range(3)]",
        "runs = [f(k, rng) for k in range(10)]",  # the loop variable is an argument
        "runs = [f(rng) for _ in range(10) if ok]",
        "runs = [f(rng) for _ in range(0, 10)]",
        "runs = [f(**options) for _ in range(10)]",
        "runs = [f(*values) for _ in range(10)]",
        "runs = [model.f(rng) for _ in range(10)]",  # an attribute may be a property
        "runs = [f(rng) for _ in items]",
        "runs = [f(rng) for _ in range(next(sizes))]",
        "range = my_range\nruns = [f(rng) for _ in range(10)]",
        "class Case:\n    runs = [f(rng) for _ in range(10)]",
    ],
)
def test_other_loops_are_left_as_they_are(source):
    assert not _rewritten(source)


def test_a_batched_loop_gives_what_the_loop_gives(judge, monkeypatch):
    batches = []
    original = RemoteFunction.repeat

    def counted(self, n, *args, **kwargs):
        batches.append((self.name, n))
        return original(self, n, *args, **kwargs)

    monkeypatch.setattr(RemoteFunction, "repeat", counted)
    local_rng = np.random.default_rng(11)
    expected = [1.5 + 2.0 * local_rng.normal() + local_rng.integers(0, 3) for _ in range(300)]
    cell = f"""
import numpy as np
rng = np.random.default_rng(11)
runs = [noisy(1.5, rng, scale=2.0) for _ in range(300)]
assert runs == {expected!r}, "batched results differ"
assert rng.bit_generator.state == {local_rng.bit_generator.state!r}, "stream not continued"
assert [noisy(1.5, rng) for _ in range(0)] == []
assert [noisy(1.5, rng) for _ in range(-2)] == []
assert [undefined_name(rng) for _ in range(0)] == []  # the loop never evaluates it
same = [len(grows([0.5], rng)[1]) for _ in range(3)]  # not a plain call: a loop
assert same == [2, 2, 2]
def local(x):
    return x + 1
assert [local(1) for _ in range(4)] == [2, 2, 2, 2]
"""
    outputs, status = judge.run(cell, 30)
    assert status == "passed", outputs
    assert batches == [("noisy", 300), ("noisy", 0)]  # range(-2): the loop, which is empty


def test_a_failure_inside_a_batched_loop_fails_the_cell_as_the_loop_would(judge, kernel):
    assert kernel.run_cell("calls[0] = 0", 10).status == "ok"
    # The cell imports numpy itself: a module the kernel names is never imported here.
    cell = (
        "import numpy as np\n"
        "rng = np.random.default_rng(3)\n"
        "v = [third_fails(rng) for _ in range(5)]"
    )
    outputs, status = judge.run(cell, 30)
    assert status == "failed"
    assert outputs[-1].ename == "ValueError" and "no third time" in outputs[-1].evalue


# ------------------------------------------------------------- preloading before the fork
def test_preload_imports_what_the_instructors_cells_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "mailbox", raising=False)
    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    sources = [
        "import mailbox\nprint('a statement that is not run')\nraise SystemExit",
        "from tabnanny import check as _check\nimport no_such_module_anywhere",
        "this is not python",
    ]
    preload(sources)
    assert "mailbox" in sys.modules and "tabnanny" in sys.modules


def test_each_box_gets_the_graders_font_list(tmp_path):
    import matplotlib

    folder = tmp_path / ".matplotlib"
    _seed_font_cache(folder)
    copied = sorted(p.name for p in folder.glob("fontlist-v*.json"))
    assert copied, "no font list copied"
    for name in copied:
        original = Path(matplotlib.get_cachedir()) / name
        assert (folder / name).read_bytes() == original.read_bytes()
