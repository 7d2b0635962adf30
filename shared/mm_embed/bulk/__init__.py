"""Bulk corpus embedding: stream any number of items through a client, in order, with
bounded memory; or embed a corpus file into Parquet / JSONL with durable, resumable
progress (``mm-embed embed``).

Python API::

    from mm_embed import VikingClient
    from mm_embed.bulk import embed_stream

    with VikingClient() as client:
        for result in embed_stream(client, ({"id": str(i), "text": t} for i, t in enumerate(texts)),
                                   model="doubao-embedding"):
            result.vector  # float32, in input order; result.reject says why an item failed

Files: :func:`embed_corpus` (what the CLI runs). Policy for failures, file layout and
resume semantics: README.md, "Bulk embedding".
"""

from .checkpoint import CheckpointError
from .engine import BatchResult, BulkAborted, BulkEmbedder, BulkStats, embed_stream
from .items import BadRecord, BulkItem, FieldNames, ItemResult, Reject, RejectCode
from .job import embed_corpus
from .progress import BulkSummary, TqdmProgress, format_summary
from .readers import InputFileError, InputSource, open_input

__all__ = [
    "BadRecord",
    "BatchResult",
    "BulkAborted",
    "BulkEmbedder",
    "BulkItem",
    "BulkStats",
    "BulkSummary",
    "CheckpointError",
    "FieldNames",
    "InputFileError",
    "InputSource",
    "ItemResult",
    "Reject",
    "RejectCode",
    "TqdmProgress",
    "embed_corpus",
    "embed_stream",
    "format_summary",
    "open_input",
]
