"""A resumable file run: corpus file in, Parquet/JSONL out, rejects beside it.

The output is built from windows of ``window_items`` input items (``window_batches``
batches). Each finished batch is made durable at once (see :mod:`.checkpoint`); each
window, once all its batches are in, is committed and appended to the output as one
Parquet row group. A resumed run replays the committed windows into a fresh output,
re-reads (without sending) the items they cover, reuses finished batches, and sends the
rest: the final file holds the same rows, in the same row groups, as an uninterrupted
run, and (the writer settings being the same) the same bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .checkpoint import Checkpoint, CheckpointError, Part
from .engine import BatchResult, BulkAborted, BulkEmbedder
from .items import FieldNames, Reject
from .progress import BulkSummary, NoProgress, Progress
from .readers import open_input
from .tables import batch_table, output_schema, public_table
from .writers import OUTPUT_FORMATS, OutputWriter, RejectsWriter, output_format_for

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DEFAULT_WINDOW_BATCHES", "embed_corpus"]

DEFAULT_WINDOW_BATCHES = 10


class _Window:
    """Batches of the window being assembled, in order."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.tables: list[pa.Table] = []
        self.rejects: list[Reject] = []
        self.starts: list[int] = []
        self.billed = 0
        self.size = 0

    def add(self, start: int, part: Part) -> None:
        self.tables.append(part.table)
        self.rejects.extend(part.rejects)
        self.starts.append(start)
        self.billed += int(part.meta.get("billed_tokens", 0))
        self.size += int(part.meta["size"])


def embed_corpus(
    input: str | os.PathLike[str] | Iterable[object],
    output: str | os.PathLike[str],
    *,
    client: object,
    model: str | None = None,
    model_version: str | None = None,
    dimension: int | None = None,
    sparse: bool = False,
    dense: bool = True,
    input_format: str | None = None,
    output_format: str | None = None,
    rejects: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    fields: FieldNames | None = None,
    image_root: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    window_batches: int = DEFAULT_WINDOW_BATCHES,
    max_concurrency: int | None = None,
    tokens_per_minute: int | None = None,
    check_duplicates: bool = True,
    max_rejects: int | None = None,
    max_rounds: int = 4,
    round_delay: float = 2.0,
    progress: Progress | None = None,
    durable: bool = True,
    count: bool = True,
) -> BulkSummary:
    """Embed ``input`` into ``output`` (Parquet or JSONL, by suffix or ``output_format``).

    ``input`` is a corpus path (JSONL, CSV/TSV, Parquet, or a directory of images) or any
    iterable of items (:class:`BulkItem`, mappings, strings): it is read once, lazily.
    To resume from an iterable, it must yield the same items in the same order. See the
    module docs and README.md, "Bulk embedding". Raises :class:`InputFileError`, :class:`CheckpointError` or
    :class:`ConfigurationError` before anything is sent; returns a :class:`BulkSummary`
    (``status`` ``complete``, ``interrupted`` or ``aborted``) otherwise.
    """
    started = time.monotonic()
    try:
        import pyarrow  # noqa: F401  (checked before any work: the writers need it)
    except ImportError:
        raise ConfigurationError(
            "writing Parquet or JSONL needs pyarrow: pip install 'mm-embed[bulk]'"
        ) from None
    out = Path(output)
    fmt = output_format or output_format_for(out)
    if fmt not in OUTPUT_FORMATS:
        raise ConfigurationError(
            f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}"
        )
    if window_batches < 1:
        raise ConfigurationError("window_batches must be >= 1")
    rejects_path = (
        Path(rejects) if rejects is not None else out.with_name(out.name + ".rejects.jsonl")
    )
    source: Iterable[object]
    if isinstance(input, (str, os.PathLike)):
        opened = open_input(
            input, format=input_format, fields=fields, image_root=image_root, count=count
        )
        source, total = opened, opened.estimated_total
        described: dict[str, Any] = {
            "fields": vars(opened.fields),
            "image_root": str(opened.image_root),
            "input": opened.fingerprint,
        }
        input_name = str(input)
    else:
        source = input
        total = len(input) if isinstance(input, Sized) else None
        described = {"input": {"iterable": type(input).__name__}}
        input_name = f"<{type(input).__name__}>"
    engine = BulkEmbedder(
        client,
        model=model,
        model_version=model_version,
        dimension=dimension,
        sparse=sparse,
        dense=dense,
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        tokens_per_minute=tokens_per_minute,
        check_duplicates=check_duplicates,
        max_rounds=max_rounds,
        round_delay=round_delay,
        max_rejects=max_rejects,
    )
    provider = engine.provider
    window_items = engine.batch_size * window_batches
    settings: dict[str, Any] = {
        "provider": provider.name,
        "model": provider.model,
        "model_version": model_version,
        "dimension": dimension,
        "dense": provider.dense,
        "sparse": provider.sparse,
        "batch_size": engine.batch_size,
        "window_items": window_items,
        "output_format": fmt,
        "check_duplicates": check_duplicates,
        **described,
    }
    summary = BulkSummary(
        input=input_name, output=str(out), rejects_path=str(rejects_path), output_format=fmt
    )
    checkpoint = Checkpoint(out, durable=durable)
    if checkpoint.exists and not resume and not overwrite:
        raise CheckpointError(
            f"{checkpoint.dir} holds an unfinished run: continue it with --resume "
            "(resume=True), or start again with --overwrite (overwrite=True)"
        )
    if checkpoint.exists and resume:
        checkpoint.load()
        differences = checkpoint.differences(settings)
        if differences:
            raise CheckpointError(
                "cannot resume with different settings: " + "; ".join(differences)
            )
        if checkpoint.settings.get("input") != settings["input"]:
            summary.extra["warning"] = (
                "the input changed since the checkpoint; items already finished are not re-read"
            )
    elif out.exists() and not overwrite:
        if resume:
            summary.message = f"nothing to resume: {out} is complete"
            summary.extra["already_complete"] = True
            return summary
        raise CheckpointError(f"{out} exists: replace it with --overwrite (overwrite=True)")
    else:
        checkpoint.create(settings)

    def schema() -> pa.Schema:
        return output_schema(
            dimension=provider.dimension or provider.fallback_dimension,
            dense=provider.dense,
            sparse=provider.sparse,
            boxes=provider.boxes,
        )

    def learn_dimension(part: Part) -> None:
        if provider.dense and provider.dimension is None and part.table.num_rows:
            provider.dimension = part.table.schema.field("dense").type.list_size

    def spool(result: BatchResult) -> None:
        # Runs on the worker thread: the batch is durable before it is handed back.
        part = Part(batch_table(result, schema()), result.rejects, _batch_meta(result))
        checkpoint.write_batch(result.start, part)
        result.payload = part

    output_writer: OutputWriter | None = None
    rejects_writer = RejectsWriter(checkpoint.dir / "rejects.partial", rejects_path)
    totals = {"items": 0, "embedded": 0, "rejected": 0, "rows": 0, "tokens": 0}

    def emit(part: Part) -> None:
        nonlocal output_writer
        if part.table.num_rows:
            if output_writer is None:
                output_writer = OutputWriter(checkpoint.dir / "output.partial", out, schema(), fmt)
            output_writer.write(public_table(part.table, output_writer.schema))
        rejects_writer.write(part.rejects)
        size = int(part.meta["size"])
        totals["items"] += size
        totals["rejected"] += len(part.rejects)
        totals["embedded"] += size - len(part.rejects)
        totals["rows"] += part.table.num_rows
        totals["tokens"] += int(part.meta.get("billed_tokens", 0))

    window = _Window(0)

    def commit_window() -> None:
        import pyarrow as pa

        if not window.starts:
            return
        # A batch with no rows may predate the first reply (FG-CLIP learns the dimension
        # from it): give every table the final schema.
        tables = [t for t in window.tables if t.num_rows]
        table = pa.concat_tables(tables) if tables else batch_table(BatchResult(0, 0), schema())
        meta = {
            "start": window.number * window_items,
            "size": window.size,
            "billed_tokens": window.billed,
        }
        part = Part(table, window.rejects, meta)
        checkpoint.commit_window(window.number, part, window.starts)
        emit(part)

    summary.resumed = 0
    for n in checkpoint.windows():
        part = checkpoint.read_window(n)
        learn_dimension(part)
        emit(part)
        summary.resumed += int(part.meta["size"])
        window = _Window(n + 1)
    skip_items = summary.resumed
    cached = checkpoint.batches(skip_items)
    progress = progress or NoProgress()
    progress.start(total, skip_items)
    transport = provider.stats
    base_requests, base_failures = transport.requests, transport.failures
    status, message, exit_code = "complete", "", 0
    batches = engine.iter_batches(source, skip_items=skip_items, cached=cached, on_result=spool)
    try:
        for result in batches:
            if result.status == "skipped":
                continue
            if result.status == "cached":
                part = checkpoint.read_batch(result.start)
                learn_dimension(part)
                summary.resumed += result.size
            else:
                assert isinstance(result.payload, Part)
                part = result.payload
            window.add(result.start, part)
            if window.size == window_items:
                commit_window()
                window = _Window(window.number + 1)
            progress.update(
                result.size,
                tokens=engine.stats.tokens,
                retries=engine.retries,
                rejected=totals["rejected"] + len(window.rejects),
                elapsed=time.monotonic() - started,
            )
        commit_window()  # the last, partial window
        window = _Window(window.number + 1)
    except BulkAborted as error:
        # A partial window is not committed (it would shift the row groups); its batches
        # are durable and are reused by the resume.
        status, message = "aborted", str(error)
        exit_code = 3 if error.cause is not None else 2
    except KeyboardInterrupt:
        status, message = "interrupted", "stopped by the user"
    finally:
        batches.close()
        progress.close()
        rejects_writer.close()
        if output_writer is not None:
            output_writer.close()
    if status == "complete":
        if output_writer is None:  # no rows at all: an empty file with the schema
            output_writer = OutputWriter(checkpoint.dir / "output.partial", out, schema(), fmt)
        output_writer.commit()
        rejects_writer.commit()
        checkpoint.remove()
    else:
        summary.extra["exit_code"] = exit_code
        message += f"; finished work is kept in {checkpoint.dir}: resume to continue"
    summary.status, summary.message = status, message
    summary.items = totals["items"] + window.size
    summary.embedded, summary.rejected = totals["embedded"], totals["rejected"]
    summary.rows, summary.total_tokens = totals["rows"], totals["tokens"]
    summary.calls = engine.stats.calls
    summary.requests = transport.requests - base_requests
    summary.failures = transport.failures - base_failures
    summary.retries = engine.retries
    summary.tokens = engine.stats.tokens
    summary.tokens_per_minute_budget = tokens_per_minute or getattr(
        getattr(provider, "client", None), "tokens_per_minute", None
    )
    summary.row_groups = output_writer.row_groups if output_writer is not None else 0
    summary.wall_time = time.monotonic() - started
    return summary


def _batch_meta(result: BatchResult) -> dict[str, Any]:
    return {"start": result.start, "size": result.size, "billed_tokens": result.billed_tokens}
