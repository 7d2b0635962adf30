"""LangChain's own standard suites for the adapters: unit suites without a server,
integration suites against the local emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

# A closed loopback port: unit suites never send a request.
_NOWHERE = "http://127.0.0.1:9"


class TestFGClipUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[FGClipEmbeddings]:
        return FGClipEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"api_key": "unit-key", "base_url": _NOWHERE}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"FGCLIP_API_KEY": "env-key", "FGCLIP_BASE_URL": _NOWHERE},
            {"embedding_type": "int8"},
            {"fgclip_api_key": "env-key", "base_url": _NOWHERE, "embedding_type": "int8"},
        )


class TestVikingUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[VikingEmbeddings]:
        return VikingEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"access_key": "unit-ak", "secret_key": "unit-sk", "base_url": _NOWHERE}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"VOLC_ACCESSKEY": "env-ak", "VOLC_SECRETKEY": "env-sk", "VIKING_BASE_URL": _NOWHERE},
            {"model": "doubao-embedding", "dimension": 512},
            {
                "volc_accesskey": "env-ak",
                "volc_secretkey": "env-sk",
                "base_url": _NOWHERE,
                "model": "doubao-embedding",
                "dimension": 512,
            },
        )


class OnTheEmulator:
    """Integration suites run against a fresh emulator per test (``self.emu``)."""

    emu: Emulator

    @pytest.fixture(autouse=True)
    def _server(self, emulator: Emulator, request: pytest.FixtureRequest) -> Iterator[None]:
        self.emu = emulator
        yield
        if "model" in request.fixturenames:
            # The test passed against the emulator, not against something else.
            assert emulator.counters.get("status:200", 0) >= 1


class TestFGClipIntegration(OnTheEmulator, EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[FGClipEmbeddings]:
        return FGClipEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"api_key": self.emu.api_key, "base_url": self.emu.url, "max_retries": 0}


class TestVikingIntegration(OnTheEmulator, EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[VikingEmbeddings]:
        return VikingEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {
            "access_key": self.emu.access_key,
            "secret_key": self.emu.secret_key,
            "base_url": self.emu.url,
            "model": "doubao-embedding",
            "dimension": 1024,
            "max_retries": 0,
        }
