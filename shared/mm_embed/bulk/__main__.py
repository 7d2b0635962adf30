"""``python -m mm_embed.bulk`` is ``mm-embed embed``."""

from .cli import embed_main

raise SystemExit(embed_main())
