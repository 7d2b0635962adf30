"""Serving beyond loopback needs explicit credentials: the defaults are public values."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mm_embed.emulator import Emulator, EmulatorConfig
from mm_embed.errors import ConfigurationError, MMEmbedError
from tests.integration._helpers import child_env

OWN = {"api_key": "k-1", "access_key": "AKLTmine", "secret_key": "s-1", "token": "t-1"}
OWN_FLAGS = [
    "--api-key",
    "k-1",
    "--access-key",
    "AKLTmine",
    "--secret-key",
    "s-1",
    "--token",
    "t-1",
]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "example.com"])
def test_python_api_refuses_public_bind_with_default_credentials(host: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Emulator(host=host)
    message = str(caught.value)
    assert "loopback" in message and "api_key" in message and "secret_key" in message
    assert isinstance(caught.value, MMEmbedError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("default", sorted(OWN))
def test_every_checked_credential_must_be_explicit(default: str) -> None:
    given = {k: v for k, v in OWN.items() if k != default}
    with pytest.raises(ConfigurationError, match=default):
        EmulatorConfig(host="0.0.0.0", **given)
    # Passing the public default value explicitly is no better than leaving it out.
    public = getattr(EmulatorConfig(), default)
    with pytest.raises(ConfigurationError, match=default):
        EmulatorConfig(host="0.0.0.0", **{**given, default: public})


def test_public_bind_allowed_with_explicit_credentials() -> None:
    config = EmulatorConfig(host="0.0.0.0", port=0, **OWN)
    assert config.host == "0.0.0.0"
    for secret in ("s-1", "t-1", "k-1"):
        assert secret not in repr(config)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_needs_nothing(host: str) -> None:
    assert EmulatorConfig(host=host).host == host


def run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_embed.emulator", "--port", "0", *argv],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )


def test_cli_refuses_public_bind_with_default_credentials() -> None:
    done = run_cli("--host", "0.0.0.0")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "listening" not in done.stdout
    assert "--api-key" in done.stderr and "--secret-key" in done.stderr
    assert "loopback" in done.stderr


def test_cli_names_only_the_missing_flags() -> None:
    done = run_cli("--host", "0.0.0.0", *OWN_FLAGS[:6])
    assert done.returncode == 2
    assert "--token" in done.stderr and "--api-key" not in done.stderr
    assert "s-1" not in done.stderr and "k-1" not in done.stderr
