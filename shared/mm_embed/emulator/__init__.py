"""A local emulator of the 360 FG-CLIP and VikingDB embedding v2 APIs.

It speaks both wire protocols on loopback (routes, bodies, limits, error codes, the
Volcengine signature, rate limits) and injects faults on demand, for tests and demos
without an account.

Its vectors are deterministic stand-ins, not real semantics: hashed character n-grams
for text, pixel statistics for images, a crop for a box (see :mod:`.encoders`). Similar
inputs get similar vectors and colour words line up with coloured pictures, so
retrieval order is testable, but nothing here understands language or images. Real
semantics come from the real APIs.

Each vector is a function of its own input alone: the same input gives the same bits
whatever else shares its request, in any process.

It is safe by default: it serves loopback only unless every credential it checks is
given explicitly, fetches image URLs only from its own samples and an allow-list,
authenticates a request before reading its body, and caps and times out bodies.

Quick start::

    from mm_embed.emulator import Emulator

    with Emulator() as emu:          # free loopback port, background thread
        emu.url, emu.api_key, emu.access_key, emu.secret_key, emu.token
        emu.log                      # RequestRecord per request
"""

from ..samples.pictures import SAMPLES, sample_png
from .app import create_app
from .config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_API_KEY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
    DEFAULT_TOKEN,
    FAULT_KINDS,
    EmulatorConfig,
)
from .server import AsyncEmulator, Emulator
from .state import RequestRecord

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_API_KEY",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "SAMPLES",
    "AsyncEmulator",
    "Emulator",
    "EmulatorConfig",
    "RequestRecord",
    "create_app",
    "sample_png",
]
