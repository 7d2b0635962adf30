"""``budget=`` and ``MM_EMBED_BUDGET`` reach the budget every layer paces through: both
framework adapters (sync and async clients), the bulk API and ``mm-embed embed
--budget URL``, each drawing from the shared store the URL names."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings
from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding
from mm_embed import VikingClient
from mm_embed.budgets import FileBudget, LocalBudget, budget_from_url
from mm_embed.bulk import embed_corpus
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator

ADAPTERS: list[tuple[type[Any], dict[str, Any]]] = [
    (VikingEmbeddings, {"access_key": "ak", "secret_key": "sk", "model": "bge-m3"}),
    (FGClipEmbeddings, {"api_key": "key"}),
    (VikingEmbedding, {"access_key": "ak", "secret_key": "sk", "model_name": "bge-m3"}),
    (FGClipEmbedding, {"api_key": "key"}),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)


def _clients(adapter: Any) -> list[Any]:
    async def async_client() -> Any:
        return adapter.async_client

    return [adapter.client, asyncio.run(async_client())]


@pytest.mark.parametrize(("cls", "settings"), ADAPTERS, ids=lambda v: getattr(v, "__name__", ""))
def test_adapters_take_a_budget_url(
    cls: type[Any], settings: dict[str, Any], tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/budget.db"
    adapter = cls(budget=url, **settings)
    for client in _clients(adapter):
        assert client.budget is budget_from_url(url)
        assert isinstance(client.budget, FileBudget)


@pytest.mark.parametrize(("cls", "settings"), ADAPTERS, ids=lambda v: getattr(v, "__name__", ""))
def test_adapters_read_mm_embed_budget(
    cls: type[Any], settings: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"file://{tmp_path}/from-env.db"
    monkeypatch.setenv(EnvVar.MM_EMBED_BUDGET, url)
    for client in _clients(cls(**settings)):
        assert client.budget is budget_from_url(url)
    mine = LocalBudget()
    for client in _clients(cls(budget=mine, **settings)):
        assert client.budget is mine  # an explicit budget wins over the variable


def _texts(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "text": f"budget wiring text {i}"}) + "\n" for i in range(n)
        )
    )
    return path


def _consumed(url: str, emu: Emulator, model: str) -> float:
    with VikingClient(emu.access_key, emu.secret_key, budget=url) as client:
        quota = client.tokens_quota(model)
        assert quota is not None
        return client.budget.state(client.account, quota).consumed


def test_the_bulk_api_paces_through_the_budget_it_is_given(
    emulator: Emulator, tmp_path: Path
) -> None:
    url = f"file://{tmp_path}/bulk-api.db"
    with VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url) as client:
        summary = embed_corpus(
            _texts(tmp_path / "in.jsonl", 30),
            tmp_path / "out.parquet",
            client=client,
            model="bge-m3",
            budget=url,
        )
        assert client.budget is budget_from_url(url)
    assert summary.embedded == 30
    assert _consumed(url, emulator, "bge-m3") == summary.tokens > 0


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_the_command_paces_through_the_budget_url(
    emulator: Emulator, tmp_path: Path, how: str
) -> None:
    url = f"file://{tmp_path}/cli-{how}.db"
    env = {
        "PATH": "/usr/bin:/bin",
        f"{EnvVar.VOLC_ACCESSKEY}": emulator.access_key,
        f"{EnvVar.VOLC_SECRETKEY}": emulator.secret_key,
        f"{EnvVar.VIKING_BASE_URL}": emulator.url,
    }
    command = [
        sys.executable,
        "-m",
        "mm_embed",
        "embed",
        "--input",
        str(_texts(tmp_path / "in.jsonl", 20)),
        "--output",
        str(tmp_path / f"out-{how}.parquet"),
        "--provider",
        "viking",
        "--model",
        "bge-m3",
        "--no-progress",
    ]
    if how == "flag":
        command += ["--budget", url]
    else:
        env[f"{EnvVar.MM_EMBED_BUDGET}"] = url
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _consumed(url, emulator, "bge-m3") > 0
