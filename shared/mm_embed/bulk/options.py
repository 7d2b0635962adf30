"""The settings of a bulk run, in two dataclasses: :class:`EngineOptions` (what to embed
with and how the streaming engine runs) and :class:`CorpusOptions` (those plus the files
of a corpus job). Each setting is named and documented once, here."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, TypeVar

from ..budgets import Budget
from ..config import DEFAULTS, non_negative_int, positive_int
from ..errors import ConfigurationError
from .items import FieldNames
from .progress import Progress

__all__ = ["DEFAULT_WINDOW_BATCHES", "CorpusOptions", "EngineOptions", "with_settings"]

DEFAULT_WINDOW_BATCHES = 10

_Options = TypeVar("_Options", bound="EngineOptions")


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """How the streaming engine embeds.

    Attributes:
        model, model_version, dimension, sparse, dense: what to embed with (Viking needs
            ``model``; FG-CLIP takes none of them and returns dense vectors only).
        batch_size: items per client call (default: the client's wire batch size).
        max_concurrency: client calls in flight (default: the client's ``max_concurrency``).
        max_pending: batches read ahead and held in order (default ``4 * max_concurrency``).
        tokens_per_minute: a token budget for FG-CLIP (Viking: set it on the client).
        budget: the account's shared quota the run paces through: a
            :class:`~mm_embed.budgets.Budget` or a URL (``memory://``,
            ``file:///abs/path``, ``redis://host:port/db``, ``ray://``); given, it becomes
            the client's ``budget``, as ``mm-embed embed --budget URL`` does for the
            command's own client. Default: the client's.
        check_duplicates: reject an item whose id was seen before (about 17-34 bytes per
            id; see :mod:`mm_embed.bulk.dedup`).
        max_rounds: re-sends of unfinished items after the client's own retries ran out.
        round_delay: seconds before the first such re-send (doubled each time).
        max_rejects: stop with :class:`BulkAborted` once more items than this are rejected.
        max_image_pixels: an image with more pixels is rejected (``image_too_large``),
            checked from its header before anything decodes it.
    """

    model: str | None = None
    model_version: str | None = None
    dimension: int | None = None
    sparse: bool = False
    dense: bool = True
    batch_size: int | None = None
    max_concurrency: int | None = None
    max_pending: int | None = None
    tokens_per_minute: int | None = None
    budget: Budget | str | None = None
    check_duplicates: bool = True
    max_rounds: int = 4
    round_delay: float = 2.0
    max_rejects: int | None = None
    max_image_pixels: int = DEFAULTS.max_image_pixels

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_concurrency", "max_pending"):
            if getattr(self, name) is not None:
                positive_int(getattr(self, name), name)
        if self.max_rejects is not None:
            non_negative_int(self.max_rejects, "max_rejects")
        non_negative_int(self.max_rounds, "max_rounds")
        positive_int(self.max_image_pixels, "max_image_pixels")
        if isinstance(self.round_delay, bool) or not self.round_delay >= 0:
            raise ConfigurationError(f"round_delay must be >= 0, got {self.round_delay!r}")


@dataclass(frozen=True, kw_only=True)
class CorpusOptions(EngineOptions):
    """A corpus job's settings: the engine's (:class:`EngineOptions`) plus its files.

    Attributes:
        input_format: ``jsonl``, ``csv``, ``tsv``, ``parquet`` or ``images`` (default:
            from the input's suffix; a directory is ``images``).
        output_format: ``parquet`` or ``jsonl`` (default: from the output's suffix).
        rejects: the rejects file (default ``<output>.rejects.jsonl``).
        resume: continue the unfinished run of this output.
        overwrite: replace an existing output or unfinished run.
        fields: the record keys of id, text, image and boxes.
        image_root: base of relative image paths (default: the input's directory).
        window_batches: batches per committed window, one Parquet row group.
        progress: receives progress (default: none).
        durable: fsync every checkpoint file (off only for throwaway runs and tests).
        count: count the input's records first (for the progress total and ETA).
    """

    input_format: str | None = None
    output_format: str | None = None
    rejects: str | os.PathLike[str] | None = None
    resume: bool = False
    overwrite: bool = False
    fields: FieldNames | None = None
    image_root: str | os.PathLike[str] | None = None
    window_batches: int = DEFAULT_WINDOW_BATCHES
    progress: Progress | None = None
    durable: bool = True
    count: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int(self.window_batches, "window_batches")


def with_settings(
    options: _Options | None, kind: type[_Options], settings: dict[str, Any]
) -> _Options:
    """``options`` (default ``kind()``) with the keyword ``settings`` replacing fields;
    an unknown name raises :class:`ConfigurationError` naming it."""
    base = options if options is not None else kind()
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(kind)})
    if unknown:
        raise ConfigurationError(
            f"unknown option {unknown[0]!r} of {kind.__name__}; see its documentation"
        )
    return dataclasses.replace(base, **settings) if settings else base
