"""Host names and addresses: what counts as loopback, and the fetch allow-list.

Everything here works on the literal text of a host: no DNS lookup is ever made to
decide whether a host is loopback or allowed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["AllowEntry", "is_ip_literal", "is_loopback_host", "parse_allow_entry"]


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Loopback by its literal text only: ``localhost``, ``127.0.0.0/8`` or ``::1``."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AllowEntry:
    """One ``HOST[:PORT]`` of the fetch allow-list; ``port=None`` allows every port."""

    host: str
    port: int | None

    def allows(self, host: str, port: int) -> bool:
        return self.host == host.strip("[]").lower() and self.port in (None, port)


def parse_allow_entry(entry: str) -> AllowEntry:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT``; :class:`ValueError` otherwise."""
    text = entry.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"fetch_allow entry {entry!r} is not HOST[:PORT]")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    if not host or any(c in host for c in "/@?#[] ") or (":" in host and not is_ip_literal(host)):
        raise ValueError(f"fetch_allow entry {entry!r} is not HOST[:PORT]")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"fetch_allow entry {entry!r}: the port must be 1..65535")
        port = int(port_text)
    return AllowEntry(host.lower(), port)
