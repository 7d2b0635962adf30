"""Settings of the six adapter classes (LangChain and LlamaIndex, FG-CLIP and Viking),
checked side by side against the emulator:

* settings changed after the first call are used by the next one (a copy with other
  credentials bills the other account; a new ``base_url`` reaches the new server; a new
  batch size changes the requests), sync and async;
* defaults are the core's, one value each;
* the new settings (``budget``, ``session_token``, ``strict_models``,
  ``image_max_bytes``, ``requests_per_second``, ``max_image_pixels``) reach the client;
* the typed constructors list every setting and take secrets as plain ``str``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings, VikingSparseEmbeddings
from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding, VikingSparseEmbedding
from mm_embed import FGClipClient, VikingClient
from mm_embed.adapter_support import _option_fields
from mm_embed.budgets import LocalBudget
from mm_embed.config import EnvVar
from mm_embed.errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InputError,
)
from tests.integration._helpers import REPO as ROOT

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

ADAPTERS = [
    FGClipEmbeddings,
    VikingEmbeddings,
    VikingSparseEmbeddings,
    FGClipEmbedding,
    VikingEmbedding,
    VikingSparseEmbedding,
]


pytestmark = pytest.mark.usefixtures("no_provider_env")


@dataclass(frozen=True)
class Framework:
    """How each framework spells the same calls."""

    fgclip: type[Any]
    viking: type[Any]
    embed: Callable[[Any, list[str]], list[Any]]
    aembed: Callable[[Any, list[str]], Any]
    #: The batch size setting, and a call that sends its texts to the core client whole.
    batch_size: str
    embed_whole: Callable[[Any, list[str]], list[Any]]


FRAMEWORKS = {
    "langchain": Framework(
        FGClipEmbeddings,
        VikingEmbeddings,
        lambda m, texts: m.embed_documents(texts),
        lambda m, texts: m.aembed_documents(texts),
        "batch_size",
        lambda m, texts: m.embed_documents(texts),
    ),
    "llamaindex": Framework(
        FGClipEmbedding,
        VikingEmbedding,
        lambda m, texts: m.get_text_embedding_batch(texts),
        lambda m, texts: m.aget_text_embedding_batch(texts),
        "embed_batch_size",
        # LlamaIndex cuts get_text_embedding_batch itself; the box texts go whole.
        lambda m, texts: m.get_box_text_embeddings(texts),
    ),
}


def credentials(provider: str, emu: Emulator) -> dict[str, Any]:
    if provider == "fgclip":
        return {"api_key": emu.api_key}
    return {"access_key": emu.access_key, "secret_key": emu.secret_key}


def wrong(provider: str) -> dict[str, str]:
    return {"api_key": "not-the-key"} if provider == "fgclip" else {"secret_key": "not-it"}


def build(framework: str, provider: str, emu: Emulator, **settings: Any) -> Any:
    cls = getattr(FRAMEWORKS[framework], provider)
    model = {"model_name" if framework == "llamaindex" else "model": "bge-m3"}
    extra = model if provider == "viking" else {}
    return cls(**credentials(provider, emu), base_url=emu.url, max_retries=0, **extra, **settings)


def requests(emu: Emulator) -> int:
    return sum(1 for r in emu.log if r.embedded)


def embed(framework: str, model: Any, texts: list[str], mode: str) -> list[Any]:
    if mode == "sync":
        return FRAMEWORKS[framework].embed(model, texts)
    result: list[Any] = asyncio.run(FRAMEWORKS[framework].aembed(model, texts))
    return result


CASES = [
    (framework, provider, mode)
    for framework in FRAMEWORKS
    for provider in ("fgclip", "viking")
    for mode in ("sync", "async")
]


@pytest.fixture
def other_account(make_emulator: Callable[..., Emulator]) -> Emulator:
    """A second emulator with credentials of its own (another tenant)."""
    return make_emulator(
        api_key="tenant-b-key", access_key="AKLTtenantB", secret_key="tenant-b-secret"
    )


# --------------------------------------------------------------------------- after first use


@pytest.mark.parametrize(("framework", "provider", "mode"), CASES)
def test_a_copy_with_other_credentials_bills_the_other_account(
    emulator: Emulator, other_account: Emulator, framework: str, provider: str, mode: str
) -> None:
    model = build(framework, provider, emulator)
    embed(framework, model, ["first call"], mode)
    assert requests(emulator) == 1
    tenant_b = model.model_copy(
        update={**credentials(provider, other_account), "base_url": other_account.url}
    )
    embed(framework, tenant_b, ["tenant b"], mode)
    assert (requests(emulator), requests(other_account)) == (1, 1)
    # A copy with a wrong key gets the provider's refusal, not the original's key.
    with pytest.raises(AuthenticationError):
        embed(framework, model.model_copy(update=wrong(provider)), ["wrong key"], mode)
    embed(framework, model, ["the original is unchanged"], mode)
    assert (requests(emulator), requests(other_account)) == (2, 1)


@pytest.mark.parametrize(("framework", "provider", "mode"), CASES)
def test_a_new_endpoint_after_the_first_call_is_used(
    make_emulator: Callable[..., Emulator], framework: str, provider: str, mode: str
) -> None:
    first, second = make_emulator(), make_emulator()
    model = build(framework, provider, first)
    embed(framework, model, ["on the first server"], mode)
    old_client = model.client
    model.base_url = second.url
    embed(framework, model, ["on the second server"], mode)
    assert (requests(first), requests(second)) == (1, 1)
    assert model.client is not old_client
    if mode == "sync":  # the replaced client was closed, not leaked
        call = (
            (lambda: old_client.embed_texts(["closed"]))
            if provider == "fgclip"
            else (lambda: old_client.embed(["closed"], model="bge-m3"))
        )
        with pytest.raises(ClientClosedError):
            call()


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize("how", ["assigned", "model_copy"])
def test_a_new_batch_size_after_first_use_changes_the_requests(
    emulator: Emulator, framework: str, how: str
) -> None:
    spec = FRAMEWORKS[framework]
    model = build(framework, "fgclip", emulator)
    texts = [f"text {i}" for i in range(10)]
    spec.embed_whole(model, texts)
    if how == "assigned":
        setattr(model, spec.batch_size, 4)
    else:
        model = model.model_copy(update={spec.batch_size: 4})
    emulator.clear_log()
    spec.embed_whole(model, texts)
    assert sorted(r.items for r in emulator.log if r.embedded) == [2, 4, 4]


def test_a_new_batch_size_reaches_async_calls(emulator: Emulator) -> None:
    model = build("langchain", "viking", emulator)
    texts = [f"text {i}" for i in range(10)]
    asyncio.run(model.aembed_documents(texts))
    model.batch_size = 3
    emulator.clear_log()
    asyncio.run(model.aembed_documents(texts))
    assert sorted(r.items for r in emulator.log if r.embedded) == [1, 3, 3, 3]


@pytest.mark.parametrize(
    "cls", ADAPTERS, ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}"
)
def test_assigned_settings_are_validated(cls: type[Any]) -> None:
    model = cls(**({"api_key": "k"} if "FGClip" in cls.__name__ else {"token": "t"}))
    public = "api_key" if "FGClip" in cls.__name__ else "token"
    secret = next(n for n, info in cls.model_fields.items() if (info.alias or n) == public)
    setattr(model, secret, "plain-string-secret")
    assert "plain-string-secret" not in repr(model) + repr(vars(model))
    with pytest.raises(ValueError, match="max_retries"):
        model.max_retries = -1


# --------------------------------------------------------------------------- defaults


def test_defaults_are_the_core_clients_defaults() -> None:
    """Every setting an adapter hands to the core client defaults to the core's value
    (one value each, the same in both frameworks), except LlamaIndex's
    ``embed_batch_size``, which is also the framework's own batch and so names the
    provider's cap itself."""
    clients = {"FGClip": FGClipClient, "Viking": VikingClient}
    checked = 0
    for cls in ADAPTERS:
        client = clients["FGClip" if "FGClip" in cls.__name__ else "Viking"]
        defaults = inspect.signature(client).parameters
        for param, field in _option_fields(cls).items():
            value = cls.model_fields[field].get_default(call_default_factory=True)
            if field == "embed_batch_size":
                assert value == (32 if client is FGClipClient else 100)
                continue
            assert value == defaults[param].default, (cls.__name__, field)
            checked += 1
    assert checked >= 70


# --------------------------------------------------------------------------- new settings


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_new_settings_reach_the_core_client(emulator: Emulator, framework: str) -> None:
    budget = LocalBudget()
    fgclip = build(
        framework,
        "fgclip",
        emulator,
        budget=budget,
        requests_per_second=5,
        max_image_pixels=1_000,
        strict_models=False,
    )
    client = fgclip.client
    assert client.budget is budget and client.strict_models is False
    assert client._requests_quota is not None and client._requests_quota.rate == 5
    with pytest.raises(InputError, match="pixels"):
        fgclip.embed_image(
            [_png(64, 64)]
        ) if framework == "langchain" else fgclip.get_image_embedding(_png_path(64, 64))
    assert requests(emulator) == 0  # refused before sending

    viking = build(
        framework,
        "viking",
        emulator,
        session_token="sts-session-token",
        image_max_bytes=2048,
        budget="memory://",
    )
    assert viking.client.image_max_bytes == 2048
    signed = next(viking.client.transport.auth.auth_flow(httpx.Request("POST", emulator.url)))
    assert signed.headers["x-security-token"] == "sts-session-token"
    assert "x-security-token" in signed.headers["authorization"]
    assert "sts-session-token" not in repr(viking) + str(viking.model_dump())


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_strict_models_refuses_what_the_catalogue_does_not_know(framework: str) -> None:
    spec = FRAMEWORKS[framework]
    model = "model_name" if framework == "llamaindex" else "model"
    with pytest.raises(InputError, match="unknown model 'brand-new-model'"):
        spec.viking(token="t", **{model: "brand-new-model"})
    assert spec.viking(token="t", strict_models=False, **{model: "brand-new-model"}).client
    with pytest.raises(ConfigurationError, match="strict_models=False"):
        spec.fgclip(api_key="k", **{model: "fg-clip-2"})
    lenient = spec.fgclip(api_key="k", strict_models=False, **{model: "fg-clip-2"})
    assert lenient.client.model == "fg-clip-2"  # sent as asked, warned once per process


def _png(width: int, height: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_path(width: int, height: int) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as handle:
        handle.write(_png(width, height))
    return handle.name


def test_budget_objects_are_shared_by_copies_and_left_out_of_pickles() -> None:
    import copy
    import pickle

    budget = LocalBudget()
    for cls in ADAPTERS:
        secret = {"api_key": "k"} if "FGClip" in cls.__name__ else {"token": "t"}
        model = cls(**secret, budget=budget)
        assert copy.deepcopy(model).budget is budget
        assert model.model_copy().budget is budget
        assert pickle.loads(pickle.dumps(model)).budget is None  # a Budget owns locks
        assert pickle.loads(pickle.dumps(cls(**secret, budget="memory://"))).budget == "memory://"
        assert "budget" not in model.model_dump()


# --------------------------------------------------------------------------- constructors


def constructor_settings(cls: type[Any]) -> set[str]:
    """The keys of the ``TypedDict`` the class's typed constructor unpacks."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    stubs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    assert len(stubs) == 1, "one typed constructor per class"
    kwarg = stubs[0].args.kwarg
    assert kwarg is not None and isinstance(kwarg.annotation, ast.Subscript)
    name = ast.unparse(kwarg.annotation.slice)
    typed = vars(sys.modules[cls.__module__])[name]
    return set(typed.__required_keys__ | typed.__optional_keys__)


@pytest.mark.parametrize(
    "cls", ADAPTERS, ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}"
)
def test_typed_constructor_lists_every_setting(cls: type[Any]) -> None:
    fields = {info.alias or name for name, info in cls.model_fields.items()}
    assert constructor_settings(cls) == fields


SNIPPET = """
from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings, VikingSparseEmbeddings
from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding, VikingSparseEmbedding
from mm_embed.budgets import LocalBudget

VikingEmbeddings(access_key="ak", secret_key="sk", session_token="st", batch_size=3)
VikingSparseEmbeddings(token="t", model="bge-m3", budget="memory://")
FGClipEmbeddings(api_key="k", embedding_type="int8", requests_per_second=2.5)
FGClipEmbedding(api_key="k", embed_batch_size=8, budget=LocalBudget())
VikingEmbedding(access_key="ak", secret_key="sk", model_name="bge-m3", dimension=1024)
VikingSparseEmbedding(token="t", num_workers=2, tokens_per_minute="auto")
"""


def test_mypy_strict_accepts_plain_string_secrets(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(SNIPPET)
    bad = tmp_path / "bad.py"
    bad.write_text(SNIPPET + 'VikingEmbeddings(acces_key="typo")\nFGClipEmbedding(api_key=3)\n')
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        "--follow-imports=silent",
        f"--cache-dir={tmp_path / 'cache'}",
        "--config-file=",
    ]
    environment = {"MYPYPATH": f"{ROOT / 'shared'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*command, good.name, bad.name],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=environment,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith("bad.py:") for line in errors), done.stdout
    assert any('"acces_key"' in line for line in errors), done.stdout
    assert any('"api_key"' in line and '"int"' in line for line in errors), done.stdout
    assert len(errors) == 2, done.stdout


# --------------------------------------------------------------------------- one home


def test_no_adapter_spells_an_environment_variable() -> None:
    """Variable names live in ``mm_embed.config.EnvVar``; adapters use its members."""
    sources = [
        *sorted((ROOT / "langchain_mm_embed").glob("*.py")),
        *sorted((ROOT / "llamaindex_mm_embed").glob("*.py")),
        ROOT / "shared" / "mm_embed" / "adapter_support.py",
    ]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for variable in EnvVar:
            spelled = text.count(variable.value) - text.count(f"EnvVar.{variable.name}")
            assert spelled == 0, f"{path.name} spells {variable.value}"
        assert "os.environ" not in text and "getenv" not in text, path.name


def test_public_names_have_one_meaning() -> None:
    import langchain_mm_embed
    import llamaindex_mm_embed
    import mm_embed

    surfaces = [set(mm_embed.__all__), set(langchain_mm_embed.__all__)]
    surfaces.append(set(llamaindex_mm_embed.__all__))
    for i, first in enumerate(surfaces):
        for second in surfaces[i + 1 :]:
            assert not first & second
    for gone in ("_common", "_viking_base", "_viking_settings", "hybrid"):
        for package in ("langchain_mm_embed", "llamaindex_mm_embed"):
            assert not (ROOT / package / f"{gone}.py").exists()


@pytest.mark.parametrize("cls", ADAPTERS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_a_password_inside_base_url_is_never_shown(
    cls: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    url = "http://alice:pw-in-url-7c1@proxy.example.com:8080"
    secrets = (
        {"api_key": "k"} if "FGClip" in cls.__name__ else {"access_key": "a", "secret_key": "s"}
    )
    model = cls(base_url=url, **secrets)
    shown = [repr(model), str(model), str(model.model_dump()), model.model_dump_json()]
    assert not [text for text in shown if "pw-in-url-7c1" in text]
    assert "proxy.example.com:8080" in repr(model)
    # The client still gets the whole URL.
    assert model.client_options()["base_url"] == url
    # A pickle drops it like a secret; the copy reads the endpoint from the environment.
    assert b"pw-in-url-7c1" not in pickle.dumps(model)
    variable = EnvVar.FGCLIP_BASE_URL if "FGClip" in cls.__name__ else EnvVar.VIKING_BASE_URL
    monkeypatch.setenv(variable, "http://127.0.0.1:9")
    assert pickle.loads(pickle.dumps(model)).base_url == "http://127.0.0.1:9"
