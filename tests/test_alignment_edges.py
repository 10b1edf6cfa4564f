"""Alignment that ends at an edge of its window re-searches or fails, loudly (issue 16.6)."""

import pytest
from quiet_table import QUIET_TABLE
from sim_furnace import annealed_station

from labctl.errors import AnalysisError
from labctl.procedures.alignment import find_optp_peak


@pytest.fixture(scope="module")
def station():
    # the analysis-test table (tests/quiet_table.py): the edge logic is under test, and at a
    # real table's floor one OPTP scan of the 300 °C film is noise (docs/physics.md)
    station = annealed_station(**QUIET_TABLE)
    station["stages"].sampling.move_to_ps(0.0)  # the gate on the THz peak (the stage's zero)
    yield station
    station.close()


def test_a_peak_at_the_window_edge_is_searched_again_around_it(station):
    truth = station.world.optp_peak_delay_ps()
    # the window ends before the peak: the rise's top sits at its last points
    scan = find_optp_peak(
        station["stages"], station["lockin_pump"], coarse=(-0.9, truth - 0.05, 0.025)
    )
    assert scan.notes and "at the edge of the scan" in scan.notes[0]
    assert scan.peak_ps == pytest.approx(truth, abs=0.02)
    assert scan.positions_ps[0] < truth < scan.positions_ps[-1]
    assert scan.to_dict()["notes"] == scan.notes


def test_a_peak_that_stays_at_the_edge_fails_the_alignment(station):
    truth = station.world.optp_peak_delay_ps()
    with pytest.raises(AnalysisError, match="stayed at the edge of its window after 1 scans"):
        find_optp_peak(
            station["stages"],
            station["lockin_pump"],
            coarse=(-0.9, truth - 0.05, 0.025),
            searches=1,
        )


def test_an_overloaded_optp_scan_is_repeated_less_sensitive(station, monkeypatch):
    """A clipped scan has a flat top in the wrong place: before, its peak was used."""
    pump = station["lockin_pump"]
    too_sensitive = 1e-6  # X_pump ≈ ΔE/2 ≈ 2.7 µV at the peak: clipped

    monkeypatch.setattr(
        pump, "range_with_headroom", lambda *a, **k: setattr(pump, "sensitivity", too_sensitive)
    )
    truth = station.world.optp_peak_delay_ps()
    scan = find_optp_peak(station["stages"], pump)
    assert any("overloaded the pump lock-in" in note for note in scan.notes)
    assert pump.sensitivity > too_sensitive
    assert scan.peak_ps == pytest.approx(truth, abs=0.02)
    assert not pump.read_overload()
