"""``httpx.Auth`` classes for both providers.

* :class:`BearerAuth` - FG-CLIP's ``Authorization: Bearer <key>``.
* :class:`VolcengineSignatureAuth` - Viking's HMAC-SHA256 request signature; it needs the
  exact body bytes, so ``requires_request_body = True``. Every attempt is signed afresh
  (a retry gets a new ``X-Date``).
* :class:`VikingTokenAuth` - Viking's pre-issued ``Authorization: token=<token>``.

Secrets are held as :class:`pydantic.SecretStr` and never appear in ``repr``; the
classes refuse to pickle (a pickle of a ``SecretStr`` holds the plain value).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx
from pydantic import SecretStr

from .signing import format_x_date, sign

__all__ = ["BearerAuth", "VikingTokenAuth", "VolcengineSignatureAuth"]


def _secret(value: str | SecretStr) -> SecretStr:
    return value if isinstance(value, SecretStr) else SecretStr(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _NoPickle:
    """Credentials stay in the process that was given them: no pickle carries them.
    Copies share the (immutable) credentials."""

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} holds credentials and is not picklable; "
            "build a new one where it is needed"
        )

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class _AuthorizationHeader(_NoPickle, httpx.Auth):
    """Puts ``PREFIX + secret`` in the ``Authorization`` header; ``SECRET_NAME`` is the
    constructor argument, shown masked in ``repr``."""

    PREFIX: str
    SECRET_NAME: str

    def __init__(self, secret: str | SecretStr) -> None:
        self._secret = _secret(secret)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.PREFIX + self._secret.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.SECRET_NAME}=SecretStr('**********'))"


class BearerAuth(_AuthorizationHeader):
    """``Authorization: Bearer <api key>``."""

    PREFIX, SECRET_NAME = "Bearer ", "api_key"

    def __init__(self, api_key: str | SecretStr) -> None:
        super().__init__(api_key)


class VikingTokenAuth(_AuthorizationHeader):
    """``Authorization: token=<token>``, the pre-issued token of the provider's examples."""

    PREFIX, SECRET_NAME = "token=", "token"

    def __init__(self, token: str | SecretStr) -> None:
        super().__init__(token)


class VolcengineSignatureAuth(_NoPickle, httpx.Auth):
    """Sign requests the way the official Volcengine SDK (1.0.229) does.

    ``clock`` returns the current time (UTC); inject it to reproduce a signature.
    """

    requires_request_body = True

    def __init__(
        self,
        access_key: str | SecretStr,
        secret_key: str | SecretStr,
        *,
        region: str = "cn-north-1",
        service: str = "air",
        session_token: str | SecretStr | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._access_key = _secret(access_key)
        self._secret_key = _secret(secret_key)
        self._session_token = _secret(session_token) if session_token else None
        self.region = region
        self.service = service
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # Header names keep the casing they were set with: the SDK's signed-header rule is
        # case-sensitive ("Content-Type" is signed, "content-type" is not).
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in request.headers.raw
            if name.lower() not in (b"authorization", b"content-length")
        }
        query: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            query.setdefault(key, []).append(value)
        parts = sign(
            access_key=self._access_key.get_secret_value(),
            secret_key=self._secret_key.get_secret_value(),
            region=self.region,
            service=self.service,
            method=request.method,
            path=request.url.path,
            headers=headers,
            body=request.content,
            x_date=format_x_date(self._clock()),
            query=query,
            session_token=self._session_token.get_secret_value() if self._session_token else None,
        )
        for name, value in parts.headers_added.items():
            request.headers[name] = value
        yield request

    def __repr__(self) -> str:
        return f"VolcengineSignatureAuth(region={self.region!r}, service={self.service!r}, credentials=SecretStr('**********'))"
