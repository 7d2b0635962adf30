"""Server-side check of a VikingDB request's authentication, in two steps.

:func:`check_headers` runs before the body is read: the ``Authorization`` form, the
access key, the credential scope, the ``X-Date`` skew, the ``X-Content-Sha256`` format
and, when one is configured, the session token. Token mode (``Authorization:
token=<T>``) is settled there entirely. :func:`check_body` then checks the body hash and
recomputes the signature with :func:`mm_embed.signing.sign` from the received method,
path, query, body bytes and the values of the headers named in ``SignedHeaders``.

The server sees header names lowercased, while the SDK's rule for which headers are
signed is case-sensitive, so names are restored to the capitalisation the SDK uses
(``Content-Type``, ``Host``, ``X-Date``, ``X-Content-Sha256``, ``X-Security-Token``,
``X-...``) before signing. A session token is signed the SDK's way: the signer sets
``X-Security-Token`` and signs it with the other ``X-`` headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..providers.viking.catalogue import SERVICE
from ..signing import ParsedAuthorization, parse_authorization, sign
from .config import EmulatorConfig

__all__ = ["AuthFailure", "HeaderAuth", "check_body", "check_headers"]

_SDK_NAMES = {"content-type": "Content-Type", "content-md5": "Content-Md5", "host": "Host"}
# The signer sets these itself from its arguments, so they are passed that way.
_SET_BY_SIGNER = ("x-date", "x-content-sha256", "x-security-token")


class AuthFailure(Exception):
    """Why a request is not authenticated (for the log; the client only sees
    ``unauthorized``). Never contains a secret or a signature."""


def _sdk_name(lower: str) -> str:
    if lower in _SDK_NAMES:
        return _SDK_NAMES[lower]
    if lower.startswith("x-"):
        return "X-" + "-".join(part.capitalize() for part in lower[2:].split("-"))
    return lower


@dataclass(frozen=True)
class HeaderAuth:
    """What :func:`check_headers` accepted: ``mode`` is ``"hmac"`` or ``"token"``."""

    mode: str
    parsed: ParsedAuthorization | None = None
    x_date: str = ""


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def check_headers(
    headers: Mapping[str, str], config: EmulatorConfig, now: dt.datetime | None = None
) -> HeaderAuth:
    """Every check that needs no body, against the credentials, region, clock skew and
    session token of ``config``; :class:`AuthFailure` when one fails.

    ``headers`` is a case-insensitive mapping (Starlette's ``Headers``) or one with
    lowercase keys.
    """
    value = headers.get("authorization")
    if not value:
        raise AuthFailure("no Authorization header")
    if value.startswith("token="):
        if hmac.compare_digest(value[len("token=") :].encode(), config.token.encode()):
            return HeaderAuth("token")
        raise AuthFailure("wrong token")
    parsed = parse_authorization(value)
    if parsed is None:
        raise AuthFailure("Authorization is neither HMAC-SHA256 nor token=")
    if not hmac.compare_digest(parsed.access_key.encode(), config.access_key.encode()):
        raise AuthFailure("unknown access key")
    if parsed.service != SERVICE or parsed.region != config.region:
        raise AuthFailure(f"credential scope is not {config.region}/{SERVICE}")
    x_date = headers.get("x-date") or ""
    try:
        signed_at = dt.datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthFailure("missing or malformed X-Date") from None
    moment = now or dt.datetime.now(dt.UTC)
    if abs((moment - signed_at).total_seconds()) > config.clock_skew_s:
        raise AuthFailure("X-Date is outside the accepted clock skew")
    if parsed.date != x_date[:8]:
        raise AuthFailure("credential date does not match X-Date")
    if not _SHA256_HEX.match(headers.get("x-content-sha256") or ""):
        raise AuthFailure("missing or malformed X-Content-Sha256")
    if config.session_token is not None:
        _check_session_token(headers, parsed, config.session_token)
    return HeaderAuth("hmac", parsed, x_date)


def _check_session_token(
    headers: Mapping[str, str], parsed: ParsedAuthorization, expected: str
) -> None:
    sent = headers.get("x-security-token")
    if sent is None:
        raise AuthFailure("no X-Security-Token (temporary credentials need their session token)")
    if "x-security-token" not in parsed.signed_headers:
        raise AuthFailure("X-Security-Token is not signed")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise AuthFailure("wrong X-Security-Token")


def check_body(
    auth: HeaderAuth,
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secret_key: str,
) -> None:
    """The body hash and the signature of an ``auth`` from :func:`check_headers`."""
    parsed = auth.parsed
    if parsed is None:
        return  # token mode: nothing covers the body
    if headers.get("x-content-sha256") != hashlib.sha256(body).hexdigest():
        raise AuthFailure("X-Content-Sha256 does not match the body")
    signed_headers: dict[str, str] = {}
    for name in parsed.signed_headers:
        if name in _SET_BY_SIGNER:
            continue
        header_value = headers.get(name)
        if header_value is None:
            raise AuthFailure(f"signed header {name} is missing")
        signed_headers[_sdk_name(name)] = header_value
    session_token = (
        headers.get("x-security-token") if "x-security-token" in parsed.signed_headers else None
    )
    grouped: dict[str, list[str]] = {}
    for key, item in query:
        grouped.setdefault(key, []).append(item)
    expected = sign(
        access_key=parsed.access_key,
        secret_key=secret_key,
        region=parsed.region,
        service=parsed.service,
        method=method,
        path=path,
        headers=signed_headers,
        body=body,
        x_date=auth.x_date,
        query=grouped,
        session_token=session_token,
    )
    if expected.signed_headers != ";".join(parsed.signed_headers):
        raise AuthFailure("SignedHeaders do not match the headers the SDK would sign")
    if not hmac.compare_digest(expected.signature.encode(), parsed.signature.encode()):
        raise AuthFailure("signature mismatch")
