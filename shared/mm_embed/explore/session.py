"""Opening what the explorer searches: the Qdrant, each collection's record, the clients
that can embed queries like the collection's documents, and the stores over them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from ..config import EnvVar
from ..errors import InputError
from ..hybrid import FGClipEncoder, VikingHybridEncoder
from ..hybrid.qdrant import QdrantHybrid
from .collection_info import METADATA_KEY, CollectionInfo, Provider, read_collection_info
from .errors import SetupError
from .providers import (
    Clients,
    has_fgclip_credentials,
    has_viking_credentials,
    open_clients,
)
from .qdrant_store import open_qdrant
from .search import Collection, Explorer

__all__ = ["choose_engines", "open_explorer"]

_KINDS = ("text", "image", "box")
_CREDENTIALS = {
    "fgclip": f"{EnvVar.FGCLIP_API_KEY}",
    "viking": f"{EnvVar.VOLC_ACCESSKEY} + {EnvVar.VOLC_SECRETKEY} (or {EnvVar.VIKING_TOKEN})",
}


@contextlib.contextmanager
def open_explorer(
    *,
    store: str | None,
    qdrant_url: str | None,
    collections: Sequence[str] | None = None,
    model: str | None = None,
    offline: bool = False,
    emulator_port: int = 0,
    top_k: int = 10,
) -> Iterator[tuple[Explorer, dict[str, str]]]:
    """Yield an :class:`Explorer` over ``collections`` (default: every collection with a
    mm-embed record) and the lines saying where each part runs. Raises
    :class:`SetupError` when something cannot be opened or interpreted."""
    qdrant, where_qdrant = open_qdrant(store, qdrant_url, create=False)
    try:
        names = list(collections) if collections else _recorded_collections(qdrant, where_qdrant)
        infos = [(name, read_collection_info(qdrant, name, viking_model=model)) for name in names]
        real_fgclip, real_viking = choose_engines([info for _, info in infos], offline=offline)
        with open_clients(
            real_fgclip=real_fgclip, real_viking=real_viking, port=emulator_port
        ) as clients:
            used: set[str] = {info.provider for _, info in infos}
            where: dict[str, str] = {p: line for p, line in clients.where.items() if p in used}
            where["qdrant"] = where_qdrant
            opened = [
                Collection(name, info, _store(qdrant, name, info, clients), _kinds(qdrant, name))
                for name, info in infos
            ]
            yield Explorer(opened, top_k=top_k), where
    finally:
        qdrant.close()


def _recorded_collections(qdrant: Any, where: str) -> list[str]:
    names = sorted(c.name for c in qdrant.get_collections().collections)
    recorded = [
        name
        for name in names
        if METADATA_KEY in (getattr(qdrant.get_collection(name).config, "metadata", None) or {})
    ]
    if not recorded:
        raise SetupError(
            f"no collection in {where} records how it was embedded (found: "
            f"{', '.join(names) or 'none'}): name one with --collection (and --model), or "
            "build one with mm-embed demo --store PATH"
        )
    return recorded


def choose_engines(infos: Sequence[CollectionInfo], *, offline: bool) -> tuple[bool, bool]:
    """``(real_fgclip, real_viking)``: a collection embedded by the emulator is queried
    through the emulator, one embedded by a real API through that API (its credentials
    must be set); an unrecorded one follows the credentials, like the demo."""
    return (
        _real("fgclip", infos, offline, has_fgclip_credentials()),
        _real("viking", infos, offline, has_viking_credentials()),
    )


def _real(provider: Provider, infos: Sequence[CollectionInfo], offline: bool, creds: bool) -> bool:
    engines = {info.engine for info in infos if info.provider == provider}
    if {"api", "emulator"} <= engines:
        raise SetupError(
            f"the {provider} collections were embedded partly by the real API and partly by "
            "the emulator: explore them separately (--collection)"
        )
    if "api" in engines:
        if offline:
            raise SetupError(
                f"a {provider} collection was embedded by the real API: the emulator cannot "
                "query it (drop --offline)"
            )
        if not creds:
            raise SetupError(
                f"a {provider} collection was embedded by the real API: set {_CREDENTIALS[provider]}"
            )
        return True
    if "emulator" in engines:
        return False
    return creds and not offline


def _store(qdrant: Any, name: str, info: CollectionInfo, clients: Clients) -> QdrantHybrid:
    encoder: FGClipEncoder | VikingHybridEncoder
    if info.provider == "fgclip":
        encoder = FGClipEncoder(clients.fgclip)
        return QdrantHybrid(
            qdrant, name, encoder, dense_name=info.dense_name, sparse_name=info.sparse_name
        )
    try:
        full = VikingHybridEncoder(clients.viking, info.model, model_version=info.model_version)
        encoder = VikingHybridEncoder(
            clients.viking,
            info.model,
            model_version=info.model_version,
            dimension=None if info.dimension == full.dimension else info.dimension,
            sparse=info.sparse,
        )
    except InputError as exc:
        raise SetupError(
            f"collection {name!r} was embedded by Viking {info.model!r} "
            f"({info.dimension}-d, sparse {info.sparse}), which this version cannot "
            f"query: {exc}"
        ) from None
    return QdrantHybrid(
        qdrant, name, encoder, dense_name=info.dense_name, sparse_name=info.sparse_name
    )


def _kinds(qdrant: Any, name: str) -> frozenset[str]:
    from qdrant_client import models

    found = set()
    for kind in _KINDS:
        condition = models.FieldCondition(key="kind", match=models.MatchValue(value=kind))
        if qdrant.count(name, count_filter=models.Filter(must=[condition]), exact=True).count:
            found.add(kind)
    return frozenset(found)
