"""Client overhead: time to turn one reply's bytes into a result, against a floor.

One command: ``python benchmarks/parse_overhead.py`` (``--smoke`` for a quick run).

The reply bytes are real emulator replies captured once (no timing of the server):
a Viking ``doubao-embedding`` reply of 100 x 2048 dense floats with token usage, and
an FG-CLIP reply of 32 x 768 text embeddings. For each, timed with ``timeit`` (best
and median of ``--repeats`` rounds, per parse):

* floor: ``np.asarray(orjson.loads(b)[...]["..."], dtype=np.float32)``, the least any
  client must do to get a float32 matrix out of JSON;
* ours: ``mm_embed.providers.viking.protocol.parse_response`` / ``fgclip``'s (status
  and code checks, shape checks, usage, the ``EmbeddingResult``);
* official SDK (Viking only): the parsing that ``VikingDBService.embedding_v2`` does on
  the same bytes — ``requests.Response.json()``, ``json.dumps`` of that (its
  ``ServiceBase.json``), ``json.loads`` again and ``["data"]`` — giving lists of Python
  floats, and the same followed by ``np.asarray`` to reach what ours returns.

The closing ratio is the larger of ours / floor (best times) over the two replies.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import orjson
import requests
from _harness import machine_line, ratio_line, run_main, text_corpus

from mm_embed import FGClipClient, VikingClient
from mm_embed.emulator import Emulator
from mm_embed.providers.fgclip import protocol as fgclip
from mm_embed.providers.viking import protocol as viking


def capture_replies() -> tuple[bytes, bytes]:
    """One Viking reply (100 x 2048) and one FG-CLIP reply (32 x 768), as sent."""
    seen: list[bytes] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        if response.request.method == "POST":
            seen.append(response.content)

    with Emulator() as emu:
        hooks: dict[str, list[Callable[[httpx.Response], None]]] = {"response": [keep]}
        with VikingClient(
            emu.access_key,
            emu.secret_key,
            base_url=emu.url,
            tokens_per_minute=None,
            http_client=httpx.Client(event_hooks=hooks),
        ) as client:
            client.embed(
                text_corpus(100, seed=3), model="doubao-embedding", return_token_usage=True
            )
        with FGClipClient(
            emu.api_key, base_url=emu.url, http_client=httpx.Client(event_hooks=hooks)
        ) as fg:
            fg.embed_texts(text_corpus(32, seed=4, max_words=20))
    viking_reply, fgclip_reply = seen
    return viking_reply, fgclip_reply


def sdk_parse(body: bytes) -> Any:
    """What embedding_v2 does with a 200 reply's bytes (volcengine 1.0.229)."""
    response = requests.models.Response()
    response.status_code = 200
    response._content = body
    response.headers["Content-Type"] = "application/json"
    res = json.dumps(response.json())  # ServiceBase.json
    return json.loads(res)["data"]  # embedding_v2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="few rounds, seconds")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    repeats, number = (3, 2) if args.smoke else (args.repeats, 10)
    vbody, fbody = capture_replies()
    print(machine_line())
    print(
        f"Viking reply: {len(vbody) / 1e6:.2f} MB (100 x 2048); FG-CLIP reply: "
        f"{len(fbody) / 1e6:.2f} MB (32 x 768); {repeats} interleaved rounds, ms per parse"
    )

    # Same results first: the timings compare equal work.
    # The reply of a request for doubao-embedding's 2048-d vectors, as the client asks it.
    request = viking.resolve_request(model="doubao-embedding", return_sparse=False)
    ours_v = viking.parse_response(200, vbody, expected_rows=100, request=request)
    floor_v = np.asarray(orjson.loads(vbody)["data"]["sentence_dense_embedding"], np.float32)
    sdk_v = np.asarray(sdk_parse(vbody)["sentence_dense_embedding"], np.float32)
    ours_f = fgclip.parse_response(200, fbody, expected_rows=32, embedding_types=("float",))
    floor_f = np.asarray(orjson.loads(fbody)["data"]["embeddings"]["float"], np.float32)
    assert ours_v.embeddings.shape == (100, 2048) and ours_f.embeddings.shape == (32, 768)
    assert np.array_equal(ours_v.embeddings, floor_v) and np.array_equal(ours_v.embeddings, sdk_v)
    assert np.array_equal(ours_f.embeddings, floor_f)

    candidates: dict[str, tuple[Callable[[], Any], int]] = {
        "viking floor": (
            lambda: np.asarray(
                orjson.loads(vbody)["data"]["sentence_dense_embedding"], dtype=np.float32
            ),
            number,
        ),
        "viking ours": (
            lambda: viking.parse_response(200, vbody, expected_rows=100, request=request),
            number,
        ),
        "viking sdk": (lambda: sdk_parse(vbody), max(1, number // 5)),
        "viking sdk+np": (
            lambda: np.asarray(sdk_parse(vbody)["sentence_dense_embedding"], dtype=np.float32),
            max(1, number // 5),
        ),
        "fgclip floor": (
            lambda: np.asarray(
                orjson.loads(fbody)["data"]["embeddings"]["float"], dtype=np.float32
            ),
            number * 5,
        ),
        "fgclip ours": (
            lambda: fgclip.parse_response(200, fbody, expected_rows=32, embedding_types=("float",)),
            number * 5,
        ),
    }
    # Interleaved rounds: a noisy neighbour slows every candidate of a round alike.
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, (fn, count) in candidates.items():
            times[name].append(timeit.timeit(fn, number=count) / count)
    labels = {
        "viking floor": "Viking 100 x 2048: floor orjson.loads + np.asarray",
        "viking ours": "Viking 100 x 2048: ours viking.parse_response",
        "viking sdk": "Viking 100 x 2048: official SDK parsing (lists)",
        "viking sdk+np": "Viking 100 x 2048: official SDK parsing + np.asarray",
        "fgclip floor": "FG-CLIP 32 x 768:  floor orjson.loads + np.asarray",
        "fgclip ours": "FG-CLIP 32 x 768:  ours fgclip.parse_response",
    }
    best = {name: min(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(
            f"  {labels[name]:<54} best {best[name] * 1e3:8.2f} ms   "
            f"median {statistics.median(ts) * 1e3:8.2f} ms"
        )
    v_floor, v_ours, v_sdk, v_sdk_np = (
        best["viking floor"],
        best["viking ours"],
        best["viking sdk"],
        best["viking sdk+np"],
    )
    f_floor, f_ours = best["fgclip floor"], best["fgclip ours"]
    v_ratio, f_ratio = v_ours / v_floor, f_ours / f_floor
    print(
        f"ours / floor (best): Viking {v_ratio:.3f}, FG-CLIP {f_ratio:.3f};  "
        f"official SDK / ours (best): {v_sdk / v_ours:.1f}x (lists), "
        f"{v_sdk_np / v_ours:.1f}x (+ np.asarray)"
    )
    print(ratio_line("parse_over_floor_max", max(v_ratio, f_ratio), "<=", 1.5))
    return 0


if __name__ == "__main__":
    run_main(main)
