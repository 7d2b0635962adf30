"""Server-side check of a VikingDB request's authentication.

HMAC mode recomputes the signature with :func:`mm_embed.signing.sign` from the received
method, path, query, body bytes and the values of the headers named in
``SignedHeaders``. The server sees header names lowercased, while the SDK's rule for
which headers are signed is case-sensitive, so names are restored to the capitalisation
the SDK uses (``Content-Type``, ``Host``, ``X-Date``, ``X-Content-Sha256``,
``X-Security-Token``, ``X-...``) before signing. Token mode compares
``Authorization: token=<T>`` with the configured token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from ..providers.viking.catalogue import SERVICE
from ..signing import parse_authorization, sign

__all__ = ["AuthFailure", "verify"]

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


def verify(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
    token: str,
    region: str,
    clock_skew_s: float,
    now: dt.datetime | None = None,
) -> str:
    """Return the auth mode (``"hmac"`` or ``"token"``) or raise :class:`AuthFailure`.

    ``headers`` is a case-insensitive mapping (Starlette's ``Headers``) or one with
    lowercase keys.
    """
    value = headers.get("authorization")
    if not value:
        raise AuthFailure("no Authorization header")
    if value.startswith("token="):
        if hmac.compare_digest(value[len("token=") :].encode(), token.encode()):
            return "token"
        raise AuthFailure("wrong token")
    parsed = parse_authorization(value)
    if parsed is None:
        raise AuthFailure("Authorization is neither HMAC-SHA256 nor token=")
    if not hmac.compare_digest(parsed.access_key.encode(), access_key.encode()):
        raise AuthFailure("unknown access key")
    if parsed.service != SERVICE or parsed.region != region:
        raise AuthFailure(f"credential scope is not {region}/{SERVICE}")
    x_date = headers.get("x-date") or ""
    try:
        signed_at = dt.datetime.strptime(x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthFailure("missing or malformed X-Date") from None
    moment = now or dt.datetime.now(dt.UTC)
    if abs((moment - signed_at).total_seconds()) > clock_skew_s:
        raise AuthFailure("X-Date is outside the accepted clock skew")
    if parsed.date != x_date[:8]:
        raise AuthFailure("credential date does not match X-Date")
    body_hash = hashlib.sha256(body).hexdigest()
    if headers.get("x-content-sha256") != body_hash:
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
        x_date=x_date,
        query=grouped,
        session_token=session_token,
    )
    if expected.signed_headers != ";".join(parsed.signed_headers):
        raise AuthFailure("SignedHeaders do not match the headers the SDK would sign")
    if not hmac.compare_digest(expected.signature.encode(), parsed.signature.encode()):
        raise AuthFailure("signature mismatch")
    return "hmac"
