"""Settings shared by the dense and the sparse Viking adapters: credentials, client
options, and the core clients built from them."""

from __future__ import annotations

from typing import Any, ClassVar

from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from mm_embed import AsyncVikingClient, ConfigurationError, VikingClient
from mm_embed.protocol import viking as proto

from ._common import AdapterBase, ClientSlot, env_secret

__all__ = ["VikingSettings"]


class VikingSettings(AdapterBase, BaseModel):
    """Connection settings of a Viking embedding v2 model.

    Credentials: ``token`` (a pre-issued token), else ``access_key`` + ``secret_key``
    (signed requests), else ``VOLC_ACCESSKEY`` + ``VOLC_SECRETKEY``, else
    ``VIKING_TOKEN``, the same order as the core client. None of them is ever
    serialised, shown in ``repr`` or pickled.
    """

    model_config = ConfigDict(protected_namespaces=(), extra="forbid")

    _secret_fields: ClassVar[tuple[str, ...]] = ("access_key", "secret_key", "token")

    model_version: str | None = Field(
        default=None, description="The model version; None: the provider's default."
    )
    access_key: SecretStr | None = Field(
        default=None, exclude=True, repr=False, description="Defaults to VOLC_ACCESSKEY."
    )
    secret_key: SecretStr | None = Field(
        default=None, exclude=True, repr=False, description="Defaults to VOLC_SECRETKEY."
    )
    token: SecretStr | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="A pre-issued token; defaults to VIKING_TOKEN when no AK/SK is found.",
    )
    base_url: str | None = Field(
        default=None,
        description="Defaults to VIKING_BASE_URL, else https://api-vikingdb.volces.com.",
    )
    region: str = Field(default=proto.DEFAULT_REGION, description="The signing region.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds per wire request.")
    max_retries: int = Field(default=3, ge=0, description="Retries per wire request.")
    max_concurrency: int = Field(default=8, ge=1, description="Wire requests in flight.")
    tokens_per_minute: int | None = Field(
        default=proto.DEFAULT_TOKENS_PER_MINUTE,
        gt=0,
        description="Client-side token budget per model (provider: 120,000); None: off.",
    )
    images_per_second: float | None = Field(
        default=proto.DEFAULT_IMAGES_PER_SECOND,
        gt=0,
        description="Client-side image upload budget (provider: 15); None: off.",
    )

    _clients: ClientSlot[VikingClient, AsyncVikingClient] = PrivateAttr(default_factory=ClientSlot)

    def _load_secrets(self, *, strict: bool) -> None:
        if self.token is not None and self.token.get_secret_value():
            return
        access_key = env_secret(self.access_key, "VOLC_ACCESSKEY")
        secret_key = env_secret(self.secret_key, "VOLC_SECRETKEY")
        if access_key and secret_key:
            self.access_key, self.secret_key = access_key, secret_key
            return
        env_token = env_secret(None, "VIKING_TOKEN")
        if env_token:
            self.token = env_token
            return
        if not strict:
            return
        if access_key or secret_key:
            missing = (
                "VOLC_SECRETKEY (secret_key=)" if access_key else "VOLC_ACCESSKEY (access_key=)"
            )
            raise ConfigurationError(f"Viking credentials incomplete: {missing} is missing")
        raise ConfigurationError(
            "Viking credentials missing: pass access_key= and secret_key= (or token=), "
            "or set VOLC_ACCESSKEY and VOLC_SECRETKEY (or VIKING_TOKEN)"
        )

    def _client_options(self) -> dict[str, Any]:
        return {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "token": self.token,
            "base_url": self.base_url,
            "region": self.region,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_concurrency": self.max_concurrency,
            "tokens_per_minute": self.tokens_per_minute,
            "images_per_second": self.images_per_second,
            "max_batch_size": getattr(self, "embed_batch_size", None),
        }

    @property
    def client(self) -> VikingClient:
        """The blocking core client (built on first use), for anything not wrapped here."""
        return self._clients.sync(lambda: VikingClient(**self._client_options()))

    @property
    def async_client(self) -> AsyncVikingClient:
        """The async core client of the running event loop (built on first use)."""
        return self._clients.for_running_loop(lambda: AsyncVikingClient(**self._client_options()))

    def close(self) -> None:
        """Close the blocking client's connections (a later call opens new ones)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the running loop's async client (a later call opens a new one)."""
        await self._clients.aclose()
