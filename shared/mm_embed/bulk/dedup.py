"""A compact set of ids seen so far, for duplicate detection over very large corpora.

Ids are stored as 64-bit BLAKE2b hashes in an open-addressing numpy table (linear
probing, at most 70 % full), with the line each id was first seen on, so memory is 12
bytes per table slot: about 17 to 34 bytes per id (1.7 to 3.4 GB for 10**8 ids), instead
of the ~100 bytes a Python ``set`` of strings needs. Two different ids share a hash with probability about
``n**2 / 2**65`` over ``n`` ids (3e-6 for 10**7 ids); such an id would be reported as a
duplicate by mistake, never silently dropped.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["IdSet"]

_MAX_LOAD = 0.7
_NO_LINE = 2**31 - 1


def _hash(key: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


class IdSet:
    """``add(id, line)`` returns ``None`` for a new id, else the line it was first seen on."""

    def __init__(self, capacity: int = 1 << 12) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._keys: npt.NDArray[np.uint64] = np.zeros(size, np.uint64)
        self._lines: npt.NDArray[np.int32] = np.zeros(size, np.int32)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Memory held by the table."""
        return int(self._keys.nbytes + self._lines.nbytes)

    def add(self, key: str, line: int = -1) -> int | None:
        h = _hash(key)
        keys = self._keys
        mask = len(keys) - 1
        slot = h & mask
        while True:
            current = int(keys[slot])
            if current == 0:
                keys[slot] = h
                self._lines[slot] = line if 0 <= line < _NO_LINE else -1
                self._count += 1
                if self._count > _MAX_LOAD * len(keys):
                    self._grow()
                return None
            if current == h:
                return int(self._lines[slot])
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        used = np.flatnonzero(self._keys)
        keys, lines = self._keys[used], self._lines[used]
        size = len(self._keys) * 2
        table = np.zeros(size, np.uint64)
        table_lines = np.zeros(size, np.int32)
        mask = np.uint64(size - 1)
        slots = (keys & mask).astype(np.int64)
        # Vectorised linear probing: each round, an entry whose slot is free takes it
        # (the first of several claimants wins); the others move one slot on. Every slot
        # an entry passes is taken, and nothing is ever removed, so lookups still find it.
        while len(keys):
            free = np.flatnonzero(table[slots] == 0)
            _, first = np.unique(slots[free], return_index=True)
            winners = free[first]
            table[slots[winners]] = keys[winners]
            table_lines[slots[winners]] = lines[winners]
            placed = np.zeros(len(keys), bool)
            placed[winners] = True
            keys, lines = keys[~placed], lines[~placed]
            slots = (slots[~placed] + 1) & (size - 1)
        self._keys, self._lines = table, table_lines
