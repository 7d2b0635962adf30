"""The demo's flow: pick providers, index, query, report, plot."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

from ..errors import AuthenticationError, MMEmbedError
from ..hybrid import Hit, ndcg_at_k
from ..providers.fgclip import FGClipClient
from ..providers.viking import VikingClient
from ..samples import load_samples
from .pictures import PICTURES

__all__ = ["DemoError", "DemoReport", "demo_main", "run_demo"]

TEXT_MODEL = "bge-m3"
HYBRID_QUERY = "how do I undo a bad kubectl rollout"
IMAGE_QUERY = "a red circle"
BOX_QUERY = "a green square"
TOP = 5
TEXT_BATCH = 16


class DemoError(Exception):
    """Something the user must fix (port, store path, credentials); exit code 2."""


@dataclass
class DemoReport:
    """Everything the demo found, as printed (and as ``--json`` writes it)."""

    providers: dict[str, str] = field(default_factory=dict)
    hybrid_query: str = HYBRID_QUERY
    rankings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    image_query: str = IMAGE_QUERY
    image_hits: list[dict[str, Any]] = field(default_factory=list)
    box_query: str = BOX_QUERY
    box_hits: list[dict[str, Any]] = field(default_factory=list)
    ndcg_at_10: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    plot: str | None = None


# ----------------------------------------------------------------------------- set-up


def _has_fgclip_credentials() -> bool:
    return bool(os.environ.get("FGCLIP_API_KEY"))


def _has_viking_credentials() -> bool:
    env = os.environ
    return bool(
        (env.get("VOLC_ACCESSKEY") and env.get("VOLC_SECRETKEY")) or env.get("VIKING_TOKEN")
    )


@contextlib.contextmanager
def _providers(
    offline: bool, port: int
) -> Iterator[tuple[FGClipClient, VikingClient, dict[str, str]]]:
    real_fgclip = not offline and _has_fgclip_credentials()
    real_viking = not offline and _has_viking_credentials()
    with contextlib.ExitStack() as stack:
        emulator = None
        if not (real_fgclip and real_viking):
            try:
                from ..emulator import Emulator
            except ImportError as exc:
                raise DemoError(
                    f"the emulator needs mm-embed[server] ({exc.name} is missing)"
                ) from None
            try:
                emulator = stack.enter_context(Emulator(port=port))
            except OSError as exc:
                raise DemoError(
                    f"cannot start the emulator on 127.0.0.1:{port}: {exc.strerror or exc}"
                ) from None
        providers: dict[str, str] = {}
        if real_fgclip:
            fgclip = FGClipClient()
            providers["fgclip"] = f"real API at {fgclip.base_url}"
        else:
            assert emulator is not None
            fgclip = FGClipClient(emulator.api_key, base_url=emulator.url)
            providers["fgclip"] = f"emulator at {emulator.url}"
        if real_viking:
            viking = VikingClient()
            providers["viking"] = f"real API at {viking.base_url}"
        else:
            assert emulator is not None
            viking = VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url)
            providers["viking"] = f"emulator at {emulator.url}"
        stack.callback(fgclip.close)
        stack.callback(viking.close)
        yield fgclip, viking, providers


def _qdrant(store: str | None, qdrant_url: str | None) -> tuple[Any, str]:
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise DemoError("the demo needs qdrant-client: install mm-embed[qdrant]") from None
    if qdrant_url:
        return QdrantClient(url=qdrant_url), qdrant_url
    assert store is not None
    path = Path(store)
    if path.exists() and not path.is_dir():
        raise DemoError(f"--store {store!r} is a file; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".mm-embed-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemoError(f"cannot write to --store {store!r}: {exc.strerror or exc}") from None
    try:
        return QdrantClient(path=str(path)), str(path)
    except (RuntimeError, OSError) as exc:  # e.g. the folder is locked by another process
        raise DemoError(f"cannot open the Qdrant store at {store!r}: {exc}") from None


# ----------------------------------------------------------------------------- flow


def _hit_row(hit: Hit, texts: dict[str, str] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": hit.id, "score": round(hit.score, 4)}
    if texts is not None:
        row["text"] = texts.get(hit.id, hit.text or "")
    if hit.kind != "text":
        row["image"] = hit.image
        if hit.box_index is not None and hit.box_index >= 0:
            row["box_index"] = hit.box_index
            row["box"] = hit.box
    return row


def run_demo(
    *,
    store: str | None = None,
    qdrant_url: str | None = None,
    plot: str | None = "mm-embed-demo.png",
    port: int = 0,
    offline: bool = False,
    progress: bool = True,
) -> DemoReport:
    """Run the demo and return its report; raises :class:`DemoError` on a user error."""
    from ..hybrid.qdrant import QdrantHybrid

    report = DemoReport()
    samples = load_samples()
    texts = {d.id: d.text for d in samples.corpus}
    started = time.perf_counter()
    temp_store = None
    if store is None and qdrant_url is None:
        temp_store = tempfile.mkdtemp(prefix="mm-embed-demo-")
        store = temp_store
    try:
        with _providers(offline, port) as (fgclip, viking, providers):
            report.providers = providers
            qdrant, where = _qdrant(store, qdrant_url)
            report.providers["qdrant"] = where
            try:
                text_store = QdrantHybrid.from_viking(
                    qdrant, "mm_embed_demo_texts", viking, TEXT_MODEL
                )
                image_store = QdrantHybrid.from_fgclip(qdrant, "mm_embed_demo_images", fgclip)
                text_store.create_collection(recreate=True)
                # FG-CLIP's dimension is read from its first reply: drop, then let add create.
                if qdrant.collection_exists(image_store.collection_name):
                    qdrant.delete_collection(image_store.collection_name)

                t0 = time.perf_counter()
                ids = list(texts)
                with tqdm(
                    total=len(ids), desc="embed + index texts", unit="text", disable=not progress
                ) as bar:
                    for start in range(0, len(ids), TEXT_BATCH):
                        chunk = ids[start : start + TEXT_BATCH]
                        text_store.add_texts([texts[i] for i in chunk], ids=chunk)
                        bar.update(len(chunk))
                text_seconds = time.perf_counter() - t0

                t0 = time.perf_counter()
                with tqdm(
                    total=len(PICTURES),
                    desc="embed + index images",
                    unit="image",
                    disable=not progress,
                ) as bar:
                    image_store.add_images(
                        [p.png for p in PICTURES],
                        ids=[p.id for p in PICTURES],
                        boxes=[p.boxes for p in PICTURES],
                        metadatas=[
                            {"caption": p.caption, "box_labels": p.box_labels} for p in PICTURES
                        ],
                    )
                    bar.update(len(PICTURES))
                image_seconds = time.perf_counter() - t0

                for mode in ("dense", "sparse", "hybrid"):
                    hits = text_store.search(HYBRID_QUERY, top_k=TOP, mode=mode)
                    report.rankings[mode] = [_hit_row(h, texts) for h in hits]
                report.image_hits = [
                    _hit_row(h) for h in image_store.search_images(IMAGE_QUERY, top_k=TOP)
                ]
                report.box_hits = [
                    _hit_row(h)
                    for h in image_store.search_images(BOX_QUERY, top_k=TOP, regions="boxes")
                ]

                per_mode: dict[str, list[float]] = {"dense": [], "sparse": [], "hybrid": []}
                for query in samples.queries:
                    for mode, values in per_mode.items():
                        ranking = [h.id for h in text_store.search(query.text, top_k=10, mode=mode)]  # type: ignore[arg-type]
                        values.append(ndcg_at_k(ranking, samples.qrels.get(query.id, {}), 10))
                report.ndcg_at_10 = {m: round(sum(v) / len(v), 4) for m, v in per_mode.items()}
            finally:
                qdrant.close()

            n_boxes = sum(len(p.boxes or []) for p in PICTURES)
            report.summary = {
                "texts": len(texts),
                "images": len(PICTURES),
                "boxes": n_boxes,
                "queries": 3 + 3 * len(samples.queries),
                "viking_calls": viking.transport.stats.requests,
                "fgclip_calls": fgclip.transport.stats.requests,
                "retries": viking.transport.stats.retries + fgclip.transport.stats.retries,
                "viking_tokens": viking.usage.total_tokens,
                "fgclip_tokens": fgclip.usage.total_tokens,
                "fgclip_images_billed": fgclip.usage.images,
                "index_texts_s": round(text_seconds, 2),
                "index_images_s": round(image_seconds, 2),
                "total_s": 0.0,
            }
            if plot:
                report.plot = _plot(per_mode, [q.id for q in samples.queries], plot)
    except AuthenticationError as exc:
        raise DemoError(
            f"authentication failed ({exc.message}): check FGCLIP_API_KEY / VOLC_ACCESSKEY, "
            "VOLC_SECRETKEY / VIKING_TOKEN, or run with --offline to use the emulator"
        ) from None
    finally:
        if temp_store is not None:
            shutil.rmtree(temp_store, ignore_errors=True)
    report.summary["total_s"] = round(time.perf_counter() - started, 2)
    return report


def _plot(per_mode: dict[str, list[float]], query_ids: Sequence[str], path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.stderr.write("matplotlib is not installed (mm-embed[plot]): no plot written\n")
        return None
    import numpy as np

    fig, ax = plt.subplots(figsize=(11, 4.8))
    x = np.arange(len(query_ids))
    width = 0.27
    for offset, (mode, values) in zip((-width, 0.0, width), per_mode.items(), strict=True):
        mean = sum(values) / len(values)
        ax.bar(x + offset, values, width, label=f"{mode} (mean {mean:.3f})")
    ax.set_xticks(x, list(query_ids), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1.05)
    ax.set_title("mm-embed demo: dense vs sparse vs hybrid (RRF) retrieval per query")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return str(out)


# ----------------------------------------------------------------------------- output


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_report(report: DemoReport, out: TextIO) -> None:
    w = out.write
    for name, where in report.providers.items():
        w(f"{name:<7} {where}\n")
    if any("emulator" in v for v in report.providers.values()):
        w("note: emulator vectors are deterministic stand-ins, not real semantics\n")

    w(f"\n== Hybrid text query: {report.hybrid_query!r} (top {TOP}) ==\n")
    col = 34
    w("  ".join(f"{m + ' ranking':<{col}}" for m in ("dense", "sparse", "hybrid (RRF)")) + "\n")
    for rank in range(TOP):
        cells = []
        for mode in ("dense", "sparse", "hybrid"):
            rows = report.rankings.get(mode, [])
            cells.append(
                f"{rank + 1}. {rows[rank]['id']} {rows[rank]['score']:.3f}"
                if rank < len(rows)
                else ""
            )
        w("  ".join(f"{c:<{col}}" for c in cells) + "\n")
    top = report.rankings.get("hybrid", [])
    if top:
        w(f"best hybrid hit: {_short(top[0].get('text', ''), 100)}\n")

    w(f"\n== Text -> image query: {report.image_query!r} ==\n")
    for rank, row in enumerate(report.image_hits, 1):
        w(f"  {rank}. {row['image']:<40} score {row['score']:.3f}\n")

    w(f"\n== Text -> box (region) query: {report.box_query!r} ==\n")
    for rank, row in enumerate(report.box_hits, 1):
        w(
            f"  {rank}. {row['image']:<40} box {row.get('box_index')} {row.get('box')}  score {row['score']:.3f}\n"
        )

    w("\n== nDCG@10 on the bundled labelled set ==\n")
    for mode, value in report.ndcg_at_10.items():
        w(f"  {mode:<7} {value:.4f}\n")

    w("\n== Summary ==\n")
    s = report.summary
    summary_rows = [
        (
            "items",
            f"{s['texts']} texts, {s['images']} images, {s['boxes']} boxes, {s['queries']} queries",
        ),
        (
            "calls",
            f"viking {s['viking_calls']}, fg-clip {s['fgclip_calls']} (retries {s['retries']})",
        ),
        (
            "tokens",
            f"viking {s['viking_tokens']}, fg-clip {s['fgclip_tokens']} (+{s['fgclip_images_billed']} images)",
        ),
        (
            "time",
            f"texts {s['index_texts_s']} s, images {s['index_images_s']} s, total {s['total_s']} s",
        ),
    ]
    for label, text in summary_rows:
        w(f"  {label:<7} {text}\n")
    if report.plot:
        w(f"\nplot written to {report.plot}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mm-embed demo",
        description="Embed a bundled sample set of texts, images and boxes into an embedded "
        "Qdrant and run hybrid, image and region queries. Uses the local emulator unless "
        "FGCLIP_API_KEY / VOLC_ACCESSKEY+VOLC_SECRETKEY are set.",
    )
    parser.add_argument(
        "--store", help="keep the Qdrant store in this directory (default: a temporary one)"
    )
    parser.add_argument(
        "--qdrant-url", help="use a Qdrant server instead of local mode, e.g. http://localhost:6333"
    )
    parser.add_argument(
        "--plot",
        default="mm-embed-demo.png",
        help="where to write the PNG plot (default: %(default)s)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write a plot")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument(
        "--offline", action="store_true", help="use the emulator even when credentials are set"
    )
    return parser


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``mm-embed demo``: 0 on success, 2 on a user error, 1 on a provider failure."""
    args = _parser().parse_args(argv)
    if args.store and args.qdrant_url:
        sys.stderr.write("mm-embed demo: give --store or --qdrant-url, not both\n")
        return 2
    try:
        report = run_demo(
            store=args.store,
            qdrant_url=args.qdrant_url,
            plot=None if args.no_plot else args.plot,
            port=args.port,
            offline=args.offline,
            progress=not args.json,
        )
    except DemoError as exc:
        sys.stderr.write(f"mm-embed demo: {exc}\n")
        return 2
    except MMEmbedError as exc:
        sys.stderr.write(f"mm-embed demo: {type(exc).__name__}: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(asdict(report), ensure_ascii=False, indent=2) + "\n")
    else:
        print_report(report, sys.stdout)
    return 0
