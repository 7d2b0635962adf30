"""What the Viking adapters share: credentials read from the environment, connection
settings and model choice, and the session (core clients plus dense/sparse pairing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from mm_embed import AsyncVikingClient, EmbeddingResult, VikingClient
from mm_embed.errors import ConfigurationError
from mm_embed.pairing import DenseSparseCache, PairEntry
from mm_embed.protocol import viking as proto

from ._common import AdapterBase, ClientSlot, env_secret_factory, env_str_factory, read_env

__all__ = ["Pairing", "VikingSession", "VikingSettings", "credentials_problem"]


def credentials_problem(
    access_key: SecretStr | None, secret_key: SecretStr | None, token: SecretStr | None
) -> str | None:
    """What is missing from a set of Viking credentials, or ``None``."""

    def present(value: SecretStr | None) -> bool:
        return value is not None and bool(value.get_secret_value())

    if present(token) or (present(access_key) and present(secret_key)):
        return None
    if present(access_key):
        return "Viking credentials incomplete: VOLC_SECRETKEY (secret_key=) is missing"
    if present(secret_key):
        return "Viking credentials incomplete: VOLC_ACCESSKEY (access_key=) is missing"
    return (
        "Viking credentials missing: pass access_key= and secret_key= (or token=), "
        "or set VOLC_ACCESSKEY and VOLC_SECRETKEY (or VIKING_TOKEN)"
    )


def _env_token(access_key: SecretStr | None, secret_key: SecretStr | None) -> SecretStr | None:
    """``VIKING_TOKEN``, used (as in the core) only when there is no AK/SK pair."""
    if credentials_problem(access_key, secret_key, None) is None:
        return None
    value = read_env("VIKING_TOKEN")
    return SecretStr(value) if value is not None else None


def _token_default(data: dict[str, Any]) -> SecretStr | None:
    # The last credential field: all three are known here, so a missing set fails now,
    # with one error naming the variables (not at the first request).
    access_key, secret_key = data.get("volc_accesskey"), data.get("volc_secretkey")
    token = _env_token(access_key, secret_key)
    problem = credentials_problem(access_key, secret_key, token)
    if problem is not None:
        raise ConfigurationError(problem)
    return token


@dataclass
class Pairing:
    """The request a dense and a sparse object share, and their
    :class:`~mm_embed.pairing.DenseSparseCache` (one request per text for both vectors,
    requests in flight shared, both vectors kept for the cache's ttl)."""

    model: str
    model_version: str | None
    dimension: int | None
    cache: DenseSparseCache

    def _request(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "dimension": self.dimension,
        }

    def entries(self, client: VikingClient, texts: Sequence[str]) -> list[PairEntry]:
        """Both vectors of each text (``InputError`` names the caller's ``texts[i]``)."""
        request = self._request()
        return self.cache.get_or_fetch(
            texts,
            lambda missing: client.embed(missing, **request, return_dense=True, return_sparse=True),
            **request,
        )

    async def aentries(self, client: AsyncVikingClient, texts: Sequence[str]) -> list[PairEntry]:
        """Async twin of :meth:`entries`."""
        request = self._request()

        async def fetch(missing: list[str]) -> EmbeddingResult:
            return await client.embed(missing, **request, return_dense=True, return_sparse=True)

        return await self.cache.aget_or_fetch(texts, fetch, **request)


class VikingSession(ClientSlot[VikingClient, AsyncVikingClient]):
    """The core clients of one Viking adapter, and the dense/sparse pairing when a
    :class:`~langchain_mm_embed.VikingSparseEmbeddings` was made ``from_dense`` it.

    Shared by paired objects, so they also share one connection pool and one set of
    rate-limit budgets. Pickles with its pairing but without clients or cached vectors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pair: Pairing | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"pair": self.pair}

    def __setstate__(self, state: dict[str, Any]) -> None:
        VikingSession.__init__(self)
        self.pair = state.get("pair")


class VikingSettings(AdapterBase):
    """Connection settings and model choice shared by the Viking adapters."""

    volc_accesskey: SecretStr | None = Field(
        alias="access_key",
        default_factory=env_secret_factory("VOLC_ACCESSKEY"),
        description="Volcengine access key; read from VOLC_ACCESSKEY when not given.",
    )
    volc_secretkey: SecretStr | None = Field(
        alias="secret_key",
        default_factory=env_secret_factory("VOLC_SECRETKEY"),
        description="Volcengine secret key; read from VOLC_SECRETKEY when not given.",
    )
    viking_token: SecretStr | None = Field(
        alias="token",
        default_factory=_token_default,
        description="A pre-issued token; read from VIKING_TOKEN when no AK/SK pair is set.",
    )
    base_url: str | None = Field(
        default_factory=env_str_factory("VIKING_BASE_URL"),
        description="Endpoint; VIKING_BASE_URL, else https://api-vikingdb.volces.com.",
    )
    region: str = Field(default=proto.DEFAULT_REGION, description="The signing region.")
    model: str = Field(description="Viking embedding model name.")
    model_version: str | None = Field(
        default=None, description="Model version; None: the provider's default."
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Inputs per request; default and cap: 100."
    )
    max_retries: int = Field(default=3, ge=0, description="Retries per request; 0 = none.")
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds per request; None: 60 s (10 s to connect)."
    )
    max_concurrency: int = Field(default=8, ge=1, description="Requests in flight at once.")
    tokens_per_minute: int | None = Field(
        default=proto.DEFAULT_TOKENS_PER_MINUTE,
        ge=1,
        description="Per-model token budget (provider: 120,000); None turns it off.",
    )
    images_per_second: float | None = Field(
        default=proto.DEFAULT_IMAGES_PER_SECOND,
        gt=0,
        description="Image upload budget (provider: 15); None turns it off.",
    )
    show_progress_bar: bool = Field(default=False, description="tqdm bar over inputs.")

    _secret_env: ClassVar[dict[str, str]] = {
        "volc_accesskey": "VOLC_ACCESSKEY",
        "volc_secretkey": "VOLC_SECRETKEY",
        "viking_token": "VIKING_TOKEN",
    }
    _session: VikingSession = PrivateAttr(default_factory=VikingSession)

    @model_validator(mode="after")
    def _check_settings(self) -> Self:
        problem = credentials_problem(self.volc_accesskey, self.volc_secretkey, self.viking_token)
        if problem is not None:
            raise ConfigurationError(problem)
        self._check_model()
        return self

    def _reload_secrets(self) -> None:
        explicit_token = "viking_token" in self.model_fields_set
        super()._reload_secrets()
        if not explicit_token:
            self.__dict__["viking_token"] = _env_token(self.volc_accesskey, self.volc_secretkey)

    def _check_model(self) -> None:
        """Validate the model settings against the catalogue (raises ``InputError``)."""
        proto.resolve_request(model=self.model, model_version=self.model_version)

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "access_key": self.volc_accesskey,
            "secret_key": self.volc_secretkey,
            "token": self.viking_token,
            "base_url": self.base_url,
            "region": self.region,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "tokens_per_minute": self.tokens_per_minute,
            "images_per_second": self.images_per_second,
            "show_progress": self.show_progress_bar,
            "max_batch_size": self.batch_size,
        }
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options

    @property
    def client(self) -> VikingClient:
        """The blocking core client (built on first use; shared with a paired object)."""
        return self._session.sync(lambda: VikingClient(**self._client_options()))

    @property
    def async_client(self) -> AsyncVikingClient:
        """The async core client of the running event loop (one per loop)."""
        return self._session.for_running_loop(lambda: AsyncVikingClient(**self._client_options()))

    @property
    def paired(self) -> bool:
        """Whether a dense and a sparse object share this object's requests."""
        return self._session.pair is not None
