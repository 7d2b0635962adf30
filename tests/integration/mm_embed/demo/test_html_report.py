"""The demo's HTML report, opened in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageStat
from playwright.sync_api import Page

from mm_embed.demo import DemoReport, demo_main
from mm_embed.demo.html_report import write_html_report
from mm_embed.demo.pictures import PICTURES
from mm_embed.demo.report import TOP
from mm_embed.explore.browser import overlays_outside_images, watch_problems

SUMMARY_KEYS = (
    "texts",
    "images",
    "boxes",
    "queries",
    "viking_calls",
    "fgclip_calls",
    "retries",
    "viking_tokens",
    "fgclip_tokens",
    "fgclip_images_billed",
    "index_texts_s",
    "index_images_s",
    "total_s",
)
HOSTILE = '<script>window.__pwned = true</script><img src=x onerror="window.__pwned = 2"> & more'


def _not_blank(path: Path) -> None:
    with Image.open(path) as shot:
        rgb = shot.convert("RGB")
        assert rgb.width >= 1000 and rgb.height >= 900
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 100, "a screenshot of a handful of colours is blank"
        assert max(ImageStat.Stat(rgb).stddev) > 20


def test_report_opens_clean_and_shows_every_picture_it_promises(
    page: Page, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "out" / "plot.png"
    assert demo_main(["--store", str(tmp_path / "store"), "--plot", str(plot)]) == 0
    html = tmp_path / "out" / "mm-embed-demo.html"  # beside the PNG
    assert f"html report written to {html}\n" in capsys.readouterr().out

    problems = watch_problems(page)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(html.as_uri())
    promised = int(page.locator("body").get_attribute("data-image-count") or "0")
    assert promised == len(PICTURES) + 2 * TOP
    assert page.locator("#image-count").inner_text() == str(promised)
    assert page.locator("img").count() == promised
    loaded = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth)")
    assert len(loaded) == promised

    overlays, outside = overlays_outside_images(page)
    boxes = sum(len(p.boxes or []) for p in PICTURES)
    assert overlays == boxes + TOP and outside == []

    columns = page.locator("section.ranking")
    assert [columns.nth(i).get_attribute("data-mode") for i in range(3)] == [
        "dense",
        "sparse",
        "hybrid",
    ]
    for i in range(3):
        assert columns.nth(i).locator(".card").count() == TOP
    fused_top = page.locator("section.ranking[data-mode=hybrid] .card").first
    assert fused_top.get_attribute("data-id", timeout=1000) == "k8s-01"
    assert "kubectl" in fused_top.locator(".chip.term").all_inner_texts()
    assert page.locator("#summary").inner_text().count("viking") >= 2

    shot = tmp_path / "report.png"
    page.screenshot(path=shot, full_page=True)
    _not_blank(shot)
    assert problems == []
    assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []


def test_no_html_writes_no_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_main(["--json", "--no-plot", "--no-html"]) == 0
    assert json.loads(capsys.readouterr().out)["html"] is None
    assert list(tmp_path.glob("*.html")) == []


def test_html_flag_names_the_file_and_json_reports_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "reports" / "demo.html"
    assert demo_main(["--json", "--no-plot", "--html", str(target)]) == 0
    assert json.loads(capsys.readouterr().out)["html"] == str(target.resolve())
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_documents_and_queries_are_shown_as_text(page: Page, tmp_path: Path) -> None:
    row = {
        "id": "evil<b>1</b>",
        "score": 0.5,
        "text": HOSTILE,
        "ranks": {"dense": 1, "sparse": 1, "hybrid": 1},
        "matched_terms": ["<i>term</i>"],
    }
    report = DemoReport(
        providers={"viking": "emulator at <b>x</b>"},
        hybrid_query="<script>window.__pwned = 3</script>",
        rankings={mode: [row] for mode in ("dense", "sparse", "hybrid")},
        ndcg_at_10={"dense": 0.5},
        ndcg_per_query={"dense": {"q<1>": 0.5}},
        summary=dict.fromkeys(SUMMARY_KEYS, 1),
    )
    path = Path(write_html_report(report, str(tmp_path / "hostile.html")))
    problems = watch_problems(page)
    page.goto(path.as_uri())
    card = page.locator("section.ranking[data-mode=dense] .card").first
    assert card.get_attribute("data-id") == "evil<b>1</b>"
    assert card.locator(".text").inner_text() == HOSTILE
    assert card.locator(".chip.term").inner_text() == "<i>term</i>"
    assert "<script>window.__pwned = 3</script>" in page.locator("#hybrid h2").inner_text()
    assert page.locator("script, img[src=x], b, i").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert problems == []
