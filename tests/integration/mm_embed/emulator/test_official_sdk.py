"""The official Volcengine SDK (volcengine 1.0.229) against the emulator."""

from __future__ import annotations

import numpy as np
import pytest

from mm_embed.emulator import Emulator

viking_db = pytest.importorskip("volcengine.viking_db")


def service(emu: Emulator, secret: str | None = None) -> object:
    return viking_db.VikingDBService(
        host=emu.viking_host,
        region="cn-north-1",
        ak=emu.access_key,
        sk=secret if secret is not None else emu.secret_key,
        scheme="http",
        connection_timeout=10,
        socket_timeout=10,
    )


def test_embedding_v2_with_right_keys(emu: Emulator) -> None:
    svc = service(emu)
    params = {"return_dense": True, "return_sparse": True, "return_token_usage": True}
    data = svc.embedding_v2(  # type: ignore[attr-defined]
        viking_db.EmbModel("bge-m3", params=params),
        [viking_db.RawData("text", text="hello"), viking_db.RawData("text", text="你好世界")],
    )
    dense = np.asarray(data["sentence_dense_embedding"])
    assert dense.shape == (2, 1024)
    assert np.allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)
    assert len(data["sentence_sparse_embedding"]) == 2
    assert all(k.isdigit() for k in data["sentence_sparse_embedding"][0])
    assert data["token_usage"]["total_tokens"] == 5
    # The SDK sends non-ASCII as \\u escapes: same vectors as a raw UTF-8 request.
    again = svc.embedding_v2(
        viking_db.EmbModel("bge-m3", params=params), viking_db.RawData("text", text="你好世界")
    )  # type: ignore[attr-defined]
    assert np.allclose(again["sentence_dense_embedding"][0], dense[1])
    routes = [r.route for r in emu.log]
    assert "ping" in routes and routes.count("viking") >= 2
    assert all(r.auth == "hmac" for r in emu.log if r.route == "viking")


def test_params_none_and_single_item(emu: Emulator) -> None:
    data = service(emu).embedding_v2(
        viking_db.EmbModel("bge-large-zh"), viking_db.RawData("text", text="x")
    )  # type: ignore[attr-defined]
    assert len(data["sentence_dense_embedding"][0]) == 1024
    assert "sentence_sparse_embedding" not in data


def test_wrong_secret_is_unauthorized(emu: Emulator) -> None:
    from volcengine.viking_db.exception import UnauthorizedException

    svc = service(emu, secret="not-the-secret")  # the ping in the constructor still succeeds
    with pytest.raises(UnauthorizedException) as info:
        svc.embedding_v2(viking_db.EmbModel("bge-m3"), [viking_db.RawData("text", text="hello")])  # type: ignore[attr-defined]
    assert info.value.code == 1000001


def test_sdk_error_mapping(emu: Emulator) -> None:
    from volcengine.viking_db.exception import CalcEmbeddingFailedException, InvalidRequestException

    svc = service(emu)
    with pytest.raises(CalcEmbeddingFailedException):
        svc.embedding_v2(viking_db.EmbModel("no-such-model"), [viking_db.RawData("text", text="x")])  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequestException):
        svc.embedding_v2(
            viking_db.EmbModel("bge-m3", params={"embedding_dimension": 7}),
            [viking_db.RawData("text", text="x")],
        )  # type: ignore[attr-defined]
