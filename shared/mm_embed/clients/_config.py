"""Settings shared by every client: environment variables and common validation."""

from __future__ import annotations

import os

from pydantic import SecretStr

from ..errors import ConfigurationError

__all__ = ["env_secret", "env_str", "positive_int"]


def env_str(value: str | None, variable: str, default: str | None = None) -> str | None:
    """``value`` if given, else the environment variable (empty counts as unset), else ``default``."""
    if value:
        return value
    return os.environ.get(variable) or default


def env_secret(value: str | SecretStr | None, variable: str) -> SecretStr | None:
    if isinstance(value, SecretStr):
        return value if value.get_secret_value() else None
    found = env_str(value, variable)
    return SecretStr(found) if found else None


def positive_int(value: int, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
