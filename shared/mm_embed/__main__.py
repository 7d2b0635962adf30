"""``python -m mm_embed`` is the ``mm-embed`` command."""

from .cli import main

raise SystemExit(main())
