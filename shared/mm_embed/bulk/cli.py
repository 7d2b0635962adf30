"""``mm-embed embed``: embed a corpus file into Parquet or JSONL, resumable.

Hook it into a larger CLI with :func:`add_embed_parser` + :func:`run_embed`, or call
:func:`embed_main` with an argv list (``python -m mm_embed.bulk`` does). Credentials come
from the environment only (the variables of :class:`mm_embed.config.EnvVar`), never from
the command line, where other users could read them. The exit status is an
:class:`~mm_embed.bulk.exitcodes.ExitCode`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import orjson

from ..config import DEFAULTS, EnvVar
from ..errors import MMEmbedError
from ._core import VIKING_IMAGES_PER_SECOND
from .exitcodes import ExitCode
from .items import FieldNames
from .job import CorpusJob
from .options import DEFAULT_WINDOW_BATCHES, CorpusOptions
from .progress import BulkSummary, TqdmProgress, format_summary
from .providers import quota_per_minute
from .readers import FORMATS
from .writers import OUTPUT_FORMATS

if TYPE_CHECKING:
    from ..ray.cli import RayCommand

__all__ = [
    "add_embed_arguments",
    "add_embed_parser",
    "build_parser",
    "client_settings",
    "embed_main",
    "make_client",
    "run_embed",
]

_PROG = "mm-embed embed"
_DESCRIPTION = (
    "Embed a corpus (JSONL, CSV/TSV, Parquet, or a directory of images) into Parquet or "
    "JSONL, in input order, with durable progress: after a crash, kill or Ctrl-C, "
    "--resume continues without re-sending finished items. Items that fail for good go "
    "to a rejects file; the exit status is then 1."
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
    _what_arguments(parser.add_argument_group("what to embed with"))
    _file_arguments(parser.add_argument_group("files"))
    _run_arguments(parser.add_argument_group("how to run"))
    return parser


def _what_arguments(what: argparse._ArgumentGroup) -> None:
    what.add_argument("--provider", required=True, choices=("fgclip", "viking"))
    what.add_argument("--model", help="Viking model (required for viking); fgclip: fg-clip")
    what.add_argument("--model-version", help="Viking model version (default: the model's)")
    what.add_argument("--dimension", type=_positive, help="Viking dense dimension")
    what.add_argument(
        "--sparse", action="store_true", help="also sparse vectors (Viking sparse models)"
    )
    what.add_argument("--no-dense", action="store_true", help="no dense vectors (with --sparse)")


def _file_arguments(files: argparse._ArgumentGroup) -> None:
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
    for name in ("id", "text", "image", "boxes"):
        files.add_argument(f"--{name}-field", default=name)
    files.add_argument(
        "--image-root",
        type=Path,
        help="base of relative image paths (default: the input's directory)",
    )


def _run_arguments(run: argparse._ArgumentGroup) -> None:
    run.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: threads in this process (default); ray: actors on a Ray cluster, "
        "reading Parquet or JSONL and writing a Parquet directory (pip install 'mm-embed[ray]')",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster to join with --engine ray (default: start a local one)",
    )
    run.add_argument(
        "--max-concurrency", type=_positive, default=4, help="calls in flight (default 4)"
    )
    run.add_argument(
        "--tokens-per-minute",
        type=_non_negative,
        help="token quota per minute (viking default: the model's, 120000 or 5000 for the "
        "doubao models; 0 turns pacing off; fgclip: none)",
    )
    run.add_argument(
        "--budget",
        metavar="URL",
        help="the account's shared quota: memory://, file:///abs/path or redis://host:port/db "
        f"(default: {EnvVar.MM_EMBED_BUDGET}, else this process)",
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
        "--max-image-pixels",
        type=_positive,
        default=DEFAULTS.max_image_pixels,
        help="reject larger images unread (default %(default)s)",
    )
    run.add_argument(
        "--timeout", type=float, default=DEFAULTS.timeout, help="seconds per HTTP request"
    )
    run.add_argument(
        "--max-retries",
        type=_non_negative,
        default=DEFAULTS.max_retries,
        help="retries per HTTP request",
    )
    run.add_argument(
        "--base-url",
        help=f"API base URL (default: {EnvVar.FGCLIP_BASE_URL} / {EnvVar.VIKING_BASE_URL})",
    )
    run.add_argument(
        "--no-duplicate-check", action="store_true", help="skip the duplicate-id check"
    )
    run.add_argument("--max-rejects", type=_non_negative, help="stop once more items are rejected")
    run.add_argument("--strict", action="store_true", help="stop at the first rejected item")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description=_DESCRIPTION, epilog=ExitCode.help_text()
    )
    return add_embed_arguments(parser)


def add_embed_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``embed`` on an ``add_subparsers()`` object; dispatch to :func:`run_embed`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "embed",
        help="embed a corpus file, resumable",
        description=_DESCRIPTION,
        epilog=ExitCode.help_text(),
    )
    add_embed_arguments(parser)
    parser.set_defaults(func=run_embed)
    return parser


def client_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the run's client (see :func:`make_client`): every client
    setting the command passes is here; credentials come from the environment.

    The bulk engine runs --max-concurrency calls itself; each client call stays serial.
    """
    settings: dict[str, Any] = {
        "base_url": args.base_url,
        "timeout": args.timeout,
        "max_retries": args.max_retries,
        "max_concurrency": 1,
        "max_batch_size": args.batch_size,
        "max_image_pixels": args.max_image_pixels,
        "budget": args.budget,
    }
    if args.provider == "viking":
        settings["tokens_per_minute"] = (
            "auto" if args.tokens_per_minute is None else args.tokens_per_minute or None
        )
        images = (
            VIKING_IMAGES_PER_SECOND if args.images_per_second is None else args.images_per_second
        )
        settings["images_per_second"] = images or None
    return settings


def make_client(provider: str, settings: dict[str, Any]) -> Any:
    """A blocking client of ``provider`` (``fgclip`` or ``viking``) built with ``settings``."""
    if provider == "fgclip":
        from .. import FGClipClient

        return FGClipClient(**settings)
    from .. import VikingClient

    return VikingClient(**settings)


def _options(args: argparse.Namespace, budget: int | None) -> CorpusOptions:
    return CorpusOptions(
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
        fields=FieldNames(args.id_field, args.text_field, args.image_field, args.boxes_field),
        image_root=args.image_root,
        batch_size=args.batch_size,
        window_batches=args.window_batches,
        max_concurrency=args.max_concurrency,
        tokens_per_minute=args.tokens_per_minute if args.provider == "fgclip" else None,
        check_duplicates=not args.no_duplicate_check,
        max_rejects=0 if args.strict else args.max_rejects,
        max_image_pixels=args.max_image_pixels,
        progress=None if args.no_progress else TqdmProgress(budget, file=sys.stderr),
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
            os._exit(ExitCode.INTERRUPTED)
        sys.stderr.write("\nstopping: waiting for the calls in flight (Ctrl-C again to quit now)\n")
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def run_embed(args: argparse.Namespace) -> int:
    """Run a parsed ``embed`` command; returns the exit status (an :class:`ExitCode`).

    An error that is not the run's (a bug) exits with ``CRASHED``: one line on stderr,
    the traceback in a file."""
    try:
        return _run(args)
    except Exception as error:  # the last line of defence
        return _crashed(error)


def _run(args: argparse.Namespace) -> ExitCode:
    if args.provider == "viking" and not args.model:
        return _refused("--model is required with --provider viking")
    if args.ray_address is not None and args.engine != "ray":
        return _refused("--ray-address needs --engine ray")
    # Every image over --max-image-pixels is rejected unread, so Pillow's warning about
    # images past its own (higher) limit says nothing the rejects file does not.
    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        client = make_client(args.provider, client_settings(args))
        quota = quota_per_minute(client, args.model) or args.tokens_per_minute
        options = _options(args, quota)
        job = _job(args, client, options, quota)
    except MMEmbedError as error:
        return _refused(str(error))
    with client, _Interrupts():
        try:
            summary = job.run()
        except (MMEmbedError, OSError) as error:
            return _refused(str(error))
        except KeyboardInterrupt:
            sys.stderr.write(f"{_PROG}: interrupted before the run started\n")
            return ExitCode.INTERRUPTED
    _report(summary, args.summary_json)
    return summary.exit_code


def _job(
    args: argparse.Namespace, client: Any, options: CorpusOptions, quota: int | None
) -> CorpusJob | RayCommand:
    """The run: this process's thread pool, or actors on Ray (``--engine ray``)."""
    if args.engine == "ray":
        from ..ray.cli import RayCommand

        return RayCommand(args, options, quota)
    return CorpusJob(args.input, args.output, client=client, options=options)


def _report(summary: BulkSummary, summary_json: Path | None) -> None:
    sys.stderr.write(format_summary(summary) + "\n")
    if summary_json is not None:
        summary_json.write_bytes(orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2))


def _refused(message: str) -> ExitCode:
    sys.stderr.write(f"{_PROG}: error: {message}\n")
    return ExitCode.REFUSED


def _crashed(error: BaseException) -> ExitCode:
    """One line on stderr; the traceback goes to a file (or stderr if none can be made)."""
    text = "".join(traceback.format_exception(error))
    try:
        fd, path = tempfile.mkstemp(prefix="mm-embed-crash-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        where = f"the traceback is in {path}"
    except OSError:
        sys.stderr.write(text)
        where = "the traceback is above"
    said = " ".join(str(error).split())  # one line, whatever the message holds
    sys.stderr.write(
        f"{_PROG}: internal error: {type(error).__name__}: {said} ({where}; finished work "
        "is kept, --resume continues; please report this)\n"
    )
    return ExitCode.CRASHED


def embed_main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``) and run."""
    return run_embed(build_parser().parse_args(argv))
