"""The stand-in encoders give the same vectors in another process, whatever its hash
seed (the rest of the encoders' tests need no process: ``tests/unit``)."""

from __future__ import annotations

import hashlib

import numpy as np

from mm_embed.emulator import encoders
from tests.integration._helpers import python_output

SNIPPET = (
    "import hashlib, numpy as np\n"
    "from mm_embed.emulator import encoders as e\n"
    "v = e.project(np.stack([e.text_features('hello 世界'), e.text_features('red', local=True)]), 'bge-m3', 1024)\n"
    "print(hashlib.sha256(v.tobytes()).hexdigest(), sorted(e.sparse_vector('hello hello world', 'id').items()))\n"
)


def test_same_vectors_in_another_process() -> None:
    outputs = {python_output(SNIPPET, PYTHONHASHSEED="123") for _ in range(2)}
    assert len(outputs) == 1
    v = encoders.project(
        np.stack([encoders.text_features("hello 世界"), encoders.text_features("red", local=True)]),
        "bge-m3",
        1024,
    )
    local = (
        hashlib.sha256(v.tobytes()).hexdigest()
        + " "
        + str(sorted(encoders.sparse_vector("hello hello world", "id").items()))
    )
    assert outputs == {local + "\n"}
