"""The demo's flow: pick providers, index texts and pictures, run the queries, measure."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from ..errors import AuthenticationError
from ..explore.collection_info import record_store_info
from ..explore.errors import SetupError
from ..explore.providers import (
    Clients,
    has_fgclip_credentials,
    has_viking_credentials,
    open_clients,
)
from ..explore.qdrant_store import open_qdrant
from ..explore.rankings import MODES, explain_text_query
from ..hybrid import Hit, ndcg_at_k
from ..hybrid.qdrant import QdrantHybrid
from ..samples import SampleSet, load_samples
from .html_report import write_html_report
from .pictures import PICTURES, thumbnail
from .plot import write_plot
from .report import (
    BOX_QUERY,
    HYBRID_QUERY,
    IMAGE_COLLECTION,
    IMAGE_QUERY,
    NDCG_DEPTH,
    TEXT_COLLECTION,
    TEXT_MODEL,
    TOP,
    DemoError,
    DemoReport,
)

__all__ = ["run_demo"]

#: Texts embedded (one provider request) and upserted per step.
TEXT_BATCH = 16


@dataclass
class _Stores:
    texts: QdrantHybrid
    images: QdrantHybrid


def run_demo(
    *,
    store: str | None = None,
    qdrant_url: str | None = None,
    plot: str | None = "mm-embed-demo.png",
    html: str | None = "mm-embed-demo.html",
    port: int = 0,
    offline: bool = False,
    progress: bool = True,
) -> DemoReport:
    """Run the demo and return its report; writes the PNG ``plot`` and the HTML report
    ``html`` unless they are ``None``. Raises :class:`DemoError` on a user error."""
    report = DemoReport()
    samples = load_samples()
    started = time.perf_counter()
    temp_store = None if store or qdrant_url else tempfile.mkdtemp(prefix="mm-embed-demo-")
    try:
        with open_clients(
            real_fgclip=not offline and has_fgclip_credentials(),
            real_viking=not offline and has_viking_credentials(),
            port=port,
        ) as clients:
            report.providers = dict(clients.where)
            qdrant, where = open_qdrant(temp_store or store, qdrant_url, create=True)
            report.providers["qdrant"] = where
            try:
                stores = _stores(qdrant, clients)
                seconds = _index(stores, samples, clients, progress)
                _query(stores, report)
                _evaluate(stores.texts, samples, report)
            finally:
                qdrant.close()
            report.summary = _summary(clients, samples, seconds)
    except AuthenticationError as exc:
        raise DemoError(
            f"authentication failed ({exc.message}): check FGCLIP_API_KEY / VOLC_ACCESSKEY, "
            "VOLC_SECRETKEY / VIKING_TOKEN, or run with --offline to use the emulator"
        ) from None
    finally:
        if temp_store is not None:
            shutil.rmtree(temp_store, ignore_errors=True)
    report.summary["total_s"] = round(time.perf_counter() - started, 2)
    if plot:
        report.plot = write_plot(report, plot)
    if html:
        report.html = write_html_report(report, html)
    return report


def _stores(qdrant: Any, clients: Clients) -> _Stores:
    texts = QdrantHybrid.from_viking(qdrant, TEXT_COLLECTION, clients.viking, TEXT_MODEL)
    texts.create_collection(recreate=True)
    images = QdrantHybrid.from_fgclip(qdrant, IMAGE_COLLECTION, clients.fgclip)
    # FG-CLIP's dimension is read from its first reply: drop, then let add create.
    if qdrant.collection_exists(images.collection_name):
        qdrant.delete_collection(images.collection_name)
    return _Stores(texts, images)


def _index(
    stores: _Stores, samples: SampleSet, clients: Clients, progress: bool
) -> dict[str, float]:
    """Embed and upsert the texts and the pictures; record how each collection was
    embedded (for ``mm-embed explore``). Returns the seconds each took."""
    texts = {d.id: d.text for d in samples.corpus}
    ids = list(texts)
    t0 = time.perf_counter()
    with tqdm(total=len(ids), desc="embed + index texts", unit="text", disable=not progress) as bar:
        for start in range(0, len(ids), TEXT_BATCH):
            chunk = ids[start : start + TEXT_BATCH]
            stores.texts.add_texts([texts[i] for i in chunk], ids=chunk)
            bar.update(len(chunk))
    text_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    with tqdm(
        total=len(PICTURES), desc="embed + index images", unit="image", disable=not progress
    ) as bar:
        stores.images.add_images(
            [p.png for p in PICTURES],
            ids=[p.id for p in PICTURES],
            boxes=[p.boxes for p in PICTURES],
            metadatas=[
                {"caption": p.caption, "box_labels": p.box_labels, "thumbnail": thumbnail(p)}
                for p in PICTURES
            ],
        )
        bar.update(len(PICTURES))
    image_seconds = time.perf_counter() - t0
    for store, provider in ((stores.texts, "viking"), (stores.images, "fgclip")):
        try:
            record_store_info(store, clients.engines[provider])
        except SetupError as exc:  # the demo still runs; only the explorer needs it
            sys.stderr.write(f"note: {exc}; mm-embed explore will need --collection/--model\n")
    return {"texts": text_seconds, "images": image_seconds}


def _hit_row(hit: Hit) -> dict[str, Any]:
    row: dict[str, Any] = {"id": hit.id, "score": round(hit.score, 4), "image": hit.image}
    if hit.box_index is not None and hit.box_index >= 0:
        row["box_index"] = hit.box_index
        row["box"] = hit.box
    return row


def _query(stores: _Stores, report: DemoReport) -> None:
    rankings = explain_text_query(stores.texts, HYBRID_QUERY, top_k=TOP)
    report.rankings = {
        mode: [
            {
                "id": hit.id,
                "score": hit.scores[mode],
                "text": hit.text,
                "ranks": dict(hit.ranks),
                "matched_terms": list(hit.matched_terms),
            }
            for hit in hits
        ]
        for mode, hits in rankings.lists.items()
    }
    report.image_hits = [_hit_row(h) for h in stores.images.search_images(IMAGE_QUERY, top_k=TOP)]
    report.box_hits = [
        _hit_row(h) for h in stores.images.search_images(BOX_QUERY, top_k=TOP, regions="boxes")
    ]


def _evaluate(texts: QdrantHybrid, samples: SampleSet, report: DemoReport) -> None:
    per_query: dict[str, dict[str, float]] = {mode: {} for mode in MODES}
    for query in samples.queries:
        judged = samples.qrels.get(query.id, {})
        for mode in MODES:
            found = texts.search(query.text, top_k=NDCG_DEPTH, mode=mode)
            per_query[mode][query.id] = ndcg_at_k([h.id for h in found], judged, NDCG_DEPTH)
    report.ndcg_per_query = per_query
    report.ndcg_at_10 = {
        mode: round(sum(values.values()) / len(values), 4) for mode, values in per_query.items()
    }


def _summary(clients: Clients, samples: SampleSet, seconds: dict[str, float]) -> dict[str, Any]:
    fgclip, viking = clients.fgclip, clients.viking
    return {
        "texts": len(samples.corpus),
        "images": len(PICTURES),
        "boxes": sum(len(p.boxes or []) for p in PICTURES),
        "queries": 3 + len(MODES) * len(samples.queries),
        "viking_calls": viking.transport.stats.requests,
        "fgclip_calls": fgclip.transport.stats.requests,
        "retries": viking.transport.stats.retries + fgclip.transport.stats.retries,
        "viking_tokens": viking.usage.total_tokens,
        "fgclip_tokens": fgclip.usage.total_tokens,
        "fgclip_images_billed": fgclip.usage.images,
        "index_texts_s": round(seconds["texts"], 2),
        "index_images_s": round(seconds["images"], 2),
        "total_s": 0.0,
    }
