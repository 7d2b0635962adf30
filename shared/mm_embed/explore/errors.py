"""The one error the demo and the explorer add, and how their commands report errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from ..errors import ConfigurationError, MMEmbedError

__all__ = ["SetupError", "call_reporting"]

T = TypeVar("T")


class SetupError(ConfigurationError):
    """Something the user must fix before anything runs: a port, a store path,
    credentials, a collection that cannot be read."""


def call_reporting(command: str, action: Callable[[], T]) -> tuple[T | None, int]:
    """Run ``action`` for the command-line ``command``: ``(result, 0)``; on a
    :class:`SetupError` ``(None, 2)``, on another :class:`MMEmbedError` (a provider
    failure) ``(None, 1)``, each reported on stderr as ``command: message``."""
    try:
        return action(), 0
    except SetupError as exc:
        sys.stderr.write(f"{command}: {exc}\n")
        return None, 2
    except MMEmbedError as exc:
        sys.stderr.write(f"{command}: {type(exc).__name__}: {exc}\n")
        return None, 1
