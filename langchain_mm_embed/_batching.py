"""The LangChain names of two client settings both adapters take: ``batch_size`` (the
core's ``max_batch_size``) and ``show_progress_bar`` (the core's ``show_progress``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, TypedDict

from pydantic import BaseModel, Field

__all__ = ["_BatchingArgs", "_BatchingFields"]


class _BatchingFields(BaseModel):
    """Fields mixed into the LangChain adapters, before the core's client fields."""

    batch_size: int | None = Field(
        default=None, ge=1, description="Inputs per request; default and cap: the provider's."
    )
    show_progress_bar: bool = Field(default=False, description="A tqdm bar over the inputs.")

    _client_renames: ClassVar[Mapping[str, str]] = {
        "max_batch_size": "batch_size",
        "show_progress": "show_progress_bar",
    }


class _BatchingArgs(TypedDict, total=False):
    batch_size: int | None
    show_progress_bar: bool
