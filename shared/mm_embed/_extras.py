"""The error of a module whose optional dependencies (a pip "extra") are missing."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(module: str, needs: str, extra: str) -> ImportError:
    """``module`` cannot be imported without ``needs``: the error that says so and the
    ``pip install`` line that brings them (``extra``, e.g. ``"qdrant"``)."""
    return ImportError(f"{module} needs {needs}: pip install 'mm-embed[{extra}]'")
