"""fuse() against the ``ranx`` library (acceptance 1).

All ranx checks live in this one module: ranx JIT-compiles its fusion functions with
numba on first use (about 20 s on 2 cores), so a module-scoped fixture imports it and
pays that once. Marked ``ranx`` (``-m "not ranx"`` skips them in a quick loop).

What is independent of our code:

* RRF: ranx ranks each run itself (``Run.sort``) and computes ``1 / (k + rank)`` and the
  sum; we only build its input dicts.
* Weighted RRF: ranx has none. Two references: (1) ranx's own single-run RRF scores,
  combined by ranx's ``wsum`` with the weights (ranx still ranks, scores and sums); (2) a
  direct transcription of ``sum w_i / (k + rank_i)`` written here with ``sorted``.
  Both share only the formula with ``fuse``.
* Relative score: ranx ``fuse(norm="min-max", method="wsum")``, the same definition.

(nDCG is not compared with ranx here: its ``evaluate`` costs another ~45 s of JIT on a
cold cache; ``test_samples_eval.py`` checks it by hand.)

Scores are drawn distinct so that no reference's tie-breaking matters.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from mm_embed.hybrid import fuse

pytestmark = pytest.mark.ranx

Runs = list[dict[str, dict[str, float]]]


@pytest.fixture(scope="module")
def ranx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("ranx-home")
    with pytest.MonkeyPatch.context() as mp:
        # ranx (through ir_datasets) and numba write under $HOME; keep that in tmp.
        mp.setenv("HOME", str(home))
        mp.setenv("IR_DATASETS_HOME", str(home / "ir_datasets"))
        import ranx as module

        # Pay the JIT once, here.
        warm = [module.Run({"q": {"a": 1.0, "b": 0.5}}), module.Run({"q": {"b": 1.0}})]
        for run in warm:
            run.sort()
        module.fuse(warm, norm=None, method="rrf", params={"k": 60})
        module.fuse(warm, norm="min-max", method="wsum", params={"weights": [0.5, 0.5]})
        yield module


def random_runs(seed: int, n_runs: int, n_queries: int = 30) -> Runs:
    rng = np.random.default_rng(seed)
    runs: Runs = [{} for _ in range(n_runs)]
    pool = [f"doc{i:02d}" for i in range(25)]
    for q in range(n_queries):
        for run in runs:
            size = int(rng.integers(1, 16))
            docs = rng.choice(pool, size=size, replace=False)
            scores = rng.permutation(size) + rng.random(size) * 0.5  # distinct
            run[f"q{q:02d}"] = {str(d): float(s) for d, s in zip(docs, scores, strict=True)}
    return runs


def to_ranx(module: Any, runs: Runs) -> list[Any]:
    out = []
    for run in runs:
        r = module.Run(run)
        r.sort()  # ranx's fuse assumes sorted runs
        out.append(r)
    return out


def assert_same(ours: list[tuple[str, float]], theirs: dict[str, float]) -> None:
    assert dict(ours) == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    # Our order is the reference's: its scores never increase along our ranking (sums
    # that tie mathematically may differ in the last bit between implementations).
    ref = [theirs[d] for d, _ in ours]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(ref))


def reference_weighted_rrf(
    lists: list[dict[str, float]], weights: list[float], k: float
) -> dict[str, float]:
    """``sum_i w_i / (k + rank_i)``, transcribed from the formula."""
    total: dict[str, float] = {}
    for scores, weight in zip(lists, weights, strict=True):
        order = sorted(scores, key=lambda d: scores[d], reverse=True)
        for position, doc_id in enumerate(order):
            total[doc_id] = total.get(doc_id, 0.0) + weight / (k + position + 1)
    return total


@pytest.mark.parametrize(("seed", "n_runs", "k"), [(1, 2, 60), (2, 3, 60), (3, 4, 1), (4, 2, 10)])
def test_rrf_matches_ranx(ranx: Any, seed: int, n_runs: int, k: int) -> None:
    runs = random_runs(seed, n_runs)
    fused = ranx.fuse(to_ranx(ranx, runs), norm=None, method="rrf", params={"k": k}).to_dict()
    for q in runs[0]:
        assert_same(fuse([run[q] for run in runs], k=k), fused[q])


@pytest.mark.parametrize(
    ("seed", "weights", "k"),
    [(5, [0.3, 0.7], 60), (6, [1.0, 2.0, 0.5], 60), (7, [0.9, 0.1], 5), (8, [2.0, 0.0], 60)],
)
def test_weighted_rrf_matches_references(
    ranx: Any, seed: int, weights: list[float], k: int
) -> None:
    from ranx.fusion.rrf import rrf
    from ranx.fusion.wsum import wsum

    runs = random_runs(seed, len(weights))
    per_run_rrf = [rrf([r], k=k) for r in to_ranx(ranx, runs)]
    combined = wsum(per_run_rrf, weights=weights).to_dict()
    for q in runs[0]:
        ours = fuse([run[q] for run in runs], k=k, weights=weights)
        direct = reference_weighted_rrf([run[q] for run in runs], weights, k)
        if 0.0 in weights:
            # fuse() drops lists of weight 0; ranx keeps their documents at score 0.
            kept = [i for i, w in enumerate(weights) if w > 0]
            present = {d for i in kept for d in runs[i][q]}
            direct = {d: s for d, s in direct.items() if d in present}
            combined_q = {d: s for d, s in combined[q].items() if d in present}
        else:
            combined_q = combined[q]
        assert_same(ours, direct)
        assert_same(ours, combined_q)


@pytest.mark.parametrize(
    ("seed", "weights"), [(9, [0.5, 0.5]), (10, [0.2, 0.8]), (11, [1.0, 1.0, 3.0])]
)
def test_relative_score_matches_ranx_minmax_wsum(
    ranx: Any, seed: int, weights: list[float]
) -> None:
    runs = random_runs(seed, len(weights))
    # min-max needs two distinct scores per list to be defined the same way everywhere
    for run in runs:
        for q, scores in run.items():
            if len(scores) == 1:
                run[q] = {**scores, "pad": min(scores.values()) - 1.0}
    fused = ranx.fuse(
        to_ranx(ranx, runs), norm="min-max", method="wsum", params={"weights": weights}
    ).to_dict()
    for q in runs[0]:
        assert_same(
            fuse([run[q] for run in runs], method="relative_score", weights=weights), fused[q]
        )
