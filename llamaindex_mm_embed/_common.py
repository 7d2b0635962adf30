"""Pieces every adapter shares: secrets, lazily built core clients, vector conversion."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from llama_index.core.base.embeddings.base import Embedding
from llama_index.core.schema import ImageType
from pydantic import BaseModel, SecretStr

from mm_embed import EmbeddingResult
from mm_embed.clients.slot import ClientSlot

__all__ = [
    "AdapterBase",
    "BatchedHooks",
    "ClientSlot",
    "ImageType",
    "dense_rows",
    "env_secret",
    "sparse_rows",
]


def env_secret(value: SecretStr | None, variable: str) -> SecretStr | None:
    """``value`` when set and non-empty, else the environment variable, else ``None``."""
    if value is not None and value.get_secret_value():
        return value
    found = os.environ.get(variable)
    return SecretStr(found) if found else None


class BatchedHooks:
    """LlamaIndex's twelve embedding hooks, routed to four batch methods.

    Every hook, single or batched, text or image, sync or async, goes through
    :meth:`_texts` / :meth:`_atexts` / :meth:`_images` / :meth:`_aimages` with a list,
    so one index build sends wire-sized batches and a single input is a batch of one.
    Put it before ``MultiModalEmbedding`` in the bases so its hooks win.
    """

    def _texts(self, texts: Sequence[str]) -> list[Embedding]:
        raise NotImplementedError

    async def _atexts(self, texts: Sequence[str]) -> list[Embedding]:
        raise NotImplementedError

    def _images(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

    async def _aimages(self, images: Sequence[ImageType]) -> list[Embedding]:
        raise NotImplementedError

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._texts([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._atexts([query]))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._texts([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._atexts([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._texts(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._atexts(texts)

    def _get_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return self._images([img_file_path])[0]

    async def _aget_image_embedding(self, img_file_path: ImageType) -> Embedding:
        return (await self._aimages([img_file_path]))[0]

    def _get_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return self._images(img_file_paths)

    async def _aget_image_embeddings(self, img_file_paths: list[ImageType]) -> list[Embedding]:
        return await self._aimages(img_file_paths)


class AdapterBase:
    """Mixin for the adapters' pydantic models: credentials checked at construction,
    and no secret or client in pickles or copies.

    Construction resolves the secret fields (``_secret_fields``) from the environment
    and raises :class:`mm_embed.ConfigurationError` when they are missing, then
    validates the settings (:meth:`_validate_settings`). A pickle leaves the secrets
    out and its private attributes start afresh: the unpickled copy reads its secrets
    from the environment again. ``to_dict`` / ``model_dump`` leave them out through
    ``Field(exclude=True)``.
    """

    _secret_fields: ClassVar[tuple[str, ...]] = ()

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed __init__

        def __init__(self, **data: Any) -> None:
            super().__init__(**data)
            self._load_secrets(strict=True)
            self._validate_settings()

    def _load_secrets(self, *, strict: bool) -> None:
        """Fill the secret fields from the environment; ``strict``: raise when missing."""
        raise NotImplementedError

    def _validate_settings(self) -> None:
        """Raise a clear error for a setting the provider cannot honour."""

    def __getstate__(self) -> dict[str, Any]:
        assert isinstance(self, BaseModel)
        state: dict[str, Any] = BaseModel.__getstate__(self)
        fields = {k: v for k, v in state["__dict__"].items() if k not in self._secret_fields}
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        assert isinstance(self, BaseModel)
        fields = {**dict.fromkeys(self._secret_fields), **state["__dict__"]}
        BaseModel.__setstate__(self, {**state, "__dict__": fields})
        object.__setattr__(self, "__pydantic_private__", _fresh_private(self))
        self._load_secrets(strict=False)

    def __copy__(self) -> Any:
        # model_copy(update=...) may change the settings: the copy builds its own clients.
        assert isinstance(self, BaseModel)
        copied = BaseModel.__copy__(self)
        private = copied.__pydantic_private__ or {}
        for name, value in list(private.items()):
            if isinstance(value, ClientSlot):
                private[name] = ClientSlot()
        return copied


def _fresh_private(model: BaseModel) -> dict[str, Any]:
    return {
        name: attr.get_default(call_default_factory=True)
        for name, attr in type(model).__private_attributes__.items()
    }


def dense_rows(result: EmbeddingResult, embedding_type: str | None = None) -> list[list[float]]:
    """Rows as ``list[float]``, the form LlamaIndex stores (int8/uint8 are cast)."""
    return result.as_float_lists(embedding_type)


def sparse_rows(result: EmbeddingResult) -> list[dict[int, float]]:
    """Sparse rows as ``{index: weight}`` with the core's stable token -> index mapping."""
    if result.sparse is None:
        raise ValueError("the provider returned no sparse vectors")
    return [vector.to_dict() for vector in result.sparse]
