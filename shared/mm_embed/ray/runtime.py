"""Ray itself: importing it, and the ``runtime_env`` that carries the driver's
credentials to the workers.

Credentials never travel as task or actor arguments, which Ray records and may print
(task specs, errors, the dashboard's task table): the workers read them from their
environment, which Ray sets from the ``runtime_env`` of the actors that embed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ..config import EnvVar, env_value
from ..errors import ConfigurationError, MMEmbedError

__all__ = ["CARRIED", "actor_lost", "connect", "require_ray", "root_error", "runtime_env"]

#: The variables a worker's client reads: credentials and endpoints (the budget URL
#: travels too: it may hold a Redis password).
CARRIED = tuple(EnvVar)


def require_ray() -> ModuleType:
    """The ``ray`` module, or a :class:`ConfigurationError` naming the extra to install."""
    try:
        import ray
        import ray.data  # the engine needs Ray Data, not only Ray core
    except ImportError:
        raise ConfigurationError(
            "the Ray engine needs Ray Data: pip install 'mm-embed[ray]'"
        ) from None
    return ray


def runtime_env(extra: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``runtime_env`` whose ``env_vars`` hold every mm-embed variable set in this
    (the driver's) environment, plus ``extra``. A variable the driver does not set is
    left to the worker's own environment (e.g. a secret mounted on the worker pods)."""
    env = {f"{name}": value for name in CARRIED if (value := env_value(name)) is not None}
    env.update(extra or {})
    return {"env_vars": env}


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``None``: start a local instance) unless this
    process is connected already; ``True`` when this call started or joined it (the
    caller then shuts it down)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    # The run's own progress bar and summary report it; Ray Data's would interleave.
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    local = {"include_dashboard": False} if address is None else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING, **local)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise ConfigurationError(f"cannot start or join {where}: {error}") from None
    return True


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions behind it: Ray wraps an exception raised in an actor
    (``RayTaskError``, Ray Data's ``UserCodeException``) and keeps the original as a
    cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__


def root_error(error: BaseException) -> MMEmbedError | None:
    """The mm-embed error behind what Ray raised, if any."""
    return next((e for e in _causes(error) if isinstance(e, MMEmbedError)), None)


def actor_lost(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, an actor that died and that Ray will not
    restart (``ray.kill(actor)`` with its default ``no_restart=True``, a node lost for
    good): Ray Data then fails the whole dataset instead of replacing the actor."""
    ray = require_ray()
    return any(isinstance(e, ray.exceptions.RayActorError) for e in _causes(error))
