"""Running the emulator: in-process (``with Emulator() as emu``) or from the CLI.

The in-process server always runs uvicorn on its own thread and event loop, bound to a
free loopback port, so a blocking client called from an async test cannot stall it.
``Emulator`` is both a context manager and an async context manager.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .config import EmulatorConfig
from .state import EmulatorState, RequestRecord

__all__ = ["AsyncEmulator", "Emulator", "bind_socket", "build_server", "format_url"]

_START_TIMEOUT_S = 20.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port=0``: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only
    # when it sees it. Without it every small reply (headers, then body) waited ~40 ms
    # for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock


def format_url(host: str, port: int) -> str:
    """``http://host:port`` with IPv6 hosts bracketed."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, with hooks on startup and on exit signals."""

    def __init__(
        self,
        config: uvicorn.Config,
        state: EmulatorState,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.emulator_state = state
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.emulator_state.begin_shutdown()
        super().handle_exit(sig, frame)


def build_server(state: EmulatorState, on_started: Callable[[], None] | None = None) -> _Server:
    """A uvicorn server for the emulator app (h11: the reset fault relies on it)."""
    config = uvicorn.Config(
        create_app(state=state),
        http="h11",
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return _Server(config, state, on_started)


class Emulator:
    """A running emulator for tests and demos.

    ``Emulator(config=None, **overrides)``: the overrides are :class:`EmulatorConfig`
    fields; the port defaults to ``0`` (a free port) and the host to ``127.0.0.1``. A
    host that is not loopback raises :class:`~mm_embed.errors.ConfigurationError` unless
    every checked credential (``api_key``, ``access_key``, ``secret_key``, ``token``) is
    given a value of your own.
    Use as ``with Emulator() as emu:`` or ``async with Emulator() as emu:``; or call
    :meth:`start` / :meth:`stop`.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = EmulatorConfig(**{"port": 0, **overrides})
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.state = EmulatorState(config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._error: BaseException | None = None

    # -- what tests read -------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (FG-CLIP and Viking share it)."""
        return format_url(self.host, self.port)

    @property
    def viking_host(self) -> str:
        """``host:port``, the form the official Volcengine SDK takes."""
        return self.url.removeprefix("http://")

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def access_key(self) -> str:
        return self.config.access_key

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def session_token(self) -> str | None:
        """The STS session token signed requests must carry (``None``: none required)."""
        return self.config.session_token

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def log(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        return self.state.log.records()

    @property
    def counters(self) -> dict[str, int]:
        """``requests``, ``route:<r>``, ``status:<s>``, ``faults``, ``fault:<k>``,
        ``items_embedded``."""
        return self.state.log.counters()

    def clear_log(self) -> None:
        self.state.log.clear()

    def queue_faults(self, *kinds: str) -> None:
        """Give the next embedding requests these faults in order (``"none"`` skips one)."""
        self.state.injector.queue(*kinds)

    def sample_url(self, name: str = "red-circle") -> str:
        """URL of a served sample image, with a host name FG-CLIP accepts (``localhost``)."""
        return f"http://localhost:{self.port}/samples/{name}.png"

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"Emulator({where})"

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Emulator:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        sock = bind_socket(self.config.host, self.config.port)
        port = int(sock.getsockname()[1])
        self.state.fetcher.own_port = port
        self.state.reset_shutdown()
        started = threading.Event()
        server = build_server(self.state, started.set)

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
            finally:
                sock.close()
                started.set()

        thread = threading.Thread(target=run, name=f"mm-embed-emulator-{port}", daemon=True)
        self._server, self._thread, self._port = server, thread, port
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not started.wait(0.05):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start in time")
        if not server.started:
            self._thread = None
            self._port = None
            raise RuntimeError("the emulator failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; wakes requests sleeping in a ``timeout`` fault first."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.state.begin_shutdown()
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


class AsyncEmulator(Emulator):
    """The same emulator, named for ``async with AsyncEmulator() as emu:``."""
