"""Reading an ``Accept`` header: does it let the server answer with JSON?"""

from __future__ import annotations

__all__ = ["accepts_json"]

_JSON_RANGES = frozenset({"application/json", "application/*", "*/*"})


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def accepts_json(value: str) -> bool:
    """True when one media range of ``value`` covers ``application/json`` with q > 0
    (``application/json``, ``application/*`` or ``*/*``, any case, any parameters)."""
    for media_range in value.split(","):
        media, *params = media_range.split(";")
        if media.strip().lower() in _JSON_RANGES and _quality(params) > 0:
            return True
    return False
