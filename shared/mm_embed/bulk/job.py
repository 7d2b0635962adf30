"""A resumable file run: corpus file in, Parquet/JSONL out, rejects beside it.

The output is built from windows of ``window_items`` input items (``window_batches``
batches). Each finished batch is made durable at once (see :mod:`.checkpoint`); each
window, once all its batches are in, is committed and appended to the output as one
Parquet row group. A resumed run reads the input again up to the end of the committed
windows without sending it, checks every record against the content fingerprints the
earlier run recorded (any difference refuses the resume, :class:`InputChanged`), replays
the windows into a fresh output, reuses finished batches whose records are unchanged,
and sends the rest: the final file holds the same rows, in the same row groups, as an
uninterrupted run, and (the writer settings being the same) the same bytes. One process
at a time writes an output (:class:`OutputLocked` for the others).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .assembly import OutputAssembly, OutputShape, WindowBuilder, batch_part
from .batches import BatchResult
from .calls import BulkAborted
from .checkpoint import Checkpoint, CheckpointError, Part
from .engine import BatchEngine, BulkEmbedder
from .lock import OutputLock
from .options import CorpusOptions, with_settings
from .progress import BulkSummary, NoProgress
from .providers import quota_per_minute
from .readers import open_input
from .replay import CheckpointReplay
from .writers import OUTPUT_FORMATS, output_format_for

__all__ = ["CorpusJob", "embed_corpus"]


@dataclass
class _Source:
    """The input as the job reads it, and how the checkpoint describes it."""

    records: Iterable[object]
    total: int | None
    name: str
    described: dict[str, Any]


class CorpusJob:
    """Embed ``input`` into ``output`` (Parquet or JSONL, by suffix or ``output_format``).

    ``input`` is a corpus path (JSONL, CSV/TSV, Parquet, or a directory of images) or any
    iterable of items (:class:`BulkItem`, mappings, strings): it is read once, lazily.
    To resume from an iterable, it must yield the same items in the same order.
    ``engine`` runs the batches (default: a :class:`BulkEmbedder` of ``client`` and
    ``options`` in this process).

    :meth:`run` raises :class:`InputFileError`, :class:`CheckpointError` (its
    :class:`InputChanged` when a resume finds the input changed), :class:`OutputLocked`
    or :class:`ConfigurationError` before anything is sent; otherwise it returns a
    :class:`BulkSummary` (``status`` ``complete``, ``interrupted`` or ``aborted``).
    """

    def __init__(
        self,
        input: str | os.PathLike[str] | Iterable[object],
        output: str | os.PathLike[str],
        *,
        client: object,
        options: CorpusOptions | None = None,
        engine: BatchEngine | None = None,
    ) -> None:
        self.input, self.output, self.client = input, Path(output), client
        self.options = options if options is not None else CorpusOptions()
        self.engine = engine
        self.format = self.options.output_format or output_format_for(self.output)
        self.rejects_path = (
            Path(self.options.rejects)
            if self.options.rejects is not None
            else self.output.with_name(self.output.name + ".rejects.jsonl")
        )

    def run(self) -> BulkSummary:
        started = time.monotonic()
        _require_pyarrow()
        if self.format not in OUTPUT_FORMATS:
            raise ConfigurationError(
                f"unknown output format {self.format!r}; choose from {', '.join(OUTPUT_FORMATS)}"
            )
        with OutputLock(self.output):
            source = self._open_source()
            engine = self.engine or BulkEmbedder(self.client, self.options)
            summary = BulkSummary(
                input=source.name,
                output=str(self.output),
                rejects_path=str(self.rejects_path),
                output_format=self.format,
            )
            checkpoint = self._checkpoint(self._settings(engine, source), summary)
            if checkpoint is None:
                return summary
            return _Run(self, engine, checkpoint, source, summary, started).execute()

    def _open_source(self) -> _Source:
        o = self.options
        if isinstance(self.input, (str, os.PathLike)):
            opened = open_input(
                self.input,
                format=o.input_format,
                fields=o.fields,
                image_root=o.image_root,
                count=o.count,
            )
            described = {
                "fields": vars(opened.fields),
                "image_root": str(opened.image_root),
                "input": opened.description,
            }
            return _Source(opened, opened.estimated_total, str(self.input), described)
        kind = type(self.input).__name__
        total = len(self.input) if isinstance(self.input, Sized) else None
        return _Source(self.input, total, f"<{kind}>", {"input": {"iterable": kind}})

    def _settings(self, engine: BatchEngine, source: _Source) -> dict[str, Any]:
        """What a resume must share with the run it continues (``input`` excepted)."""
        provider = engine.provider
        return {
            "provider": provider.name,
            "model": provider.model,
            "model_version": self.options.model_version,
            "dimension": self.options.dimension,
            "dense": provider.dense,
            "sparse": provider.sparse,
            "batch_size": engine.batch_size,
            "window_items": engine.batch_size * self.options.window_batches,
            "output_format": self.format,
            "check_duplicates": self.options.check_duplicates,
            **source.described,
        }

    def _checkpoint(self, settings: dict[str, Any], summary: BulkSummary) -> Checkpoint | None:
        """The checkpoint to run with, or ``None`` when a resume finds nothing to do."""
        o = self.options
        checkpoint = Checkpoint(self.output, durable=o.durable)
        if checkpoint.exists and o.resume:
            checkpoint.load()
            differences = checkpoint.differences(settings)
            if differences:
                raise CheckpointError(
                    "cannot resume with different settings: " + "; ".join(differences)
                )
            checkpoint.remove_scratch()
            return checkpoint
        if checkpoint.exists and not o.overwrite:
            raise CheckpointError(
                f"{checkpoint.dir} holds an unfinished run: continue it with --resume "
                "(resume=True), or start again with --overwrite (overwrite=True)"
            )
        if self.output.exists() and not o.overwrite:
            if o.resume:
                summary.message = f"nothing to resume: {self.output} is complete"
                summary.extra["already_complete"] = True
                return None
            raise CheckpointError(
                f"{self.output} exists: replace it with --overwrite (overwrite=True)"
            )
        checkpoint.create(settings)
        return checkpoint


class _Run:
    """One locked execution of a job: replay, embed, commit windows, finish."""

    def __init__(
        self,
        job: CorpusJob,
        engine: BatchEngine,
        checkpoint: Checkpoint,
        source: _Source,
        summary: BulkSummary,
        started: float,
    ) -> None:
        self.job, self.engine, self.checkpoint = job, engine, checkpoint
        self.source, self.summary, self.started = source, summary, started
        self.window_items = engine.batch_size * job.options.window_batches
        self.shape = OutputShape(engine.provider)
        self.assembly = OutputAssembly(
            checkpoint, job.output, job.rejects_path, job.format, self.shape
        )
        self.replay = CheckpointReplay(checkpoint, self.window_items, self.assembly)
        self.window = WindowBuilder(self.replay.next_window)
        self.progress = job.options.progress or NoProgress()
        stats = engine.provider.stats
        self.base_requests, self.base_failures = stats.requests, stats.failures

    def execute(self) -> BulkSummary:
        batches = self.engine.iter_batches(
            self.source.records, replay=self.replay, fingerprints=True, on_result=self._spool
        )
        self.progress.start(self.source.total, 0)
        try:
            status, message = self._embed_all(batches)
        except BaseException:
            # Refused (the input changed) or crashed: the scratch output goes; what is
            # finished stays for a resume, and a checkpoint with nothing in it goes too.
            self.assembly.discard()
            if not self.checkpoint.holds_work():
                self.checkpoint.remove()
            raise
        finally:
            batches.close()
            self.progress.close()
        return self._finish(status, message)

    def _embed_all(self, batches: Iterator[BatchResult]) -> tuple[str, str]:
        """Take every batch; the run's status and message."""
        try:
            for result in batches:
                self._take(result)
            self._commit_window()  # the last, partial window
        except BulkAborted as error:
            # A partial window is not committed (it would shift the row groups); its
            # batches are durable and are reused by the resume.
            return "aborted", str(error)
        except OSError as error:
            return "aborted", f"stopped by an I/O error: {error}"
        except KeyboardInterrupt:
            return "interrupted", "stopped by the user"
        return "complete", ""

    def _spool(self, result: BatchResult) -> None:
        # Runs on the worker thread: the batch is durable before it is handed back.
        part = batch_part(result, self.shape)
        self.checkpoint.write_batch(result.start, part)
        result.payload = part

    def _take(self, result: BatchResult) -> None:
        if result.status == "skipped":
            self.replay.skipped(result)
        else:
            if result.status == "cached":
                part = self.replay.cached(result.start)
                self.shape.learn(part)
                self.replay.resumed += result.size
            else:
                assert isinstance(result.payload, Part)
                part = result.payload
            self.window.add(result.start, part)
            if self.window.size == self.window_items:
                self._commit_window()
        self.progress.update(
            result.size,
            tokens=self.engine.stats.tokens,
            retries=self.engine.retries,
            rejected=self.assembly.rejected + len(self.window.rejects),
            elapsed=time.monotonic() - self.started,
        )

    def _commit_window(self) -> None:
        window = self.window
        if not window.starts:
            return
        part = window.part(self.window_items, self.shape)
        self.checkpoint.commit_window(window.number, part, window.starts)
        self.assembly.emit(part)
        self.window = WindowBuilder(window.number + 1)

    def _finish(self, status: str, message: str) -> BulkSummary:
        if status == "complete":
            try:
                self.assembly.commit()
                self.checkpoint.remove()
            except OSError as error:  # e.g. the disk filled up: a resume commits again
                status, message = "aborted", f"stopped by an I/O error: {error}"
        if status != "complete":
            self.assembly.discard()
            message += f"; finished work is kept in {self.checkpoint.dir}: resume to continue"
        return self._summarise(status, message)

    def _summarise(self, status: str, message: str) -> BulkSummary:
        s, a, engine = self.summary, self.assembly, self.engine
        transport = engine.provider.stats
        s.status, s.message, s.resumed = status, message, self.replay.resumed
        s.items = a.items + self.window.size
        s.embedded, s.rejected, s.rows, s.total_tokens = a.embedded, a.rejected, a.rows, a.tokens
        s.calls, s.retries, s.tokens = engine.stats.calls, engine.retries, engine.stats.tokens
        s.requests = transport.requests - self.base_requests
        s.failures = transport.failures - self.base_failures
        s.tokens_per_minute_budget = self.job.options.tokens_per_minute or quota_per_minute(
            getattr(engine.provider, "client", None), engine.provider.model
        )
        s.row_groups = a.row_groups
        s.wall_time = time.monotonic() - self.started
        return s


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401  (checked before any work: the writers need it)
    except ImportError:
        raise ConfigurationError(
            "writing Parquet or JSONL needs pyarrow: pip install 'mm-embed[bulk]'"
        ) from None


def embed_corpus(
    input: str | os.PathLike[str] | Iterable[object],
    output: str | os.PathLike[str],
    *,
    client: object,
    options: CorpusOptions | None = None,
    **settings: Any,
) -> BulkSummary:
    """Embed ``input`` into ``output``: ``CorpusJob(input, output, client=client,
    options=...).run()``, the options given whole (``options``) and/or by name
    (``embed_corpus("c.jsonl", "v.parquet", client=client, model="bge-m3",
    resume=True)``; the names are :class:`CorpusOptions` fields)."""
    job_options = with_settings(options, CorpusOptions, settings)
    return CorpusJob(input, output, client=client, options=job_options).run()
