"""Render the series pages of the demo plan to PNGs in headless chromium: the watch page
of a running series (docs/watch.png) and the morning report (docs/report.png).

The watch page: ``labctl series run`` of the demo plan at ``--time-scale`` (default
600× real time) with ``--watch-port``, screenshot while the second film's anneal
runs, then the series is stopped (SIGTERM: between points, furnace made safe).
The report: ``labctl demo`` into a temporary directory (about 30 s at virtual
time), or an existing series directory (``--series``). Whole pages at a laptop's
width (1280 px). Needs Debian's ``chromium`` and ``chromium-driver`` and selenium
(the ``test`` extra).

    python scripts/render_series_pages.py [--series DIR] [--docs docs] [--time-scale 600]
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path

CLI = [sys.executable, "-m", "labctl.cli"]


def screenshot(address: str, out: Path, width: int = 1280) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(address)
        deadline = time.monotonic() + 120  # plots are drawn on request: seconds on a busy PC
        while time.monotonic() < deadline and not driver.execute_script(
            "const imgs = [...document.images];"
            "return imgs.length > 0 && imgs.every(i => i.complete);"
        ):
            time.sleep(0.5)
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


def watch_page(docs: Path, time_scale: str, tmp: Path) -> None:
    plan = resources.files("labctl.plans").joinpath("demo.yaml")
    cmd = [*CLI, "series", "run", str(plan), "--out", str(tmp / "night"), "--quiet"]
    cmd += ["--time-scale", time_scale, "--watch-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = next(line.split()[1] for line in proc.stderr if line.startswith("watch http"))
        while True:
            try:
                with urllib.request.urlopen(url + "api/state", timeout=30) as r:
                    steps = json.load(r)["steps"]
            except OSError:
                steps = []
            if len(steps) > 4 and steps[4]["state"] == "running":
                break
            time.sleep(1.0)
        time.sleep(12.0)  # some of the second anneal's furnace trace
        screenshot(url, docs / "watch.png")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=Path, default=None, help="a series for the report")
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--time-scale", default="600", help="of the watched series")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        watch_page(args.docs, args.time_scale, Path(tmp))
        series = args.series
        if series is None:
            series = Path(tmp) / "demo"
            cmd = [*CLI, "demo", "--out", str(series), "--quiet"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        screenshot((series / "report.html").resolve().as_uri(), args.docs / "report.png")
    print(args.docs / "watch.png", args.docs / "report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
