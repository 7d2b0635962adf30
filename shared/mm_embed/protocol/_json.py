"""One JSON encoder for request bodies: compact UTF-8 via orjson.

The bytes that are signed are the bytes that are sent, so bodies are encoded once.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps"]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
