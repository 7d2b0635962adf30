"""Small request helpers for the emulator tests (plain httpx + the project's signer)."""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

import httpx
import orjson
from PIL import Image

from mm_embed.emulator import Emulator
from mm_embed.signing import format_x_date, sign

FG_PATH = "/models/interface"
VIKING_PATH = "/api/data/embedding/version/2"
TIMEOUT = httpx.Timeout(20.0)


def fg_post(
    emu: Emulator, body: Any, *, key: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"accept": "application/json"}
    if key != "":
        sent["Authorization"] = f"Bearer {emu.api_key if key is None else key}"
    sent.update(headers or {})
    return httpx.post(emu.url + FG_PATH, json=body, headers=sent, timeout=TIMEOUT)


def fg_ok(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    r = fg_post(emu, body)
    payload = r.json()
    assert r.status_code == 200, r.text
    assert payload["context"]["code"] == 0, payload["context"]
    return payload["data"]  # type: ignore[no-any-return]


def fg_error(emu: Emulator, body: Any, *, status: int = 200, code: int = 400) -> str:
    r = fg_post(emu, body)
    payload = r.json()
    assert r.status_code == status, r.text
    assert payload["data"] is None
    assert payload["context"]["code"] == code, payload
    assert isinstance(payload["context"]["timestamp"], int)
    return payload["context"]["message"]  # type: ignore[no-any-return]


def text_body(texts: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "model": "fg-clip",
        "input_type": "text",
        "embedding_types": ["float"],
        "texts": texts,
        **extra,
    }


def image_body(images: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "model": "fg-clip",
        "input_type": "image",
        "embedding_types": ["float"],
        "images": images,
        **extra,
    }


def png(
    colour: tuple[int, int, int] = (220, 30, 30), size: tuple[int, int] = (64, 48), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(data: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def b64_media(data: bytes) -> str:
    return "base64://" + base64.b64encode(data).decode()


def signed_headers(
    emu: Emulator,
    raw: bytes,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    x_date: str | None = None,
    query: dict[str, str] | None = None,
    session_token: str | None = None,
    method: str = "POST",
    path: str = VIKING_PATH,
) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Host": emu.viking_host}
    parts = sign(
        access_key=access_key or emu.access_key,
        secret_key=secret_key or emu.secret_key,
        region=emu.region,
        service="air",
        method=method,
        path=path,
        headers=headers,
        body=raw,
        x_date=x_date or format_x_date(dt.datetime.now(dt.UTC)),
        query=query,
        session_token=session_token,
    )
    return {**headers, **parts.headers_added}


def viking_post(
    emu: Emulator,
    body: Any = None,
    *,
    raw: bytes | None = None,
    send_raw: bytes | None = None,
    token: str | None = None,
    query: dict[str, str] | None = None,
    **sign_args: Any,
) -> httpx.Response:
    """Sign ``raw`` (default: ``body`` as JSON) and send ``send_raw`` (default: the same)."""
    data = raw if raw is not None else orjson.dumps(body)
    if token is not None:
        headers = {"Content-Type": "application/json", "Authorization": f"token={token}"}
    else:
        headers = signed_headers(emu, data, query=query, **sign_args)
    url = emu.url + VIKING_PATH
    return httpx.post(
        url,
        content=send_raw if send_raw is not None else data,
        headers=headers,
        params=query,
        timeout=TIMEOUT,
    )


def viking_ok(emu: Emulator, body: Any) -> dict[str, Any]:
    r = viking_post(emu, body)
    payload = r.json()
    assert r.status_code == 200, r.text
    assert payload["code"] == 0 and payload["message"] == "success"
    assert payload["request_id"]
    return payload["data"]  # type: ignore[no-any-return]


def viking_error(emu: Emulator, body: Any, *, code: int, status: int, **kwargs: Any) -> str:
    r = viking_post(emu, body, **kwargs)
    payload = r.json()
    assert r.status_code == status, r.text
    assert payload["code"] == code, payload
    assert payload["request_id"]
    return payload["message"]  # type: ignore[no-any-return]


def vbody(model: str, data: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {"model": {"model_name": model, "params": params}, "data": data}


def texts(*values: str) -> list[dict[str, Any]]:
    return [{"data_type": "text", "text": v} for v in values]
