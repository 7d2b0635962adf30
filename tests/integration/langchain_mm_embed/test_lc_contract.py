"""The public surface of langchain_mm_embed: exported names, secrets that never leak,
clear errors for missing credentials and bad settings, pickling."""

from __future__ import annotations

import copy
import pickle
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel, ValidationError

import langchain_mm_embed
from langchain_mm_embed import FGClipEmbeddings, VikingEmbeddings, VikingSparseEmbeddings
from mm_embed.errors import AuthenticationError, ConfigurationError, InputError
from mm_embed.pairing import DenseSparsePairing

if TYPE_CHECKING:
    from mm_embed.emulator import Emulator

SECRET = "s3cr3t-value-that-must-not-leak"


def test_all_is_pinned() -> None:
    assert langchain_mm_embed.__all__ == [
        "FGClipEmbeddings",
        "HybridRetriever",
        "HybridStoreRetriever",
        "ScoredVectorStoreRetriever",
        "SparseIndexRetriever",
        "VikingEmbeddings",
        "VikingSparseEmbeddings",
        "fgclip_relevance_score",
        "qdrant_rrf",
        "viking_qdrant_hybrid",
    ]
    for name in langchain_mm_embed.__all__:
        assert getattr(langchain_mm_embed, name) is not None
    assert set(langchain_mm_embed.__all__) <= set(dir(langchain_mm_embed))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = langchain_mm_embed.Nope
    # One meaning per name: the sparse vector type is langchain_qdrant's, not ours.
    with pytest.raises(AttributeError):
        _ = langchain_mm_embed.SparseVector


def _secret_objects() -> list[BaseModel]:
    dense = VikingEmbeddings(
        access_key=SECRET, secret_key=SECRET, token=SECRET, model="doubao-embedding-and-m3"
    )
    return [
        FGClipEmbeddings(api_key=SECRET),
        dense,
        VikingSparseEmbeddings(access_key=SECRET, secret_key=SECRET, session_token=SECRET),
        VikingSparseEmbeddings.from_dense(dense),
    ]


@pytest.mark.parametrize("obj", _secret_objects(), ids=lambda o: type(o).__name__)
def test_secrets_never_in_repr_dumps_or_pickles(obj: BaseModel) -> None:
    assert SECRET not in repr(obj)
    assert SECRET not in str(obj)
    assert SECRET not in str(obj.model_dump())
    assert SECRET not in obj.model_dump_json()
    assert SECRET not in str(obj.model_dump(by_alias=True))
    blob = pickle.dumps(obj)
    assert SECRET.encode() not in blob
    # A client built before pickling holds the secret too: it must not travel either.
    _ = obj.client  # type: ignore[attr-defined]
    assert SECRET.encode() not in pickle.dumps(obj)


def test_unpickled_object_reads_secrets_from_the_environment(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emb = FGClipEmbeddings(api_key=emulator.api_key, base_url=emulator.url)
    expected = emb.embed_query("a red circle")
    blob = pickle.dumps(emb)

    # Without the variable the copy says what to set, at the first call.
    orphan = pickle.loads(blob)
    assert orphan.fgclip_api_key is None
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY"):
        orphan.embed_query("a red circle")

    monkeypatch.setenv("FGCLIP_API_KEY", emulator.api_key)
    restored = pickle.loads(blob)
    assert restored.fgclip_api_key is not None
    assert restored.fgclip_api_key.get_secret_value() == emulator.api_key
    assert restored.base_url == emulator.url
    assert restored.embed_query("a red circle") == expected


def test_unpickled_viking_pair_still_shares_one_request(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, viking_settings: dict[str, Any]
) -> None:
    dense = VikingEmbeddings(model="bge-m3", **viking_settings)
    pair = pickle.loads(pickle.dumps((dense, VikingSparseEmbeddings.from_dense(dense))))
    assert pair[0].paired and pair[1].paired
    monkeypatch.setenv("VOLC_ACCESSKEY", emulator.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", emulator.secret_key)
    pair = pickle.loads(pickle.dumps((dense, VikingSparseEmbeddings.from_dense(dense))))
    emulator.clear_log()
    pair[0].embed_documents(["shared request"])
    pair[1].embed_documents(["shared request"])
    assert emulator.counters.get("route:viking") == 1


def test_copies_keep_working(fgclip: FGClipEmbeddings) -> None:
    vector = fgclip.embed_query("copy me")
    assert copy.deepcopy(fgclip).embed_query("copy me") == vector
    assert fgclip.model_copy(update={"embedding_type": "int8"}).embed_query("copy me") != vector


def test_missing_fgclip_key_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY") as caught:
        FGClipEmbeddings()
    assert "api_key" in str(caught.value)
    # An explicit empty key is no key either (pydantic wraps the same message).
    with pytest.raises(ValueError, match="FGCLIP_API_KEY"):
        FGClipEmbeddings(api_key="")


def test_fgclip_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", SECRET)
    emb = FGClipEmbeddings()
    assert emb.fgclip_api_key is not None
    assert emb.fgclip_api_key.get_secret_value() == SECRET
    assert emb.base_url is None  # the core's default endpoint


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        ({}, {}, r"VOLC_ACCESSKEY and VOLC_SECRETKEY \(or VIKING_TOKEN\)"),
        ({"VOLC_ACCESSKEY": "ak"}, {}, r"VOLC_SECRETKEY \(secret_key=\) is missing"),
        ({}, {"secret_key": "sk"}, r"VOLC_ACCESSKEY \(access_key=\) is missing"),
    ],
)
def test_missing_viking_credentials_name_the_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for cls in (VikingEmbeddings, VikingSparseEmbeddings):
        with pytest.raises(ConfigurationError, match=message):
            cls(**kwargs)


def test_viking_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIKING_TOKEN", SECRET)
    emb = VikingEmbeddings()
    assert emb.viking_token is not None
    assert emb.viking_token.get_secret_value() == SECRET
    assert emb.volc_accesskey is None
    monkeypatch.setenv("VOLC_ACCESSKEY", "ak")
    monkeypatch.setenv("VOLC_SECRETKEY", "sk")
    monkeypatch.setenv("VIKING_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VOLC_SESSIONTOKEN", "sts")
    both = VikingSparseEmbeddings()
    assert both.volc_accesskey is not None
    assert both.volc_accesskey.get_secret_value() == "ak"
    assert both.volc_sessiontoken is not None
    assert both.volc_sessiontoken.get_secret_value() == "sts"
    assert both.viking_token is None  # a pair beats VIKING_TOKEN, as in the core
    assert both.base_url == "http://127.0.0.1:9"


def test_validation_errors_do_not_echo_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        FGClipEmbeddings(api_key=SECRET, batch_size=0)
    assert "batch_size" in str(caught.value)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        VikingEmbeddings(access_key=SECRET, secret_key=SECRET, unknown_option=1)  # type: ignore[call-arg]
    assert "unknown_option" in str(caught.value)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"model": "no-such-model"}, ["unknown model 'no-such-model'", "doubao-embedding"]),
        ({"model": "doubao-embedding", "dimension": 777}, ["dimension", "512, 1024, 2048"]),
        ({"model": "doubao-embedding", "model_version": "1"}, ["model_version", "240515"]),
    ],
)
def test_bad_model_settings_fail_at_construction(
    kwargs: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(InputError) as caught:
        VikingEmbeddings(access_key=SECRET, secret_key=SECRET, **kwargs)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert SECRET not in str(caught.value)


def test_sparse_needs_a_sparse_model() -> None:
    with pytest.raises(InputError, match="no sparse vectors"):
        VikingSparseEmbeddings(token=SECRET, model="doubao-embedding")
    with pytest.raises(InputError, match="no sparse vectors"):  # a pairing needs both kinds
        VikingEmbeddings(token=SECRET, model="doubao-embedding", pairing=DenseSparsePairing())
    dense = VikingEmbeddings(token=SECRET, model="doubao-embedding-vision")
    with pytest.raises(ConfigurationError, match=r"has no sparse vectors; use one of: .*bge-m3"):
        VikingSparseEmbeddings.from_dense(dense)


def test_provider_errors_do_not_echo_secrets(emulator: Emulator) -> None:
    emb = FGClipEmbeddings(api_key=SECRET, base_url=emulator.url, max_retries=0)
    with pytest.raises(AuthenticationError) as caught:
        emb.embed_query("hello")
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    viking = VikingEmbeddings(
        access_key=emulator.access_key, secret_key=SECRET, base_url=emulator.url, max_retries=0
    )
    with pytest.raises(AuthenticationError) as caught:
        viking.embed_query("hello")
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_bad_input_names_field_and_index(fgclip: FGClipEmbeddings) -> None:
    with pytest.raises(InputError, match=r"texts\[1\]: text is empty"):
        fgclip.embed_documents(["fine", "  "])
    with pytest.raises(InputError, match="wrap a single text in a list"):
        fgclip.embed_documents("not a list")  # type: ignore[arg-type]


def test_viking_auth_precedence_matches_the_core(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit token wins; otherwise an AK/SK pair beats VIKING_TOKEN (also after a
    pickle round trip, which reads the variables again)."""
    monkeypatch.setenv("VIKING_BASE_URL", emulator.url)
    monkeypatch.setenv("VOLC_ACCESSKEY", emulator.access_key)
    monkeypatch.setenv("VOLC_SECRETKEY", emulator.secret_key)
    monkeypatch.setenv("VIKING_TOKEN", "not-the-right-token")
    signed = VikingEmbeddings(model="bge-m3")
    assert signed.viking_token is None
    explicit = VikingEmbeddings(model="bge-m3", token=emulator.token)
    for emb, auth in [
        (signed, "hmac"),
        (pickle.loads(pickle.dumps(signed)), "hmac"),
        (explicit, "token"),
    ]:
        emb.embed_query("who signs?")
        assert emulator.log[-1].auth == auth
    # Without the pair, the variable's token is the credential.
    monkeypatch.delenv("VOLC_SECRETKEY")
    monkeypatch.setenv("VIKING_TOKEN", emulator.token)
    by_token = VikingEmbeddings(model="bge-m3")
    assert by_token.viking_token is not None
    by_token.embed_query("who signs?")
    assert emulator.log[-1].auth == "token"
