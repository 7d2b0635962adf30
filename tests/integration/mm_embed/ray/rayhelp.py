"""Helpers of the Ray tests: corpora, a one-process reference, the emulator's view of a
run, and the actors of a running Ray Data pipeline."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import ray

from mm_embed import VikingClient
from mm_embed.budgets import Budget, Quota
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator
from mm_embed.emulator.state import item_hash
from mm_embed.emulator.tokens import count_tokens

MODEL = "bge-m3"
QUOTA_CODE = 1000029


@dataclass(frozen=True)
class RayCluster:
    """The session's local Ray instance."""

    address: str
    namespace: str

    def budget_name(self) -> str:
        return f"budget-{uuid.uuid4().hex[:8]}"


def emulator_settings(emu: Emulator) -> dict[str, str]:
    """The environment that points the Viking client at ``emu``."""
    return {
        f"{EnvVar.VIKING_BASE_URL}": emu.url,
        f"{EnvVar.VOLC_ACCESSKEY}": emu.access_key,
        f"{EnvVar.VOLC_SECRETKEY}": emu.secret_key,
        f"{EnvVar.FGCLIP_BASE_URL}": emu.url,
        f"{EnvVar.FGCLIP_API_KEY}": emu.api_key,
    }


def uniform_texts(n: int) -> list[str]:
    """``n`` distinct texts of one length and two emulator tokens each.

    One length gives every item the same token estimate, so each item's share of its
    request's billed tokens (``tokens``) is exactly its own count however items are
    grouped into requests: outputs of engines that group differently compare equal."""
    return [f"w{i:05d} river" for i in range(n)]


def records(texts: list[str]) -> list[dict[str, str]]:
    return [{"id": f"doc-{i:05d}", "text": t} for i, t in enumerate(texts)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def text_hash(text: str) -> str:
    """The emulator's hash of one Viking text item."""
    return item_hash(orjson.dumps({"data_type": "text", "text": text}, option=orjson.OPT_SORT_KEYS))


@dataclass
class Reference:
    """Vectors from one ``VikingClient`` in this process, in input order."""

    dense: np.ndarray
    sparse_indices: list[np.ndarray]
    sparse_values: list[np.ndarray]


def reference(texts: list[str]) -> Reference:
    with (
        Emulator() as emu,
        VikingClient(
            emu.access_key, emu.secret_key, base_url=emu.url, tokens_per_minute=None
        ) as client,
    ):
        result = client.embed(texts, model=MODEL, return_sparse=True)
    assert result.sparse is not None
    return Reference(
        np.asarray(result.embeddings, np.float32),
        [np.asarray(v.indices, np.int32) for v in result.sparse],
        [np.asarray(v.values, np.float32) for v in result.sparse],
    )


def assert_matches(table: pa.Table, ref: Reference, ids: list[str]) -> None:
    """``table`` (any row order) holds exactly ``ids`` once each, with the reference's
    vectors bit for bit."""
    table = table.sort_by("id")
    assert table.column("id").to_pylist() == sorted(ids)
    order = np.argsort(np.asarray(ids))
    dense = table.column("dense").combine_chunks()
    got = dense.values.to_numpy().reshape(len(table), -1)
    assert got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), ref.dense[order].view(np.uint32))
    for name, expected in (
        ("sparse_indices", ref.sparse_indices),
        ("sparse_values", ref.sparse_values),
    ):
        column = table.column(name).combine_chunks()
        offsets = column.offsets.to_numpy()
        values = column.values.to_numpy()
        for row, k in enumerate(order):
            assert np.array_equal(values[offsets[row] : offsets[row + 1]], expected[k]), name


def spend_the_first_minute(emu: Emulator, budget: Budget, client: VikingClient) -> Quota:
    """Empty both buckets (the emulator's and the budget's): what follows is paced."""
    quota = client.tokens_quota(MODEL)
    assert quota is not None
    with VikingClient(
        emu.access_key, emu.secret_key, base_url=emu.url, tokens_per_minute=None
    ) as spender:
        spender.embed([" ".join(f"w{i}" for i in range(int(quota.capacity)))], model=MODEL)
    budget.adjust(client.account, quota, quota.capacity)
    return quota


@contextmanager
def budget_held_empty(
    budget: Budget, account: str, quota: Quota, limit_s: float = 120.0
) -> Iterator[None]:
    """Keep ``budget`` empty until its first ticket is taken: the minutes Ray spends
    starting actors do not pile up a burst in the budget (the emulator's bucket, which
    is not held, only ever holds more)."""
    stop = threading.Event()

    def hold() -> None:
        deadline = time.monotonic() + limit_s
        while not stop.wait(0.05) and time.monotonic() < deadline:
            state = budget.state(account, quota)
            if state.reserved > 0:
                return
            if state.balance > 0:
                budget.adjust(account, quota, state.balance)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@dataclass
class Pace:
    rate: float
    seconds: float
    refusals_after_warmup: int
    refusals: int


def pace(log: list[Any], weights: dict[str, int], started: float, warmup: float) -> Pace:
    """Billed tokens per second over the replies sent ``warmup`` seconds after the first
    reply of the run, and the quota refusals after that point."""
    embeds = sorted(
        (r for r in log if r.route == "viking" and r.time >= started and r.item_hashes),
        key=lambda r: r.time,
    )
    answered = [r for r in embeds if r.embedded]
    boundary = answered[0].time + warmup
    window = [r for r in answered if r.time >= boundary]
    seconds = window[-1].time - window[0].time if len(window) > 1 else 0.0
    tokens = sum(weights[h] for r in window[1:] for h in r.item_hashes)
    refused = [r for r in embeds if r.code == QUOTA_CODE]
    return Pace(
        rate=tokens / seconds if seconds else 0.0,
        seconds=seconds,
        refusals_after_warmup=sum(1 for r in refused if r.time >= boundary),
        refusals=len(refused),
    )


def token_weights(texts: list[str]) -> dict[str, int]:
    return {text_hash(t): count_tokens(t) for t in texts}


def alive_actors(class_part: str) -> list[dict[str, Any]]:
    """The live actors whose class name contains ``class_part`` (Ray's GCS table: the
    state API needs the dashboard, which the tests do not start)."""
    table = ray._private.state.actors()
    return [
        a for a in table.values() if class_part in a["ActorClassName"] and a["State"] == "ALIVE"
    ]


def actor_handle(actor_id: str) -> Any:
    """A handle to an actor of someone else's (a Ray Data pool's), by id."""
    from ray._raylet import ActorID

    worker = ray._private.worker.global_worker
    return worker.core_worker.get_actor_handle(ActorID.from_hex(actor_id))


def wait_until(condition: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
