"""The package version, in one place (read by ``mm_embed.__version__`` and the User-Agent)."""

__version__ = "0.2.0"
