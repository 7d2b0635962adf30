"""fuse(): hand-computed cases for every method, the documented edge cases, properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm_embed.errors import InputError
from mm_embed.hybrid import FUSION_METHODS, fuse, ranked

DENSE = {"a": 0.9, "b": 0.8, "c": 0.5}
SPARSE = {"c": 12.0, "d": 7.0, "a": 1.0}


def approx(pairs: list[tuple[str, float]]) -> list[tuple[str, object]]:
    return [(doc_id, pytest.approx(score, rel=1e-12, abs=1e-15)) for doc_id, score in pairs]


# ---------------------------------------------------------------- hand-computed


def test_rrf_by_hand() -> None:
    # ranks: dense a1 b2 c3; sparse c1 d2 a3; k = 60
    expected = [
        ("a", 1 / 61 + 1 / 63),
        ("c", 1 / 63 + 1 / 61),
        ("b", 1 / 62),
        ("d", 1 / 62),
    ]
    out = fuse([DENSE, SPARSE])
    # a and c tie exactly, b and d tie exactly: doc_id ascending breaks both ties.
    assert out == approx(expected)
    assert [d for d, _ in out] == ["a", "c", "b", "d"]


def test_weighted_rrf_by_hand() -> None:
    out = fuse([DENSE, SPARSE], k=10, weights=[0.3, 0.7])
    expected = {
        "a": 0.3 / 11 + 0.7 / 13,
        "b": 0.3 / 12,
        "c": 0.3 / 13 + 0.7 / 11,
        "d": 0.7 / 12,
    }
    assert dict(out) == pytest.approx(expected, rel=1e-12)
    assert [d for d, _ in out] == ["c", "a", "d", "b"]  # .0867, .0811, .0583, .025


def test_relative_score_by_hand() -> None:
    # dense: min .5 max .9 -> a 1, b .75, c 0; sparse: min 1 max 12 -> c 1, d 6/11, a 0
    out = fuse([DENSE, SPARSE], method="relative_score")
    assert dict(out) == pytest.approx({"a": 1.0, "b": 0.75, "c": 1.0, "d": 6 / 11}, rel=1e-12)
    assert [d for d, _ in out] == ["a", "c", "b", "d"]
    weighted = fuse([DENSE, SPARSE], method="relative_score", weights=[2, 1])
    assert dict(weighted) == pytest.approx({"a": 2.0, "b": 1.5, "c": 1.0, "d": 6 / 11}, rel=1e-12)


def test_dbsf_by_hand() -> None:
    # dense: mean 2.2/3, sample std sqrt(((.9-m)^2 + (.8-m)^2 + (.5-m)^2) / 2)
    m = 2.2 / 3
    s = math.sqrt(((0.9 - m) ** 2 + (0.8 - m) ** 2 + (0.5 - m) ** 2) / 2)
    dense = {d: (v - (m - 3 * s)) / (6 * s) for d, v in DENSE.items()}
    m2 = 20 / 3
    s2 = math.sqrt(((12 - m2) ** 2 + (7 - m2) ** 2 + (1 - m2) ** 2) / 2)
    sparse = {d: (v - (m2 - 3 * s2)) / (6 * s2) for d, v in SPARSE.items()}
    out = dict(fuse([DENSE, SPARSE], method="dbsf", weights=[1.0, 0.5]))
    expected = {d: dense.get(d, 0.0) + 0.5 * sparse.get(d, 0.0) for d in "abcd"}
    assert out == pytest.approx(expected, rel=1e-12)


def test_dbsf_clips_outliers() -> None:
    # Twelve equal scores and one far outlier: the outlier is more than 3 sample standard
    # deviations above the mean, so it is clipped to 1 (and the rest sit above 0).
    scores = {f"d{i:02d}": 1.0 for i in range(12)}
    scores["top"] = 100.0
    out = dict(fuse([scores], method="dbsf"))
    assert out["top"] == 1.0
    n = 13
    mean = (12 + 100) / n
    std = math.sqrt((12 * (1 - mean) ** 2 + (100 - mean) ** 2) / (n - 1))
    assert (100 - (mean - 3 * std)) / (6 * std) > 1  # it really was clipped
    assert out["d00"] == pytest.approx((1 - (mean - 3 * std)) / (6 * std))


def test_dbsf_degenerate_lists_give_one_half() -> None:
    assert fuse([{"x": 3.0}], method="dbsf") == [("x", 0.5)]
    assert fuse([{"x": 2.0, "y": 2.0}], method="dbsf") == [("x", 0.5), ("y", 0.5)]


def test_relative_score_equal_scores_give_one() -> None:
    assert fuse([{"x": 2.0, "y": 2.0}], method="relative_score") == [("x", 1.0), ("y", 1.0)]


# ---------------------------------------------------------------- edge cases


@pytest.mark.parametrize("method", FUSION_METHODS)
def test_empty_inputs(method: str) -> None:
    assert fuse([], method=method) == []  # type: ignore[arg-type]
    assert fuse([{}, {}], method=method) == []  # type: ignore[arg-type]
    assert fuse([{}, {"a": 1.0}], method=method)[0][0] == "a"  # type: ignore[arg-type]


def test_one_list_keeps_its_order() -> None:
    scores = {"x": 0.1, "y": 0.7, "z": 0.4}
    for method in FUSION_METHODS:
        assert [d for d, _ in fuse([scores], method=method)] == ["y", "z", "x"]  # type: ignore[arg-type]


def test_nan_scores_are_dropped() -> None:
    out = fuse([{"a": float("nan"), "b": 1.0}, {"a": 0.5}])
    assert out == approx([("a", 1 / 61), ("b", 1 / 61)])
    # b is rank 1 of list 0 because the NaN entry is not ranked at all.
    assert fuse([{"a": float("nan")}]) == []
    assert fuse([{"a": float("nan"), "b": 1.0, "c": 0.0}], method="relative_score") == [
        ("b", 1.0),
        ("c", 0.0),
    ]


def test_infinite_scores() -> None:
    scores = {"best": math.inf, "mid": 2.0, "low": 1.0, "worst": -math.inf}
    assert dict(fuse([scores], method="relative_score")) == {
        "best": 1.0,
        "mid": 1.0,
        "low": 0.0,
        "worst": 0.0,
    }
    assert [d for d, _ in fuse([scores])] == ["best", "mid", "low", "worst"]
    assert dict(fuse([scores], method="dbsf"))["best"] == 1.0


def test_duplicate_ids_in_pairs_count_once_at_best_score() -> None:
    # e.g. two boxes of one image in one ranking
    pairs = [("img1", 0.2), ("img2", 0.5), ("img1", 0.9)]
    assert ranked(pairs) == [("img1", 0.9), ("img2", 0.5)]
    assert fuse([pairs]) == approx([("img1", 1 / 61), ("img2", 1 / 62)])


def test_within_list_ties_rank_by_id() -> None:
    out = fuse([{"b": 1.0, "a": 1.0, "c": 2.0}], k=0)
    assert out == approx([("c", 1.0), ("a", 0.5), ("b", 1 / 3)])


def test_zero_weight_list_is_ignored() -> None:
    out = fuse([{"a": 1.0}, {"b": 1.0, "a": 0.5}], weights=[1, 0])
    assert out == approx([("a", 1 / 61)])


def test_top_k() -> None:
    assert [d for d, _ in fuse([DENSE, SPARSE], top_k=2)] == ["a", "c"]
    assert fuse([DENSE, SPARSE], top_k=0) == []
    assert len(fuse([DENSE, SPARSE], top_k=99)) == 4


def test_accepts_pairs_and_generators() -> None:
    gen = ((d, s) for d, s in DENSE.items())
    assert fuse([gen, list(SPARSE.items())]) == fuse([DENSE, SPARSE])


def test_deterministic_under_input_dict_order() -> None:
    a = fuse([DENSE, SPARSE], method="dbsf")
    b = fuse([dict(reversed(DENSE.items())), dict(reversed(SPARSE.items()))], method="dbsf")
    assert a == b


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"method": "borda"}, "method"),
        ({"k": -1}, "k"),
        ({"k": math.nan}, "k"),
        ({"k": True}, "k"),
        ({"weights": [1.0]}, "weights"),
        ({"weights": [1.0, -1.0]}, "weights[1]"),
        ({"weights": [1.0, math.inf]}, "weights[1]"),
        ({"weights": "ab"}, "weights"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        fuse([DENSE, SPARSE], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("results", "fragment"),
    [
        ({"a": 1.0}, "sequence of ranked lists"),
        ([{1: 0.5}], r"results\[0\]: doc ids must be str"),
        ([{"a": 1.0}, {"b": "high"}], r"results\[1\]: scores must be real numbers"),
        ([{"a": 1.0}, [("b",)]], r"results\[1\]: entry 0 is not a \(doc_id, score\) pair"),
        ([{"a": 1.0}, "ab"], r"results\[1\]"),
        ([{"a": True}], "scores must be real numbers"),
    ],
)
def test_bad_results(results: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        fuse(results)  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

ids = st.sampled_from([f"d{i}" for i in range(12)])
scores = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
lists = st.lists(st.dictionaries(ids, scores, max_size=12), min_size=0, max_size=4)


@settings(max_examples=150, deadline=None)
@given(results=lists, method=st.sampled_from(FUSION_METHODS))
def test_properties(results: list[dict[str, float]], method: str) -> None:
    out = fuse(results, method=method)  # type: ignore[arg-type]
    # every document of every list, once
    assert {d for d, _ in out} == {d for r in results for d in r}
    assert len(out) == len({d for d, _ in out})
    # sorted by score desc, then id asc
    assert out == sorted(out, key=lambda item: (-item[1], item[0]))
    # bounded: each list contributes at most 1/(k+1) (rrf) or 1 (score methods)
    cap = len(results) * (1 / 61 if method == "rrf" else 1.0)
    assert all(0.0 <= s <= cap + 1e-12 for _, s in out)


@settings(max_examples=100, deadline=None)
@given(results=lists, method=st.sampled_from(FUSION_METHODS), c=st.floats(0.25, 4.0))
def test_scaling_all_weights_scales_scores(
    results: list[dict[str, float]], method: str, c: float
) -> None:
    base = dict(fuse(results, method=method))  # type: ignore[arg-type]
    scaled = dict(fuse(results, method=method, weights=[c] * len(results)))  # type: ignore[arg-type]
    assert scaled.keys() == base.keys()
    for doc_id, score in base.items():
        assert scaled[doc_id] == pytest.approx(c * score, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------- qdrant-client's fusion


@settings(max_examples=60, deadline=None)
@given(
    results=st.lists(
        st.dictionaries(ids, st.floats(-100, 100, allow_nan=False), min_size=1, max_size=10),
        min_size=1,
        max_size=3,
    )
)
def test_matches_qdrant_client_dbsf_and_rrf(results: list[dict[str, float]]) -> None:
    """qdrant-client's own (local-mode) DBSF and RRF as independent references.

    Lists of at most 10 scores never reach mean +/- 3 sample std, so fuse()'s clipping
    never applies. Qdrant ranks by list position, so it gets each list in our order
    (which only matters for RRF when scores repeat); Qdrant's k is ours + 1."""
    from qdrant_client.http import models
    from qdrant_client.hybrid.fusion import (
        distribution_based_score_fusion,
        reciprocal_rank_fusion,
    )

    names = sorted({d for r in results for d in r})
    number = {d: n for n, d in enumerate(names)}

    def points() -> list[list[models.ScoredPoint]]:
        return [
            [models.ScoredPoint(id=number[d], version=0, score=s) for d, s in ranked(r)]
            for r in results
        ]

    theirs = distribution_based_score_fusion(points(), limit=100)
    ours = dict(fuse(results, method="dbsf"))
    assert {names[int(p.id)]: p.score for p in theirs} == pytest.approx(ours, rel=1e-9, abs=1e-12)

    theirs_rrf = reciprocal_rank_fusion(points(), limit=100, ranking_constant_k=61)
    ours_rrf = dict(fuse(results, k=60))
    assert {names[int(p.id)]: p.score for p in theirs_rrf} == pytest.approx(ours_rrf, rel=1e-12)
