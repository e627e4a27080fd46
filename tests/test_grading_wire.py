"""The wire between the student's kernel and the grader carries data that student code may
have written: student code can find the agent's socket and send any reply it likes.

- Reading a reply is bounded: its size (``kernel.MAX_REPLY_BYTES``), the number of values
  it holds (``agent.MAX_REPLY_ITEMS``), its nesting, and work linear in its size (a set of
  ints that share a hash would take quadratic time to build).
- Decoding never raises anything but an ``Exception``, and nothing a reply names is
  imported or built beyond plain numbers, numpy's bit generators and containers: a module
  becomes a name, an unknown or malformed value an :class:`~mdplab.grading.agent.Opaque`.
- What student code prints while the grader calls it reaches neither the graded notebook
  nor the feedback page (the hidden checks' inputs would be shown to the student).

The decoder's tests run in this process; the hostile replies go through a real sandboxed
kernel (seconds); the output test grades a notebook with ``mdplab grade`` (slow).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import re
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from course_helpers import LAYOUT, answered
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mdplab.grading import agent, judge, kernel
from mdplab.grading.agent import Opaque, decode, decode_many, encode
from mdplab.grading.judge import Judge, RemoteFunction
from mdplab.grading.kernel import GraderFault, Kernel
from mdplab.grading.sandbox import Limits, probe

HASH_MODULUS = 2**61 - 1  # ints equal modulo this share a hash
TAGS = ["$int", "$float", "$list", "$tuple", "$set", "$dict", "$range", "$nd", "$ndlist"]
TAGS += ["$npscalar", "$rng", "$opaque", "$frozenset", "$fraction", "$decimal", "$complex"]
TAGS += ["$bytes", "$bytearray", "$array", "$memoryview", "$masked", "$ref"]
FIELDS = ["shape", "data", "items", "state", "repr", "id", "kind", "default", "mask", "fill"]
FIELDS += ["readonly", "why"]


def _wire(value: Any) -> Any:
    """``value`` as the grader reads it: encoded, sent as JSON bytes, parsed, decoded."""
    payload = bytearray(json.dumps({"result": encode(value)}, allow_nan=False).encode())
    return decode(kernel._parse_reply(payload)["result"])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            type(a) is type(b)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------------------- hashes
def test_a_set_of_colliding_ints_is_read_in_linear_time():
    """400,000 distinct ints with one hash: building the set would compare each with all
    the others (the grader ran into its hard limit). Counted in linear time, refused."""
    colliding = [1 + k * HASH_MODULUS for k in range(400_000)]
    assert len({hash(n) for n in colliding[:1000]}) == 1
    for tagged in ({"$set": colliding}, {"$dict": [[n, 0] for n in colliding]}):
        payload = bytearray(json.dumps({"result": tagged}).encode())
        started = time.perf_counter()
        value = decode(kernel._parse_reply(payload)["result"])
        assert time.perf_counter() - started < 2.0
        assert isinstance(value, Opaque) and "same hash" in value.text
    ordinary = set(range(400_000))
    started = time.perf_counter()
    assert _wire(ordinary) == ordinary
    assert time.perf_counter() - started < 2.0
    assert _wire({-1, -2, 5}) == {-1, -2, 5}  # -1 and -2 share a hash: a few may
    assert _wire({(1, 2): "a", -1: "b", -2: "c"}) == {(1, 2): "a", -1: "b", -2: "c"}


# ---------------------------------------------------------------------------- types
@pytest.mark.parametrize(
    "dtype",
    ["|O8", "O", "<U4", "|S4", "|V8", "[('a', '<f8')]", "(2,)<f8", "<M8[s]", "<m8", "<i3", "f"],
)
def test_arrays_are_of_plain_numbers_only(dtype):
    for tagged in (
        {"$nd": dtype, "shape": [1], "data": "AAAAAAAAAAA="},
        {"$npscalar": dtype, "data": "AAAAAAAAAAA="},
    ):
        assert isinstance(decode(tagged), Opaque), tagged


@pytest.mark.parametrize(
    "shape",
    [[2], [3], [-1], [1, 1, -1], [True], [1.0], "1", [1] * 40, [0, 2**40], None],
)
def test_an_array_whose_shape_does_not_fit_its_data_is_refused(shape):
    assert isinstance(decode({"$nd": "<f8", "shape": shape, "data": "AAAAAAAAAAA="}), Opaque)


def test_the_numbers_that_fit_their_shape_are_read():
    value = np.arange(6, dtype=">i2").reshape(2, 3)
    assert _same(_wire(value), value)
    assert _same(_wire(np.zeros((0, 5))), np.zeros((0, 5)))
    assert _same(_wire(np.complex64(1 + 2j)), np.complex64(1 + 2j))


@pytest.mark.parametrize("name", ["RandomState", "Generator", "BitGenerator", "__class__", 7, None])
def test_only_numpys_bit_generators_are_built(name):
    state = np.random.PCG64(1).state
    assert isinstance(decode({"$rng": name, "state": encode(state)}), Opaque)


def test_a_generator_crosses_with_its_state():
    for kind in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
        rng = np.random.Generator(getattr(np.random, kind)(5))
        rng.random(3)
        copy = _wire(rng)
        assert type(copy.bit_generator) is type(rng.bit_generator)
        assert np.array_equal(copy.random(5), rng.random(5))
    # A state numpy refuses (here another bit generator's) is no generator.
    state = encode(np.random.MT19937(1).state)
    assert isinstance(decode({"$rng": "PCG64", "state": state}), Opaque)


def test_huge_ranges_ints_and_texts_stay_descriptions():
    assert isinstance(decode({"$range": [0, 10**30]}), Opaque)
    assert isinstance(decode({"$range": [0, agent.MAX_ITEMS + 1]}), Opaque)
    assert decode({"$range": [2, 9, 3]}) == range(2, 9, 3)
    assert isinstance(decode({"$range": [True]}), Opaque)
    assert isinstance(decode({"$int": "9" * (agent.MAX_INT_DIGITS + 2)}), Opaque)
    assert isinstance(decode({"$int": 12}), Opaque)
    assert _wire(-(10**200)) == -(10**200)
    # The kernel side too: a number past Python's own text limit cannot break the reply.
    assert isinstance(_wire(10**5000), Opaque)
    long = decode({"$opaque": "x" * 10_000, "repr": "y" * 10_000})
    assert len(long.type_name) == len(long.text) == agent.MAX_TEXT


@pytest.mark.parametrize(
    "tagged",
    [
        {"$list": "abc"},
        {"$tuple": {"a": 1}},
        {"$set": [[1, 2]]},  # an unhashable item
        {"$set": 5},
        {"$dict": [[1, 2, 3]]},
        {"$dict": [[{"$list": [1]}, 2]]},
        {"$dict": "ab"},
        {"$float": 1.5},
        {"$float": "not a number"},
        {"$nd": "<f8", "shape": [1], "data": "not base64!"},
        {"$nd": "<f8", "shape": [1], "data": 12},
        {"$ndlist": [2], "items": [1]},
        {"$ndlist": [2], "items": "ab"},
        {"$npscalar": "<f8", "data": "AAAA"},
        {"$rng": "PCG64", "state": [1, 2]},
        {"$rng": "PCG64", "state": {"state": "x"}},
        {"$unknown": 1},
        {},
    ],
)
def test_a_malformed_body_is_a_description_not_an_exception(tagged):
    assert isinstance(decode(tagged), Opaque)


def test_a_reply_has_a_budget_of_items(monkeypatch):
    monkeypatch.setattr(agent, "MAX_REPLY_ITEMS", 1000)
    assert len(decode({"$list": [0] * 900})) == 900
    assert isinstance(decode({"$list": [0] * 1001}), Opaque)
    assert isinstance(decode([[0] * 600, [0] * 600]), Opaque)
    array = encode(np.zeros(2000))  # array elements count too
    assert isinstance(decode(array), Opaque)
    # One batch of results is one reply, with one budget.
    batch = decode_many([{"$list": [0] * 600}, {"$list": [0] * 600}])
    assert all(isinstance(result, Opaque) for result in batch)


# ---------------------------------------------------------------------------- properties
plain = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.tuples(inner, inner),
    max_leaves=6,
)
arrays = hnp.arrays(
    st.sampled_from(["<f8", "<i4", "|b1", "<c16", ">u2", "<f4"]),
    hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)
values = st.recursive(
    plain | arrays,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(hashable, inner, max_size=4)
        | st.sets(hashable, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_an_ordinary_value_crosses_unchanged(value):
    back = _wire(value)
    if isinstance(value, set):
        assert back == value
    else:
        assert _same(back, value), (value, back)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        # Tagged objects, whose bodies are arbitrary: tags are rare among random keys.
        | st.builds(
            lambda tag, body, rest: {tag: body, **rest},
            st.sampled_from(TAGS),
            inner,
            st.dictionaries(
                st.sampled_from(FIELDS),
                inner,
                max_size=3,
            ),
        )
    ),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_decoding_any_json_raises_nothing_but_an_exception(data):
    try:
        value = decode(json.loads(json.dumps(data)))
    except Exception:  # allowed by the contract; a BaseException fails the test
        return
    assert not isinstance(value, type(json))  # never a module


# ---------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "unreadable"),
        (b'{"result": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "unreadable"),
        (b"\xff\xfe not utf-8", "unreadable"),
        (b'{"result": 1' + b"0" * 5000 + b"}", "unreadable"),
        (b"[1, 2]", "unreadable"),
        (b"not json", "unreadable"),
        (b'{"result": [' + b"{}," * (agent.MAX_REPLY_ITEMS // 2) + b"{}]}", "values"),
    ],
)
def test_a_reply_the_grader_will_not_read_is_refused(payload, why):
    with pytest.raises(kernel._Refused, match=why):
        kernel._parse_reply(bytearray(payload))


def test_the_reply_limit_covers_the_largest_real_answer():
    """lab06's transition counts (S x A x S numbers) are the largest answer: as an array,
    as nested lists of floats, and a batch of repeated calls each fit many times over."""
    counts = np.random.default_rng(0).integers(0, 50, (128, 4, 128)).astype(float)
    for shape in (counts, counts.tolist()):
        size = len(json.dumps({"result": encode(shape)}))
        assert 10 * size < kernel.MAX_REPLY_BYTES
    assert agent.REPEAT_BYTES + len(json.dumps(encode(counts))) < kernel.MAX_REPLY_BYTES


# ---------------------------------------------------------------------------- the judge
class _Session:
    """A stand-in for a kernel session that answers from a function."""

    def __init__(self, replies):
        self.replies, self.closed = replies, False

    def request(self, op: str, seconds: float, **fields: Any) -> dict:
        return self.replies(op, fields)

    def close(self) -> None:
        self.closed = True


class _Kernel:
    def __init__(self, replies):
        self.replies, self.stop_note = replies, ""

    def session(self) -> _Session:
        return _Session(self.replies)

    def alive(self) -> bool:
        return True


def _judge(replies) -> Judge:
    judge = Judge(_Kernel(replies), 10)  # type: ignore[arg-type]
    judge.deadline = time.monotonic() + 10
    return judge


def test_a_module_named_by_the_kernel_is_never_imported(monkeypatch):
    """A reply of kind ``module`` once made the grader import the student's choice
    (``unittest.__main__`` raised SystemExit there and failed a blank notebook)."""

    def no_import(name: str, *args: Any) -> None:
        pytest.fail(f"the grader imported {name!r} on the kernel's word")

    monkeypatch.setattr(importlib, "import_module", no_import)
    hostile = _judge(lambda op, fields: {"kind": "module", "module": "unittest.__main__"})
    namespace: dict[str, Any] = {}
    hostile.bind(["np", "discounted_cost"], namespace)
    assert all(isinstance(value, Opaque) for value in namespace.values())
    assert namespace["np"].text == "unittest.__main__"
    outputs, status = hostile.run("assert np.allclose(1, 1)", 10)
    assert status == "failed" and outputs[-1].ename == "AttributeError"


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "GeneratorExit()"])
def test_a_test_cell_that_raises_a_base_exception_fails_and_the_grader_goes_on(raised):
    judge_ = _judge(lambda op, fields: {"kind": "missing"})
    outputs, status = judge_.run(f"raise {raised}", 10)
    assert status == "failed"
    assert outputs[-1].ename == raised.split("(")[0]


def test_the_graders_own_fault_still_stops_the_submission():
    def fault(op: str, fields: dict) -> dict:
        raise GraderFault("no socket")

    with pytest.raises(GraderFault):
        _judge(fault).run("x", 10)


def test_generator_states_from_a_reply_are_data():
    """A generator's new state comes back as the argument's new value (the reply's
    ``changed``); what is not a state numpy takes changes nothing."""
    rng = np.random.default_rng(4)
    before = rng.bit_generator.state
    junk = [
        {"$rng": "PCG64", "state": 5},
        {"$rng": "MT19937", "state": encode(np.random.MT19937(1).state)},  # another kind
        {"$dict": [["bit_generator", "MT19937"]]},
        {"$list": [1, 2]},
        "PCG64",
        {"$dict": [["bit_generator", "PCG64"], ["state", {"$dict": [["state", "x"]]}]]},
        {"$rng": "PCG64", "state": {"$dict": [["bit_generator", "PCG64"], ["state", 1]]}},
    ]
    for state in junk:
        judge._settle("f", (rng,), {}, {"changed": [[0, state]]}, [])
        assert rng.bit_generator.state == before
    judge._settle("f", (rng,), {}, {"changed": "not a list"}, [])
    assert rng.bit_generator.state == before
    moved = np.random.default_rng(4)
    moved.random(3)
    judge._settle("f", (), {"rng": rng}, {"changed": [["rng", encode(moved)]]}, [])
    assert rng.bit_generator.state == moved.bit_generator.state


def test_an_error_from_the_kernel_is_bounded():
    error = judge._exception_from({"type": "x" * 1000, "message": "m" * 1_000_000})
    assert len(str(error)) <= 2000 and type(error).__name__ == "RemoteError"
    assert isinstance(judge._exception_from("not a dict"), judge.RemoteError)
    assert not isinstance(judge._exception_from({"type": "SystemExit"}), SystemExit)


# ---------------------------------------------------------------------------- a real kernel
DEFINITIONS = """
import gc, socket, struct, sys

def plain(x):
    return x + 1

def _peer(o):
    try:
        return str(o.getpeername())
    except OSError:
        return ""

def forge(header, body=b""):
    # What a hostile function can do: find the agent's socket and write its own reply.
    conn = [o for o in gc.get_objects()
            if isinstance(o, socket.socket) and o.fileno() >= 0 and "rpc-" in _peer(o)]
    conn[0].sendall(struct.pack(">Q", header) + body)
    return 0

def forge_nested():
    body = b"[" * 100_000 + b"]" * 100_000
    return forge(len(body), body)

def forge_huge():
    return forge(48 * 1024 * 1024)

agent = sys.modules.get("mdplab_agent")
"""
HOSTILE_CALL = """
import sys
agent = sys.modules["mdplab_agent"]
_real_call = agent.call
def call(name, args, kwargs, namespace):
    if name == "colliding":
        return {{"result": {{"$set": [1 + k * (2**61 - 1) for k in range(400_000)]}}}}
    if name == "tiny_containers":
        return {{"result": {{"$list": [{{}}] * {count}}}}}
    return _real_call(name, args, kwargs, namespace)
agent.call = call
"""


@pytest.fixture(scope="module")
def live():
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as folder:
        box = Kernel(probe(), Limits(cell_seconds=60), Path(folder))
        box.start()
        try:
            assert box.run_cell(DEFINITIONS, 30).status == "ok"
            yield box
        finally:
            box.shutdown()


def _live_judge(box: Kernel) -> Judge:
    if not box.alive():
        box.restart()
        assert box.run_cell(DEFINITIONS, 30).status == "ok"
    live_judge = Judge(box, 60)
    live_judge.deadline = time.monotonic() + 60
    return live_judge


def _install_hostile_call(box: Kernel) -> None:
    _live_judge(box).bind(["plain"], {})  # a session installs the agent in the kernel
    code = HOSTILE_CALL.format(count=agent.MAX_REPLY_ITEMS + 1)
    assert box.run_cell(code, 30).status == "ok"


def test_a_forged_reply_larger_than_any_answer_is_refused_unread(live):
    grader = _live_judge(live)
    started = time.monotonic()
    with pytest.raises(Exception, match="larger than any answer"):
        RemoteFunction("forge_huge", grader)()
    assert time.monotonic() - started < 15
    # The session was ended with it; the next call gets a fresh one, and its own answer.
    assert RemoteFunction("plain", grader)(1) == 2
    grader._end_session()


def test_a_forged_reply_nested_too_deeply_is_refused(live):
    grader = _live_judge(live)
    with pytest.raises(Exception, match="unreadable"):
        RemoteFunction("forge_nested", grader)()
    assert RemoteFunction("plain", grader)(2) == 3  # not the agent's stale reply
    grader._end_session()


def test_hostile_replies_cost_little_time_and_memory(live):
    _install_hostile_call(live)
    grader = _live_judge(live)
    started = time.monotonic()
    value = RemoteFunction("colliding", grader)()
    assert isinstance(value, Opaque) and "same hash" in value.text
    assert time.monotonic() - started < 10  # the kernel builds and encodes it, too
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match="values"):
            RemoteFunction("tiny_containers", grader)()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Parsed, its millions of empty dicts would have taken hundreds of MB.
    assert peak < 100 * 1024 * 1024
    grader._end_session()
    assert live.run_cell("del sys.modules['mdplab_agent']", 10).status == "ok"


# ---------------------------------------------------------------------------- output
LAB = LAYOUT.lab("lab00")
MARK = "LEAK"
# discounted_cost prints its arguments every way the issue names; none of it may show.
LEAKY = r"""
import io, logging, os, sys, threading, time
M = "LE" + "AK"  # the marker is never in the source, which a traceback would show
logging.basicConfig(level=logging.INFO, format=M + "-logging %(message)s", force=True)
_saved = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
_fd1 = io.open(1, "w", closefd=False)

def _later(text):
    time.sleep(1.5)
    print(f"{M}-thread", text)
    print(f"{M}-threaderr", text, file=sys.stderr)

def discounted_cost(costs, beta):
    text = f"{[float(c) for c in costs]!r} beta={beta!r}"
    channels = [
        lambda: print(f"{M}-print", text),
        lambda: logging.info(text),
        lambda: print(f"{M}-savedout", text, file=_saved[0]),
        lambda: print(f"{M}-savederr", text, file=_saved[1]),
        lambda: print(f"{M}-dunderout", text, file=_saved[2]),
        lambda: print(f"{M}-dundererr", text, file=_saved[3]),
        lambda: print(f"{M}-sysdunderout", text, file=sys.__stdout__),
        lambda: os.write(1, f"{M}-fd1 {text}\n".encode()),
        lambda: os.write(2, f"{M}-fd2 {text}\n".encode()),
        lambda: print(f"{M}-ownfd1", text, file=_fd1),
        lambda: threading.Thread(target=_later, args=(text,), daemon=True).start(),
    ]
    for channel in channels:
        try:
            channel()
        except Exception:
            pass
    total = 0.0
    for c in reversed([float(c) for c in costs]):
        total = c + beta * total
    return total
"""
# The next cell runs while the threads print, flushes every buffer the function wrote to
# (text left there came out here, in this cell's output, before), and prints on its own:
# that much must show, so the test can see output at all.
LATER = r"""
time.sleep(4)
for stream in (sys.__stdout__, sys.__stderr__, _fd1, *_saved):
    stream.flush()
os.write(1, (M + "-own-fd1\n").encode())
print(M + "-own-dunder", file=sys.__stdout__, flush=True)
time.sleep(1)

def periods_needed(c_max, beta, tolerance):
    periods, bound = 0, c_max / (1.0 - beta)
    while bound >= tolerance:
        periods += 1
        bound *= beta
    return periods
"""


@pytest.mark.slow
@pytest.mark.xdist_group("nbgrader")
def test_what_a_function_prints_under_the_hidden_checks_is_not_shown(tmp_path):
    from mdplab.cli import main
    from mdplab.course.damage import damaged_file

    folder = tmp_path / "in"
    folder.mkdir()
    notebook = answered(LAB, {"discounted_cost": LEAKY, "periods_needed": LATER})
    (folder / f"leaky_1001_5001_{LAB.notebook}").write_bytes(damaged_file(notebook, []))
    out = tmp_path / "out"
    main(["grade", "lab00", str(folder), "--out", str(out), "--jobs", "1", "--cell-timeout", "60"])
    rows = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert rows["leaky"]["status"] == "graded" and float(rows["leaky"]["score"]) == 4
    graded = next((out / "course" / "autograded" / "leaky").rglob("*.ipynb")).read_text()
    page = next((out / "feedback" / "leaky").rglob("*.html")).read_text()
    for shown in (graded, page):
        found = set(re.findall(MARK + r"-[a-z0-9-]+", shown))
        assert found == {f"{MARK}-own-fd1", f"{MARK}-own-dunder"}, found
