"""nDCG@10 of dense, sparse and fused retrieval on the shipped labelled sample set.

Usage::

    python benchmarks/eval_hybrid.py            # the local emulator, started in-process
    python benchmarks/eval_hybrid.py --real     # the real Viking API (VOLC_ACCESSKEY /
                                                # VOLC_SECRETKEY or VIKING_TOKEN)
    python benchmarks/eval_hybrid.py --stores   # also through Qdrant local mode and
                                                # milvus-lite, with their own fusion

The emulator's vectors are deterministic stand-ins (hashed character n-grams, weighted
tokens), not real semantics: its numbers show the pipeline works and that fusion
combines two retrievers that fail differently, not how good the real models are.

Each text is embedded once (dense and sparse from one request). Dense is exact cosine,
sparse exact dot product; each keeps its best ``--candidates`` documents, which the
fusion methods of ``mm_embed.hybrid.fuse`` combine with equal weights (RRF ``k = 60``).
The last line is the ratio of the best RRF score to the best single retriever.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import machine_line, ratio_line, run_main

from mm_embed import VikingClient
from mm_embed.hybrid import EvaluationReport, evaluate_sample_set, mean_ndcg
from mm_embed.samples import load_samples


@contextlib.contextmanager
def viking_client(real: bool) -> Iterator[VikingClient]:
    if real:
        with VikingClient() as client:
            yield client
        return
    from mm_embed.emulator import Emulator

    with (
        Emulator() as emu,
        VikingClient(
            access_key=emu.access_key, secret_key=emu.secret_key, base_url=emu.url
        ) as client,
    ):
        yield client


def store_runs(client: VikingClient, model: str, candidates: int, k: int) -> dict[str, float]:
    """nDCG@k of the database-side fusions (Qdrant RRF/DBSF, Milvus RRF/weighted)."""
    from pymilvus import MilvusClient
    from qdrant_client import QdrantClient

    from mm_embed.hybrid import MilvusHybrid, QdrantHybrid

    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    samples = load_samples()
    texts = [d.text for d in samples.corpus]
    ids = [d.id for d in samples.corpus]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        milvus = MilvusClient(str(Path(tmp) / "eval.db"))
        stores: dict[str, Any] = {
            "qdrant": QdrantHybrid.from_viking(QdrantClient(":memory:"), "eval", client, model),
            "milvus": MilvusHybrid.from_viking(milvus, "eval", client, model),
        }
        fusions = {"qdrant": ("rrf", "dbsf"), "milvus": ("rrf", "weighted")}
        try:
            for name, store in stores.items():
                store.add_texts(texts, ids=ids)
                for fusion in fusions[name]:
                    run = {
                        q.id: [
                            h.id
                            for h in store.search(
                                q.text, top_k=k, fusion=fusion, candidates=candidates
                            )
                        ]
                        for q in samples.queries
                    }
                    out[f"{name} {fusion} (in the database)"] = mean_ndcg(run, samples.qrels, k)[0]
        finally:
            milvus.close()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="call the real Viking API")
    parser.add_argument("--model", default="bge-m3", help="a Viking model with sparse vectors")
    parser.add_argument("--candidates", type=int, default=20, help="documents per retriever")
    parser.add_argument("--stores", action="store_true", help="also run Qdrant and Milvus")
    args = parser.parse_args(argv)

    print(machine_line())
    print(
        f"engine: {'the real Viking API' if args.real else 'the local emulator (not real semantics)'}"
    )
    with viking_client(args.real) as client:
        report: EvaluationReport = evaluate_sample_set(
            client, model=args.model, candidates=args.candidates
        )
        extra = store_runs(client, args.model, args.candidates, report.k) if args.stores else {}
    print(report.table())
    for name, value in extra.items():
        print(f"  {name:<14}  {value:.4f}")
    print(
        f"provider requests: {report.requests} for {report.texts_embedded} texts "
        "(dense and sparse from the same request)"
    )
    best_single = max(report.scores["dense"], report.scores["sparse"])
    print(ratio_line("hybrid_rrf_over_best_single", report.scores["rrf"] / best_single, ">=", 1.0))
    return 0


if __name__ == "__main__":
    run_main(main)
