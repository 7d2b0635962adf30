"""``mm-embed explore``'s set-up: which collections it can read, and its HTTP limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from mm_embed import FGClipClient, VikingClient
from mm_embed.emulator import Emulator
from mm_embed.explore.app import MAX_UPLOAD_BYTES
from mm_embed.explore.cli import explore_main
from mm_embed.explore.collection_info import (
    CollectionInfo,
    read_collection_info,
    record_collection_info,
)
from mm_embed.explore.errors import SetupError
from mm_embed.explore.search import MAX_QUERY_CHARS
from mm_embed.explore.session import choose_engines
from mm_embed.hybrid.qdrant import QdrantHybrid

pytestmark = pytest.mark.usefixtures("no_provider_credentials")


@pytest.fixture
def unrecorded_store(tmp_path: Path, emulator: Emulator) -> Path:
    """A store written by QdrantHybrid directly: a text and a picture collection, no record."""
    from qdrant_client import QdrantClient

    from mm_embed.demo.pictures import PICTURES

    path = tmp_path / "store"
    qdrant = QdrantClient(path=str(path))
    with (
        VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url) as viking,
        FGClipClient(emulator.api_key, base_url=emulator.url) as fgclip,
    ):
        texts = QdrantHybrid.from_viking(qdrant, "texts", viking, "bge-m3")
        texts.add_texts(["kubectl rollout undo", "bread"], ids=["a", "b"])
        images = QdrantHybrid.from_fgclip(qdrant, "pictures", fgclip)
        images.add_images([PICTURES[0].png], ids=[PICTURES[0].id])
    qdrant.close()
    return path


def _explore(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = explore_main(["--port", "0", *argv])
    return status, capsys.readouterr().err


def test_a_missing_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = _explore(["--store", str(tmp_path / "nope")], capsys)
    assert status == 2 and "does not exist" in err


def test_store_and_server_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        explore_main(["--store", "x", "--qdrant-url", "http://localhost:6333"])
    assert stopped.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_unrecorded_collections_are_refused_with_the_fix(
    unrecorded_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _explore(["--store", str(unrecorded_store)], capsys)
    assert status == 2
    assert "records how it was embedded" in err and "pictures, texts" in err
    status, err = _explore(["--store", str(unrecorded_store), "--collection", "texts"], capsys)
    assert status == 2 and "pass --model" in err


def test_unrecorded_collections_are_read_from_their_shape(unrecorded_store: Path) -> None:
    from qdrant_client import QdrantClient

    qdrant = QdrantClient(path=str(unrecorded_store))
    try:
        texts = read_collection_info(qdrant, "texts", viking_model="bge-m3")
        assert (texts.provider, texts.model, texts.dimension, texts.sparse) == (
            "viking",
            "bge-m3",
            1024,
            True,
        )
        assert texts.engine is None
        pictures = read_collection_info(qdrant, "pictures")
        assert (pictures.provider, pictures.sparse) == ("fgclip", False)
        with pytest.raises(SetupError, match="no collection 'missing'"):
            read_collection_info(qdrant, "missing")
    finally:
        qdrant.close()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"format": 99}, "format 99 is not one this version reads"),
        (
            {
                **CollectionInfo("viking", "bge-m3", 1024, True).to_metadata()["mm_embed"],
                "provider": "openai",
            },
            "field 'provider' is 'openai'",
        ),
        (
            {
                **CollectionInfo("viking", "bge-m3", 1024, True).to_metadata()["mm_embed"],
                "dimension": "big",
            },
            "field 'dimension'",
        ),
        (
            {**CollectionInfo("viking", "no-such-model", 1024, True).to_metadata()["mm_embed"]},
            "cannot query",
        ),
        ({**CollectionInfo("viking", "bge-m3", 7, True).to_metadata()["mm_embed"]}, "cannot query"),
    ],
)
def test_a_record_it_cannot_interpret_is_refused(
    unrecorded_store: Path,
    record: dict[str, object],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from qdrant_client import QdrantClient

    qdrant = QdrantClient(path=str(unrecorded_store))
    qdrant.update_collection("texts", metadata={"mm_embed": record})
    qdrant.close()
    status, err = _explore(["--store", str(unrecorded_store), "--collection", "texts"], capsys)
    assert status == 2 and message in err, err


def test_engines_follow_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    api = CollectionInfo("fgclip", "fg-clip", 768, False, engine="api")
    emulated = CollectionInfo("viking", "bge-m3", 1024, True, engine="emulator")
    with pytest.raises(SetupError, match="set FGCLIP_API_KEY"):
        choose_engines([api, emulated], offline=False)
    monkeypatch.setenv("FGCLIP_API_KEY", "k")
    monkeypatch.setenv("VIKING_TOKEN", "t")
    assert choose_engines([api, emulated], offline=False) == (True, False)
    with pytest.raises(SetupError, match="drop --offline"):
        choose_engines([api], offline=True)
    unknown = CollectionInfo("viking", "bge-m3", 1024, True)
    assert choose_engines([unknown], offline=False) == (True, True)
    assert choose_engines([unknown], offline=True) == (False, False)
    with pytest.raises(SetupError, match="partly"):
        choose_engines(
            [api, CollectionInfo("fgclip", "fg-clip", 768, False, engine="emulator")], offline=False
        )


def test_record_round_trips(unrecorded_store: Path) -> None:
    from qdrant_client import QdrantClient

    info = CollectionInfo("viking", "bge-m3", 1024, True, engine="emulator")
    qdrant = QdrantClient(path=str(unrecorded_store))
    try:
        record_collection_info(qdrant, "texts", info)
        assert read_collection_info(qdrant, "texts") == info
    finally:
        qdrant.close()


def test_http_limits(demo_explorer: tuple[str, list[str]]) -> None:
    url = demo_explorer[0]
    with httpx.Client(base_url=url, timeout=30) as http:
        home = http.get("/")
        assert home.status_code == 200
        assert "script-src 'self'" in home.headers["content-security-policy"]
        long = http.get("/", params={"q": "x" * (MAX_QUERY_CHARS + 1)})
        assert long.status_code == 400 and "q: the query is too long" in long.text
        empty = http.post("/search/image", content=b"", headers={"content-type": "image/png"})
        assert empty.status_code == 400 and "no picture sent" in empty.text
        junk = http.post("/search/image", content=b"not a picture" * 10)
        assert junk.status_code == 400 and 'role="alert"' in junk.text
        huge = http.post("/search/image", content=b"\0" * (MAX_UPLOAD_BYTES + 1))
        assert huge.status_code == 413
        script = http.get("/explore.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith(
            "text/javascript"
        )


def test_a_qdrant_without_collection_metadata_is_a_clear_error() -> None:
    class OldQdrantClient:  # qdrant-client < 1.16: update_collection has no metadata
        def update_collection(self, collection_name: str) -> None:
            raise AssertionError("not reached")

    info = CollectionInfo("viking", "bge-m3", 1024, True)
    with pytest.raises(SetupError, match=r"needs qdrant-client and a Qdrant server >= 1\.16"):
        record_collection_info(OldQdrantClient(), "texts", info)
