"""A dense and a sparse LlamaIndex model holding one ``DenseSparsePairing`` (their public
``pairing`` field): one provider call serves both halves, within the pairing's ttl and
size, and only for the exact request that produced them."""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest

from llamaindex_mm_embed import VikingEmbedding, VikingSparseEmbedding, viking_hybrid_fns
from mm_embed import ConfigurationError, InputError
from mm_embed.emulator import Emulator
from mm_embed.pairing import DenseSparsePairing
from tests.integration._helpers import embed_requests, viking_kwargs

MODEL = "doubao-embedding-and-m3"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def paired(
    emu: Emulator, pairing: DenseSparsePairing | None = None, dimension: int | None = 512
) -> tuple[VikingEmbedding, VikingSparseEmbedding]:
    dense = VikingEmbedding(**viking_kwargs(emu), model_name=MODEL, dimension=dimension)
    sparse = VikingSparseEmbedding(**viking_kwargs(emu), model_name=MODEL)
    viking_hybrid_fns(dense, sparse, pairing=pairing)
    return dense, sparse


def sent(emu: Emulator) -> list[int]:
    """Texts per embedding request, oldest first."""
    return [r.items for r in embed_requests(emu, "viking")]


def test_both_halves_are_kept_until_they_expire(emulator: Emulator) -> None:
    dense, sparse = paired(emulator)
    pairing = dense.pairing
    assert pairing is not None and sparse.pairing is pairing and sparse.dimension == 512
    vectors = dense.get_text_embedding_batch(["aa", "b", "aa"])
    assert sent(emulator) == [2]  # duplicates asked once, both kinds in one request
    assert vectors[0] == vectors[2] and len(vectors[0]) == 512
    halves = sparse.get_text_embedding_batch(["b", "aa"])
    assert sent(emulator) == [2]  # served from the pairing
    alone = VikingSparseEmbedding(**viking_kwargs(emulator), model_name=MODEL)
    assert halves[1] == alone.get_text_embedding("aa")  # the same half an unpaired call gets
    assert sent(emulator) == [2, 1]
    assert len(pairing) == 2
    assert sparse.get_query_embedding("b") == halves[0]
    assert dense.get_query_embedding("b") == vectors[1]
    assert sent(emulator) == [2, 1]
    assert (pairing.reused, pairing.fetched) == (4, 2)


async def test_async_and_sparse_first(emulator: Emulator) -> None:
    dense, sparse = paired(emulator)
    await sparse.aget_text_embedding_batch(["x", "yy"])
    got = await dense.aget_text_embedding_batch(["yy", "x", "zzz"])
    assert sent(emulator) == [2, 1]
    assert got == dense.get_text_embedding_batch(["yy", "x", "zzz"])
    assert sent(emulator) == [2, 1]
    await dense.aclose()
    await sparse.aclose()


def test_halves_expire_and_the_pairing_is_bounded(emulator: Emulator) -> None:
    clock = Clock()
    dense, sparse = paired(emulator, DenseSparsePairing(ttl_seconds=10, max_entries=2, clock=clock))
    dense.get_text_embedding_batch(["a", "b", "c"])
    assert dense.pairing is not None and len(dense.pairing) == 2  # the oldest was evicted
    sparse.get_text_embedding("a")
    assert sent(emulator) == [3, 1]
    sparse.get_text_embedding("a")
    assert sent(emulator) == [3, 1]
    clock.now = 10.5
    sparse.get_text_embedding("c")  # expired: asked again
    assert sent(emulator) == [3, 1, 1]
    assert len(dense.pairing) == 1  # "a" expired too and left when "c" arrived


async def test_concurrent_sides_share_one_call(emulator: Emulator) -> None:
    dense, sparse = paired(emulator)
    dense_q, sparse_q = await asyncio.wait_for(
        asyncio.gather(dense.aget_query_embedding("q"), sparse.aget_query_embedding("q")), 10
    )
    assert sent(emulator) == [1]
    assert len(dense_q) == 512 and sparse_q
    assert dense.pairing is not None
    assert (dense.pairing.coalesced, dense.pairing.fetched) == (1, 1)


def test_a_half_serves_only_the_same_request(emulator: Emulator) -> None:
    dense, sparse = paired(emulator)
    dense.get_text_embedding("a")
    dense.dimension = 1024  # the request changed: the held halves do not apply to it
    assert len(dense.get_text_embedding("a")) == 1024
    assert sent(emulator) == [1, 1]
    sparse.get_text_embedding("a")  # the sparse side still asks with dimension 512: held
    assert sent(emulator) == [1, 1]


def test_pairing_needs_a_model_with_both_kinds(emulator: Emulator) -> None:
    with pytest.raises(InputError, match="no sparse vectors"):
        VikingEmbedding(
            **viking_kwargs(emulator), model_name="doubao-embedding", pairing=DenseSparsePairing()
        )
    with pytest.raises(ConfigurationError, match=r"no sparse vectors; use one of: .*bge-m3"):
        viking_hybrid_fns(VikingEmbedding(**viking_kwargs(emulator), model_name="doubao-embedding"))
    with pytest.raises(ConfigurationError, match="differ in dimension"):
        viking_hybrid_fns(
            VikingEmbedding(**viking_kwargs(emulator), model_name=MODEL, dimension=512),
            VikingSparseEmbedding(**viking_kwargs(emulator), model_name=MODEL, dimension=1024),
        )


def test_pickles_and_copies_of_paired_models(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense, sparse = paired(emulator)
    assert dense.pairing is not None
    # A copy shares the pairing (a shared service, not a setting).
    assert copy.deepcopy(dense).pairing is dense.pairing
    assert dense.model_copy().pairing is dense.pairing
    again = VikingSparseEmbedding(**viking_kwargs(emulator), model_name=MODEL)
    viking_hybrid_fns(dense, again)
    assert again.pairing is dense.pairing  # pairing again reuses the pairing
    # A pickle holds an empty pairing, shared by the models pickled together.
    monkeypatch.setenv("VOLC_ACCESSKEY", emulator.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", emulator.secret_key)
    dense2, sparse2 = pickle.loads(pickle.dumps((dense, sparse)))
    assert dense2.pairing is sparse2.pairing is not dense.pairing
    assert dense2.pairing is not None and len(dense2.pairing) == 0
    dense2.get_text_embedding("after a pickle")
    sparse2.get_text_embedding("after a pickle")
    assert sent(emulator) == [1]
