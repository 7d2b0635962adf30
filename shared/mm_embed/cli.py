"""The ``mm-embed`` command: ``serve`` (the emulator), ``embed`` (bulk), ``demo``,
``explore`` (a local search page).

Each subcommand lives in its own module and is imported only when used, so
``mm-embed demo`` does not pay for the bulk writer's imports and vice versa.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib import import_module

__all__ = ["main"]

#: subcommand -> (module, function taking argv and returning an exit code, summary)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("mm_embed.demo", "demo_main", "run the whole product end to end, no account needed"),
    "serve": (
        "mm_embed.emulator.cli",
        "serve_main",
        "run the local emulator of both provider APIs",
    ),
    "embed": ("mm_embed.bulk.cli", "embed_main", "embed a corpus file to Parquet/JSONL, resumable"),
    "explore": (
        "mm_embed.explore.cli",
        "explore_main",
        "search a stored index in a local page (text or picture queries)",
    ),
}

USAGE = (
    "usage: mm-embed {demo,serve,embed,explore} [options]   (mm-embed COMMAND --help for details)\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mm-embed`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        for name, (_, _, summary) in COMMANDS.items():
            sys.stdout.write(f"  {name:<7} {summary}\n")
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from . import __version__

        sys.stdout.write(f"mm-embed {__version__}\n")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        sys.stderr.write(f"mm-embed: unknown command {name!r}\n{USAGE}")
        return 2
    module_name, function_name, _ = COMMANDS[name]
    try:
        module = import_module(module_name)
    except ImportError as exc:
        extra = {"serve": "server", "embed": "bulk", "demo": "all", "explore": "all"}[name]
        sys.stderr.write(
            f"mm-embed {name}: missing dependency ({exc.name}); install mm-embed[{extra}]\n"
        )
        return 1
    run: Callable[[list[str]], int] = getattr(module, function_name)
    return run(rest)


if __name__ == "__main__":
    raise SystemExit(main())
