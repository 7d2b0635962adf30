"""The public clients: FG-CLIP and Viking, each in a sync and an async flavour."""

from .fgclip import AsyncFGClipClient, FGClipClient
from .viking import AsyncVikingClient, VikingClient

__all__ = ["AsyncFGClipClient", "AsyncVikingClient", "FGClipClient", "VikingClient"]
