"""The embedding clients behind the demo and the explorer: the real APIs when their
credentials are set, else the local emulator started in-process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

from .. import FGClipClient, VikingClient
from ..config import EnvVar, env_value
from .errors import SetupError

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = [
    "Clients",
    "Engine",
    "has_fgclip_credentials",
    "has_viking_credentials",
    "open_clients",
]

#: Where vectors come from: the real provider API or the local emulator.
Engine: TypeAlias = Literal["api", "emulator"]


def has_fgclip_credentials() -> bool:
    """Whether ``FGCLIP_API_KEY`` is set."""
    return env_value(EnvVar.FGCLIP_API_KEY) is not None


def has_viking_credentials() -> bool:
    """Whether a Viking access key + secret key pair or a Viking token is set."""
    pair = env_value(EnvVar.VOLC_ACCESSKEY) and env_value(EnvVar.VOLC_SECRETKEY)
    return bool(pair or env_value(EnvVar.VIKING_TOKEN))


@dataclass
class Clients:
    """Both providers' clients, and for each a line saying where it sends requests."""

    fgclip: FGClipClient
    viking: VikingClient
    where: dict[str, str] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)

    @property
    def uses_emulator(self) -> bool:
        return "emulator" in self.engines.values()


@contextlib.contextmanager
def open_clients(*, real_fgclip: bool, real_viking: bool, port: int = 0) -> Iterator[Clients]:
    """Yield :class:`Clients`; a provider not ``real_*`` goes to an emulator started here
    on ``127.0.0.1:port`` (0: a free port) and stopped on exit. Raises
    :class:`SetupError` when the emulator cannot start."""
    with contextlib.ExitStack() as stack:
        emulator = None if real_fgclip and real_viking else stack.enter_context(_emulator(port))
        if real_fgclip:
            fgclip = FGClipClient()
        else:
            assert emulator is not None
            fgclip = FGClipClient(emulator.api_key, base_url=emulator.url)
        stack.callback(fgclip.close)
        if real_viking:
            viking = VikingClient()
        else:
            assert emulator is not None
            viking = VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url)
        stack.callback(viking.close)
        engines: dict[str, Engine] = {
            "fgclip": "api" if real_fgclip else "emulator",
            "viking": "api" if real_viking else "emulator",
        }
        urls = {"fgclip": fgclip.base_url, "viking": viking.base_url}
        where = {
            name: f"{'real API' if engine == 'api' else 'emulator'} at {urls[name]}"
            for name, engine in engines.items()
        }
        yield Clients(fgclip, viking, where, engines)


@contextlib.contextmanager
def _emulator(port: int) -> Iterator[Emulator]:
    try:
        from ..emulator import Emulator
    except ImportError as exc:
        raise SetupError(f"the emulator needs mm-embed[server] ({exc.name} is missing)") from None
    try:
        emulator = Emulator(port=port).start()
    except OSError as exc:
        raise SetupError(
            f"cannot start the emulator on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield emulator
    finally:
        emulator.stop()
