"""What every adapter shares: settings read from the environment, lazily built core
clients, and pickling that never carries a secret."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from mm_embed.clients.slot import ClientSlot
from mm_embed.errors import ConfigurationError

__all__ = ["AdapterBase", "ClientSlot", "env_secret_factory", "env_str_factory", "read_env"]


def read_env(variable: str) -> str | None:
    """The variable's value; empty counts as unset (as in the core)."""
    return os.environ.get(variable) or None


def env_str_factory(variable: str) -> Callable[[], str | None]:
    """A ``default_factory`` reading ``variable`` when the object is built."""

    def factory() -> str | None:
        return read_env(variable)

    return factory


def env_secret_factory(
    variable: str, *, missing: str | None = None
) -> Callable[[], SecretStr | None]:
    """A ``default_factory`` reading a secret from ``variable``; with ``missing`` set, an
    unset variable raises :class:`ConfigurationError` with that message."""

    def factory() -> SecretStr | None:
        value = read_env(variable)
        if value is None and missing is not None:
            raise ConfigurationError(missing)
        return SecretStr(value) if value is not None else None

    return factory


class AdapterBase(BaseModel):
    """Pydantic base of the adapters: strict settings, inputs hidden from validation
    errors, secrets dropped from pickles.

    ``_secret_env`` maps each secret field to its environment variable. A pickle holds no
    secret: unpickling reads each secret again from its variable (left unset when the
    variable is absent, and the first call then says which variable to set).
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        protected_namespaces=(),
        # A validation error must not echo the constructor's input: it holds the secrets.
        hide_input_in_errors=True,
    )

    _secret_env: ClassVar[dict[str, str]] = {}

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        for name in self._secret_env:
            fields[name] = None
        state["__dict__"] = fields
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._reload_secrets()

    def _reload_secrets(self) -> None:
        """Read every secret field again from its environment variable."""
        for name, variable in self._secret_env.items():
            value = read_env(variable)
            self.__dict__[name] = SecretStr(value) if value is not None else None
