"""Volcengine OpenAPI request signature (HMAC-SHA256), sans-I/O.

A byte-for-byte restatement of the official SDK's ``SignerV4`` (volcengine 1.0.229), as
described in the project's signing spec. Pure functions: strings and bytes in, strings
out. :class:`mm_embed.auth.VolcengineSignatureAuth` applies them to ``httpx`` requests
and the emulator uses them to verify signatures.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = [
    "ALGORITHM",
    "EMPTY_BODY_SHA256",
    "SignedParts",
    "canonical_path",
    "canonical_query",
    "format_x_date",
    "parse_authorization",
    "sha256_hex",
    "sign",
    "signing_key",
]

ALGORITHM = "HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
_PATH_SAFE = "/_.-~"
_QUERY_SAFE = "-_.~"

QueryValue = str | Sequence[str]


@dataclass(frozen=True)
class SignedParts:
    """Every intermediate of one signature, for tests and debugging (contains no secret)."""

    x_date: str
    body_sha256: str
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    signature: str
    authorization: str
    #: Headers the signer sets on the request (X-Date, X-Content-Sha256, ...).
    headers_added: dict[str, str]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def format_x_date(moment: datetime) -> str:
    """``YYYYMMDD'T'HHMMSS'Z'`` in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def canonical_path(path: str) -> str:
    """Percent-encode the path's UTF-8 bytes, keeping ``A-Za-z0-9_.-~/``; empty -> ``/``."""
    return quote(path or "/", safe=_PATH_SAFE)


def canonical_query(query: Mapping[str, QueryValue]) -> str:
    """Keys sorted by raw text; a list value yields one pair per element, in order."""
    pairs: list[str] = []
    for key in sorted(query):
        value = query[key]
        values = [value] if isinstance(value, str) else list(value)
        for item in values:
            pairs.append(f"{quote(key, safe=_QUERY_SAFE)}={quote(item, safe=_QUERY_SAFE)}")
    return "&".join(pairs)


def _is_signed_header(name: str) -> bool:
    # Case-sensitive on purpose: the SDK signs "Content-Type" but not "content-type".
    return name in ("Content-Type", "Content-Md5", "Host") or name.startswith("X-")


def _signed_host(value: str) -> str:
    host, sep, port = value.partition(":")
    return host if sep and port in ("80", "443") else value


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """``kSigning`` of the key chain: date, region, service, ``"request"``."""
    k_date = _hmac(secret_key.encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, "request")


def sign(
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    x_date: str,
    query: Mapping[str, QueryValue] | None = None,
    session_token: str | None = None,
) -> SignedParts:
    """Sign one request.

    ``headers`` are the request's headers just before signing, with their exact name
    casing (the SDK's rule for which headers are signed is case-sensitive). Returns the
    headers to add (``X-Date``, ``X-Content-Sha256``, ``X-Security-Token``,
    ``Content-Type`` for a non-GET without one, ``Authorization``) and every
    intermediate value.
    """
    body_hash = sha256_hex(body)
    added: dict[str, str] = {"X-Date": x_date}
    if session_token:
        added["X-Security-Token"] = session_token
    added["X-Content-Sha256"] = body_hash
    all_headers = dict(headers)
    all_headers.update(added)
    if method.upper() != "GET" and not any(k.lower() == "content-type" for k in all_headers):
        added["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        all_headers["Content-Type"] = added["Content-Type"]

    signed: dict[str, str] = {}
    for name, value in all_headers.items():
        if _is_signed_header(name):
            signed[name.lower()] = _signed_host(value) if name == "Host" else value
    names = sorted(signed)
    header_block = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_headers = ";".join(names)

    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_path(path),
            canonical_query(query or {}),
            header_block,
            signed_headers,
            body_hash,
        ]
    )
    date = x_date[:8]
    scope = f"{date}/{region}/{service}/request"
    string_to_sign = "\n".join(
        [ALGORITHM, x_date, scope, sha256_hex(canonical_request.encode("utf-8"))]
    )
    signature = hmac.new(
        signing_key(secret_key, date, region, service),
        string_to_sign.encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    added["Authorization"] = authorization
    return SignedParts(
        x_date=x_date,
        body_sha256=body_hash,
        canonical_request=canonical_request,
        string_to_sign=string_to_sign,
        signed_headers=signed_headers,
        signature=signature,
        authorization=authorization,
        headers_added=added,
    )


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Parse an ``HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` header.

    Returns ``None`` when the value is not in that form.
    """
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(", "):
        key, sep, item = part.partition("=")
        if not sep:
            return None
        fields[key.strip()] = item.strip()
    try:
        credential = fields["Credential"].split("/")
        access_key, date, region, service, terminator = credential
        if terminator != "request":
            return None
        return ParsedAuthorization(
            access_key=access_key,
            date=date,
            region=region,
            service=service,
            signed_headers=tuple(fields["SignedHeaders"].split(";")),
            signature=fields["Signature"],
        )
    except (KeyError, ValueError):
        return None
