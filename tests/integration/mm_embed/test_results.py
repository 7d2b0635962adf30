"""Sparse indices are the same in every process, whatever its hash seed (the rest of
what a call returns is tested without a process: ``tests/unit/mm_embed/test_results.py``)."""

from __future__ import annotations

from mm_embed import sparse_index
from tests.integration._helpers import python_output

#: From the documented rule (``tests/unit/mm_embed/test_results.py`` checks it), computed
#: once with hashlib: 2**30 + int.from_bytes(blake2b(utf8(key), digest_size=8).digest(),
#: "big") % 2**30.
DOCUMENTED = {"hello": 1105540221, "De": 2012229990, "中文": 1773818714}


def test_sparse_index_is_stable_across_processes() -> None:
    code = "from mm_embed import sparse_index; print([sparse_index(t) for t in ('hello', 'De', '中文')])"
    outputs = {python_output(code, PYTHONHASHSEED=seed).strip() for seed in ("0", "12345")}
    assert outputs == {str(list(DOCUMENTED.values()))}
    assert [sparse_index(t) for t in DOCUMENTED] == list(DOCUMENTED.values())
