"""Embedding on Ray Data, for corpora past one machine (extra ``ray``).

* :func:`embed_dataset`: a Ray Dataset in, a Dataset of ``mm-embed embed``'s output
  rows out, embedded on a pool of actors that each hold one client.
* :class:`RayBudget`: the account's quota as a named, detached actor every worker and
  driver of the cluster draws from, so the cluster stays inside one account's quota.
* ``mm-embed embed --engine ray [--ray-address ADDRESS]``: a resumable corpus run
  into a Parquet directory (:mod:`mm_embed.ray.job`).

::

    import ray
    from mm_embed.ray import embed_dataset

    ds = ray.data.read_parquet("s3://bucket/corpus/")
    vectors = embed_dataset(ds, provider="viking", model="bge-m3", sparse=True,
                            rejects="/shared/run-1/rejects")
    vectors.write_parquet("s3://bucket/vectors/")

Credentials come from the driver's environment and reach the workers through Ray's
``runtime_env``. The "Scaling out" manual page has a cluster recipe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .budget import RayBudget
from .dataset import embed_dataset
from .runtime import root_error
from .worker import RejectedInput

__all__ = ["RayBudget", "RejectedInput", "embed_dataset", "read_rejects", "root_error"]


def read_rejects(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The refused items :func:`embed_dataset` wrote to ``directory`` (``id``, ``code``,
    ``message``, ``field``, ``location``...), ordered by id."""
    found: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob("rejects-*.jsonl")):
        found.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line)
    return sorted(found, key=lambda r: str(r.get("id")))
