"""``mm-embed embed --engine ray [--ray-address ADDRESS]``: the command's options as a
:class:`~mm_embed.ray.job.RayCorpusJob` on a Ray cluster.

Without ``--ray-address`` the run starts a local Ray instance and stops it at the end;
with it (``host:6379``, ``auto`` or ``ray://host:10001``) it joins that cluster. The
output is a Parquet directory; the rejects file, summary and exit codes are the local
engine's (:class:`~mm_embed.bulk.ExitCode`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..bulk import BulkSummary, CorpusOptions, EngineOptions
from ..errors import ConfigurationError
from ._internals import client_settings
from .dataset import shared_budget
from .job import RayCorpusJob, RayJobOptions
from .worker import Columns

__all__ = ["RayCommand"]

_PATH_COLUMN = "path"


class RayCommand:
    """The ``embed`` command run on Ray: ``RayCommand(args, options, quota).run()``."""

    def __init__(self, args: argparse.Namespace, options: CorpusOptions, quota: int | None):
        if args.output_format not in (None, "parquet"):
            raise ConfigurationError("--engine ray writes a Parquet directory, not JSONL")
        fields = (args.id_field, args.text_field, args.image_field, args.boxes_field)
        if _PATH_COLUMN in fields:
            raise ConfigurationError(
                f"--engine ray uses the column name {_PATH_COLUMN!r} for each row's file; "
                "rename that column of the corpus"
            )
        self.args = args
        settings = client_settings(args)
        settings["budget"], env = shared_budget(args.budget)
        engine = EngineOptions(
            **{f.name: getattr(options, f.name) for f in dataclasses.fields(EngineOptions)}
        )
        source: Path = args.input
        root = args.image_root or (source if source.is_dir() else source.parent)
        self.options = RayJobOptions(
            provider=args.provider,
            client=settings,
            engine=engine,
            columns=Columns(*fields, path=_PATH_COLUMN),
            input_format=args.input_format,
            image_root=str(Path(root).resolve()),
            rejects=args.rejects,
            resume=args.resume,
            overwrite=args.overwrite,
            check_duplicates=not args.no_duplicate_check,
            concurrency=args.max_concurrency,
            max_rejects=options.max_rejects,
            tokens_per_minute_budget=quota,
            progress=options.progress,
            env=env,
            ray_address=args.ray_address,
        )

    def run(self) -> BulkSummary:
        return RayCorpusJob(self.args.input, self.args.output, self.options).run()
