"""Stand-ins for ``langchain_qdrant.SparseVector`` / ``SparseEmbeddings`` when the
``qdrant`` extra is not installed: the same shape, so code written against one runs
against the other."""

from __future__ import annotations

from abc import ABC, abstractmethod

from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SparseEmbeddings", "SparseVector"]


class SparseVector(BaseModel):
    """A sparse vector: unique ``indices`` and their ``values``, same length."""

    model_config = ConfigDict(extra="forbid")

    indices: list[int] = Field(..., description="unique, ascending")
    values: list[float] = Field(..., description="one per index")


class SparseEmbeddings(ABC):
    """The sparse embedding interface of ``langchain_qdrant``."""

    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """Sparse vectors of documents."""

    @abstractmethod
    def embed_query(self, text: str) -> SparseVector:
        """The sparse vector of a query."""

    async def aembed_documents(self, texts: list[str]) -> list[SparseVector]:
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> SparseVector:
        return await run_in_executor(None, self.embed_query, text)
