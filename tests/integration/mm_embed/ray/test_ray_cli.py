"""``mm-embed embed --engine ray``: the local engine's output, rejects file, summary and
exit codes from a Parquet directory; a resume after the driver is killed sends nothing
that was written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mm_embed.bulk import ExitCode
from mm_embed.bulk.cli import embed_main
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator, sample_png
from mm_embed.ray.parts import BATCHES, MANIFEST, BatchRecord
from tests.integration._helpers import (
    RAY_MODEL as MODEL,
)
from tests.integration._helpers import (
    RayCluster,
    actor_handle,
    alive_actors,
    emulator_settings,
    text_records,
    uniform_texts,
    viking_text_hash,
    wait_until,
    write_jsonl,
)

BAD = {7: {"id": "bad-empty", "text": ""}, 50: {"id": "bad-none", "text": None}}


def _corpus(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = list(text_records(uniform_texts(n)))
    for at, row in BAD.items():
        rows.insert(at, row)
    return rows


def _command(corpus: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--provider",
        "viking",
        "--model",
        MODEL,
        "--sparse",
        "--input",
        str(corpus),
        "--output",
        str(output),
        "--no-progress",
        "--tokens-per-minute",
        "0",
        *extra,
    ]


def _sorted(table: pa.Table) -> pa.Table:
    keys = [("id", "ascending")] + ([("box", "ascending")] if "box" in table.column_names else [])
    return table.sort_by(keys).combine_chunks()


def _written(output: Path) -> set[str]:
    """Ids the output directory holds (embedded or rejected) per its batch manifests."""
    ids: set[str] = set()
    for path in (output / BATCHES).glob("*.json"):
        record = BatchRecord.read(path)
        if record.part:
            ids.update(pq.read_table(output / record.part, columns=["id"])["id"].to_pylist())
        ids.update(str(r["id"]) for r in record.rejects)
    return ids


@pytest.mark.timeout(180)
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_the_ray_engine_writes_what_the_local_engine_writes(
    fmt: str,
    ray_cluster: RayCluster,
    emulator_env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _corpus(400)
    corpus = tmp_path / f"corpus.{fmt}"
    if fmt == "jsonl":
        write_jsonl(corpus, rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), corpus, row_group_size=64)
    local, remote = tmp_path / "local.parquet", tmp_path / "ray-out"
    summaries = tmp_path / "local.json", tmp_path / "ray.json"

    assert embed_main(_command(corpus, local, "--summary-json", str(summaries[0]))) == 1
    code = embed_main(
        _command(corpus, remote, "--engine", "ray", "--summary-json", str(summaries[1]))
    )
    err = capsys.readouterr().err

    assert code == ExitCode.REJECTS, err
    assert _sorted(pq.read_table(remote)).equals(_sorted(pq.read_table(local)))
    rejects = tmp_path / "ray-out.rejects.jsonl"
    assert rejects.read_bytes() == (tmp_path / "local.parquet.rejects.jsonl").read_bytes()
    assert [r["id"] for r in map(orjson.loads, rejects.read_bytes().splitlines())] == [
        "bad-empty",
        "bad-none",
    ]
    local_summary, ray_summary = (orjson.loads(p.read_bytes()) for p in summaries)
    for key in ("status", "items", "embedded", "rejected", "rows", "total_tokens"):
        assert ray_summary[key] == local_summary[key], key
    assert "402 read, 400 embedded, 2 rejected" in err
    manifest = orjson.loads((remote / MANIFEST).read_bytes())
    assert manifest["complete"] is True and manifest["totals"]["embedded"] == 400


@pytest.mark.timeout(120)
def test_fgclip_boxes_come_out_as_the_local_engines_box_rows(
    ray_cluster: RayCluster, emulator_env: Emulator, tmp_path: Path
) -> None:
    rows: list[dict[str, object]] = [{"id": "t-0", "text": "a red circle"}]
    for name in ("red-circle", "green-square"):
        (tmp_path / f"{name}.png").write_bytes(sample_png(name))
        rows.append(
            {"id": name, "image": f"{name}.png", "boxes": [[0, 0, 64, 64], [40, 40, 96, 96]]}
        )
    rows.append({"id": "whole", "image": "red-circle.png"})
    corpus = write_jsonl(tmp_path / "shapes.jsonl", rows)
    fgclip = ["--provider", "fgclip", "--input", str(corpus), "--no-progress"]

    assert embed_main([*fgclip, "--output", str(tmp_path / "local.parquet")]) == 0
    ray_out = tmp_path / "ray-out"
    assert embed_main([*fgclip, "--output", str(ray_out), "--engine", "ray"]) == 0

    table = _sorted(pq.read_table(ray_out))
    assert table.equals(_sorted(pq.read_table(tmp_path / "local.parquet")))
    assert table.column_names == ["id", "box", "dense", "tokens"]
    # One row per box (an image with boxes), -1 for a text or a whole image.
    assert table.column("box").to_pylist() == [0, 1, 0, 1, -1, -1]


@pytest.mark.timeout(240)
def test_resume_after_the_driver_is_killed_sends_nothing_already_written(
    ray_cluster: RayCluster,
    make_emulator: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _corpus(2400)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    clean = tmp_path / "clean.parquet"
    emu: Emulator = make_emulator(latency_ms=150)  # type: ignore[operator]
    env = {**os.environ, **emulator_settings(emu)}
    options = ("--batch-size", "20", "--max-concurrency", "4")
    command = [sys.executable, "-m", "mm_embed.bulk", "--engine", "ray"]
    command += ["--ray-address", ray_cluster.address]
    output = tmp_path / "out"

    driver = subprocess.Popen(
        command + _command(corpus, output, *options), env=env, stderr=subprocess.PIPE
    )
    try:
        wait_until(
            lambda: len(list((output / BATCHES).glob("*.json"))) >= 15 or driver.poll() is not None,
            120,
            "15 written batches",
        )
        assert driver.poll() is None, "the run ended before it could be killed"
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
        if driver.stderr is not None:
            driver.stderr.close()
    # The killed driver's actors go with its job; then what is on disk is final.
    wait_until(lambda: not alive_actors("EmbedBatches"), 60, "the killed run's actors to stop")
    written = _written(output)
    manifest = orjson.loads((output / MANIFEST).read_bytes())
    assert 0 < len(written) < len(rows) and manifest["complete"] is False

    # Requests the killed actors had in flight may still be answered (and logged) now:
    # only those the resume started count.
    resume_started = time.time()
    resumed = subprocess.run(
        command + _command(corpus, output, *options, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    print(f"resume took {time.time() - resume_started:.1f} s")
    assert resumed.returncode == ExitCode.REJECTS, resumed.stderr[-3000:]
    assert "finished by an earlier run" in resumed.stderr

    by_hash = {viking_text_hash(str(r["text"])): str(r["id"]) for r in rows if r["text"]}
    sent = [
        by_hash[h]
        for r in emu.log
        if r.time - r.duration_ms / 1000 >= resume_started
        for h in r.item_hashes
        if h in by_hash
    ]
    assert sent, "the resume sent nothing"
    assert not set(sent) & written, "the resume sent items that were already written"
    assert len(sent) == len(set(sent))

    for name, value in emulator_settings(emu).items():
        monkeypatch.setenv(name, value)
    local = embed_main(_command(corpus, clean, *options))
    assert local == ExitCode.REJECTS
    assert _sorted(pq.read_table(output)).equals(_sorted(pq.read_table(clean)))
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == Path(
        f"{clean}.rejects.jsonl"
    ).read_bytes()


@pytest.mark.timeout(300)
def test_an_actor_killed_for_good_is_made_up_for_by_another_pass(
    ray_cluster: RayCluster,
    make_emulator: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # ray.kill's default (no_restart=True) ends an actor for good, and Ray Data then
    # fails the whole dataset: the engine passes over the corpus again, sending only
    # what is not written yet, and the output is the local engine's, every id once.
    import ray

    rows = _corpus(1600)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", rows)
    emu: Emulator = make_emulator(latency_ms=150)  # type: ignore[operator]
    for name, value in emulator_settings(emu).items():
        monkeypatch.setenv(name, value)
    options = ("--batch-size", "20", "--max-concurrency", "4")
    output, clean = tmp_path / "out", tmp_path / "clean.parquet"
    summary = tmp_path / "ray.json"
    killed: list[str] = []

    def kill_one_for_good() -> None:
        wait_until(
            lambda: len(list((output / BATCHES).glob("*.json"))) >= 10, 120, "10 written batches"
        )
        victim = alive_actors("EmbedBatches")[0]
        ray.kill(actor_handle(victim["ActorID"]))  # no_restart=True: Ray's default
        killed.append(victim["ActorID"])

    killer = threading.Thread(target=kill_one_for_good, daemon=True)
    killer.start()
    with caplog.at_level("WARNING", logger="mm_embed.ray.job"):
        code = embed_main(
            _command(corpus, output, *options, "--engine", "ray", "--summary-json", str(summary))
        )
    killer.join(10)

    assert killed, "no actor was killed"
    assert code == ExitCode.REJECTS
    assert any("sending what is not written yet again" in r.message for r in caplog.records)
    assert embed_main(_command(corpus, clean, *options)) == ExitCode.REJECTS
    assert _sorted(pq.read_table(output)).equals(_sorted(pq.read_table(clean)))
    ray_summary = orjson.loads(summary.read_bytes())
    assert (ray_summary["items"], ray_summary["embedded"], ray_summary["rejected"]) == (
        1602,
        1600,
        2,
    )
    assert ray_summary["resumed"] == 0  # the second pass's skips are this run's own work


@pytest.mark.timeout(120)
def test_what_the_ray_engine_refuses_before_sending(
    ray_cluster: RayCluster,
    emulator_env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", _corpus(30))
    twice = write_jsonl(tmp_path / "twice.jsonl", [*_corpus(30), {"id": "doc-00003", "text": "x"}])
    csv = tmp_path / "c.csv"
    csv.write_text("id,text\na,b\n")
    out = tmp_path / "o"
    ray_run = ("--engine", "ray")

    def refused(*argv: str) -> str:
        assert embed_main(list(argv)) == ExitCode.REFUSED
        return capsys.readouterr().err

    assert "Parquet" in refused(*_command(csv, out, *ray_run))
    assert "--engine ray" in refused(*_command(corpus, out, "--ray-address", "auto"))
    assert "JSONL" in refused(*_command(corpus, out, *ray_run, "--output-format", "jsonl"))
    message = refused(*_command(twice, out, *ray_run))
    assert "'doc-00003'" in message and "twice.jsonl:4" in message and "twice.jsonl:33" in message
    assert not emulator_env.log, "something was sent"

    assert embed_main(_command(corpus, out, *ray_run)) == ExitCode.REJECTS
    capsys.readouterr()
    assert "exists" in refused(*_command(corpus, out, *ray_run))
    assert "different settings" in refused(
        *_command(corpus, out, *ray_run, "--resume", "--image-field", "picture")
    )
    assert embed_main(_command(corpus, out, *ray_run, "--resume")) == ExitCode.COMPLETE
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_strict_stops_and_a_changed_input_refuses_the_resume(
    ray_cluster: RayCluster,
    emulator_env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _corpus(60)
    corpus = write_jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "o"
    ray_run = ("--engine", "ray", "--batch-size", "20")

    with monkeypatch.context() as wrong:
        wrong.setenv(f"{EnvVar.VOLC_SECRETKEY}", "not-the-secret")
        assert embed_main(_command(corpus, tmp_path / "denied", *ray_run)) == ExitCode.ABORTED
    err = capsys.readouterr().err
    assert "refused the run" in err and "resume" in err and "not-the-secret" not in err

    assert embed_main(_command(corpus, out, *ray_run, "--strict")) == ExitCode.ABORTED
    assert "more than the limit of 0" in capsys.readouterr().err
    assert embed_main(_command(corpus, out, *ray_run, "--resume")) == ExitCode.REJECTS

    # As if the run had been killed after its last batch, before its manifest...
    manifest = orjson.loads((out / MANIFEST).read_bytes())
    (out / MANIFEST).write_bytes(orjson.dumps({**manifest, "complete": False}))
    # ... and an item it finished had changed since.
    rows[30] = {**rows[30], "text": "another text altogether"}
    write_jsonl(corpus, rows)
    assert embed_main(_command(corpus, out, *ray_run, "--resume")) == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert f"{rows[30]['id']!r}" in err and "input changed" in err
