"""``mm-embed explore``: a local page to search a store, and the pieces the demo's HTML
report shares with it.

Modules, one job each: ``providers`` (real API or in-process emulator), ``qdrant_store``
(open a store), ``collection_info`` (how a collection was embedded, kept in it),
``rankings`` (a text query's dense, sparse and fused rankings with ranks and matched
sparse terms), ``html`` (escaped cards, pictures with SVG box overlays), ``search``
(:class:`~mm_embed.explore.search.Explorer`), ``session`` (open everything a store
needs), ``page`` and ``app`` (the web page), ``cli`` (:func:`explore_main`),
``browser`` (headless Chromium for checks and screenshots).

Importing this package imports none of them: the demo uses a few without the server.
"""

from __future__ import annotations

__all__: list[str] = []
