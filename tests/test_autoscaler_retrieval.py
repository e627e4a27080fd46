"""Query logs in minute windows (mdplab.autoscaler.retrieval): hand-computed windows, the
retrieval confidence, replay of the windows, the MDPR loader on a tiny BERT built here from a
config (when transformers is installed), and the Hub downloads (skipped offline)."""

from __future__ import annotations

import functools
import math
import os
import re
import socket
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mdplab.autoscaler import retrieval
from mdplab.autoscaler.retrieval import (
    hashing_encoder,
    load_mdpr,
    load_msmarco_queries,
    minute_windows,
    read_passages,
    read_query_log,
    retrieval_confidence,
)
from mdplab.autoscaler.telemetry import HOLD, Physics, exogenous, replay

DATA = Path(__file__).resolve().parents[1] / "data"
QUERIES, PASSAGES = DATA / "msmarco_queries_sample.tsv", DATA / "msmarco_passages_sample.tsv"
QUIET = replace(Physics(), preemption=0.0, noise_sigma=0.0)  # the latency law without noise
BURST_MINUTES = [5, 6, 7]  # 14:05 to 14:07 in the sample: more and longer queries


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, list[str], list[str]]:
    stamps, queries = read_query_log(QUERIES)
    return stamps, queries, read_passages(PASSAGES)


def write_log(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["timestamp\tquery", *(f"{stamp}\t{query}" for stamp, query in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ windows by hand
def test_windows_of_a_small_log_by_hand(tmp_path):
    log = write_log(
        tmp_path / "log.tsv",
        [
            ("2026-03-02T14:00:05", "a b c"),
            ("2026-03-02T14:00:59", "d e"),
            ("2026-03-02T14:02:00", "f"),
            ("2026-03-02T14:01:30", "g h i j"),  # out of order
            ("2026-03-02T14:02:59", "k l m n o p"),
            ("2026-03-02T14:04:10", "q r"),  # 14:03 has no query
        ],
    )
    stamps, queries = read_query_log(log)
    assert stamps.dtype == np.dtype("datetime64[s]") and queries[3] == "g h i j"
    windows = minute_windows(stamps, queries, rate_scale=60.0)  # rate = queries per minute
    assert list(windows["timestamp"]) == [f"2026-03-02T14:0{m}" for m in range(5)]
    np.testing.assert_allclose(windows["request_rate"], [2, 1, 2, 0, 1])
    # 14:00: (3 + 2) / 2; 14:01: 4; 14:02: (1 + 6) / 2; 14:03 keeps 14:02's; 14:04: 2.
    np.testing.assert_allclose(windows["query_length"], [2.5, 4.0, 3.5, 3.5, 2.0])
    assert np.isnan(windows["retrieval_confidence"]).all()  # no encoder given
    unscaled = minute_windows(stamps, queries)
    np.testing.assert_allclose(unscaled["request_rate"], np.array([2, 1, 2, 0, 1]) / 60.0)
    # A tokenizer callable replaces whitespace words: here, two tokens a word.
    doubled = minute_windows(stamps, queries, tokenize=lambda q: q.split() * 2)
    np.testing.assert_allclose(doubled["query_length"], [5.0, 8.0, 7.0, 7.0, 4.0])


def test_windows_reject_a_bad_log(tmp_path):
    no_tab = tmp_path / "a.tsv"
    no_tab.write_text("timestamp\tquery\n2026-03-02T14:00:05 no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"a\.tsv:2: no tab"):
        read_query_log(no_tab)
    with pytest.raises(ValueError, match=r"b\.tsv:2: not an ISO 8601 timestamp"):
        read_query_log(write_log(tmp_path / "b.tsv", [("yesterday", "query")]))
    with pytest.raises(ValueError, match="3 timestamps for 2 queries"):
        minute_windows(["2026-03-02T14:00:00"] * 3, ["a", "b"])
    with pytest.raises(ValueError, match="both encode and passages"):
        minute_windows(["2026-03-02T14:00:00"], ["a"], encode=hashing_encoder())


def test_sample_file_windows_match_a_count_of_its_lines(sample):
    stamps, queries, passages = sample
    lines = QUERIES.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "timestamp\tquery" and 150 <= len(lines) - 1 <= 300
    per_minute: dict[str, list[str]] = {}
    for line in lines[1:]:
        stamp, query = line.split("\t")
        per_minute.setdefault(stamp[:16], []).append(query)
    windows = minute_windows(stamps, queries)
    assert list(windows["timestamp"]) == sorted(per_minute) and len(per_minute) == 10
    counts = [len(per_minute[m]) for m in windows["timestamp"]]
    np.testing.assert_allclose(windows["request_rate"], np.array(counts) / 60.0)
    means = [statistics.mean(len(q.split()) for q in per_minute[m]) for m in windows["timestamp"]]
    np.testing.assert_allclose(windows["query_length"], means)
    # The sample's burst: its three minutes carry the most and the longest queries.
    quiet = [m for m in range(10) if m not in BURST_MINUTES]
    assert windows["request_rate"][BURST_MINUTES].min() > windows["request_rate"][quiet].max()
    assert windows["query_length"][BURST_MINUTES].min() > windows["query_length"][quiet].max()
    assert len(passages) == len(PASSAGES.read_text(encoding="utf-8").splitlines()) - 1


# ------------------------------------------------------------------ retrieval confidence
def test_confidence_by_hand():
    vectors = {"q": [1.0, 0.0], "a": [2.0, 0.0], "b": [0.0, 1.0], "c": [0.0, 3.0]}

    def encode(texts):
        return np.array([vectors[t] for t in texts])

    sigmoid = 1.0 / (1.0 + math.exp(-2.0))  # scores 2 and 0: softmax top = sigmoid(2)
    assert retrieval_confidence(encode(["q"]), encode(["a", "b"]))[0] == pytest.approx(sigmoid)
    halved = 1.0 / (1.0 + math.exp(-1.0))  # temperature 2 halves the scores
    assert retrieval_confidence(encode(["q"]), encode(["a", "b"]), 2.0)[0] == pytest.approx(halved)
    # Three passages all scoring 0 tie: 1/K. One passage: 1.
    assert retrieval_confidence(encode(["q"]), encode(["b", "c", "b"]))[0] == pytest.approx(1 / 3)
    assert retrieval_confidence(encode(["q"]), encode(["c"]))[0] == 1.0
    # Large scores do not overflow (the softmax is shifted by its maximum).
    assert retrieval_confidence(np.array([[1000.0]]), np.array([[1.0], [0.999]]))[0] == (
        pytest.approx(1.0 / (1.0 + math.exp(-1.0)))
    )
    # The window's confidence is the mean of its queries' confidences.
    windows = minute_windows(
        ["2026-03-02T14:00:01", "2026-03-02T14:00:02", "2026-03-02T14:01:00"],
        ["q", "c", "a"],
        encode=encode,
        passages=["a", "b"],
    )
    c_q, c_c, c_a = sigmoid, 1.0 / (1.0 + math.exp(-3.0)), 1.0 / (1.0 + math.exp(-4.0))
    np.testing.assert_allclose(windows["retrieval_confidence"], [(c_q + c_c) / 2, c_a])
    with pytest.raises(ValueError, match="temperature"):
        retrieval_confidence(encode(["q"]), encode(["a"]), 0.0)


@pytest.mark.parametrize(
    ("query", "passage"),
    [
        ("python sort list", 1),
        ("renew passport by mail", 2),
        ("recommended tire pressure", 4),
        ("feed sourdough starter", 3),
        ("reset router", 12),
    ],
)
def test_confidence_is_higher_when_the_answer_is_among_the_passages(sample, query, passage):
    _, _, passages = sample
    encode = hashing_encoder()
    q, p = encode([query]), encode(passages)
    assert int(np.argmax(q @ p.T)) == passage  # the encoder finds the passage ...
    with_answer = retrieval_confidence(q, p, 0.05)[0]
    without = retrieval_confidence(q, np.delete(p, passage, axis=0), 0.05)[0]
    assert 0.0 < without < with_answer <= 1.0  # ... and is surer when it is there
    assert with_answer > 0.8 and without < 0.5
    # A query about nothing in the set is as unsure as those without their answer.
    assert retrieval_confidence(encode(["zebra migration serengeti"]), p, 0.05)[0] < 0.5


def test_hashing_encoder_is_deterministic_and_normalised():
    first = hashing_encoder(dim=64)(["Boil eggs!", "", "boil EGGS"])
    second = hashing_encoder(dim=64)(["boil eggs"])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(first[0], second[0])  # same words, same vector
    np.testing.assert_array_equal(first[0], first[2])
    other_seed = hashing_encoder(dim=64, seed=1)(["boil eggs"])
    assert abs(float(other_seed[0] @ first[0])) < 0.9


# ------------------------------------------------------------------ into the simulator
def test_windows_drive_the_simulator_in_place_of_the_simulated_demand(sample):
    stamps, queries, passages = sample
    windows = minute_windows(
        stamps,
        queries,
        encode=hashing_encoder(),
        passages=passages,
        rate_scale=150.0,
        temperature=0.05,
    )
    simulated = exogenous(1, seed=0)
    assert set(windows) == set(simulated)
    assert windows["timestamp"].dtype.kind == simulated["timestamp"].dtype.kind == "U"
    assert len(windows["timestamp"][0]) == len(simulated["timestamp"][0])  # YYYY-MM-DDTHH:MM
    confidence = windows["retrieval_confidence"]
    assert np.all((confidence > 0.0) & (confidence <= 1.0))
    quiet = [m for m in range(10) if m not in BURST_MINUTES]
    assert confidence[BURST_MINUTES].mean() < confidence[quiet].mean()  # off-topic questions
    steps = len(windows["timestamp"])
    log = replay(lambda latency, rate, n: HOLD, windows, QUIET, steps, seed=0)
    assert {len(column) for column in log.values()} == {steps}
    assert np.all(np.isfinite(log["p95_latency_ms"])) and np.all(log["instances"] == 3)
    # The same minute by hand: rho = lambda w(l, c) / (3 * 40), L = 70 + 2 l + 35 rho/(1-rho).
    rate, length = windows["request_rate"][0], windows["query_length"][0]
    rho = rate * QUIET.work(length, confidence[0]) / (3 * QUIET.capacity)
    expected = QUIET.base_ms + QUIET.ms_per_token * length + QUIET.queue_ms * rho / (1 - rho)
    assert log["p95_latency_ms"][0] == pytest.approx(expected)
    # The burst's load shows up as latency: every burst minute is slower than every other.
    assert log["p95_latency_ms"][BURST_MINUTES].min() > log["p95_latency_ms"][quiet].max()


# ------------------------------------------------------------------ optional packages
@pytest.mark.parametrize("package", ["torch", "transformers"])
def test_load_mdpr_without_the_extra_names_it(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails
    if package == "transformers":
        pytest.importorskip("torch", reason="torch is checked first; not installed here")
    with pytest.raises(ImportError, match=re.escape('pip install "mdplab[mdpr]"')) as info:
        load_mdpr()
    assert info.value.name == package and package in str(info.value)


def test_load_msmarco_without_the_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=re.escape('pip install "mdplab[mdpr]"')):
        load_msmarco_queries()


# ------------------------------------------------------------------ a tiny BERT, offline
@pytest.fixture(scope="module")
def tiny_mdpr(tmp_path_factory, sample):
    """An MDPR-shaped encoder: a 2-layer, 32-dimensional BERT built from a config, with a
    word-level vocabulary of the sample files, saved and loaded back through load_mdpr."""
    torch = pytest.importorskip("torch", reason="the mdpr extra (torch) is not installed")
    transformers = pytest.importorskip(
        "transformers", reason="the mdpr extra (transformers) is not installed"
    )
    _, queries, passages = sample
    words = sorted({w for text in queries + passages for w in re.findall(r"\w+", text.lower())})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    folder = tmp_path_factory.mktemp("tiny-mdpr")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # From the folder: transformers 5's constructor no longer reads vocab_file=.
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    assert len(tokenizer) == len(vocab)
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_mdpr(str(folder), max_length=128, batch_size=4)


def test_tiny_mdpr_gives_cls_vectors_independent_of_the_batch(tiny_mdpr, sample):
    import torch

    _, queries, _ = sample
    texts = queries[:11]  # three batches of 4, the last one short; lengths differ
    vectors = tiny_mdpr(texts)
    assert vectors.shape == (11, 32) and vectors.dtype == np.float32
    assert tiny_mdpr([]).shape == (0, 32)
    assert len({tuple(v) for v in vectors.round(5)}) == len(set(texts))  # texts differ
    with torch.inference_mode():
        batch = tiny_mdpr.tokenizer(texts[3], return_tensors="pt")
        alone = tiny_mdpr.model(**batch).last_hidden_state[0, 0].numpy()
    np.testing.assert_allclose(vectors[3], alone, rtol=1e-4, atol=1e-5)  # padding is masked
    tiny_mdpr.batch_size = 64
    try:
        np.testing.assert_allclose(tiny_mdpr(texts), vectors, rtol=1e-4, atol=1e-5)
    finally:
        tiny_mdpr.batch_size = 4
    assert tiny_mdpr.tokenize("How long to boil eggs") == ["how", "long", "to", "boil", "eggs"]


def test_tiny_mdpr_windows_drive_the_simulator(tiny_mdpr, sample):
    stamps, queries, passages = sample
    windows = minute_windows(
        stamps,
        queries,
        encode=tiny_mdpr,
        passages=passages,
        tokenize=tiny_mdpr.tokenize,
        rate_scale=150.0,
    )
    confidence = windows["retrieval_confidence"]
    assert np.all((confidence >= 1 / len(passages)) & (confidence <= 1.0))
    pieces = [len(tiny_mdpr.tokenizer.tokenize(q)) for q in queries]  # word pieces by hand
    minute = np.array([s[:16] for s in np.datetime_as_string(stamps)])
    expected = [np.mean(np.array(pieces)[minute == m]) for m in windows["timestamp"]]
    np.testing.assert_allclose(windows["query_length"], expected)
    log = replay(lambda latency, rate, n: HOLD, windows, QUIET, len(confidence), seed=0)
    assert np.all(np.isfinite(log["p95_latency_ms"]))


# ------------------------------------------------------------------ the Hub (online only)
@functools.cache
def hub_unreachable() -> str | None:
    """Why huggingface.co cannot be reached (None when a connection opens)."""
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def skip_unless_hub(what: str, size: str) -> None:
    reason = hub_unreachable()
    if reason is not None:
        message = (
            f"{what} not downloaded: the Hugging Face Hub is unreachable ({reason}); this "
            "machine reaches only package registries, so the tests here use a tiny "
            "BERT built from a config and data/msmarco_*_sample.tsv instead"
        )
        print(message)
        pytest.skip(message)
    if not os.environ.get("MDPLAB_HUB_TESTS"):
        pytest.skip(f"{what} not downloaded ({size}): set MDPLAB_HUB_TESTS=1 to test it")


def test_mdpr_from_the_hub():
    skip_unless_hub(retrieval.MDPR_MODEL, "about 710 MB")
    pytest.importorskip("transformers", reason='needs pip install "mdplab[mdpr]"')
    encoder = load_mdpr()
    vectors = encoder(["how long to boil eggs", "python sort list"])
    assert vectors.shape == (2, 768) and np.all(np.isfinite(vectors))


def test_msmarco_queries_from_the_hub():
    skip_unless_hub(f"{retrieval.MSMARCO_DATASET} {retrieval.MSMARCO_CONFIG}", "about 20 MB")
    pytest.importorskip("datasets", reason='needs pip install "mdplab[mdpr]"')
    queries, passages = load_msmarco_queries("validation", limit=50)
    assert len(queries) == 50 and all(isinstance(q, str) and q for q in queries)
    assert 50 <= len(passages) <= 50 * 20
