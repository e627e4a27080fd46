"""Issue 12: a test cell's verdict under ``mdplab grade`` is the verdict the student gets
running the same cell in their own kernel.

- Values cross as what they are: every kind of number, every kind of array, containers
  of them (:mod:`mdplab.grading.agent`'s ``encode``/``decode``); only values that are not
  data become an ``Opaque``, whose use as data fails with a TypeError in the student's
  terms.
- What the student's function does to its arguments travels back to the grader's
  objects, after a call and after a batch of calls, and a batch shares its arguments
  from call to call as a loop does. A forged reply can change nothing but the arguments.
- An exception the student's function raises names the function and the line of the
  student's cell, the same in the grader and in a plain kernel (``call_student``).

The codec's tests run in this process; the rest go through one real sandboxed kernel
(seconds), and compare what the grader gets with what a direct call gives here, on the
same code compiled as a notebook cell.
"""

from __future__ import annotations

import array
import collections
import decimal
import enum
import fractions
import json
import numbers
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mdplab.checks.common import HiddenCheckFailure, as_float, call_repeatedly, call_student
from mdplab.grading import agent, judge, kernel
from mdplab.grading.agent import (
    Opaque,
    cell_line,
    decode,
    decode_arguments,
    encode,
    encode_arguments,
)
from mdplab.grading.judge import Judge, RemoteFunction
from mdplab.grading.kernel import Kernel
from mdplab.grading.sandbox import Limits, probe

try:
    import pandas as pd
except ImportError:  # the tests of pandas values are skipped where it is not installed
    pd = None

# Every numeric dtype numpy has on this machine, longdouble and clongdouble included.
NUMBER_DTYPES = [
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
    "<f2", "<f4", "<f8", np.dtype(np.longdouble).str,
    "<c8", "<c16", np.dtype(np.clongdouble).str,
    ">i4", ">f8", ">c16",
]  # fmt: skip


def _wire(value: Any) -> Any:
    """``value`` as the grader reads it: encoded, sent as JSON bytes, parsed, decoded."""
    payload = bytearray(json.dumps({"result": encode(value)}, allow_nan=False).encode())
    return decode(kernel._parse_reply(payload)["result"])


def _same(a: Any, b: Any) -> bool:
    """Same type and same value, bit for bit where there are bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ma.MaskedArray):
        return (
            a.dtype == b.dtype
            and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
            and _same(np.ma.getdata(a), np.ma.getdata(b))
        )
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or a.flags.writeable != b.flags.writeable:
            return False
        if a.dtype.kind == "O":
            return all(_same(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        return _bits(a) == _bits(b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and _bits(a) == _bits(b)
    if isinstance(a, memoryview):
        return (a.format, a.shape, a.readonly, a.tobytes()) == (
            b.format,
            b.shape,
            b.readonly,
            b.tobytes(),
        )
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, float | complex):
        return repr(a) == repr(b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        same_default = getattr(a, "default_factory", None) is getattr(b, "default_factory", None)
        return same_default and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _bits(value: Any) -> bytes:
    """The bytes that hold the numbers of ``value`` (an array or a numpy scalar). x86's
    longdouble is 80 bits in 16 bytes: its 6 bytes of padding hold whatever the memory held
    before, and differ between two copies of the same number."""
    array = np.ascontiguousarray(value)
    x87 = np.finfo(np.longdouble).nmant == 63 and np.dtype(np.longdouble).itemsize == 16
    part = array.dtype.itemsize // (2 if array.dtype.kind == "c" else 1)
    if x87 and array.dtype.kind in "fc" and part == 16:
        return array.view(np.uint8).reshape(-1, 16)[:, :10].tobytes()
    return array.tobytes()


# ============================================================================ the codec
# ---------------------------------------------------------------------------- numbers
@settings(max_examples=200, deadline=None)
@given(st.fractions())
def test_a_fraction_crosses_exactly(value):
    assert _same(_wire(value), value)


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_a_decimal_crosses_as_its_text(value):
    assert _same(_wire(value), value)


@settings(max_examples=100, deadline=None)
@given(st.complex_numbers())
def test_a_complex_crosses_as_one(value):
    assert _same(_wire(value), value)


class Weekday(enum.IntEnum):
    MONDAY = 1


class Fixed(float):
    """A float subclass, as a units library might make."""


class Tenths(numbers.Rational):
    """A Rational that is neither an int nor a Fraction: n / 10."""

    def __init__(self, n: int) -> None:
        self.n = n

    numerator = property(lambda self: self.n)
    denominator = property(lambda self: 10)


class Meters(numbers.Real):
    """A Real that is no float."""

    def __init__(self, x: float) -> None:
        self.x = x

    def __float__(self) -> float:
        return self.x


class Phasor(numbers.Complex):
    def __complex__(self) -> complex:
        return 1 - 2j


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Weekday.MONDAY, 1),
        (Fixed(2.5), 2.5),
        (10**40, 10**40),
        (fractions.Fraction(10**300 + 1, 3), fractions.Fraction(10**300 + 1, 3)),
        (decimal.Decimal("-0.000"), decimal.Decimal("-0.000")),
        (decimal.Decimal("sNaN12"), decimal.Decimal("sNaN12")),
        (complex(float("inf"), float("nan")), complex(float("inf"), float("nan"))),
    ],
)
def test_numbers_of_any_kind_cross_as_numbers(value, expected):
    assert _same(_wire(value), expected)


def test_numbers_of_the_abstract_kinds_cross_as_the_nearest_type_the_wire_carries():
    # An ABC's method must not be abstract for the instance to exist: fill them in.
    for cls in (Tenths, Meters, Phasor):
        cls.__abstractmethods__ = frozenset()
    assert _same(_wire(Tenths(3)), fractions.Fraction(3, 10))
    assert _same(_wire(Meters(1.25)), 1.25)
    assert _same(_wire(Phasor()), 1 - 2j)


@pytest.mark.parametrize("dtype", NUMBER_DTYPES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_numpy_scalar_of_every_numeric_dtype_crosses_bit_for_bit(dtype, data):
    size = np.dtype(dtype).itemsize
    raw = data.draw(st.binary(min_size=size, max_size=size))
    if dtype == "|b1":
        raw = bytes([raw[0] & 1])  # numpy's bools are 0 or 1
    value = np.frombuffer(raw, dtype=dtype)[0]
    back = _wire(value)
    assert type(back) is type(value) and back.dtype == value.dtype
    assert _bits(back) == _bits(value)


def test_a_longdouble_keeps_the_bits_a_double_would_lose():
    third = np.longdouble(1) / 3
    assert third != np.float64(third)  # more bits than a double: they must all cross
    back = _wire(third)
    assert type(back) is np.longdouble and back == third
    both = np.clongdouble(third + 2j * third)  # one object: padding bytes differ between two
    assert _same(_wire(both), both) and _wire(both) == both
    assert _same(_wire(np.float16(65504)), np.float16(65504))
    assert _same(_wire(np.bool_(True)), np.bool_(True))


# ---------------------------------------------------------------------------- arrays
@pytest.mark.parametrize("dtype", NUMBER_DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_an_array_of_every_numeric_dtype_crosses_bit_for_bit(dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = data.draw(st.binary(min_size=size, max_size=size))
    value = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if dtype == "|b1":
        value = np.array(value.view("|u1") & 1 != 0)
    assert _same(_wire(value), value)
    # Read-only stays read-only: a student's write must fail as it would in the grader.
    value.flags.writeable = False
    assert _same(_wire(value), value)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_array_subclasses_cross_as_themselves_or_as_plain_arrays():
    matrix = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    assert _same(_wire(matrix), matrix)
    assert (_wire(matrix) * _wire(matrix)).tolist() == (matrix * matrix).tolist()
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False], fill_value=-9.0)
    back = _wire(masked)
    assert _same(back, masked) and back.fill_value == -9.0 and back.sum() == 4.0
    fractions_ = np.ma.masked_array(np.array([fractions.Fraction(1, 3)] * 2, dtype=object))
    assert _same(_wire(fractions_), fractions_)

    class Tagged(np.ndarray):
        pass

    tagged = np.arange(4.0).view(Tagged)
    assert _same(_wire(tagged), np.arange(4.0))  # an unknown subclass: its values
    strided = np.arange(12).reshape(3, 4)[::2, 1::2]
    assert _same(_wire(strided), np.ascontiguousarray(strided))


class ArrayLike:
    """A student's class that numpy can read as an array."""

    def __array__(self, dtype=None, copy=None):
        return np.array([[1.5, 2.5]], dtype=dtype)


def test_array_likes_cross_as_arrays_and_bytes_as_bytes():
    assert _same(_wire(ArrayLike()), np.array([[1.5, 2.5]]))
    assert _same(_wire(array.array("d", [1.0, 2.5])), array.array("d", [1.0, 2.5]))
    assert _same(_wire(array.array("q", [-(2**62)])), array.array("q", [-(2**62)]))
    doubles = memoryview(np.arange(3.0))
    assert _same(_wire(doubles), doubles)
    assert _same(_wire(memoryview(b"abc")), memoryview(b"abc"))  # read-only, format B
    assert _same(_wire(b"\x00\xffab"), b"\x00\xffab")  # bytes are bytes, not an array
    assert _same(_wire(bytearray(b"ab")), bytearray(b"ab"))
    objects = np.array([fractions.Fraction(1, 3), decimal.Decimal("0.1"), None], dtype=object)
    assert _same(_wire(objects), objects)


@pytest.mark.skipif(pd is None, reason="pandas is not installed")
def test_pandas_values_cross_as_their_arrays():
    series = pd.Series([1.0, 2.0, 4.0], index=["a", "b", "c"])
    frame = pd.DataFrame({"x": [1, 2], "y": [3.5, 4.5]})
    assert _same(_wire(series), np.asarray(series))
    assert _same(_wire(frame), np.asarray(frame))
    assert _same(
        _wire({"V": series, "Q": [frame]}), {"V": np.asarray(series), "Q": [np.asarray(frame)]}
    )


def test_the_collections_dicts_cross_as_themselves():
    counts = collections.Counter("abracadabra")
    back = _wire(counts)
    assert type(back) is collections.Counter and back == counts and back["z"] == 0
    table = collections.defaultdict(float, {1: 0.5})
    back = _wire(table)
    assert _same(back, table) and back[7] == 0.0  # a missing key as in the kernel
    assert type(_wire(collections.defaultdict(lambda: 0, {1: 2}))) is dict  # code: a dict
    ordered = collections.OrderedDict([("b", 1), ("a", 2)])
    assert _same(_wire(ordered), ordered)
    assert _same(_wire(frozenset({1, (2, 3)})), frozenset({1, (2, 3)}))


numbers_ = (
    st.integers()
    | st.floats()
    | st.fractions()
    | st.decimals(allow_nan=False)
    | st.complex_numbers()
    | st.sampled_from(NUMBER_DTYPES).flatmap(lambda d: hnp.from_dtype(np.dtype(d)))
)
arrays = st.sampled_from(NUMBER_DTYPES).flatmap(
    lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
)
nested = st.recursive(
    numbers_ | arrays | st.binary(max_size=8) | st.text(max_size=5) | st.none(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(nested)
def test_nested_containers_of_all_of_these_cross_unchanged(value):
    assert _same(_wire(value), value), value


# ---------------------------------------------------------------------------- not data
def _uses():
    """Every way a check or a visible test uses a value as data."""
    return {
        "float": float,
        "int": int,
        "complex": complex,
        "index": lambda x: [0][x],
        "asarray": np.asarray,
        "asarray float": lambda x: np.asarray(x, dtype=float),
        "allclose": lambda x: np.allclose(x, 1.0),
        "array of it": lambda x: np.array([x, 1.0]),
        "add": lambda x: x + 1,
        "radd": lambda x: 1 + x,
        "numpy radd": lambda x: np.float64(1) + x,
        "mul": lambda x: x * 2,
        "matmul": lambda x: np.eye(2) @ x,
        "neg": lambda x: -x,
        "abs": abs,
        "round": round,
        "less": lambda x: x < 1,
        "greater": lambda x: 1 > x,  # noqa: SIM300 - the reflected comparison
        "max": lambda x: max([x, x]),
        "sum": sum,
        "len": len,
        "iter": iter,
        "list": list,
        "in": lambda x: 1 in x,
        "index it": lambda x: x[0],
        "format": lambda x: f"{x:.3f}",
        "isclose": lambda x: np.isclose(x, 1),
    }


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ((n for n in range(3)), "your function returned a generator; return a list or an array"),
        (map(float, [1]), "your function returned an iterator (map); return a list or an array"),
        (filter(None, [1]), "returned an iterator (filter); return a list or an array"),
        (iter([1.0]), "returned an iterator (list_iterator); return a list or an array"),
        (len, "your function returned a builtin_function_or_method, not a number or an array"),
        (object(), "your function returned an object, not a number or an array"),
    ],
)
def test_a_value_that_is_not_data_fails_in_the_students_terms_when_used_as_data(value, words):
    back = _wire(value)
    assert isinstance(back, Opaque)
    for use, how in _uses().items():
        with pytest.raises(TypeError) as raised:
            how(back)
        # A use the value's own type has no method for fails with Python's own words,
        # which name the type.
        message = str(raised.value)
        native = message == _native_error(how, value) or f"'{type(value).__name__}'" in message
        assert words in message or native, use
        assert "Opaque" not in str(raised.value), use
    # It has the container and iterator methods its type has, so hasattr answers alike.
    for method in agent.PROTOCOL:
        assert hasattr(back, method) == hasattr(value, method), method
    with pytest.raises(AttributeError, match=re.escape(words.split(";")[0])):
        back.shape  # noqa: B018 - the attribute a check reads
    # Still an object: equal to itself only, hashable, true, printable.
    assert back == back and back != 1 and hash(back) == hash(back) and bool(back)
    assert "Opaque" not in repr(back) and "from the notebook" in f"{back}"
    # Named as its type, so a check that says type(value).__name__ says what it is.
    assert type(back).__name__ == type(value).__name__
    with pytest.raises(HiddenCheckFailure, match=f"got {type(value).__name__}$"):
        as_float(back, what="f()")


def _native_error(use, value) -> str:
    try:
        use(value)
    except Exception as error:  # any failure: its words are compared
        return str(error)
    return ""


def test_whose_value_it_is_is_said():
    described = decode(encode(iter([])), subject="your `V` is")
    with pytest.raises(TypeError, match=r"^your `V` is an iterator \(list_iterator\)"):
        float(described)
    past_limit = decode({"$nd": "<f8", "shape": [2**40], "data": ""}, subject="your `f` returned")
    with pytest.raises(TypeError, match=r"^your `f` returned a value"):
        np.asarray(past_limit)
    huge = _wire(np.zeros(agent.MAX_ITEMS + 1, dtype=np.uint8))
    with pytest.raises(TypeError, match=r"an ndarray the grader cannot read \(shape"):
        float(huge)


def test_the_grader_never_calls_code_of_what_it_decoded():
    """The grader decodes tags only: an Opaque it re-encodes (passing it back to the
    student's function) stays the same description; nothing of it is called."""
    opaque = _wire(ArrayLike.__array__)
    assert encode(opaque) == encode(_wire(opaque))
    assert isinstance(_wire(opaque), Opaque) and _wire(opaque).text == opaque.text


def test_past_the_limits_numbers_stay_descriptions():
    assert isinstance(_wire(decimal.Decimal("1e999999")), Opaque)
    assert isinstance(decode({"$decimal": "1e999999"}), Opaque)  # int() would take ages
    assert isinstance(decode({"$decimal": "1" * (agent.MAX_DECIMAL_TEXT + 1)}), Opaque)
    assert isinstance(decode({"$decimal": "nonsense"}), Opaque)
    assert isinstance(_wire(fractions.Fraction(10**2000, 3)), Opaque)
    assert isinstance(decode({"$fraction": ["1" * 1001, "3"]}), Opaque)
    for body in (["1", "0"], ["1", "-3"], [1, 3], ["1"], "1/3", [" 1", "3"]):
        assert isinstance(decode({"$fraction": body}), Opaque), body
    for body in ([1.0], ["1", "2"], [True, 1.0], [{"$int": "9" * 400}, 0.0]):
        assert isinstance(decode({"$complex": body}), Opaque), body
    for tagged in (
        {"$array": "u", "data": ""},
        {"$array": "dd", "data": ""},
        {"$array": "d", "data": "AAAA"},
        {"$memoryview": {"$ndlist": [1], "items": [1]}},
        {"$masked": {"$nd": "<f8", "shape": [1], "data": "AAAAAAAAAAA="}, "mask": None},
        {"$masked": {"$list": []}, "mask": {"$list": []}},
        {"$nd": "<f8", "shape": [2], "data": "AAAAAAAAAAAAAAAAAAAAAA==", "kind": "matrix"},
        {"$bytes": "not base64!"},
    ):
        assert isinstance(decode(tagged), Opaque), tagged


def test_a_replys_list_of_methods_is_read_as_data_only():
    """``has`` names methods of PROTOCOL only: any other name, a list of a million names,
    or a value that is not a list changes nothing."""
    everything = decode({"$opaque": "thing", "repr": "", "has": "__len__"})
    assert all(hasattr(everything, method) for method in agent.PROTOCOL)
    hostile = ["__init__", "__call__", "__getattribute__", "__del__", 7, None]
    odd = decode({"$opaque": "thing", "repr": "", "has": [*hostile, "__len__"]})
    assert hasattr(odd, "__len__") and not hasattr(odd, "__iter__")
    assert not callable(odd) and type(odd).__init__ is Opaque.__init__
    many = decode({"$opaque": "thing", "repr": "", "has": ["__iter__"] * 10**6 + ["__len__"]})
    assert hasattr(many, "__iter__") and not hasattr(many, "__len__")
    for index in range(agent.MAX_KINDS + 10):  # no more classes than MAX_KINDS
        decode({"$opaque": f"kind{index}", "repr": "", "has": ["__len__"]})
    assert len(agent._KINDS) <= agent.MAX_KINDS


# ---------------------------------------------------------------------------- aliasing
def test_an_object_passed_twice_arrives_as_one_object():
    values = np.zeros(3)
    table = {"V": values}
    rng = np.random.default_rng(0)
    args, kwargs = encode_arguments((values, values, [table, table], rng), {"again": rng})
    positional, keywords = decode_arguments(
        json.loads(json.dumps(args)), json.loads(json.dumps(kwargs))
    )
    assert positional[0] is positional[1] is positional[2][0]["V"]
    assert positional[2][0] is positional[2][1]
    assert positional[3] is keywords["again"]
    cyclic: list = [1]
    cyclic.append(cyclic)
    (back,), _ = decode_arguments(*encode_arguments((cyclic,), {}))
    assert back[1] is back
    # In a reply, a reference is refused: a few bytes could stand for a huge value.
    assert isinstance(decode({"$list": [{"$list": [1], "id": 0}, {"$ref": 0}]})[1], Opaque)


def test_hostile_arguments_are_refused_by_the_agent():
    for args, kwargs in [({"$list": [1]}, 5), (5, {"$dict": []}), ([1], {"$dict": [[1, 2]]})]:
        with pytest.raises(ValueError):
            decode_arguments(args, kwargs)
    assert agent.call("f", 5, None, {"f": print})["error"]["type"] == "ValueError"


# ============================================================================ write-back
def _changed(*pairs: tuple[Any, Any]) -> dict:
    """A reply whose ``changed`` gives these (key, new value) pairs."""
    return {"changed": [[key, encode(value)] for key, value in pairs]}


def test_changed_arguments_are_written_into_the_graders_objects_in_place():
    V = np.arange(6.0)
    view = V[1:4]
    pmf = {0: 0.5, 1: 0.5}
    items = [np.zeros(2), [1, 2], "text"]
    nested = {"a": np.ones(2), "b": {"c": [1]}}
    seen = {1, 2}
    pair = ([1], np.zeros(1))
    raw = bytearray(b"ab")
    doubles = array.array("d", [1.0])
    keep = (items[0], items[1], nested["a"], nested["b"], pair[0])
    reply = _changed(
        (0, view * 10),
        (1, {}),
        (2, [np.full(2, 7.0), [1, 2, 3], "text", 4]),
        (3, {"a": np.full(2, 3.0), "b": {"c": [1, 5]}, "new": 1}),
        (4, {3}),
        (5, ([1, 9], np.ones(1))),
        (6, bytearray(b"xyz")),
        ("doubles", array.array("d", [2.0, 3.0])),
    )
    args = (view, pmf, items, nested, seen, pair, raw)
    judge._settle("f", args, {"doubles": doubles}, reply, [])
    assert V.tolist() == [0.0, 10.0, 20.0, 30.0, 4.0, 5.0]  # through the view
    assert pmf == {} and seen == {3} and raw == bytearray(b"xyz") and doubles.tolist() == [2, 3]
    assert items[0].tolist() == [7, 7] and items[1] == [1, 2, 3] and items[3] == 4
    assert nested["a"].tolist() == [3, 3] and nested["b"] == {"c": [1, 5]} and nested["new"] == 1
    assert pair[0] == [1, 9] and pair[1].tolist() == [1.0]
    # The items kept their identity: a check holding one sees the change.
    now = (items[0], items[1], nested["a"], nested["b"], pair[0])
    assert all(before is after for before, after in zip(keep, now, strict=True))


def test_a_masked_array_gets_its_new_mask():
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, False])
    judge._settle(
        "f", (masked,), {}, _changed((0, np.ma.masked_array([5.0, 6.0], mask=[True, False]))), []
    )
    assert masked.mask.tolist() == [True, False] and masked.data.tolist() == [5.0, 6.0]


FORGED = [
    [[0, encode(np.zeros(4))]],  # another shape
    [[0, encode(np.zeros(3, dtype=complex))]],  # a dtype it does not take
    [[0, encode(np.zeros((3, 1)))]],
    [[0, {"$list": [1, 2, 3]}]],  # another type
    [[0, {"$opaque": "generator", "repr": "x"}]],
    [[0, "junk"]],
    [[0, {"$ref": 0}]],
    [[7, {"$list": []}]],  # an argument that does not exist
    [[-1, {"$list": []}]],
    [[True, {"$list": []}]],
    [["nope", {"$list": []}]],
    [[1.0, {"$list": []}]],
    [[0]],
    ["not a pair"],
    "not a list",
    HUGE := [[0, {"$list": [0] * 5000}]] * 500,  # huge: past one entry per argument
    [[1, {"$dict": [[{"$list": []}, 1]]}]],  # an unhashable key
    [[1, {"$list": [{"$nd": "<f8", "shape": [3], "data": "AAAA"}]}]],
    [[2, {"$rng": "MT19937", "state": encode(np.random.MT19937(1).state)}]],
    [[3, encode(np.ones(3))]],  # a read-only array
    [[1, {"$list": [{"$list": [{"$list": [1]}] * 3}] * 3}]],  # a list where a dict was
    [[1, {"$dict": [["a", {"$opaque": "generator", "repr": ""}]]}], [1, {"$dict": []}]],
]


@pytest.mark.parametrize("changed", FORGED)
def test_a_forged_write_back_changes_nothing_it_should_not(changed):
    V = np.arange(3.0)
    table = {"a": [1.0]}
    rng = np.random.default_rng(0)
    frozen = np.arange(3.0)
    frozen.flags.writeable = False
    elsewhere = [V]  # not an argument
    states = (V.copy(), {"a": [1.0]}, rng.bit_generator.state, frozen.copy())
    reply = {"changed": changed, "result": 1.0}
    assert judge._settle("f", (V, table, rng, frozen), {}, reply, [reply["result"]]) == [1.0]
    assert np.array_equal(V, states[0]) and elsewhere[0] is V
    # A dict stays a dict; the last forgery is a change of its items, which it may make.
    assert table == states[1] or changed is FORGED[-1]
    assert rng.bit_generator.state == states[2]
    assert np.array_equal(frozen, states[3])
    assert type(V) is np.ndarray and V.dtype == np.float64 and V.shape == (3,)


class _Session:
    """A kernel session that answers every request with ``reply``."""

    def __init__(self, reply: dict) -> None:
        self.reply, self.closed = reply, False

    def request(self, op: str, seconds: float, **fields: Any) -> dict:
        return self.reply

    def close(self) -> None:
        self.closed = True


class _Kernel:
    def __init__(self, reply: dict) -> None:
        self.reply, self.stop_note = reply, ""

    def session(self) -> _Session:
        return _Session(self.reply)

    def alive(self) -> bool:
        return True


@pytest.mark.parametrize("changed", FORGED)
@pytest.mark.parametrize("failed", [False, True])
def test_a_forged_batch_changes_nothing_it_should_not(changed, failed):
    """The same for a batch of calls, and for a call or batch that failed."""
    reply: dict = {"changed": changed, "results": [1.0, 2.0]}
    if failed:
        reply["error"] = {"type": "ValueError", "message": "m", "student": True, "index": 1}
    forged = Judge(_Kernel(reply), 10)  # type: ignore[arg-type]
    forged.deadline = time.monotonic() + 10
    V, rng = np.arange(3.0), np.random.default_rng(0)
    state = rng.bit_generator.state
    try:
        assert forged.repeat("f", 2, (V, {"a": [1.0]}, rng), {}) == [1.0, 2.0]
        assert forged.call("f", (V,), {}) is None  # the reply has no result
    except ValueError as error:
        assert failed and str(error) == "your `f` raised ValueError: m"
    assert V.tolist() == [0.0, 1.0, 2.0] and rng.bit_generator.state == state


def test_a_forged_item_of_the_graders_own_kind_is_never_replaced():
    """An item the wire only described (an object of the grader's) stays as it is, even
    if the reply says it changed; only data the wire carries is replaced."""

    class Check:
        pass

    mine = Check()
    items = [mine, 1]
    judge._settle("f", (items,), {}, _changed((0, [np.zeros(2), 2])), [])
    assert items[0] is mine and items[1] == 2


# ============================================================================ exceptions
CELL = """\
import numpy as np
def bellman_update(V, beta):
    total = np.ones(2) + np.ones(3)
    return total
def fails(x):
    raise ValueError(f"bad {x}")
"""


def _message(raising: Any) -> str:
    try:
        raising()
    except Exception as error:
        return str(error)
    raise AssertionError("it did not raise")


# numpy's own words (with their trailing space), whatever its version says
BROADCAST = _message(lambda: np.ones(2) + np.ones(3))


def _cell_functions(filename: str) -> dict:
    namespace: dict = {}
    exec(compile(CELL, filename, "exec"), namespace)
    return namespace


@pytest.mark.parametrize("filename", ["/tmp/ipykernel_1/123.py", "<ipython-input-3-9f2c1a>"])
def test_call_student_names_the_function_and_the_line_of_the_cell(filename):
    cell = _cell_functions(filename)
    with pytest.raises(HiddenCheckFailure) as failed:
        call_student(cell["bellman_update"], None, 0.9, what="bellman_update on a random MDP")
    assert str(failed.value) == (
        "bellman_update on a random MDP: your `bellman_update` raised ValueError: "
        f"{BROADCAST} (line 3 of your cell)"
    )
    with pytest.raises(HiddenCheckFailure) as failed:
        call_repeatedly(cell["fails"], 4, 1, what="fails(1)")
    assert str(failed.value) == (
        "fails(1): your `fails` raised ValueError: bad 1 (line 6 of your cell, in call 1 of 4)"
    )


def test_outside_a_cell_there_is_no_line_and_a_lambda_has_no_name():
    cell = _cell_functions("/work/student/helpers.py")  # a module of the student's
    with pytest.raises(HiddenCheckFailure, match=r"^f\(\): your `fails` raised ValueError: bad 2$"):
        call_student(cell["fails"], 2, what="f()")
    with pytest.raises(HiddenCheckFailure, match=r"^f\(\): your function raised KeyError: 3$"):
        call_student(lambda: {}[3], what="f()")
    with pytest.raises(HiddenCheckFailure, match=r"^f\(\): your `stub` is not implemented yet$"):

        def stub():
            raise NotImplementedError

        call_student(stub, what="f()")


def test_cell_line_takes_the_innermost_frame_of_a_cell():
    outer = _cell_functions("/tmp/ipykernel_7/1.py")
    inner = _cell_functions("/tmp/ipykernel_7/2.py")

    def through_library():
        return outer["bellman_update"](None, 0.9)

    try:
        through_library()
    except ValueError as error:
        assert cell_line(error) == 3
    try:
        exec(compile("x = 1\n\ny = {}['k']\n", "/tmp/ipykernel_7/3.py", "exec"), {})
    except KeyError as error:
        assert cell_line(error) == 3
    try:
        inner["fails"](3)
    except ValueError as error:
        assert cell_line(error) == 6
    assert cell_line(ValueError("never raised")) is None


def test_the_judges_exception_is_worded_once():
    error = judge._exception_from(
        {"type": "ValueError", "message": "bad", "student": True, "line": 4}, "f"
    )
    assert type(error) is ValueError
    assert str(error) == "your `f` raised ValueError: bad (line 4 of your cell)"

    def stand_in():  # as a check's wrapper around the grader's RemoteFunction would be
        raise error

    with pytest.raises(HiddenCheckFailure) as failed:
        call_student(stand_in, what="f(1)")
    assert str(failed.value) == "f(1): your `f` raised ValueError: bad (line 4 of your cell)"
    # Not the student's: the kernel's own errors stay as they are.
    plain = judge._exception_from({"type": "NameError", "message": "name 'f' is not defined"}, "f")
    assert str(plain) == "name 'f' is not defined"
    for line in (True, -1, 10**9, "4", 4.0):
        forged = judge._exception_from(
            {"type": "KeyError", "message": "k", "student": True, "line": line}, "f"
        )
        assert "line" not in str(forged)


# ============================================================================ a real kernel
DEFINITIONS = """\
import array, collections, decimal, fractions
import numpy as np

def fraction():
    return fractions.Fraction(1, 3) + fractions.Fraction(1, 6)

def decimal_():
    return decimal.Decimal("0.1") * 3

def half():
    return np.float16(0.1)

def long():
    return np.longdouble(1) / 3

def matrix():
    return np.matrix([[1.0, 2.0], [3.0, 4.0]])

def masked():
    return np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])

def doubles():
    return array.array("d", [0.5, 1.5])

def series():
    import pandas as pd
    return pd.Series([1.0, 2.0]), pd.DataFrame({"a": [1, 2]})

class Values:
    def __array__(self, dtype=None, copy=None):
        return np.array([3.0, 4.0])

def array_like():
    return Values()

def objects():
    return np.array([fractions.Fraction(1, 3), fractions.Fraction(2, 3)], dtype=object)

def generator():
    return (v for v in [1.0, 2.0])

def discount(V, beta):
    V *= beta
    return float(V.sum())

def reset(V0):
    V0[:] = 0

def forget(demand_pmf):
    demand_pmf.clear()

def record(lst, value):
    lst.append(value)
    return len(lst)

def scale_all(tables, factor=2.0):
    for table in tables.values():
        table *= factor

def count_calls(seen):
    seen.append(len(seen))
    return len(seen)

def same(a, b):
    a += 1
    return a is b, float(b.sum())

def bump_then_fail(V):
    V += 1
    raise ValueError("after the bump")

def draw(rng, scale=1.0):
    return scale * rng.random()
"""
RAISES = """\
import numpy as np
def bellman_update(V, beta):
    y = beta * V
    return np.ones(2) + np.ones(3) + y
"""
RETURNS = [
    "fraction",
    "decimal_",
    "half",
    "long",
    "matrix",
    "masked",
    "doubles",
    "array_like",
    "objects",
    *(["series"] if pd is not None else []),
]
LOCAL: dict = {}
exec(compile(DEFINITIONS, "/tmp/ipykernel_1/1.py", "exec"), LOCAL)
LOCAL_RAISES: dict = {}
exec(compile(RAISES, "/tmp/ipykernel_1/2.py", "exec"), LOCAL_RAISES)


@pytest.fixture(scope="module")
def box():
    with tempfile.TemporaryDirectory(prefix="mdplab-box-") as folder:
        started = Kernel(probe(), Limits(cell_seconds=30), Path(folder))
        started.start()
        try:
            for cell in (DEFINITIONS, RAISES):
                run = started.run_cell(cell, 30)
                assert run.status == "ok", run
            yield started
        finally:
            started.shutdown()


@pytest.fixture
def grader(box):
    if not box.alive():
        box.restart()
        for cell in (DEFINITIONS, RAISES):
            assert box.run_cell(cell, 30).status == "ok"
    made = Judge(box, 30)
    made.deadline = time.monotonic() + 30
    yield made
    made._end_session()


def _expected(name: str) -> Any:
    """What a direct call gives, through what np.asarray makes of what the wire carries
    as an array (pandas, an object with __array__)."""
    value = LOCAL[name]()
    if name == "series":
        return tuple(np.asarray(v) for v in value)
    if name == "array_like":
        return np.asarray(value)
    return value


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("name", RETURNS)
def test_the_grader_gets_what_a_direct_call_gives(grader, name):
    got = RemoteFunction(name, grader)()
    assert _same(got, _expected(name)), (got, _expected(name))
    assert _same(RemoteFunction(name, grader).repeat(2), [_expected(name)] * 2)


def test_a_generator_fails_a_check_in_the_students_terms(grader):
    got = RemoteFunction("generator", grader)()
    with pytest.raises(TypeError, match=r"^your `generator` returned a generator; return a list"):
        np.asarray(got, dtype=float)
    cell = "import numpy as np\nassert np.allclose(generator(), [1.0, 2.0])\n"
    outputs, status = grader.run(cell, 30)
    assert status == "failed" and outputs[-1].ename == "TypeError"
    assert outputs[-1].evalue == "your `generator` returned a generator; return a list or an array"


def test_what_a_call_does_to_its_arguments_is_seen_by_the_grader(grader):
    V = np.array([1.0, 2.0, 4.0])
    assert RemoteFunction("discount", grader)(V, 0.5) == 3.5
    assert V.tolist() == [0.5, 1.0, 2.0]
    big = np.arange(6.0)
    RemoteFunction("reset", grader)(big[1:4])  # a view: its base changes
    assert big.tolist() == [0.0, 0.0, 0.0, 0.0, 4.0, 5.0]
    pmf = {0: 0.25, 1: 0.75}
    RemoteFunction("forget", grader)(pmf)
    assert pmf == {}
    lst: list = []
    assert RemoteFunction("record", grader)(lst, (1, "a")) == 1
    assert lst == [(1, "a")]
    tables = {"R": np.ones(2), "P": np.ones((2, 2))}
    held = tables["R"]
    RemoteFunction("scale_all", grader)(tables, factor=3.0)
    assert tables["R"] is held and held.tolist() == [3.0, 3.0] and tables["P"].sum() == 12.0
    # The same object passed twice is one object in the kernel, as it is here.
    W = np.zeros(2)
    assert RemoteFunction("same", grader)(W, W) == (True, 2.0)
    assert W.tolist() == [1.0, 1.0]
    # A call that raises leaves its changes, as it does in a plain kernel.
    U = np.zeros(2)
    with pytest.raises(ValueError, match="after the bump"):
        RemoteFunction("bump_then_fail", grader)(U)
    assert U.tolist() == [1.0, 1.0]
    # A check that verifies an array was left alone sees what the student's code did.
    checked = np.arange(3.0)
    original = checked.copy()
    RemoteFunction("discount", grader)(checked, 1.0)
    assert np.array_equal(checked, original)


def test_a_batch_changes_its_arguments_as_a_loop_does(grader):
    V = np.array([1.0, 2.0])
    sums = RemoteFunction("discount", grader).repeat(3, V, 0.5)
    local_V = np.array([1.0, 2.0])
    assert sums == [LOCAL["discount"](local_V, 0.5) for _ in range(3)] == [1.5, 0.75, 0.375]
    assert V.tolist() == local_V.tolist()
    seen: list = []
    assert RemoteFunction("count_calls", grader).repeat(4, seen) == [1, 2, 3, 4]
    assert seen == [0, 1, 2, 3]
    tables = {"R": np.ones(2)}
    held = tables["R"]
    RemoteFunction("scale_all", grader).repeat(2, tables)
    assert tables["R"] is held and held.tolist() == [4.0, 4.0]
    big = np.arange(6.0)
    assert RemoteFunction("reset", grader).repeat(2, big[1:4]) == [None, None]
    assert big.tolist() == [0.0, 0.0, 0.0, 0.0, 4.0, 5.0]
    pmf = {0: 0.25, 1: 0.75}
    RemoteFunction("forget", grader).repeat(3, pmf)
    assert pmf == {}
    # A batched loop in a test cell does what the loop does.
    cell = (
        "import numpy as np\n"
        "seen = []\n"
        "counts = [count_calls(seen) for _ in range(5)]\n"
        "assert counts == [1, 2, 3, 4, 5], counts\n"
        "assert seen == [0, 1, 2, 3, 4], seen\n"
        "rng = np.random.default_rng(5)\n"
        "draws = [draw(rng, scale=2.0) for _ in range(3)]\n"
        "mine = np.random.default_rng(5)\n"
        "assert draws == [2.0 * mine.random() for _ in range(3)]\n"
        "assert rng.random() == mine.random()\n"
    )
    outputs, status = grader.run(cell, 30)
    assert status == "passed", outputs
    # A batch that fails leaves the arguments as the failing call left them.
    U = np.zeros(1)
    with pytest.raises(ValueError) as raised:
        RemoteFunction("bump_then_fail", grader).repeat(3, U)
    assert raised.value.repeat_index == 0 and U.tolist() == [1.0]


def test_an_exception_names_the_function_and_the_line_of_the_cell(grader):
    expected = f"your `bellman_update` raised ValueError: {BROADCAST} (line 4 of your cell)"
    with pytest.raises(ValueError) as raised:
        RemoteFunction("bellman_update", grader)(np.zeros(2), 0.9)
    assert str(raised.value) == expected
    messages = []
    for function in (RemoteFunction("bellman_update", grader), LOCAL_RAISES["bellman_update"]):
        with pytest.raises(HiddenCheckFailure) as failed:
            call_student(function, np.zeros(2), 0.9, what="bellman_update on a random MDP")
        messages.append(str(failed.value))
    assert messages[0] == messages[1] == f"bellman_update on a random MDP: {expected}"
    # A visible test that calls the function directly fails with the same words.
    outputs, status = grader.run("import numpy as np\nbellman_update(np.zeros(2), 0.9)\n", 30)
    assert status == "failed" and outputs[-1].ename == "ValueError"
    assert outputs[-1].evalue == expected


HOSTILE = """
import sys
agent = sys.modules["mdplab_agent"]
_real_call = agent.call
def call(name, args, kwargs, namespace):
    reply = _real_call(name, args, kwargs, namespace)
    if name == "record":
        reply["changed"] = FORGED
    return reply
agent.call = call
"""
# The forgeries, as Python the kernel evaluates: those above (but the huge one, whose text
# would be a cell of megabytes), and one past the reply's limit of values.
LIVE_FORGED = [f"__import__('json').loads({json.dumps(f)!r})" for f in FORGED if f is not HUGE]
LIVE_FORGED += [f"[[0, {{'$list': [0] * {agent.MAX_REPLY_ITEMS + 1}}}]]"]


@pytest.mark.parametrize("forged", LIVE_FORGED)
def test_forged_replies_cannot_crash_the_grader_or_change_more_than_the_arguments(
    grader, box, forged
):
    RemoteFunction("fraction", grader)()  # a session installs the agent in the kernel
    grader._end_session()
    assert box.run_cell(f"FORGED = {forged}\n{HOSTILE}", 30).status == "ok"
    try:
        grader.deadline = time.monotonic() + 30
        lst = [np.arange(3.0)]
        frozen = np.arange(3.0)
        frozen.flags.writeable = False
        elsewhere = {"lst": lst, "frozen": frozen}
        try:
            assert RemoteFunction("record", grader)(lst, frozen) == 2
        except Exception as refused:  # only a reply past the limits: refused, unread
            assert "values" in str(refused) and forged is LIVE_FORGED[-1]
        # The arguments may change (to data, as the forgery says), nothing else may.
        assert isinstance(lst, list) and elsewhere["lst"] is lst
        assert elsewhere["frozen"] is frozen and frozen.tolist() == [0.0, 1.0, 2.0]
        assert RemoteFunction("discount", grader)(np.ones(2), 1.0) == 2.0  # it goes on
    finally:
        grader._end_session()
        assert box.run_cell("agent.call = _real_call", 10).status == "ok"
