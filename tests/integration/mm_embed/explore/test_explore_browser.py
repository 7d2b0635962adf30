"""``mm-embed explore`` in headless Chromium: type, upload, and escaping."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page

from mm_embed.demo import DemoReport
from mm_embed.demo.pictures import PICTURES
from mm_embed.demo.report import HYBRID_QUERY
from mm_embed.emulator import Emulator
from mm_embed.explore.browser import overlays_outside_images, watch_problems
from mm_embed.explore.collection_info import record_store_info
from mm_embed.hybrid.qdrant import QdrantHybrid
from tests.integration._helpers import explorer_process

HOSTILE = '<script>window.__pwned = true</script> kubectl rollout <img src=x onerror="window.__pwned = 2">'


def test_start_line_names_a_free_loopback_port(demo_explorer: tuple[str, list[str]]) -> None:
    url, lines = demo_explorer
    assert lines[0] == f"listening on {url}"
    assert not url.endswith(":8766")  # --port 0 picked a free port


def test_typing_the_demo_query_and_enter_shows_the_demo_top_hit_first(
    page: Page,
    demo_explorer: tuple[str, list[str]],
    demo_store: tuple[Path, DemoReport],
    tmp_path: Path,
) -> None:
    report = demo_store[1]
    problems = watch_problems(page)
    page.goto(demo_explorer[0])
    page.get_by_label("Text query").fill(HYBRID_QUERY)
    page.get_by_label("Text query").press("Enter")
    page.wait_for_url("**/?q=*")
    first = page.locator("#results .card").first
    top = report.rankings["hybrid"][0]
    assert first.get_attribute("data-id") == top["id"]
    assert first.get_attribute("data-kind") == "text"
    chips = first.locator(".chip.rank").all_inner_texts()
    assert "fused #1" in chips
    assert f"dense #{top['ranks']['dense']}" in chips
    terms = first.locator(".chip.term").all_inner_texts()
    assert terms == top["matched_terms"] and "kubectl" in terms
    # The region search ran too: the box cards have their box drawn inside the picture.
    assert page.locator("#results .card[data-kind=box]").count() > 0
    overlays, outside = overlays_outside_images(page)
    assert overlays > 0 and outside == []
    page.screenshot(path=tmp_path / "explore-text.png", full_page=True)
    assert problems == []


def test_uploading_a_demo_picture_shows_it_first(
    page: Page, demo_explorer: tuple[str, list[str]], tmp_path: Path
) -> None:
    picture = next(p for p in PICTURES if p.id == "purple-triangle-orange-square")
    problems = watch_problems(page)
    page.goto(demo_explorer[0])
    page.get_by_label("Picture query").set_input_files(
        {"name": f"{picture.id}.png", "mimeType": "image/png", "buffer": picture.png}
    )
    first = page.locator("#results .card[data-kind=image]").first
    first.wait_for()
    assert first.get_attribute("data-image") == picture.id
    assert first.locator("img").evaluate("img => img.complete && img.naturalWidth") == 256
    page.screenshot(path=tmp_path / "explore-image.png", full_page=True)
    assert problems == []


def test_a_document_with_script_renders_as_text(
    page: Page, browser: Browser, tmp_path: Path, emulator: Emulator
) -> None:
    from qdrant_client import QdrantClient

    from mm_embed import VikingClient

    store_path = tmp_path / "hostile-store"
    qdrant = QdrantClient(path=str(store_path))
    with VikingClient(emulator.access_key, emulator.secret_key, base_url=emulator.url) as viking:
        store = QdrantHybrid.from_viking(qdrant, "hostile", viking, "bge-m3")
        store.add_texts([HOSTILE, "a harmless note about bread"], ids=["evil<b>1</b>", "bread"])
        record_store_info(store, "emulator")
    qdrant.close()
    with explorer_process(store_path) as (url, _):
        problems = watch_problems(page)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(url)
        page.get_by_label("Text query").fill("<script>kubectl</script>")
        page.get_by_label("Text query").press("Enter")
        card = page.locator("#results .card").first
        card.wait_for()
        assert card.get_attribute("data-id") == "evil<b>1</b>"
        assert card.locator(".id").inner_text() == "evil<b>1</b>"
        assert card.locator(".text").inner_text() == HOSTILE
        assert page.locator("#results script, #results img[src=x], #results b").count() == 0
        assert page.evaluate("window.__pwned") is None
        assert page.get_by_label("Text query").input_value() == "<script>kubectl</script>"
    assert dialogs == [] and problems == []
