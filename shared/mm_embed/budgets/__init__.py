"""Account-wide quota budgets, shared by every client that holds the account.

The provider's quota belongs to the account, not to a client object (Viking: 120,000
tokens per minute per model, all sub-accounts summed; 15 images per second). Every
client draws from a :class:`Budget` keyed by account and quota:

* :class:`LocalBudget`: one process; the default, so two clients in one process with
  the same credentials share it without being told.
* :class:`FileBudget`: every process on one host (SQLite in WAL mode).
* :class:`RedisBudget`: many hosts (an atomic server-side script).
* ``mm_embed.ray.RayBudget``: a Ray cluster (a named, detached actor).

Pass ``budget=`` to a client, an adapter, the bulk API or ``mm-embed embed --budget
URL`` as a :class:`Budget` or a URL (``memory://``, ``file:///abs/path``,
``redis://host:port/db``); ``MM_EMBED_BUDGET`` takes the same URL, so existing code
shares a quota with no code change.

Buckets start holding the provider's whole window (a minute of tokens), refill at the
quota's rate, serve callers in arrival order from a line at most one window long (so a
holder killed while waiting strands no more), and back off for every holder at once
on a quota refusal (AIMD: halve, then recover additively).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._bucket import BucketState, Quota
from .base import Budget, BudgetError, Ticket
from .local import LocalBudget
from .url import budget_from_url, default_budget, resolve_budget

if TYPE_CHECKING:
    from .file import FileBudget
    from .redis import RedisBudget

__all__ = [
    "BucketState",
    "Budget",
    "BudgetError",
    "FileBudget",
    "LocalBudget",
    "Quota",
    "RedisBudget",
    "Ticket",
    "budget_from_url",
    "default_budget",
    "resolve_budget",
]

_LAZY = {"FileBudget": "file", "RedisBudget": "redis"}


def __getattr__(name: str) -> Any:
    # The Redis backend imports the optional redis client; both load on first use.
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
