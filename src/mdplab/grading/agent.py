"""The grader's side of the wire inside the student's kernel, and the value codec both
sides share.

The grader installs the source of this module in the sandboxed kernel as the module
``mdplab_agent`` (the kernel cannot import mdplab) and runs :func:`session`, a request
loop over a Unix socket: each request looks a name up in the student's namespace and
describes it, calls it, or calls it a number of times with the same arguments (one round
trip where a Monte Carlo check would otherwise make a thousand).

What the wire promises: a test cell's verdict under the grader is the verdict the same
cell gives in the student's own kernel. So values cross as what they are (tagged JSON,
:func:`encode` and :func:`decode`):

- numbers as numbers of their own type: int, float, complex, ``Fraction`` and ``Decimal``
  exactly, numpy scalars of every numeric dtype bit for bit (float16 and longdouble
  included); other ``numbers`` types as the nearest of those (an ``Integral`` as int, a
  ``Rational`` as Fraction, a ``Real`` as float, a ``Complex`` as complex);
- arrays as arrays: ndarrays of numbers bit for bit, of other items item by item;
  ``np.matrix`` and masked arrays (with their mask) as themselves, other ndarray
  subclasses, objects with ``__array__`` (pandas) and the buffer protocol as ndarrays
  (converted in the kernel only: the grader never calls ``__array__`` on what it
  decoded), ``array.array`` and ``memoryview`` as themselves, bytes as bytes;
- containers (list, tuple, dict and its Counter, OrderedDict and defaultdict of a builtin
  factory, set, frozenset, range) with their items, and numpy random generators with
  their state;
- anything else (a generator, a function, an object of the student's class) as an
  :class:`Opaque` description, which fails with a TypeError in the student's terms as
  soon as a check uses it as data.

The arguments of a call cross the other way the same way, the same grader object passed
twice as one kernel object (``$ref``), and after every call (and every batch of calls) the
new state of each argument the student's code changed travels back and is written into
the grader's own objects (:mod:`mdplab.grading.judge`), as if the function had run in the
grader's process: an array changed in place, a list appended to, a generator drawn from.
An exception the student's function raises travels back with its type, its message and
the line of the notebook cell it was raised in (:func:`cell_line`).

Nothing here is trusted by the grader: student code can replace any of it, but whatever it
sends back is only data, which the checks in the grader's own process judge.
"""

from __future__ import annotations

import array
import base64
import contextlib
import copy
import decimal
import fractions
import io
import json
import math
import numbers
import re
import sys
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

MAX_DEPTH = 32
MAX_ITEMS = 2_000_000
# What one reply may decode to, counted in values and array elements: one value at the
# encoder's limit and a batch of others. The largest reply the labs' reference solutions
# give holds under 200,000 (lab06's transition counts, 128 x 4 x 128 in one array).
MAX_REPLY_ITEMS = 2 * MAX_ITEMS
# A batch of repeated calls stops once its encoded results pass this size; the rest of the
# batch comes in further requests. The labs' batches are of numbers (lab02: about 20 KB
# for 999 runs); a few MiB keep a batch of large results to a few round trips while the
# grader's reply limit (kernel.MAX_REPLY_BYTES) stays small.
REPEAT_BYTES = 4 * 1024 * 1024
# Distinct items of one set, or keys of one dictionary, that may share a hash. Python's
# ints are equal to their value mod 2**61 - 1, so a reply can hold any number of distinct
# ints with one hash, and building the set would then compare each with all the others
# (400,000 of them took the grader past its time limit). Real answers have almost none.
MAX_SAME_HASH = 16
# Digits of an int sent as text: Python converts text to int in quadratic time, and no
# answer in these labs is a number of a thousand digits. A Fraction's numerator and
# denominator are ints of this bound too.
MAX_INT_DIGITS = 1000
# A Decimal crosses as its text, of at most this many characters, and with an exponent of
# at most MAX_INT_DIGITS either way: int(), Fraction() or arithmetic on Decimal("1e999999")
# would build numbers of a million digits in the grader.
MAX_DECIMAL_TEXT = MAX_INT_DIGITS + 40
# Characters kept of a type name or a description that a reply gives.
MAX_TEXT = 200
# Distinct type names an Opaque's class is named after (see Opaque); past this, "value".
MAX_KINDS = 256
# The container and iterator methods an Opaque has when the value it describes has them.
PROTOCOL = (
    "__len__",
    "__iter__",
    "__next__",
    "__reversed__",
    "__contains__",
    "__getitem__",
    "__setitem__",
    "__delitem__",
)
# Characters kept of an exception's message.
MAX_MESSAGE = 2000
# The bit generators a reply may name (numpy's own); any other name stays a name.
BIT_GENERATORS = frozenset({"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"})
# numpy's dtype strings for plain numbers: bool, signed and unsigned ints, floats, complex.
_NUMBER_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")
_INT_TEXT = re.compile(rf"-?[0-9]{{1,{MAX_INT_DIGITS}}}")
# array.array's typecodes of numbers ("u" and "w" hold characters).
_TYPECODES = frozenset("bBhHiIlLqQfd")
# The default factories of a defaultdict that cross by name: builtins, never looked up.
_FACTORIES: dict[str, Any] = {
    "None": None,
    "int": int,
    "float": float,
    "complex": complex,
    "bool": bool,
    "str": str,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
    "frozenset": frozenset,
}
# The files IPython compiles notebook cells to: ipykernel's /tmp/ipykernel_<pid>/<hash>.py,
# older IPython's (and Colab's) <ipython-input-<n>-<hash>>.
CELL_FILE = re.compile(
    r"(?:^|[\\/])ipykernel_[0-9]+[\\/][0-9]+\.py$|^<ipython-input-[0-9]+-[0-9a-f]+>$"
)


# ------------------------------------------------------------------------ Opaque values
class Opaque:
    """A value the wire does not carry as data (a generator, a function, an object of the
    student's class, or a value past the wire's limits): its type's name and a short repr.

    Using it as data (``float()``, ``int()``, ``np.asarray``, arithmetic, ordering, ``len``,
    iteration, indexing, attributes) raises a TypeError (an AttributeError for attributes)
    that names the value in the student's terms, such as "your `f` returned a generator;
    return a list or an array". ``==`` and ``hash`` are those of any object, and it is true.

    Each instance is of a subclass named after the type it describes, so that a check
    which says ``type(value).__name__`` says "generator", as it would in the student's
    kernel. The subclass has just the container and iterator methods (:data:`PROTOCOL`)
    that the value's own type has, each refusing, so that ``hasattr(value, "__len__")``
    and ``hasattr(value, "__next__")`` answer as in the student's kernel: a generator has
    ``__iter__`` and ``__next__`` and no ``__len__``, and ``len()`` of it fails with
    Python's own words. ``isinstance(value, Opaque)`` holds for all of them.
    """

    __slots__ = ("has", "subject", "text", "type_name", "why")

    def __new__(
        cls,
        type_name: str = "value",
        text: str = "",
        why: str = "",
        subject: str = "",
        has: Iterable[str] | None = None,
    ) -> Opaque:
        kind = _kind(type_name, _protocol(has)) if cls is Opaque else cls
        return object.__new__(kind)

    def __init__(
        self,
        type_name: str = "value",
        text: str = "",
        why: str = "",
        subject: str = "",
        has: Iterable[str] | None = None,
    ) -> None:
        """``why``: "iterator" for a generator or another iterator, "limit" for a value past
        the wire's limits, "" otherwise. ``subject`` says whose value it is, as in "your
        `f` returned" (the default) or "your `x` is". ``has``: which of :data:`PROTOCOL`
        the value's type has; all of them when not known."""
        self.type_name, self.text = str(type_name)[:MAX_TEXT], str(text)[:MAX_TEXT]
        self.why = why if why in {"iterator", "limit"} else ""
        self.subject = str(subject)[:MAX_TEXT] or "your function returned"
        self.has = _protocol(has)

    def complaint(self) -> str:
        """Why this value cannot be used as data, in the student's terms."""
        if self.why == "iterator":
            kind = self.type_name
            what = "a generator" if kind == "generator" else f"an iterator ({kind})"
            return f"{self.subject} {what}; return a list or an array"
        if self.why == "limit":
            return f"{self.subject} {_a(self.type_name)} the grader cannot read ({self.text})"
        return f"{self.subject} {_a(self.type_name)}, not a number or an array"

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(self.complaint())

    def __repr__(self) -> str:
        return f"<{self.type_name} from the notebook: {self.text}>"

    def __format__(self, spec: str) -> str:
        if spec:
            raise TypeError(self.complaint())
        return repr(self)

    def __bool__(self) -> bool:  # as any object, whether or not it has a __len__
        return True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Opaque.__slots__:
            raise AttributeError(name)
        raise AttributeError(f"{self.complaint()} (it has no attribute {name!r})")

    def __reduce__(self) -> tuple:
        return (Opaque, (self.type_name, self.text, self.why, self.subject, self.has))

    # Everything that uses a value as data refuses: as a number or an array, in arithmetic
    # and in ordering. The container methods are the subclass's (see _kind).
    __float__ = __int__ = __index__ = __complex__ = __array__ = _refuse
    __round__ = __trunc__ = __floor__ = __ceil__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __neg__ = __pos__ = __abs__ = __invert__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __matmul__ = __rmatmul__ = __truediv__ = __rtruediv__ = _refuse
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __divmod__ = __rdivmod__ = _refuse
    __pow__ = __rpow__ = __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = _refuse
    __and__ = __rand__ = __xor__ = __rxor__ = __or__ = __ror__ = _refuse


def _protocol(has: Iterable[str] | None) -> tuple[str, ...]:
    """The names of :data:`PROTOCOL` in ``has`` (all of them for None), in its order; a
    reply's list is read up to twice PROTOCOL's length, so a long one costs nothing."""
    if has is None:
        return PROTOCOL
    if isinstance(has, str | bytes) or not isinstance(has, Iterable):
        return PROTOCOL
    given = set()
    for count, name in enumerate(has):
        if count >= 2 * len(PROTOCOL):
            break
        if isinstance(name, str):
            given.add(name)
    return tuple(name for name in PROTOCOL if name in given)


def protocol_of(value: Any) -> tuple[str, ...]:
    """Which of :data:`PROTOCOL` the type of ``value`` has."""
    return tuple(name for name in PROTOCOL if hasattr(type(value), name))


_KINDS: dict[tuple[str, tuple[str, ...]], type] = {}


def _kind(type_name: Any, has: tuple[str, ...] = PROTOCOL) -> type:
    """The subclass of Opaque named ``type_name`` with the refusing methods ``has`` (made
    once; at most MAX_KINDS of them)."""
    name = "".join(c for c in str(type_name)[:MAX_TEXT] if c.isprintable()) or "value"
    kind = _KINDS.get((name, has))
    if kind is None:
        if len(_KINDS) >= MAX_KINDS:  # a reply naming a million types must not make them
            return _KINDS[("value", PROTOCOL)]
        methods = dict.fromkeys(has, Opaque._refuse)
        kind = type(name, (Opaque,), {"__slots__": (), "__module__": "builtins", **methods})
        kind.__qualname__ = name
        _KINDS[(name, has)] = kind
    return kind


_kind("value")  # made first: it stands in for kinds past MAX_KINDS


def _a(name: str) -> str:
    """``name`` with its article: "a generator", "an int", "an ndarray"."""
    spoken_vowel = name[:1].lower() in set("aeiou") or name.startswith("nd")
    return f"an {name}" if spoken_vowel else f"a {name}"


# ------------------------------------------------------------------------ encoding
def encode(value: Any, depth: int = 0, memo: dict[int, tuple[int, Any]] | None = None) -> Any:
    """``value`` as JSON-ready data with type tags (see the module docstring). Never raises:
    a value whose own methods fail crosses as an Opaque description.

    With a ``memo`` (:func:`encode_arguments`), each list, dict, set, bytearray, array and
    generator is encoded once and named by an ``id``; meeting it again gives a ``$ref``.
    """
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return _encode_int(value)
    if kind is float:
        return _encode_float(value)
    if depth > MAX_DEPTH:
        return _described(value, "nested too deeply", "limit")
    if memo is not None:
        seen = memo.get(id(value))
        if seen is not None:
            return {"$ref": seen[0]}
    try:
        if kind is list or kind is tuple or kind is dict:  # the commonest: straight there
            if len(value) > MAX_ITEMS:
                return _described(value, f"{len(value)} items, too many", "limit")
            return _encode_container(value, depth, memo)
        return _encode_other(value, depth, memo)
    except Exception:  # a student's object whose methods raise: described, not carried
        return _described(value, "could not be read", "")


def encode_arguments(args: Sequence, kwargs: dict) -> tuple[Any, Any]:
    """The arguments of a call, encoded together so that an object passed twice (or held
    twice by the arguments) arrives in the kernel as one object (:func:`decode_arguments`).
    """
    memo: dict[int, tuple[int, Any]] = {}  # holds each object, so no id is reused meanwhile
    return encode(list(args), 0, memo), encode(dict(kwargs), 0, memo)


def _encode_int(value: int) -> Any:
    if abs(value) < 2**53:
        return value
    if value.bit_length() > 3.3 * MAX_INT_DIGITS:  # log2(10) < 3.33: within the bound
        return _opaque_body("int", f"a number of {value.bit_length()} bits", "limit")
    return {"$int": str(value)}


def _encode_float(value: float) -> Any:
    return value if math.isfinite(value) else {"$float": repr(value)}


def _opaque_body(type_name: str, text: str, why: str = "", has: tuple[str, ...] = PROTOCOL) -> dict:
    body = {"$opaque": type_name, "repr": text}
    if why:
        body["why"] = why
    if has != PROTOCOL:
        body["has"] = list(has)
    return body


def _described(value: Any, text: str | None = None, why: str = "") -> dict:
    """An Opaque description of ``value``: its type's name, ``text`` or a short repr, and
    which container and iterator methods its type has."""
    text = _short_repr(value) if text is None else text
    return _opaque_body(type(value).__qualname__, text, why, protocol_of(value))


def _remember(value: Any, memo: dict[int, tuple[int, Any]] | None, body: dict) -> dict:
    """``body`` named by an ``id`` in ``memo``, which ``value`` now belongs to. Called
    before the items are encoded, so that an item which holds ``value`` refers to it."""
    if memo is not None:
        number = len(memo)
        memo[id(value)] = (number, value)
        body["id"] = number
    return body


def _encode_other(value: Any, depth: int, memo: dict | None) -> Any:
    if isinstance(value, Opaque):
        return _opaque_body(value.type_name, value.text, value.why, value.has)
    if isinstance(value, str):  # a subclass (numpy's str_): its text
        return str.__str__(value)
    np = _numpy()
    if np is not None:
        tagged = _encode_numpy(value, np, depth, memo)
        if tagged is not None:
            return tagged
    tagged = _encode_number(value)
    if tagged is not None:
        return tagged
    if isinstance(value, bytes | bytearray):
        if len(value) > 8 * MAX_ITEMS:
            return _described(value, f"{len(value)} bytes, too many", "limit")
        data = base64.b64encode(value).decode()
        if isinstance(value, bytes):
            return {"$bytes": data}
        return _remember(value, memo, {"$bytearray": data})
    if isinstance(value, list | tuple | set | frozenset | range | dict):
        size = len(value)
        if size > MAX_ITEMS:
            return _described(value, f"{size} items, too many", "limit")
        return _encode_container(value, depth, memo)
    if isinstance(value, array.array):
        if value.typecode not in _TYPECODES or len(value) > MAX_ITEMS:
            return _described(value)
        data = base64.b64encode(value.tobytes()).decode()
        return _remember(value, memo, {"$array": value.typecode, "data": data})
    if np is not None:
        if isinstance(value, memoryview):
            inner = _encode_plain_array(np.asarray(value), np, depth, None)
            return {"$memoryview": inner, "readonly": bool(value.readonly)}
        if not isinstance(value, type) and hasattr(type(value), "__array__"):
            # pandas, xarray, a student's class: what np.asarray makes of it, in the kernel
            converted = np.asarray(value)
            if isinstance(converted, np.ndarray):
                return _encode_array(converted, np, depth, None)
        try:
            view = memoryview(value)  # the buffer protocol (mmap, ctypes arrays, ...)
        except TypeError:
            view = None
        if view is not None:
            return _encode_array(np.asarray(view), np, depth, None)
    if isinstance(value, Iterator):
        return _described(value, None, "iterator")
    return _described(value)


def _encode_number(value: Any) -> Any:
    """A number of any kind, tagged as the nearest type the wire carries; None otherwise."""
    if isinstance(value, int):  # a subclass (IntEnum): its value
        return _encode_int(int(value))
    if isinstance(value, float):
        return _encode_float(float(value))
    if isinstance(value, fractions.Fraction):
        return _encode_fraction(value.numerator, value.denominator)
    if isinstance(value, decimal.Decimal):
        return _encode_decimal(value)
    if isinstance(value, complex):
        return {"$complex": [_encode_float(value.real), _encode_float(value.imag)]}
    if not isinstance(value, numbers.Number):
        return None
    if isinstance(value, numbers.Integral):
        return _encode_int(int(value))
    if isinstance(value, numbers.Rational):
        return _encode_fraction(int(value.numerator), int(value.denominator))
    if isinstance(value, numbers.Real):
        return _encode_float(float(value))
    if isinstance(value, numbers.Complex):
        number = complex(value)
        return {"$complex": [_encode_float(number.real), _encode_float(number.imag)]}
    return None


def _encode_fraction(numerator: int, denominator: int) -> Any:
    if denominator <= 0:
        return _opaque_body("Fraction", "unreadable", "")
    if max(numerator.bit_length(), denominator.bit_length()) > 3.3 * MAX_INT_DIGITS:
        return _opaque_body("Fraction", "a fraction of too many digits", "limit")
    return {"$fraction": [str(numerator), str(denominator)]}


def _encode_decimal(value: decimal.Decimal) -> Any:
    text = str(value)
    if len(text) > MAX_DECIMAL_TEXT or not _decimal_in_bounds(value):
        return _opaque_body("Decimal", text[:40] + "...", "limit")
    return {"$decimal": text}


def _decimal_in_bounds(value: decimal.Decimal) -> bool:
    if not value.is_finite():
        return True
    exponent = value.as_tuple().exponent
    return (
        isinstance(exponent, int)
        and abs(exponent) <= MAX_INT_DIGITS
        and abs(value.adjusted()) <= MAX_INT_DIGITS
    )


def _encode_container(value: Any, depth: int, memo: dict | None) -> Any:
    if isinstance(value, range):
        return {"$range": [value.start, value.stop, value.step]}
    if isinstance(value, list):
        body = _remember(value, memo, {"$list": None})
        body["$list"] = [encode(v, depth + 1, memo) for v in value]
        return body
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, depth + 1, memo) for v in value]}
    if isinstance(value, frozenset):
        return {"$frozenset": [encode(v, depth + 1, memo) for v in value]}
    if isinstance(value, set):
        body = _remember(value, memo, {"$set": None})
        body["$set"] = [encode(v, depth + 1, memo) for v in value]
        return body
    body = _remember(value, memo, {"$dict": None})
    body["$dict"] = [
        [encode(k, depth + 1, memo), encode(v, depth + 1, memo)] for k, v in value.items()
    ]
    if isinstance(value, Counter):
        body["kind"] = "Counter"
    elif isinstance(value, OrderedDict):
        body["kind"] = "OrderedDict"
    elif isinstance(value, defaultdict):
        factory = value.default_factory
        names = [name for name, known in _FACTORIES.items() if known is factory]
        if names:  # another factory (a lambda) is code: the dict crosses as a plain dict
            body["kind"], body["default"] = "defaultdict", names[0]
    return body


def _encode_numpy(value: Any, np: Any, depth: int, memo: dict | None) -> Any:
    if isinstance(value, np.random.Generator):
        bit_generator = value.bit_generator
        body = _remember(value, memo, {"$rng": type(bit_generator).__name__})
        body["state"] = encode(bit_generator.state)
        return body
    if isinstance(value, np.ndarray):
        return _encode_array(value, np, depth, memo)
    if isinstance(value, np.generic):
        if value.dtype.kind in "biufc":
            data = base64.b64encode(np.asarray(value).tobytes()).decode()
            return {"$npscalar": value.dtype.str, "data": data}
        return _described(value)  # a datetime64 or a record: not numbers
    return None


def _encode_array(value: Any, np: Any, depth: int, memo: dict | None) -> Any:
    """An ndarray or a subclass of it: a masked array with its mask, a matrix as one, any
    other subclass as a plain ndarray; read-only if it was."""
    masked = sys.modules.get("numpy.ma")  # not imported: then no value is a masked array
    if masked is not None and isinstance(value, masked.MaskedArray):
        body = _remember(value, memo, {"$masked": None})
        body["$masked"] = _encode_plain_array(masked.getdata(value), np, depth, memo)
        body["mask"] = _encode_plain_array(masked.getmaskarray(value), np, depth, None)
        fill = value.fill_value
        if isinstance(fill, np.generic) and fill.dtype.kind in "biufc":
            body["fill"] = encode(fill)
    else:
        named = _remember(value, memo, {})  # before its items, which may hold it
        body = _encode_plain_array(np.asarray(value), np, depth, memo)
        body.update(named)
        if isinstance(value, np.matrix):
            body["kind"] = "matrix"
    if not value.flags.writeable:
        body["readonly"] = True
    return body


def _encode_plain_array(value: Any, np: Any, depth: int, memo: dict | None) -> dict:
    """A plain ndarray: its bytes if it holds plain numbers, else its items one by one."""
    if value.size > MAX_ITEMS:
        return _opaque_body("ndarray", f"shape {value.shape}, too large", "limit")
    if value.dtype.kind in "biufc" and value.dtype.fields is None:
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"$nd": value.dtype.str, "shape": list(value.shape), "data": data}
    return {
        "$ndlist": list(value.shape),
        "items": [encode(v, depth + 1, memo) for v in value.ravel().tolist()],
    }


# ------------------------------------------------------------------------ decoding
def decode(data: Any, depth: int = 0, *, subject: str = "") -> Any:
    """The value ``encode`` described. Anything else (unknown tags, bodies of the wrong
    type, types no reply may name, more than :data:`MAX_REPLY_ITEMS` items) becomes an
    :class:`Opaque`, and nothing but an ``Exception`` can come out of decoding: the data
    may have been written by student code. ``subject`` is whose value it is, for the
    messages of the Opaque values in it ("your `f` returned")."""
    return decode_many([data], depth, subject=subject)[0]


def decode_many(items: list, depth: int = 0, *, subject: str | Sequence[str] = "") -> list:
    """``[decode(item) for item in items]``, with one budget of items for them all (the
    results of one batch are one reply). ``subject``: one for all, or one for each item."""
    subjects = [subject] * len(items) if isinstance(subject, str) else list(subject)
    decoder = _Decoder(MAX_REPLY_ITEMS)
    try:
        out = []
        for item, whose in zip(items, subjects, strict=True):
            decoder.subject = whose
            out.append(decoder.value(item, depth))
        return out
    except _TooMany:
        return [
            Opaque("value", "more items than one reply may hold", "limit", whose)
            for whose in subjects
        ]


def decode_arguments(args: Any, kwargs: Any) -> tuple[list, dict]:
    """The arguments :func:`encode_arguments` encoded, in the kernel: an object the grader
    passed twice is one object here (``$ref``). Raises ValueError for data that is not a
    list of arguments and a dict of keyword arguments."""
    decoder = _Decoder(MAX_REPLY_ITEMS, refs=True)
    try:
        positional, keywords = decoder.value(args, 0), decoder.value(kwargs, 0)
    except _TooMany:
        raise ValueError("more arguments than a request may hold") from None
    if not isinstance(positional, list) or not isinstance(keywords, dict):
        raise ValueError("unreadable arguments")
    if not all(isinstance(key, str) for key in keywords):
        raise ValueError("unreadable keyword arguments")
    return positional, keywords


class _TooMany(Exception):
    """The reply's budget of items is spent."""


class _Decoder:
    """One reply's decoding: work and memory linear in the reply's size. Every item
    counts against ``budget``; no type is looked up by a name the reply gives beyond
    numpy's plain numbers and bit generators and the builtin factories of a defaultdict,
    and nothing is imported but numpy's own ``numpy.ma`` for a masked array. Only the
    kernel's decoding of the grader's arguments (``refs``) follows ``$ref``: in a reply,
    references would let a small reply stand for a value of exponential size."""

    def __init__(self, budget: int, *, refs: bool = False, subject: str = "") -> None:
        self.left = budget
        self.refs: dict[int, Any] | None = {} if refs else None
        self.subject = subject

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise _TooMany()

    def opaque(self, type_name: str, text: str, why: str = "", has: Any = None) -> Opaque:
        return Opaque(type_name, text, why, self.subject, has)

    def keep(self, data: dict, value: Any) -> Any:
        """``value``, which ``$ref`` may now name by the ``id`` ``data`` gives it."""
        if self.refs is not None:
            number = data.get("id")
            if _is_int(number) and number not in self.refs:
                self.refs[number] = value
        return value

    def value(self, data: Any, depth: int) -> Any:
        self.spend(1)
        if depth > MAX_DEPTH:
            return self.opaque("value", "nested too deeply", "limit")
        if data is None or isinstance(data, bool | int | float | str):
            return data
        if isinstance(data, list):  # plain JSON lists only come from hand-made replies
            return [self.value(v, depth + 1) for v in data]
        if not isinstance(data, dict) or len(data) == 0:
            return self.opaque(type(data).__name__, "unreadable")
        tag = next(iter(data))
        try:
            return self.tagged(str(tag), data[tag], data, depth)
        except _TooMany:
            raise
        except Exception as error:  # a body of the wrong type or shape: data, not a value
            return self.opaque("value", f"an unreadable {str(tag)[:40]}: {type(error).__name__}")

    def tagged(self, tag: str, body: Any, data: dict, depth: int) -> Any:
        if tag in {"$list", "$tuple", "$set", "$frozenset", "$dict"}:
            return self.container(tag, body, data, depth)
        if tag == "$int":
            if not isinstance(body, str) or len(body) > MAX_INT_DIGITS + 1:
                return self.opaque("int", "too many digits", "limit")
            return int(body)
        if tag == "$float":
            if isinstance(body, str) and len(body) <= 40:
                return float(body)
            return self.opaque("float", "unreadable")
        if tag in {"$fraction", "$decimal", "$complex"}:
            return self.number(tag, body, depth)
        if tag in {"$bytes", "$bytearray"}:
            raw = _bytes(body)
            self.spend(len(raw) // 8)
            return raw if tag == "$bytes" else self.keep(data, bytearray(raw))
        if tag == "$array":
            if not isinstance(body, str) or body not in _TYPECODES:
                return self.opaque("array", "unreadable")
            raw, out = _bytes(data.get("data")), array.array(body)
            if len(raw) % out.itemsize:
                return self.opaque("array", "its data does not fit its type")
            self.spend(len(raw) // out.itemsize)
            out.frombytes(raw)
            return self.keep(data, out)
        if tag == "$range":
            bounds = _list(body)
            if not 1 <= len(bounds) <= 3 or not all(_is_int(b) for b in bounds):
                return self.opaque("range", "unreadable")
            span = range(*bounds)
            try:
                too_long = len(span) > MAX_ITEMS
            except OverflowError:
                too_long = True
            return self.opaque("range", "too many items", "limit") if too_long else span
        if tag == "$opaque":
            why, has = data.get("why"), data.get("has")
            return self.opaque(
                _text(body, "value"),
                _text(data.get("repr", ""), ""),
                _text(why, ""),
                has if isinstance(has, list) else None,
            )
        if tag == "$ref":
            if self.refs is None or not _is_int(body) or body not in self.refs:
                return self.opaque("value", "a reference to a value not sent")
            return self.refs[body]
        np = _numpy()
        if np is None:
            return self.opaque("value", f"{tag[:40]} without numpy")
        return self.numpy_value(np, tag, body, data, depth)

    def container(self, tag: str, body: Any, data: dict, depth: int) -> Any:
        raw = _list(body)
        if tag == "$list":
            out = self.keep(data, [])
            out.extend(self.value(v, depth + 1) for v in raw)
            return out
        if tag == "$dict":
            pairs = [_list(pair) for pair in raw]
            if any(len(pair) != 2 for pair in pairs):
                return self.opaque("dict", "unreadable")
            mapping = self.keep(data, _mapping(data))
            keys = [self.value(k, depth + 1) for k, _ in pairs]
            values = [self.value(v, depth + 1) for _, v in pairs]
            if not _hashes_spread(keys):
                return self.colliding("dict", len(keys))
            for key, item in zip(keys, values, strict=True):
                mapping[key] = item
            return mapping
        items = [self.value(v, depth + 1) for v in raw]
        if tag == "$tuple":
            return tuple(items)
        if not _hashes_spread(items):
            return self.colliding(tag[1:], len(items))
        return self.keep(data, set(items)) if tag == "$set" else frozenset(items)

    def colliding(self, kind: str, size: int) -> Opaque:
        return self.opaque(kind, f"{size} items, too many of them with the same hash", "limit")

    def number(self, tag: str, body: Any, depth: int) -> Any:
        if tag == "$fraction":
            parts = _list(body)
            if len(parts) != 2 or not all(
                isinstance(p, str) and _INT_TEXT.fullmatch(p) for p in parts
            ):
                return self.opaque("Fraction", "unreadable")
            numerator, denominator = int(parts[0]), int(parts[1])
            if denominator <= 0:
                return self.opaque("Fraction", "unreadable")
            return fractions.Fraction(numerator, denominator)
        if tag == "$decimal":
            if not isinstance(body, str) or len(body) > MAX_DECIMAL_TEXT:
                return self.opaque("Decimal", "too many digits", "limit")
            number = decimal.Decimal(body)  # InvalidOperation (an Exception) for junk
            if not _decimal_in_bounds(number):
                return self.opaque("Decimal", "an exponent too large", "limit")
            return number
        parts = [self.value(part, depth + 1) for part in _list(body)]
        if len(parts) != 2 or not all(type(p) in {int, float} for p in parts):
            return self.opaque("complex", "unreadable")
        return complex(parts[0], parts[1])

    def numpy_value(self, np: Any, tag: str, body: Any, data: dict, depth: int) -> Any:
        if tag == "$nd":
            dtype, shape = _number_dtype(np, body), _shape(data.get("shape"))
            raw = _bytes(data.get("data"))
            count = math.prod(shape)
            if len(raw) != count * dtype.itemsize:
                return self.opaque("ndarray", "its data does not fit its shape")
            self.spend(count)
            return self.finish(np, np.frombuffer(raw, dtype=dtype).reshape(shape).copy(), data)
        if tag == "$ndlist":
            shape = _shape(body)
            items = _list(data.get("items"))
            if len(items) != math.prod(shape):
                return self.opaque("ndarray", "its items do not fit its shape")
            out = np.empty(len(items), dtype=object)
            for index, item in enumerate(items):  # one by one: a list stays an item
                out[index] = self.value(item, depth + 1)
            return self.finish(np, out.reshape(shape), data)
        if tag == "$masked":
            values = self.value(body, depth + 1)
            mask = self.value(data.get("mask"), depth + 1)
            if type(values) is not np.ndarray or type(mask) is not np.ndarray:
                return self.opaque("MaskedArray", "unreadable")
            if mask.dtype != np.bool_ or mask.shape != values.shape:
                return self.opaque("MaskedArray", "its mask does not fit its data")
            import numpy.ma  # numpy's own module, whatever the reply says

            out = numpy.ma.MaskedArray(values, mask=mask)
            if "fill" in data:
                fill = self.value(data["fill"], depth + 1)
                if isinstance(fill, np.generic):
                    with contextlib.suppress(Exception):  # numpy refuses a fill of the wrong kind
                        out.fill_value = fill
            return self.finish(np, out, data)
        if tag == "$memoryview":
            inner = self.value(body, depth + 1)
            if type(inner) is not np.ndarray or inner.dtype.kind not in "biufc":
                return self.opaque("memoryview", "unreadable")
            if data.get("readonly") is True:
                inner.flags.writeable = False
            return memoryview(inner)
        if tag == "$npscalar":
            dtype, raw = _number_dtype(np, body), _bytes(data.get("data"))
            if len(raw) != dtype.itemsize:
                return self.opaque("number", "unreadable")
            return np.frombuffer(raw, dtype=dtype)[0]
        if tag == "$rng":
            if body not in BIT_GENERATORS:
                return self.opaque("Generator", _text(body, ""))
            state = self.value(data.get("state"), depth + 1)
            bit_generator = getattr(np.random, body)(0)
            bit_generator.state = state  # numpy checks it, and raises ValueError or TypeError
            return self.keep(data, np.random.Generator(bit_generator))
        return self.opaque("value", f"unknown tag {tag[:40]}")

    def finish(self, np: Any, out: Any, data: dict) -> Any:
        """A decoded array as what it was: a matrix, read-only, named for ``$ref``."""
        if data.get("kind") == "matrix":
            if out.ndim != 2:
                return self.opaque("matrix", "not two-dimensional")
            out = np.asmatrix(out)
        if data.get("readonly") is True:
            out.flags.writeable = False
        return self.keep(data, out)


def _mapping(data: dict) -> dict:
    """The empty mapping of the kind ``data`` names: dict unless it names one of the
    collections' dicts (a defaultdict only with a builtin factory)."""
    kind = data.get("kind")
    if kind == "Counter":
        return Counter()
    if kind == "OrderedDict":
        return OrderedDict()
    default = data.get("default")
    if kind == "defaultdict" and isinstance(default, str) and default in _FACTORIES:
        return defaultdict(_FACTORIES[default])
    return {}


def _list(body: Any) -> list:
    if not isinstance(body, list):
        raise TypeError("not a list")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, default: str) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else default


def _shape(value: Any) -> tuple[int, ...]:
    """A shape as numpy takes it: at most MAX_DEPTH whole numbers, none negative or huge."""
    dims = _list(value)
    if len(dims) > MAX_DEPTH or not all(_is_int(d) and 0 <= d <= MAX_REPLY_ITEMS for d in dims):
        raise ValueError("not a shape")
    return tuple(dims)


def _bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError("not base64 text")
    return base64.b64decode(value, validate=True)


def _number_dtype(np: Any, name: Any) -> Any:
    """The dtype of plain numbers that ``name`` spells, or ValueError: never a structured,
    object, string or sub-array dtype, which a reply must not make the grader build."""
    if not isinstance(name, str) or not _NUMBER_DTYPE.fullmatch(name):
        raise ValueError("not a number dtype")
    dtype = np.dtype(name)
    plain = dtype.fields is None and dtype.subdtype is None and not dtype.hasobject
    if not plain or dtype.kind not in "biufc" or dtype.itemsize not in {1, 2, 4, 8, 16, 32}:
        raise ValueError("not a number dtype")
    return dtype


def _hashes_spread(items: list) -> bool:
    """Whether no more than :data:`MAX_SAME_HASH` of ``items`` share a hash, counted in
    linear time (two different hashes never compare). TypeError for an unhashable item."""
    counts = Counter(hash(item) for item in items)
    return max(counts.values(), default=0) <= MAX_SAME_HASH


def _numpy() -> Any:
    global _NUMPY
    if _NUMPY is None:  # looked up once: encoding asks for every value
        try:
            import numpy
        except ImportError:  # a kernel without numpy still answers for plain values
            return None
        _NUMPY = numpy
    return _NUMPY


_NUMPY: Any = None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ is the student's; it must not break the reply
        text = "unprintable"
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------------------ in the kernel
def cell_line(error: BaseException) -> int | None:
    """The line, within its notebook cell, that ``error`` was raised from: that of the
    innermost frame of its traceback whose code was compiled from a cell (see
    :data:`CELL_FILE`), or None when none was (a function defined in a module)."""
    line = None
    trace, frames = error.__traceback__, 0
    while trace is not None and frames < 10_000:
        filename = trace.tb_frame.f_code.co_filename
        if isinstance(filename, str) and CELL_FILE.search(filename):
            number = trace.tb_lineno
            line = number if isinstance(number, int) and number > 0 else line
        trace, frames = trace.tb_next, frames + 1
    return line


def describe(name: str, namespace: dict) -> dict:
    """What ``name`` is in the student's namespace, as the judge needs to bind it."""
    if name not in namespace:
        return {"kind": "missing"}
    value = namespace[name]
    if type(value).__name__ == "module" and hasattr(value, "__name__"):
        return {"kind": "module", "module": str(value.__name__)}
    if callable(value) and not isinstance(value, type):
        return {"kind": "callable", "type": type(value).__qualname__}
    return {"kind": "value", "value": encode(value)}


def call(name: str, args: Any, kwargs: Any, namespace: dict) -> dict:
    """Call the student's ``name`` with the decoded arguments. The reply holds the result
    or the exception (:func:`_failure`), and ``changed``: the new state of each argument
    the call changed (see :func:`_changed`)."""
    function = namespace.get(name)
    if function is None or not callable(function):
        return {"error": {"type": "NameError", "message": f"name '{name}' is not defined"}}
    try:
        args, kwargs = decode_arguments(args, kwargs)
    except ValueError as error:
        return {"error": {"type": "ValueError", "message": f"the grader's request: {error}"}}
    before = _snapshot(args, kwargs)
    try:
        result = function(*args, **kwargs)
    except KeyboardInterrupt:  # the grader's own interrupt (a time limit): let it through
        raise
    except BaseException as error:  # SystemExit too: a function that exits has failed
        return {"error": _failure(error), "changed": _changed(before, args, kwargs)}
    return {"result": encode(result), "changed": _changed(before, args, kwargs)}


def repeat(
    name: str, count: Any, args: Any, kwargs: Any, namespace: dict, fresh: Any = None
) -> dict:
    """Call the student's ``name`` ``count`` times, as a loop in the grader's process would:
    every call gets the same argument objects, so a call sees what the calls before it
    did to them (a generator continues its stream; a list one call appended to is longer
    at the next). Each result is encoded as soon as its call returns. The reply lists the
    results, or the first exception with the ``index`` of the call that raised it and the
    results before it; either way ``changed`` gives the arguments' state as the batch left
    them (as the failing call left them). A batch whose results pass
    :data:`REPEAT_BYTES` stops early with the results so far; the grader asks again for
    the rest, with the arguments as they now are.

    ``fresh`` lists the arguments (positions, keywords) that the loop would make anew on
    every pass, such as ``[1, 0]`` in ``[f([1, 0]) for _ in range(n)]``: each call gets a
    shallow copy of them (a new list of the same items, as the display makes), and they
    are never sent back (the grader holds no name for them)."""
    function = namespace.get(name)
    if function is None or not callable(function):
        return {"error": {"type": "NameError", "message": f"name '{name}' is not defined"}}
    try:
        args, kwargs = decode_arguments(args, kwargs)
    except ValueError as error:
        return {"error": {"type": "ValueError", "message": f"the grader's request: {error}"}}
    renewed = {k for k in fresh if type(k) in {int, str}} if isinstance(fresh, list) else set()
    before = _snapshot(args, kwargs, renewed)
    results: list = []
    size = 0
    for index in range(max(int(count), 0)):
        try:
            if renewed:
                call_args = [copy.copy(a) if i in renewed else a for i, a in enumerate(args)]
                call_kwargs = {k: copy.copy(v) if k in renewed else v for k, v in kwargs.items()}
                result = function(*call_args, **call_kwargs)
            else:
                result = function(*args, **kwargs)
        except KeyboardInterrupt:  # the grader's own interrupt (a time limit): let it through
            raise
        except BaseException as error:  # SystemExit too: a function that exits has failed
            return {
                "error": {**_failure(error), "index": index},
                "results": results,
                "changed": _changed(before, args, kwargs),
            }
        encoded = encode(result)
        results.append(encoded)
        size += len(json.dumps(encoded, allow_nan=False))
        if size > REPEAT_BYTES:
            break
    return {"results": results, "changed": _changed(before, args, kwargs)}


def _failure(error: BaseException) -> dict:
    """An exception of the student's code as the reply gives it: its type's name, its
    message, and the line of the student's cell it was raised from (or None)."""
    try:
        message = str(error)[:MAX_MESSAGE]
    except Exception:  # a broken __str__: the type still says what happened
        message = ""
    return {
        "type": type(error).__name__,
        "message": message,
        "student": True,
        "line": cell_line(error),
    }


def _snapshot(
    args: list, kwargs: dict, skip: set | frozenset = frozenset()
) -> list[tuple[int | str, str]]:
    """Each argument's key (its position, or its keyword) and its encoding, as text; the
    keys in ``skip`` left out."""
    keyed = [*enumerate(args), *kwargs.items()]
    return [
        (key, json.dumps(encode(value), allow_nan=False)) for key, value in keyed if key not in skip
    ]


def _changed(before: list[tuple[int | str, str]], args: list, kwargs: dict) -> list:
    """``[key, encoding]`` of each argument of ``before`` whose encoding differs now: the
    arguments the student's code changed, and only those (a reply stays small)."""
    changed = []
    for key, text in before:
        after = encode(args[key] if isinstance(key, int) else kwargs[key])
        if json.dumps(after, allow_nan=False) != text:
            changed.append([key, after])
    return changed


def answer(request: dict, namespace: dict) -> dict:
    """The reply to one ``describe``, ``call`` or ``repeat`` request."""
    op = request.get("op")
    if op == "describe":
        return describe(str(request.get("name")), namespace)
    if op == "repeat":
        # ``fresh`` only when the request has one: the fields of a plain request stay as
        # they were.
        fresh = {"fresh": request["fresh"]} if "fresh" in request else {}
        return repeat(
            str(request.get("name")),
            request.get("count"),
            request.get("args"),
            request.get("kwargs"),
            namespace,
            **fresh,
        )
    return call(str(request.get("name")), request.get("args"), request.get("kwargs"), namespace)


def session(path: str, namespace: dict) -> None:
    """Serve requests from the grader over the Unix socket at ``path`` until it says
    ``end`` or hangs up. Runs inside one notebook execution, in the kernel's main thread,
    so that an interrupt stops the student's function as it would stop a cell; what the
    student's functions print meanwhile is dropped (the grader reads only replies, and
    the hidden checks' inputs must not reach the feedback: see :func:`_quiet`)."""
    import socket
    import struct

    def receive(conn: socket.socket) -> dict | None:
        header = _read_exactly(conn, 8)
        if header is None:
            return None
        (size,) = struct.unpack(">Q", header)
        body = _read_exactly(conn, size)
        return None if body is None else json.loads(body)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    try:
        with _quiet():
            while True:
                request = receive(conn)
                if request is None or request.get("op") == "end":
                    return
                # Again for each request: a function may replace sys.stdout for good.
                with (
                    contextlib.redirect_stdout(_Sink()),
                    contextlib.redirect_stderr(_Sink()),
                ):
                    reply = answer(request, namespace)
                body = json.dumps(reply, allow_nan=False).encode()
                conn.sendall(struct.pack(">Q", len(body)) + body)
    finally:
        conn.close()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Drop everything written while the session runs, whichever way it is written.

    Student code may hold on to ipykernel's own streams (a ``logging`` handler made by
    ``basicConfig`` in an earlier cell, a saved ``sys.stdout``), write to ``sys.__stdout__``
    or to file descriptors 1 and 2 (which ipykernel reads from a pipe and publishes), or
    keep a buffered writer of its own on them. Output written during the session is
    published as the session's, which the grader never shows; but text left in a buffer
    comes out when something later flushes it, during another cell, and the graded
    notebook (hence the feedback page) shows it there: hidden inputs printed by a
    function, in a test we made, reached the next cell this way. So, for the session:
    ipykernel's streams drop what they are given, ``sys`` holds sinks, and descriptors 1
    and 2 lead to /dev/null; at its end every buffer on 1 and 2 is flushed into /dev/null
    before they lead back to the pipe."""
    import os
    import sys

    names = ("stdout", "stderr", "__stdout__", "__stderr__")
    saved = {name: getattr(sys, name, None) for name in names}
    muted = _mute(saved.values())
    descriptors = _to_devnull((1, 2))
    for name in names:
        setattr(sys, name, _Sink())
    try:
        yield
    finally:
        for name, stream in saved.items():
            setattr(sys, name, stream)
        try:
            _flush_all([*saved.values(), *_writers_on((1, 2))])  # into /dev/null
        finally:
            _unmute(muted)
            for fd, copy_of in descriptors:
                with contextlib.suppress(OSError):
                    os.dup2(copy_of, fd)
                    os.close(copy_of)


def _mute(streams: Any) -> list:
    """Make ipykernel's stream objects among ``streams`` drop what they are written;
    a list of (stream, its own ``write`` attribute if it had one) for :func:`_unmute`."""
    import sys

    module = sys.modules.get("ipykernel.iostream")
    kind = getattr(module, "OutStream", None)
    muted = []
    for stream in dict.fromkeys(s for s in streams if s is not None):
        if isinstance(kind, type) and isinstance(stream, kind):
            with contextlib.suppress(Exception):
                own = vars(stream).get("write", _NOTHING)
                stream.write = _Sink().write
                muted.append((stream, own))
    return muted


def _unmute(muted: list) -> None:
    for stream, own in muted:
        with contextlib.suppress(Exception):
            if own is _NOTHING:
                del stream.write
            else:
                stream.write = own


def _to_devnull(fds: tuple[int, ...]) -> list[tuple[int, int]]:
    """Point ``fds`` at /dev/null; (fd, a copy of what it was) for each one moved."""
    import os

    moved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return moved
    try:
        for fd in fds:
            with contextlib.suppress(OSError):
                copy_of = os.dup(fd)
                os.dup2(devnull, fd)
                moved.append((fd, copy_of))
    finally:
        os.close(devnull)
    return moved


def _writers_on(fds: tuple[int, ...]) -> list:
    """Python's buffered writers on ``fds`` anywhere in the kernel (the student's own
    ``open(1, "w")`` among them), found among the objects the garbage collector tracks."""
    import gc
    import io

    kinds = frozenset({io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom})
    found = []
    for item in [item for item in gc.get_objects() if type(item) in kinds]:  # the fast part
        with contextlib.suppress(Exception):
            if not item.closed and item.fileno() in fds:
                found.append(item)
    return found


def _flush_all(streams: Any) -> None:
    """Flush ``streams`` and C's stdio buffers; a stream that cannot flush is skipped."""
    for stream in dict.fromkeys(s for s in streams if s is not None):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


_NOTHING = object()


def _read_exactly(conn: Any, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = conn.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class _Sink(io.TextIOBase):
    """A text stream that forgets what is written to it. A TextIOBase, so that code that
    asks a stream what it is (isatty, writable, encoding; fileno raises as for any stream
    without one) gets the usual answers."""

    encoding = "utf-8"

    def write(self, text: str) -> int:
        return len(text)

    def writable(self) -> bool:
        return True
