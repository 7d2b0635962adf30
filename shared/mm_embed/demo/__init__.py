"""``mm-embed demo``: the whole product end to end, on the embedded default.

Starts the emulator in-process (or uses the real APIs when their credentials are in the
environment), embeds the bundled sample set — 52 texts, 12 generated pictures, boxes on
the multi-shape ones — into an embedded Qdrant, and prints a hybrid text query (dense,
sparse and fused rankings side by side), a text -> image query and a text -> box
(region) query, a summary table, and writes a plot of nDCG@10 per retrieval mode and a
self-contained HTML report.

Modules, one job each: ``args`` (command line), ``flow`` (:func:`run_demo`), ``report``
(:class:`DemoReport`, the demo's queries), ``terminal``, ``plot`` and ``html_report``
(the three renderings), ``main`` (:func:`demo_main`, exit codes), ``pictures``.
"""

from __future__ import annotations

from .flow import run_demo
from .main import demo_main
from .report import DemoError, DemoReport

__all__ = ["DemoError", "DemoReport", "demo_main", "run_demo"]
