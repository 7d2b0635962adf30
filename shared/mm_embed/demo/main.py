"""``mm-embed demo``: parse the arguments, run the flow, print, and exit with a code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from ..explore.errors import call_reporting
from .args import html_path, parse_args
from .flow import run_demo
from .terminal import print_report

__all__ = ["demo_main"]


def demo_main(argv: Sequence[str] | None = None) -> int:
    """``mm-embed demo``: 0 on success, 2 on a user error, 1 on a provider failure."""
    args = parse_args(argv)
    if args.store and args.qdrant_url:
        sys.stderr.write("mm-embed demo: give --store or --qdrant-url, not both\n")
        return 2
    report, status = call_reporting(
        "mm-embed demo",
        lambda: run_demo(
            store=args.store,
            qdrant_url=args.qdrant_url,
            plot=None if args.no_plot else args.plot,
            html=html_path(args),
            port=args.port,
            offline=args.offline,
            progress=not args.json,
        ),
    )
    if report is None:
        return status
    if args.json:
        sys.stdout.write(json.dumps(asdict(report), ensure_ascii=False, indent=2) + "\n")
    else:
        print_report(report, sys.stdout)
    return 0
