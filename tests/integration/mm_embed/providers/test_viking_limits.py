"""Viking limits through our clients: 100 items and 4 MB per request (the client
splits), the server's token-per-minute and image-per-second quotas (1000029)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mm_embed import ImageItem, RateLimitError
from mm_embed.emulator import Emulator
from mm_embed.providers.viking import catalogue
from mm_embed.retry import RetryPolicy
from tests.integration._helpers import Clients, noisy_png, records

# Enough patience (about 2 s in all) for a drained per-second bucket to refill.
FAST = RetryPolicy(max_retries=10, initial_delay=0.05, max_delay=0.3)


async def test_100_items_per_request(clients: Clients, emulator_session: Emulator) -> None:
    texts = [f"item {i}" for i in range(250)]
    since = len(emulator_session.log)
    result = await clients.viking(emulator_session).embed(texts, model="bge-m3")
    assert sorted(r.items for r in records(emulator_session, "viking", since)) == [50, 100, 100]
    assert result.embeddings.shape == (250, 1024)
    alone = await clients.viking(emulator_session).embed([texts[249], texts[0]], model="bge-m3")
    assert np.allclose(alone.embeddings, result.embeddings[[249, 0]], atol=1e-6)


async def test_4mb_body_split(clients: Clients, emulator_session: Emulator) -> None:
    # 90 texts of ~60 kB: 5.4 MB in all, fewer than 100 items, so only bytes split them.
    texts = [f"{i} " + "abc " * 15_000 for i in range(90)]
    since = len(emulator_session.log)
    result = await clients.viking(emulator_session, tokens_per_minute=None).embed(
        texts, model="bge-m3"
    )
    sent = records(emulator_session, "viking", since)
    assert len(sent) == 2 and sum(r.items for r in sent) == 90
    assert all(r.status == 200 and r.embedded for r in sent)
    assert result.embeddings.shape == (90, 1024)


async def test_4mb_body_split_images(clients: Clients, emulator_session: Emulator) -> None:
    # ~1.2 MB of base64 per picture: three fit under 4 MB, not four.
    images = [ImageItem(noisy_png(512, 512, seed)) for seed in range(6)]
    since = len(emulator_session.log)
    result = await clients.viking(emulator_session, images_per_second=None).embed(
        images, model="bge-visualized-m3"
    )
    sent = records(emulator_session, "viking", since)
    assert len(sent) == 2 and sorted(r.items for r in sent) == [3, 3]
    assert all(r.status == 200 for r in sent)
    assert result.embeddings.shape == (6, 1024)


async def test_tokens_per_minute_1000029(
    clients: Clients, make_emulator: Callable[..., Emulator]
) -> None:
    # 100 tokens/s, 6,000 in the bucket: a 6,100-token text empties it, the next waits ~1 s.
    emu = make_emulator(tpm=6000, retry_after=0.2)
    big = " ".join(f"w{i}" for i in range(6100))
    first = clients.viking(emu, tokens_per_minute=None, max_retries=0)
    await first.embed([big], model="bge-m3")
    with pytest.raises(RateLimitError) as caught:
        await first.embed(["one more"], model="bge-m3")
    assert caught.value.code == catalogue.RATE_LIMITED_CODE and caught.value.status_code == 429
    patient = clients.viking(emu, tokens_per_minute=None, max_retries=20)
    result = await patient.embed(["one more"], model="bge-m3")
    assert len(result) == 1
    assert patient.transport.stats.retries >= 1
    assert emu.counters["status:429"] == 1 + patient.transport.stats.retries


async def test_images_per_second(clients: Clients, make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(images_per_second=6)
    red = ImageItem(noisy_png(32, 32, 1))
    # The client's own budget keeps under the server's: no refusal at all.
    paced = clients.viking(emu, images_per_second=6, max_retries=0)
    result = await paced.embed([red] * 9, model="bge-visualized-m3")
    assert len(result) == 9
    sent = records(emu, "viking")
    assert all(r.status == 200 and r.items <= 3 for r in sent)
    # Budget off, no retries: the server's quota surfaces as RateLimitError.
    emu = make_emulator(images_per_second=6)  # a full bucket again
    blunt = clients.viking(emu, images_per_second=None, tokens_per_minute=None, max_retries=0)
    await blunt.embed([red] * 6, model="bge-visualized-m3")  # empties the bucket
    with pytest.raises(RateLimitError) as caught:
        await blunt.embed([red] * 6, model="bge-visualized-m3")
    assert caught.value.code == catalogue.RATE_LIMITED_CODE
    # With retries, the same calls go through.
    retrying = clients.viking(emu, images_per_second=None, tokens_per_minute=None, max_retries=10)
    retrying.client.transport.retry = FAST
    assert len(await retrying.embed([red] * 6, model="bge-visualized-m3")) == 6
    assert retrying.transport.stats.retries >= 1
