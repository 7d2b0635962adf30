"""The stand-in encoders: normalised, dimension prefixes, quantisation, tokens (their
sameness across processes: ``tests/integration/mm_embed/emulator/test_encoders.py``)."""

from __future__ import annotations

import numpy as np

from mm_embed.emulator import encoders
from mm_embed.emulator.tokens import count_tokens, tokenize, truncate_tokens


def test_normalised_and_dimension_prefix() -> None:
    f = np.stack([encoders.text_features(t) for t in ("a", "b c", "")])
    for dim in (512, 768, 1024, 2048, 3072, 4096):
        v = encoders.project(f, "m", dim)
        assert v.shape == (3, dim) and v.dtype == np.float32
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_quantisation_edge_cases() -> None:
    v = np.array([[0.5, -0.5, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    assert encoders.quantize_int8(v).tolist() == [[127, -127, 64, 0], [0, 0, 0, 0]]
    assert encoders.quantize_uint8(v).tolist() == [[255, 1, 192, 128], [128, 128, 128, 128]]


def test_sparse_keys() -> None:
    ids = encoders.sparse_vector("Hello, hello world!", "id")
    tokens = encoders.sparse_vector("Hello, hello world!", "token")
    assert set(tokens) == {"hello", "world"} and tokens["hello"] > tokens["world"]
    assert len(ids) == 2 and all(k.isdigit() and int(k) >= 4 for k in ids)
    assert encoders.sparse_vector("!!!", "id") == {}


def test_tokenizer() -> None:
    assert tokenize("Hello, 世界 2024!") == ["Hello", ",", "世", "界", "2024", "!"]
    assert count_tokens("  ") == 0
    assert truncate_tokens("a b c d", 2) == "a b"
    assert truncate_tokens("a b", 5) == "a b"
