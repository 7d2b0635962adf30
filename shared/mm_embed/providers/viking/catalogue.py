"""VikingDB embedding v2: the model catalogue and the service's limits, as data.

Source: the provider's page (``Embedding v2``), restated in the project's wire spec.
A new model, version or limit is a change here and nowhere else.

Quota decision (recorded in the docs): the page caps every model at 120,000 tokens per
minute per account, and for ``doubao-embedding``, ``doubao-embedding-large`` and
``doubao-embedding-vision`` adds "当TPM超过5000时请前往火山方舟平台使用" (above 5,000
TPM, use the Volcano Ark platform instead). VikingDB is therefore only meant to carry
5,000 TPM of those three; their default budget is 5,000 (``default_tokens_per_minute``),
the others keep 120,000. A user with a larger entitlement sets ``tokens_per_minute``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADAPTER_DEFAULT_MODEL",
    "ADAPTER_DEFAULT_VERSION",
    "ARK_TOKENS_PER_MINUTE",
    "DEFAULT_BASE_URL",
    "DEFAULT_IMAGES_PER_SECOND",
    "DEFAULT_REGION",
    "DEFAULT_TOKENS_PER_MINUTE",
    "FPS_RANGE",
    "FULL_MODAL",
    "HEADERS",
    "IMAGE",
    "IMAGE_FORMATS",
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MODELS",
    "PATH",
    "PING_PATH",
    "RATE_LIMITED_CODE",
    "SERVICE",
    "TEXT",
    "TEXT_IMAGE",
    "ModelSpec",
    "ModelVersion",
]

DEFAULT_BASE_URL = "https://api-vikingdb.volces.com"
PATH = "/api/data/embedding/version/2"
PING_PATH = "/api/viking_db/data/ping"
HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}
#: The signing service name and default region (Volcengine OpenAPI signature).
SERVICE = "air"
DEFAULT_REGION = "cn-north-1"

#: Data items per request; a ``full_modal_seq`` request carries exactly one.
MAX_ITEMS = 100
#: The page gives 8 MB for a body and 4 MB for embedding v2; bodies stay under 4 MB.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: The code of a quota refusal (whatever the HTTP status).
RATE_LIMITED_CODE = 1000029
FPS_RANGE = (0.2, 5.0)

#: Per model, per account (sub-accounts summed).
DEFAULT_TOKENS_PER_MINUTE = 120_000
#: Above this, the page sends doubao-embedding(-large, -vision) users to Ark.
ARK_TOKENS_PER_MINUTE = 5_000
#: Image uploads per second, per account.
DEFAULT_IMAGES_PER_SECOND = 15
#: Image formats sent as they are (Pillow names); others are re-encoded as PNG.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP")

TEXT, IMAGE, TEXT_IMAGE, FULL_MODAL = "text", "image", "text-image", "full_modal_seq"


@dataclass(frozen=True)
class ModelVersion:
    """What one version of a model can do."""

    dimension: int
    dimensions: frozenset[int]
    data_types: frozenset[str]
    video: bool
    context_tokens: int
    #: Marked "待下线" (being retired) on the provider's page.
    retiring: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A Viking embedding model as the provider's table describes it.

    ``default_version`` is the version the server uses when none is sent; the client
    validates an omitted ``model_version`` against it but never sends it.
    """

    name: str
    versions: Mapping[str, ModelVersion]
    default_version: str
    sparse: bool
    http_media: bool = False
    #: ``*-and-m3`` hybrids report usage per underlying model.
    component_models: tuple[str, ...] = ()
    #: Sparse keys: ``"id"`` (token ids as strings) or ``"token"`` (token strings).
    sparse_keys: str = "id"
    default_tokens_per_minute: int = DEFAULT_TOKENS_PER_MINUTE

    def version(self, model_version: str | None = None) -> ModelVersion:
        """The entry of ``model_version`` (``None``: the server's default version)."""
        key = model_version or self.default_version
        if key not in self.versions:
            from ...errors import InputError

            raise InputError(
                f"model {self.name!r} has no version {model_version!r}",
                field="model_version",
                limit=", ".join(v for v in sorted(self.versions) if v != "default")
                or "no versions",
            )
        return self.versions[key]

    @property
    def multi_version(self) -> bool:
        """Whether the model has named versions (others have one, ``"default"``)."""
        return len(self.versions) > 1 or "default" not in self.versions


def _single(
    dim: int,
    extra: Sequence[int],
    types: Sequence[str],
    ctx: int,
    *,
    video: bool = False,
    retiring: bool = False,
) -> ModelVersion:
    return ModelVersion(dim, frozenset([dim, *extra]), frozenset(types), video, ctx, retiring)


def _one_version(name: str, version: ModelVersion, *, sparse: bool, **spec: Any) -> ModelSpec:
    """A model with a single, unnamed version (``"default"``)."""
    return ModelSpec(
        name=name, versions={"default": version}, default_version="default", sparse=sparse, **spec
    )


def _and_m3(dense: ModelSpec, *, sparse_keys: str = "id") -> ModelSpec:
    """``<dense>-and-m3``: the dense vectors of ``dense`` (its default version) with the
    sparse vectors of bge-m3, from one request."""
    return _one_version(
        f"{dense.name}-and-m3",
        dense.version(),
        sparse=True,
        component_models=(dense.name, "bge-m3"),
        sparse_keys=sparse_keys,
    )


_TXT = (TEXT,)
_VISION = (TEXT, IMAGE, TEXT_IMAGE)
_DOUBAO = ModelSpec(
    name="doubao-embedding",
    versions={v: _single(2048, (512, 1024), _TXT, 4_096) for v in ("240515", "240715")},
    default_version="240515",
    sparse=False,
    default_tokens_per_minute=ARK_TOKENS_PER_MINUTE,
)
_DOUBAO_LARGE = _one_version(
    "doubao-embedding-large",
    _single(4096, (2048, 1024, 512), _TXT, 4_096),
    sparse=False,
    default_tokens_per_minute=ARK_TOKENS_PER_MINUTE,
)
_BGE_LARGE_ZH = _one_version("bge-large-zh", _single(1024, (), _TXT, 512), sparse=False)
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="doubao-embedding-vision",
            versions={
                "241215": _single(3072, (), _VISION, 8_192, retiring=True),
                "250328": _single(2048, (1024,), _VISION, 8_192),
                "250615": _single(2048, (1024,), (*_VISION, FULL_MODAL), 131_072, video=True),
            },
            default_version="241215",
            sparse=False,
            http_media=True,
            default_tokens_per_minute=ARK_TOKENS_PER_MINUTE,
        ),
        _DOUBAO,
        _and_m3(_DOUBAO, sparse_keys="token"),
        _DOUBAO_LARGE,
        _and_m3(_DOUBAO_LARGE, sparse_keys="token"),
        _BGE_LARGE_ZH,
        _one_version("bge-m3", _single(1024, (), _TXT, 8_192), sparse=True),
        _and_m3(_BGE_LARGE_ZH),
        _one_version("bge-visualized-m3", _single(1024, (), _VISION, 8_192), sparse=False),
    ]
}

#: What the framework adapters default to: the current vision model (not the retiring
#: 241215 the server picks when no version is sent).
ADAPTER_DEFAULT_MODEL = "doubao-embedding-vision"
ADAPTER_DEFAULT_VERSION = "250615"
