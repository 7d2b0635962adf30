"""DenseSparsePair: the short-lived store that lets one call serve dense and sparse
(no network)."""

from __future__ import annotations

import numpy as np
import pytest

from llamaindex_mm_embed import DenseSparsePair, VikingEmbedding
from mm_embed import EmbeddingResult, SparseVector


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeProvider:
    """Answers with both vectors; dense row = [len(text), n-th call], sparse = {text: 1}."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> EmbeddingResult:
        self.calls.append(list(texts))
        n = len(self.calls)
        dense = np.array([[len(t), n] for t in texts], dtype=np.float32)
        return EmbeddingResult(
            dense={"float": dense},
            sparse=[SparseVector({t: 1.0}) for t in texts],
            input_indices=np.arange(len(texts), dtype=np.int64),
        )

    async def acall(self, texts: list[str]) -> EmbeddingResult:
        return self(texts)


@pytest.fixture
def dense() -> VikingEmbedding:
    return VikingEmbedding(token="t", model_name="bge-m3")


def test_both_halves_are_kept_until_they_expire(dense: VikingEmbedding) -> None:
    pair, provider = DenseSparsePair(dense), FakeProvider()
    vectors = pair.resolve("dense", ["aa", "b", "aa"], provider)
    assert provider.calls == [["aa", "b"]]  # duplicates asked once
    assert vectors == [[2.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    sparse = pair.resolve("sparse", ["b", "aa"], provider)
    assert provider.calls == [["aa", "b"]]  # served from the store
    assert [set(s.values()) for s in sparse] == [{1.0}, {1.0}]
    assert len(pair) == 2  # both halves stay, for either side and any number of asks
    assert pair.resolve("sparse", ["b"], provider) == sparse[:1]
    assert pair.resolve("dense", ["b"], provider) == [[1.0, 1.0]]
    assert provider.calls == [["aa", "b"]]
    assert (pair.reused, pair.fetched) == (4, 2)


async def test_async_and_sparse_first(dense: VikingEmbedding) -> None:
    pair, provider = DenseSparsePair(dense), FakeProvider()
    await pair.aresolve("sparse", ["x", "yy"], provider.acall)
    got = await pair.aresolve("dense", ["yy", "x", "zzz"], provider.acall)
    assert provider.calls == [["x", "yy"], ["zzz"]]
    assert got == [[2.0, 1.0], [1.0, 1.0], [3.0, 2.0]]


def test_halves_expire_and_the_store_is_bounded(dense: VikingEmbedding) -> None:
    clock, provider = Clock(), FakeProvider()
    pair = DenseSparsePair(dense, ttl_seconds=10, max_entries=2, clock=clock)
    pair.resolve("dense", ["a", "b", "c"], provider)
    assert len(pair) == 2  # the oldest was evicted
    pair.resolve("sparse", ["a"], provider)
    assert provider.calls[-1] == ["a"]
    pair.resolve("sparse", ["a"], provider)
    assert len(provider.calls) == 2
    clock.now = 10.5
    pair.resolve("sparse", ["c"], provider)  # expired: asked again
    assert provider.calls[-1] == ["c"]
    assert len(pair) == 1  # "a" expired too and left when "c" arrived


async def test_concurrent_sides_share_one_call(dense: VikingEmbedding) -> None:
    import asyncio

    pair, provider = DenseSparsePair(dense), FakeProvider()
    gate = asyncio.Event()

    async def slow(texts: list[str]) -> EmbeddingResult:
        await asyncio.wait_for(gate.wait(), 5)
        return provider(texts)

    both = asyncio.gather(pair.aresolve("dense", ["q"], slow), pair.aresolve("sparse", ["q"], slow))
    await asyncio.sleep(0.01)
    gate.set()
    dense_q, sparse_q = await asyncio.wait_for(both, 5)
    assert provider.calls == [["q"]]
    assert dense_q == [[1.0, 1.0]] and list(sparse_q[0].values()) == [1.0]
    assert (pair.coalesced, pair.fetched) == (1, 1)


def test_a_half_serves_only_the_same_request(dense: VikingEmbedding) -> None:
    pair, provider = DenseSparsePair(dense), FakeProvider()
    pair.resolve("dense", ["a"], provider)
    dense.model_version = "other"  # the request changed: the stored half does not apply
    pair.resolve("sparse", ["a"], provider)
    assert len(provider.calls) == 2
    assert pair.request_options() == {
        "model": "bge-m3",
        "model_version": "other",
        "dimension": None,
    }


def test_settings_are_checked(dense: VikingEmbedding) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        DenseSparsePair(dense, ttl_seconds=0)
    with pytest.raises(ValueError, match="max_entries"):
        DenseSparsePair(dense, max_entries=0)


def test_pickles_and_copies_of_paired_models(dense: VikingEmbedding) -> None:
    import copy
    import pickle

    from llamaindex_mm_embed import VikingSparseEmbedding, viking_hybrid_fns

    sparse = VikingSparseEmbedding(token="t", model_name="bge-m3")
    viking_hybrid_fns(dense, sparse)
    assert dense._pair is not None and dense._pair is sparse._pair
    assert pickle.loads(pickle.dumps(dense))._pair is None  # a pickle is unpaired
    assert pickle.loads(pickle.dumps(sparse))._pair is None
    assert copy.deepcopy(dense)._pair is dense._pair  # a copy shares the store
    again = VikingSparseEmbedding(token="t", model_name="bge-m3")
    viking_hybrid_fns(dense, again)
    assert again._pair is dense._pair  # pairing again reuses the store
