"""Render the demo series' report.html to a PNG (docs/report.png) in headless chromium.

Runs ``labctl demo`` into a temporary directory (about 30 s at virtual time), or
takes an existing series directory, and screenshots the whole page at a laptop's
width (1280 px). Needs Debian's ``chromium`` and ``chromium-driver`` and selenium
(the ``test`` extra). The watch page's screenshot (docs/watch.png) comes from its
browser test: ``LABCTL_SCREENSHOTS=docs pytest tests/test_series_watch_browser.py``.

    python scripts/render_report.py [--series DIR] [--out docs/report.png]
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def screenshot(page: Path, out: Path, width: int = 1280) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.quit()
    from PIL import Image  # matplotlib's dependency: 256 colours keep the PNG a third the size

    Image.open(out).convert("RGB").quantize(256).save(out, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=Path, default=None, help="a series directory")
    parser.add_argument("--out", type=Path, default=Path("docs/report.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        series = args.series
        if series is None:
            series = Path(tmp) / "demo"
            cmd = [sys.executable, "-m", "labctl.cli", "demo", "--out", str(series), "--quiet"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        screenshot(series / "report.html", args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
