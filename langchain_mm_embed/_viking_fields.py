"""What the two Viking LangChain classes share: credentials (``secret_from_env``, as
LangChain's partner packages read them) and the model, over the client settings, the
dimension and the dense+sparse ``pairing`` of
:class:`mm_embed.adapter_support.VikingClientFields`."""

from __future__ import annotations

from langchain_core.utils import secret_from_env
from pydantic import Field, SecretStr

from mm_embed.adapter_support import (
    VikingClientFields,
    VikingClientSettings,
    default_model_version,
)
from mm_embed.config import EnvVar
from mm_embed.providers.viking.catalogue import ADAPTER_DEFAULT_MODEL

from ._batching import _BatchingArgs, _BatchingFields

__all__ = ["_VikingEmbeddingsArgs", "_VikingEmbeddingsFields"]


class _VikingEmbeddingsFields(_BatchingFields, VikingClientFields):
    """Settings of :class:`~langchain_mm_embed.VikingEmbeddings` and
    :class:`~langchain_mm_embed.VikingSparseEmbeddings`.

    Credentials: ``token`` if given; else ``access_key`` / ``secret_key`` (with
    ``session_token``), as arguments or from the environment; else the environment's
    token: :func:`mm_embed.config.resolve_viking_credentials`' precedence, applied at
    construction (a missing credential raises a ``ConfigurationError`` naming the
    variables; the field descriptions name each one).
    """

    volc_accesskey: SecretStr | None = Field(
        alias="access_key",
        default_factory=secret_from_env(f"{EnvVar.VOLC_ACCESSKEY}", default=None),
        description=f"Volcengine access key; read from {EnvVar.VOLC_ACCESSKEY} when not given.",
    )
    volc_secretkey: SecretStr | None = Field(
        alias="secret_key",
        default_factory=secret_from_env(f"{EnvVar.VOLC_SECRETKEY}", default=None),
        description=f"Volcengine secret key; read from {EnvVar.VOLC_SECRETKEY} when not given.",
    )
    volc_sessiontoken: SecretStr | None = Field(
        alias="session_token",
        default_factory=secret_from_env(f"{EnvVar.VOLC_SESSIONTOKEN}", default=None),
        description="Session token of temporary (STS) credentials; read from "
        f"{EnvVar.VOLC_SESSIONTOKEN} when not given.",
    )
    viking_token: SecretStr | None = Field(
        alias="token",
        default=None,
        description=f"A pre-issued token; {EnvVar.VIKING_TOKEN} is used when no access "
        "key pair is set.",
    )
    model: str = Field(default=ADAPTER_DEFAULT_MODEL, description="Viking embedding model name.")
    model_version: str | None = Field(
        default_factory=lambda data: default_model_version(data.get("model")),
        description="Model version; defaults to 250615 for doubao-embedding-vision; None: "
        "the provider's default.",
    )


class _VikingEmbeddingsArgs(VikingClientSettings, _BatchingArgs, total=False):
    model: str
    model_version: str | None
