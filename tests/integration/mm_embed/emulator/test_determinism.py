"""Each vector is a function of its own input alone: the same input gives the same bits
alone, in a full batch of random others, and at any position in it."""

from __future__ import annotations

import random
import string
from typing import Any

import httpx
import numpy as np
import pytest

from mm_embed.emulator import DEFAULT_TOKEN, Emulator
from mm_embed.providers.viking import MODELS
from tests.integration._helpers import (
    VIKING_PATH,
    b64_media,
    data_uri,
    fg_ok,
    image_body,
    serve_process,
    solid_png,
    text_body,
    vbody,
    viking_ok,
)

TARGET_TEXT = "a red circle 和一个蓝色的方块"
RNG_SEED = 20240601


def random_texts(n: int, seed: int) -> list[str]:
    """Random letters, spaces, CJK and punctuation: many distinct features per batch."""
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + "      红蓝部署向量数据!,"
    return ["".join(rng.choices(alphabet, k=rng.randint(5, 150))).strip() or "x" for _ in range(n)]


def random_pngs(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [
        solid_png(
            (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            (rng.randint(4, 90), rng.randint(4, 90)),
        )
        for _ in range(n)
    ]


def placements(target: Any, others: list[Any]) -> list[tuple[list[Any], int]]:
    """(batch, index of target): alone, first, middle and last of a full batch."""
    full = len(others) + 1
    out = [([target], 0)]
    for position in (0, full // 2, full - 1):
        batch = [*others]
        batch.insert(position, target)
        out.append((batch, position))
    return out


def bits(rows: Any, index: int) -> bytes:
    return np.asarray(rows[index], dtype=np.float32).tobytes()


def assert_all_equal(seen: list[Any], what: str) -> None:
    assert len(seen) == 4
    assert all(s == seen[0] for s in seen), f"{what}: differs with its batch"


TEXT_MODELS = sorted(
    (name, version)
    for name, spec in MODELS.items()
    for version, info in spec.versions.items()
    if "text" in info.data_types
)
IMAGE_MODELS = sorted(
    (name, version)
    for name, spec in MODELS.items()
    for version, info in spec.versions.items()
    if "image" in info.data_types
)


def version_params(name: str, version: str) -> dict[str, Any]:
    return {} if version == MODELS[name].default_version else {"model_version": version}


@pytest.mark.parametrize(("model", "version"), TEXT_MODELS)
def test_viking_text_vectors_ignore_their_batch(
    emulator_session: Emulator, model: str, version: str
) -> None:
    others = random_texts(99, RNG_SEED)
    dense: list[bytes] = []
    sparse: list[Any] = []
    for batch, index in placements(TARGET_TEXT, others):
        items = [{"data_type": "text", "text": t} for t in batch]
        data = viking_ok(emulator_session, vbody(model, items, **version_params(model, version)))
        dense.append(bits(data["sentence_dense_embedding"], index))
        if MODELS[model].sparse:
            sparse.append(data["sentence_sparse_embedding"][index])
    assert_all_equal(dense, f"{model} dense")
    if MODELS[model].sparse:
        assert_all_equal(sparse, f"{model} sparse")


@pytest.mark.parametrize(("model", "version"), IMAGE_MODELS)
def test_viking_image_vectors_ignore_their_batch(
    emulator_session: Emulator, model: str, version: str
) -> None:
    target = b64_media(solid_png((200, 40, 40), (64, 48)))
    others = [b64_media(p) for p in random_pngs(99, RNG_SEED)]
    dense = []
    for batch, index in placements(target, others):
        items = [{"data_type": "image", "image": i} for i in batch]
        data = viking_ok(emulator_session, vbody(model, items, **version_params(model, version)))
        dense.append(bits(data["sentence_dense_embedding"], index))
    assert_all_equal(dense, f"{model}@{version} image")


@pytest.mark.parametrize("kind", ["global", "local"])
def test_fgclip_text_vectors_ignore_their_batch(emulator_session: Emulator, kind: str) -> None:
    others = random_texts(31, RNG_SEED + 1)
    seen: dict[str, list[Any]] = {"float": [], "int8": [], "uint8": []}
    for batch, index in placements(TARGET_TEXT, others):
        body = text_body(
            batch, embedding_types=list(seen), text_box_flag=kind == "local", truncate="start"
        )
        embeddings = fg_ok(emulator_session, body)["embeddings"]
        seen["float"].append(bits(embeddings["float"], index))
        seen["int8"].append(embeddings["int8"][index])
        seen["uint8"].append(embeddings["uint8"][index])
    for name, values in seen.items():
        assert_all_equal(values, f"fg-clip {kind} {name}")


def test_fgclip_image_and_box_vectors_ignore_their_batch(emulator_session: Emulator) -> None:
    target = data_uri(solid_png((30, 60, 220), (80, 60)))
    others = [data_uri(p) for p in random_pngs(31, RNG_SEED + 2)]
    images, boxes = [], []
    for batch, index in placements(target, others):
        images.append(
            bits(fg_ok(emulator_session, image_body(batch))["embeddings"]["float"], index)
        )
        with_boxes = [[[0, 0, 4, 4]] for _ in batch]
        with_boxes[index] = [[10, 5, 40, 30]]
        data = fg_ok(emulator_session, image_body(batch, image_boxes=with_boxes))
        boxes.append(bits(data["embeddings"]["float"], index))
    assert_all_equal(images, "fg-clip image")
    assert_all_equal(boxes, "fg-clip box")


def test_same_bits_from_a_process_with_other_blas_threads(emulator_session: Emulator) -> None:
    """Another engine (a separate ``mm-embed serve`` with a multi-threaded BLAS) gives
    the same bits for the same inputs."""
    batch = [TARGET_TEXT, *random_texts(99, RNG_SEED + 3)]
    body = vbody("doubao-embedding-large", [{"data_type": "text", "text": t} for t in batch])
    here = viking_ok(emulator_session, body)["sentence_dense_embedding"]
    with serve_process(env_extra={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}) as other:
        # The child runs with the default credentials, like emulator_session.
        there = httpx.post(
            other.url + VIKING_PATH, json=body, headers={"Authorization": f"token={DEFAULT_TOKEN}"}
        ).json()["data"]["sentence_dense_embedding"]
    assert (
        np.asarray(here, dtype=np.float32).tobytes()
        == np.asarray(there, dtype=np.float32).tobytes()
    )
