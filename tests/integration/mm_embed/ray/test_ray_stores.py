"""Rows embedded on Ray go into the hybrid stores (Qdrant, Milvus) and are searched there
as if the store had embedded them itself."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import ray.data
from pymilvus import MilvusClient
from qdrant_client import QdrantClient

from mm_embed import VikingClient
from mm_embed.emulator import Emulator
from mm_embed.errors import InputError
from mm_embed.hybrid import HybridStore, MilvusHybrid, QdrantHybrid
from mm_embed.ray import RayBudget, embed_dataset
from mm_embed.ray.stores import upsert_rows
from tests.integration._helpers import RAY_MODEL as MODEL
from tests.integration._helpers import RayCluster

TEXTS = {
    "red": "a red circle on white paper",
    "green": "a green square in the garden",
    "blue": "a blue triangle over the river",
    "music": "music from a silver lantern in winter",
}


@pytest.fixture(scope="module")
def rows(ray_cluster: RayCluster) -> pa.Table:
    with pytest.MonkeyPatch.context() as env, Emulator() as emu:
        from tests.integration._helpers import emulator_settings

        for name, value in emulator_settings(emu).items():
            env.setenv(name, value)
        budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
        ds = ray.data.from_items([{"id": k, "text": v} for k, v in TEXTS.items()])
        out = embed_dataset(ds, provider="viking", model=MODEL, sparse=True, budget=budget)
        table = pa.concat_tables(list(out.iter_batches(batch_format="pyarrow")))
        budget.destroy()
    return table.sort_by("id")


@pytest.mark.parametrize("backend", ["qdrant", "milvus"])
def test_rows_are_searched_like_the_stores_own(
    backend: str, rows: pa.Table, emulator: Emulator, tmp_path: Path
) -> None:
    viking = VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url)
    client = (
        QdrantClient(":memory:") if backend == "qdrant" else MilvusClient(str(tmp_path / "m.db"))
    )
    kind: type[HybridStore] = QdrantHybrid if backend == "qdrant" else MilvusHybrid
    store = kind.from_viking(client, "corpus", viking, MODEL)
    texts = [TEXTS[i] for i in rows.column("id").to_pylist()]

    assert upsert_rows(store, rows, texts=texts, metadatas=[{"n": i} for i in range(4)]) == 4
    assert upsert_rows(store, rows, texts=texts) == 4  # again: replaced, not added
    assert store.count() == 4
    for mode in ("dense", "sparse", "hybrid"):
        hits = store.search("a blue triangle over the river", top_k=2, mode=mode)
        assert hits[0].id == "blue", (mode, hits)
        assert hits[0].text == TEXTS["blue"]
    with pytest.raises(InputError, match="one entry per row"):
        upsert_rows(store, rows, texts=texts[:2])
    viking.close()
