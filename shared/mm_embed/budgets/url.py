"""Budgets from URLs and the environment: ``memory://``, ``file:///abs/path``,
``redis://host:port/db`` (``MM_EMBED_BUDGET`` takes the same URL)."""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit

from ..config import EnvVar, env_value, redact_url
from ..errors import ConfigurationError
from .base import Budget
from .local import LocalBudget

__all__ = ["budget_from_url", "default_budget", "resolve_budget"]

_lock = threading.Lock()
_process_default = LocalBudget()
#: One budget object per URL per process: clients given the same URL share it.
_by_url: dict[str, Budget] = {}

SCHEMES = ("memory", "file", "redis", "rediss", "ray")


def budget_from_url(url: str) -> Budget:
    """The budget a URL names (one object per URL in a process).

    ``memory://`` is the process-wide :class:`LocalBudget`; ``file:///abs/path`` a
    :class:`~mm_embed.budgets.FileBudget` at that path; ``redis://host:port/db`` (or
    ``rediss://``) a :class:`~mm_embed.budgets.RedisBudget`; ``ray://NAMESPACE/NAME``
    (or ``ray://`` for the defaults) the ``mm_embed.ray.RayBudget`` actor of the Ray
    cluster this process is connected to.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"budget URL must look like memory://, file:///abs/path or redis://host:port/db, "
            f"got {redact_url(str(url))!r}"
        )
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return _process_default
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unknown budget URL scheme {scheme!r} in {redact_url(url)!r}; use one of "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    with _lock:
        budget = _by_url.get(url)
        if budget is None:
            budget = _by_url[url] = _open(scheme, url)
        return budget


def _open(scheme: str, url: str) -> Budget:
    if scheme == "file":
        from .file import FileBudget

        parts = urlsplit(url)
        if not parts.path.startswith("/") or parts.netloc not in ("", "localhost"):
            raise ConfigurationError(
                f"a file budget URL needs an absolute path: file:///abs/path, got {url!r}"
            )
        return FileBudget(unquote(parts.path))  # file:///my%20dir/b.db is "/my dir/b.db"
    if scheme == "ray":
        return _ray_budget(url)
    from .redis import RedisBudget

    return RedisBudget(url)


def _ray_budget(url: str) -> Budget:
    from ..ray import RayBudget
    from ..ray.budget import DEFAULT_NAME, DEFAULT_NAMESPACE

    parts = urlsplit(url)
    return RayBudget(
        name=parts.path.strip("/") or DEFAULT_NAME, namespace=parts.netloc or DEFAULT_NAMESPACE
    )


def default_budget() -> Budget:
    """``MM_EMBED_BUDGET``'s budget when the variable is set, else this process's
    :class:`LocalBudget`."""
    url = env_value(EnvVar.MM_EMBED_BUDGET)
    return budget_from_url(url) if url else _process_default


def resolve_budget(budget: Budget | str | None) -> Budget:
    """A :class:`Budget` as given, the budget a URL names, or :func:`default_budget`."""
    if budget is None:
        return default_budget()
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, str):
        return budget_from_url(budget)
    raise ConfigurationError(
        f"budget must be a Budget, a budget URL or None, got {type(budget).__name__}"
    )
