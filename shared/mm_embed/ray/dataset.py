""":func:`embed_dataset`: embed a Ray Dataset on a pool of actors, one client each."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..budgets import Budget
from ..bulk import EngineOptions
from ..config import EnvVar, env_value
from ..errors import ConfigurationError
from ._internals import make_client
from .budget import RayBudget
from .runtime import require_ray, runtime_env
from .worker import Columns, EmbedBatches, WorkerSpec

if TYPE_CHECKING:
    import ray.data

__all__ = ["DEFAULT_ACTOR_CPUS", "embed_batches", "embed_dataset", "prepare", "shared_budget"]

#: CPUs each embedding actor asks for: it mostly waits on the provider, and whole CPUs
#: would leave a small cluster none for reading (on 2 CPUs the pipeline deadlocks).
DEFAULT_ACTOR_CPUS = 0.25

_SECRET_SETTINGS = ("api_key", "access_key", "secret_key", "token", "session_token")


def shared_budget(budget: RayBudget | str | None) -> tuple[RayBudget | None, dict[str, str]]:
    """The budget every actor shares, as ``(budget for the clients, environment)``.

    A :class:`RayBudget` goes as given. A budget URL (``budget``, else the driver's
    ``MM_EMBED_BUDGET``) goes in the workers' environment, where their clients find it
    (a URL may hold a password: it travels in the ``runtime_env``, never as an
    argument). Without either, the cluster's default :class:`RayBudget`. ``memory://``
    is refused: each actor would get its own.
    """
    if isinstance(budget, RayBudget):
        return budget, {}
    if isinstance(budget, Budget):
        raise ConfigurationError(
            f"a {type(budget).__name__} cannot be shared by Ray actors: pass a RayBudget, a "
            "redis:// or file:// budget URL, or nothing (the cluster's RayBudget)"
        )
    url = budget if budget is not None else env_value(EnvVar.MM_EMBED_BUDGET)
    if url is None:
        return RayBudget(), {}
    if not isinstance(url, str) or urlsplit(url).scheme.lower() == "memory":
        raise ConfigurationError(
            "a memory:// budget lives in one process: every Ray actor would get its own "
            "and together they would exceed the quota; pass a RayBudget or a redis:// URL"
        )
    return None, {f"{EnvVar.MM_EMBED_BUDGET}": url}


def prepare(provider: str, client: Mapping[str, Any], options: EngineOptions) -> int:
    """Check the settings on the driver, before any actor starts (a client is built
    from the driver's credentials and closed); returns the batch size."""
    from ..bulk import BulkEmbedder

    named = sorted(set(client) & set(_SECRET_SETTINGS))
    if named:
        raise ConfigurationError(
            f"{named[0]} must not be given to Ray actors as an argument: set it in the "
            "driver's environment (it reaches the workers through runtime_env)"
        )
    if provider not in ("fgclip", "viking"):
        raise ConfigurationError(f"provider must be 'fgclip' or 'viking', got {provider!r}")
    with make_client(provider, dict(client)) as checking:
        return BulkEmbedder(checking, options).batch_size


def embed_batches(
    ds: ray.data.Dataset,
    spec: WorkerSpec,
    *,
    batch_size: int,
    concurrency: int,
    num_cpus: float,
    env: dict[str, str] | None = None,
) -> ray.data.Dataset:
    """``ds`` through a pool of ``concurrency`` :class:`EmbedBatches` actors.

    It turns on ``raise_original_map_exception`` in the dataset's ``DataContext`` (which
    Ray shares with the datasets it derives from): an actor's mm-embed error then
    reaches whoever consumes the dataset as itself (e.g. ``except RejectedInput``),
    wrapped by Ray's ``RayTaskError`` but still an instance of it.
    """
    ray = require_ray()
    ds.context.raise_original_map_exception = True
    return ds.map_batches(
        EmbedBatches,
        fn_constructor_kwargs={"spec": spec},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
        runtime_env=runtime_env(env),
    )


def embed_dataset(
    ds: ray.data.Dataset,
    *,
    provider: str,
    model: str | None = None,
    model_version: str | None = None,
    dimension: int | None = None,
    sparse: bool = False,
    id_column: str = "id",
    text_column: str | None = "text",
    image_column: str | None = None,
    boxes_column: str | None = None,
    base_url: str | None = None,
    budget: RayBudget | str | None = None,
    concurrency: int = 4,
    batch_size: int | None = None,
    rejects: str | os.PathLike[str] | None = None,
    client_options: Mapping[str, Any] | None = None,
    num_cpus: float = DEFAULT_ACTOR_CPUS,
) -> ray.data.Dataset:
    """Embed the rows of ``ds`` on a pool of ``concurrency`` Ray actors, one client each.

    Rows are read from ``id_column`` and ``text_column`` and/or ``image_column`` (a path,
    URL or data URI, or bytes), with ``boxes_column`` (``[[x, y, w, h], ...]``, FG-CLIP).
    The returned dataset (lazy, like any Ray Dataset) has the columns and types of
    ``mm-embed embed``'s Parquet output: ``id``, ``box`` (FG-CLIP), ``dense``
    (``fixed_size_list<float32>``), ``sparse_indices`` / ``sparse_values`` (with
    ``sparse``), ``tokens``; rows come in no particular order.

    Every actor draws from ``budget``: a :class:`RayBudget` (default: the cluster's,
    created or joined), or a ``redis://`` / ``file://`` URL. Credentials come from the
    driver's environment (``VOLC_ACCESSKEY`` ...) through Ray's ``runtime_env``, never
    as arguments; ``client_options`` are more client settings (``timeout``,
    ``max_retries``, ``tokens_per_minute``, ``images_per_second``...).

    Failures: retryable errors are retried inside the actor; an actor that dies is
    restarted by Ray and its batch run again; an item refused for good is written with
    its id and error to ``rejects`` (a directory, one JSONL file per batch that had
    any); without ``rejects`` such an item fails the run with :class:`RejectedInput`.
    ``num_cpus`` is what each actor asks Ray for (a fraction: actors mostly wait).
    """
    require_ray()
    settings: dict[str, Any] = {
        "base_url": base_url,
        "max_concurrency": 1,
        "max_batch_size": batch_size,
        **(client_options or {}),
    }
    settings["budget"], env = shared_budget(budget)
    options = EngineOptions(
        model=model,
        model_version=model_version,
        dimension=dimension,
        sparse=sparse,
        batch_size=batch_size,
    )
    size = prepare(provider, settings, options)
    columns = Columns(id_column, text_column, image_column, boxes_column)
    spec = WorkerSpec(
        provider,
        settings,
        options,
        columns,
        # Absolute: the actors may run in other directories (on other nodes).
        rejects=None if rejects is None else os.path.abspath(rejects),
    )
    return embed_batches(
        ds, spec, batch_size=size, concurrency=concurrency, num_cpus=num_cpus, env=env
    )
