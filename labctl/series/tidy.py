"""The series' data as a user loads it next: one tidy CSV per measurement kind.

The rule: one row per observation, one column per variable, the film and its
anneal temperature on every row — so ``pandas.read_csv("data/tds.csv")`` and a
``groupby("anneal_temperature_c")`` is all a user needs, without opening the
run files one by one. The files are rebuilt from the finished steps' run files
(the source of truth stays in ``runs/``); ``conductivity_spectra.csv`` holds the
fitted Δσ(ω) of each THz-TDS step with its Drude-Smith model curve.
"""

from __future__ import annotations

import logging
from pathlib import Path

from labctl.series.catalog import DONE

log = logging.getLogger(__name__)

DATA_DIR = "data"
KINDS = ("anneal", "absorption", "optp", "tds")
ID_COLUMNS = ("sample_id", "anneal_temperature_c", "step", "run_file")
#: conductivity_spectra.csv: column → key of a TDS step's results["spectrum"].
SPECTRUM_COLUMNS = {
    "freq_THz": "freq_THz",
    "re_dsigma_S_m": "re",
    "im_dsigma_S_m": "im",
    "dsigma_err_S_m": "err",
    "model_re_dsigma_S_m": "model_re",
    "model_im_dsigma_S_m": "model_im",
}


def write_tidy(directory: str | Path, steps: list[dict]) -> list[Path]:
    """``data/KIND.csv`` for each kind with finished steps, and the conductivity spectra."""
    import pandas as pd

    directory = Path(directory)
    out_dir = directory / DATA_DIR
    written = []
    for kind in KINDS:
        frames = []
        for s in steps:
            if s["kind"] != kind or s["state"] != DONE or not s["run_file"]:
                continue
            try:
                frame = pd.read_csv(directory / s["run_file"], comment="#")
            except (OSError, ValueError) as exc:
                log.warning("report: %s left out of %s.csv: %s", s["run_file"], kind, exc)
                continue
            for i, (name, value) in enumerate(zip(ID_COLUMNS, _ids(s), strict=True)):
                frame.insert(i, name, value)
            frames.append(frame)
        if frames:
            out_dir.mkdir(exist_ok=True)
            path = out_dir / f"{kind}.csv"
            pd.concat(frames, ignore_index=True).to_csv(path, index=False)
            written.append(path)
    spectra = _spectra(steps)
    if spectra is not None:
        out_dir.mkdir(exist_ok=True)
        path = out_dir / "conductivity_spectra.csv"
        spectra.to_csv(path, index=False)
        written.append(path)
    return written


def _ids(step: dict) -> tuple:
    return (step["sample_id"], step["temperature_c"], step["idx"], step["run_file"])


def _spectra(steps: list[dict]):
    import pandas as pd

    frames = []
    for s in steps:
        spectrum = (s.get("results") or {}).get("spectrum") if s["kind"] == "tds" else None
        if s["state"] != DONE or not spectrum or "freq_THz" not in spectrum:
            continue
        n = len(spectrum["freq_THz"])
        columns = {
            name: spectrum[key]
            for name, key in SPECTRUM_COLUMNS.items()
            if spectrum.get(key) is not None and len(spectrum[key]) == n
        }
        frame = pd.DataFrame(columns)
        for i, (name, value) in enumerate(zip(ID_COLUMNS, _ids(s), strict=True)):
            frame.insert(i, name, value)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None
