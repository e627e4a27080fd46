r"""The ONNX policy behind an HTTP endpoint, replayed through the simulator, with drift.

The seed's "applied engineer" track asks for the policy in a Dockerized endpoint. There is
no Docker here: :func:`serve_policy` stands in for it with a local
``http.server.ThreadingHTTPServer`` in a daemon thread, serving the graph of
:func:`~mdplab.autoscaler.onnx_policy.policy_to_onnx` with onnxruntime. The protocol is what
a container would expose:

- ``POST /decide`` with ``{"latency_ms": float, "rate": float, "instances": int}`` answers
  ``{"action": int, "name": str}``; bad input gets 400 and ``{"error": message}``;
- ``GET /health`` answers ``{"status": "ok", ...}``; any other path 404.

:func:`serve_and_replay` replays minutes of demand through
:func:`~mdplab.autoscaler.telemetry.replay` with every decision fetched over HTTP
(:func:`http_decider`), and reports the decision round trips, the service's latency as a
**5-minute sliding-window p95** (:func:`sliding_window_p95`) and whether every served action
equals :func:`~mdplab.autoscaler.export.lookup`.

:func:`quantise_transitions` mimics a production model whose transition probabilities are
stored coarsely (or have drifted): every row on a grid of ``step``.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mdplab.autoscaler.export import lookup
from mdplab.autoscaler.onnx_policy import (
    NO_ACTION,
    inference_session,
    model_bytes,
    policy_to_onnx,
    run_policy,
)
from mdplab.autoscaler.telemetry import SLA_MS, Physics, replay

if TYPE_CHECKING:
    import onnx

#: Largest request body the endpoint reads (bytes).
MAX_BODY = 4096
FIELDS = ("latency_ms", "rate", "instances")


class BadRequest(ValueError):
    """A request the endpoint answers with 400 and this message."""


def parse_decision_request(body: bytes, max_instances: int) -> tuple[float, float, int]:
    """``(latency_ms, rate, instances)`` of a request body, or :class:`BadRequest` saying why.

    The body must be a JSON object with exactly the keys ``latency_ms`` and ``rate`` (finite
    numbers) and ``instances`` (an integer in ``1..max_instances``)."""
    try:
        request = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, BadRequest) as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(request, dict):
        raise BadRequest(f"expected a JSON object with keys {list(FIELDS)}")
    missing = [key for key in FIELDS if key not in request]
    unknown = sorted(set(request) - set(FIELDS))
    if missing or unknown:
        raise BadRequest(f"expected the keys {list(FIELDS)}; missing {missing}, unknown {unknown}")
    numbers = []
    for key in ("latency_ms", "rate"):
        value = request[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{key} must be a number, got {value!r}")
        try:
            numbers.append(float(value))
        except OverflowError:
            raise BadRequest(f"{key} is too large") from None
        if not math.isfinite(numbers[-1]):
            raise BadRequest(f"{key} must be finite, got {value!r}")
    instances = request["instances"]
    if isinstance(instances, bool) or not isinstance(instances, int):
        raise BadRequest(f"instances must be an integer, got {instances!r}")
    if not 1 <= instances <= max_instances:
        raise BadRequest(f"instances must be between 1 and {max_instances}, got {instances}")
    return numbers[0], numbers[1], instances


def _no_constant(name: str) -> None:
    raise BadRequest(f"{name} is not a number JSON allows")


class _PolicyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], model: bytes) -> None:
        self.session = inference_session(model)
        meta = self.session.get_modelmeta().custom_metadata_map
        if "actions" not in meta or "max_instances" not in meta:
            raise ValueError("not a policy graph of policy_to_onnx: no actions in its metadata")
        self.actions: list[str] = json.loads(meta["actions"])
        self.max_instances = int(meta["max_instances"])
        self.producer = self.session.get_modelmeta().producer_name
        super().__init__(address, _PolicyHandler)


class _PolicyHandler(BaseHTTPRequestHandler):
    server: _PolicyServer
    server_version = "mdplab-policy/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request
        pass

    def _answer(self, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self) -> None:
        self._answer(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})

    def do_GET(self) -> None:
        if self.path != "/health":
            return self._not_found()
        self._answer(
            HTTPStatus.OK,
            {
                "status": "ok",
                "producer": self.server.producer,
                "actions": self.server.actions,
                "max_instances": self.server.max_instances,
            },
        )

    def do_POST(self) -> None:
        if self.path != "/decide":
            return self._not_found()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
        if length < 0:
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": "negative Content-Length"})
        if length > MAX_BODY:
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            return self._answer(status, {"error": f"the body must be at most {MAX_BODY} bytes"})
        try:
            minute = parse_decision_request(self.rfile.read(length), self.server.max_instances)
        except BadRequest as error:
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        try:
            action = int(run_policy(self.server.session, *minute)[0])
        except Exception:  # never a traceback to the client
            return self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "the policy failed"})
        if action == NO_ACTION:  # cannot happen after the checks above; kept for safety
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": "no state for this minute"})
        self._answer(HTTPStatus.OK, {"action": action, "name": self.server.actions[action]})

    def _method_not_allowed(self) -> None:
        self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} not allowed"})

    do_PUT = do_DELETE = do_PATCH = _method_not_allowed


@contextlib.contextmanager
def serve_policy(
    model_path_or_bytes: onnx.ModelProto | bytes | str | Path, host: str = "127.0.0.1"
) -> Iterator[str]:
    """Serve an ONNX policy on a free port of ``host``; yields the base URL.

    Stands in for the seed's Dockerized endpoint: a ``ThreadingHTTPServer`` on port 0 in a
    daemon thread, one onnxruntime session shared by the request threads (its ``run`` is
    thread-safe). Shut down and closed on exit, also when the block raises."""
    server = _PolicyServer((host, 0), model_bytes(model_path_or_bytes))
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="policy-endpoint", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class HttpDecider:
    """A :data:`~mdplab.autoscaler.telemetry.Decide` that asks an endpoint of
    :func:`serve_policy`: one plain request per call (``Connection: close``, no proxy).

    ``round_trip_ms`` holds the wall-clock time of every call and ``names`` the action names
    the endpoint answered. A refused request raises ``RuntimeError`` with its message."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        url = url.rstrip("/")
        self.url = url if url.endswith("/decide") else url + "/decide"
        self.timeout = timeout
        self.round_trip_ms: list[float] = []
        self.names: list[str] = []
        # A local endpoint: ignore http_proxy and friends from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __call__(self, latency_ms: float, rate: float, instances: int) -> int:
        body = json.dumps(
            {"latency_ms": float(latency_ms), "rate": float(rate), "instances": int(instances)}
        ).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json", "Connection": "close"},
            method="POST",
        )
        start = time.perf_counter()
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{self.url} answered {error.code}: {_message(error)}") from None
        finally:
            self.round_trip_ms.append((time.perf_counter() - start) * 1e3)
        self.names.append(answer["name"])
        return int(answer["action"])


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["error"])
    except Exception:
        return error.reason


def http_decider(url: str, timeout: float = 5.0) -> HttpDecider:
    """A decider that fetches every action from ``url`` (base URL or ``.../decide``)."""
    return HttpDecider(url, timeout)


def quantise_transitions(P: np.ndarray, step: float = 0.05) -> np.ndarray:
    r"""Every nonzero row of ``P`` (last axis) on the grid of multiples of ``step``.

    With :math:`M = 1/\text{step}` units (``1/step`` must be an integer), each row
    :math:`p` becomes :math:`q = u / M` by the **largest-remainder** method:
    :math:`u_i = \lfloor M p_i \rfloor`, then the :math:`M - \sum_i u_i` units still missing
    go one each to the entries of the support with the largest remainders
    :math:`M p_i - \lfloor M p_i \rfloor` (ties: the lower index first). So

    - the units of a row add up to exactly :math:`M`; the row sums to 1 up to the rounding of
      :math:`u_i / M` to floats (exactly 1 when ``step`` is a power of two);
    - every entry moves by less than one step, :math:`|q_i - p_i| < \text{step}`;
    - zeros stay zero (the support never grows) and zero rows (invalid actions) stay zero;
      but an entry below one step whose remainder is not among the largest **drops to 0**:
      the quantised row's support may be smaller, and its mass goes to the larger entries;
    - quantising again changes nothing.

    Rows must be non-negative and sum to 1 (within 1e-8); they are renormalised first."""
    M = round(1.0 / step) if 1e-9 <= step <= 1 else 0
    if M < 1 or abs(1.0 / step - M) > 1e-9 * M:
        raise ValueError(f"step must be 1/M for a positive integer M, got {step}")
    P = np.asarray(P, dtype=float)
    if P.ndim < 1 or not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError("P must be an array of finite, non-negative probabilities")
    rows = P.reshape(-1, P.shape[-1])
    sums = rows.sum(axis=1)
    live = sums > 0
    bad = np.flatnonzero(live & (np.abs(sums - 1.0) > 1e-8))
    if bad.size:
        where = np.unravel_index(bad[0], P.shape[:-1])
        raise ValueError(f"row {tuple(int(i) for i in where)} of P sums to {sums[bad[0]]}, not 1")
    scaled = rows[live] / sums[live, None] * M
    snapped = np.rint(scaled)
    scaled = np.where(np.abs(scaled - snapped) <= 1e-9, snapped, scaled)  # exact multiples
    units = np.floor(scaled)
    remainder = np.where(rows[live] > 0, scaled - units, -1.0)  # zeros never get a unit
    missing = M - units.sum(axis=1)
    order = np.argsort(-remainder, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(rows.shape[1]), order.shape), axis=1)
    units += rank < missing[:, None]
    out = np.zeros_like(rows)
    out[live] = units / M
    return out.reshape(P.shape)


def sliding_window_p95(latency_ms: np.ndarray, window: int = 5) -> np.ndarray:
    """The 95th percentile (numpy's linear rule) of every ``window`` consecutive per-minute
    p95 latencies: entry t covers minutes t .. t + window - 1 (length ``T - window + 1``)."""
    latency = np.asarray(latency_ms, dtype=float)
    if latency.ndim != 1:
        raise ValueError("latency_ms must be one value per minute (a 1-D array)")
    if not 1 <= window <= latency.size:
        raise ValueError(f"window must be between 1 and {latency.size} minutes, got {window}")
    return np.percentile(sliding_window_view(latency, window), 95, axis=1)


def share_windows_over(latency: np.ndarray, sla: float = SLA_MS) -> float:
    """The share of values strictly above ``sla`` (a latency equal to the SLA meets it)."""
    latency = np.asarray(latency, dtype=float)
    if latency.size == 0:
        raise ValueError("no latency values")
    return float(np.mean(latency > sla))


@dataclass(frozen=True)
class ServingReport:
    """What :func:`serve_and_replay` measured.

    Decision round trips (ms, client side, HTTP included); the mean of the per-minute p95
    latencies and the share of minutes over the SLA; the share of 5-minute windows whose p95
    is over the SLA; the mean fleet price ($/hour); and how many minutes the endpoint's
    action differed from ``export.lookup``."""

    steps: int
    decision_ms_p50: float
    decision_ms_p95: float
    decision_ms_max: float
    latency_p95_mean_ms: float
    minutes_over_sla: float
    window_minutes: int
    window_p95_share_over_sla: float
    sla_ms: float
    mean_price_per_hour: float
    mismatched_minutes: int
    log: dict[str, np.ndarray] = field(repr=False, compare=False)
    round_trip_ms: np.ndarray = field(repr=False, compare=False)

    @property
    def actions_match(self) -> bool:
        return self.mismatched_minutes == 0

    def summary(self) -> str:
        """The figures, one per line."""
        return "\n".join(
            [
                f"minutes replayed             {self.steps}",
                f"decision round trip (ms)     p50 {self.decision_ms_p50:.2f}  "
                f"p95 {self.decision_ms_p95:.2f}  max {self.decision_ms_max:.2f}",
                f"mean per-minute p95 (ms)     {self.latency_p95_mean_ms:.1f}",
                f"minutes over the SLA         {self.minutes_over_sla:.1%}",
                f"{f'{self.window_minutes}-min windows, p95 > SLA':29s}"
                f"{self.window_p95_share_over_sla:.1%}",
                f"mean fleet price ($/hour)    {self.mean_price_per_hour:.2f}",
                f"served actions != lookup     {self.mismatched_minutes}",
            ]
        )


def serve_and_replay(
    document: dict,
    exo: dict[str, np.ndarray],
    physics: Physics,
    steps: int,
    seed: int,
    *,
    model: onnx.ModelProto | bytes | str | Path | None = None,
    window: int = 5,
    start_instances: int = 3,
) -> ServingReport:
    """Serve the policy, replay ``steps`` minutes of ``exo`` deciding over HTTP, report.

    ``model`` is the graph to serve (default ``policy_to_onnx(document)``); the document is
    the reference every served action is compared with, minute by minute, through
    ``export.lookup``."""
    served = policy_to_onnx(document) if model is None else model
    with serve_policy(served) as url:
        decide = http_decider(url)
        log = replay(decide, exo, physics, steps, seed, start_instances=start_instances)
    actions = list(document["actions"])
    expected = np.array(
        [
            actions.index(lookup(document, float(latency), float(rate), int(n)))
            for latency, rate, n in zip(
                log["p95_latency_ms"], exo["request_rate"][:steps], log["instances"], strict=True
            )
        ]
    )
    round_trip = np.array(decide.round_trip_ms)
    latency = log["p95_latency_ms"]
    windows = sliding_window_p95(latency, window)
    return ServingReport(
        steps=steps,
        decision_ms_p50=float(np.percentile(round_trip, 50)),
        decision_ms_p95=float(np.percentile(round_trip, 95)),
        decision_ms_max=float(round_trip.max()),
        latency_p95_mean_ms=float(latency.mean()),
        minutes_over_sla=share_windows_over(latency, SLA_MS),
        window_minutes=window,
        window_p95_share_over_sla=share_windows_over(windows, SLA_MS),
        sla_ms=SLA_MS,
        mean_price_per_hour=float(log["price"].mean()),
        mismatched_minutes=int(np.sum(log["action"] != expected)),
        log=log,
        round_trip_ms=round_trip,
    )
