"""``mm-embed embed``: embed a corpus file into Parquet or JSONL, resumable.

Hook it into a larger CLI with :func:`add_embed_parser` + :func:`run_embed`, or call
:func:`embed_main` with an argv list (``python -m mm_embed.bulk`` does). Credentials come
from the environment only (``FGCLIP_API_KEY``; ``VOLC_ACCESSKEY`` + ``VOLC_SECRETKEY`` or
``VIKING_TOKEN``), never from the command line, where other users could read them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from ..errors import MMEmbedError
from .items import FieldNames
from .job import DEFAULT_WINDOW_BATCHES, embed_corpus
from .progress import TqdmProgress, format_summary
from .readers import FORMATS
from .writers import OUTPUT_FORMATS

__all__ = ["add_embed_arguments", "add_embed_parser", "build_parser", "embed_main", "run_embed"]

_DESCRIPTION = (
    "Embed a corpus (JSONL, CSV/TSV, Parquet, or a directory of images) into Parquet or "
    "JSONL, in input order, with durable progress: after a crash, kill or Ctrl-C, "
    "--resume continues without re-sending finished items. Items that fail for good go "
    "to a rejects file; the exit status is then 1."
)
_EPILOG = (
    "exit status: 0 done; 1 done, some items rejected; 2 bad arguments or input; "
    "3 stopped by the provider (resumable); 130 interrupted (resumable)"
)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def add_embed_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``embed`` options to ``parser``."""
    what = parser.add_argument_group("what to embed with")
    what.add_argument("--provider", required=True, choices=("fgclip", "viking"))
    what.add_argument("--model", help="Viking model (required for viking); fgclip: fg-clip")
    what.add_argument("--model-version", help="Viking model version (default: the model's)")
    what.add_argument("--dimension", type=_positive, help="Viking dense dimension")
    what.add_argument(
        "--sparse", action="store_true", help="also sparse vectors (Viking sparse models)"
    )
    what.add_argument("--no-dense", action="store_true", help="no dense vectors (with --sparse)")

    files = parser.add_argument_group("files")
    files.add_argument("--input", required=True, type=Path, help="corpus file or image directory")
    files.add_argument("--input-format", choices=FORMATS, help="default: from the suffix")
    files.add_argument(
        "--output", required=True, type=Path, help="output file (.parquet or .jsonl)"
    )
    files.add_argument("--output-format", choices=OUTPUT_FORMATS, help="default: from the suffix")
    files.add_argument("--rejects", type=Path, help="rejects file (default: OUTPUT.rejects.jsonl)")
    files.add_argument("--resume", action="store_true", help="continue an interrupted run")
    files.add_argument(
        "--overwrite", action="store_true", help="replace an existing output or checkpoint"
    )
    files.add_argument("--id-field", default="id")
    files.add_argument("--text-field", default="text")
    files.add_argument("--image-field", default="image")
    files.add_argument("--boxes-field", default="boxes")
    files.add_argument(
        "--image-root",
        type=Path,
        help="base of relative image paths (default: the input's directory)",
    )

    run = parser.add_argument_group("how to run")
    run.add_argument(
        "--max-concurrency", type=_positive, default=4, help="calls in flight (default 4)"
    )
    run.add_argument(
        "--tokens-per-minute",
        type=_non_negative,
        help="token budget (viking default: the provider's 120000; 0 turns it off; fgclip: none)",
    )
    run.add_argument(
        "--images-per-second",
        type=_non_negative,
        help="viking image budget (default: the provider's 15; 0 turns it off)",
    )
    run.add_argument(
        "--batch-size", type=_positive, help="items per call (default: the wire maximum)"
    )
    run.add_argument(
        "--window-batches",
        type=_positive,
        default=DEFAULT_WINDOW_BATCHES,
        help=f"batches per committed window / Parquet row group (default {DEFAULT_WINDOW_BATCHES})",
    )
    run.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per HTTP request (default 60)"
    )
    run.add_argument(
        "--max-retries", type=_non_negative, default=3, help="retries per HTTP request"
    )
    run.add_argument("--base-url", help="API base URL (default: FGCLIP_BASE_URL / VIKING_BASE_URL)")
    run.add_argument(
        "--no-duplicate-check", action="store_true", help="skip the duplicate-id check"
    )
    run.add_argument("--max-rejects", type=_non_negative, help="stop once more items are rejected")
    run.add_argument("--strict", action="store_true", help="stop at the first rejected item")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mm-embed embed", description=_DESCRIPTION, epilog=_EPILOG
    )
    return add_embed_arguments(parser)


def add_embed_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``embed`` on an ``add_subparsers()`` object; dispatch to :func:`run_embed`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "embed", help="embed a corpus file, resumable", description=_DESCRIPTION, epilog=_EPILOG
    )
    add_embed_arguments(parser)
    parser.set_defaults(func=run_embed)
    return parser


def _client(args: argparse.Namespace) -> Any:
    # The bulk engine runs --max-concurrency calls itself; each client call stays serial.
    if args.provider == "fgclip":
        from ..providers.fgclip import FGClipClient

        return FGClipClient(
            base_url=args.base_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            max_concurrency=1,
            max_batch_size=args.batch_size,
        )
    from ..providers.viking import VikingClient
    from ..providers.viking.catalogue import DEFAULT_IMAGES_PER_SECOND, DEFAULT_TOKENS_PER_MINUTE

    budget = DEFAULT_TOKENS_PER_MINUTE if args.tokens_per_minute is None else args.tokens_per_minute
    images = DEFAULT_IMAGES_PER_SECOND if args.images_per_second is None else args.images_per_second
    return VikingClient(
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        max_concurrency=1,
        tokens_per_minute=budget or None,
        images_per_second=images or None,
        max_batch_size=args.batch_size,
    )


class _Interrupts:
    """First Ctrl-C / SIGTERM: stop cleanly (calls in flight finish and are kept).
    Second: quit at once (every finished batch is already on disk)."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Outside the main thread signals cannot be caught: leave them alone.
            with contextlib.suppress(ValueError):
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count > 1:
            os._exit(130)
        sys.stderr.write("\nstopping: waiting for the calls in flight (Ctrl-C again to quit now)\n")
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run_embed(args: argparse.Namespace) -> int:
    """Run a parsed ``embed`` command; returns the exit status."""
    err = sys.stderr
    if args.provider == "viking" and not args.model:
        err.write("mm-embed embed: error: --model is required with --provider viking\n")
        return 2
    try:
        client = _client(args)
    except MMEmbedError as exc:
        err.write(f"mm-embed embed: error: {exc}\n")
        return 2
    budget = getattr(client, "tokens_per_minute", None) or args.tokens_per_minute or None
    progress = None if args.no_progress else TqdmProgress(budget, file=err)
    fields = FieldNames(args.id_field, args.text_field, args.image_field, args.boxes_field)
    with client, _Interrupts():
        try:
            summary = embed_corpus(
                args.input,
                args.output,
                client=client,
                model=args.model,
                model_version=args.model_version,
                dimension=args.dimension,
                sparse=args.sparse,
                dense=not args.no_dense,
                input_format=args.input_format,
                output_format=args.output_format,
                rejects=args.rejects,
                resume=args.resume,
                overwrite=args.overwrite,
                fields=fields,
                image_root=args.image_root,
                batch_size=args.batch_size,
                window_batches=args.window_batches,
                max_concurrency=args.max_concurrency,
                tokens_per_minute=args.tokens_per_minute if args.provider == "fgclip" else None,
                check_duplicates=not args.no_duplicate_check,
                max_rejects=0 if args.strict else args.max_rejects,
                progress=progress,
            )
        except (MMEmbedError, ValueError, OSError) as exc:
            err.write(f"mm-embed embed: error: {exc}\n")
            return 2
        except KeyboardInterrupt:
            err.write("mm-embed embed: interrupted before the run started\n")
            return 130
    err.write(format_summary(summary) + "\n")
    if "warning" in summary.extra:
        err.write(f"warning: {summary.extra['warning']}\n")
    if args.summary_json:
        args.summary_json.write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))
    return summary.exit_code


def embed_main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``) and run."""
    return run_embed(build_parser().parse_args(argv))
