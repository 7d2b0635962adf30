"""``python -m mm_embed.emulator --port 0`` prints its address, serves, never logs secrets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mm_embed.emulator.cli import build_parser, config_from_args
from tests.integration._helpers import Served, serve_process


@pytest.fixture
def served() -> Iterator[Served]:
    with serve_process("--api-key", "cli-key-123", "--log-level", "info") as running:
        yield running


def test_port_zero_prints_listening_line(served: Served) -> None:
    url = served.url
    r = httpx.post(
        url + "/models/interface",
        json={
            "model": "fg-clip",
            "input_type": "text",
            "embedding_types": ["float"],
            "texts": ["hi"],
        },
        headers={"Authorization": "Bearer cli-key-123"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["context"]["code"] == 0
    assert (
        httpx.post(
            url + "/models/interface", json={}, headers={"Authorization": "Bearer nope"}, timeout=10
        ).status_code
        == 401
    )
    served.proc.terminate()
    served.proc.wait(timeout=10)
    time.sleep(0.2)
    logged = served.stderr_so_far()
    assert "fgclip /models/interface -> 200" in logged
    assert "cli-key-123" not in logged and "nope" not in logged


def test_options_map_to_config(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "--host", "127.0.0.1", "--port", "0", "--api-key", "K", "--access-key", "AK", "--secret-key", "SK",
            "--token", "T", "--latency-ms", "5", "--fault-rate", "0.25", "--faults", "429,reset",
            "--tpm", "1000", "--images-per-second", "3", "--seed", "9", "--tos-dir", str(tmp_path),
            "--retry-after", "0",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert (config.api_key, config.access_key, config.secret_key, config.token) == (
        "K",
        "AK",
        "SK",
        "T",
    )
    assert config.faults == ("429", "reset") and config.fault_rate == 0.25 and config.seed == 9
    assert (config.tpm, config.images_per_second, config.latency_ms, config.retry_after) == (
        1000,
        3,
        5,
        0,
    )
    assert config.tos_dir == tmp_path


def test_bad_options_rejected() -> None:
    parser = build_parser()
    for argv in (["--faults", "429,boom"], ["--fault-rate", "2"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
