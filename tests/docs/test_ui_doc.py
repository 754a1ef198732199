"""docs/ui.md shows what docs/ui_screenshots.py takes: every picture the page shows is in
docs/images/ and is one the script writes, so running the script renews them all."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_ui_page_shows_the_pictures_the_script_takes() -> None:
    shown = set(re.findall(r"\]\(images/([\w.-]+\.png)\)", (DOCS / "ui.md").read_text()))
    taken = set(re.findall(r'IMAGES / "([\w.-]+\.png)"', (DOCS / "ui_screenshots.py").read_text()))
    assert shown == taken
    for name in shown:
        assert (DOCS / "images" / name).stat().st_size > 0, name
    # Small enough for a repository: pngquant'ed, the pictures weigh about 250 KB together.
    assert sum((DOCS / "images" / name).stat().st_size for name in shown) < 400_000
