"""URL wiring: ``file:///abs`` and ``redis://host:port/db`` name shared budgets, and
``MM_EMBED_BUDGET`` hands them to clients built with no ``budget=``; two real processes
with VikingClients against the emulator then share one bucket."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mm_embed import VikingClient
from mm_embed.budgets import (
    BudgetError,
    FileBudget,
    RedisBudget,
    budget_from_url,
    resolve_budget,
)
from mm_embed.config import EnvVar
from mm_embed.errors import ConfigurationError
from tests.integration._helpers import free_port
from tests.integration.mm_embed.budgets._worker import run_together


def test_file_url_names_one_file_budget_per_process(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/b.db"
    budget = budget_from_url(url)
    assert isinstance(budget, FileBudget) and budget.path == tmp_path / "b.db"
    assert budget_from_url(url) is budget
    assert budget_from_url(f"file://localhost{tmp_path}/b.db").path == budget.path
    spaced = budget_from_url(f"file://{tmp_path}/my%20budget.db")
    assert isinstance(spaced, FileBudget) and spaced.path == tmp_path / "my budget.db"


@pytest.mark.parametrize("url", ["file://relative/b.db", "file://otherhost/abs/b.db"])
def test_file_url_must_name_an_absolute_local_path(url: str) -> None:
    with pytest.raises(ConfigurationError, match="absolute path"):
        budget_from_url(url)


def test_redis_url_names_a_redis_budget(redis_url: str) -> None:
    budget = budget_from_url(redis_url)
    assert isinstance(budget, RedisBudget) and budget.url == redis_url
    assert resolve_budget(redis_url) is budget


def test_an_unreachable_server_fails_at_once_without_its_password() -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(BudgetError, match=r"127\.0\.0\.1") as caught:
        budget_from_url(url)
    assert "hunter2" not in str(caught.value)


def test_environment_variable_picks_the_shared_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    for url, kind in ((f"file://{tmp_path}/env.db", FileBudget), (redis_url, RedisBudget)):
        monkeypatch.setenv(f"{EnvVar.MM_EMBED_BUDGET}", url)
        with VikingClient("AKenv", "env-secret") as client:
            assert isinstance(client.budget, kind)
            assert client.budget is budget_from_url(url)
        # An explicit budget= still wins over the environment.
        with VikingClient("AKenv", "env-secret", budget="memory://") as client:
            assert not isinstance(client.budget, kind)


def _embed_in_processes(
    emulator: Any, url: str, tags: list[str], n: int, before_sending: Callable[[], None]
) -> list[dict[str, Any]]:
    """Run ``embed`` workers; call ``before_sending`` once all are ready, then let them go."""
    env = {
        **os.environ,
        f"{EnvVar.VOLC_ACCESSKEY}": emulator.access_key,
        f"{EnvVar.VOLC_SECRETKEY}": emulator.secret_key,
        f"{EnvVar.VIKING_BASE_URL}": emulator.url,
        f"{EnvVar.MM_EMBED_BUDGET}": url,
    }
    lasts = run_together(
        [["embed", str(n), tag] for tag in tags],
        env=env,
        before_go=before_sending,
        timeout=120,
    )
    return [json.loads(last) for last in lasts]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["file", "redis"])
def test_clients_in_two_processes_share_one_bucket(
    backend: str, make_emulator: Any, tmp_path: Path, redis_url: str
) -> None:
    emulator = make_emulator()
    url = f"file://{tmp_path}/shared.db" if backend == "file" else redis_url
    with VikingClient(emulator.access_key, emulator.secret_key, budget=url) as here:
        quota = here.tokens_quota("bge-m3")
        assert quota is not None
        # Spend the whole minute and 1.5 s more from this process: the other processes
        # can only send once that has refilled.
        drained = quota.capacity + 1.5 * quota.rate

        def drain() -> None:
            here.budget.take(here.account, quota, drained)

        reports = _embed_in_processes(emulator, url, ["a", "b"], 30, drain)
        state = here.budget.state(here.account, quota)
    assert [r["budget"] for r in reports] == [type(here.budget).__name__] * 2
    assert [r["rows"] for r in reports] == [30, 30]
    # Each waited for this process's spending, and both settled into the same bucket.
    assert all(r["elapsed"] >= 1.2 for r in reports), reports
    assert state.consumed == pytest.approx(drained + sum(r["billed"] for r in reports))
