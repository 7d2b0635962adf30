"""The emulator's tokenizer: simple, deterministic and documented.

A token is one of: a run of ASCII letters/digits (``hello``, ``2024``), one CJK
character (``红``), or any other single non-space character (``,``, ``!``). Counts from
it drive the FG-CLIP 196-token limit, Viking ``token_usage`` and the TPM budget. It is
not the providers' tokenizer: real counts differ.
"""

from __future__ import annotations

import re

__all__ = ["count_tokens", "tokenize", "truncate_tokens"]

_CJK = "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[A-Za-z0-9]+|[{_CJK}]|[^\s{_CJK}A-Za-z0-9]")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into emulator tokens (original case kept)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """How many emulator tokens ``text`` has."""
    return len(_TOKEN.findall(text))


def truncate_tokens(text: str, limit: int) -> str:
    """``text`` cut just after its ``limit``-th token (unchanged when shorter)."""
    if limit <= 0:
        return ""
    for i, match in enumerate(_TOKEN.finditer(text)):
        if i == limit - 1:
            return text[: match.end()]
    return text
