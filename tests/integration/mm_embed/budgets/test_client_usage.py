"""A client whose token budget is active asks every reply for its token usage (the
budget settles each estimate with it); without a token budget it asks only when told."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from mm_embed import VikingClient
from mm_embed.budgets import LocalBudget


@pytest.mark.parametrize(
    ("tokens_per_minute", "asked", "sent"),
    [("auto", False, True), (60_000, False, True), (None, False, False), (None, True, True)],
)
def test_usage_is_requested_whenever_tokens_are_paced(
    emulator: Any, tokens_per_minute: Any, asked: bool, sent: bool
) -> None:
    bodies: list[dict[str, Any]] = []

    def capture(request: httpx.Request) -> None:
        if request.method == "POST":
            bodies.append(orjson.loads(request.content))

    http = httpx.Client(event_hooks={"request": [capture]})
    budget = LocalBudget()
    with VikingClient(
        emulator.access_key,
        emulator.secret_key,
        base_url=emulator.url,
        tokens_per_minute=tokens_per_minute,
        budget=budget,
        http_client=http,
    ) as client:
        result = client.embed(["settled by usage"], model="bge-m3", return_token_usage=asked)
        quota = client.tokens_quota("bge-m3")
    http.close()
    assert len(bodies) == 1
    assert bodies[0]["model"]["params"].get("return_token_usage", False) is sent
    if quota is not None:  # the bucket holds what the provider billed, not the estimate
        assert budget.state(client.account, quota).consumed == result.usage.total_tokens > 0
