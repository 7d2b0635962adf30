"""``mm-embed serve``: run the emulator in the foreground.

Hook it into a larger CLI with :func:`add_serve_arguments` + :func:`run_serve`, or call
:func:`serve_main` with an argv list. On start it prints ``listening on http://HOST:PORT``
(flushed) and then how to authenticate: the public default credentials are printed so
they can be copied, credentials given with flags are not. Per-request log lines never
contain secrets.

A ``--host`` that is not loopback is refused (exit status 2) unless ``--api-key``,
``--access-key``, ``--secret-key`` and ``--token`` are all given with values other than
the public defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .._listen import add_listen_arguments
from .config import (
    CHECKED_CREDENTIALS,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REGION,
    FAULT_KINDS,
    EmulatorConfig,
    exposure_problem,
)
from .hosts import parse_allow_entry
from .server import bind_socket, build_server, format_url
from .state import EmulatorState

__all__ = ["add_serve_arguments", "build_parser", "config_from_args", "run_serve", "serve_main"]


def _faults(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}"
        )
    return kinds


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError("must be within 0..1")
    return rate


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return number


def _allow_entry(value: str) -> str:
    try:
        parse_allow_entry(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``serve`` options to ``parser`` (a top-level parser or a subparser)."""
    add_listen_arguments(parser, host=DEFAULT_HOST, port=DEFAULT_PORT)
    _add_credential_arguments(parser)
    _add_behaviour_arguments(parser)
    return parser


#: What each checked credential is, for its option's help.
_CREDENTIAL_HELP = {
    "api_key": "FG-CLIP Bearer key accepted",
    "access_key": "Viking access key",
    "secret_key": "Viking secret key",
    "token": "Viking 'token=' credential",
}


def _add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    for name, default in CHECKED_CREDENTIALS.items():
        parser.add_argument(
            _flag(name), default=default, help=f"{_CREDENTIAL_HELP[name]} (default {default})"
        )
    parser.add_argument(
        "--session-token",
        default=None,
        help="Viking STS session token: HMAC requests must carry it, signed, in "
        "X-Security-Token (default: none required)",
    )
    parser.add_argument(
        "--region", default=DEFAULT_REGION, help=f"Viking signing region (default {DEFAULT_REGION})"
    )


def _add_behaviour_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lenient",
        action="store_true",
        help='FG-CLIP: a missing embedding_types means ["float"] and a missing accept '
        "header means JSON (default: strict, both required as the page says)",
    )
    parser.add_argument(
        "--fetch-allow",
        action="append",
        type=_allow_entry,
        default=[],
        metavar="HOST[:PORT]",
        help="also fetch image/video URLs from this host (every port when none is "
        "given); repeatable. Default: only the emulator's own /samples",
    )
    parser.add_argument(
        "--body-timeout",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="refuse (408) a request body not received within this time (default 30)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="added latency per embedding request"
    )
    parser.add_argument(
        "--fault-rate", type=_rate, default=0.0, help="fraction of embedding requests given a fault"
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=FAULT_KINDS,
        help=f"comma-separated fault kinds (default {','.join(FAULT_KINDS)})",
    )
    parser.add_argument(
        "--timeout-fault-s", type=float, default=30.0, help="how long a 'timeout' fault stalls"
    )
    parser.add_argument(
        "--retry-after", type=float, default=None, help="send Retry-After: N on every 429"
    )
    parser.add_argument(
        "--tpm", type=int, default=None, help="tokens per minute per model (default: no limit)"
    )
    parser.add_argument(
        "--images-per-second", type=float, default=None, help="image budget (default: no limit)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draw")
    parser.add_argument(
        "--tos-dir", type=Path, default=None, help="directory holding tos://bucket/key objects"
    )
    parser.add_argument(
        "--clock-skew-s", type=float, default=900.0, help="accepted X-Date skew (default 900)"
    )
    parser.add_argument(
        "--log-level", default="warning", help="emulator log level (default warning)"
    )


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser for ``python -m mm_embed.emulator``."""
    parser = argparse.ArgumentParser(
        prog="mm-embed serve",
        description="Local FG-CLIP + VikingDB embedding emulator (deterministic stand-in vectors).",
    )
    return add_serve_arguments(parser)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The :class:`EmulatorConfig` the parsed options describe."""
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        access_key=args.access_key,
        secret_key=args.secret_key,
        token=args.token,
        session_token=args.session_token,
        region=args.region,
        lenient=args.lenient,
        fetch_allow=tuple(args.fetch_allow),
        body_timeout_s=args.body_timeout,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        faults=tuple(args.faults),
        timeout_fault_s=args.timeout_fault_s,
        retry_after=args.retry_after,
        tpm=args.tpm,
        images_per_second=args.images_per_second,
        seed=args.seed,
        tos_dir=args.tos_dir,
        clock_skew_s=args.clock_skew_s,
    )


def _announce_lines(config: EmulatorConfig, url: str) -> list[str]:
    """How to reach and authenticate; a credential given by the user is never printed."""

    def shown(name: str) -> str:
        value = str(getattr(config, name))
        return value if value == CHECKED_CREDENTIALS.get(name, value) else f"<your {_flag(name)}>"

    lines = [
        f"listening on {url}",
        f"fgclip: POST {url}/models/interface  Authorization: Bearer {shown('api_key')}"
        + ("  (lenient)" if config.lenient else ""),
        f"viking: POST {url}/api/data/embedding/version/2  ak={shown('access_key')} "
        f"sk={shown('secret_key')} region={config.region}  or  "
        f"Authorization: token={shown('token')}",
        f"samples: GET {url}/samples",
    ]
    if config.session_token is not None:
        lines.insert(3, "viking: signed requests must carry <your --session-token>")
    return lines


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C / SIGTERM). Returns the exit status."""
    defaults = [name for name, value in CHECKED_CREDENTIALS.items() if getattr(args, name) == value]
    exposed = exposure_problem(args.host, defaults, _flag)
    if exposed:
        print(f"error: {exposed}", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=str(args.log_level).upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        print(
            f"error: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr
        )
        return 1
    port = int(sock.getsockname()[1])
    state = EmulatorState(config)
    state.fetcher.own_port = port
    url = format_url(config.host, port)

    def announce() -> None:
        print("\n".join(_announce_lines(config, url)), flush=True)

    server = build_server(state, announce)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def serve_main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse ``argv`` (default ``sys.argv[1:]``) and serve."""
    return run_serve(build_parser().parse_args(argv))
