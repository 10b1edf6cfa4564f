"""report.html as a scientist reads it: human headings with units, value ± error in one
cell, where the data came from (plan, simulated station, clock, software), the paper only
where it applies, tidy CSV files linked; and in headless chromium, readable at a laptop's
width (``LABCTL_SCREENSHOTS=DIR`` keeps the screenshot there, e.g. ``docs/``)."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from browser import full_page_screenshot, headless_chromium
from small_series import run_small_series

from labctl.series.report_page import TABLE, paper_comparison, plus_minus

LAPTOP_PX = 1280


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    return run_small_series(tmp_path_factory.mktemp("report") / "series")


@pytest.fixture(scope="module")
def page(series):
    return (series / "report.html").read_text(encoding="utf-8")


def test_plus_minus_rounds_the_error_and_the_value_to_it():
    assert plus_minus(2.49412, 0.00731) == "2.494 ± 0.007"
    assert plus_minus(512.8312, 0.0375) == "512.83 ± 0.04"
    assert plus_minus(43.4, 3.2) == "43 ± 3"
    assert plus_minus(-0.9492, 0.00141) == "-0.9492 ± 0.0014"
    assert plus_minus(12345.0, 250.0) == "12345 ± 250"


def test_summary_table_has_human_headings_and_value_plus_minus_error(page):
    head = re.search(r"<h2>Summary.*?<thead>(.*?)</thead><tbody>(.*?)</tbody>", page, re.S)
    headings = re.findall(r"<th>(.*?)</th>", head.group(1))
    assert headings[:3] == ["anneal T (°C)", "film", "HH exciton (nm)"]
    assert "τ (fs)" in headings and "N (10²¹ m⁻³)" in headings and "μ (cm²/(V·s))" in headings
    assert not any("_" in h and "N_abs" not in h and "χ²_red" not in h for h in headings)
    (row,) = re.findall(r"<tr>(.*?)</tr>", head.group(2))
    cells = dict(zip(headings, re.findall(r"<td>(.*?)</td>", row), strict=True))
    assert cells["anneal T (°C)"] == "300" and cells["film"] == "W-300C"
    for column in ("HH exciton (nm)", "τ (fs)", "c", "N (10²¹ m⁻³)"):
        assert re.fullmatch(r"-?\d+(\.\d+)? ± \d+(\.\d+)?", cells[column]), (column, cells)
    # an excitonic film (its HH exciton is there): a Tauc fit is no gap, not shown (issue 16)
    assert cells["Tauc gap (eV)"] == "–" and cells["Δσ significant"] == "yes"
    assert "_err" not in page.split("<h2>Plan</h2>")[0]
    assert len(TABLE) == len(headings)


def test_the_page_says_where_the_data_came_from(page, series):
    facts = dict(re.findall(r"<tr><th>(\w+)</th><td>(.*?)</td></tr>", page))
    assert facts["plan"].startswith("night-test (") and "digest" in facts["plan"]
    assert facts["instruments"].startswith("simulated")
    assert facts["clock"].startswith("virtual time")
    assert re.match(r"labctl \S+ \(this report: labctl \S+\)", facts["software"])
    assert "temperatures_c: [300]" in page  # the plan as run


def test_the_paper_only_where_it_applies(page):
    assert "<h2>Beside the paper</h2>" in page and "44 ± 2" in page  # 300 °C: Table 2 has it
    rows = [{"temperature_c": 280.0, "sample_id": "X", "tau_fs": 40.0, "tau_fs_err": 1.0}]
    assert paper_comparison(rows) == ""
    assert paper_comparison([{**rows[0], "temperature_c": None}]) == ""


def test_tidy_csv_per_measurement_kind_linked_from_the_page(page, series):
    for kind in ("anneal", "absorption", "optp", "tds", "conductivity_spectra"):
        path = series / "data" / f"{kind}.csv"
        assert f"href='data/{kind}.csv'" in page, kind
        frame = pd.read_csv(path)
        assert list(frame.columns[:2]) == ["sample_id", "anneal_temperature_c"], kind
        assert set(frame["sample_id"]) == {"W-300C"} and set(frame["anneal_temperature_c"]) == {
            300.0
        }
    absorption = pd.read_csv(series / "data" / "absorption.csv")
    run = pd.read_csv(series / absorption["run_file"][0], comment="#")
    assert len(absorption) == len(run)
    assert absorption["absorbance"].tolist() == run["absorbance"].tolist()
    spectra = pd.read_csv(series / "data" / "conductivity_spectra.csv")
    assert {"freq_THz", "re_dsigma_S_m", "model_re_dsigma_S_m"} <= set(spectra.columns)
    assert "href='summary.csv'" in page


@pytest.mark.slow
def test_in_a_browser_the_report_is_readable_at_a_laptops_width(series):
    driver = headless_chromium(width=LAPTOP_PX)
    try:
        driver.get((series / "report.html").as_uri())
        sizes = driver.execute_script(
            "return [...document.images].map(i => [i.alt, i.naturalWidth, i.width]);"
        )
        page_width = driver.execute_script("return document.documentElement.scrollWidth")
        keep = os.environ.get("LABCTL_SCREENSHOTS")
        if keep:
            full_page_screenshot(driver, Path(keep) / "report.png")
    finally:
        driver.quit()
    assert page_width <= LAPTOP_PX  # no sideways scrolling
    names = {alt for alt, _natural, _shown in sizes}
    assert {"conductivity_spectra", "drude_smith_vs_T", "absorption_spectra"} <= names
    for alt, natural, shown in sizes:
        assert natural > 0, alt
        assert shown / natural >= 0.55, (alt, natural, shown)  # text shrunk at most ~half
