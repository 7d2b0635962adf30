"""Property tests (hypothesis) of the response parsers and request builders.

- Parsers: genuine emulator replies, mutated at any JSON path (a node replaced by any
  JSON value, deleted, or wrapped), cut at any byte, or replaced by arbitrary bytes,
  under any HTTP status. The parser returns a well-shaped result or raises an
  :class:`MMEmbedError`; nothing else ever escapes (no ``TypeError``, ``KeyError``,
  ``OverflowError``...).
- Builders: arbitrary input lists (texts with any Unicode, wrong types, boxes with any
  numbers) through the public clients either raise :class:`InputError` before anything
  is sent, or round-trip through the emulator with one row per input, in order, with
  the same vectors whatever the batching.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mm_embed import EmbeddingResult, InputError, MMEmbedError
from mm_embed.emulator import Emulator
from mm_embed.inputs import validate_boxes
from mm_embed.providers.fgclip import protocol as fg_proto
from mm_embed.providers.viking import protocol as vk_proto
from tests.integration._helpers import (
    FG_PATH,
    VIKING_PATH,
    fg_client,
    fg_headers,
    noisy_png,
    signed_headers,
    viking_client,
)

T = TypeVar("T")

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ROUND_TRIP = settings(FUZZ, max_examples=30)
PER_SHAPE = settings(FUZZ, max_examples=120)  # for each of the four reply shapes

LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # orjson's whole integer range
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
STATUS = st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 408, 418, 429, 500, 502, 503])


# ------------------------------------------------------------------ genuine replies


FG_TYPES = ["float", "int8", "uint8"]


@pytest.fixture(scope="module")
def replies(emu: Emulator) -> dict[str, tuple[Any, int]]:
    """Real reply bodies (parsed JSON) and their row counts, one per reply shape."""
    image = "data:image/png;base64," + __import__("base64").b64encode(noisy_png(32, 24, 3)).decode()
    fg_bodies: dict[str, tuple[Any, int]] = {
        "fg-texts": (
            {
                "model": "fg-clip",
                "input_type": "text",
                "embedding_types": FG_TYPES,
                "texts": ["a", "b", "c"],
            },
            3,
        ),
        "fg-boxes": (
            {
                "model": "fg-clip",
                "input_type": "image",
                "embedding_types": FG_TYPES,
                "images": [image, image],
                "image_boxes": [[[0, 0, 8, 8], [4, 4, 8, 8]], [[1, 1, 5, 5]]],
            },
            3,
        ),
    }
    vk_bodies: dict[str, tuple[Any, int]] = {
        "vk-bge-m3": (
            {
                "model": {"model_name": "bge-m3", "params": {"return_token_usage": True}},
                "data": [{"data_type": "text", "text": t} for t in ("red apple", "blue sea")],
            },
            2,
        ),
        "vk-hybrid": (
            {
                "model": {
                    "model_name": "doubao-embedding-and-m3",
                    "params": {"return_token_usage": True},
                },
                "data": [{"data_type": "text", "text": "a green leaf"}],
            },
            1,
        ),
    }
    found: dict[str, tuple[Any, int]] = {}
    with httpx.Client(timeout=20) as http:
        for name, (body, rows) in fg_bodies.items():
            r = http.post(emu.url + FG_PATH, content=orjson.dumps(body), headers=fg_headers(emu))
            found[name] = (r.json(), rows)
            assert r.json()["context"]["code"] == 0
        for name, (body, rows) in vk_bodies.items():
            raw = orjson.dumps(body)
            r = http.post(emu.url + VIKING_PATH, content=raw, headers=signed_headers(emu, raw))
            found[name] = (r.json(), rows)
            assert r.json()["code"] == 0
    # Six columns per vector keep every shape and make each example cheap to copy.
    for tree, _ in found.values():
        data = tree["data"]
        for key in ("float", "int8", "uint8"):
            if "embeddings" in data:
                data["embeddings"][key] = [row[:6] for row in data["embeddings"][key]]
        if "sentence_dense_embedding" in data:
            data["sentence_dense_embedding"] = [row[:6] for row in data["sentence_dense_embedding"]]
    return found


def parse(name: str, status: int, content: bytes, rows: int) -> EmbeddingResult:
    if name.startswith("fg-"):
        return fg_proto.parse_response(
            status, content, expected_rows=rows, embedding_types=FG_TYPES
        )
    # The recorded replies are cut to six columns: the width check is tested elsewhere.
    request = vk_proto.resolve_request(model="fuzz-model", return_sparse=True, strict=False)
    return vk_proto.parse_response(status, content, expected_rows=rows, request=request)


def well_shaped(name: str, result: EmbeddingResult, rows: int) -> None:
    assert len(result) == rows
    wanted = FG_TYPES if name.startswith("fg-") else ["float"]
    assert sorted(result.dense) == sorted(wanted)
    for kind, matrix in result.dense.items():
        assert matrix.ndim == 2 and matrix.shape[0] == rows
        assert matrix.dtype == {"float": np.float32, "int8": np.int8, "uint8": np.uint8}[kind]
        if kind == "float":
            assert np.isfinite(matrix).all()
    if name.startswith("vk-"):
        assert result.sparse is not None and len(result.sparse) == rows
        for vector in result.sparse:
            assert all(math.isfinite(v) for v in vector.values)


def json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):  # a few rows and columns are enough
            found += json_paths(value, (*prefix, i))
    return found


@st.composite
def mutation(draw: st.DrawFn, tree: Any) -> Any:
    tree = copy.deepcopy(tree)
    path = draw(st.sampled_from(json_paths(tree)))
    action = draw(st.sampled_from(["replace", "delete", "wrap", "duplicate"]))
    if not path:
        return draw(JSON) if action == "replace" else [tree]
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "replace":
        parent[key] = draw(JSON)
    elif action == "delete":
        del parent[key]
    elif action == "wrap":
        parent[key] = [parent[key]]
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        parent[key] = [parent[key], parent[key]]
    return tree


REPLY_NAMES = ["fg-texts", "fg-boxes", "vk-bge-m3", "vk-hybrid"]


def on_each_reply_shape(test: Callable[..., None]) -> Callable[..., None]:
    """Run ``test(replies, name, data, status)`` for each genuine reply shape ``name``,
    ``PER_SHAPE`` examples each, hypothesis drawing ``data`` and an HTTP ``status``."""
    drawn: Callable[..., None] = PER_SHAPE(given(data=st.data(), status=STATUS)(test))
    per_shape: Callable[..., None] = pytest.mark.parametrize("name", REPLY_NAMES)(drawn)
    return per_shape


def only_our_errors(name: str, status: int, content: bytes, rows: int) -> None:
    try:
        result = parse(name, status, content, rows)
    except MMEmbedError:
        return
    assert 200 <= status < 300, "an error status must never parse as a result"
    well_shaped(name, result, rows)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@on_each_reply_shape
def test_mutated_replies_raise_only_our_errors(
    replies: dict[str, tuple[Any, int]], name: str, data: st.DataObject, status: int
) -> None:
    tree, rows = replies[name]
    mutated = data.draw(mutation(tree))
    only_our_errors(name, status, orjson.dumps(mutated), rows)


@on_each_reply_shape
def test_cut_or_garbled_replies_raise_only_our_errors(
    replies: dict[str, tuple[Any, int]], name: str, data: st.DataObject, status: int
) -> None:
    content = orjson.dumps(replies[name][0])
    how = data.draw(st.sampled_from(["cut", "flip", "bytes"]))
    if how == "cut":
        content = content[: data.draw(st.integers(0, len(content)))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(content) - 1))
        content = content[:at] + bytes([data.draw(st.integers(0, 255))]) + content[at + 1 :]
    else:
        content = data.draw(st.binary(max_size=300))
    only_our_errors(name, status, content, replies[name][1])


@FUZZ
@given(value=JSON, status=STATUS)
def test_any_json_document_raises_only_our_errors(value: Any, status: int) -> None:
    content = orjson.dumps(value)
    for name in REPLY_NAMES:
        only_our_errors(name, status, content, 2)


def vector_cells(name: str, tree: Any) -> list[tuple[Any, ...]]:
    """Paths of the first cells of every vector a reply carries."""
    if name.startswith("fg-"):
        return [
            ("data", "embeddings", kind, row, col)
            for kind in FG_TYPES
            for row in (0, 1)
            for col in (0, 5)
        ]
    cells: list[tuple[Any, ...]] = [
        ("data", "sentence_dense_embedding", row, col) for row in (0, 1) for col in (0, 5)
    ]
    first = next(iter(tree["data"]["sentence_sparse_embedding"][0]))
    cells.append(("data", "sentence_sparse_embedding", 0, first))
    return cells


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("name", REPLY_NAMES)
@PER_SHAPE
@given(
    data=st.data(),
    value=LEAF | st.sampled_from([2**63, 2**64 - 1, -(2**63) - 0, 1e39, -1e300, 128, -129, 256]),
)
def test_any_value_in_a_vector_cell_raises_only_our_errors(
    replies: dict[str, tuple[Any, int]], name: str, data: st.DataObject, value: Any
) -> None:
    tree, rows = replies[name]
    tree = copy.deepcopy(tree)
    path = data.draw(st.sampled_from([p for p in vector_cells(name, tree) if p[-2] < rows]))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    only_our_errors(name, 200, orjson.dumps(tree), rows)


def test_unmutated_replies_parse(replies: dict[str, tuple[Any, int]]) -> None:
    for name, (tree, rows) in replies.items():
        well_shaped(name, parse(name, 200, orjson.dumps(tree), rows), rows)


# ------------------------------------------------------------------ builders

TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # every code point, surrogates too
    min_size=0,
    max_size=40,
)
ANYTHING = (
    TEXT
    | st.integers()
    | st.none()
    | st.binary(max_size=8)
    | st.floats()
    | st.lists(st.text(max_size=3), max_size=2)
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def clients(emu: Emulator, http: httpx.Client) -> tuple[Any, Any]:
    return (
        fg_client(emu, max_batch_size=7, http_client=http),
        viking_client(emu, max_batch_size=9, http_client=http),
    )


@FUZZ
@given(inputs=st.lists(ANYTHING, min_size=0, max_size=12))
def test_arbitrary_text_inputs_are_refused_before_sending_or_embedded(
    emu: Emulator, clients: tuple[Any, Any], inputs: list[Any]
) -> None:
    fg, vk = clients
    for embed in (lambda: fg.embed_texts(inputs), lambda: vk.embed(inputs, model="bge-m3")):
        emu.clear_log()
        result = outcome(embed)
        if isinstance(result, InputError):
            assert emu.log == []
            assert result.index is None or 0 <= result.index < len(inputs)
            continue
        assert len(result) == len(inputs)
        assert all(isinstance(t, str) and t.strip() for t in inputs)
        assert sum(r.items for r in emu.log if r.embedded) == len(inputs)


@settings(FUZZ, max_examples=100)
@given(texts=st.lists(TEXT, min_size=1, max_size=5))
@example(texts=["ok", "lone \ud800 surrogate"])
@example(texts=["nul \x00 inside", "\u200b", "\ufeff"])
def test_any_unicode_text_is_refused_before_sending_or_embedded(
    emu: Emulator, clients: tuple[Any, Any], texts: list[str]
) -> None:
    fg, vk = clients
    for embed in (
        lambda: fg.embed_texts(texts, truncate="start"),
        lambda: vk.embed(texts, model="bge-m3"),
    ):
        emu.clear_log()
        result = outcome(embed)
        if isinstance(result, InputError):
            assert emu.log == []
            assert result.index is not None and 0 <= result.index < len(texts)
            bad = texts[result.index]
            assert not bad.strip() or not _encodable(bad)
            continue
        assert len(result) == len(texts)


NUMBER = (
    st.integers(-5, 60)
    | st.floats(allow_nan=True, allow_infinity=True, width=32)
    | st.booleans()
    | st.text(max_size=2)
)


@FUZZ
@given(boxes=st.lists(st.lists(NUMBER, min_size=0, max_size=5) | ANYTHING, max_size=4) | ANYTHING)
def test_arbitrary_boxes_are_valid_or_refused(boxes: Any) -> None:
    checked = outcome(lambda: validate_boxes(boxes, image_size=(40, 30), field="boxes", index=0))
    if isinstance(checked, InputError):
        assert checked.index == 0 and str(checked).startswith("boxes[0]")
        return
    for x, y, w, h in checked:
        assert min(x, y) >= 0 and w > 0 and h > 0 and x + w <= 40 and y + h <= 30


@pytest.mark.parametrize("route", ["fgclip", "viking"])
@ROUND_TRIP
@given(
    texts=st.lists(
        st.text(min_size=1, max_size=30).filter(lambda t: t.strip()), min_size=1, max_size=60
    ),
    batch=st.integers(1, 40),
)
def test_round_trip_keeps_order_and_count(
    emu: Emulator, http: httpx.Client, route: str, texts: list[str], batch: int
) -> None:
    """Any texts, any batch size: one row per input, in order, and the same vectors as
    the reversed list sent with the provider's batch size (so order is not luck)."""
    assume(all(_encodable(t) for t in texts))
    # One shared connection pool (not closed by the clients): building a client is cheap.
    make = fg_client if route == "fgclip" else viking_client
    small = make(emu, max_batch_size=batch, http_client=http)
    big = make(emu, http_client=http)

    def run(client: Any, xs: list[str]) -> EmbeddingResult:
        if route == "fgclip":
            return client.embed_texts(xs, truncate="start")  # type: ignore[no-any-return]
        return client.embed(xs, model="bge-m3")  # type: ignore[no-any-return]

    forward = run(small, texts)
    backward = run(big, texts[::-1])
    n = len(texts)
    assert len(forward) == n and list(forward.input_indices) == list(range(n))
    assert forward.embeddings.tobytes() == backward.embeddings[::-1].tobytes()
    if route == "viking":
        assert forward.sparse is not None and backward.sparse is not None
        assert [dict(v.weights) for v in forward.sparse] == [
            dict(v.weights) for v in backward.sparse[::-1]
        ]


def outcome(call: Callable[[], T]) -> T | InputError:
    """The call's value, or the InputError it raised (any other exception propagates)."""
    try:
        return call()
    except InputError as error:
        return error


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
