"""Shared plumbing for the benchmark scripts: an emulator in its own process, the
machine line, the closing ratio line every script prints last, and a sampling thread.

The emulator runs in a child process (this file, ``serve``) so that the client
under test has its process, its GIL and, on a 2-core machine, one core to itself;
the child hands its request log back over a pipe when asked.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import platform
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from mm_embed import VikingClient

__all__ = [
    "BULK_WORDS",
    "BackgroundSampler",
    "EmulatorProcess",
    "RedisServer",
    "machine_line",
    "ratio_line",
    "text_corpus",
    "text_token_weights",
]

#: The last line of every script matches ``RATIO_PATTERN`` (the smoke tests check it).
RATIO_PATTERN = r"^RATIO [a-z0-9_]+ = [0-9]+\.[0-9]+ \(target (>=|<=) [0-9.]+\) (MET|MISSED)$"


def _serve(overrides: dict[str, Any]) -> None:
    """Child side: start an emulator, print its addresses as one JSON line, then answer
    commands read from stdin (``log``: a length-prefixed pickle of the request log,
    ``clear``, ``stop``)."""
    from mm_embed.emulator import Emulator

    out = sys.stdout.buffer
    emu = Emulator(**overrides).start()
    info = {
        "url": emu.url,
        "viking_host": emu.viking_host,
        "api_key": emu.api_key,
        "access_key": emu.access_key,
        "secret_key": emu.secret_key,
    }
    out.write(json.dumps(info).encode() + b"\n")
    out.flush()
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "log":
                payload = pickle.dumps(emu.log)
            elif command == "clear":
                emu.clear_log()
                payload = pickle.dumps(None)
            else:
                break
            out.write(struct.pack("!Q", len(payload)) + payload)
            out.flush()
    finally:
        emu.stop()


class EmulatorProcess:
    """``with EmulatorProcess(latency_ms=80, tpm=120000) as emu:`` — an
    :class:`mm_embed.emulator.Emulator` (config overrides as keyword arguments) served
    from a child process. ``emu.log()`` fetches its request log."""

    def __init__(self, **overrides: Any) -> None:
        self._overrides = overrides
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = self.viking_host = self.api_key = self.access_key = self.secret_key = ""

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(
            [sys.executable, __file__, "serve", json.dumps(self._overrides)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # A multi-threaded OpenBLAS makes the emulator's small matmuls far slower on
            # 2 cores (see tests/conftest.py); the emulator is the fixture, not the subject.
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(10)
            raise RuntimeError(f"the emulator process exited with {self._proc.returncode}")
        for key, value in json.loads(line).items():
            setattr(self, key, value)
        return self

    def _ask(self, command: str) -> Any:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(command.encode() + b"\n")
        proc.stdin.flush()
        (size,) = struct.unpack("!Q", proc.stdout.read(8))
        return pickle.loads(proc.stdout.read(size))

    def log(self) -> list[Any]:
        """The emulator's request log (``RequestRecord``s, oldest first)."""
        return list(self._ask("log"))

    def clear(self) -> None:
        self._ask("clear")

    def viking_client(self, **settings: Any) -> VikingClient:
        """A ``VikingClient`` on this emulator with its credentials; ``settings`` are the
        client's other keyword arguments (``tokens_per_minute=None``, ...)."""
        from mm_embed import VikingClient

        return VikingClient(self.access_key, self.secret_key, base_url=self.url, **settings)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"stop\n")
            proc.stdin.close()
            proc.wait(15)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


class BackgroundSampler:
    """``with SomeSampler() as sampler:`` — calls :meth:`sample` on a daemon thread, at once
    and then every ``period`` seconds, until the block ends; on exit the thread is stopped
    and, when ``sample_at_exit``, one last sample is taken so the block's end is measured
    too. Subclasses implement :meth:`sample`."""

    def __init__(self, period: float, *, sample_at_exit: bool = True) -> None:
        self.period = period
        self._sample_at_exit = sample_at_exit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Take one sample (runs on the thread, and on the caller's at exit)."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.period)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._sample_at_exit:
            self.sample()


def machine_line() -> str:
    """One line naming the machine, so a pasted result says where it came from."""
    mem = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"machine: {os.cpu_count()} cores{mem}, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, {_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )


def ratio_line(name: str, value: float, op: str, target: float) -> str:
    """The closing line: ``RATIO name = value (target op t) MET|MISSED``."""
    met = value >= target if op == ">=" else value <= target
    return f"RATIO {name} = {value:.3f} (target {op} {target:g}) {'MET' if met else 'MISSED'}"


_SENTENCE = (
    "the quick brown fox jumps over a lazy dog while vector search engines rank "
    "multimodal documents by cosine similarity across dense and sparse signals "
    "retrieval augmented generation needs fast reliable embedding clients that respect "
    "provider rate limits without wasting requests on quota errors"
)
_WORDS = _SENTENCE.split()

#: The vocabulary of the bulk benchmarks' generated texts.
BULK_WORDS = [
    "river",
    "stone",
    "light",
    "paper",
    "window",
    "garden",
    "music",
    "silver",
    "engine",
    "forest",
    "cloud",
    "harbor",
    "winter",
    "copper",
    "signal",
    "market",
    "lantern",
    "valley",
    "thunder",
    "orchard",
    "bridge",
    "meadow",
]


def text_corpus(n: int, *, seed: int = 0, min_words: int = 8, max_words: int = 40) -> list[str]:
    """``n`` distinct English-like texts of ``min_words..max_words`` words (deterministic)."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(min_words, max_words)
        words = rng.choices(_WORDS, k=k)
        out.append(f"doc {i}: " + " ".join(words) + ".")
    return out


def text_token_weights(texts: Sequence[str]) -> dict[str, int]:
    """Emulator tokens of each text, keyed by the emulator's item hash of its Viking wire
    item (``RequestRecord.item_hashes``), so billed tokens can be read off its log."""
    import orjson

    from mm_embed.emulator.state import item_hash
    from mm_embed.emulator.tokens import count_tokens

    out = {}
    for text in texts:
        item = {"data_type": "text", "text": text}
        out[item_hash(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))] = count_tokens(text)
    return out


class RedisServer:
    """``with RedisServer() as url:`` — a ``redis-server`` on a free loopback port, no
    persistence, stopped on exit (Debian package ``redis-server``)."""

    START_TIMEOUT_S = 15.0

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        import shutil
        import socket
        import time

        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self._proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while not _pongs("127.0.0.1", port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return f"redis://127.0.0.1:{port}/0"

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _pongs(host: str, port: int) -> bool:
    """Whether a Redis server at ``host:port`` answers ``PING`` (raw RESP, one second)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_main(main: Callable[[list[str]], int]) -> None:
    """Run a script's ``main(argv)`` and exit with its code."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(json.loads(sys.argv[2]))
