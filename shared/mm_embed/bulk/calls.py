"""The failure policy of one batch's calls.

* a record that cannot become an item, a duplicate id, an image over the pixel cap, an
  item the client refuses before sending (``InputError``) or one the provider cannot
  take at all: rejected, the rest of the batch goes on;
* a provider refusal of a call (HTTP 4xx such as 400, or a provider code): the failed
  call is split in halves and re-sent until the refused item is alone, which is rejected
  with the provider's code and message (a refused call embeds nothing, so no item is
  embedded twice);
* a transient failure the client's retries could not get past (timeouts, 429, 5xx):
  the unfinished items are re-sent after a pause, up to ``max_rounds`` times, then the
  run stops with :class:`BulkAborted` (nothing is rejected for a provider outage);
* bad credentials, no permission, unknown model (401/403/404): the run stops at once.
"""

from __future__ import annotations

import threading
from collections import deque

from .. import RetryPolicy
from ..errors import (
    AuthenticationError,
    InputError,
    MMEmbedError,
    NotFoundError,
    PermissionDeniedError,
)
from .batches import BatchAssembler
from .items import BulkItem, RejectCode
from .providers import Provider
from .stats import BulkStats

__all__ = ["BatchCalls", "BulkAborted", "Stopped"]

_FATAL = (AuthenticationError, PermissionDeniedError, NotFoundError)


class BulkAborted(MMEmbedError):
    """The run stopped before the end: the provider stayed unavailable, refused the
    credentials or the model, or too many items were rejected. Everything finished
    before it is kept; a file run can be resumed. ``cause`` is the last error."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class Stopped(Exception):
    """The consumer went away; the batch was not (fully) run."""


class BatchCalls:
    """Runs the calls of one kind of item of one batch until each item is embedded or
    rejected. ``members`` are positions in the batch (see :class:`BatchAssembler`)."""

    def __init__(
        self,
        provider: Provider,
        acc: BatchAssembler,
        stats: BulkStats,
        stop: threading.Event,
        *,
        max_rounds: int,
        round_delay: float,
    ) -> None:
        self.provider, self.acc, self.stats, self.stop = provider, acc, stats, stop
        self.max_rounds, self.round_delay = max_rounds, round_delay
        self.queue: deque[list[int]] = deque()
        self.rounds = 0

    def run(self, kind: str, members: list[int]) -> None:
        self.queue.append(members)
        while self.queue:
            group = self.queue.popleft()
            if self.stop.is_set():
                raise Stopped()
            self.stats.add(calls=1)
            try:
                result = self.provider.embed(kind, [self.acc.item(p) for p in group])
            except InputError as error:
                self._refused_before_sending(error, group)
            except _FATAL as error:
                raise BulkAborted(f"the provider refused the run: {error}", cause=error) from error
            except MMEmbedError as error:
                self._failed(error, group)
            else:
                self.acc.record(group, result)

    def _refused_before_sending(self, error: InputError, group: list[int]) -> None:
        """Drop the item the client named, or halve the call when it could not say which."""
        if error.index is not None and 0 <= error.index < len(group):
            self._reject_input(group[error.index], error)
            rest = group[: error.index] + group[error.index + 1 :]
            if rest:
                self.queue.appendleft(rest)
        elif len(group) == 1:
            self._reject_input(group[0], error)
        else:
            self._split(group)

    def _failed(self, error: MMEmbedError, group: list[int]) -> None:
        if error.partial_result is not None:
            self.acc.record(group, error.partial_result)
        failed = [group[i] for i in error.failed_indices] or list(group)
        if RetryPolicy.is_retryable(error):
            self._send_again_later(error, failed)
            return
        refused = [group[i] for i in error.input_indices] or failed
        others = [p for p in failed if p not in set(refused)]
        if others:
            self.queue.append(others)
        if len(refused) > 1:
            self._split(refused)
            return
        self.acc.reject(
            refused[0],
            field="image" if self.acc.item(refused[0]).image is not None else "text",
            code=getattr(error, "code", None) or getattr(error, "status_code", None),
            message=error.message,
            status=getattr(error, "status_code", None),
            request_id=getattr(error, "request_id", None),
        )

    def _send_again_later(self, error: MMEmbedError, failed: list[int]) -> None:
        self.rounds += 1
        if self.rounds > self.max_rounds:
            raise BulkAborted(
                f"the provider kept failing after {self.max_rounds} re-sends "
                f"(plus the client's retries): {error}",
                cause=error,
            ) from error
        self.stats.add(rounds=1)
        if self.stop.wait(self.round_delay * 2 ** (self.rounds - 1)):
            raise Stopped() from error
        self.queue.appendleft(failed)

    def _split(self, group: list[int]) -> None:
        self.stats.add(splits=1)
        half = len(group) // 2
        self.queue.extendleft([group[half:], group[:half]])

    def _reject_input(self, pos: int, error: InputError) -> None:
        self.acc.reject(
            pos,
            field=_field_of(error, self.acc.item(pos)),
            code=RejectCode.INVALID_INPUT,
            message=_input_message(error),
        )


def _field_of(error: InputError, item: BulkItem) -> str:
    name = (error.field or "").lower()
    if "box" in name:
        return "boxes"
    if "image" in name or (name == "inputs" and item.image is not None and item.text is None):
        return "image"
    if "text" in name or name == "inputs":
        return "text" if item.text is not None else "image"
    return error.field or "input"


def _input_message(error: InputError) -> str:
    """The client's message without its ``field[index]:`` prefix (its index is the
    position inside one call, meaningless to the reader of a reject)."""
    text = error.message
    head, sep, rest = text.partition(": ")
    return rest if sep and (head == error.field or head.startswith(f"{error.field}[")) else text
