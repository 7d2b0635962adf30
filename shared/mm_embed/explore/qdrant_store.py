"""Opening the Qdrant that holds the demo's (or any hybrid store's) collections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import redact_url
from .errors import SetupError

__all__ = ["open_qdrant"]


def open_qdrant(store: str | None, qdrant_url: str | None, *, create: bool) -> tuple[Any, str]:
    """A ``QdrantClient`` on a server (``qdrant_url``) or in local mode on the folder
    ``store``, and a line saying which. ``create`` makes (and checks it can write) the
    folder; without it the folder must already hold a store. Raises :class:`SetupError`."""
    try:
        from qdrant_client import QdrantClient
    except ImportError:
        raise SetupError("Qdrant needs qdrant-client: install mm-embed[qdrant]") from None
    if qdrant_url:
        return QdrantClient(url=qdrant_url), redact_url(qdrant_url)
    if store is None:
        raise SetupError("give --store PATH or --qdrant-url URL")
    path = Path(store)
    if path.exists() and not path.is_dir():
        raise SetupError(f"--store {store!r} is a file; give a directory")
    if create:
        _check_writable(path, store)
    elif not path.is_dir():
        raise SetupError(f"--store {store!r} does not exist (run mm-embed demo --store {store})")
    try:
        return QdrantClient(path=str(path)), str(path)
    except (RuntimeError, OSError) as exc:  # e.g. the folder is locked by another process
        raise SetupError(f"cannot open the Qdrant store at {store!r}: {exc}") from None


def _check_writable(path: Path, store: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".mm-embed-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SetupError(f"cannot write to --store {store!r}: {exc.strerror or exc}") from None
