"""The one exception tree of mm-embed.

Every error the package raises derives from :class:`MMEmbedError`::

    MMEmbedError
    ├── InputError (also ValueError)      bad input, caught before anything is sent
    ├── ConfigurationError (also ValueError)  missing credentials or a bad setting
    ├── ClientClosedError (also RuntimeError) a call on a client that was closed
    ├── BudgetError                       a shared quota store failed (file, Redis, Ray)
    ├── ResponseFormatError               the provider answered with a body we cannot read
    ├── APIConnectionError                the request never got an HTTP answer
    │   └── APITimeoutError               ... because it timed out
    └── APIStatusError                    the provider answered with an error
        ├── BadRequestError               HTTP 400 / Viking 1000003
        ├── AuthenticationError           HTTP 401 / Viking 1000001
        ├── PermissionDeniedError         HTTP 403 / Viking 1000002
        ├── NotFoundError                 HTTP 404 / Viking 1000025 (unknown model, wrong modality)
        ├── RateLimitError                HTTP 429 / Viking 1000029
        └── InternalServerError           HTTP 5xx

A provider error that arrives with HTTP 200 (FG-CLIP ``context.code != 0``) is still an
:class:`APIStatusError`.

Batch context: when a call made of several wire requests fails, the raised error carries
``input_indices`` (the caller's inputs in the failed request), ``failed_indices`` (every
caller input with no result), and ``partial_result`` (an ``EmbeddingResult`` holding the
inputs that did succeed, with ``partial_result.input_indices`` saying which). Nothing is
silently dropped: resend ``failed_indices`` to finish the job.

Secrets never appear in messages: errors are built from provider messages and our own
text, never from request headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import EmbeddingResult

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "ClientClosedError",
    "ConfigurationError",
    "InputError",
    "InternalServerError",
    "MMEmbedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
]


class MMEmbedError(Exception):
    """Root of every error raised by mm-embed."""

    message: str
    #: Caller input indices that were part of the failed wire request.
    input_indices: tuple[int, ...]
    #: Every caller input index left without a result when the call gave up.
    failed_indices: tuple[int, ...]
    #: Results of the inputs that did succeed before the call gave up (or ``None``).
    partial_result: EmbeddingResult | None

    def __init__(self, message: str, *, input_indices: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.input_indices = tuple(input_indices)
        self.failed_indices = tuple(input_indices)
        self.partial_result = None

    def __str__(self) -> str:
        text = self.message
        if self.input_indices:
            text += f" (inputs {_format_indices(self.input_indices)})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions with keyword-only constructors do not pickle by default.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[MMEmbedError], state: dict[str, Any]) -> MMEmbedError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


def _format_indices(indices: Sequence[int], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", ... ({len(indices)} in all)" if len(indices) > limit else "")


class InputError(MMEmbedError, ValueError):
    """An input breaks a wire rule; raised before any request is sent.

    ``field`` names the offending parameter, ``index`` the position of the offending
    item in the caller's list (``None`` when the whole argument is wrong), and ``limit``
    the rule that was broken, when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        index: int | None = None,
        limit: object | None = None,
        location: str | None = None,
    ) -> None:
        # ``location`` overrides the displayed place for nested items (``boxes[1][0]``).
        if location is None:
            location = field or ""
            if index is not None:
                location += f"[{index}]"
        text = f"{location}: {message}" if location else message
        if limit is not None:
            text += f" (limit: {limit})"
        super().__init__(text, input_indices=() if index is None else (index,))
        self.field = field
        self.index = index
        self.limit = limit

    def __str__(self) -> str:
        return self.message


class ConfigurationError(MMEmbedError, ValueError):
    """A client cannot be built: missing credentials, conflicting options."""


class ClientClosedError(MMEmbedError, RuntimeError):
    """A call was made on a client after ``close()`` / ``aclose()`` (or its ``with``
    block): its connections are gone. Create a new client."""


class BudgetError(MMEmbedError):
    """The budget's shared store failed: a file that cannot be opened or stays locked,
    an unreachable Redis server, a Ray actor that cannot be reached."""


class ResponseFormatError(MMEmbedError):
    """The provider's reply could not be read (not JSON, missing fields, wrong shapes)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        input_indices: Sequence[int] = (),
    ) -> None:
        super().__init__(message, input_indices=input_indices)
        self.status_code = status_code
        self.request_id = request_id


class APIConnectionError(MMEmbedError):
    """The request got no HTTP answer (DNS, refused, reset, protocol error)."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(MMEmbedError):
    """The provider answered with an error.

    Attributes: ``status_code`` (HTTP status), ``code`` (the provider's own code: FG-CLIP
    ``context.code``, Viking ``code``), ``message`` (the provider's message),
    ``request_id`` (quote it to the provider's support), ``input_indices``.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: int | str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        input_indices: Sequence[int] = (),
    ) -> None:
        super().__init__(message, input_indices=input_indices)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.code is not None:
            parts.append(f"code {self.code}")
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return f"{super().__str__()} [{', '.join(parts)}]"


class BadRequestError(APIStatusError):
    """HTTP 400 or Viking 1000003: the provider refused the request as malformed."""


class AuthenticationError(APIStatusError):
    """HTTP 401 or Viking 1000001: missing, wrong or expired credentials."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403 or Viking 1000002: the credentials may not use this resource."""


class NotFoundError(APIStatusError):
    """HTTP 404 or Viking 1000025: unknown model, or an input type the model does not take."""


class RateLimitError(APIStatusError):
    """HTTP 429 or Viking 1000029: over the provider's quota; retried by default."""


class InternalServerError(APIStatusError):
    """HTTP 5xx: the provider failed; retried by default."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}

_BY_VIKING_CODE: dict[int, type[APIStatusError]] = {
    1000003: BadRequestError,
    1000001: AuthenticationError,
    1000002: PermissionDeniedError,
    1000025: NotFoundError,
    1000029: RateLimitError,
}


def status_error_class(status_code: int, code: int | str | None = None) -> type[APIStatusError]:
    """Pick the error class for a reply: the provider code first, then the HTTP status."""
    if isinstance(code, int):
        if code in _BY_VIKING_CODE:
            return _BY_VIKING_CODE[code]
        # FG-CLIP reports some errors with HTTP 200 and an HTTP-like code in the body.
        if status_code == 200 and 400 <= code < 600:
            status_code = code
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)


_ITEM_REF = re.compile(r"\b(texts|images|image_boxes)\[(\d+)\]")


def to_caller_indices(error: APIStatusError, items: Sequence[int]) -> APIStatusError:
    """Rewrite ``texts[k]`` / ``images[k]`` / ``image_boxes[k]`` in an
    FG-CLIP message, where ``k`` counts within one wire request, into the caller's
    index ``items[k]``: a batched call's error then names the input the caller passed."""

    def swap(match: re.Match[str]) -> str:
        k = int(match.group(2))
        return f"{match.group(1)}[{int(items[k])}]" if k < len(items) else match.group(0)

    error.message = _ITEM_REF.sub(swap, error.message)
    error.args = (error.message,)
    return error
