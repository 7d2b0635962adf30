"""What both framework adapters hold of the core, so neither re-implements it:

* :class:`ClientSlot`: the core clients of one adapter object, built on first use and
  rebuilt when a connection setting changed since (so a changed ``api_key`` or
  ``base_url`` is never silently ignored, and a copy never bills its original's key).
* :class:`SecretFieldsMixin`: pydantic adapter models whose secrets never reach a
  pickle or a copy's private state; an unpickled object reads its secrets again from
  the environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, SecretStr

from .config import EnvVar, env_value

__all__ = ["ClientSlot", "SecretFieldsMixin"]


class _Closable(Protocol):
    def close(self) -> None: ...


class _AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)
A = TypeVar("A", bound=_AsyncClosable)
Options = Mapping[str, Any]


class ClientSlot(Generic[S, A]):
    """A blocking and an async core client, each built by ``build(options)`` on first
    use and rebuilt (the old one closed) whenever ``options`` differ from those it was
    built with. The async client serves any event loop (its transport keeps one HTTP
    client per loop). A slot pickles and copies as an empty slot: clients hold sockets
    and credentials, and a copy builds its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: tuple[dict[str, Any], S] | None = None
        self._async: tuple[dict[str, Any], A] | None = None
        self._retired: list[A] = []

    def sync(self, options: Options, build: Callable[..., S]) -> S:
        """The blocking client for ``options``."""
        wanted = dict(options)
        with self._lock:
            current = self._sync
            if current is not None and current[0] == wanted:
                return current[1]
            client = build(**wanted)
            self._sync = (wanted, client)
        if current is not None:
            current[1].close()
        return client

    def async_(self, options: Options, build: Callable[..., A]) -> A:
        """The async client for ``options`` (an outdated one is closed at :meth:`aclose`)."""
        wanted = dict(options)
        with self._lock:
            current = self._async
            if current is not None and current[0] == wanted:
                return current[1]
            client = build(**wanted)
            self._async = (wanted, client)
            if current is not None:
                self._retired.append(current[1])
            return client

    def close(self) -> None:
        """Close the blocking client (a later call builds a new one)."""
        with self._lock:
            current, self._sync = self._sync, None
        if current is not None:
            current[1].close()

    async def aclose(self) -> None:
        """Close the async clients (a later call builds a new one)."""
        with self._lock:
            current, self._async = self._async, None
            retired, self._retired = self._retired, []
        for client in [*retired, *([current[1]] if current else [])]:
            await client.aclose()

    def __getstate__(self) -> dict[str, Any]:
        # Not empty: pickle skips __setstate__ for a falsy state.
        return {"empty": True}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ClientSlot.__init__(self)

    def __copy__(self) -> ClientSlot[S, A]:
        return ClientSlot()

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientSlot[S, A]:
        return ClientSlot()


class SecretFieldsMixin:
    """For pydantic adapter models: secret fields stay out of pickles.

    ``_secret_env`` maps each secret field to the environment variable it is read
    from again when the object is unpickled (``None``: left unset). Private
    attributes (client slots, pairings) start afresh in an unpickled object.
    """

    _secret_env: ClassVar[Mapping[str, EnvVar | None]] = {}

    def __getstate__(self) -> dict[Any, Any]:
        assert isinstance(self, BaseModel)
        state: dict[Any, Any] = BaseModel.__getstate__(self)
        fields = dict(state["__dict__"])
        for name in self._secret_env:
            if name in fields:
                fields[name] = None
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        assert isinstance(self, BaseModel)
        BaseModel.__setstate__(self, state)
        private = {
            name: attr.get_default(call_default_factory=True)
            for name, attr in type(self).__private_attributes__.items()
        }
        object.__setattr__(self, "__pydantic_private__", private)
        for name, variable in self._secret_env.items():
            value = env_value(variable) if variable is not None else None
            self.__dict__[name] = SecretStr(value) if value is not None else None

    def __copy__(self) -> Any:
        # model_copy(update=...) may change any setting: the copy builds its own clients
        # (pydantic's copy would share the slot, and the two would rebuild each other's).
        assert isinstance(self, BaseModel)
        copied = BaseModel.__copy__(self)
        _fresh_slots(copied)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        assert isinstance(self, BaseModel)
        copied = BaseModel.__deepcopy__(self, memo)
        _fresh_slots(copied)
        return copied


def _fresh_slots(model: BaseModel) -> None:
    private = model.__pydantic_private__ or {}
    for name, value in list(private.items()):
        if isinstance(value, ClientSlot):
            private[name] = ClientSlot()
