"""Configuration, in one place: environment variables, credential precedence, defaults
and the small validators every layer uses.

The core clients, both framework adapters, bulk embedding and the CLI read their
settings through this module, so a variable name, a default or a precedence rule is
spelled once, here.

Environment variables (:class:`EnvVar`):

==========================  ==============================================================
``FGCLIP_API_KEY``          FG-CLIP API key (``Authorization: Bearer``)
``FGCLIP_BASE_URL``         FG-CLIP endpoint (default ``https://api.research.360.cn``)
``VOLC_ACCESSKEY``          Volcengine access key (the official SDK's name)
``VOLC_SECRETKEY``          Volcengine secret key
``VOLC_SESSIONTOKEN``       Volcengine session token of temporary (STS) credentials
``VIKING_TOKEN``            a pre-issued Viking token (``Authorization: token=...``)
``VIKING_BASE_URL``         Viking endpoint (default ``https://api-vikingdb.volces.com``)
``MM_EMBED_BUDGET``         the shared quota budget: ``memory://``, ``file:///path``,
                            ``redis://host:port/db``
==========================  ==============================================================

Precedence, for every setting: an explicit argument, then the environment variable
(an empty variable counts as unset), then the default. Viking credentials: an explicit
``token``, else an access key / secret key pair (arguments or environment), else
``VIKING_TOKEN``.

Defaults are the one table :data:`DEFAULTS` (a :class:`Defaults`).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from .errors import ConfigurationError

__all__ = [
    "DEFAULTS",
    "Defaults",
    "EnvVar",
    "FGClipCredentials",
    "VikingCredentials",
    "account_id",
    "env_value",
    "non_negative_int",
    "optional_positive",
    "positive_int",
    "positive_number",
    "redact_url",
    "resolve_fgclip_credentials",
    "resolve_secret",
    "resolve_str",
    "resolve_viking_credentials",
    "viking_credentials_problem",
]


class EnvVar(StrEnum):
    """The environment variables mm-embed reads (the value is the variable's name)."""

    FGCLIP_API_KEY = "FGCLIP_API_KEY"
    FGCLIP_BASE_URL = "FGCLIP_BASE_URL"
    VOLC_ACCESSKEY = "VOLC_ACCESSKEY"
    VOLC_SECRETKEY = "VOLC_SECRETKEY"
    VOLC_SESSIONTOKEN = "VOLC_SESSIONTOKEN"
    VIKING_TOKEN = "VIKING_TOKEN"
    VIKING_BASE_URL = "VIKING_BASE_URL"
    MM_EMBED_BUDGET = "MM_EMBED_BUDGET"


@dataclass(frozen=True)
class Defaults:
    """Every default of the package, documented once.

    Attributes:
        timeout: seconds one whole request may take (connect, send, receive the body).
        connect_timeout: seconds to open a connection (within ``timeout``).
        max_retries: retries per wire request (0 turns them off).
        fgclip_max_concurrency: FG-CLIP requests in flight at once per client.
        viking_max_concurrency: Viking requests in flight at once per client: high
            enough that latency is not the limit; the quota budget paces them.
        pairing_ttl_seconds: how long a dense+sparse pair is reused after it arrived.
        pairing_max_entries: texts a pairing holds at most (least recently used leave
            first); it must hold one LlamaIndex insert batch (2,048 texts).
        max_image_pixels: images with more pixels are refused before decoding (a
            decompression bomb); below Pillow's own cap (178,956,970).
        max_image_file_bytes: local image files larger than this are refused unread.
        viking_image_max_bytes: Viking images above this are re-encoded or downscaled
            (the provider advises staying under 1 MB); ``None`` turns it off.
    """

    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_retries: int = 3
    fgclip_max_concurrency: int = 16
    viking_max_concurrency: int = 32
    pairing_ttl_seconds: float = 600.0
    pairing_max_entries: int = 10_000
    max_image_pixels: int = 64_000_000
    max_image_file_bytes: int = 64 * 1024 * 1024
    viking_image_max_bytes: int | None = 1024 * 1024


#: The defaults in use.
DEFAULTS = Defaults()


# --------------------------------------------------------------------------- environment


def env_value(variable: EnvVar) -> str | None:
    """The variable's value, or ``None`` when unset or empty."""
    return os.environ.get(variable.value) or None


def resolve_str(value: str | None, variable: EnvVar, default: str | None = None) -> str | None:
    """``value`` if given (non-empty), else the environment variable, else ``default``."""
    if value:
        return value
    return env_value(variable) or default


def resolve_secret(value: str | SecretStr | None, variable: EnvVar | None) -> SecretStr | None:
    """A secret from ``value`` (non-empty) or else the environment variable."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value:
        return SecretStr(value)
    found = env_value(variable) if variable is not None else None
    return SecretStr(found) if found else None


# --------------------------------------------------------------------------- credentials


def _present(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value())


def account_id(*parts: SecretStr | str | None) -> str:
    """A stable, non-reversible name for the account behind credentials (for budgets and
    logs): a short hash, never the credential itself."""
    digest = hashlib.blake2b(digest_size=8, person=b"mm-embed-acct")
    for part in parts:
        raw = part.get_secret_value() if isinstance(part, SecretStr) else (part or "")
        digest.update(raw.encode("utf-8") + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, repr=False)
class FGClipCredentials:
    """The FG-CLIP API key (never shown by ``repr``)."""

    api_key: SecretStr

    @property
    def account(self) -> str:
        """The account's stable hashed name."""
        return account_id("fgclip", self.api_key)

    def __repr__(self) -> str:
        return "FGClipCredentials(api_key=SecretStr('**********'))"


def resolve_fgclip_credentials(api_key: str | SecretStr | None) -> FGClipCredentials:
    """``api_key``, else ``FGCLIP_API_KEY``; :class:`ConfigurationError` when neither is set."""
    key = resolve_secret(api_key, EnvVar.FGCLIP_API_KEY)
    if key is None:
        raise ConfigurationError(
            f"FG-CLIP API key missing: pass api_key=... or set {EnvVar.FGCLIP_API_KEY}"
        )
    return FGClipCredentials(key)


@dataclass(frozen=True, repr=False)
class VikingCredentials:
    """Resolved Viking credentials: a signing pair (with an optional session token) or a
    pre-issued token. Never shown by ``repr``."""

    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    session_token: SecretStr | None = None
    token: SecretStr | None = None

    @property
    def signed(self) -> bool:
        """Whether requests are HMAC-signed (else they carry the token)."""
        return self.token is None

    @property
    def account(self) -> str:
        """The account's stable hashed name (the access key, or the token)."""
        if self.token is not None:
            return account_id("viking-token", self.token)
        return account_id("viking", self.access_key)

    def __repr__(self) -> str:
        kind = "token" if self.token is not None else "access_key/secret_key"
        return f"VikingCredentials({kind}=SecretStr('**********'))"


def viking_credentials_problem(
    access_key: SecretStr | None, secret_key: SecretStr | None, token: SecretStr | None
) -> str | None:
    """What is missing from already-resolved Viking credentials, or ``None``."""
    if _present(token) or (_present(access_key) and _present(secret_key)):
        return None
    if _present(access_key):
        return f"Viking credentials incomplete: {EnvVar.VOLC_SECRETKEY} (secret_key=) is missing"
    if _present(secret_key):
        return f"Viking credentials incomplete: {EnvVar.VOLC_ACCESSKEY} (access_key=) is missing"
    return (
        "Viking credentials missing: pass access_key= and secret_key= (or token=), or set "
        f"{EnvVar.VOLC_ACCESSKEY} and {EnvVar.VOLC_SECRETKEY} (or {EnvVar.VIKING_TOKEN})"
    )


def resolve_viking_credentials(
    access_key: str | SecretStr | None = None,
    secret_key: str | SecretStr | None = None,
    *,
    token: str | SecretStr | None = None,
    session_token: str | SecretStr | None = None,
) -> VikingCredentials:
    """Apply the precedence: an explicit ``token``; else the AK/SK pair from arguments or
    ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY`` (with ``session_token`` or
    ``VOLC_SESSIONTOKEN``); else ``VIKING_TOKEN``. Raises :class:`ConfigurationError`
    naming what is missing."""
    explicit_token = resolve_secret(token, None)
    if explicit_token is not None:
        return VikingCredentials(token=explicit_token)
    ak = resolve_secret(access_key, EnvVar.VOLC_ACCESSKEY)
    sk = resolve_secret(secret_key, EnvVar.VOLC_SECRETKEY)
    if ak is not None and sk is not None:
        return VikingCredentials(
            access_key=ak,
            secret_key=sk,
            session_token=resolve_secret(session_token, EnvVar.VOLC_SESSIONTOKEN),
        )
    env_token = resolve_secret(None, EnvVar.VIKING_TOKEN)
    if env_token is not None:  # also beside half a pair: a usable token wins
        return VikingCredentials(token=env_token)
    problem = viking_credentials_problem(ak, sk, None)
    assert problem is not None
    raise ConfigurationError(problem)


# --------------------------------------------------------------------------- URLs


def redact_url(url: str) -> str:
    """``url`` with any user name or password replaced by ``***`` (for display)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- validators


def positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def non_negative_int(value: object, name: str) -> int:
    """``value`` if it is an ``int`` >= 0."""
    return positive_int(value, name, minimum=0)


def positive_number(value: object, name: str) -> float:
    """``value`` as a float if it is a finite number > 0 (not a ``bool``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def optional_positive(value: object, name: str) -> float | None:
    """``None``, or :func:`positive_number`."""
    return None if value is None else positive_number(value, name)
