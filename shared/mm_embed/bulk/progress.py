"""Progress reporting of a file run: a tqdm bar and the final summary text."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from tqdm.auto import tqdm

from .exitcodes import ExitCode

__all__ = ["BulkSummary", "NoProgress", "Progress", "TqdmProgress", "format_summary"]


@dataclass
class BulkSummary:
    """What a file run did.

    Totals (``items``, ``embedded``, ``rejected``, ``rows``, ``total_tokens``) cover the
    whole output, earlier runs included; ``resumed`` items were finished by an earlier
    run; ``calls``, ``requests``, ``retries``, ``failures``, ``tokens`` and
    ``wall_time`` are this run's. ``status`` is ``complete``, ``interrupted`` or
    ``aborted`` (``message`` says why).
    """

    input: str
    output: str
    rejects_path: str | None = None
    status: str = "complete"
    message: str = ""
    items: int = 0
    embedded: int = 0
    rejected: int = 0
    rows: int = 0
    resumed: int = 0
    calls: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    tokens: int = 0
    total_tokens: int = 0
    tokens_per_minute_budget: int | None = None
    wall_time: float = 0.0
    row_groups: int = 0
    output_format: str = "parquet"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_minute(self) -> float:
        """Billed tokens per minute achieved by this run."""
        return self.tokens * 60.0 / self.wall_time if self.wall_time > 0 else 0.0

    @property
    def exit_code(self) -> ExitCode:
        """The command's exit status for this outcome (``COMPLETE``, ``REJECTS``,
        ``ABORTED`` or ``INTERRUPTED``)."""
        if self.status == "interrupted":
            return ExitCode.INTERRUPTED
        if self.status == "aborted":
            return ExitCode.ABORTED
        return ExitCode.REJECTS if self.rejected else ExitCode.COMPLETE

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra"}
        data["tokens_per_minute"] = round(self.tokens_per_minute, 1)
        return data


def _k(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def format_summary(summary: BulkSummary) -> str:
    """The summary as the command prints it."""
    s = summary
    if s.extra.get("already_complete"):
        return f"mm-embed embed: {s.message}"
    shape = f"{s.rows:,} rows" + (
        f", {s.row_groups:,} row groups" if s.output_format == "parquet" else ""
    )
    budget = f" (budget {s.tokens_per_minute_budget:,}/min)" if s.tokens_per_minute_budget else ""
    lines = [
        f"mm-embed embed: {s.status} in {s.wall_time:.1f}s"
        + (f": {s.message}" if s.message else ""),
        f"  items     {s.items:,} read, {s.embedded:,} embedded, {s.rejected:,} rejected"
        + (f" ({s.resumed:,} finished by an earlier run)" if s.resumed else ""),
        f"  calls     {s.calls:,} client calls, {s.requests:,} HTTP requests, "
        f"{s.retries:,} retries, {s.failures:,} failed for good",
        f"  tokens    {s.tokens:,} this run, {s.tokens_per_minute:,.0f}/min{budget}; "
        f"{s.total_tokens:,} in the output",
        f"  output    {s.output} ({shape})",
    ]
    if s.rejected and s.rejects_path:
        lines.append(f"  rejects   {s.rejects_path} ({s.rejected:,} items, with code and message)")
    return "\n".join(lines)


class Progress(Protocol):
    def start(self, total: int | None, initial: int) -> None: ...

    def update(
        self, done: int, *, tokens: int, retries: int, rejected: int, elapsed: float
    ) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def start(self, total: int | None, initial: int) -> None:
        pass

    def update(
        self, done: int, *, tokens: int, retries: int, rejected: int, elapsed: float
    ) -> None:
        pass

    def close(self) -> None:
        pass


class TqdmProgress:
    """items/s and ETA from tqdm; tokens/min against the budget, retries and rejects as
    a postfix."""

    def __init__(self, budget: int | None = None, file: IO[str] | None = None) -> None:
        self.budget = budget
        self.file = file or sys.stderr
        self.bar: tqdm[Any] | None = None
        self._last = 0.0

    def start(self, total: int | None, initial: int) -> None:
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="item",
            desc="embedding",
            file=self.file,
            dynamic_ncols=True,
            smoothing=0.05,
        )

    def update(
        self, done: int, *, tokens: int, retries: int, rejected: int, elapsed: float
    ) -> None:
        if self.bar is None:
            return
        self.bar.update(done)
        now = time.monotonic()
        if now - self._last < 0.5:
            return
        self._last = now
        rate = tokens * 60.0 / elapsed if elapsed > 0 else 0.0
        tpm = _k(rate) + (f"/{_k(self.budget)}" if self.budget else "")
        self.bar.set_postfix_str(
            f"tok/min={tpm} retries={retries} rejects={rejected}", refresh=False
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
