"""The image fetcher reads only from an allow-list and answers every refusal alike, so
it cannot be used to tell an open port from a closed one (a port scanner)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mm_embed.emulator import Emulator, EmulatorConfig, sample_png
from mm_embed.emulator.cli import build_parser, config_from_args
from mm_embed.emulator.media import MediaError, MediaFetcher
from tests.integration._helpers import (
    ImageHost,
    fg_error,
    fg_ok,
    free_port,
    image_body,
    silent_listener,
    solid_png,
    vbody,
    viking_error,
    viking_ok,
)

ROUTES = {
    "/red.png": (200, solid_png()),
    "/words.png": (200, b"hello, not an image"),
    "/moved.png": (302, b""),
    "/boom.png": (500, b"oops"),
}


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageHost]:
    with ImageHost(ROUTES) as host:
        yield host


def vision(url: str) -> dict[str, Any]:
    return vbody("doubao-embedding-vision", [{"data_type": "image", "image": url}])


def test_other_loopback_servers_are_not_fetched_by_default(
    emulator: Emulator, image_host: ImageHost
) -> None:
    url = f"http://localhost:{image_host.port}/red.png"
    assert fg_error(emulator, image_body([url])) == "images[0] could not be downloaded"
    message = viking_error(emulator, vision(url), code=1000003, status=400)
    assert message == "invalid request:data[0].image could not be downloaded"
    assert image_host.hits == []  # refused before any connection
    # Its own samples stay available.
    assert fg_ok(emulator, image_body([emulator.sample_url("red-circle")]))["images"]


def test_allowed_host_is_fetched(make_emulator: Any, image_host: ImageHost) -> None:
    emu = make_emulator(fetch_allow=(f"localhost:{image_host.port}",))
    url = f"http://localhost:{image_host.port}/red.png"
    before = len(image_host.hits)
    assert fg_ok(emu, image_body([url]))["images"][0]["format"] == "PNG"
    assert viking_ok(emu, vision(url))["sentence_dense_embedding"]
    assert image_host.hits[before:] == ["/red.png", "/red.png"]


def test_host_without_port_allows_every_port(make_emulator: Any, image_host: ImageHost) -> None:
    emu = make_emulator(fetch_allow=("localhost",))
    fg_ok(emu, image_body([f"http://localhost:{image_host.port}/red.png"]))
    # Host names match literally: 127.0.0.1 is another entry.
    refused = viking_error(
        emu, vision(f"http://127.0.0.1:{image_host.port}/red.png"), code=1000003, status=400
    )
    assert refused == "invalid request:data[0].image could not be downloaded"


def test_every_refusal_is_the_same(make_emulator: Any, image_host: ImageHost) -> None:
    """Not allowed, closed port, no answer (timeout), redirect, HTTP error, not an image:
    one message, so the replies say nothing about what is listening where."""
    silent = silent_listener()
    closed = free_port()
    try:
        emu = make_emulator(
            fetch_allow=(
                f"localhost:{image_host.port}",
                f"localhost:{closed}",
                f"localhost:{silent.getsockname()[1]}",
                f"127.0.0.1:{closed}",
            ),
            fetch_timeout_s=0.5,
        )
        other = free_port()
        urls = [
            f"http://localhost:{other}/a.png",  # not allowed (nothing listens either)
            f"http://localhost:{image_host.port}/words.png",  # not an image
            f"http://localhost:{image_host.port}/missing.png",  # 404
            f"http://localhost:{image_host.port}/moved.png",  # redirects are not followed
            f"http://localhost:{image_host.port}/boom.png",  # 500
            f"http://localhost:{closed}/a.png",  # allowed, closed port
            f"http://localhost:{silent.getsockname()[1]}/a.png",  # allowed, never answers
            f"https://localhost:{image_host.port}/red.png",  # TLS to a plain server
            f"http://localhost:{emu.port}/samples/nothing.png",  # own server, no such sample
            f"http://localhost:{emu.port}/models/interface.png",  # own server, not a sample
        ]
        fg_messages = {fg_error(emu, image_body([url])) for url in urls}
        assert fg_messages == {"images[0] could not be downloaded"}
        vk_urls = [*urls, f"http://127.0.0.1:{closed}/a", f"http://127.0.0.1:{other}/a"]
        vk_messages = {viking_error(emu, vision(url), code=1000003, status=400) for url in vk_urls}
        assert vk_messages == {"invalid request:data[0].image could not be downloaded"}
    finally:
        silent.close()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("[Errno -2] Name or service not known"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed"),
    ],
    ids=["dns", "refused", "timeout", "protocol"],
)
def test_fetcher_hides_why_a_fetch_failed(failure: Exception) -> None:
    """A DNS failure cannot be provoked on loopback alone: the fetcher's transport raises
    what httpx raises for it, and the refusal is the same as for every other failure."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    fetcher = MediaFetcher(
        timeout_s=1.0,
        tos_dir=None,
        allow=("no-such-host.invalid",),
        transport=httpx.MockTransport(fail),
    )
    with pytest.raises(MediaError) as caught:
        asyncio.run(fetcher.fetch_url("http://no-such-host.invalid/a.png"))
    with pytest.raises(MediaError) as refused:
        asyncio.run(fetcher.fetch_url("http://not-listed.invalid/a.png"))
    assert caught.value.message == refused.value.message
    assert "invalid" not in caught.value.message and "Errno" not in caught.value.message


def test_own_samples_served_without_a_request(emulator: Emulator) -> None:
    fetcher = emulator.state.fetcher
    url = f"http://127.0.0.1:{emulator.port}/samples/red-circle.png"
    assert asyncio.run(fetcher.fetch_url(url)) == sample_png("red-circle")


def test_cli_flag_is_repeatable() -> None:
    args = build_parser().parse_args(
        [
            "--fetch-allow",
            "localhost:8080",
            "--fetch-allow",
            "images.test",
            "--fetch-allow",
            "[::1]:81",
        ]
    )
    assert config_from_args(args).fetch_allow == ("localhost:8080", "images.test", "[::1]:81")
    assert config_from_args(build_parser().parse_args([])).fetch_allow == ()


@pytest.mark.parametrize("entry", ["localhost:http", "localhost:0", "localhost:70000", "", "a/b"])
def test_bad_allow_entries_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="fetch_allow"):
        EmulatorConfig(fetch_allow=(entry,))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fetch-allow", entry])
