"""SparseIndex: exact dot products against a dense numpy reference, updates, validation."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from mm_embed import SparseVector
from mm_embed.errors import InputError
from mm_embed.hybrid import SparseIndex, as_index_values


def random_corpus(
    seed: int, n_docs: int = 200, vocab: int = 500
) -> tuple[list[str], list[dict[int, float]], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [f"doc{i:03d}" for i in range(n_docs)]
    vectors = []
    dense = np.zeros((n_docs, vocab))
    for row in range(n_docs):
        terms = rng.choice(vocab, size=int(rng.integers(1, 20)), replace=False)
        weights = rng.random(len(terms)) + 0.01
        vectors.append({int(t): float(w) for t, w in zip(terms, weights, strict=True)})
        dense[row, terms] = weights
    return ids, vectors, dense


def test_matches_dense_dot_products() -> None:
    ids, vectors, dense = random_corpus(0)
    index = SparseIndex()
    index.add(ids, vectors)
    rng = np.random.default_rng(1)
    for _ in range(25):
        terms = rng.choice(500, size=8, replace=False)
        weights = rng.random(8)
        q = np.zeros(500)
        q[terms] = weights
        expected = dense @ q
        got = index.scores({int(t): float(w) for t, w in zip(terms, weights, strict=True)})
        hit_rows = np.flatnonzero(expected > 0)
        assert set(got) == {ids[r] for r in hit_rows}
        for r in hit_rows:
            assert got[ids[r]] == pytest.approx(expected[r], rel=1e-5)
        top = index.search((terms.tolist(), weights.tolist()), top_k=5)
        ref = sorted(((ids[r], expected[r]) for r in hit_rows), key=lambda x: (-x[1], x[0]))[:5]
        assert [d for d, _ in top] == [d for d, _ in ref]


def test_accepts_core_and_framework_sparse_vectors() -> None:
    @dataclass
    class LangChainLike:
        indices: list[int]
        values: list[float]

    core = SparseVector({"red": 1.0, "circle": 2.0})
    index = SparseIndex()
    index.add(
        ["core", "dict", "pair", "object"],
        [
            core,
            core.to_dict(),
            (list(core.indices), list(core.values)),
            LangChainLike(list(core.indices), list(core.values)),
        ],
    )
    scores = index.scores(SparseVector({"circle": 1.0}))
    assert scores == {"core": 2.0, "dict": 2.0, "pair": 2.0, "object": 2.0}


def test_only_overlapping_documents_are_returned_with_id_ties() -> None:
    index = SparseIndex()
    index.add(["b", "a", "c"], [{1: 1.0}, {1: 1.0}, {2: 5.0}])
    assert index.search({1: 2.0}) == [("a", 2.0), ("b", 2.0)]
    assert index.search({99: 1.0}) == []
    assert index.search({}) == []
    assert index.search({1: 1.0}, top_k=0) == []


def test_replace_remove_and_len() -> None:
    index = SparseIndex()
    index.add(["x", "y"], [{1: 1.0}, {1: 3.0}])
    assert len(index) == 2 and "x" in index and repr(index) == "SparseIndex(documents=2)"
    assert index.search({1: 1.0})[0] == ("y", 3.0)
    index.add(["y"], [{2: 1.0}])  # replaces y entirely
    assert index.search({1: 1.0}) == [("x", 1.0)]
    assert index.search({2: 1.0}) == [("y", 1.0)]
    assert index.remove(["x", "missing"]) == 1
    assert index.search({1: 1.0}) == [] and len(index) == 1
    assert sorted(index) == ["y"]
    index.add_vectors({"x": {1: 4.0}})
    assert index.search({1: 1.0}) == [("x", 4.0)]


def test_repeated_indices_are_summed() -> None:
    idx, val = as_index_values(([3, 1, 3], [1.0, 2.0, 0.5]))
    assert idx.tolist() == [1, 3] and val.tolist() == [2.0, 1.5]


@pytest.mark.parametrize(
    ("vector", "fragment"),
    [
        ("text", "a sparse vector must be"),
        (([1, 2], [1.0]), "2 indices but 1 values"),
        ({-1: 1.0}, r"\[0, 2\*\*32\)"),
        ({1: float("nan")}, "finite"),
        ((["a"], [1.0]), "integers"),
    ],
)
def test_bad_vectors_name_the_position(vector: object, fragment: str) -> None:
    index = SparseIndex()
    with pytest.raises(InputError, match=fragment) as info:
        index.add(["ok", "bad"], [{1: 1.0}, vector])
    assert "vectors[1]" in str(info.value)
    assert len(index) == 0  # nothing half-added


def test_bad_ids_and_top_k() -> None:
    index = SparseIndex()
    with pytest.raises(InputError, match="same length"):
        index.add(["a"], [])
    with pytest.raises(InputError, match=r"ids\[0\]"):
        index.add([1], [{1: 1.0}])  # type: ignore[list-item]
    with pytest.raises(InputError, match="top_k"):
        index.search({1: 1.0}, top_k=-1)


def test_concurrent_writers_and_readers() -> None:
    index = SparseIndex()
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for i in range(start, start + 200):
                index.add([f"d{i}"], [{i % 7: 1.0, 1000 + i: 0.5}])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(200):
                index.search({3: 1.0}, top_k=5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (0, 200)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(index) == 400
    assert len(index.scores({3: 1.0})) == len([i for i in range(400) if i % 7 == 3])
