"""The explorer's HTML: the page (two labelled forms and a results region), the result
fragments, and the small script that sends an uploaded picture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .html import ICON_LINK, STYLE, ImageHitView, esc, image_card, text_card
from .search import Collection, ImageResults, TextResults

__all__ = [
    "CSP",
    "SCRIPT",
    "render_error",
    "render_image_results",
    "render_page",
    "render_text_results",
]

#: Nothing but this origin's script and form targets, inline styles and data: images.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

#: Sends the chosen picture as the request body (no multipart parser needed) and shows
#: the returned fragment, which the server has already escaped.
SCRIPT = """\
"use strict";
(() => {
  const form = document.getElementById("image-form");
  const input = document.getElementById("image");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  if (!form || !input) return;  // no collection holds pictures: no picture form
  async function searchImage(event) {
    if (event) event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) { status.textContent = "Choose a picture first."; return; }
    status.textContent = "Searching with " + file.name + "…";
    try {
      const response = await fetch("search/image", {
        method: "POST",
        headers: {"Content-Type": file.type || "application/octet-stream"},
        body: file,
      });
      results.innerHTML = await response.text();
      status.textContent = response.ok ? "" : "The search failed: see below.";
    } catch (error) {
      status.textContent = "The explorer did not answer: " + error;
    }
  }
  form.addEventListener("submit", searchImage);
  input.addEventListener("change", () => searchImage());
})();
"""


def render_page(
    collections: Sequence[Collection],
    where: Mapping[str, str],
    *,
    query: str = "",
    results: str = "",
    image_search: bool = True,
) -> str:
    """The whole page; ``results`` is an already rendered fragment."""
    listed = "".join(
        f"<li><strong>{esc(c.name)}</strong> {esc(c.info.provider)} {esc(c.info.model)}, "
        f"{c.info.dimension}-d{' + sparse' if c.info.sparse else ''} "
        f"({esc(', '.join(sorted(c.kinds)) or 'empty')})</li>"
        for c in collections
    )
    engines = "".join(f"<li>{esc(name)}: {esc(line)}</li>" for name, line in where.items())
    image_form = (
        '<form id="image-form" aria-label="search by picture">'
        '<label for="image">Picture query</label>'
        '<input id="image" name="image" type="file" '
        'accept="image/png,image/jpeg,image/gif,image/webp">'
        '<button type="submit">Search by picture</button></form>'
        if image_search
        else ""
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{ICON_LINK}<title>mm-embed explore</title><style>{STYLE}</style></head><body>"
        "<header><h1>mm-embed explore</h1>"
        f'<ul class="muted">{listed}</ul><ul class="muted note">{engines}</ul>'
        '<form id="text-form" method="get" action="/" role="search">'
        '<label for="q">Text query</label>'
        f'<input id="q" name="q" type="search" value="{esc(query)}" required autofocus '
        'placeholder="type a query and press Enter">'
        '<button type="submit">Search</button></form>'
        f'{image_form}<p id="status" class="note" role="status"></p></header>'
        f'<main id="results" aria-live="polite">{results}</main>'
        '<script src="explore.js"></script></body></html>\n'
    )


def _image_cards(title: str, hits: Sequence[ImageHitView], kind: str) -> str:
    if not hits:
        return ""
    cards = "".join(image_card(h, kind=kind) for h in hits)
    return f'<h2>{esc(title)}</h2><ol class="thumbs">{cards}</ol>'


def render_text_results(results: TextResults) -> str:
    """Text hits first (by fused rank, each with its ranks and matched sparse terms),
    then boxes and whole pictures."""
    parts = [f'<section class="results" data-query="{esc(results.query)}">']
    for collection, rankings in results.rankings:
        modes = rankings.modes
        score_of = "hybrid" if "hybrid" in modes else modes[0]
        cards = "".join(text_card(hit, modes, score_of=score_of) for hit in rankings.cards())
        parts.append(
            f"<h2>Texts in {esc(collection.name)} "
            f'<span class="muted">({esc(collection.info.model)})</span></h2>'
            f'<ol class="cards">{cards or "<li>no text found</li>"}</ol>'
        )
    parts.append(_image_cards("Boxes", results.box_hits, "box"))
    parts.append(_image_cards("Pictures", results.image_hits, "image"))
    parts.append("</section>")
    return "".join(parts)


def render_image_results(results: ImageResults) -> str:
    """The nearest pictures to an uploaded one."""
    body = _image_cards("Pictures like yours", results.hits, "image") or "<p>no picture found</p>"
    return f'<section class="results">{body}</section>'


def render_error(message: str) -> str:
    """A fragment telling what went wrong (escaped)."""
    return f'<p class="error" role="alert">{esc(message)}</p>'
