"""``mm-embed demo``: the whole product end to end, on the embedded default.

Starts the emulator in-process (or uses the real APIs when their credentials are in the
environment), embeds the bundled sample set — 52 texts, 12 generated pictures, boxes on
the multi-shape ones — into an embedded Qdrant, and prints a hybrid text query (dense,
sparse and fused rankings side by side), a text -> image query and a text -> box
(region) query, a summary table, and a plot of nDCG@10 per retrieval mode.
"""

from __future__ import annotations

from .main import demo_main, run_demo

__all__ = ["demo_main", "run_demo"]
