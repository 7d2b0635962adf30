"""MilvusHybrid on milvus-lite (the Milvus engine in-process, a db file in tmp_path).

Kept to a few tests on one module-scoped collection: each collection costs about a
second to create and index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from mm_embed import VikingClient
from mm_embed.emulator import Emulator
from mm_embed.errors import InputError
from mm_embed.hybrid import MilvusHybrid
from mm_embed.samples import load_corpus, load_queries
from tests.integration._helpers import assert_server_rrf_equals_fuse

CORPUS = load_corpus()
QUERIES = load_queries()


@pytest.fixture(scope="module")
def store(
    emu: Emulator, viking: VikingClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MilvusHybrid]:
    client = MilvusClient(str(tmp_path_factory.mktemp("milvus") / "hybrid.db"))
    s = MilvusHybrid.from_viking(client, "samples", viking, batch_size=32)
    emu.clear_log()
    s.add_texts(
        [d.text for d in CORPUS],
        ids=[d.id for d in CORPUS],
        metadatas=[{"topic": d.topic} for d in CORPUS],
    )
    yield s
    client.close()


def test_round_trip_one_request_per_text(store: MilvusHybrid, emu: Emulator) -> None:
    log = [r for r in emu.log if r.embedded]
    assert [r.items for r in log] == [32, 20]  # 52 texts, batches of 32, both kinds at once
    assert max(Counter(h for r in log for h in r.item_hashes).values()) == 1
    assert store.count() == 52
    emu.clear_log()
    hits = store.search("kubectl rollout undo", top_k=3)
    assert [r.items for r in emu.log if r.embedded] == [1]
    assert hits[0].id == "k8s-01" and hits[0].text == CORPUS[16].text
    assert hits[0].metadata == {"topic": "kubernetes"}
    sparse = store.search("kubectl rollout undo", top_k=3, mode="sparse")
    dense = store.search("kubectl rollout undo", top_k=3, mode="dense")
    assert sparse[0].id == dense[0].id == "k8s-01"
    assert -1.0 <= dense[0].score <= 1.0  # cosine


def test_server_rrf_equals_fuse(store: MilvusHybrid) -> None:
    """Milvus's RRFRanker is 1 / (k + rank) from rank 1, like fuse(); the reference keeps
    Milvus's own order of equal scores (score = -position)."""
    assert_server_rrf_equals_fuse(store, QUERIES, rel=1e-5)


def test_weighted_ranker_and_client_side(store: MilvusHybrid) -> None:
    query = "autoscaling pods on CPU usage"
    sparse = store.search(query, top_k=2, mode="sparse")
    dense = store.search(query, top_k=2, mode="dense")
    assert sparse[0].id != dense[0].id
    assert store.search(query, top_k=1, fusion="weighted", weights=[0.0, 1.0])[0].id == sparse[0].id
    assert store.search(query, top_k=1, fusion="weighted", weights=[1.0, 0.0])[0].id == dense[0].id
    for method in ("rrf", "relative_score", "dbsf"):
        top = store.search(query, top_k=1, fusion=method, weights=[0.0, 1.0], client_side=True)  # type: ignore[arg-type]
        assert top[0].id == sparse[0].id
    for kwargs, fragment in (
        ({"fusion": "dbsf"}, "no 'dbsf' ranker"),
        ({"weights": [1.0, 2.0]}, "RRFRanker takes no weights"),
        ({"fusion": "weighted", "client_side": True}, "database's own fusion"),
    ):
        with pytest.raises(InputError, match=fragment):
            store.search(query, **kwargs)  # type: ignore[arg-type]


def test_reopen_from_disk(viking: VikingClient, tmp_path: Path) -> None:
    path = str(tmp_path / "reopen.db")
    client = MilvusClient(path)
    MilvusHybrid.from_viking(client, "docs", viking).add_texts(
        [d.text for d in CORPUS[16:25]], ids=[d.id for d in CORPUS[16:25]]
    )
    client.close()
    client = MilvusClient(path)
    try:
        reopened = MilvusHybrid.from_viking(client, "docs", viking)
        assert reopened.count() == 9  # loaded again after reopening
        assert reopened.search("OOMKilled memory limit", top_k=1)[0].id == "k8s-08"
        with pytest.raises(InputError, match="too long for Milvus"):
            reopened.add_texts(["x"], ids=["i" * 600])
    finally:
        client.close()


def test_fgclip_images_and_boxes(emu: Emulator, tmp_path: Path) -> None:
    from mm_embed import FGClipClient
    from mm_embed.emulator import SAMPLES, sample_png

    names = ["red-circle", "blue-triangle", "red-circle-blue-square"]
    boxes = [None, None, [list(shape[2]) for shape in SAMPLES[names[2]].shapes]]
    client = MilvusClient(str(tmp_path / "pics.db"))
    try:
        with FGClipClient(api_key=emu.api_key, base_url=emu.url) as fg:
            s = MilvusHybrid.from_fgclip(client, "pics", fg)
            s.add_images([sample_png(n) for n in names], ids=names, boxes=boxes)
            assert s.count() == 5
            top = s.search_images("a blue square", top_k=1, regions="boxes")[0]
            assert (top.id, top.image, top.box_index, top.box) == (
                "red-circle-blue-square#box1",
                "red-circle-blue-square",
                1,
                [136.0, 72.0, 104.0, 104.0],
            )
            assert {h.kind for h in s.search_images("a red circle", top_k=3)} == {"image"}
    finally:
        client.close()
