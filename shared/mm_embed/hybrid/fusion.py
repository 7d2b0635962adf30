"""Result fusion: merge the ranked lists of several retrievers into one ranking.

:func:`fuse` is the one entry point; every framework retriever and store helper in this
package calls it, so the rules below hold everywhere.

Conventions (the contract, tested):

* Input: one ranked list per retriever, each a ``{doc_id: score}`` mapping or an iterable
  of ``(doc_id, score)`` pairs; a higher score is better. Ids are ``str``.
* A ``NaN`` score carries no order, so that entry is dropped (as if the retriever had not
  returned the document). ``+inf`` / ``-inf`` are the best / worst possible scores.
* A document listed twice in one list (pairs form, e.g. two boxes of one image) counts
  once, at its best score.
* Ranks start at 1. Equal scores inside one list are ranked by ``doc_id`` ascending
  (code-point order), so ranks never depend on dict or hash order.
* A list whose weight is 0 is ignored entirely (its documents are not added).
* The output is sorted by fused score, descending; equal fused scores are ordered by
  ``doc_id`` ascending. Same input, same output, on every run and platform.

Methods (``w_i`` is the weight of list ``i``, default 1; a document missing from a list
gets nothing from it):

* ``"rrf"``: ``sum_i w_i / (k + rank_i)``, reciprocal rank fusion (Cormack et al., 2009).
* ``"relative_score"``: ``sum_i w_i * (s - min_i) / (max_i - min_i)``; a list whose
  scores are all equal gives each of its documents 1.
* ``"dbsf"``: distribution-based score fusion, ``sum_i w_i * clip((s - lo_i) / (hi_i -
  lo_i), 0, 1)`` with ``lo_i, hi_i = mean_i -/+ 3 * std_i`` (sample standard deviation,
  ``n - 1``, as Qdrant uses); a list of one document, or of equal scores, gives 0.5.

For the score-based methods, ``min`` / ``max`` / ``mean`` / ``std`` are taken over a
list's finite scores; ``+inf`` normalises to 1 and ``-inf`` to 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from typing import Literal, TypeAlias, get_args

from ..errors import InputError

__all__ = ["FUSION_METHODS", "FusionMethod", "RankedList", "fuse", "ranked"]

FusionMethod: TypeAlias = Literal["rrf", "relative_score", "dbsf"]
FUSION_METHODS: tuple[FusionMethod, ...] = get_args(FusionMethod)

#: One retriever's output: ``{doc_id: score}`` or ``[(doc_id, score), ...]``.
RankedList: TypeAlias = Mapping[str, float] | Iterable[tuple[str, float]]


def fuse(
    results: Sequence[RankedList],
    *,
    method: FusionMethod = "rrf",
    k: float = 60,
    weights: Sequence[float] | None = None,
    top_k: int | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked lists into one ``[(doc_id, fused_score), ...]`` ranking, best first.

    Args:
        results: one ranked list per retriever (see the module docstring).
        method: ``"rrf"``, ``"relative_score"`` or ``"dbsf"``.
        k: the RRF rank constant (used by ``"rrf"`` only), a finite number >= 0.
        weights: one non-negative finite weight per list (default: all 1); they apply to
            every method.
        top_k: keep only the best ``top_k`` (``None``: keep all).

    Raises:
        InputError: an unknown method, a bad ``k`` / ``weights`` / ``top_k``, a non-str
            id or a non-numeric score (the message names the list and position).
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise InputError(
            "results must be a sequence of ranked lists, one per retriever", field="results"
        )
    if method not in FUSION_METHODS:
        raise InputError(
            f"unknown fusion method {method!r}", field="method", limit=", ".join(FUSION_METHODS)
        )
    if not _is_number(k) or not math.isfinite(k) or k < 0:
        raise InputError(f"k must be a finite number >= 0, got {k!r}", field="k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise InputError(f"top_k must be None or an int >= 0, got {top_k!r}", field="top_k")
    lists = [ranked(r, index=i) for i, r in enumerate(results)]
    w = _check_weights(weights, len(lists))

    totals: dict[str, float] = {}
    for items, weight in zip(lists, w, strict=True):
        if weight == 0:
            continue
        for doc_id, contribution in _contributions(items, method, float(k)):
            totals[doc_id] = totals.get(doc_id, 0.0) + weight * contribution
    fused = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return fused if top_k is None else fused[:top_k]


def ranked(result: RankedList, *, index: int = 0) -> list[tuple[str, float]]:
    """One list cleaned and ranked: NaN dropped, duplicates merged at their best score,
    sorted by score descending then ``doc_id`` ascending. ``index`` names the list in
    error messages."""
    pairs: Iterable[tuple[str, float]]
    pairs = result.items() if isinstance(result, Mapping) else result
    if isinstance(pairs, (str, bytes)):
        raise InputError(
            "a ranked list must be a {doc_id: score} mapping or (doc_id, score) pairs",
            field="results",
            index=index,
        )
    best: dict[str, float] = {}
    for position, pair in enumerate(pairs):
        try:
            doc_id, score = pair
        except (TypeError, ValueError):
            raise InputError(
                f"entry {position} is not a (doc_id, score) pair",
                field="results",
                index=index,
            ) from None
        if not isinstance(doc_id, str):
            raise InputError(
                f"doc ids must be str, entry {position} has {type(doc_id).__name__}",
                field="results",
                index=index,
            )
        if not _is_number(score):
            raise InputError(
                f"scores must be real numbers, entry {position} ({doc_id!r}) has {score!r}",
                field="results",
                index=index,
            )
        value = float(score)
        if math.isnan(value):
            continue
        if doc_id not in best or value > best[doc_id]:
            best[doc_id] = value
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))


def _is_number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise InputError("weights must be a sequence of numbers", field="weights")
    if len(weights) != n:
        raise InputError(
            f"weights has {len(weights)} entries for {n} ranked lists",
            field="weights",
            limit=f"{n} entries",
        )
    out: list[float] = []
    for i, weight in enumerate(weights):
        if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
            raise InputError(
                f"weights must be finite numbers >= 0, got {weight!r}", field="weights", index=i
            )
        out.append(float(weight))
    return out


def _contributions(
    items: list[tuple[str, float]], method: str, k: float
) -> Iterable[tuple[str, float]]:
    if method == "rrf":
        return ((doc_id, 1.0 / (k + rank)) for rank, (doc_id, _) in enumerate(items, start=1))
    finite = [s for _, s in items if math.isfinite(s)]
    if method == "relative_score":
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 0.0)
        return ((doc_id, _minmax(s, lo, hi)) for doc_id, s in items)
    mean, std = _mean_std(finite)
    return ((doc_id, _dbsf(s, mean, std)) for doc_id, s in items)


def _minmax(score: float, lo: float, hi: float) -> float:
    if math.isinf(score):
        return 1.0 if score > 0 else 0.0
    return 1.0 if hi == lo else (score - lo) / (hi - lo)


def _mean_std(finite: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation; std 0 when there are fewer than two scores."""
    n = len(finite)
    if n < 2:
        return (finite[0] if finite else 0.0), 0.0
    mean = math.fsum(finite) / n
    return mean, math.sqrt(math.fsum((s - mean) ** 2 for s in finite) / (n - 1))


def _dbsf(score: float, mean: float, std: float) -> float:
    if math.isinf(score):
        return 1.0 if score > 0 else 0.0
    if std == 0:
        return 0.5
    return min(1.0, max(0.0, (score - (mean - 3 * std)) / (6 * std)))
