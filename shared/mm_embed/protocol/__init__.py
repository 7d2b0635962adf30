"""Sans-I/O wire protocols: request bodies in, results or errors out. No sockets here."""

from . import fgclip, viking

__all__ = ["fgclip", "viking"]
