"""QdrantHybrid against the emulator and qdrant-client local mode (memory and on disk)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from mm_embed import FGClipClient, VikingClient
from mm_embed.errors import InputError
from mm_embed.hybrid import QdrantHybrid, VikingHybridEncoder
from mm_embed.samples import load_corpus, load_queries
from tests.integration._helpers import assert_server_rrf_equals_fuse

CORPUS = load_corpus()
QUERIES = load_queries()


@pytest.fixture(scope="module")
def store(viking: VikingClient) -> QdrantHybrid:
    s = QdrantHybrid.from_viking(QdrantClient(":memory:"), "samples", viking)
    s.add_texts(
        [d.text for d in CORPUS],
        ids=[d.id for d in CORPUS],
        metadatas=[{"topic": d.topic} for d in CORPUS],
    )
    return s


def embedded(emu: Any) -> list[Any]:
    return [r for r in emu.log if r.embedded]


@pytest.mark.parametrize("where", ["memory", "path"])
def test_round_trip_one_request_per_text(
    emu: Any, viking: VikingClient, tmp_path: Path, where: str
) -> None:
    location = {"location": ":memory:"} if where == "memory" else {"path": str(tmp_path / "q")}
    client = QdrantClient(**location)  # type: ignore[arg-type]
    s = QdrantHybrid.from_viking(client, "docs", viking, batch_size=20)
    emu.clear_log()
    ids = s.add_texts([d.text for d in CORPUS], ids=[d.id for d in CORPUS])
    log = embedded(emu)
    # 52 texts in batches of 20: three requests, each text sent once for both vectors
    assert [r.items for r in log] == [20, 20, 12]
    assert max(Counter(h for r in log for h in r.item_hashes).values()) == 1
    assert ids == [d.id for d in CORPUS] and s.count() == 52
    info = client.get_collection("docs").config.params
    assert info.vectors["dense"].size == 1024  # bge-m3  # type: ignore[index]
    assert "sparse" in (info.sparse_vectors or {})

    emu.clear_log()
    hits = s.search("kubectl rollout undo", top_k=3)
    assert [r.items for r in embedded(emu)] == [1]  # the query: one request, both kinds
    assert hits[0].id == "k8s-01" and hits[0].text == CORPUS[16].text
    assert hits[0].kind == "text" and hits[0].metadata == {}

    if where == "path":
        client.close()
        reopened = QdrantHybrid.from_viking(QdrantClient(path=str(tmp_path / "q")), "docs", viking)
        reopened.create_collection()  # exists with the right shape: a no-op
        assert reopened.count() == 52
        assert reopened.search("kubectl rollout undo", top_k=1)[0].id == "k8s-01"


def test_upsert_replaces_by_id(viking: VikingClient) -> None:
    s = QdrantHybrid.from_viking(QdrantClient(":memory:"), "docs", viking)
    s.add_texts(["red bicycle chain"], ids=["x"], metadatas=[{"v": 1}])
    s.add_texts(["blue telescope mirror"], ids=["x"], metadatas=[{"v": 2}])
    assert s.count() == 1
    hit = s.search("telescope", top_k=1, mode="sparse")[0]
    assert (hit.id, hit.text, hit.metadata) == ("x", "blue telescope mirror", {"v": 2})


def test_server_rrf_equals_fuse(store: QdrantHybrid) -> None:
    """Qdrant's RRF over its two prefetches equals fuse() over the same two rankings.

    Qdrant's k counts positions from 0; the helper passes k + 1, so the scores agree
    exactly. Equal sparse scores are common (shared stopwords) and Qdrant orders them its
    own way, so the reference keeps Qdrant's order (score = -position)."""
    assert_server_rrf_equals_fuse(store, QUERIES, rel=1e-6)


def test_client_side_rrf_breaks_ties_by_id(store: QdrantHybrid) -> None:
    hits = store.search(QUERIES[1].text, top_k=52, client_side=True)
    keys = [(-h.score, h.id) for h in hits]
    assert keys == sorted(keys)


def test_server_dbsf_equals_client_side_without_outliers(store: QdrantHybrid) -> None:
    # With at most 10 candidates no score can lie beyond mean +/- 3 sample std, so
    # fuse()'s clipping never applies and Qdrant's DBSF gives the same scores.
    for query in QUERIES:
        server = store.search(query.text, top_k=5, fusion="dbsf", candidates=10)
        client = {
            h.id: h.score
            for h in store.search(
                query.text, top_k=20, fusion="dbsf", candidates=10, client_side=True
            )
        }
        assert {h.id: h.score for h in server} == pytest.approx(
            {h.id: client[h.id] for h in server}, rel=1e-5
        ), query.id
        assert [h.score for h in server] == pytest.approx(
            sorted(client.values())[::-1][:5], rel=1e-5
        )


def test_dense_and_sparse_modes_match_plain_rankings(
    store: QdrantHybrid, viking: VikingClient
) -> None:
    from mm_embed.hybrid import SparseIndex

    encoder = VikingHybridEncoder(viking)
    docs = encoder.encode_documents([d.text for d in CORPUS])
    index = SparseIndex()
    index.add([d.id for d in CORPUS], docs.sparse)  # type: ignore[arg-type]
    for query in QUERIES[:5]:
        q = encoder.encode_queries([query.text])
        expected = dict(index.search(q.sparse[0], top_k=52))  # type: ignore[index]
        got = {h.id: h.score for h in store.search(query.text, top_k=52, mode="sparse")}
        assert got == pytest.approx(expected, rel=1e-4)
        sims = docs.dense @ q.dense[0]
        dense = store.search(query.text, top_k=5, mode="dense")
        assert [h.score for h in dense] == pytest.approx(sorted(sims)[::-1][:5], rel=1e-4)
        assert all(
            h.score == pytest.approx(sims[[d.id for d in CORPUS].index(h.id)], rel=1e-4)
            for h in dense
        )


def test_weights_reach_qdrant_and_client_side_methods(store: QdrantHybrid) -> None:
    query = "autoscaling pods on CPU usage"
    sparse = store.search(query, top_k=2, mode="sparse")
    dense = store.search(query, top_k=2, mode="dense")
    # the sides disagree on this query, and neither top hit is tied
    assert sparse[0].id != dense[0].id
    assert sparse[0].score > sparse[1].score and dense[0].score > dense[1].score
    assert store.search(query, top_k=1, weights=[0.0, 1.0])[0].id == sparse[0].id
    assert store.search(query, top_k=1, weights=[1.0, 0.0])[0].id == dense[0].id
    for method in ("rrf", "relative_score", "dbsf"):
        for weights, expected in (([0.0, 1.0], sparse[0].id), ([1.0, 0.0], dense[0].id)):
            top = store.search(query, top_k=1, fusion=method, weights=weights, client_side=True)  # type: ignore[arg-type]
            assert top[0].id == expected, (method, weights)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"fusion": "relative_score"}, "client_side=True"),
        ({"fusion": "dbsf", "weights": [1, 2]}, "no weights"),
        ({"fusion": "weighted"}, "unknown fusion"),
        ({"mode": "both"}, "unknown search mode"),
        ({"weights": [1.0]}, r"\[dense_weight, sparse_weight\]"),
        ({"k": 2.5}, "integer k"),
        ({"k": -1}, "k must be a finite number"),
        ({"top_k": -1}, "top_k"),
        ({"candidates": -2}, "candidates"),
    ],
)
def test_bad_search_arguments(store: QdrantHybrid, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        store.search("bread", **kwargs)


def test_existing_collection_with_other_shape_is_refused(viking: VikingClient) -> None:
    client = QdrantClient(":memory:")
    QdrantHybrid.from_viking(client, "c", viking, model="bge-m3").create_collection()
    other = QdrantHybrid.from_viking(client, "c", viking, model="doubao-embedding-and-m3")
    with pytest.raises(InputError, match="2048-d"):
        other.create_collection()
    other.create_collection(recreate=True)
    assert client.get_collection("c").config.params.vectors["dense"].size == 2048  # type: ignore[index]


def test_empty_store_and_bad_inputs(viking: VikingClient) -> None:
    s = QdrantHybrid.from_viking(QdrantClient(":memory:"), "none", viking)
    assert s.search("anything") == [] and s.count() == 0
    with pytest.raises(InputError, match="ids"):
        s.add_texts(["a", "b"], ids=["same", "same"])
    with pytest.raises(InputError, match="metadatas"):
        s.add_texts(["a"], metadatas=[{}, {}])
    with pytest.raises(InputError, match="add_images needs an FGClipEncoder"):
        s.add_images([b"png"])
    with pytest.raises(InputError, match="distance"):
        QdrantHybrid(QdrantClient(":memory:"), "x", VikingHybridEncoder(viking), distance="l1")  # type: ignore[arg-type]
    assert "QdrantHybrid(collection_name='none'" in repr(s) and "secret" not in repr(s).lower()


def test_fgclip_images_and_boxes(emu: Any) -> None:
    from mm_embed.emulator import SAMPLES, sample_png

    names = list(SAMPLES)
    boxes = [
        [list(shape[2]) for shape in SAMPLES[n].shapes] if len(SAMPLES[n].shapes) > 1 else None
        for n in names
    ]
    with FGClipClient(api_key=emu.api_key, base_url=emu.url) as fg:
        s = QdrantHybrid.from_fgclip(QdrantClient(":memory:"), "pics", fg)
        s.add_images(
            [sample_png(n) for n in names],
            ids=names,
            boxes=boxes,
            metadatas=[{"file": n} for n in names],
        )
        assert s.count() == len(names) + 2  # every image plus the two boxes of one
        sent = [r.items for r in emu.log if r.route == "fgclip" and r.embedded]
        # one whole-image call for all, one box call for the single boxed image only
        assert sent == [len(names), 1]
        hits = s.search_images("a blue square", top_k=2, regions="boxes")
        top = hits[0]
        assert (top.id, top.kind, top.image, top.box_index) == (
            "red-circle-blue-square#box1",
            "box",
            "red-circle-blue-square",
            1,
        )
        assert top.box == [136.0, 72.0, 104.0, 104.0]
        assert top.metadata == {"file": "red-circle-blue-square"}
        images = s.search_images("a red circle", top_k=3)
        assert all(h.kind == "image" for h in images)
        both = s.search_images("a blue square", top_k=5, regions="both")
        assert len({h.image for h in both}) == len(both)  # one hit per image
        assert both[0].image == "red-circle-blue-square"  # its box wins the fused ranking
        with pytest.raises(InputError, match="no sparse vectors"):
            s.search("a red circle")
        assert s.search("a red circle", mode="dense") == []  # no texts stored
