"""Regenerate the README's screenshot of the demo's HTML report.

Runs the demo on the emulator (no account, nothing kept but the picture), opens its HTML
report in headless Debian Chromium and saves the top of the page, down to the text ->
box results, as ``docs/assets/report.png``. It refuses to save a page that logged an
error or drew a box outside its picture.

    python docs/_ext/report_screenshot.py [--output docs/assets/report.png]

Needs the ``dev`` extra (playwright) and Debian's ``chromium`` (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mm_embed.demo import run_demo
from mm_embed.explore.browser import chromium, new_page, overlays_outside_images, watch_problems

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "docs" / "assets" / "report.png"
WIDTH = 1280
#: The screenshot ends below this section (the rest is one scroll away in the report).
LAST_SECTION = "#text-to-box"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mm-embed-shot-") as work:
        html = Path(work) / "mm-embed-demo.html"
        run_demo(plot=None, html=str(html), offline=True, progress=False)
        with chromium() as browser, new_page(browser, width=WIDTH) as page:
            problems = watch_problems(page)
            page.goto(html.as_uri())
            _, outside = overlays_outside_images(page)
            if problems or outside:
                sys.stderr.write(
                    "\n".join(["the report is not clean:", *problems, *outside]) + "\n"
                )
                return 1
            box = page.locator(LAST_SECTION).bounding_box()
            assert box is not None
            bottom = box["y"] + box["height"] + 16
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(args.output),
                full_page=True,
                clip={"x": 0, "y": 0, "width": WIDTH, "height": bottom},
            )
    print(f"screenshot written to {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
