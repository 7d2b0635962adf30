"""Secret hygiene: API keys, secret keys, tokens and HMAC signatures never show up in
logs (every logger at DEBUG, httpx and httpcore included), exceptions, tracebacks,
reprs, serialised configs or pickles of any public class that holds them, nor in the
emulator's request log.

The emulator here accepts its own distinctive credentials and the failing calls use
other distinctive ones, so both the right and the wrong secrets are searched for; the
signatures of every signed request sent are captured on the wire and searched for too.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from mm_embed import (
    AsyncFGClipClient,
    AsyncVikingClient,
    FGClipClient,
    MMEmbedError,
    VikingClient,
)
from mm_embed.auth import BearerAuth, VikingTokenAuth, VolcengineSignatureAuth
from mm_embed.config import EnvVar
from mm_embed.emulator import Emulator, EmulatorConfig

# Right credentials (the emulator's) and wrong ones (the failing clients').
FG_KEY, FG_WRONG = "fgkey-RIGHT-7c41e9a0", "fgkey-WRONG-1b2c3d4e"
AK = "AKLTleakcheck"  # an identifier, sent in clear in every Authorization header
SK, SK_WRONG = "sk-RIGHT-93be02f1", "sk-WRONG-55aa77cc"
TOKEN, TOKEN_WRONG = "tok-RIGHT-5d7f2101", "tok-WRONG-9e8d7c6b"
SESSION_TOKEN = "sts-RIGHT-0f1e2d3c"
SECRETS = [FG_KEY, FG_WRONG, SK, SK_WRONG, TOKEN, TOKEN_WRONG, SESSION_TOKEN]
LOGGERS = [
    "",
    "httpx",
    "httpcore",
    "httpcore.http11",
    "httpcore.connection",
    "mm_embed",
    "mm_embed.emulator",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "asyncio",
]


class Leaks:
    """Everything a secret could end up in, gathered and searched at the end."""

    def __init__(self) -> None:
        self.signatures: list[str] = []
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: str | bytes) -> None:
        self.texts.append((where, value if isinstance(value, str) else value.decode("latin-1")))

    def hook(self, request: httpx.Request) -> None:
        """An httpx request hook: runs after auth, so it sees the signed header."""
        found = re.search(r"Signature=([0-9a-f]{64})", request.headers.get("authorization", ""))
        if found:
            self.signatures.append(found[1])

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    def check(self) -> None:
        needles = SECRETS + self.signatures
        for where, text in self.texts:
            for needle in needles:
                assert needle not in text, f"secret {needle[:6]}... found in {where}"


class CaptureAll(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[CaptureAll]:
    """Every logger of the stack at DEBUG into one handler on the root logger."""
    handler = CaptureAll()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(api_key=FG_KEY, access_key=AK, secret_key=SK, token=TOKEN) as running:
        yield running


def error_views(leaks: Leaks, error: BaseException, formatted: str) -> None:
    leaks.add("str(error)", str(error))
    leaks.add("repr(error)", repr(error))
    leaks.add("vars(error)", repr(vars(error)))
    leaks.add("traceback", formatted)
    leaks.add("pickle(error)", pickle.dumps(error))
    cause = error.__cause__ or error.__context__
    if cause is not None:
        leaks.add("error cause", repr(cause))


def emulator_views(leaks: Leaks, emu: Emulator) -> None:
    leaks.add("emulator log", repr(emu.log))
    leaks.add("emulator counters", repr(emu.counters))
    leaks.add("emulator repr", repr(emu))
    leaks.add("emulator config repr", repr(emu.config))


# ------------------------------------------------------------------ failing calls

ROUTES = ["fgclip", "viking-hmac", "viking-token", "viking-sts"]


def build(emu: Emulator, route: str, asynchronous: bool, leaks: Leaks, *, right: bool) -> Any:
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [leaks.ahook if asynchronous else leaks.hook]
    }
    http = httpx.AsyncClient(event_hooks=hooks) if asynchronous else httpx.Client(event_hooks=hooks)
    options: dict[str, Any] = {"base_url": emu.url, "http_client": http, "max_retries": 1}
    if route == "fgclip":
        cls: Any = AsyncFGClipClient if asynchronous else FGClipClient
        return cls(FG_KEY if right else FG_WRONG, **options)
    cls = AsyncVikingClient if asynchronous else VikingClient
    options.update(tokens_per_minute=None, images_per_second=None)
    if route == "viking-token":
        return cls(token=TOKEN if right else TOKEN_WRONG, **options)
    client = cls(AK, SK if right else SK_WRONG, **options)
    if route == "viking-sts":
        # A session token rides along in X-Security-Token (the emulator ignores it).
        client.transport.auth = VolcengineSignatureAuth(
            AK, SK if right else SK_WRONG, session_token=SESSION_TOKEN
        )
    return client


async def call(client: Any, asynchronous: bool) -> Any:
    fgclip = isinstance(client, (FGClipClient, AsyncFGClipClient))
    method: Any = client.embed_texts if fgclip else client.embed
    kwargs: dict[str, Any] = {} if fgclip else {"model": "bge-m3"}
    if asynchronous:
        return await method(["hello secret world"], **kwargs)
    return await asyncio.to_thread(method, ["hello secret world"], **kwargs)


async def close(client: Any) -> None:
    http = client.transport.client
    if isinstance(http, httpx.AsyncClient):
        await http.aclose()
    else:
        http.close()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("route", ROUTES)
async def test_failed_and_successful_calls_leak_nothing(
    emu: Emulator, debug_logs: CaptureAll, route: str, asynchronous: bool
) -> None:
    leaks = Leaks()
    good = build(emu, route, asynchronous, leaks, right=True)
    bad = build(emu, route, asynchronous, leaks, right=False)
    try:
        assert len(await call(good, asynchronous)) == 1
        emu.queue_faults("503")  # a retried failure logs a retry line too
        with pytest.raises(MMEmbedError) as caught:
            await call(bad, asynchronous)
        error = caught.value
        assert getattr(error, "status_code", None) == 401
        error_views(leaks, error, "".join(traceback.format_exception(error)))
        for client in (good, bad):
            leaks.add("client repr", repr(client))
            leaks.add("client vars", repr(vars(client)))
            leaks.add("transport vars", repr(vars(client.transport)))
            leaks.add("auth repr", repr(client.transport.auth))
            leaks.add("auth vars", repr(vars(client.transport.auth)))
    finally:
        await close(good)
        await close(bad)
    if route.startswith("viking-") and route != "viking-token":
        assert len(leaks.signatures) >= 3  # good call, 503 attempt, 401 attempt
    assert any("mm_embed" in line and "retrying" in line for line in debug_logs.lines)
    assert any(line.startswith(("httpcore", "httpx")) for line in debug_logs.lines)
    for line in debug_logs.lines:
        leaks.add("log line", line)
    emulator_views(leaks, emu)
    leaks.check()


def test_the_search_catches_a_leak(emu: Emulator, debug_logs: CaptureAll) -> None:
    """The net has no hole: a hook that logs the Authorization header is caught."""
    leaks = Leaks()
    loud = logging.getLogger("mm_embed.test.loud")

    def log_auth(request: httpx.Request) -> None:
        loud.debug("sent %s", request.headers.get("authorization"))

    http = httpx.Client(event_hooks={"request": [leaks.hook, log_auth]})
    with VikingClient(AK, SK, base_url=emu.url, http_client=http) as client:
        client.embed(["x"], model="bge-m3")
    http.close()
    for line in debug_logs.lines:
        leaks.add("log line", line)
    with pytest.raises(AssertionError, match="found in log line"):
        leaks.check()


# ------------------------------------------------------------------ objects at rest


def pickled(obj: Any) -> str | bytes:
    """The pickle, or the refusal's message when the class will not be pickled."""
    try:
        return pickle.dumps(obj)
    except (TypeError, pickle.PicklingError, AttributeError) as refused:
        return f"refused: {refused!r}"


def views(obj: Any) -> list[tuple[str, str | bytes]]:
    """Every way an object is commonly shown, dumped or serialised."""
    from langchain_core.load import dumpd, dumps

    name = type(obj).__name__
    shown: list[tuple[str, str | bytes]] = [
        (f"repr({name})", repr(obj)),
        (f"str({name})", str(obj)),
    ]
    if isinstance(obj, EmulatorConfig):
        # The emulator's own test credentials are public by design (``emu.api_key``,
        # printed by ``mm-embed serve``): only its repr must hide them, so logging a
        # config is safe. Its fields, and so its pickle, hold them.
        return shown
    shown.append((f"pickle({name})", pickled(obj)))
    shown.append((f"vars({name})", repr(vars(obj))))
    for method in ("model_dump", "model_dump_json", "to_dict", "to_json"):
        dump = getattr(obj, method, None)
        if callable(dump):
            shown.append((f"{name}.{method}()", repr(dump())))
    shown.append((f"dumpd({name})", repr(dumpd(obj))))
    shown.append((f"dumps({name})", dumps(obj)))
    return shown


def core_objects(emu: Emulator) -> list[Any]:
    url = emu.url
    return [
        FGClipClient(FG_KEY, base_url=url),
        AsyncFGClipClient(FG_KEY, base_url=url),
        VikingClient(AK, SK, base_url=url),
        VikingClient(token=TOKEN, base_url=url),
        AsyncVikingClient(AK, SK, base_url=url),
        AsyncVikingClient(token=TOKEN, base_url=url),
        BearerAuth(FG_KEY),
        VikingTokenAuth(TOKEN),
        VolcengineSignatureAuth(AK, SK, session_token=SESSION_TOKEN),
        EmulatorConfig(api_key=FG_KEY, secret_key=SK, token=TOKEN),
        emu,
    ]


def langchain_objects(emu: Emulator) -> list[Any]:
    from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings, VikingSparseEmbeddings
    from mm_embed.budgets import LocalBudget

    dense = VikingEmbeddings(model="bge-m3", access_key=AK, secret_key=SK, base_url=emu.url)
    return [
        FGClipEmbeddings(api_key=FG_KEY, base_url=emu.url, budget=LocalBudget()),
        dense,
        VikingEmbeddings(token=TOKEN, base_url=emu.url),
        VikingSparseEmbeddings(
            access_key=AK, secret_key=SK, session_token=SESSION_TOKEN, base_url=emu.url
        ),
        VikingSparseEmbeddings.from_dense(dense),
    ]


def llamaindex_objects(emu: Emulator) -> list[Any]:
    from llamaindex_mm_embed import (
        FGClipEmbedding,
        VikingEmbedding,
        VikingSparseEmbedding,
        viking_hybrid_fns,
    )
    from mm_embed.budgets import LocalBudget

    dense = VikingEmbedding(
        access_key=SecretStr(AK), secret_key=SecretStr(SK), model_name="bge-m3", base_url=emu.url
    )
    sparse = VikingSparseEmbedding(
        access_key=AK, secret_key=SK, session_token=SESSION_TOKEN, base_url=emu.url
    )
    viking_hybrid_fns(dense, sparse)
    return [
        FGClipEmbedding(api_key=SecretStr(FG_KEY), base_url=emu.url, budget=LocalBudget()),
        dense,
        VikingEmbedding(token=SecretStr(TOKEN), base_url=emu.url),
        sparse,
    ]


def use(obj: Any) -> None:
    """Make one real call so lazily built clients (and their auth) exist inside."""
    if hasattr(obj, "embed_query"):
        obj.embed_query("hello")
    elif hasattr(obj, "get_query_embedding"):
        obj.get_query_embedding("hello")
    elif hasattr(obj, "get_text_embedding"):
        obj.get_text_embedding("hello")
    elif hasattr(obj, "embed_documents"):
        obj.embed_documents(["hello"])


GROUPS: dict[str, Callable[[Emulator], list[Any]]] = {
    "core": core_objects,
    "langchain": langchain_objects,
    "llamaindex": llamaindex_objects,
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_objects_holding_secrets_never_show_them(emu: Emulator, group: str) -> None:
    leaks = Leaks()
    objects = GROUPS[group](emu)
    assert objects
    for obj in objects:
        if group != "core":
            use(obj)
        for where, text in views(obj):
            leaks.add(where, text)
        leaks.add(
            f"deepcopy({type(obj).__name__})", repr(copy.deepcopy(obj)) if group != "core" else ""
        )
    leaks.check()


@pytest.mark.parametrize("group", ["langchain", "llamaindex"])
def test_unpickled_adapters_hold_no_secret(
    emu: Emulator, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickle carries no secret: the copy reads them again from the environment."""
    for variable in EnvVar:
        monkeypatch.delenv(variable, raising=False)
    for obj in GROUPS[group](emu):
        blob = pickle.dumps(obj)
        for secret in SECRETS:
            assert secret.encode() not in blob
        clone = pickle.loads(blob)
        for value in vars(clone).values():
            shown = value.get_secret_value() if hasattr(value, "get_secret_value") else None
            assert shown not in SECRETS


def test_secrets_from_the_environment_stay_hidden(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", FG_KEY)
    monkeypatch.setenv("VOLC_ACCESSKEY", AK)
    monkeypatch.setenv("VOLC_SECRETKEY", SK)
    monkeypatch.setenv("VIKING_TOKEN", TOKEN)
    monkeypatch.setenv("VOLC_SESSIONTOKEN", SESSION_TOKEN)
    leaks = Leaks()
    for obj in (
        FGClipClient(base_url=emu.url),
        VikingClient(base_url=emu.url),
        *[o for o in langchain_objects(emu)],
        *[o for o in llamaindex_objects(emu)],
    ):
        for where, text in views(obj):
            leaks.add(where, text)
    leaks.check()


def test_emulator_request_log_and_logging_hold_no_secret(
    emu: Emulator, debug_logs: CaptureAll
) -> None:
    """Auth failures of every kind, then the emulator's log, counters and log lines."""
    leaks = Leaks()
    with httpx.Client(event_hooks={"request": [leaks.hook]}) as http:
        for headers in (
            {"Authorization": f"Bearer {FG_WRONG}"},
            {"Authorization": f"Bearer {FG_KEY}", "Content-Type": "text/plain"},
        ):
            http.post(emu.url + "/models/interface", content=b"{}", headers=headers)
        for token in (TOKEN, TOKEN_WRONG):
            http.post(
                emu.url + "/api/data/embedding/version/2",
                content=b"{}",
                headers={"Authorization": f"token={token}", "Content-Type": "application/json"},
            )
    for record in emu.log:
        leaks.add("emulator record", repr(record))
    for line in debug_logs.lines:
        leaks.add("log line", line)
    emulator_views(leaks, emu)
    leaks.check()
