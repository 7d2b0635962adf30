"""A MkDocs hook: links from a docs page to a file of the repository outside ``docs/``
(``../benchmarks/README.md``, ``../notebooks/...ipynb``) work on the site as on GitHub.

The pages keep plain relative links, which GitHub and editors follow. For the site, each
linked file is published under ``repo/`` (Markdown as a page outside the navigation, anything
else as a static file; the files those pages link to as well) and links are rewritten to the published
paths. Nothing is copied into ``docs/``: ``benchmarks/README.md`` stays the one home of
the benchmark numbers.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

SITE_FOLDER = "repo"
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


def _site_uri(source: Path, target: str, config: MkDocsConfig) -> str | None:
    """Where the file ``target`` (relative to ``source``) lives on the site: its path
    under ``docs/``, or ``repo/<path>`` for another file of the repository; ``None``
    for URLs and for paths that are not files of the repository."""
    if SCHEME.match(target) or target.startswith("/"):
        return None
    docs = Path(config.docs_dir).resolve()
    root = docs.parent
    path = (source.parent / target).resolve()
    if not path.is_file() or root not in path.parents:
        return None
    if docs in path.parents:
        return path.relative_to(docs).as_posix()
    return f"{SITE_FOLDER}/{path.relative_to(root).as_posix()}"


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Publish every repository file a page links to from outside ``docs/``, and the
    files those link to (each file once, so this ends)."""
    root = Path(config.docs_dir).resolve().parent
    pending = [Path(page.abs_src_path) for page in files.documentation_pages() if page.abs_src_path]
    while pending:
        source = pending.pop()
        for match in LINK.finditer(source.read_text(encoding="utf-8")):
            uri = _site_uri(source, match.group(2), config)
            if uri is None or not uri.startswith(f"{SITE_FOLDER}/") or uri in files.src_uris:
                continue
            path = root / uri.removeprefix(f"{SITE_FOLDER}/")
            published = File.generated(
                config, uri, abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV
            )
            files.append(published)
            if path.suffix == ".md":
                pending.append(path)
    return files


def on_page_markdown(
    markdown: str, page: Page, config: MkDocsConfig, files: Files, **kwargs: Any
) -> str:
    """Rewrite the page's links to repository files as links between site paths."""
    if page.file.abs_src_path is None:
        return markdown
    source = Path(page.file.abs_src_path)
    here = posixpath.dirname(page.file.src_uri) or "."

    def rewrite(match: re.Match[str]) -> str:
        uri = _site_uri(source, match.group(2), config)
        if uri is None:
            return match.group(0)
        target = posixpath.relpath(uri, here)
        return f"{match.group(1)}{target}{match.group(3) or ''}{match.group(4) or ''})"

    return LINK.sub(rewrite, markdown)
