"""``mm-embed explore``: serve the explorer page on loopback over a store's collections.

On start it prints ``listening on http://HOST:PORT`` (flushed), then which collections
it searches and where the query embeddings come from. Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from .._listen import add_listen_arguments
from .errors import SetupError, call_reporting

__all__ = ["DEFAULT_PORT", "build_parser", "explore_main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766


def build_parser() -> argparse.ArgumentParser:
    """The explorer's argument parser."""
    parser = argparse.ArgumentParser(
        prog="mm-embed explore",
        description="A local page to search a store that mm-embed demo --store PATH (or "
        "the project's Qdrant hybrid store) wrote: a text box and a picture upload; text "
        "hits with their dense, sparse and fused ranks and matched sparse terms, pictures "
        "with the matching box drawn. Queries are embedded by the emulator unless the "
        "collection was embedded by a real API (whose credentials must then be set).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="a Qdrant local-mode folder (mm-embed demo --store PATH)")
    where.add_argument("--qdrant-url", help="a Qdrant server, e.g. http://localhost:6333")
    parser.add_argument(
        "--collection",
        action="append",
        help="a collection to search (repeatable; default: every collection with a mm-embed record)",
    )
    parser.add_argument(
        "--model",
        help="the Viking model of a text collection that records none (fg-clip for FG-CLIP texts)",
    )
    add_listen_arguments(parser, host=DEFAULT_HOST, port=DEFAULT_PORT)
    parser.add_argument("--top-k", type=int, default=10, help="hits per list (default %(default)s)")
    parser.add_argument(
        "--emulator-port",
        type=int,
        default=0,
        help="port of the in-process emulator (default: free)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="embed queries with the emulator even when credentials are set",
    )
    return parser


def explore_main(argv: Sequence[str] | None = None) -> int:
    """``mm-embed explore``: 0 when stopped, 2 on a user error, 1 on a provider failure."""
    args = build_parser().parse_args(argv)
    if not 1 <= args.top_k <= 100:
        sys.stderr.write("mm-embed explore: --top-k must be within 1..100\n")
        return 2
    return call_reporting("mm-embed explore", lambda: _serve(args))[1]


def _serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn

        from ..emulator.server import bind_socket, format_url
        from .app import create_app
        from .session import open_explorer
    except ImportError as exc:
        raise SetupError(
            f"the explorer needs mm-embed[server,qdrant] ({exc.name} is missing)"
        ) from None
    with contextlib.ExitStack() as stack:
        explorer, where = stack.enter_context(
            open_explorer(
                store=args.store,
                qdrant_url=args.qdrant_url,
                collections=args.collection,
                model=args.model,
                offline=args.offline,
                emulator_port=args.emulator_port,
                top_k=args.top_k,
            )
        )
        try:
            sock = bind_socket(args.host, args.port)
        except OSError as exc:
            raise SetupError(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
            ) from None
        stack.callback(sock.close)
        # The socket already listens: connections made from here on wait in its backlog.
        lines = [f"listening on {format_url(args.host, int(sock.getsockname()[1]))}"]
        lines += [
            f"collection {c.name}: {c.info.provider} {c.info.model}" for c in explorer.collections
        ]
        lines += [f"{name}: {line}" for name, line in where.items()]
        print("\n".join(lines), flush=True)
        config = uvicorn.Config(
            create_app(explorer, where), log_level="warning", access_log=False, lifespan="off"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
