"""Repeated calls in one request (``RemoteFunction.repeat``, the agent's ``repeat`` op):
the same results, generator stream and arguments as a loop of single calls, failures with
the index of the call, the test cell's time limit over the whole batch, a kernel that dies
mid-batch, and replies that stay data. These start one real sandboxed kernel (seconds, not
minutes)."""

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
    items.append(rng.random())  # changes its argument: the next call sees it, as in a loop
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


# The same definitions, compiled here as IPython compiles a notebook cell (which it strips
# of leading blank lines), so that the line numbers they raise from are the kernel's.
CELL = DEFINITIONS.lstrip("\n")
LOCAL: dict = {}
exec(compile(CELL, "/tmp/ipykernel_1/123.py", "exec"), LOCAL)
THIRD_FAILS_LINE = CELL.splitlines().index('        raise ValueError("no third time")') + 1


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


def test_the_calls_of_a_batch_share_their_arguments_as_a_loop_does(judge):
    """A loop passes the same objects to every call: what one call appends to a list, the
    next one sees, and the list is that long afterwards. A batch does the same (it used to
    give each call fresh copies, which no loop does)."""
    grows = RemoteFunction("grows", judge)
    single_rng, batch_rng, local_rng = (np.random.default_rng(1) for _ in range(3))
    single_items, batch_items, local_items = [0.5], [0.5], [0.5]
    singles = [grows(single_items, single_rng) for _ in range(5)]
    batch = grows.repeat(5, batch_items, batch_rng)
    local = [LOCAL["grows"](local_items, local_rng) for _ in range(5)]
    assert [n for n, _ in batch] == [n for n, _ in singles] == [n for n, _ in local]
    assert [n for n, _ in batch] == [2, 3, 4, 5, 6]
    for (_, got), (_, want) in zip(batch, local, strict=True):
        assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    assert batch_items == single_items == local_items and len(batch_items) == 6
    assert batch_rng.bit_generator.state == local_rng.bit_generator.state
    assert single_rng.bit_generator.state == local_rng.bit_generator.state
    # call_repeatedly agrees, batched or not.
    remote_items, plain_items = [0.5], [0.5]
    rng, plain_rng = np.random.default_rng(2), np.random.default_rng(2)
    remote = call_repeatedly(grows, 4, remote_items, rng, what="grows")
    plain = call_repeatedly(LOCAL["grows"], 4, plain_items, plain_rng, what="grows")
    assert [n for n, _ in remote] == [n for n, _ in plain] == [2, 3, 4, 5]
    assert remote_items == plain_items
    # A list the loop makes anew on every pass (a display) is fresh for every call.
    fresh = grows.repeat_with(3, ([0.5], np.random.default_rng(3)), {}, fresh=[0])
    assert [n for n, _ in fresh] == [2, 2, 2]


def test_a_failing_call_is_reported_with_its_index(judge, kernel):
    third_fails = RemoteFunction("third_fails", judge)
    kernel_rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="no third time") as raised:
        third_fails.repeat(10, kernel_rng)
    assert raised.value.repeat_index == 2
    # The generator is where the failing call left it, as after a loop that raised: the
    # failing call drew its number too (it used to be sent back as that call found it).
    after_three = np.random.default_rng(3)
    after_three.random(3)
    assert kernel_rng.bit_generator.state == after_three.bit_generator.state
    # The check's message names the function, the line and the call, the same in the
    # grader and in a plain kernel.
    judge._end_session()
    assert kernel.run_cell("calls[0] = 0", 10).status == "ok"
    judge.deadline = time.monotonic() + 30
    messages = []
    for function in (third_fails, LOCAL["third_fails"]):
        with pytest.raises(HiddenCheckFailure) as failed:
            call_repeatedly(function, 10, np.random.default_rng(3), what="third_fails(rng)")
        messages.append(str(failed.value))
    assert (
        messages[0]
        == messages[1]
        == (
            "third_fails(rng): your `third_fails` raised ValueError: no third time "
            f"(line {THIRD_FAILS_LINE} of your cell, in call 3 of 10)"
        )
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
        judge._session()  # the agent is installed, whichever test ran before
        judge._end_session()
        ran = kernel.run_cell(patch.format(results), 10)
        assert ran.status == "ok", ran
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
    original = RemoteFunction.repeat_with

    def counted(self, n, args, kwargs, *, fresh=()):
        batches.append((self.name, n))
        return original(self, n, args, kwargs, fresh=fresh)

    monkeypatch.setattr(RemoteFunction, "repeat_with", counted)
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
    assert outputs[-1].ename == "ValueError"
    assert outputs[-1].evalue == (
        f"your `third_fails` raised ValueError: no third time (line {THIRD_FAILS_LINE} of "
        "your cell)"
    )


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


def test_a_batched_loop_shares_names_and_renews_list_displays_as_the_loop_does(judge, kernel):
    """A function that changes its argument: a list display is a new list on every pass of
    the loop, a name is the same list on every pass, and the change travels back."""
    judge._end_session()
    source = "def appends(xs):\n    xs.append(1)\n    return len(xs)\n"
    assert kernel.run_cell(source, 10).status == "ok"
    cell = """
assert [appends([0]) for _ in range(5)] == [2, 2, 2, 2, 2]
shared = [0]
assert [appends(shared) for _ in range(3)] == [2, 3, 4]
assert shared == [0, 1, 1, 1], shared
"""
    outputs, status = judge.run(cell, 30)
    assert status == "passed", outputs
