"""A small labelled retrieval set shipped with the package, written for mm-embed.

52 short documents on seven topics (bread, astronomy, Kubernetes, gardening, personal
finance, cycling, tea; 46 in English, 6 in Chinese) and 20 queries with graded
relevance judgements (2 = answers the query, 1 = related). Queries mix exact rare terms
(``kubectl rollout undo``) with paraphrases that share only word stems with their
answers (``fermenting`` / ``fermentation``), so keyword-like sparse and sub-word dense
retrieval each miss different things.

Files (JSON Lines, UTF-8): ``corpus.jsonl`` (``id``, ``topic``, ``lang``, ``text``),
``queries.jsonl`` (``id``, ``text``), ``qrels.jsonl`` (``query_id``, ``doc_id``,
``relevance``). Released with the package under its license.

The sample *pictures* (shape drawings with their boxes, served by the emulator and
indexed by the demo) are :mod:`mm_embed.samples.pictures`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "SampleDoc",
    "SampleQuery",
    "SampleSet",
    "load_corpus",
    "load_qrels",
    "load_queries",
    "load_samples",
]


@dataclass(frozen=True)
class SampleDoc:
    id: str
    text: str
    topic: str
    lang: str


@dataclass(frozen=True)
class SampleQuery:
    id: str
    text: str


@dataclass(frozen=True)
class SampleSet:
    """The whole set: ``qrels[query_id][doc_id] = relevance`` (only judged pairs)."""

    corpus: tuple[SampleDoc, ...]
    queries: tuple[SampleQuery, ...]
    qrels: dict[str, dict[str, int]]


def _rows(name: str) -> list[dict[str, Any]]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@lru_cache(maxsize=1)
def load_corpus() -> tuple[SampleDoc, ...]:
    """The documents, in file order."""
    return tuple(
        SampleDoc(id=r["id"], text=r["text"], topic=r["topic"], lang=r["lang"])
        for r in _rows("corpus.jsonl")
    )


@lru_cache(maxsize=1)
def load_queries() -> tuple[SampleQuery, ...]:
    """The queries, in file order."""
    return tuple(SampleQuery(id=r["id"], text=r["text"]) for r in _rows("queries.jsonl"))


def load_qrels() -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` (a fresh copy on each call)."""
    qrels: dict[str, dict[str, int]] = {}
    for r in _rows("qrels.jsonl"):
        qrels.setdefault(r["query_id"], {})[r["doc_id"]] = int(r["relevance"])
    return qrels


def load_samples() -> SampleSet:
    """Corpus, queries and judgements together."""
    return SampleSet(corpus=load_corpus(), queries=load_queries(), qrels=load_qrels())
