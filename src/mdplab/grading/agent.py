"""The grader's side of the wire inside the student's kernel, and the value codec both
sides share.

The grader installs the source of this module in the sandboxed kernel as the module
``mdplab_agent`` (the kernel cannot import mdplab) and runs :func:`session`, a request
loop over a Unix socket: each request looks a name up in the student's namespace and
describes it, calls it, or calls it a number of times with the same arguments (one round
trip where a Monte Carlo check would otherwise make a thousand). Values cross as tagged
JSON: numbers, strings, containers, numpy arrays and scalars, and numpy random generators
(whose state travels back after a call, so a generator passed twice continues where it
stopped, as it would in one process).
Anything else crosses as an opaque description and cannot pass a check.

Nothing here is trusted by the grader: student code can replace any of it, but whatever it
sends back is only data, which the checks in the grader's own process judge.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from typing import Any

MAX_DEPTH = 32
MAX_ITEMS = 2_000_000
# A batch of repeated calls stops once its encoded results pass this size (the grader's
# reply limit is far larger; the rest of the batch comes in further requests).
REPEAT_BYTES = 32 * 1024 * 1024


class Opaque:
    """A value the wire cannot carry: its type and a short repr, and nothing usable."""

    def __init__(self, type_name: str, text: str) -> None:
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return f"<{self.type_name} from the notebook: {self.text}>"

    def __float__(self) -> float:
        raise TypeError(f"a {self.type_name} is not a number")

    def __int__(self) -> int:
        raise TypeError(f"a {self.type_name} is not a whole number")


def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data with type tags (see the module docstring)."""
    if depth > MAX_DEPTH:
        return {"$opaque": type(value).__name__, "repr": "nested too deeply"}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"$int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    np = _numpy()
    if np is not None:
        tagged = _encode_numpy(value, np, depth)
        if tagged is not None:
            return tagged
    if isinstance(value, list | tuple | set | frozenset | range | dict):
        size = len(value)
        if size > MAX_ITEMS:
            return {"$opaque": type(value).__name__, "repr": f"{size} items, too many"}
    if isinstance(value, range):
        return {"$range": [value.start, value.stop, value.step]}
    if isinstance(value, list):
        return {"$list": [encode(v, depth + 1) for v in value]}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$set": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"$dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    return {"$opaque": type(value).__qualname__, "repr": _short_repr(value)}


def _encode_numpy(value: Any, np: Any, depth: int) -> Any:
    if isinstance(value, np.random.Generator):
        bit_generator = value.bit_generator
        return {"$rng": type(bit_generator).__name__, "state": encode(bit_generator.state)}
    if isinstance(value, np.ndarray):
        if value.size > MAX_ITEMS:
            return {"$opaque": "ndarray", "repr": f"shape {value.shape}, too large"}
        if value.dtype.kind in "biufc":
            data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
            return {"$nd": value.dtype.str, "shape": list(value.shape), "data": data}
        return {
            "$ndlist": list(value.shape),
            "items": [encode(v, depth + 1) for v in value.ravel().tolist()],
        }
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        data = base64.b64encode(np.asarray(value).tobytes()).decode()
        return {"$npscalar": value.dtype.str, "data": data}
    return None


def decode(data: Any, depth: int = 0) -> Any:
    """The value ``encode`` described; unknown tags become :class:`Opaque`."""
    if depth > MAX_DEPTH:
        return Opaque("value", "nested too deeply")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):  # plain JSON lists only come from hand-made replies
        return [decode(v, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        return Opaque(type(data).__name__, "unreadable")
    tag = next(iter(data))
    body = data[tag]
    if tag == "$int":
        return int(body)
    if tag == "$float":
        return float(body)
    if tag == "$list":
        return [decode(v, depth + 1) for v in body]
    if tag == "$tuple":
        return tuple(decode(v, depth + 1) for v in body)
    if tag == "$set":
        return {decode(v, depth + 1) for v in body}
    if tag == "$dict":
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
    if tag == "$range":
        return range(*body)
    np = _numpy()
    if tag == "$nd" and np is not None:
        raw = base64.b64decode(data["data"])
        return np.frombuffer(raw, dtype=np.dtype(body)).reshape(data["shape"]).copy()
    if tag == "$ndlist" and np is not None:
        items = [decode(v, depth + 1) for v in data["items"]]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(body)
    if tag == "$npscalar" and np is not None:
        return np.frombuffer(base64.b64decode(data["data"]), dtype=np.dtype(body))[0]
    if tag == "$rng" and np is not None:
        bit_generator = getattr(np.random, str(body), None)
        if bit_generator is None or not isinstance(bit_generator, type):
            return Opaque("Generator", str(body))
        generator = np.random.Generator(bit_generator())
        generator.bit_generator.state = decode(data["state"], depth + 1)
        return generator
    if tag == "$opaque":
        return Opaque(str(body), str(data.get("repr", "")))
    return Opaque("value", f"unknown tag {tag}")


def _numpy() -> Any:
    try:
        import numpy

        return numpy
    except ImportError:  # a kernel without numpy still answers for plain values
        return None


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ is the student's; it must not break the reply
        text = "unprintable"
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------- in the kernel
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
    """Call the student's ``name`` with the decoded arguments."""
    function = namespace.get(name)
    if function is None or not callable(function):
        return {"error": {"type": "NameError", "message": f"name '{name}' is not defined"}}
    args, kwargs = decode(args), decode(kwargs)
    try:
        result = function(*args, **kwargs)
    except KeyboardInterrupt:  # the grader's own interrupt (a time limit): let it through
        raise
    except BaseException as error:  # SystemExit too: a function that exits has failed
        return {"error": {"type": type(error).__name__, "message": str(error)[:2000]}}
    return {"result": encode(result), "generators": _generator_states(args, kwargs)}


def repeat(name: str, count: Any, args: Any, kwargs: Any, namespace: dict) -> dict:
    """Call the student's ``name`` ``count`` times, as ``count`` ``call`` requests would:
    each call gets fresh copies of the arguments (a function that changes its arguments
    does not change the next call's), except the numpy generators passed as arguments,
    which are the same objects throughout, so each call continues their stream. Each
    result is encoded as soon as its call returns. The reply lists the results, or the
    first exception with the ``index`` of the call that raised it (and the generators'
    states from before that call, as ``call`` sends none back when it fails). A batch
    whose results pass :data:`REPEAT_BYTES` stops early with the results so far; the
    grader asks again for the rest."""
    function = namespace.get(name)
    if function is None or not callable(function):
        return {"error": {"type": "NameError", "message": f"name '{name}' is not defined"}}
    np = _numpy()
    given = (decode(args), decode(kwargs))  # never given to the student's code itself
    # Copying maps each generator passed as an argument to itself: one stream throughout.
    generators = {
        id(value): value
        for value in [*given[0], *given[1].values()]
        if np is not None and isinstance(value, np.random.Generator)
    }
    results: list = []
    size = 0
    for index in range(max(int(count), 0)):
        call_args, call_kwargs = copy.deepcopy(given, dict(generators))
        before = _generator_states(call_args, call_kwargs)
        try:
            result = function(*call_args, **call_kwargs)
        except KeyboardInterrupt:  # the grader's own interrupt (a time limit): let it through
            raise
        except BaseException as error:  # SystemExit too: a function that exits has failed
            message = str(error)[:2000]
            return {
                "error": {"type": type(error).__name__, "message": message, "index": index},
                "results": results,
                "generators": before,
            }
        encoded = encode(result)
        results.append(encoded)
        size += len(json.dumps(encoded, allow_nan=False))
        if size > REPEAT_BYTES:
            break
    return {"results": results, "generators": _generator_states(*given)}


def _generator_states(args: Any, kwargs: Any) -> list:
    """The state of each generator among the arguments, None for the other arguments."""
    np = _numpy()
    return [
        encode(a.bit_generator.state)
        if np is not None and isinstance(a, np.random.Generator)
        else None
        for a in [*args, *kwargs.values()]
    ]


def answer(request: dict, namespace: dict) -> dict:
    """The reply to one ``describe``, ``call`` or ``repeat`` request."""
    op = request.get("op")
    if op == "describe":
        return describe(str(request.get("name")), namespace)
    if op == "repeat":
        return repeat(
            str(request.get("name")),
            request.get("count"),
            request.get("args"),
            request.get("kwargs"),
            namespace,
        )
    return call(str(request.get("name")), request.get("args"), request.get("kwargs"), namespace)


def session(path: str, namespace: dict) -> None:
    """Serve requests from the grader over the Unix socket at ``path`` until it says
    ``end`` or hangs up. Runs inside one notebook execution, in the kernel's main thread,
    so that an interrupt stops the student's function as it would stop a cell; what the
    student's functions print meanwhile is dropped (the grader reads only replies)."""
    import contextlib
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
        while True:
            request = receive(conn)
            if request is None or request.get("op") == "end":
                return
            with (
                contextlib.redirect_stdout(_Sink()),
                contextlib.redirect_stderr(_Sink()),
            ):
                reply = answer(request, namespace)
            body = json.dumps(reply, allow_nan=False).encode()
            conn.sendall(struct.pack(">Q", len(body)) + body)
    finally:
        conn.close()


def _read_exactly(conn: Any, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = conn.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


class _Sink:
    """A text stream that forgets what is written to it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
