""":class:`RedisBudget`: the quota shared by every host that reaches one Redis server.

Each operation is one atomic server-side script (:mod:`~mm_embed.budgets._bucket_lua`,
the same arithmetic as :mod:`~mm_embed.budgets._bucket`) on a hash per (account, quota),
timed by the server's ``TIME``: hosts whose clocks disagree still share one bucket
clock. The script is sent once per connection and then called by its SHA
(``EVALSHA``, loading it again if the server forgot it). Needs the ``redis`` package
(``pip install "mm-embed[redis]"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..config import redact_url
from ..errors import ConfigurationError
from . import _bucket
from ._bucket import BucketState, Quota
from ._bucket_lua import SCRIPT
from .base import Budget, BudgetError, Ticket

if TYPE_CHECKING:
    import redis as redis_lib

__all__ = ["RedisBudget"]

#: Where bucket hashes live: ``<prefix><account>:<quota name>``.
DEFAULT_PREFIX = "mm-embed:budget:"
#: An idle bucket's hash expires after this long (it would be full again by then).
DEFAULT_TTL_S = 24 * 3600.0
#: Seconds to connect to, or wait on, the server before raising :class:`BudgetError`.
DEFAULT_SOCKET_TIMEOUT_S = 5.0
_CONSTANTS = tuple(
    repr(float(c))
    for c in (
        _bucket.RECOVERY_PER_S,
        _bucket.DECREASE,
        _bucket.MIN_FACTOR,
        _bucket.COOLDOWN_S,
        _bucket.DUE_EPSILON,
    )
)


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            'a redis:// budget needs the redis client: pip install "mm-embed[redis]"'
        ) from exc
    return redis


class RedisBudget(Budget):
    """Buckets in a Redis server, shared by every process and host that uses it.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS).
        account: the account key every bucket is filed under, instead of the one each
            client derives from its credentials. Hosts that hold different credentials
            of one account (sub-accounts: the provider sums them) name it here to share
            one quota.
        prefix: the key prefix of the bucket hashes.
        clock: ``None`` (default): the Redis server's ``TIME``. A function: its seconds
            instead (tests drive the buckets with a fake clock).
        client: a ``redis.Redis`` to use (not closed by :meth:`close`) instead of one
            opened from ``url``.
        ttl: seconds an idle bucket's hash is kept.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        account: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] | None = None,
        client: redis_lib.Redis | None = None,
        ttl: float = DEFAULT_TTL_S,
    ) -> None:
        super().__init__(clock or time.time)
        #: The server, for display: any password in the URL is replaced by ``***``.
        self.url = redact_url(url)
        self._secret_url = SecretStr(url)
        self.account = account
        self.prefix = prefix
        self._server_time = clock is None
        self._ttl_ms = str(max(1, int(ttl * 1000)))
        redis = _redis_module()
        self._owns_client = client is None
        try:
            self._client: redis_lib.Redis = client or redis.Redis.from_url(
                url,
                socket_timeout=DEFAULT_SOCKET_TIMEOUT_S,
                socket_connect_timeout=DEFAULT_SOCKET_TIMEOUT_S,
            )
            self._script = self._client.register_script(SCRIPT)
            self._client.ping()  # fail here, not on the first request
        except (redis.RedisError, ValueError) as exc:
            raise BudgetError(f"budget server {self.url!r}: {exc}") from exc

    def __repr__(self) -> str:
        shown = "" if self.account is None else f", account={self.account!r}"
        return f"RedisBudget({self.url!r}{shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        # A budget handed to another process (multiprocessing, Ray) connects again; a
        # password never travels in a pickle.
        url = self._secret_url.get_secret_value()
        if not self._owns_client or url != self.url:
            raise TypeError(
                "a RedisBudget with a password or an injected client= is not picklable; "
                "build one where it is needed (or pass the budget URL there)"
            )
        clock = None if self._server_time else self._clock
        options = (self.account, self.prefix, clock, int(self._ttl_ms) / 1000)
        return (_reopen, (url, *options))

    def _key(self, account: str, quota: Quota) -> str:
        return f"{self.prefix}{self.account or account}:{quota.name}"

    def _run(self, operation: str, account: str, quota: Quota, argument: float = 0.0) -> Any:
        now = "" if self._server_time else repr(float(self._clock()))
        args = (operation, repr(float(argument)), repr(quota.rate), repr(quota.capacity))
        try:
            return self._script(
                keys=[self._key(account, quota)],
                args=[*args, now, self._ttl_ms, *_CONSTANTS],
            )
        except _redis_module().RedisError as exc:
            raise BudgetError(f"budget server {self.url!r}: {exc}") from exc

    # ------------------------------------------------------------------ Budget

    def take(self, account: str, quota: Quota, amount: float) -> Ticket:
        position = float(self._run("take", account, quota, amount))
        return Ticket(account, quota, position, amount)

    def join(self, account: str, quota: Quota, amount: float) -> Ticket | None:
        position = self._run("join", account, quota, amount)
        return Ticket(account, quota, float(position), amount) if position else None

    def due_in(self, ticket: Ticket) -> float:
        return float(self._run("due_in", ticket.account, ticket.quota, ticket.position))

    def adjust(self, account: str, quota: Quota, delta: float) -> None:
        self._run("adjust", account, quota, delta)

    def refused(self, account: str, quota: Quota) -> bool:
        return bool(int(self._run("refused", account, quota)))

    def state(self, account: str, quota: Quota) -> BucketState:
        fields: Sequence[bytes] = self._run("state", account, quota)
        balance, updated, reserved, factor, last_cut, consumed = (
            float(f) if f else -float("inf") for f in fields
        )
        return BucketState(balance, updated, reserved, factor, last_cut, consumed)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _reopen(
    url: str,
    account: str | None,
    prefix: str,
    clock: Callable[[], float] | None,
    ttl: float,
) -> RedisBudget:
    return RedisBudget(url, account=account, prefix=prefix, clock=clock, ttl=ttl)
