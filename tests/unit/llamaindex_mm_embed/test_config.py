"""Construction, credentials and serialisation of the adapters (no network)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from llama_index.core.bridge.pydantic import SecretStr

import llamaindex_mm_embed
from llamaindex_mm_embed import FGClipEmbedding, VikingEmbedding, VikingSparseEmbedding
from mm_embed import ConfigurationError, InputError

FG_KEY = "fg-key-secret-5d1e"
AK = "AKLTadapterAccess"
SK = "viking-sk-secret-77aa"
TOKEN = "viking-token-secret-3c2f"
SECRETS = (FG_KEY, SK, TOKEN)


def all_models() -> list[FGClipEmbedding | VikingEmbedding | VikingSparseEmbedding]:
    return [
        FGClipEmbedding(api_key=FG_KEY),
        VikingEmbedding(access_key=AK, secret_key=SK, token=TOKEN),
        VikingSparseEmbedding(access_key=AK, secret_key=SK, token=TOKEN),
    ]


def test_public_api_is_pinned() -> None:
    assert sorted(llamaindex_mm_embed.__all__) == [
        "FGClipEmbedding",
        "FullModalPart",
        "HybridStoreNodeRetriever",
        "SparseEncoderFn",
        "VikingEmbedding",
        "VikingSparseEmbedding",
        "WeightedFusionRetriever",
        "qdrant_sparse_fns",
        "viking_hybrid_fns",
    ]
    for name in llamaindex_mm_embed.__all__:
        assert getattr(llamaindex_mm_embed, name) is not None
    from importlib.resources import files

    assert files("llamaindex_mm_embed").joinpath("py.typed").is_file()


def test_class_names_and_wire_sized_batches() -> None:
    fg, viking, sparse = all_models()
    assert (fg.class_name(), viking.class_name(), sparse.class_name()) == (
        "FGClipEmbedding",
        "VikingEmbedding",
        "VikingSparseEmbedding",
    )
    assert fg.embed_batch_size == 32
    assert viking.embed_batch_size == 100
    assert sparse.embed_batch_size == 100
    assert fg.model_name == "fg-clip"
    assert viking.model_name == "doubao-embedding-vision"
    assert sparse.model_name == "bge-m3"


@pytest.mark.parametrize("model", all_models(), ids=lambda m: m.class_name())
def test_secrets_never_leave(
    model: FGClipEmbedding | VikingEmbedding | VikingSparseEmbedding,
) -> None:
    texts = [repr(model), str(model), json.dumps(model.model_dump()), model.model_dump_json()]
    texts.append(json.dumps(model.to_payload()))
    if not isinstance(model, VikingSparseEmbedding):
        texts += [json.dumps(model.to_dict()), model.to_json()]
    blob = pickle.dumps(model)
    for secret in SECRETS:
        for text in texts:
            assert secret not in text
        assert secret.encode() not in blob
    assert "api_key" not in model.model_dump()
    assert "secret_key" not in model.model_dump()


def test_pickle_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    model = VikingEmbedding(access_key=AK, secret_key=SK, model_name="bge-m3")
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKLTfromEnv")
    monkeypatch.setenv("VOLC_SECRETKEY", "sk-from-env")
    copy_ = pickle.loads(pickle.dumps(model))
    assert isinstance(copy_, VikingEmbedding)
    assert copy_.model_name == "bge-m3"
    assert copy_.access_key is not None and copy_.access_key.get_secret_value() == "AKLTfromEnv"
    assert copy_.secret_key is not None and copy_.secret_key.get_secret_value() == "sk-from-env"


def test_pickle_without_credentials_fails_only_when_used() -> None:
    copy_ = pickle.loads(pickle.dumps(FGClipEmbedding(api_key=FG_KEY, embedding_type="int8")))
    assert copy_.embedding_type == "int8"
    assert copy_.api_key is None
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY"):
        copy_.get_text_embedding("hello")


def test_copies_keep_settings_and_build_their_own_clients() -> None:
    model = FGClipEmbedding(api_key=FG_KEY, base_url="http://127.0.0.1:9")
    client = model.client
    assert model.client is client  # built once
    for other in (
        model.model_copy(update={"base_url": "http://127.0.0.1:10"}),
        copy.deepcopy(model),
    ):
        assert other.api_key is not None and other.api_key.get_secret_value() == FG_KEY
        assert other.client is not client
    assert model.model_copy(update={"base_url": "http://127.0.0.1:10"}).client.base_url.endswith(
        ":10"
    )
    model.close()
    assert model.client is not client  # closing drops the client; the next call builds anew


def test_round_trip_through_to_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    model = VikingEmbedding(token=TOKEN, model_name="doubao-embedding", dimension=512)
    data = model.to_dict()
    assert data["class_name"] == "VikingEmbedding"
    assert data["dimension"] == 512
    monkeypatch.setenv("VIKING_TOKEN", "token-from-env")
    back = VikingEmbedding.from_dict(data)
    assert back.dimension == 512
    assert back.token is not None and back.token.get_secret_value() == "token-from-env"


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGCLIP_API_KEY", "env-key")
    assert FGClipEmbedding().api_key == SecretStr("env-key")
    monkeypatch.setenv("VIKING_TOKEN", "env-token")
    model = VikingSparseEmbedding()
    assert model.token == SecretStr("env-token")
    assert model.access_key is None
    # AK/SK win over the token, as in the core client; the session token goes with them.
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKLTenv")
    monkeypatch.setenv("VOLC_SECRETKEY", "env-sk")
    monkeypatch.setenv("VOLC_SESSIONTOKEN", "env-sts")
    model = VikingEmbedding()
    assert model.access_key == SecretStr("AKLTenv")
    assert model.session_token == SecretStr("env-sts")
    assert model.token is None
    # An explicit token wins over everything.
    assert VikingEmbedding(token="explicit").token == SecretStr("explicit")


def test_missing_credentials_are_named() -> None:
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY"):
        FGClipEmbedding()
    with pytest.raises(ConfigurationError, match="VOLC_ACCESSKEY and VOLC_SECRETKEY"):
        VikingEmbedding()
    with pytest.raises(ConfigurationError, match="VOLC_SECRETKEY"):
        VikingSparseEmbedding(access_key=AK)
    with pytest.raises(ConfigurationError, match="FGCLIP_API_KEY"):
        FGClipEmbedding(api_key="")


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(InputError, match="unknown model") as unknown:
        VikingEmbedding(token=TOKEN, model_name="no-such-model")
    assert unknown.value.field == "model"
    with pytest.raises(InputError, match="cannot return 999 dimensions") as dim:
        VikingEmbedding(token=TOKEN, model_name="doubao-embedding", dimension=999)
    assert dim.value.field == "dimension"
    assert "512" in str(dim.value)
    with pytest.raises(InputError, match="has no version"):
        VikingEmbedding(token=TOKEN, model_version="1999")
    with pytest.raises(InputError, match="no sparse vectors") as sparse:
        VikingSparseEmbedding(token=TOKEN, model_name="doubao-embedding")
    assert "bge-m3" in str(sparse.value)
    with pytest.raises(ConfigurationError, match="fg-clip"):
        FGClipEmbedding(api_key=FG_KEY, model_name="clip")
    with pytest.raises(ValueError, match="embed_batch_size"):
        FGClipEmbedding(api_key=FG_KEY, embed_batch_size=0)
    # A misspelt setting is refused, not ignored.
    with pytest.raises(ValueError, match="dimensions"):
        FGClipEmbedding(api_key=FG_KEY, dimensions=512)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="dimensions"):
        VikingEmbedding(token=TOKEN, dimensions=512)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="model_versoin"):
        VikingSparseEmbedding(token=TOKEN, model_versoin="x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="embedding_type"):
        FGClipEmbedding(api_key=FG_KEY, embedding_type="float16")  # type: ignore[arg-type]
