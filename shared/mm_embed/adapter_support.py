"""What both framework adapters hold of the core, so neither re-implements it:

* :class:`ClientSlot`: the core clients of one adapter object, built on first use and
  rebuilt when a connection setting changed since (so a changed ``api_key`` or
  ``base_url`` is never silently ignored, and a copy never bills its original's key).
* :class:`SecretFieldsMixin`: pydantic adapter models whose secrets never reach a
  pickle or a copy's private state; an unpickled object reads its secrets again from
  the environment. Settings are checked once at construction (and for every
  ``model_copy``), raising :class:`~mm_embed.MMEmbedError` subclasses as they are.
* :class:`FGClipClientFields` / :class:`VikingClientFields`: the client settings as
  pydantic fields, with the defaults of :data:`mm_embed.config.DEFAULTS` and the
  catalogues, credentials resolved by :mod:`mm_embed.config`'s precedence, and the
  ``client`` / ``async_client`` properties. The LangChain and LlamaIndex classes add
  their secret fields (named, or aliased, as the core client's parameters) and their
  framework's own settings.
* :class:`FGClipClientSettings` / :class:`VikingClientSettings`: the same settings as
  ``TypedDict`` s, for the adapters' typed constructors (``**settings: Unpack[...]``),
  which take secrets as plain ``str``.
* :func:`default_model_version`: the version an adapter asks for when none is given;
  :func:`check_pairable`: whether a model can serve a dense+sparse pairing.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    Self,
    TypedDict,
    TypeVar,
)

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_serializer

from .budgets import Budget
from .config import (
    DEFAULTS,
    EnvVar,
    env_value,
    redact_url,
    resolve_fgclip_credentials,
    resolve_viking_credentials,
)
from .errors import ConfigurationError
from .pairing import DenseSparsePairing, PairEntry
from .providers.fgclip import AsyncFGClipClient, FGClipClient
from .providers.fgclip.catalogue import KNOWN_MODELS as FGCLIP_KNOWN_MODELS
from .providers.viking import MODELS as VIKING_MODELS
from .providers.viking import AsyncVikingClient, VikingClient
from .providers.viking.catalogue import (
    ADAPTER_DEFAULT_MODEL,
    ADAPTER_DEFAULT_VERSION,
    DEFAULT_IMAGES_PER_SECOND,
    DEFAULT_REGION,
)
from .providers.viking.protocol import resolve_request

__all__ = [
    "ClientSlot",
    "FGClipClientFields",
    "FGClipClientSettings",
    "SecretFieldsMixin",
    "VikingClientFields",
    "VikingClientSettings",
    "check_pairable",
    "default_model_version",
]


class _Closable(Protocol):
    def close(self) -> None: ...


class _AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


S = TypeVar("S", bound=_Closable)
A = TypeVar("A", bound=_AsyncClosable)
Options = Mapping[str, Any]


C = TypeVar("C")


def _built_for(
    held: tuple[dict[str, Any], C] | None, options: Options, build: Callable[..., C]
) -> tuple[dict[str, Any], C]:
    """``held`` when it was built with ``options``, else a client newly built with them."""
    wanted = dict(options)
    if held is not None and held[0] == wanted:
        return held
    return wanted, build(**wanted)


class ClientSlot(Generic[S, A]):
    """A blocking and an async core client, each built by ``build(options)`` on first
    use and rebuilt (the old one closed) whenever ``options`` differ from those it was
    built with. The async client serves any event loop (its transport keeps one HTTP
    client per loop). A slot pickles and copies as an empty slot: clients hold sockets
    and credentials, and a copy builds its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: tuple[dict[str, Any], S] | None = None
        self._async: tuple[dict[str, Any], A] | None = None
        self._retired: list[A] = []

    def sync(self, options: Options, build: Callable[..., S]) -> S:
        """The blocking client for ``options``."""
        with self._lock:
            old, self._sync = self._sync, _built_for(self._sync, options, build)
            client = self._sync[1]
        if old is not None and old[1] is not client:
            old[1].close()
        return client

    def async_(self, options: Options, build: Callable[..., A]) -> A:
        """The async client for ``options`` (an outdated one is closed at :meth:`aclose`)."""
        with self._lock:
            old, self._async = self._async, _built_for(self._async, options, build)
            client = self._async[1]
            if old is not None and old[1] is not client:
                self._retired.append(old[1])
            return client

    def close(self) -> None:
        """Close the blocking client (a later call builds a new one)."""
        with self._lock:
            current, self._sync = self._sync, None
        if current is not None:
            current[1].close()

    async def aclose(self) -> None:
        """Close the async clients (a later call builds a new one)."""
        with self._lock:
            current, self._async = self._async, None
            retired, self._retired = self._retired, []
        for client in [*retired, *([current[1]] if current else [])]:
            await client.aclose()

    def __getstate__(self) -> dict[str, Any]:
        # Not empty: pickle skips __setstate__ for a falsy state.
        return {"empty": True}

    def __setstate__(self, state: dict[str, Any]) -> None:
        ClientSlot.__init__(self)

    def __copy__(self) -> ClientSlot[S, A]:
        return ClientSlot()

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientSlot[S, A]:
        return ClientSlot()


class SecretFieldsMixin:
    """For pydantic adapter models: secret fields stay out of pickles, settings are
    checked at construction, copies are checked and build their own clients.

    ``_secret_env`` maps each secret field (by name or alias) to the environment
    variable it is read from again when the object is unpickled (``None``: left unset,
    the core client then applies its own precedence). Private attributes (client slots)
    start afresh in an unpickled object and in a copy.

    Shared objects are shared, not copied: a copy (``model_copy``, ``copy.deepcopy``)
    holds the same :class:`~mm_embed.pairing.DenseSparsePairing` and
    :class:`~mm_embed.budgets.Budget` as its original. A pickle holds the pairing
    (empty, shared by the objects pickled together) but not a ``Budget`` object, which
    owns locks or connections: the unpickled object gets ``None`` (the default budget);
    a budget URL is kept.
    """

    _secret_env: ClassVar[Mapping[str, EnvVar | None]] = {}

    if not TYPE_CHECKING:  # type checkers keep each class's typed constructor

        def __init__(self, **data: Any) -> None:
            super().__init__(**data)
            self._check_settings()

    def _check_settings(self) -> None:
        """Resolve secrets and check the settings after construction; raises
        :class:`~mm_embed.MMEmbedError` subclasses as they are (pydantic would wrap
        them in a ``ValidationError`` inside a validator)."""

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied and validated (keys are field names or
        aliases; a secret given as ``str`` becomes a ``SecretStr``), checked like a new
        object. The copy builds its own core clients."""
        assert isinstance(self, BaseModel)
        copied = copy.deepcopy(self) if deep else copy.copy(self)
        for key, value in (update or {}).items():
            copied.__pydantic_validator__.validate_assignment(
                copied, _field(type(self), key), value
            )
        if update:
            copied._check_settings()
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        assert isinstance(self, BaseModel)
        state: dict[Any, Any] = BaseModel.__getstate__(self)
        fields = dict(state["__dict__"])
        for key in self._secret_env:
            fields[_field(type(self), key)] = None
        for name, value in fields.items():
            if isinstance(value, Budget):
                fields[name] = None
            elif name == "base_url" and isinstance(value, str) and redact_url(value) != value:
                # A password inside the URL is a secret: the unpickled object reads
                # the endpoint from the environment again, as it does the secrets.
                fields[name] = None
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        assert isinstance(self, BaseModel)
        BaseModel.__setstate__(self, state)
        private = {
            name: attr.get_default(call_default_factory=True)
            for name, attr in type(self).__private_attributes__.items()
        }
        object.__setattr__(self, "__pydantic_private__", private)
        for key, variable in self._secret_env.items():
            value = env_value(variable) if variable is not None else None
            self.__dict__[_field(type(self), key)] = SecretStr(value) if value else None
        endpoint = getattr(self, "_base_url_env", None)
        if "base_url" in self.__dict__ and self.__dict__["base_url"] is None and endpoint:
            self.__dict__["base_url"] = env_value(endpoint)

    def __copy__(self) -> Any:
        # model_copy(update=...) may change any setting: the copy builds its own clients
        # (pydantic's copy would share the slot, and the two would rebuild each other's).
        assert isinstance(self, BaseModel)
        copied = BaseModel.__copy__(self)
        _fresh_slots(copied)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        assert isinstance(self, BaseModel)
        memo = {} if memo is None else memo
        for value in self.__dict__.values():
            if isinstance(value, (Budget, DenseSparsePairing)):
                memo[id(value)] = value
        copied = BaseModel.__deepcopy__(self, memo)
        _fresh_slots(copied)
        return copied


def _fresh_slots(model: BaseModel) -> None:
    private = model.__pydantic_private__ or {}
    for name, value in list(private.items()):
        if isinstance(value, ClientSlot):
            private[name] = ClientSlot()


def _field(cls: type[BaseModel], key: str) -> str:
    """The name of the field ``key`` names (its name or its alias)."""
    if key in cls.model_fields:
        return key
    for name, info in cls.model_fields.items():
        if info.alias == key:
            return name
    raise ConfigurationError(f"{cls.__name__} has no setting {key!r}")


def check_pairable(model: str) -> None:
    """Raise :class:`~mm_embed.ConfigurationError` when ``model`` (a catalogued Viking
    model) has no sparse vectors: a pairing asks for both kinds in one request."""
    spec = VIKING_MODELS.get(model)
    if spec is not None and not spec.sparse:
        raise ConfigurationError(
            f"model {model!r} has no sparse vectors; use one of: "
            + ", ".join(name for name, other in VIKING_MODELS.items() if other.sparse)
        )


def default_model_version(model: object) -> str | None:
    """The Viking ``model_version`` an adapter asks for when none is given: the current
    vision version for the adapters' default model (not the retiring one the server
    picks), otherwise ``None`` (the server's default)."""
    return ADAPTER_DEFAULT_VERSION if model == ADAPTER_DEFAULT_MODEL else None


# --------------------------------------------------------------------------- settings


class _ClientFields(SecretFieldsMixin, BaseModel):
    """Settings every core client takes, and the client slot built from them.

    ``client_options()`` gives the core client's constructor the fields whose name or
    alias is one of its parameters, plus the adapter's ``_client_renames``
    (``{core parameter: field}``, for settings a framework names its own way).
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        protected_namespaces=(),
        # A validation error must not echo the constructor's input: it holds the secrets.
        hide_input_in_errors=True,
        validate_assignment=True,
        arbitrary_types_allowed=True,
    )

    timeout: float | None = Field(
        default=DEFAULTS.timeout,
        gt=0,
        description="Seconds one whole request may take (connect, send, receive); None: unbounded.",
    )
    max_retries: int = Field(
        default=DEFAULTS.max_retries, ge=0, description="Retries per wire request; 0: none."
    )
    budget: Budget | str | None = Field(
        default=None,
        exclude=True,
        description="The account's shared quota: a Budget or a URL (memory://, "
        f"file:///abs/path, redis://host:port/db); None: {EnvVar.MM_EMBED_BUDGET}, else "
        "this process's budget. Not serialised.",
    )
    max_image_pixels: int = Field(
        default=DEFAULTS.max_image_pixels,
        ge=1,
        description="Images with more pixels are refused before decoding.",
    )
    strict_models: bool = Field(
        default=True,
        description="False sends a model, version or dimension the catalogue does not "
        "know (warned once) instead of refusing it.",
    )

    _client_type: ClassVar[Callable[..., Any]]
    _client_renames: ClassVar[Mapping[str, str]] = {}
    _clients: ClientSlot[Any, Any] = PrivateAttr(default_factory=ClientSlot)

    @field_serializer("base_url", check_fields=False)
    def _serialise_base_url(self, value: str | None) -> str | None:
        # A password inside the URL (http://user:secret@host) is a secret too.
        return redact_url(value) if value else value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" and value else value

    def client_options(self) -> dict[str, Any]:
        """The core client's constructor arguments, from the current settings."""
        return {param: getattr(self, name) for param, name in _option_fields(type(self)).items()}

    def _setting(self, key: str) -> Any:
        return getattr(self, _field(type(self), self._client_renames.get(key, key)))

    def _store(self, key: str, value: SecretStr | None) -> None:
        # A resolved secret, set as it is (no second validation).
        self.__dict__[_field(type(self), self._client_renames.get(key, key))] = value

    def close(self) -> None:
        """Close the blocking client's connections (a later call opens new ones)."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async client's connections (a later call opens new ones)."""
        await self._clients.aclose()


_option_cache: dict[type[Any], dict[str, str]] = {}


def _option_fields(cls: type[_ClientFields]) -> dict[str, str]:
    """``{core parameter: field name}`` for ``cls`` (computed once per class)."""
    found = _option_cache.get(cls)
    if found is None:
        public = {info.alias or name: name for name, info in cls.model_fields.items()}
        public.update({name: name for name in cls.model_fields})
        found = {}
        for param in inspect.signature(cls._client_type).parameters:
            field = cls._client_renames.get(param, param)
            if field in public:
                found[param] = public[field]
        _option_cache[cls] = found
    return found


class FGClipClientFields(_ClientFields):
    """FG-CLIP client settings. The adapter adds a secret field named (or aliased)
    ``api_key``; it is resolved at construction (argument, else the environment)."""

    _base_url_env: ClassVar[EnvVar] = EnvVar.FGCLIP_BASE_URL

    base_url: str | None = Field(
        default_factory=lambda: env_value(EnvVar.FGCLIP_BASE_URL),
        description=f"Endpoint; {EnvVar.FGCLIP_BASE_URL}, else https://api.research.360.cn.",
    )
    max_concurrency: int = Field(
        default=DEFAULTS.fgclip_max_concurrency, ge=1, description="Requests in flight at once."
    )
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="An optional request quota shared through the budget (FG-CLIP "
        "publishes none); None: no pacing.",
    )

    _client_type: ClassVar[Callable[..., Any]] = FGClipClient
    _secret_env: ClassVar[Mapping[str, EnvVar | None]] = {"api_key": EnvVar.FGCLIP_API_KEY}
    _clients: ClientSlot[FGClipClient, AsyncFGClipClient] = PrivateAttr(default_factory=ClientSlot)

    def _check_settings(self) -> None:
        self._store("api_key", resolve_fgclip_credentials(self._setting("api_key")).api_key)
        model = self._setting("model")
        if self.strict_models and model not in FGCLIP_KNOWN_MODELS:
            raise ConfigurationError(
                f"unknown FG-CLIP model {model!r} (known: {', '.join(sorted(FGCLIP_KNOWN_MODELS))}); "
                "pass strict_models=False to send it anyway"
            )

    @property
    def client(self) -> FGClipClient:
        """The blocking core client for the current settings (built on first use,
        rebuilt when a setting changed)."""
        return self._clients.sync(self.client_options(), FGClipClient)

    @property
    def async_client(self) -> AsyncFGClipClient:
        """The async core client for the current settings (serves any event loop)."""
        return self._clients.async_(self.client_options(), AsyncFGClipClient)


class VikingClientFields(_ClientFields):
    """Viking client settings, the dense dimension and the pairing.

    The adapter adds secret fields named (or aliased) ``access_key``, ``secret_key``,
    ``token`` and ``session_token``, resolved at construction by
    :func:`mm_embed.config.resolve_viking_credentials`; and ``model`` (or a field
    ``_client_renames`` names for it) and ``model_version``, checked against the
    catalogue at construction.
    """

    _base_url_env: ClassVar[EnvVar] = EnvVar.VIKING_BASE_URL

    base_url: str | None = Field(
        default_factory=lambda: env_value(EnvVar.VIKING_BASE_URL),
        description=f"Endpoint; {EnvVar.VIKING_BASE_URL}, else https://api-vikingdb.volces.com.",
    )
    region: str = Field(default=DEFAULT_REGION, description="The signing region.")
    max_concurrency: int = Field(
        default=DEFAULTS.viking_max_concurrency, ge=1, description="Requests in flight at once."
    )
    tokens_per_minute: Annotated[int, Field(ge=1)] | Literal["auto"] | None = Field(
        default="auto",
        description='Per-model token quota; "auto": the model\'s catalogue default '
        "(120,000; 5,000 for doubao-embedding, -large and -vision); None: no pacing.",
    )
    images_per_second: float | None = Field(
        default=DEFAULT_IMAGES_PER_SECOND,
        gt=0,
        description="Image upload quota (provider: 15); None: no pacing.",
    )
    image_max_bytes: int | None = Field(
        default=DEFAULTS.viking_image_max_bytes,
        ge=1,
        description="Images above this are re-encoded or downscaled (the provider advises "
        "under 1 MB); None: off.",
    )
    dimension: int | None = Field(
        default=None,
        description="A reduced dense dimension the model offers; None: its full dimension "
        "(a sparse adapter asks for it alongside when paired).",
    )
    pairing: DenseSparsePairing | None = Field(
        default=None,
        exclude=True,
        description="Shared by a dense and a sparse adapter of the same model, so one "
        "request per text brings both vectors. Not serialised.",
    )

    _client_type: ClassVar[Callable[..., Any]] = VikingClient
    _secret_env: ClassVar[Mapping[str, EnvVar | None]] = {
        "access_key": EnvVar.VOLC_ACCESSKEY,
        "secret_key": EnvVar.VOLC_SECRETKEY,
        "session_token": EnvVar.VOLC_SESSIONTOKEN,
        # Left unset: the core client reads it only when no AK/SK pair is found.
        "token": None,
    }
    #: Whether the adapter asks for sparse vectors on its own (the sparse adapters).
    _sparse: ClassVar[bool] = False
    _clients: ClientSlot[VikingClient, AsyncVikingClient] = PrivateAttr(default_factory=ClientSlot)

    def _check_settings(self) -> None:
        credentials = resolve_viking_credentials(
            self._setting("access_key"),
            self._setting("secret_key"),
            token=self._setting("token"),
            session_token=self._setting("session_token"),
        )
        for key in ("access_key", "secret_key", "token", "session_token"):
            self._store(key, getattr(credentials, key))
        resolve_request(
            **self._request(),
            return_sparse=self._sparse or self.pairing is not None,
            strict=self.strict_models,
        )

    @property
    def paired(self) -> bool:
        """Whether a pairing shares this object's text requests with its twin."""
        return self.pairing is not None

    @property
    def client(self) -> VikingClient:
        """The blocking core client for the current settings (built on first use,
        rebuilt when a setting changed)."""
        return self._clients.sync(self.client_options(), VikingClient)

    @property
    def async_client(self) -> AsyncVikingClient:
        """The async core client for the current settings (serves any event loop)."""
        return self._clients.async_(self.client_options(), AsyncVikingClient)

    def _request(self, *, dense: bool = True) -> dict[str, Any]:
        """``model``, ``model_version`` and (for dense vectors) ``dimension``."""
        request = {"model": self._setting("model"), "model_version": self._setting("model_version")}
        return {**request, "dimension": self.dimension} if dense else request

    def _pair_entries(self, texts: Sequence[str]) -> list[PairEntry]:
        """Both vectors of ``texts`` through the pairing (one request for both kinds)."""
        assert self.pairing is not None
        return self.pairing.entries(self.client, texts, **self._request())

    async def _apair_entries(self, texts: Sequence[str]) -> list[PairEntry]:
        """Async twin of :meth:`_pair_entries`."""
        assert self.pairing is not None
        return await self.pairing.aentries(self.async_client, texts, **self._request())


# --------------------------------------------------------------------------- constructors


class _ClientSettings(TypedDict, total=False):
    base_url: str | None
    timeout: float | None
    max_retries: int
    max_concurrency: int
    budget: Budget | str | None
    max_image_pixels: int
    strict_models: bool


class FGClipClientSettings(_ClientSettings, total=False):
    """The FG-CLIP settings an adapter's constructor takes (see :class:`FGClipClientFields`)."""

    api_key: str | SecretStr | None
    requests_per_second: float | None


class VikingClientSettings(_ClientSettings, total=False):
    """The Viking settings an adapter's constructor takes (see :class:`VikingClientFields`)."""

    dimension: int | None
    pairing: DenseSparsePairing | None
    access_key: str | SecretStr | None
    secret_key: str | SecretStr | None
    token: str | SecretStr | None
    session_token: str | SecretStr | None
    region: str
    tokens_per_minute: int | Literal["auto"] | None
    images_per_second: float | None
    image_max_bytes: int | None
