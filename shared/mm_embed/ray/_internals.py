"""The internals of other parts of mm-embed the Ray engine uses, imported in this one
place.

The Ray engine does not re-implement the failure policy, the output schema or the
quota arithmetic: each Ray actor runs the bulk engine's batch step
(:meth:`~mm_embed.bulk.BulkEmbedder.work`) on its own client and builds the same Arrow
tables; the budget actor runs :mod:`mm_embed.budgets._bucket` through a
:class:`~mm_embed.budgets.LocalBudget`; rows go into the hybrid stores through their
own record layout. When those modules move, only these imports change.
"""

from __future__ import annotations

from ..bulk.assembly import OutputShape
from ..bulk.batches import BatchResult, InputBatch
from ..bulk.checkpoint import Checkpoint, fsync_dir, read_manifest
from ..bulk.cli import client_settings, make_client
from ..bulk.dedup import IdSet
from ..bulk.dedup import _hash as id_hash
from ..bulk.fingerprint import decode_prints, encode_prints, record_print
from ..bulk.items import coerce_record
from ..bulk.lock import OutputLock
from ..bulk.readers import InputFileError
from ..bulk.tables import batch_table, public_table
from ..hybrid.store import HybridStore, Record

__all__ = [
    "BatchResult",
    "Checkpoint",
    "HybridStore",
    "IdSet",
    "InputBatch",
    "InputFileError",
    "OutputLock",
    "OutputShape",
    "Record",
    "batch_table",
    "client_settings",
    "coerce_record",
    "decode_prints",
    "encode_prints",
    "fsync_dir",
    "id_hash",
    "image_record",
    "make_client",
    "public_table",
    "read_manifest",
    "record_print",
    "store_records",
]


def store_records(store: HybridStore, records: list[Record], dimension: int) -> None:
    """Upsert finished records into ``store``, creating its collection on first use."""
    store._ensure_collection(dimension)
    store._upsert(records)


#: The record of an image (``box_index`` -1) or of one of its boxes, as ``add_images``
#: stores them: ``(image id, vector, metadata, box index, box) -> Record``.
image_record = HybridStore._image_record
