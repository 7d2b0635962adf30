"""The shape the packages promise their users and maintainers: a deliberate public
surface (each ``__all__`` pinned, as LangChain partner packages pin theirs), one
meaning per public name across the repo, and no function longer than 100 lines unless
it is a table."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.unit._helpers import REPO as ROOT

PACKAGES = {
    "mm_embed": ROOT / "shared" / "mm_embed",
    "langchain_mm_embed": ROOT / "langchain_mm_embed",
    "llamaindex_mm_embed": ROOT / "llamaindex_mm_embed",
}


def words(text: str) -> list[str]:
    return text.split()


#: Each module's ``__all__``, sorted, as words (the exact list, compared by set).
PINNED = {
    "mm_embed": words("""
        APIConnectionError APIStatusError APITimeoutError AsyncFGClipClient
        AsyncVikingClient AuthenticationError BadRequestError ClientClosedError
        ConfigurationError EmbeddingResult FGClipClient FullModalItem ImageInfo ImageItem
        InputError InternalServerError MMEmbedError NotFoundError PermissionDeniedError
        RateLimitError ResponseFormatError ResultMeta RetryPolicy SparseVector TextImageItem
        TextItem Usage VIKING_MODELS VideoItem VikingClient __version__ fgclip_probability
        sparse_index
    """),
    "mm_embed.hybrid": words("""
        Encoded EvaluationReport FGClipEncoder FUSION_METHODS FusionMethod Hit HybridStore
        MilvusHybrid QdrantHybrid RankedList SearchMode SparseIndex StoreFusion TextEncoder
        VikingHybridEncoder as_index_values doc_uuid evaluate_sample_set fuse mean_ndcg
        ndcg_at_k ranked
    """),
    "mm_embed.bulk": words("""
        BadRecord BatchResult BulkAborted BulkEmbedder BulkItem BulkStats BulkSummary
        CheckpointError CorpusJob CorpusOptions EngineOptions ExitCode FieldNames
        InputChanged InputFileError InputSource ItemResult OutputLocked Reject RejectCode
        TqdmProgress embed_corpus embed_stream format_summary open_input
    """),
    "mm_embed.emulator": words("""
        AsyncEmulator DEFAULT_ACCESS_KEY DEFAULT_API_KEY DEFAULT_HOST DEFAULT_PORT
        DEFAULT_REGION DEFAULT_SECRET_KEY DEFAULT_TOKEN Emulator EmulatorConfig FAULT_KINDS
        RequestRecord SAMPLES create_app sample_png
    """),
    "mm_embed.budgets": words("""
        BucketState Budget BudgetError FileBudget LocalBudget Quota RedisBudget Ticket budget_from_url
        default_budget resolve_budget
    """),
}

#: Modules whose public names join the one-meaning check.
PUBLIC_MODULES = [
    *PINNED,
    "mm_embed.config",
    "mm_embed.errors",
    "mm_embed.pairing",
    "mm_embed.samples",
    "mm_embed.providers.fgclip",
    "mm_embed.providers.viking",
    "langchain_mm_embed",
    "llamaindex_mm_embed",
]

#: Functions allowed past 100 lines: tables, by qualified name (none today).
LONG_TABLES: set[str] = set()
MAX_FUNCTION_LINES = 100


@pytest.mark.parametrize("module", sorted(PINNED))
def test_public_surface_is_pinned(module: str) -> None:
    exported = importlib.import_module(module).__all__
    assert sorted(exported) == sorted(PINNED[module])
    assert len(exported) == len(set(exported))


def test_the_client_sdk_is_small() -> None:
    assert len(PINNED["mm_embed"]) <= 35


@pytest.mark.parametrize("module", sorted(PINNED))
def test_every_exported_name_resolves(module: str) -> None:
    loaded = importlib.import_module(module)
    for name in loaded.__all__:
        assert getattr(loaded, name) is not None, f"{module}.{name}"


def test_one_meaning_per_public_name() -> None:
    owners: dict[str, tuple[str, object]] = {}
    clashes = []
    for module in PUBLIC_MODULES:
        loaded = importlib.import_module(module)
        for name in getattr(loaded, "__all__", []):
            if name.startswith("__"):
                continue
            value = getattr(loaded, name)
            if name in owners and owners[name][1] is not value:
                clashes.append(f"{name}: {owners[name][0]} and {module}")
            owners.setdefault(name, (module, value))
    assert not clashes, "one name, two meanings:\n" + "\n".join(clashes)


def _functions(tree: ast.AST, prefix: str) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                found.append((f"{prefix}.{child.name}", child.end_lineno - child.lineno + 1))
    return found


def test_no_function_is_longer_than_100_lines_unless_a_table() -> None:
    long = []
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            module = ".".join((package, *path.relative_to(root).with_suffix("").parts))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for name, lines in _functions(tree, module):
                if lines > MAX_FUNCTION_LINES and name not in LONG_TABLES:
                    long.append(f"{name}: {lines} lines")
    assert not long, "split these by job:\n" + "\n".join(long)
