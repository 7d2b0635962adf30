"""The actor that embeds: one client per actor, one Ray Data batch per call.

Each batch runs the bulk engine's batch step (:meth:`~mm_embed.bulk.BulkEmbedder.work`),
so the failure policy is the local engine's: retryable failures are retried inside the
actor (the client's retries, then re-send rounds), a refused call is split until the
refused item is alone, and every item ends embedded or rejected; a provider that stays
down or refuses the credentials stops the run (:class:`~mm_embed.bulk.BulkAborted`).

A batch's rows are the local engine's rows (:func:`mm_embed.bulk.tables.batch_table`).
Its refused items go to a rejects output: a JSONL file per batch in the ``rejects``
directory (:func:`~mm_embed.ray.embed_dataset`), or the batch's manifest next to its
part file (``mm-embed embed --engine ray``). File names derive from the batch's
records, so a batch Ray runs again after its actor died rewrites the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ..bulk import BadRecord, BulkEmbedder, BulkItem, EngineOptions, InputChanged, Reject
from ..errors import MMEmbedError
from ._internals import (
    BatchResult,
    InputBatch,
    OutputShape,
    batch_table,
    coerce_record,
    encode_prints,
    id_hash,
    make_client,
    public_table,
    record_print,
)
from .parts import BatchRecord, DoneSet, write_atomic, write_part
from .runtime import require_ray

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Columns", "EmbedBatches", "RejectedInput", "WorkerSpec"]

#: Stands in for image bytes while a record is checked (a data URI is never a path).
_BYTES_IMAGE = "data:,"


class RejectedInput(MMEmbedError):
    """An item was refused for good and no rejects output was given to keep it in."""


@dataclass(frozen=True)
class Columns:
    """The dataset columns of the id, text, image (a path, URL or data URI string, or
    bytes) and boxes (``[[x, y, w, h], ...]``); ``None`` when absent. ``path`` names the
    column holding each row's input file (for reject locations)."""

    id: str = "id"
    text: str | None = "text"
    image: str | None = None
    boxes: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class WorkerSpec:
    """What every actor needs; picklable, and holds no secret (the client reads its
    credentials from the environment the actor's ``runtime_env`` sets).

    ``client`` are the client's keyword arguments, ``rejects`` the directory for refused
    items (:func:`embed_dataset`), ``output`` the run directory (``mm-embed embed``: the
    actor then writes parts and manifests and returns one counters row per batch),
    ``done`` an object ref to the :class:`DoneSet` of a resumed run.
    """

    provider: str
    client: Mapping[str, Any]
    options: EngineOptions
    columns: Columns = field(default_factory=Columns)
    image_root: str | None = None
    rejects: str | None = None
    output: str | None = None
    done: Any = None


@dataclass
class _Read:
    """A Ray batch as read: the items to send, the keys and fingerprints of the rows
    kept, and how many rows an earlier run finished."""

    batch: InputBatch
    keys: list[int] = field(default_factory=list)
    prints: list[int] = field(default_factory=list)
    skipped: int = 0

    @property
    def key(self) -> str:
        data = np.asarray(self.prints, np.uint64).tobytes()
        return hashlib.blake2b(data, digest_size=16, person=b"mm-embed-batch").hexdigest()


class EmbedBatches:
    """The callable class ``map_batches`` runs on each actor of the pool."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.client = make_client(spec.provider, dict(spec.client))
        self.engine = BulkEmbedder(self.client, spec.options)
        self.shape = OutputShape(self.engine.provider)
        done = spec.done
        if done is not None and not isinstance(done, DoneSet):
            done = require_ray().get(done)
        self.done: DoneSet = done if done is not None else DoneSet.empty()
        self._stop = threading.Event()  # never set: Ray cancels a batch by killing it

    def __call__(self, table: pa.Table) -> pa.Table:
        read = self._read(table.to_pylist())
        counters = self._counters()
        result = (
            self.engine.work(read.batch, self._stop, None) if read.batch.size else BatchResult(0, 0)
        )
        schema = self.shape.schema()
        rows = public_table(batch_table(result, schema), schema)
        rejects = [_reject_dict(r) for r in result.rejects]
        if self.spec.output is None:
            self._keep_rejects(read.key, rejects)
            return rows
        return self._commit(read, result, rows, rejects, counters)

    # ------------------------------------------------------------------ reading
    def _read(self, rows: list[dict[str, Any]]) -> _Read:
        records = [self._record(row, pos) for pos, row in enumerate(rows)]
        prints = [record_print(r) for r in records]
        keys = [id_hash(r.id) if r.id else p or 1 for r, p in zip(records, prints, strict=True)]
        found = self.done.lookup(np.asarray(keys, np.uint64))
        read = _Read(InputBatch(0))
        for pos, record in enumerate(records):
            if found[pos] >= 0:
                if int(self.done.prints[found[pos]]) != prints[pos] and record.id:
                    raise InputChanged(
                        f"the item with id {record.id!r} ({record.location}) is not the item "
                        "the earlier run finished under that id"
                    )
                read.skipped += 1
                continue
            if isinstance(record, BadRecord):
                read.batch.rejects.append(record.reject(pos))
            else:
                read.batch.items.append((pos, record))
            read.batch.size += 1
            read.keys.append(keys[pos])
            read.prints.append(prints[pos])
        return read

    def _record(self, row: dict[str, Any], pos: int) -> BulkItem | BadRecord:
        c = self.spec.columns

        def cell(name: str | None) -> Any:
            value = row.get(name) if name else None
            # pandas-backed blocks hold a missing value as NaN
            return None if isinstance(value, float) and math.isnan(value) else value

        image = cell(c.image)
        raw = {
            "id": cell(c.id),
            "text": cell(c.text),
            "image": _BYTES_IMAGE if isinstance(image, (bytes, bytearray)) else image,
            "boxes": cell(c.boxes),
        }
        source = cell(c.path)
        record = coerce_record(
            raw, index=pos, source=str(source or "dataset"), image_root=self.spec.image_root
        )
        if isinstance(record, BulkItem) and isinstance(image, (bytes, bytearray)):
            record = dataclasses.replace(record, image=bytes(image))
        return record

    # ------------------------------------------------------------------ writing
    def _keep_rejects(self, key: str, rejects: list[dict[str, Any]]) -> None:
        if not rejects:
            return
        if self.spec.rejects is None:
            first = rejects[0]
            raise RejectedInput(
                f"item {first['id']!r} was refused ({first['code']}: {first['message']}); "
                "pass rejects=DIR to embed_dataset to keep refused items there and go on"
            )
        directory = Path(self.spec.rejects)
        directory.mkdir(parents=True, exist_ok=True)
        lines = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rejects)
        write_atomic(directory / f"rejects-{key}.jsonl", lines)

    def _commit(
        self,
        read: _Read,
        result: BatchResult,
        rows: pa.Table,
        rejects: list[dict[str, Any]],
        before: dict[str, int],
    ) -> pa.Table:
        """Write the batch's part, then its manifest; one row of counters back."""
        import pyarrow as pa

        output = Path(self.spec.output or ".")
        key = read.key
        if read.batch.size:
            part = write_part(output, key, rows) if rows.num_rows else None
            BatchRecord(
                key=key,
                part=part,
                rows=rows.num_rows,
                embedded=result.embedded,
                billed_tokens=result.billed_tokens,
                done=encode_prints(read.keys),
                prints=encode_prints(read.prints),
                rejects=rejects,
            ).write(output)
        after = self._counters()
        counts = {name: after[name] - before[name] for name in after}
        counts.update(
            items=read.batch.size + read.skipped,
            skipped=read.skipped,
            embedded=result.embedded,
            rejected=len(rejects),
            rows=rows.num_rows,
            tokens=result.billed_tokens,
        )
        return pa.table({name: [value] for name, value in counts.items()})

    def _counters(self) -> dict[str, int]:
        stats, wire = self.engine.stats, self.engine.provider.stats
        return {
            "calls": stats.calls,
            "rounds": stats.rounds,
            "requests": wire.requests,
            "retries": wire.retries,
            "failures": wire.failures,
        }


def _reject_dict(reject: Reject) -> dict[str, Any]:
    """A reject as the rejects file holds it; its position is not known here (a Ray
    batch is any slice of the input), so ``index`` is left for the driver."""
    data: dict[str, Any] = reject.to_dict()
    data["index"] = None
    return data
