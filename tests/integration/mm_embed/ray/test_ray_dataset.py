"""``embed_dataset`` on the session's local Ray instance (2 CPUs, actors with a quarter
CPU each) against the emulator: equal to one process, inside the quota, complete when
an actor dies, refused items kept with their ids."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import ray
import ray.data

from mm_embed import VikingClient
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator, sample_png
from mm_embed.ray import RayBudget, RejectedInput, embed_dataset, read_rejects, root_error
from tests.integration._helpers import (
    RAY_MODEL as MODEL,
)
from tests.integration._helpers import (
    RayCluster,
    actor_handle,
    alive_actors,
    assert_matches,
    budget_held_empty,
    emulator_settings,
    pace,
    reference,
    spend_the_first_minute,
    text_records,
    text_token_weights,
    uniform_texts,
    wait_until,
)

TPM = 120_000


def _collect(ds: ray.data.Dataset) -> pa.Table:
    return pa.concat_tables(list(ds.iter_batches(batch_format="pyarrow", batch_size=None)))


@pytest.mark.timeout(240)
def test_20000_texts_on_4_actors_equal_one_process_and_fill_the_quota(
    ray_cluster: RayCluster,
    make_emulator: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = uniform_texts(20_000)
    ref = reference(texts)
    emu: Emulator = make_emulator(tpm=TPM)  # type: ignore[operator]
    for name, value in emulator_settings(emu).items():
        monkeypatch.setenv(name, value)
    budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
    with VikingClient(base_url=emu.url, budget=budget) as driver_client:
        quota = spend_the_first_minute(emu, budget, driver_client)
        account = driver_client.account
    started = time.time()
    ds = ray.data.from_items(text_records(texts))
    out = embed_dataset(
        ds, provider="viking", model=MODEL, sparse=True, budget=budget, concurrency=4
    )
    with budget_held_empty(budget, account, quota):
        table = _collect(out)
    measured = pace(emu.log, text_token_weights(texts), started, warmup=5.0)
    budget.destroy()
    print(f"ray engine, 20,000 texts, 4 actors: {measured}; ceiling {TPM / 60:.0f}/s")

    assert_matches(table, ref, [r["id"] for r in text_records(texts)])
    assert table.schema.field("dense").type == pa.list_(pa.float32(), 1024)
    assert measured.refusals_after_warmup == 0, measured
    # The whole run is past the burst: the minute was spent before it started.
    assert measured.seconds > 8, measured
    assert measured.rate >= 0.9 * TPM / 60, measured


@pytest.mark.timeout(180)
def test_an_actor_killed_mid_run_and_transient_faults_leave_the_output_exact(
    ray_cluster: RayCluster, make_emulator: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Transient faults too: retried inside the actors, never seen in the output.
    emu: Emulator = make_emulator(  # type: ignore[operator]
        latency_ms=60, fault_rate=0.05, faults=("500", "503", "reset"), seed=3
    )
    for name, value in emulator_settings(emu).items():
        monkeypatch.setenv(name, value)
    texts = uniform_texts(3000)
    ref = reference(texts)
    ds = ray.data.from_items(text_records(texts))
    budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
    out = embed_dataset(
        ds,
        provider="viking",
        model=MODEL,
        sparse=True,
        budget=budget,
        concurrency=4,
        batch_size=25,
        client_options={"tokens_per_minute": None},
    )
    killed: list[int] = []

    def kill_one() -> None:
        wait_until(lambda: emu.counters.get("requests", 0) >= 15, 120, "the run to start")
        victim = alive_actors("EmbedBatches")[0]
        ray.kill(actor_handle(victim["ActorID"]), no_restart=False)
        killed.append(int(victim["Pid"]))

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    table = _collect(out)
    killer.join(10)
    budget.destroy()

    assert killed, "no actor was killed"
    assert emu.counters.get("faults", 0) > 0
    assert_matches(table, ref, [r["id"] for r in text_records(texts)])


@pytest.mark.timeout(120)
def test_refused_items_go_to_rejects_with_their_ids(
    ray_cluster: RayCluster, emulator_env: Emulator, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    good = tmp_path / "good.png"
    good.write_bytes(sample_png("red-circle"))
    rows = [
        {"id": "t-ok", "text": "a red circle", "image": None},
        {"id": "t-empty", "text": "", "image": None},
        {"id": "i-ok", "text": None, "image": str(good)},
        {"id": "i-broken", "text": None, "image": str(broken)},
        {"id": "i-missing", "text": None, "image": str(tmp_path / "nowhere.png")},
    ]
    ds = ray.data.from_items(rows)
    budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
    settings = {"provider": "viking", "model": "bge-visualized-m3", "budget": budget}
    out = embed_dataset(
        ds, **settings, image_column="image", concurrency=1, rejects=tmp_path / "rejects"
    )
    table = _collect(out)
    rejects = {r["id"]: r for r in read_rejects(tmp_path / "rejects")}

    assert sorted(table.column("id").to_pylist()) == ["i-ok", "t-ok"]
    assert sorted(rejects) == ["i-broken", "i-missing", "t-empty"]
    assert rejects["t-empty"]["code"] == "bad_record"
    assert rejects["i-missing"]["code"] == "missing_image"
    assert rejects["i-broken"]["code"] == "invalid_input"
    assert rejects["i-broken"]["field"] == "image"
    assert all(r["message"] for r in rejects.values())

    # Without a rejects output a refused item stops the run; it is never dropped.
    strict = embed_dataset(ds, **settings, image_column="image", concurrency=1)
    with pytest.raises(Exception, match="t-empty") as caught:
        _collect(strict)
    refused = root_error(caught.value)
    assert isinstance(refused, RejectedInput), caught.value
    assert "t-empty" in str(refused) and "rejects=" in str(refused)
    budget.destroy()


def test_settings_are_checked_on_the_driver_before_any_actor(
    ray_cluster: RayCluster, emulator_env: Emulator
) -> None:
    from mm_embed.errors import ConfigurationError, MMEmbedError

    ds = ray.data.from_items([{"id": "a", "text": "x"}])
    with pytest.raises(ConfigurationError, match="memory://"):
        embed_dataset(ds, provider="viking", model=MODEL, budget="memory://")
    with pytest.raises(ConfigurationError, match="secret_key"):
        embed_dataset(ds, provider="viking", model=MODEL, client_options={"secret_key": "plain"})
    with pytest.raises(MMEmbedError, match="no sparse vectors"):
        embed_dataset(ds, provider="viking", model="doubao-embedding", sparse=True)


def test_credentials_travel_in_the_runtime_env_not_in_arguments(
    ray_cluster: RayCluster, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    secret = "s3cret-4-this-test-only"
    for name, value in emulator_settings(emulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(f"{EnvVar.VOLC_SECRETKEY}", secret)
    budget = RayBudget(ray_cluster.budget_name(), namespace=ray_cluster.namespace)
    ds = ray.data.from_items([{"id": "a", "text": "x"}])
    out = embed_dataset(ds, provider="viking", model=MODEL, budget=budget)
    # What Ray will run (its logical plan: internal, read here only to look).
    step = out._logical_plan.dag
    arguments = pickle.dumps((step.fn_constructor_args, step.fn_constructor_kwargs))
    assert secret.encode() not in arguments
    assert emulator.access_key.encode() not in arguments
    env = step.ray_remote_args["runtime_env"]["env_vars"]
    assert env[f"{EnvVar.VOLC_SECRETKEY}"] == secret
    assert secret not in repr(step.fn_constructor_kwargs)
