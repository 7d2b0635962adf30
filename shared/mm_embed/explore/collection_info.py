"""What built a collection: provider, model, dimension, engine, kept in the collection.

A store is only searchable with the model that embedded it, so whoever writes a
collection records a :class:`CollectionInfo` in Qdrant's collection metadata (under
``"mm_embed"``) and a reader builds its encoder from it. A collection without that
record (written by :class:`~mm_embed.hybrid.qdrant.QdrantHybrid` directly) is
interpreted from its shape when that is unambiguous: image or box records mean FG-CLIP;
text records need the Viking model named by the caller. Anything else is refused with a
:class:`SetupError` saying what is missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..hybrid import FGClipEncoder, VikingHybridEncoder
from .errors import SetupError
from .providers import Engine

if TYPE_CHECKING:
    from ..hybrid.qdrant import QdrantHybrid

__all__ = [
    "FGCLIP_MODEL",
    "METADATA_KEY",
    "CollectionInfo",
    "Provider",
    "describe_store",
    "read_collection_info",
    "record_collection_info",
    "record_store_info",
]

METADATA_KEY = "mm_embed"
#: The version of the record's layout; a reader refuses layouts it does not know.
FORMAT = 1
#: The model name recorded for FG-CLIP collections (FG-CLIP has one model).
FGCLIP_MODEL = "fg-clip"
Provider: TypeAlias = Literal["viking", "fgclip"]
_ENGINES = ("api", "emulator")


@dataclass(frozen=True)
class CollectionInfo:
    """How a collection was embedded.

    Attributes:
        provider: ``"viking"`` (texts, dense + sparse) or ``"fgclip"`` (texts, images, boxes).
        model: the Viking model, or ``"fg-clip"``.
        dimension: the dense vectors' size.
        sparse: whether records carry sparse vectors.
        engine: ``"api"`` or ``"emulator"``; ``None`` when unknown (no record).
        model_version: the Viking model version (``None``: the provider's default).
        dense_name / sparse_name: the named vectors.
    """

    provider: Provider
    model: str
    dimension: int
    sparse: bool
    engine: Engine | None = None
    model_version: str | None = None
    dense_name: str = "dense"
    sparse_name: str = "sparse"

    def to_metadata(self) -> dict[str, Any]:
        """The collection-metadata form (JSON-compatible)."""
        return {METADATA_KEY: {"format": FORMAT, **asdict(self)}}

    @classmethod
    def from_metadata(cls, collection: str, metadata: Any) -> CollectionInfo | None:
        """The record in ``metadata`` (``None`` when there is none); :class:`SetupError`
        naming the field when it is there but unreadable."""
        if not isinstance(metadata, dict) or METADATA_KEY not in metadata:
            return None
        raw = metadata[METADATA_KEY]
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise SetupError(
                f"collection {collection!r}: mm_embed metadata format {found!r} is not "
                f"one this version reads ({FORMAT})"
            )
        checks: dict[str, tuple[type | tuple[type, ...], tuple[object, ...] | None]] = {
            "provider": (str, ("viking", "fgclip")),
            "model": (str, None),
            "dimension": (int, None),
            "sparse": (bool, None),
            "engine": ((str, type(None)), (*_ENGINES, None)),
            "model_version": ((str, type(None)), None),
            "dense_name": (str, None),
            "sparse_name": (str, None),
        }
        for name, (kind, allowed) in checks.items():
            value = raw.get(name)
            if not isinstance(value, kind) or (allowed is not None and value not in allowed):
                shown = f" (one of {', '.join(map(str, allowed))})" if allowed else ""
                raise SetupError(
                    f"collection {collection!r}: mm_embed metadata field {name!r} is "
                    f"{value!r}, not a valid {name}{shown}"
                )
        return cls(**{name: raw[name] for name in checks})


def record_collection_info(client: Any, collection: str, info: CollectionInfo) -> None:
    """Write ``info`` into the collection's metadata. Collection metadata needs
    qdrant-client >= 1.16 and, on a server, Qdrant >= 1.16: else :class:`SetupError`."""
    from qdrant_client.http.exceptions import UnexpectedResponse

    try:
        client.update_collection(collection, metadata=info.to_metadata())
    except (TypeError, UnexpectedResponse) as exc:
        raise SetupError(
            f"cannot record how collection {collection!r} was embedded (collection metadata "
            f"needs qdrant-client and a Qdrant server >= 1.16): {exc}"
        ) from None


def describe_store(store: QdrantHybrid, engine: Engine | None) -> CollectionInfo:
    """The :class:`CollectionInfo` of a store whose collection exists."""
    encoder = store.encoder
    params = store.client.get_collection(store.collection_name).config.params
    vectors = params.vectors if isinstance(params.vectors, dict) else {}
    dense = vectors.get(store.dense_name)
    if dense is None:
        raise SetupError(f"collection {store.collection_name!r} has no {store.dense_name!r} vector")
    common: dict[str, Any] = {
        "dimension": int(dense.size),
        "sparse": store.has_sparse,
        "engine": engine,
        "dense_name": store.dense_name,
        "sparse_name": store.sparse_name,
    }
    if isinstance(encoder, VikingHybridEncoder):
        return CollectionInfo(
            "viking", encoder.model, model_version=encoder.model_version, **common
        )
    if isinstance(encoder, FGClipEncoder):
        return CollectionInfo("fgclip", FGCLIP_MODEL, **common)
    raise SetupError(f"cannot record how {encoder!r} embeds: not a Viking or FG-CLIP encoder")


def record_store_info(store: QdrantHybrid, engine: Engine | None) -> CollectionInfo:
    """Describe ``store`` (:func:`describe_store`) in its collection's metadata."""
    info = describe_store(store, engine)
    record_collection_info(store.client, store.collection_name, info)
    return info


def read_collection_info(
    client: Any, collection: str, *, viking_model: str | None = None
) -> CollectionInfo:
    """How ``collection`` was embedded: its recorded :class:`CollectionInfo`, else one
    inferred from its shape (``viking_model`` names the model of a text collection).
    Raises :class:`SetupError` when the collection is missing or cannot be interpreted."""
    if not client.collection_exists(collection):
        raise SetupError(f"there is no collection {collection!r}")
    config = client.get_collection(collection).config
    recorded = CollectionInfo.from_metadata(collection, getattr(config, "metadata", None))
    if recorded is not None:
        return recorded
    return _inferred(client, collection, config.params, viking_model)


def _inferred(
    client: Any, collection: str, params: Any, viking_model: str | None
) -> CollectionInfo:
    vectors = params.vectors if isinstance(params.vectors, dict) else {}
    sparse_names = list(params.sparse_vectors or {})
    if len(vectors) != 1 or len(sparse_names) > 1:
        raise SetupError(
            f"collection {collection!r} is not a mm-embed hybrid collection (it needs one "
            f"named dense vector and at most one sparse vector, found {sorted(vectors)} "
            f"and {sparse_names})"
        )
    ((dense_name, dense),) = vectors.items()
    points, _ = client.scroll(collection, limit=1, with_payload=["kind"], with_vectors=False)
    kind = (points[0].payload or {}).get("kind") if points else None
    common: dict[str, Any] = {"dimension": int(dense.size), "dense_name": dense_name}
    if sparse_names:
        common["sparse_name"] = sparse_names[0]
    if kind in ("image", "box") and not sparse_names:
        return CollectionInfo("fgclip", FGCLIP_MODEL, sparse=False, **common)
    if kind == "text" and viking_model == FGCLIP_MODEL and not sparse_names:
        return CollectionInfo("fgclip", FGCLIP_MODEL, sparse=False, **common)
    if kind == "text" and viking_model:
        return CollectionInfo("viking", viking_model, sparse=bool(sparse_names), **common)
    if kind == "text":
        raise SetupError(
            f"collection {collection!r} records no model (it was not written by "
            f"mm-embed demo): pass --model with the Viking model that embedded it, or "
            f"--model {FGCLIP_MODEL} for FG-CLIP texts"
        )
    raise SetupError(
        f"collection {collection!r} holds no mm-embed records (payload 'kind' is "
        f"{kind!r}, expected 'text', 'image' or 'box')"
    )
