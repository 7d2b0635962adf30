""":class:`FileBudget`: the quota shared by every process on one host, in a SQLite file.

Each operation is one ``BEGIN IMMEDIATE`` transaction in WAL mode: load the bucket's
row, run the :mod:`~mm_embed.budgets._bucket` arithmetic on it, store it, commit. SQLite
holds its write lock only for that transaction, and the operating system drops a
process's locks when it dies, so a holder killed with ``SIGKILL`` (even inside a
transaction, which is then rolled back) leaves the file usable; what it had taken stays
taken and refills like any spent units, within one window.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import _bucket
from ._bucket import BucketState, Quota
from .base import Budget, BudgetError, Ticket

__all__ = ["FileBudget"]

T = TypeVar("T")

#: Seconds an operation waits for another process's transaction before failing.
DEFAULT_BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    account  TEXT NOT NULL,
    quota    TEXT NOT NULL,
    balance  REAL NOT NULL,
    updated  REAL NOT NULL,
    reserved REAL NOT NULL,
    factor   REAL NOT NULL,
    last_cut REAL,
    consumed REAL NOT NULL,
    PRIMARY KEY (account, quota)
) WITHOUT ROWID
"""
_SELECT = (
    "SELECT balance, updated, reserved, factor, last_cut, consumed FROM buckets "
    "WHERE account = ? AND quota = ?"
)
_STORE = "INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class FileBudget(Budget):
    """Buckets in a SQLite database at ``path``, shared by every process that opens it.

    Args:
        path: the database file (created if missing; its directory must exist). Every
            process that names the same file shares its buckets.
        clock: wall-clock seconds shared by the processes (``time.time``); tests inject
            a fake one.
        busy_timeout: seconds an operation waits while another process holds the write
            lock (each holds it for microseconds) before raising :class:`BudgetError`.

    Thread-safe: a process uses one connection, behind a lock held for one transaction.
    After ``os.fork`` the child opens its own connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        super().__init__(clock)
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn: sqlite3.Connection | None = None
        with self._lock:
            self._connection()  # fail here, not on the first request, if the file is unusable

    def __repr__(self) -> str:
        return f"FileBudget({str(self.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # A budget handed to another process (multiprocessing, Ray) reopens the file.
        return (_reopen, (str(self.path), self._clock, self.busy_timeout))

    # ------------------------------------------------------------------ storage

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (opened on first use, and again in a forked child)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # A connection inherited through fork is abandoned, never used or closed: SQLite
        # connections must not cross fork.
        self._pid = os.getpid()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # explicit BEGIN IMMEDIATE / COMMIT
                check_same_thread=False,  # one connection, guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise BudgetError(f"cannot open the budget file {str(self.path)!r}: {exc}") from exc
        try:
            self._prepare(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise BudgetError(
                f"the budget file {str(self.path)!r} is not a usable SQLite database: {exc}"
            ) from exc
        self._conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL and create the table, however many processes race to."""
        # Switching the journal mode takes an exclusive lock and SQLite reports "database
        # is locked" at once instead of calling the busy handler, so processes opening a
        # new file together retry here, within the same busy timeout.
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.005
        while True:
            try:
                # WAL: readers never block the writer; NORMAL: a commit survives the
                # process (the budget need not survive a power cut).
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def _apply(self, account: str, quota: Quota, operation: Callable[[BucketState, float], T]) -> T:
        """Run ``operation(state, now)`` on the stored bucket in one write transaction."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()  # a lock copied by fork may be held by a lost thread
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(_SELECT, (account, quota.name)).fetchone()
                    # The clock is read under the write lock, so time order is lock order.
                    now = self._clock()
                    state = _bucket.new_state(quota, now) if row is None else _load(row)
                    result = operation(state, now)
                    conn.execute(_STORE, (account, quota.name, *_dump(state)))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise BudgetError(f"budget file {str(self.path)!r}: {exc}") from exc
            return result

    # ------------------------------------------------------------------ Budget

    def take(self, account: str, quota: Quota, amount: float) -> Ticket:
        position = self._apply(
            account, quota, lambda state, now: _bucket.take(state, quota, amount, now)
        )
        return Ticket(account, quota, position, amount)

    def join(self, account: str, quota: Quota, amount: float) -> Ticket | None:
        position = self._apply(
            account, quota, lambda state, now: _bucket.join(state, quota, amount, now)
        )
        return None if position is None else Ticket(account, quota, position, amount)

    def due_in(self, ticket: Ticket) -> float:
        quota = ticket.quota
        return self._apply(
            ticket.account,
            quota,
            lambda state, now: _bucket.due_in(state, quota, ticket.position, now),
        )

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        self._apply(account, quota, lambda state, now: _bucket.adjust(state, quota, delta, now))

    def refused(self, account: str, quota: Quota) -> bool:
        return self._apply(account, quota, lambda state, now: _bucket.refused(state, quota, now))

    def state(self, account: str, quota: Quota) -> BucketState:
        def refilled(state: BucketState, now: float) -> BucketState:
            _bucket.due_in(state, quota, 0.0, now)  # refill to now
            return state  # loaded for this call: the caller's copy

        return self._apply(account, quota, refilled)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()


def _load(row: tuple[float, float, float, float, float | None, float]) -> BucketState:
    balance, updated, reserved, factor, last_cut, consumed = row
    return BucketState(
        balance=balance,
        updated=updated,
        reserved=reserved,
        factor=factor,
        last_cut=-float("inf") if last_cut is None else last_cut,
        consumed=consumed,
    )


def _dump(state: BucketState) -> tuple[float, float, float, float, float | None, float]:
    # "Never cut" is -inf in memory and NULL in the file.
    last_cut = state.last_cut if state.last_cut != -float("inf") else None
    return (
        state.balance,
        state.updated,
        state.reserved,
        state.factor,
        last_cut,
        state.consumed,
    )


def _reopen(path: str, clock: Callable[[], float], busy_timeout: float) -> FileBudget:
    return FileBudget(path, clock=clock, busy_timeout=busy_timeout)
