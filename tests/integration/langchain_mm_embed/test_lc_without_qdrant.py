"""Without the ``qdrant`` extra: the package imports, and VikingSparseEmbeddings returns
the shape of ``langchain_qdrant.SparseVector`` from a local stand-in (run in a
subprocess that hides langchain_qdrant)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

SCRIPT = r"""
import importlib.abc, json, sys

class HideQdrant(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("langchain_qdrant", "qdrant_client"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideQdrant())

import langchain_mm_embed
lazy = "langchain_mm_embed.sparse" not in sys.modules
from langchain_mm_embed import VikingEmbeddings, VikingSparseEmbeddings

dense = VikingEmbeddings(model="bge-m3")
sparse = VikingSparseEmbeddings.from_dense(dense)
vectors = sparse.embed_documents(["sparse without qdrant", "second text"])
dense.embed_documents(["sparse without qdrant", "second text"])
print(json.dumps({
    "lazy": lazy,
    "qdrant_loaded": any(m.split(".")[0] in ("langchain_qdrant", "qdrant_client") for m in sys.modules),
    "vector_type": f"{type(vectors[0]).__module__}.{type(vectors[0]).__name__}",
    "fields": sorted(type(vectors[0]).model_fields),
    "indices": vectors[0].indices,
    "values": vectors[0].values,
    "bases": [c.__name__ for c in VikingSparseEmbeddings.__mro__],
}))
"""


def test_sparse_embeddings_work_without_langchain_qdrant(emulator: Emulator) -> None:
    env = {
        **os.environ,
        "VIKING_BASE_URL": emulator.url,
        "VOLC_ACCESSKEY": emulator.access_key,
        "VOLC_SECRETKEY": emulator.secret_key,
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["lazy"] is True
    assert report["qdrant_loaded"] is False
    assert report["vector_type"] == "langchain_mm_embed._sparse_types.SparseVector"
    assert report["fields"] == ["indices", "values"]  # langchain_qdrant.SparseVector's
    assert len(report["indices"]) == len(report["values"]) == 3
    assert report["indices"] == sorted(report["indices"])
    assert "SparseEmbeddings" in report["bases"]
    # Paired: one request for both vectors of the two texts.
    assert emulator.counters.get("route:viking") == 1


def test_importing_the_package_does_not_load_qdrant() -> None:
    code = (
        "import sys, langchain_mm_embed; "
        "print(any(m.split('.')[0] in ('langchain_qdrant', 'qdrant_client') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
