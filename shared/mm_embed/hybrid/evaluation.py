"""Measure dense, sparse and fused retrieval with nDCG@k on the shipped sample set.

nDCG here is the trec_eval / ranx ``ndcg`` definition: gain = the graded relevance,
discount ``1 / log2(rank + 1)``, normalised by the ideal ordering of the judged
documents; unjudged documents count as relevance 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..providers.viking import VikingClient
from ..samples import load_samples
from .encoding import VikingHybridEncoder
from .fusion import FUSION_METHODS, fuse
from .sparse_index import SparseIndex

__all__ = ["EvaluationReport", "evaluate_sample_set", "mean_ndcg", "ndcg_at_k"]


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of one ranking (doc ids, best first) against ``{doc_id: relevance}``."""
    if k < 1:
        raise ValueError("k must be >= 1")
    dcg = sum(
        qrels.get(doc_id, 0) / math.log2(rank + 1)
        for rank, doc_id in enumerate(ranking[:k], start=1)
    )
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def mean_ndcg(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], k: int = 10
) -> tuple[float, dict[str, float]]:
    """Mean nDCG@k of ``run`` (``{query_id: [doc_id, ...]}``) over its queries, and the
    per-query values; a query without judgements scores 0."""
    per = {qid: ndcg_at_k(ranking, qrels.get(qid, {}), k) for qid, ranking in run.items()}
    return (sum(per.values()) / len(per) if per else 0.0), per


@dataclass
class EvaluationReport:
    """Mean nDCG@k per run (``dense``, ``sparse``, then one per fusion method) and the
    per-query values; ``texts_embedded`` counts texts sent to the provider and
    ``requests`` the provider calls made (dense and sparse come from the same ones)."""

    k: int
    candidates: int
    model: str
    scores: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    texts_embedded: int = 0
    requests: int = 0

    def table(self) -> str:
        """A plain-text table, best run last."""
        width = max(len(name) for name in self.scores)
        lines = [
            f"nDCG@{self.k} on the mm-embed sample set ({self.model}, "
            f"{self.candidates} candidates per retriever)"
        ]
        for name, value in self.scores.items():
            lines.append(f"  {name:<{width}}  {value:.4f}")
        return "\n".join(lines)


def evaluate_sample_set(
    client: VikingClient,
    *,
    model: str = "bge-m3",
    k: int = 10,
    candidates: int = 20,
    rrf_k: float = 60,
) -> EvaluationReport:
    """Embed the sample set once (dense + sparse per request) and score every run.

    Dense retrieval is exact cosine over all documents, sparse retrieval is exact dot
    product (:class:`SparseIndex`); each keeps its best ``candidates``, and the fused
    runs fuse those two lists with :func:`fuse` (equal weights, ``k=rrf_k`` for RRF).
    """
    samples = load_samples()
    encoder = VikingHybridEncoder(client, model)
    docs = encoder.encode_documents([d.text for d in samples.corpus])
    queries = encoder.encode_queries([q.text for q in samples.queries])
    assert docs.sparse is not None and queries.sparse is not None
    doc_ids = [d.id for d in samples.corpus]

    matrix = docs.dense / np.linalg.norm(docs.dense, axis=1, keepdims=True)
    index = SparseIndex()
    index.add(doc_ids, docs.sparse)

    report = EvaluationReport(k=k, candidates=candidates, model=model)
    runs: dict[str, dict[str, list[str]]] = {"dense": {}, "sparse": {}}
    runs.update({m: {} for m in FUSION_METHODS})
    for qi, query in enumerate(samples.queries):
        q = queries.dense[qi] / np.linalg.norm(queries.dense[qi])
        sims = matrix @ q
        dense = sorted(
            zip(doc_ids, sims.tolist(), strict=True), key=lambda item: (-item[1], item[0])
        )[:candidates]
        sparse = index.search(queries.sparse[qi], top_k=candidates)
        runs["dense"][query.id] = [d for d, _ in dense]
        runs["sparse"][query.id] = [d for d, _ in sparse]
        for method in FUSION_METHODS:
            fused = fuse([dict(dense), dict(sparse)], method=method, k=rrf_k, top_k=k)
            runs[method][query.id] = [d for d, _ in fused]
    for name, run in runs.items():
        report.scores[name], report.per_query[name] = mean_ndcg(run, samples.qrels, k)
    report.texts_embedded = len(samples.corpus) + len(samples.queries)
    report.requests = len(docs.request_ids) + len(queries.request_ids)
    return report
