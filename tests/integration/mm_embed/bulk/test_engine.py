"""The streaming engine against the emulator: order, rejects, bisection, re-sends, aborts,
bounded read-ahead, token shares."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mm_embed import FGClipClient, VikingClient
from mm_embed.budgets import LocalBudget
from mm_embed.bulk import BulkAborted, BulkEmbedder, BulkItem, RejectCode, embed_stream
from mm_embed.bulk.batches import allocate
from mm_embed.emulator import Emulator
from mm_embed.emulator.state import item_hash

MODEL = "doubao-embedding"


def viking(emu: Emulator, **options: Any) -> VikingClient:
    # Each client its own budget: the tests share the emulator's account, not its quota.
    options.setdefault("budget", LocalBudget())
    return VikingClient(emu.access_key, emu.secret_key, base_url=emu.url, **options)


def fgclip(emu: Emulator, **options: Any) -> FGClipClient:
    options.setdefault("budget", LocalBudget())
    return FGClipClient(emu.api_key, base_url=emu.url, **options)


def texts(n: int) -> list[dict[str, str]]:
    return [{"id": f"t{i}", "text": f"text number {i} about rivers"} for i in range(n)]


def fg_counts(emu: Emulator) -> Counter[str]:
    return Counter(h for r in emu.log if r.embedded for h in r.item_hashes)


def png_bytes(color: str = "red", size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_results_in_input_order_match_direct_calls(emulator: Emulator) -> None:
    items = texts(230)
    with viking(emulator) as client:
        results = list(
            embed_stream(
                client, items, model=MODEL, dimension=512, batch_size=20, max_concurrency=4
            )
        )
        direct = client.embed([i["text"] for i in items], model=MODEL, dimension=512)
    assert [r.index for r in results] == list(range(230))
    assert [r.id for r in results] == [i["id"] for i in items]
    assert all(r.ok for r in results)
    np.testing.assert_allclose(np.stack([r.vector for r in results]), direct.embeddings, atol=1e-6)


def test_sparse_and_token_shares(emulator: Emulator) -> None:
    items = texts(40)
    with viking(emulator) as client:
        engine = BulkEmbedder(client, model="bge-m3", sparse=True, batch_size=16)
        batches = list(engine.iter_batches(items))
        direct = client.embed(
            [i["text"] for i in items], model="bge-m3", return_sparse=True, return_token_usage=True
        )
    results = [r for b in batches for r in b.items()]
    assert [r.sparse[0].to_dict() for r in results if r.sparse] == [
        v.to_dict() for v in direct.sparse or []
    ]
    # Each batch's shares add up to what the provider billed for it.
    for batch in batches:
        assert int(batch.tokens.sum()) == batch.billed_tokens > 0
    assert sum(r.tokens for r in results) == direct.usage.total_tokens
    assert engine.stats.tokens == direct.usage.total_tokens
    assert engine.stats.embedded == 40 and engine.stats.calls == 3


def test_bad_records_duplicates_and_unreadable_images_are_rejected(
    emulator: Emulator, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes()[:40])
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes("blue"))
    items: list[object] = [
        {"id": "a", "text": "first"},
        {"id": "b"},
        {"id": "a", "text": "same id again"},
        {"id": "c", "image": str(broken)},
        {"id": "d", "image": str(tmp_path / "missing.png")},
        {"id": "e", "image": str(good), "text": "a blue square"},
        {"id": "f", "image": str(good), "boxes": [[0, 0, 4, 4]]},
        "plain text",
    ]
    with viking(emulator) as client:
        results = list(embed_stream(client, items, model="doubao-embedding-vision", batch_size=4))
    by_id = {r.index: r for r in results}
    assert [r.ok for r in results] == [True, False, False, False, False, True, False, True]
    assert by_id[1].reject and by_id[1].reject.code == RejectCode.BAD_RECORD
    assert by_id[2].reject and by_id[2].reject.code == RejectCode.DUPLICATE_ID
    assert "first seen at item 0" in by_id[2].reject.message
    rejected = by_id[3].reject
    assert rejected and rejected.code == RejectCode.INVALID_INPUT and rejected.field == "image"
    assert rejected.message == "bytes are not a readable image"
    assert by_id[4].reject and by_id[4].reject.code == RejectCode.MISSING_IMAGE
    assert by_id[6].reject and by_id[6].reject.code == RejectCode.UNSUPPORTED
    assert by_id[7].id == "7"


def test_provider_refusal_is_isolated_by_halving(emulator: Emulator) -> None:
    items = [{"id": f"t{i}", "text": f"short text {i}"} for i in range(50)]
    items[37]["text"] = " ".join(["word"] * 300)  # over FG-CLIP's 196 tokens: refused
    with fgclip(emulator) as client:
        # 50 items per client call = two wire requests (32 + 18): the first succeeds and
        # comes back as a partial result, the second is halved until the refused item is
        # alone.
        engine = BulkEmbedder(client, batch_size=50)
        results = list(engine.stream(items))
    bad = results[37].reject
    assert bad is not None and bad.code == 400 and bad.field == "text" and "196" in bad.message
    assert [r.index for r in results if not r.ok] == [37]
    counts = fg_counts(emulator)
    good = [item_hash(i["text"].encode()) for k, i in enumerate(items) if k != 37]
    assert all(counts[h] == 1 for h in good), "a good item was embedded twice"
    assert counts[item_hash(items[37]["text"].encode())] == 0
    assert engine.stats.splits >= 4


def test_transient_failures_are_re_sent_not_rejected(
    make_emulator: Callable[..., Emulator],
) -> None:
    emu = make_emulator()
    # Two consecutive 503s defeat a client with one retry; the engine re-sends.
    emu.queue_faults("503", "503", "503", "503")
    with viking(emu, max_retries=1) as client:
        engine = BulkEmbedder(
            client, model=MODEL, dimension=512, batch_size=10, max_concurrency=1, round_delay=0.01
        )
        results = list(engine.stream(texts(30)))
    assert all(r.ok for r in results)
    assert engine.stats.rounds == 2 and engine.retries >= 4
    counts = Counter(h for r in emu.log if r.embedded for h in r.item_hashes)
    assert len(counts) == 30 and set(counts.values()) == {1}


def test_provider_outage_aborts_after_the_rounds(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(fault_rate=1.0, faults=("500",))
    with viking(emu, max_retries=0) as client:
        engine = BulkEmbedder(
            client, model=MODEL, dimension=512, batch_size=10, max_rounds=2, round_delay=0.01
        )
        with pytest.raises(BulkAborted, match="kept failing after 2 re-sends") as info:
            list(engine.stream(texts(5)))
    assert info.value.cause is not None


def test_bad_credentials_abort_at_once(emulator: Emulator) -> None:
    client = VikingClient(emulator.access_key, "wrong-secret", base_url=emulator.url)
    with client, pytest.raises(BulkAborted, match="refused the run"):
        list(embed_stream(client, texts(30), model=MODEL, batch_size=10))
    assert len(emulator.log) <= 4  # the first calls in flight, no bisection


def test_max_rejects_stops_the_run(emulator: Emulator) -> None:
    items = [{"id": str(i), "text": "x"} if i % 3 else {"id": str(i)} for i in range(30)]
    seen = []
    with viking(emulator) as client:
        engine = BulkEmbedder(client, model=MODEL, dimension=512, batch_size=5, max_rejects=2)
        with pytest.raises(BulkAborted, match="more than the limit of 2"):
            seen.extend(engine.stream(items))
    assert len(seen) == 10  # two batches came back (with 4 rejects) before the stop


def test_fgclip_images_with_boxes_give_one_row_per_box(emulator: Emulator) -> None:
    image = png_bytes("green", 64)
    items = [
        BulkItem("whole", image=image),
        BulkItem("boxed", image=image, boxes=[[0, 0, 32, 32], [10, 10, 20, 20]]),
        BulkItem("txt", text="a green square"),
        BulkItem("both", text="x", image=image),
    ]
    with fgclip(emulator) as client:
        results = list(embed_stream(client, items))
    whole, boxed, txt, both = results
    assert whole.dense is not None and whole.dense.shape == (1, 768) and whole.boxes is None
    assert boxed.dense is not None and boxed.dense.shape == (2, 768)
    assert boxed.boxes is not None and boxed.boxes.tolist() == [0, 1]
    assert txt.ok and both.reject and both.reject.code == RejectCode.UNSUPPORTED


def test_reading_is_lazy_and_bounded() -> None:
    pulled = 0

    def source() -> Iterator[str]:
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield f"text {i}"

    with Emulator() as emu, viking(emu) as client:
        engine = BulkEmbedder(
            client, model=MODEL, dimension=512, batch_size=10, max_concurrency=2, max_pending=3
        )
        stream = engine.stream(source())
        first = next(stream)
        assert first.ok and pulled <= 3 * 10 + 1
        for _ in range(100):
            next(stream)
        assert pulled <= 100 + 3 * 10 + 1
        stream.close()  # type: ignore[attr-defined]


def test_async_clients_are_refused(emulator: Emulator) -> None:
    from mm_embed import AsyncVikingClient

    client = AsyncVikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url)
    with pytest.raises(TypeError, match="blocking"):
        BulkEmbedder(client, model=MODEL)


def test_configuration_is_checked_before_reading(emulator: Emulator) -> None:
    from mm_embed import ConfigurationError, InputError

    with viking(emulator) as client:
        with pytest.raises(InputError, match="no sparse vectors"):
            BulkEmbedder(client, model=MODEL, sparse=True)
        with pytest.raises(InputError, match="dimensions"):
            BulkEmbedder(client, model=MODEL, dimension=7)
        with pytest.raises(ConfigurationError, match="needs a model"):
            BulkEmbedder(client)
    with fgclip(emulator) as fg, pytest.raises(ConfigurationError, match="no sparse"):
        BulkEmbedder(fg, sparse=True)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, [1, 1, 1], [4, 3, 3]),
        (7, [5, 0, 2], [5, 0, 2]),
        (0, [1, 2], [0, 0]),
        (3, [0, 0, 0], [1, 1, 1]),
        (5, [], []),
    ],
)
def test_allocate(total: int, weights: list[int], expected: list[int]) -> None:
    shares = allocate(total, weights)
    assert shares.tolist() == expected
    assert int(shares.sum()) == (total if weights else 0)


def test_fgclip_token_budget_is_charged_with_real_usage(emulator: Emulator) -> None:
    with fgclip(emulator) as client:
        engine = BulkEmbedder(client, tokens_per_minute=600_000, batch_size=8)
        results = list(engine.stream(texts(20)))
    quota = engine.provider.quota  # type: ignore[attr-defined]
    consumed = client.budget.state(client.account, quota).consumed
    assert all(r.ok for r in results)
    assert consumed == sum(r.tokens for r in results) == engine.stats.tokens > 0
