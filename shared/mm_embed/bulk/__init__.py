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

Files: :class:`CorpusJob` with :class:`CorpusOptions`, or :func:`embed_corpus` (what the
command runs). Failure policy, file layout, resume, locking and exit codes: the "Bulk
embedding" manual page.
"""

from .batches import BatchResult
from .calls import BulkAborted
from .checkpoint import CheckpointError
from .engine import BulkEmbedder, InputChanged, embed_stream
from .exitcodes import ExitCode
from .items import BadRecord, BulkItem, FieldNames, ItemResult, Reject, RejectCode
from .job import CorpusJob, embed_corpus
from .lock import OutputLocked
from .options import CorpusOptions, EngineOptions
from .progress import BulkSummary, TqdmProgress, format_summary
from .readers import InputFileError, InputSource, open_input
from .stats import BulkStats

__all__ = [
    "BadRecord",
    "BatchResult",
    "BulkAborted",
    "BulkEmbedder",
    "BulkItem",
    "BulkStats",
    "BulkSummary",
    "CheckpointError",
    "CorpusJob",
    "CorpusOptions",
    "EngineOptions",
    "ExitCode",
    "FieldNames",
    "InputChanged",
    "InputFileError",
    "InputSource",
    "ItemResult",
    "OutputLocked",
    "Reject",
    "RejectCode",
    "TqdmProgress",
    "embed_corpus",
    "embed_stream",
    "format_summary",
    "open_input",
]
