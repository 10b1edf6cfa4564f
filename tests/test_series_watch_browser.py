"""The watch page in a real headless browser (chromium): it renders the series, follows it
live over server-sent events, carries its token to the event stream and plots, and is
screenshot (``LABCTL_SCREENSHOTS=DIR`` keeps the PNG there, e.g. ``docs/``)."""

import os
import shutil
from pathlib import Path

import pytest
from browser import full_page_screenshot, headless_chromium, require_chromium
from small_series import PLAN, run_small_series

from labctl.series.catalog import Catalog
from labctl.series.watch import WatchServer

TOKEN = "night-token"
WAIT_S = 60  # readiness, not a bound: a loaded machine may be slow


@pytest.fixture(scope="module")
def finished_series(tmp_path_factory):
    require_chromium()  # before the series is run for nothing
    return run_small_series(tmp_path_factory.mktemp("browser") / "series")


@pytest.fixture
def browser():
    driver = headless_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(condition)


def _text(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def _plots_loaded(driver):
    return driver.execute_script(
        "const imgs = [...document.querySelectorAll('#plots img')];"
        "return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth > 0);"
    )


def mid_run(series: Path, writer: Catalog) -> None:
    """The finished one-film series turned into a night half done: a second film added to
    the plan (as --allow-changed-plan does) and its anneal running, half its file written."""
    from labctl.series.plan import load_plan

    plan_path = series.parent / "two-films.yaml"
    plan_path.write_text(PLAN.replace("slots: [1]", "slots: [1, 2]").replace("[300]", "[300, 325]"))
    writer.adopt_plan(load_plan(plan_path), first_new=4)
    anneal = next((series / "runs").glob("anneal_*.csv")).read_text().splitlines()
    partial = series / "runs" / "anneal_W-325C_partial.csv"
    partial.write_text("\n".join(anneal[: len(anneal) // 3]) + "\n")
    writer.set_series_state("running")
    writer.start_step(4, str(partial.relative_to(series)))


@pytest.mark.slow
def test_the_page_shows_a_running_series_and_follows_it_live(browser, finished_series, tmp_path):
    from selenium.webdriver.common.by import By

    series = shutil.copytree(finished_series, tmp_path / "series")
    with Catalog.in_directory(series) as writer:
        mid_run(series, writer)
        with WatchServer(series, token=TOKEN, poll_s=0.1) as server:
            browser.get(server.url + f"?token={TOKEN}")
            _wait(browser, lambda d: _text(d, "#state") == "running")
            _wait(browser, lambda d: _text(d, "#live").startswith("live"))
            assert _text(browser, "#title") == "series night-test"
            rows = browser.find_elements(By.CSS_SELECTOR, "#steps tr")
            cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
            assert [c[1] for c in cells] == ["anneal", "absorption", "optp", "tds"] * 2
            assert [c[4] for c in cells] == ["done"] * 4 + ["running"] + ["pending"] * 3
            assert _text(browser, "#progress") == "4/8 steps"
            assert "left" in _text(browser, "#eta")
            fit = _text(browser, "#fit")
            assert fit.startswith("W-300C, 300 °C: τ = ") and " fs" in fit and "±" in fit
            assert "series 'night-test' started" in _text(browser, "#log")
            _wait(browser, _plots_loaded)  # the token reached the plots
            furnace = browser.find_element(By.ID, "plot-furnace")
            assert furnace.get_attribute("alt") == "furnace temperature"

            keep = os.environ.get("LABCTL_SCREENSHOTS")
            if keep:
                full_page_screenshot(browser, Path(keep) / "watch.png")

            browser.set_window_size(412, 900)  # a phone at 3 am: nothing wider than the screen
            _wait(browser, lambda d: d.execute_script("return window.innerWidth") <= 412)
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= browser.execute_script("return window.innerWidth")

            writer.set_series_state("stopped", "furnace interlock: sensor break")
            _wait(browser, lambda d: _text(d, "#state") == "stopped")  # pushed, no reload
            assert _text(browser, "#message") == "furnace interlock: sensor break"
            assert "stopped" in browser.title
            writer.set_series_state("running")  # resumed (the states' transition table)
            writer.set_series_state("done-with-failures")
            _wait(browser, lambda d: _text(d, "#state") == "finished with warnings: failed steps")


@pytest.mark.slow
def test_without_its_token_the_page_shows_nothing_of_the_series(browser, finished_series):
    with WatchServer(finished_series, token=TOKEN) as server:
        browser.get(server.url)
        body = browser.find_element("tag name", "body").text
        assert "401" in body and "night-test" not in body
