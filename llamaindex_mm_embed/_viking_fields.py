"""What the two Viking LlamaIndex models share: credentials, the model and the batch
size, over the client settings, the dimension and the dense+sparse ``pairing`` of
:class:`mm_embed.adapter_support.VikingClientFields`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict

from llama_index.core.bridge.pydantic import Field, SecretStr

from mm_embed.adapter_support import VikingClientFields, default_model_version
from mm_embed.config import EnvVar
from mm_embed.providers.viking.catalogue import MAX_ITEMS

__all__ = ["_VikingEmbeddingFields", "_VikingModelArgs"]


def _secret(description: str) -> Any:
    return Field(default=None, exclude=True, repr=False, description=description)


class _VikingEmbeddingFields(VikingClientFields):
    """Settings of :class:`~llamaindex_mm_embed.VikingEmbedding` and
    :class:`~llamaindex_mm_embed.VikingSparseEmbedding`.

    Credentials: ``token`` if given; else ``access_key`` / ``secret_key`` (with
    ``session_token``), as arguments or from the environment; else the environment's
    token: :func:`mm_embed.config.resolve_viking_credentials`' precedence, applied at
    construction (a missing credential raises a ``ConfigurationError`` naming the
    variables; the field descriptions name each one). None of them is ever serialised,
    shown in ``repr`` or pickled.
    """

    access_key: SecretStr | None = _secret(f"Defaults to {EnvVar.VOLC_ACCESSKEY}.")
    secret_key: SecretStr | None = _secret(f"Defaults to {EnvVar.VOLC_SECRETKEY}.")
    session_token: SecretStr | None = _secret(
        f"Session token of temporary (STS) credentials; defaults to {EnvVar.VOLC_SESSIONTOKEN}."
    )
    token: SecretStr | None = _secret(
        f"A pre-issued token; {EnvVar.VIKING_TOKEN} is used when no access key pair is set."
    )
    model_name: str = Field(default="bge-m3", description="The Viking embedding model.")
    model_version: str | None = Field(
        default_factory=lambda data: default_model_version(data.get("model_name")),
        description="The model version; defaults to 250615 for doubao-embedding-vision; "
        "None: the provider's default.",
    )
    embed_batch_size: int = Field(
        default=MAX_ITEMS,
        gt=0,
        le=2048,
        description="Inputs per wire request (default and cap: the provider's 100).",
    )
    _client_renames: ClassVar[Mapping[str, str]] = {
        "max_batch_size": "embed_batch_size",
        "model": "model_name",
    }


class _VikingModelArgs(TypedDict, total=False):
    model_version: str | None
