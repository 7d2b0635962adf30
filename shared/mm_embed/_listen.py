"""The ``--host`` / ``--port`` options of the commands that serve a local HTTP page or
API (``mm-embed serve``, ``mm-embed explore``)."""

from __future__ import annotations

import argparse

__all__ = ["add_listen_arguments"]


def add_listen_arguments(parser: argparse.ArgumentParser, *, host: str, port: int) -> None:
    """Add ``--host`` and ``--port`` with these defaults (``--port 0`` picks a free one)."""
    parser.add_argument("--host", default=host, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=port, help="port, 0 picks a free one (default %(default)s)"
    )
