"""``mm-embed embed --engine ray [--ray-address ADDRESS]``: the command's options as a
:class:`~mm_embed.ray.job.RayCorpusJob` on a Ray cluster.

Without ``--ray-address`` the run starts a local Ray instance and stops it at the end;
with it (``host:6379``, ``auto`` or ``ray://host:10001``) it joins that cluster. The
output is a Parquet directory; the rejects file, summary and exit codes are the local
engine's (:class:`~mm_embed.bulk.ExitCode`).
"""

from __future__ import annotations

import argparse

from ..bulk import BulkSummary, CorpusOptions, FieldNames
from ..errors import ConfigurationError
from ._internals import client_settings
from .dataset import shared_budget
from .job import PATH_COLUMN as _PATH_COLUMN
from .job import RayCorpusJob, RayJobOptions

__all__ = ["RayCommand"]


class RayCommand:
    """The ``embed`` command run on Ray: ``RayCommand(args, options, quota).run()``, with
    the same :class:`CorpusOptions` the local engine would get."""

    def __init__(self, args: argparse.Namespace, options: CorpusOptions, quota: int | None):
        if args.output_format not in (None, "parquet"):
            raise ConfigurationError("--engine ray writes a Parquet directory, not JSONL")
        if _PATH_COLUMN in vars(options.fields or FieldNames()).values():
            raise ConfigurationError(
                f"--engine ray uses the column name {_PATH_COLUMN!r} for each row's file; "
                "rename that column of the corpus"
            )
        self.args = args
        settings = client_settings(args)
        settings["budget"], env = shared_budget(args.budget)
        self.options = RayJobOptions(
            provider=args.provider,
            client=settings,
            corpus=options,
            tokens_per_minute_budget=quota,
            env=env,
            ray_address=args.ray_address,
        )

    def run(self) -> BulkSummary:
        return RayCorpusJob(self.args.input, self.args.output, self.options).run()
