r"""The demand signal from query text: MS MARCO queries and the MDPR retriever, per minute.

The capstone's original recipe grouped search queries into minute windows, averaged their
token lengths and scored them with the dense retriever ``castorini/mdpr-tied-pft-msmarco``;
the windows then drive the simulated service (:func:`mdplab.autoscaler.telemetry.replay`),
whose quantised latency and throughput (:mod:`mdplab.autoscaler.states`) are the MDP state.
This module is that pipeline. The model and the data set come from the Hugging Face Hub
(:func:`load_mdpr`, :func:`load_msmarco_queries`: the optional extra ``mdplab[mdpr]``); the
windowing runs on any encoder, so it is tested offline on ``data/msmarco_queries_sample.tsv``.

**Windows.** Minute :math:`t` holds the queries :math:`Q_t` whose timestamps fall in
:math:`[t, t + 1\,\text{min})`. With a rate scale :math:`s` and a tokenizer ``tok``,

.. math::
    \lambda_t = s\, \frac{|Q_t|}{60} \text{ req/s}, \qquad
    \ell_t = \frac{1}{|Q_t|} \sum_{q \in Q_t} |\operatorname{tok}(q)| \text{ tokens}, \qquad
    c_t = \frac{1}{|Q_t|} \sum_{q \in Q_t} c(q).

**Retrieval confidence.** MDPR is a DPR bi-encoder whose query and passage towers share
their weights ("tied"): a text :math:`x` is encoded as the BERT output at its ``[CLS]``
token, :math:`E(x) \in \mathbb{R}^d`, and a passage is scored by a dot product. Over a
passage set :math:`p_1, \dots, p_K`, at temperature :math:`\tau`,

.. math::
    s_k(q) = \frac{\langle E(q), E(p_k) \rangle}{\tau}, \qquad
    \pi_k(q) = \frac{e^{s_k(q)}}{\sum_{j=1}^K e^{s_j(q)}}, \qquad
    c(q) = \max_k \pi_k(q) = \Big(\sum_{j=1}^K e^{s_j(q) - \max_k s_k(q)}\Big)^{-1}
    \in \big[\tfrac1K, 1\big]:

the probability the retriever gives its first passage. It is 1 when one passage wins by a
wide margin and :math:`1/K` when all tie, so a low :math:`c` is the unsure first pass that
the simulator charges a second rerank pass for (:class:`mdplab.autoscaler.telemetry.Physics`).
MDPR's 768-dimensional scores differ by tens, so :math:`\tau = 1` gives :math:`c \approx 1`
for almost every query; a larger :math:`\tau` spreads them out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

MDPR_MODEL = "castorini/mdpr-tied-pft-msmarco"
#: MS MARCO on the Hub: the Parquet release of Microsoft's question-answering set (v1.1:
#: 82,326 train / 10,047 validation / 9,650 test queries, each with about 10 passages).
MSMARCO_DATASET, MSMARCO_CONFIG = "microsoft/ms_marco", "v1.1"
EXTRA = 'pip install "mdplab[mdpr]"'

Encode = Callable[[list[str]], np.ndarray]  # texts -> (n, d) embeddings
Tokenize = Callable[[str], Sequence[Any]]  # text -> its tokens
Timestamps = Sequence[str | datetime | np.datetime64] | np.ndarray


def _missing(package: str, purpose: str) -> ImportError:
    """The error raised when an optional package is absent: it names the extra."""
    error = ImportError(f"{purpose} needs {package}, which is not installed: {EXTRA}")
    error.name = package
    return error


# ------------------------------------------------------------------ the MDPR retriever
@dataclass
class MDPREncoder:
    r"""A loaded DPR-style encoder: ``encoder(texts)`` is the :math:`(n, d)` array of the
    ``[CLS]`` vectors :math:`E(x)` (the last hidden layer at position 0), ``float32``.

    Texts are tokenized in batches of ``batch_size``, padded to the longest in the batch and
    cut at ``max_length`` tokens; the attention mask keeps padding out of every vector, so a
    text's vector does not depend on its batch. The one tower encodes queries and passages.
    """

    tokenizer: Any  # a transformers tokenizer
    model: Any  # a transformers model whose output has last_hidden_state
    device: str = "cpu"
    max_length: int = 256
    batch_size: int = 32

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch  # present: load_mdpr checked

        texts = list(texts)
        out = [np.zeros((0, self.model.config.hidden_size), dtype=np.float32)]
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[i : i + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                cls = self.model(**batch).last_hidden_state[:, 0, :]
                out.append(cls.float().cpu().numpy())
        return np.concatenate(out)

    def tokenize(self, text: str) -> list[str]:
        """The model's word pieces of ``text``, without ``[CLS]`` and ``[SEP]``."""
        return self.tokenizer.tokenize(text)


def load_mdpr(
    name: str = MDPR_MODEL,
    device: str = "cpu",
    *,
    max_length: int = 256,
    batch_size: int = 32,
) -> MDPREncoder:
    """The MDPR encoder from the Hub (about 710 MB) or from a local directory ``name``.

    The calls a Colab user runs::

        from transformers import AutoModel, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained("castorini/mdpr-tied-pft-msmarco")
        model = AutoModel.from_pretrained("castorini/mdpr-tied-pft-msmarco").eval()

    The model is a ``BertModel`` (multilingual BERT base, 768 dimensions) fine-tuned on MS
    MARCO passages. Needs PyTorch and transformers: ``pip install "mdplab[mdpr]"``.
    """
    purpose = "load_mdpr"
    try:
        import torch  # noqa: F401  (AutoModel needs it)
    except ImportError as exc:
        raise _missing("torch", purpose) from exc
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise _missing("transformers", purpose) from exc
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModel.from_pretrained(name).to(device).eval()
    return MDPREncoder(tokenizer, model, device, max_length, batch_size)


# ------------------------------------------------------------------ MS MARCO queries
def load_msmarco_queries(
    split: str = "validation",
    limit: int | None = None,
    *,
    name: str = MSMARCO_DATASET,
    config: str = MSMARCO_CONFIG,
) -> tuple[list[str], list[str]]:
    """MS MARCO queries and their candidate passages, from the Hub: ``(queries, passages)``.

    The call a Colab user runs::

        from datasets import load_dataset
        rows = load_dataset("microsoft/ms_marco", "v1.1", split="validation")

    A row has ``query`` (str), ``query_id`` (int), ``query_type`` (str), ``answers`` and
    ``wellFormedAnswers`` (lists of str), and ``passages``: a dict of equal-length lists
    ``passage_text``, ``is_selected`` (1 for a passage that answers the query) and ``url``,
    about 10 passages per query found by a first-stage search engine. ``passages`` here is
    every distinct ``passage_text`` of the first ``limit`` rows (all rows if None), in order.
    The queries carry no timestamps: to window them, give them arrival times first.
    Needs datasets: ``pip install "mdplab[mdpr]"``.
    """
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise _missing("datasets", "load_msmarco_queries") from exc
    rows = load_dataset(name, config, split=split)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    queries = [str(q) for q in rows["query"]]
    passages = dict.fromkeys(text for row in rows["passages"] for text in row["passage_text"])
    return queries, list(passages)


# ------------------------------------------------------------------ query logs
def _read_tsv(path: str | Path, header: str) -> list[tuple[int, str, str]]:
    """``(line number, first field, rest)`` of every non-blank line; a first line whose
    first field is ``header`` is skipped."""
    rows = []
    with open(path, encoding="utf-8", newline="") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            first, tab, rest = line.partition("\t")
            if not tab:
                raise ValueError(f"{path}:{number}: no tab between the two fields: {line!r}")
            if number == 1 and first == header:
                continue
            rows.append((number, first, rest))
    return rows


def read_query_log(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """A timestamped query log: ``(timestamps, queries)``.

    The file is UTF-8 TSV, one query a line, ``timestamp<TAB>query``, with an optional
    header line ``timestamp<TAB>query``; a timestamp is ISO 8601 without a time zone,
    ``YYYY-MM-DDTHH:MM:SS``. Timestamps come back as ``datetime64[s]``.
    """
    stamps, queries = [], []
    for number, stamp, query in _read_tsv(path, "timestamp"):
        try:
            stamps.append(np.datetime64(stamp, "s"))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not an ISO 8601 timestamp: {stamp!r}") from exc
        queries.append(query)
    return np.array(stamps, dtype="datetime64[s]"), queries


def read_passages(path: str | Path) -> list[str]:
    """The passages of a UTF-8 TSV file ``pid<TAB>passage`` (optional header ``pid``)."""
    return [text for _, _, text in _read_tsv(path, "pid")]


# ------------------------------------------------------------------ features
def retrieval_confidence(
    query_vectors: np.ndarray, passage_vectors: np.ndarray, temperature: float = 1.0
) -> np.ndarray:
    r"""Per query, the top probability of the softmax over its passage scores:
    :math:`c(q) = \max_k \pi_k(q) = 1 / \sum_j e^{s_j(q) - \max_k s_k(q)}` with
    :math:`s_k(q) = \langle E(q), E(p_k) \rangle / \tau` (module docstring); in
    :math:`[1/K, 1]` for :math:`K` passages."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    q = np.asarray(query_vectors, dtype=float)
    p = np.asarray(passage_vectors, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError("retrieval confidence needs at least one passage vector")
    scores = q @ p.T / temperature
    return 1.0 / np.exp(scores - scores.max(axis=1, keepdims=True)).sum(axis=1)


def minute_windows(
    timestamps: Timestamps,
    queries: Sequence[str],
    *,
    encode: Encode | None = None,
    passages: Sequence[str] | None = None,
    tokenize: Tokenize | None = None,
    rate_scale: float = 1.0,
    temperature: float = 1.0,
) -> dict[str, np.ndarray]:
    r"""Per-minute demand from a query log, in the form of
    :func:`mdplab.autoscaler.telemetry.exogenous`: ``timestamp`` (``YYYY-MM-DDTHH:MM``),
    ``request_rate`` :math:`\lambda_t` (req/s), ``query_length`` :math:`\ell_t` (tokens),
    ``retrieval_confidence`` :math:`c_t` (formulas in the module docstring).

    One entry per minute from the first query's minute to the last one's, in order; the
    queries need not be sorted. ``tokenize`` counts tokens (default: whitespace words,
    ``str.split``; with MDPR, ``encoder.tokenize`` counts word pieces). ``rate_scale``
    :math:`s` multiplies the rate, to bring a small log to the service's load. With
    ``encode`` and ``passages``, queries and passages are encoded by the same ``encode``
    (a tied encoder); without them ``retrieval_confidence`` is NaN. A minute without queries
    has rate 0 and keeps the previous minute's length and confidence, so that the result can
    be replayed as it is.
    """
    stamps = np.asarray(timestamps, dtype="datetime64[s]")
    queries = list(queries)
    if stamps.ndim != 1 or stamps.size != len(queries):
        raise ValueError(f"{stamps.size} timestamps for {len(queries)} queries")
    if not queries:
        raise ValueError("no queries to window")
    if (encode is None) != (passages is None):
        raise ValueError("give both encode and passages for the confidence, or neither")
    minutes = stamps.astype("datetime64[m]")
    first = minutes.min()
    window = (minutes - first).astype(np.int64)
    n_minutes = int(window.max()) + 1
    counts = np.bincount(window, minlength=n_minutes)
    tokenize = str.split if tokenize is None else tokenize
    lengths = np.array([len(tokenize(q)) for q in queries], dtype=float)
    if encode is None:
        confidence = np.full(len(queries), np.nan)
    else:
        query_vectors = np.asarray(encode(queries))
        passage_vectors = np.asarray(encode(list(passages)))
        confidence = retrieval_confidence(query_vectors, passage_vectors, temperature)
    return {
        "timestamp": np.datetime_as_string(first + np.arange(n_minutes), unit="m"),
        "request_rate": rate_scale * counts / 60.0,
        "query_length": _carried_means(window, lengths, counts),
        "retrieval_confidence": _carried_means(window, confidence, counts),
    }


def _carried_means(window: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per window; an empty window keeps the previous window's mean."""
    sums = np.bincount(window, weights=values, minlength=counts.size)
    means = np.divide(sums, counts, out=np.full(counts.size, np.nan), where=counts > 0)
    last = np.maximum.accumulate(np.where(counts > 0, np.arange(counts.size), 0))
    return means[last]  # window 0 holds the first query, so it is never empty


# ------------------------------------------------------------------ an offline stand-in
def hashing_encoder(dim: int = 256, seed: int = 0) -> Encode:
    r"""A bag-of-words encoder in numpy, for offline runs and tests: not MDPR.

    A word :math:`w` (lower-cased run of letters and digits) gets a fixed Gaussian vector
    :math:`g(w) \in \mathbb{R}^d` seeded by a BLAKE2 hash of ``(seed, w)``, the same on
    every machine; a text is the normalised sum over its words,
    :math:`E(x) = \sum_{w \in x} g(w) / \lVert \sum_{w \in x} g(w) \rVert` (zero for a text
    without words). So :math:`\langle E(q), E(p) \rangle` is a cosine in :math:`[-1, 1]`,
    high when query and passage share words; use a temperature of about 0.05 to 0.1.
    """
    cache: dict[str, np.ndarray] = {}

    def word_vector(word: str) -> np.ndarray:
        if word not in cache:
            digest = hashlib.blake2b(f"{seed}\0{word}".encode(), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(digest, "little"))
            cache[word] = rng.standard_normal(dim)
        return cache[word]

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), dim))
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[i] += word_vector(word)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)

    return encode
