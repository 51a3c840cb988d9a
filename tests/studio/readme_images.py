"""Copy the studio tests' screenshots into docs/images for the README's gallery.

    python -m pytest tests/studio && python tests/studio/readme_images.py

The studio tests save a screenshot of every view they drive (tests/studio/screenshots/, ignored by
git), all against the shipped story and sudoku models; this picks the README's ones, so its
pictures always come from a real run of the current studio.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "studio" / "screenshots"
IMAGES = ROOT / "docs" / "images"
# README image -> the test's screenshot
PICKS = {
    "studio-diffuse-live.png": "diffuse-live.png",
    "studio-heat-filmstrip.png": "history-minimap.png",
    "studio-compare.png": "compare.png",
    "studio-any-order.png": "history-any-order.png",
    "studio-sudoku.png": "sudoku.png",
    "studio-preview.png": "preview-helium.png",
    "studio-phone.png": "diffuse-phone.png",
    "studio-rewrite.png": "rewrite.png",
    "studio-chat.png": "chat.png",
}


def main() -> int:
    missing = [shot for shot in PICKS.values() if not (SHOTS / shot).exists()]
    if missing:
        print(f"run the studio tests first; missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    IMAGES.mkdir(parents=True, exist_ok=True)
    for image, shot in PICKS.items():
        shutil.copyfile(SHOTS / shot, IMAGES / image)
        print(f"{shot} -> docs/images/{image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
