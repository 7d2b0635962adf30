"""Deterministic stand-in encoders: the emulator's vectors are NOT real semantics.

Every input becomes a feature vector in one shared feature space, then a fixed seeded
Gaussian projection (the same in every process) maps it to the model's dimension:

- text: hashed word and character 3-gram features (blake2b, never ``hash()``), plus
  a colour and a shape component for colour words ("red", "红", ...) and shape words
  ("circle", "圆", ...);
- image: a colour histogram over the same named colours, a crude shape guess (how much
  of the foreground's bounding box the foreground fills), a 4x4 colour layout and a
  small hash of the thumbnail; a box is the same encoder applied to the crop;
- text-image / full-modal: the normalised sum of the parts' features.

So shared words give higher cosine, "a red circle" is closer to a red circle picture
than to a blue one, and a text's *local* feature (FG-CLIP ``text_box_flag``) leans on
its colour and shape words so it matches box crops better than its global feature.

Quantisation (FG-CLIP ``int8`` / ``uint8``), for a float vector ``v``:
``int8 = clip(round(v * 127 / max|v|), -128, 127)`` and ``uint8 = int8 + 128``.

Sparse vectors: one entry per distinct lowercased emulator token (punctuation
dropped), weight ``(0.1 + 0.05 * min(len(token), 10)) * (1 + ln(count)) * jitter`` with
a hash-derived jitter in [0.9, 1.1). Keys are the token itself (``"token"`` models) or
a numeric id ``4 + blake2b(token) % 249998`` as a string (``"id"`` models).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .tokens import tokenize

__all__ = [
    "FEATURES",
    "MAX_DIM",
    "bytes_features",
    "combine",
    "image_features",
    "project",
    "quantize_int8",
    "quantize_uint8",
    "sparse_vector",
    "text_features",
    "warm_up",
]

F32 = NDArray[np.float32]

# Named colours shared by the text and image encoders: (name, RGB, words).
_COLOURS: tuple[tuple[str, tuple[int, int, int], tuple[str, ...]], ...] = (
    ("red", (220, 30, 30), ("red", "红")),
    ("green", (30, 160, 50), ("green", "绿")),
    ("blue", (30, 60, 220), ("blue", "蓝")),
    ("yellow", (240, 220, 30), ("yellow", "黄")),
    ("orange", (245, 140, 20), ("orange", "橙")),
    ("purple", (130, 40, 170), ("purple", "violet", "紫")),
    ("pink", (245, 150, 190), ("pink", "粉")),
    ("brown", (120, 70, 30), ("brown", "棕", "褐")),
    ("black", (10, 10, 10), ("black", "黑")),
    ("white", (245, 245, 245), ("white", "白")),
    ("gray", (128, 128, 128), ("gray", "grey", "灰")),
    ("cyan", (30, 200, 210), ("cyan", "青")),
)
#: (name, fraction of its bounding box a filled shape covers, words)
_SHAPES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("circle", math.pi / 4, ("circle", "round", "disc", "ball", "圆")),
    ("square", 1.0, ("square", "rectangle", "box", "方")),
    ("triangle", 0.5, ("triangle", "角")),
)
PALETTE = np.array([rgb for _, rgb, _ in _COLOURS], dtype=np.float32)
COLOUR_NAMES = tuple(name for name, _, _ in _COLOURS)
_COLOUR_WORDS = {w: i for i, (_, _, words) in enumerate(_COLOURS) for w in words}
_SHAPE_WORDS = {w: i for i, (_, _, words) in enumerate(_SHAPES) for w in words}

TEXT_BUCKETS = 1024
_C0 = TEXT_BUCKETS
_S0 = _C0 + len(_COLOURS)
_L0 = _S0 + len(_SHAPES)
_H0 = _L0 + 48
FEATURES = _H0 + 64
MAX_DIM = 4096
_THUMB = 32
_SEED = b"mm-embed-emulator/v1"


def _digest(text: str | bytes, salt: bytes = b"") -> int:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=_SEED + salt).digest(), "little")


@lru_cache(maxsize=65536)
def _bucket(feature: str) -> tuple[int, float]:
    h = _digest(feature, b"bucket")
    return h % TEXT_BUCKETS, 1.0 if (h >> 40) & 1 else -1.0


def _norm(values: NDArray[np.floating[Any]]) -> float:
    # Not np.linalg.norm: that is a BLAS call whose kernel (and so its last bits)
    # depends on the CPU; a numpy reduction is the same everywhere.
    return float(np.sqrt(np.add.reduce(np.square(values, dtype=np.float64))))


def _unit(block: F32) -> F32:
    norm = _norm(block)
    return block / norm if norm > 0 else block


@lru_cache(maxsize=8192)
def _text_parts(text: str) -> tuple[F32, F32]:
    """(n-gram block, colour+shape block), each unnormalised."""
    grams = np.zeros(TEXT_BUCKETS, dtype=np.float32)
    named = np.zeros(len(_COLOURS) + len(_SHAPES), dtype=np.float32)
    tokens = [t.lower() for t in tokenize(text)]
    feats: list[tuple[str, float]] = []
    prev_cjk = ""
    for tok in tokens:
        if tok.isascii() and tok.isalnum():
            feats.append(("w:" + tok, 1.0))
            padded = f"<{tok}>"
            feats.extend(("c:" + padded[i : i + 3], 0.5) for i in range(len(padded) - 2))
            prev_cjk = ""
        elif not tok.isascii():
            feats.append(("w:" + tok, 1.0))
            if prev_cjk:
                feats.append(("b:" + prev_cjk + tok, 0.7))
            prev_cjk = tok
        else:
            prev_cjk = ""
        word = tok[:-1] if tok.endswith("s") and tok[:-1] in _SHAPE_WORDS else tok
        if word in _COLOUR_WORDS:
            named[_COLOUR_WORDS[word]] += 1.0
        if word in _SHAPE_WORDS:
            named[len(_COLOURS) + _SHAPE_WORDS[word]] += 1.0
    if not feats:
        feats.append(("w:<empty>" + text, 1.0))
    for feature, weight in feats:
        idx, sign = _bucket(feature)
        grams[idx] += sign * weight
    grams.flags.writeable = False
    named.flags.writeable = False
    return grams, named


def text_features(text: str, *, local: bool = False) -> F32:
    """Feature vector of a text; ``local`` is FG-CLIP's fine-grained text feature."""
    grams, named = _text_parts(text)
    w_grams, w_named = (0.4, 0.9) if local else (0.8, 0.55)
    out = np.zeros(FEATURES, dtype=np.float32)
    out[:TEXT_BUCKETS] = w_grams * _unit(grams)
    colours, shapes = named[: len(_COLOURS)], named[len(_COLOURS) :]
    out[_C0:_S0] = w_named * _unit(colours)
    out[_S0:_L0] = w_named * 0.6 * _unit(shapes)
    if local:
        # A small fixed offset keeps local features distinct from global ones.
        idx, sign = _bucket("local-feature")
        out[idx] += 0.1 * sign
    return _unit(out)


def _thumbnail(image: Image.Image) -> NDArray[np.float32]:
    rgb = image.convert("RGB")
    if rgb.width > 8 * _THUMB and rgb.height > 8 * _THUMB:
        rgb = rgb.reduce(min(rgb.width, rgb.height) // (4 * _THUMB))
    small = rgb.resize((_THUMB, _THUMB), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def image_features(image: Image.Image) -> F32:
    """Feature vector of an image (or of a crop, for a box) from its pixel statistics."""
    pixels = _thumbnail(image)
    flat = pixels.reshape(-1, 3)
    dist = ((flat[:, None, :] - PALETTE[None, :, :]) ** 2).sum(axis=2)
    classes = dist.argmin(axis=1)
    hist: F32 = (np.bincount(classes, minlength=len(_COLOURS)) / len(classes)).astype(np.float32)

    grid = classes.reshape(_THUMB, _THUMB)
    border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
    background = int(np.bincount(border).argmax())
    mask = grid != background
    shapes = np.zeros(len(_SHAPES), dtype=np.float32)
    share = float(mask.mean())
    if 0.02 < share < 0.95:
        rows, cols = np.nonzero(mask)
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        fill = float(box.mean())
        shapes = np.array(
            [math.exp(-(((fill - ratio) / 0.08) ** 2)) for _, ratio, _ in _SHAPES], dtype=np.float32
        )

    layout = pixels.reshape(4, _THUMB // 4, 4, _THUMB // 4, 3).mean(axis=(1, 3)) / 255.0 - 0.5
    noise = np.random.default_rng(_digest(pixels.astype(np.uint8).tobytes(), b"thumb"))

    out = np.zeros(FEATURES, dtype=np.float32)
    out[_C0:_S0] = 0.75 * _unit(hist)
    out[_S0:_L0] = 0.35 * _unit(shapes)
    out[_L0:_H0] = 0.5 * _unit(np.asarray(layout, dtype=np.float32).reshape(-1))
    out[_H0:] = 0.15 * _unit(noise.standard_normal(FEATURES - _H0).astype(np.float32))
    return _unit(out)


def bytes_features(data: bytes) -> F32:
    """Feature vector of opaque media (video): a pure hash of its bytes."""
    rng = np.random.default_rng(_digest(data, b"media"))
    out = np.zeros(FEATURES, dtype=np.float32)
    out[_H0:] = rng.standard_normal(FEATURES - _H0).astype(np.float32)
    out[_L0:_H0] = 0.5 * rng.standard_normal(_H0 - _L0).astype(np.float32)
    return _unit(out)


def combine(parts: Sequence[F32]) -> F32:
    """Joint feature of several parts (text-image pairs, full-modal sequences)."""
    total = np.zeros(FEATURES, dtype=np.float32)
    for part in parts:
        total += _unit(part)
    return _unit(total)


# Exact projection. Features are rounded to multiples of 2**-20 (|x| <= 1) and matrix
# entries to multiples of 2**-16 (|x| < 8), so every product is an integer multiple of
# 2**-36 below 2**3 and a sum of FEATURES (< 2**11) of them stays below 2**14: each
# partial sum is exact in float64 (53-bit mantissa). A vector therefore does not depend
# on the order BLAS adds in, which varies with the batch's shape, the thread count and
# the CPU: each vector is a function of its own input alone, bit for bit.
_FEATURE_STEP = 2.0**20
_MATRIX_STEP = 2.0**16

_lock = threading.Lock()
_projection: F32 | None = None


def _matrix() -> F32:
    """The seeded Gaussian projection, on the 2**-16 grid (exact in float32)."""
    global _projection
    if _projection is None:
        with _lock:
            if _projection is None:
                rng = np.random.default_rng(_digest(b"projection"))
                gauss = rng.standard_normal((FEATURES, MAX_DIM), dtype=np.float32)
                _projection = np.rint(gauss * np.float32(_MATRIX_STEP)) / np.float32(_MATRIX_STEP)
    return _projection


@lru_cache(maxsize=64)
def _signs(model_key: str) -> NDArray[np.float64]:
    rng = np.random.default_rng(_digest(model_key, b"model"))
    return rng.choice(np.array([-1.0, 1.0], dtype=np.float64), size=MAX_DIM)


def warm_up() -> None:
    """Build the projection matrix now rather than on the first request."""
    _matrix()


def project(features: F32, model_key: str, dim: int) -> F32:
    """Map ``(n, FEATURES)`` features to ``(n, dim)`` L2-normalised float32 vectors.

    Each row is computed exactly (see the grid above), so a row's vector is the same bits
    whatever the other rows are. A reduced dimension is the prefix of the full one,
    renormalised, so vectors of one model at different dimensions agree.
    """
    if not 0 < dim <= MAX_DIM:
        raise ValueError(f"dimension {dim} is outside 1..{MAX_DIM}")
    rows = np.rint(features.reshape(-1, FEATURES).astype(np.float64) * _FEATURE_STEP)
    rows /= _FEATURE_STEP
    # Features are sparse (text uses a few dozen buckets): multiply only used columns.
    # Zero columns add exact zeros, so which columns the batch uses changes nothing.
    used = np.flatnonzero(np.any(rows != 0, axis=0))
    matrix = rows[:, used] @ _matrix()[used, :dim].astype(np.float64)
    matrix *= _signs(model_key)[:dim]
    # A reduction along each row (numpy's pairwise sum, no BLAS): row k's norm uses
    # only row k, in an order fixed by ``dim``.
    norms = np.sqrt(np.add.reduce(np.square(matrix), axis=1, keepdims=True))
    norms[norms == 0] = 1.0
    out: F32 = (matrix / norms).astype(np.float32)
    return out


def quantize_int8(vectors: F32) -> NDArray[np.int8]:
    """``clip(round(v * 127 / max|v|), -128, 127)`` per row."""
    peak = np.abs(vectors).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    out: NDArray[np.int8] = np.clip(np.rint(vectors * (127.0 / peak)), -128, 127).astype(np.int8)
    return out


def quantize_uint8(vectors: F32) -> NDArray[np.uint8]:
    """``int8 + 128`` per component."""
    return (quantize_int8(vectors).astype(np.int16) + 128).astype(np.uint8)


def sparse_vector(text: str, keys: str) -> dict[str, float]:
    """Weighted-token sparse vector; ``keys`` is ``"id"`` or ``"token"``."""
    counts = Counter(t.lower() for t in tokenize(text) if t.isalnum())
    out: dict[str, float] = {}
    for tok, count in counts.items():
        h = _digest(tok, b"sparse")
        jitter = 0.9 + 0.2 * ((h >> 20) % 1000) / 1000
        weight = (0.1 + 0.05 * min(len(tok), 10)) * (1 + math.log(count)) * jitter
        key = str(4 + h % 249_998) if keys == "id" else tok
        out[key] = round(out.get(key, 0.0) + weight, 6)
    return out
