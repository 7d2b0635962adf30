"""The compact id set agrees with a Python set, across growth."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm_embed.bulk.dedup import IdSet


def test_add_reports_first_line_and_survives_growth() -> None:
    ids = IdSet(capacity=16)
    for i in range(5000):
        assert ids.add(f"id-{i}", i + 1) is None
    assert len(ids) == 5000
    assert ids.nbytes >= 5000 * 12  # keys + lines, at most 70 % full
    for i in range(0, 5000, 7):
        assert ids.add(f"id-{i}", 99_999) == i + 1
    assert len(ids) == 5000


def test_line_out_of_range_is_unknown() -> None:
    ids = IdSet()
    assert ids.add("a", 2**40) is None
    assert ids.add("a") == -1


@given(st.lists(st.text(min_size=0, max_size=8), max_size=300))
def test_matches_a_python_set(keys: list[str]) -> None:
    ids = IdSet(capacity=16)
    seen: dict[str, int] = {}
    for line, key in enumerate(keys):
        first = ids.add(key, line)
        assert first == seen.get(key)
        seen.setdefault(key, line)
    assert len(ids) == len(seen)
