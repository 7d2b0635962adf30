"""Pacing one wire request against a budget (the transport's :class:`~mm_embed.transport.Pacer`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import MMEmbedError, RateLimitError
from ._bucket import Quota
from .base import Budget, Ticket

__all__ = ["CallPacer", "Charge"]

#: Seconds before asking again to join a line that is a whole window long.
JOIN_RETRY_S = 0.05

#: ``(quota, estimated amount, settle)``: ``settle(result)`` returns the amount the
#: reply says was used (``None``: keep the estimate).
Charge = tuple[Quota, float, Callable[[object], float | None] | None]


class CallPacer:
    """Takes each charge's units in line before an attempt, in order (a later quota is
    taken only once the earlier ones are due, so it sees about the real sending time;
    each joins the line only while it is shorter than one window, so a holder killed
    while waiting strands no more than that), and settles them after: the reply's usage
    corrects estimates; a quota refusal keeps the charge and makes every holder back
    off; any other failure refunds the first charge (the provider did no work).
    """

    def __init__(self, budget: Budget, account: str, charges: Sequence[Charge]) -> None:
        self._budget = budget
        self._account = account
        self._charges = list(charges)
        self._pending: list[Ticket] = []
        self._sent: list[Ticket] = []

    @property
    def blocking(self) -> bool:
        """Whether the budget answers over I/O (a file, Redis, a Ray actor)."""
        return not self._budget.in_memory

    def before(self) -> float:
        budget = self._budget
        for number, (quota, amount, _) in enumerate(self._charges):
            if len(self._pending) <= number:
                ticket = budget.join(self._account, quota, amount)
                if ticket is None:
                    return JOIN_RETRY_S
                self._pending.append(ticket)
            wait = budget.due_in(self._pending[number])
            if wait > 0:
                return wait
        # All due: these tickets belong to this attempt; a retry takes fresh ones.
        self._sent, self._pending = self._pending, []
        return 0.0

    def after(self, result: object | None, error: MMEmbedError | None) -> None:
        sent, self._sent = self._sent, []
        if result is not None:
            for ticket, (_, _, settle) in zip(sent, self._charges, strict=False):
                actual = settle(result) if settle is not None else None
                if actual is not None:
                    self._budget.settle(ticket, actual)
        elif isinstance(error, RateLimitError):
            for ticket in sent:
                self._budget.refused(self._account, ticket.quota)
        elif sent:
            self._budget.cancel(sent[0])
