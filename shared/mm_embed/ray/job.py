"""A corpus run on Ray Data: ``mm-embed embed --engine ray``.

Ray's readers read the corpus (Parquet or JSONL, a file or a directory of them); a pool
of actors embeds it, each batch written as a part of a Parquet directory together with
its manifest (:mod:`.parts`); the driver reads the counters back, shows progress, and
once every item is embedded or rejected writes the rejects file and the directory's
manifest, last and atomically. A resumed run reads the manifests and sends nothing that
is already written: its actors pass over the items earlier runs finished (a finished
item whose content changed refuses the resume, as the local engine does). The summary,
rejects file and exit codes are the local engine's.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..bulk import BulkSummary, CheckpointError, CorpusOptions, EngineOptions, FieldNames
from ..bulk.progress import NoProgress
from ..errors import ConfigurationError
from ._internals import Checkpoint, InputFileError, OutputLock, read_manifest
from .dataset import DEFAULT_ACTOR_CPUS, embed_batches, prepare
from .parts import MANIFEST, BatchRecord, DoneSet, read_batches, remove_orphans
from .parts import write_atomic as _write_atomic
from .runtime import actor_lost, connect, require_ray, root_error
from .scan import IdScan, scan_ids
from .worker import Columns, WorkerSpec

__all__ = ["ACTOR_LOSS_PASSES", "PATH_COLUMN", "RayCorpusJob", "RayJobOptions", "open_dataset"]

logger = logging.getLogger(__name__)

_FORMAT = 1
#: Passes over the corpus when actors are lost for good (Ray Data fails the dataset
#: then): each later pass sends only what the earlier ones did not write.
ACTOR_LOSS_PASSES = 3
#: The column Ray's readers add with each row's file.
PATH_COLUMN = "path"
#: Actors when ``max_concurrency`` is not given.
_ACTORS = 4
#: CPUs a read task asks for (see :func:`open_dataset`).
_READ_CPUS = 0.5
_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True, kw_only=True)
class RayJobOptions:
    """A Ray corpus run's settings: the command's (``corpus``: the same
    :class:`CorpusOptions` as the local engine's; ``max_concurrency`` is the number of
    actors), the client's keyword arguments, and Ray's own."""

    provider: str
    client: dict[str, Any]
    corpus: CorpusOptions
    num_cpus: float = DEFAULT_ACTOR_CPUS
    tokens_per_minute_budget: int | None = None
    #: More variables for the workers' environment (a budget URL).
    env: dict[str, str] | None = None
    #: The cluster to join when this process is not connected (``None``: a local one).
    ray_address: str | None = None

    @property
    def engine(self) -> EngineOptions:
        """The engine's settings alone (what the actors get: picklable, no progress)."""
        return EngineOptions(
            **{f.name: getattr(self.corpus, f.name) for f in dataclasses.fields(EngineOptions)}
        )

    @property
    def columns(self) -> Columns:
        f = self.corpus.fields or FieldNames()
        return Columns(f.id, f.text, f.image, f.boxes, path=PATH_COLUMN)


def _input_format(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in ("parquet", "jsonl"):
            raise InputFileError(
                f"the Ray engine reads Parquet or JSONL, not {given!r}", path=str(path)
            )
        return given
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    formats = {_SUFFIXES.get(p.suffix.lower()) for p in files if not p.name.startswith((".", "_"))}
    if len(formats) == 1 and None not in formats:
        return str(formats.pop())
    raise InputFileError(
        "the Ray engine reads Parquet (.parquet) or JSONL (.jsonl) files, one format per "
        "run; name it with --input-format parquet|jsonl",
        path=str(path),
    )


def open_dataset(path: Path, fmt: str) -> Any:
    """The corpus as a Ray Dataset (with each row's file in ``path``).

    A read task asks for half a CPU, not Ray's whole one: with the actors' quarters, a
    2-CPU cluster keeps room to read even while a failed run's actors wait to be
    collected (Ray Data frees them only then), instead of waiting for a CPU forever.
    """
    ray = require_ray()
    if fmt == "parquet":
        return ray.data.read_parquet(str(path), include_paths=True, num_cpus=_READ_CPUS)
    # The Arrow reader (``lines=False``) reads JSON Lines with typed columns and nulls;
    # ``lines=True`` goes through pandas, which turns a missing value into NaN.
    return ray.data.read_json(str(path), include_paths=True, num_cpus=_READ_CPUS)


class RayCorpusJob:
    """Embed ``input`` into the Parquet directory ``output`` on the connected Ray
    cluster. :meth:`run` raises :class:`InputFileError`, :class:`CheckpointError`,
    :class:`~mm_embed.bulk.OutputLocked` or :class:`ConfigurationError` when nothing
    can be run; otherwise it returns a :class:`BulkSummary`."""

    def __init__(self, input: Path, output: Path, options: RayJobOptions) -> None:
        self.input, self.output, self.options = input, output, options
        c = options.corpus
        self.rejects_path = (
            Path(c.rejects) if c.rejects else output.with_name(output.name + ".rejects.jsonl")
        )
        self.format = _input_format(input, c.input_format) if input.exists() else None
        # Relative image paths start at the input's directory, made absolute: the actors
        # may run elsewhere.
        root = c.image_root or (input if input.is_dir() else input.parent)
        self.image_root = str(Path(root).absolute())
        self.resuming = False

    def run(self) -> BulkSummary:
        started = time.monotonic()
        if not self.input.exists():
            raise InputFileError("does not exist", path=str(self.input))
        if self.output.exists() and not self.output.is_dir():
            raise ConfigurationError(
                f"{self.output} is a file: the Ray engine writes a Parquet directory"
            )
        summary = BulkSummary(
            input=str(self.input), output=str(self.output), rejects_path=str(self.rejects_path)
        )
        with OutputLock(self.output):
            if not self._check_directory(summary):
                return summary
            started_ray = connect(self.options.ray_address)
            try:
                return _Run(self, summary, started).execute()
            finally:
                if started_ray:
                    require_ray().shutdown()

    def shown(self, path: str) -> str:
        """A file the input holds, named from the input as given (as the local engine
        names it in its rejects file)."""
        given, absolute, found = self.input, self.input.absolute(), Path(path)
        if found == absolute:
            return str(given)
        if absolute in found.parents:
            return str(given / found.relative_to(absolute))
        return path

    def settings(self) -> dict[str, Any]:
        o, e = self.options, self.options.engine
        return {
            "engine": "ray",
            "provider": o.provider,
            "model": e.model,
            "model_version": e.model_version,
            "dimension": e.dimension,
            "dense": e.dense,
            "sparse": e.sparse,
            "fields": vars(o.columns),
            "image_root": self.image_root,
            "output_format": "parquet",
            "input": {"path": str(self.input.resolve()), "format": self.format},
        }

    def _check_directory(self, summary: BulkSummary) -> bool:
        """Check the output against resume / overwrite, changing nothing; ``False``:
        nothing to do. A fresh run's directory is made by :meth:`make_directory` once
        the input passed its checks, so a refused run leaves nothing behind."""
        o, manifest = self.options.corpus, self.output / MANIFEST
        self.resuming = False
        existing = _read_manifest(manifest) if manifest.is_file() else None
        if existing is not None and o.resume and not o.overwrite:
            earlier = Checkpoint(self.output)
            earlier.settings = dict(existing.get("settings") or {})
            differences = earlier.differences(self.settings())
            if differences:
                raise CheckpointError(
                    "cannot resume with different settings: " + "; ".join(differences)
                )
            if existing.get("complete"):
                summary.message = f"nothing to resume: {self.output} is complete"
                summary.extra["already_complete"] = True
                return False
            self.resuming = True
            return True
        if self.output.exists() and any(self.output.iterdir()) and not o.overwrite:
            what = (
                "holds an unfinished run: continue it with --resume, or start again with --overwrite"
                if existing is not None and not existing.get("complete")
                else "exists: replace it with --overwrite"
            )
            raise CheckpointError(f"{self.output} {what}")
        return True

    def make_directory(self) -> None:
        """A fresh output directory holding the run's manifest (a resume keeps its own)."""
        if self.resuming:
            return
        if self.output.exists():
            shutil.rmtree(self.output)
        self.rejects_path.unlink(missing_ok=True)
        self.output.mkdir(parents=True)
        _write_manifest(self.output / MANIFEST, {"settings": self.settings(), "complete": False})


class _Run:
    """One locked execution: scan, embed, assemble."""

    def __init__(self, job: RayCorpusJob, summary: BulkSummary, started: float) -> None:
        self.job, self.summary, self.started = job, summary, started
        self.progress = job.options.corpus.progress or NoProgress()
        self.counts: dict[str, int] = {}

    def execute(self) -> BulkSummary:
        job, o = self.job, self.job.options
        assert job.format is not None
        batch_size = prepare(o.provider, o.client, o.engine)
        # Absolute paths: the actors may run on other nodes, in other directories.
        source = job.input.absolute()
        ds = open_dataset(source, job.format)
        _check_columns(ds, o.columns, job.input)
        # Its own dataset (and so its own DataContext): only the scan keeps input order.
        scan = scan_ids(open_dataset(source, job.format), o.columns.id, PATH_COLUMN, job.shown)
        if scan.duplicates and o.corpus.check_duplicates:
            raise InputFileError(scan.duplicate_message(o.columns.id), path=str(job.input))
        job.make_directory()
        try:
            status, message = self._passes(
                ds, source=source, fmt=job.format, batch_size=batch_size, total=scan.total
            )
        finally:
            self.progress.close()
        records = list(read_batches(job.output))
        if status == "complete":
            status, message = self._assemble(scan, records)
        else:
            message += f"; finished work is kept in {job.output}: --resume continues"
        return self._summarise(scan, records, status, message)

    def _passes(
        self, ds: Any, *, source: Path, fmt: str, batch_size: int, total: int
    ) -> tuple[str, str]:
        """Embed what the output does not hold yet (``ds``, the opened input, first);
        again, up to :data:`ACTOR_LOSS_PASSES` passes, while actors are lost for good."""
        job, o = self.job, self.job.options
        for number in range(1, ACTOR_LOSS_PASSES + 1):
            done = DoneSet.of(list(read_batches(job.output)))
            if number == 1:
                self.progress.start(total, len(done))
            else:  # the failed pass's dataset is spent: read the input afresh
                ds = open_dataset(source, fmt)
            spec = WorkerSpec(
                o.provider,
                o.client,
                o.engine,
                o.columns,
                image_root=job.image_root,
                output=str(job.output.absolute()),
                done=require_ray().put(done) if len(done) else None,
            )
            counters = embed_batches(
                ds,
                spec,
                batch_size=batch_size,
                concurrency=o.corpus.max_concurrency or _ACTORS,
                num_cpus=o.num_cpus,
                env=o.env,
            )
            status, message = self._consume(counters, first_pass=number == 1)
            if status != "actor lost":
                return status, message
            logger.warning(
                "pass %d of %d: %s; sending what is not written yet again",
                number,
                ACTOR_LOSS_PASSES,
                message,
            )
        return "aborted", f"{message}, in each of {ACTOR_LOSS_PASSES} passes"

    def _consume(self, counters: Any, *, first_pass: bool) -> tuple[str, str]:
        rows = counters.iter_rows()
        try:
            return self._take_rows(rows, first_pass=first_pass)
        finally:
            # Stop the pipeline now, whatever ended the loop. A failed run's actor
            # handles sit in reference cycles (its error's traceback): collected, the
            # actors and the CPUs they hold go now rather than at some later collection.
            close = getattr(rows, "close", None)
            if close is not None:
                close()
            del rows
            gc.collect()

    def _take_rows(self, rows: Any, *, first_pass: bool) -> tuple[str, str]:
        """Add up the actors' counters. A later pass passes over what the earlier ones
        wrote: those are not items resumed from an earlier run, and were counted once."""
        limit = self.job.options.corpus.max_rejects
        try:
            for row in rows:
                for name, value in row.items():
                    if first_pass or name != "skipped":
                        self.counts[name] = self.counts.get(name, 0) + int(value)
                self._update(int(row["items"]) - int(row["skipped"]))
                rejected = self.counts.get("rejected", 0)
                if limit is not None and rejected > limit:
                    return "aborted", f"{rejected} items rejected, more than the limit of {limit}"
        except KeyboardInterrupt:
            return "interrupted", "stopped by the user"
        except Exception as error:
            cause = root_error(error)
            if isinstance(cause, CheckpointError):
                raise cause from None
            if cause is None:
                if actor_lost(error):
                    return "actor lost", "an embedding actor died and Ray did not restart it"
                raise
            return "aborted", str(cause)
        return "complete", ""

    def _update(self, finished: int) -> None:
        c = self.counts
        self.progress.update(
            finished,
            tokens=c.get("tokens", 0),
            retries=c.get("retries", 0) + c.get("rounds", 0),
            rejected=c.get("rejected", 0),
            elapsed=time.monotonic() - self.started,
        )

    def _assemble(self, scan: IdScan, records: list[BatchRecord]) -> tuple[str, str]:
        """Check every item is accounted for in the output's batch ``records``, then
        write the rejects file and the manifest (last). A gap is reported, never hidden."""
        job = self.job
        parts = {r.part for r in records if r.part}
        missing = [p for p in parts if not (job.output / p).is_file()]
        finished = sum(r.embedded + len(r.rejects) for r in records)
        if missing or finished != scan.total:
            problem = (
                f"part {missing[0]} named by a manifest is missing"
                if missing
                else f"{scan.total} items read but {finished} embedded or rejected"
            )
            return "aborted", (
                f"the output does not account for every item ({problem}); finished work is "
                f"kept in {job.output}: --resume sends what is missing"
            )
        remove_orphans(job.output, parts)
        _write_rejects(self.job.rejects_path, records, scan)
        totals = self._totals(records)
        manifest = {
            "settings": job.settings(),
            "complete": True,
            "parts": sorted(parts),
            "totals": totals,
        }
        _write_manifest(job.output / MANIFEST, manifest)
        return "complete", ""

    @staticmethod
    def _totals(records: list[BatchRecord]) -> dict[str, int]:
        return {
            "embedded": sum(r.embedded for r in records),
            "rejected": sum(len(r.rejects) for r in records),
            "rows": sum(r.rows for r in records),
            "total_tokens": sum(r.billed_tokens for r in records),
        }

    def _summarise(
        self, scan: IdScan, records: list[BatchRecord], status: str, message: str
    ) -> BulkSummary:
        s, c = self.summary, self.counts
        totals = self._totals(records)
        s.status, s.message = status, message
        s.items, s.resumed = scan.total, c.get("skipped", 0)
        s.embedded, s.rejected = totals["embedded"], totals["rejected"]
        s.rows, s.total_tokens = totals["rows"], totals["total_tokens"]
        s.calls, s.requests, s.failures = (
            c.get("calls", 0),
            c.get("requests", 0),
            c.get("failures", 0),
        )
        s.retries = c.get("retries", 0) + c.get("rounds", 0)
        s.tokens = c.get("tokens", 0)
        s.tokens_per_minute_budget = self.job.options.tokens_per_minute_budget
        s.row_groups = len({r.part for r in records if r.part})
        s.wall_time = time.monotonic() - self.started
        s.extra["engine"] = "ray"
        return s


def _check_columns(ds: Any, columns: Columns, path: Path) -> None:
    names = list(ds.schema().names)
    missing = []
    if columns.id not in names:
        missing.append(repr(columns.id))
    wanted = [n for n in (columns.text, columns.image) if n]
    if not any(n in names for n in wanted):
        missing.append(" or ".join(repr(n) for n in wanted))
    if missing:
        shown = ", ".join(repr(n) for n in names if n != PATH_COLUMN) or "none"
        raise InputFileError(
            f"no {' and no '.join(missing)} columns (found: {shown}); name the fields with "
            "--id-field / --text-field / --image-field",
            path=str(path),
            field=columns.id if columns.id not in names else columns.text,
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    return read_manifest(
        path,
        _FORMAT,
        unreadable=f"{path}: unreadable manifest",
        incompatible=f"{path}: a manifest from an incompatible version of mm-embed; start "
        "again with --overwrite",
    )


def _write_manifest(path: Path, content: dict[str, Any]) -> None:
    _write_atomic(path, orjson.dumps({"format": _FORMAT, **content}, option=orjson.OPT_INDENT_2))


def _write_rejects(path: Path, records: list[BatchRecord], scan: IdScan) -> None:
    """The rejects file, in input order, positions filled in from the scan (as the
    local engine's); none: a stale file is removed."""
    rejects = [dict(r) for record in records for r in record.rejects]
    if not rejects:
        path.unlink(missing_ok=True)
        return
    for reject in rejects:
        index = scan.position(reject.get("id"))
        reject["index"] = index
        where = scan.where(index) if index is not None else None
        reject["location"] = where or scan.shown(str(reject.get("location")))
    rejects.sort(key=lambda r: (r["index"] is None, r["index"] or 0, str(r.get("location"))))
    lines = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rejects)
    _write_atomic(path, lines)
