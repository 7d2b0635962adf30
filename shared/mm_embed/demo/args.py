"""``mm-embed demo``'s command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_HTML", "DEFAULT_PLOT", "build_parser", "html_path", "parse_args"]

DEFAULT_PLOT = "mm-embed-demo.png"
DEFAULT_HTML = "mm-embed-demo.html"


def build_parser() -> argparse.ArgumentParser:
    """The demo's argument parser."""
    parser = argparse.ArgumentParser(
        prog="mm-embed demo",
        description="Embed a bundled sample set of texts, images and boxes into an embedded "
        "Qdrant and run hybrid, image and region queries. Uses the local emulator unless "
        "FGCLIP_API_KEY / VOLC_ACCESSKEY+VOLC_SECRETKEY are set.",
    )
    parser.add_argument(
        "--store", help="keep the Qdrant store in this directory (default: a temporary one)"
    )
    parser.add_argument(
        "--qdrant-url", help="use a Qdrant server instead of local mode, e.g. http://localhost:6333"
    )
    parser.add_argument(
        "--plot", default=DEFAULT_PLOT, help="where to write the PNG plot (default: %(default)s)"
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write a plot")
    parser.add_argument(
        "--html",
        help=f"where to write the HTML report (default: beside the plot, {DEFAULT_HTML})",
    )
    parser.add_argument("--no-html", action="store_true", help="do not write the HTML report")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--port", type=int, default=0, help="emulator port (default: a free one)")
    parser.add_argument(
        "--offline", action="store_true", help="use the emulator even when credentials are set"
    )
    return parser


def html_path(args: argparse.Namespace) -> str | None:
    """Where the HTML report goes: ``--html``, else beside the PNG (``--plot``'s folder),
    else the working directory; ``None`` with ``--no-html``."""
    if args.no_html:
        return None
    if args.html:
        return str(args.html)
    return str(Path(args.plot).parent / DEFAULT_HTML)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` (default: ``sys.argv[1:]``)."""
    return build_parser().parse_args(argv)
