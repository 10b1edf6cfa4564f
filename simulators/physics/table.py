"""The optical table: OPTP/THz-TDS signals at the two lock-ins, spectrometer light, pump power.

Detection scheme (1 kHz amplifier; see docs/physics.md):

* the THz generation beam is chopped at ``chopper_ref_hz`` (500 Hz): lock-in
  "ref" sees E_avg = E_ref + ΔE/2 (the pump, chopped independently, is on half
  the time);
* the pump is chopped at ``chopper_pump_hz`` (250 Hz): lock-in "pump" sees the
  pump-chopped component of the THz-chopped signal, ΔE/2 (the THz is on half
  the time). Hence E_ref = X_ref − X_pump and ΔE = 2·X_pump.

Both are the fundamental of the chopped signal in V rms (the EO gain includes
√2/π of a square wave's peak-to-peak). The SR830 simulator adds the white
``lockin_noise_v_per_rthz`` through its filter; the table's own noise and drift
(probe and pump intensity, delays, the pump channel's gain) come from
``world.table_noise`` (:mod:`labctl.simulators.physics.noise`), all neutral
unless the world's noise is "realistic".

ΔE at sampling delay t_s and pump delay t_p is quasi-static: the film's
Δσ(ω) at the TDS delay scaled by the OPTP transient g(t_p) (and g(t_p + echo
delay) for the echo). With ``intrapulse_response`` (off by default) the response
changes within the pulse instead (:mod:`~labctl.simulators.physics.intrapulse`).
"""

from __future__ import annotations

import math

import numpy as np

from labctl.simulators.physics.intrapulse import intrapulse_delta_e
from labctl.simulators.physics.thz import THzPulse


def detector_floor_v_per_rthz(table_params: dict) -> float:
    """The additive white floor of the EO detector (V/√Hz at a lock-in input): one detector
    feeds both lock-ins, so both channels see this same density (drawn independently:
    they demodulate different frequencies). Since params 1.4 a real table's by default."""
    return float(table_params["noise_floor_v_per_rthz"])


class OpticalTable:
    def __init__(self, world) -> None:
        self.world = world
        self.p = world.params.table
        self.pulse = THzPulse(self.p)
        self._cache_key = None
        self._cache_val = (0.0, 0.0, 0.0)
        self._sigma_key = None
        self._sigma_val = None
        self._dspec_key = None
        self._dspec_val = None
        #: E_ref(ω): the probe's spectrum through the unpumped sample (substrate and film)
        self.sample_spectrum = self.pulse.spectrum * self.pulse.sample_transfer()
        self._free_spec = self.pulse.spectrum * self.pulse.free_space_transfer()

    # --- THz -------------------------------------------------------------------
    def _fields(self) -> tuple[float, float, float]:
        """(E_ref, ΔE, |E_ref|) at the current delays, for what is in the beam (cached)."""
        w = self.world
        ts = w.sampling_delay_ps()
        tp = w.pump_delay_ps()
        slot = w.slot_in_beam()
        item = None if slot is None else slot.film
        pumpable = item is not None and not getattr(item, "is_blank", False)
        key = (ts, tp, id(slot), id(item), getattr(item, "revision", 0), w.pump_fluence_uj_cm2)
        if key == self._cache_key:
            return self._cache_val
        pulse = self.pulse
        phase = pulse.phase(ts)
        if slot is None:  # nothing in the beam
            e_ref = pulse.field_from(phase, self._free_spec)
            de = 0.0
        else:
            e_ref = pulse.field_from(phase, self.sample_spectrum)
            de = 0.0
            if pumpable and self.p.get("intrapulse_response", False):
                de = intrapulse_delta_e(
                    pulse, self.sample_spectrum, w.photoresponse(item), w.photo.transient_many,
                    item.thickness_nm, ts, tp,
                )  # fmt: skip
            elif pumpable:
                dspec = self.pumped_spectrum_change(item, tp)
                if dspec is not None:
                    de = pulse.field_from(phase, dspec)
        self._cache_key = key
        self._cache_val = (e_ref, de, abs(e_ref))
        return self._cache_val

    def pumped_spectrum_change(self, film, tp: float):
        """ΔE(ω) = E_pumped(ω) − E_ref(ω) of ``film`` at pump delay ``tp`` (ps; cached), or None
        where the pump has left no carriers: the quasi-static field change the table's
        lock-ins see, which the scan path and the intrapulse checks compare against."""
        key = (tp, id(film), film.revision, self.world.pump_fluence_uj_cm2)
        if key == self._dspec_key:
            return self._dspec_val
        w = self.world
        pulse = self.pulse
        g_main = w.photo.transient(tp)
        g_echo = w.photo.transient(tp + pulse.echo_delay_ps)
        if g_main == 0.0 and g_echo == 0.0:
            val = None
        else:
            sheet = self._sheet(film)
            t_pumped = pulse.sample_transfer(sheet * g_main, sheet * g_echo)
            val = pulse.spectrum * t_pumped - self.sample_spectrum
        self._dspec_key, self._dspec_val = key, val
        return val

    def _sheet(self, film) -> np.ndarray:
        """Z₀·d·Δσ(ω) of the film at the TDS delay (cached on the film's revision)."""
        key = (id(film), film.revision, self.world.pump_fluence_uj_cm2)
        if key != self._sigma_key:
            resp = self.world.photoresponse(film)
            self._sigma_val = self.pulse.sheet(resp.sigma(self.pulse.freq_hz), film.thickness_nm)
            self._sigma_key = key
        return self._sigma_val

    def lockin_input_v(self, channel: str) -> float:
        """What lock-in ``channel`` demodulates, with the table's intensity noise and the
        pump channel's relative gain (``world.table_noise``; all 1 unless realistic)."""
        e_ref, de, _ = self._fields()
        noise = self.world.table_noise
        t = self.world.t
        probe = noise.probe_factor(t)
        de = de * noise.pump_factor(t)
        if channel == "ref":
            return probe * (e_ref + 0.5 * de)
        if channel == "pump":
            return probe * noise.pump_channel_gain * 0.5 * de
        raise KeyError(f"no lock-in channel {channel!r} (the table has 'ref' and 'pump')")

    def lockin_noise_v_per_rthz(self, channel: str) -> float:
        """White input noise density of lock-in ``channel``: the detector's floor, the
        same for both (one detector), plus the channel's part ∝ |E(t)|."""
        _, _, mag = self._fields()
        p = self.p
        if channel not in ("ref", "pump"):
            raise KeyError(f"no lock-in channel {channel!r} (the table has 'ref' and 'pump')")
        return detector_floor_v_per_rthz(p) + float(p[f"noise_{channel}_relative_per_rthz"]) * mag

    def lockin_reference_hz(self, channel: str) -> float:
        if channel == "ref":
            return float(self.p["chopper_ref_hz"])
        if channel == "pump":
            return float(self.p["chopper_pump_hz"])
        raise KeyError(f"no lock-in channel {channel!r} (the table has 'ref' and 'pump')")

    # --- UV-Vis light path ------------------------------------------------------------
    def spectrum_counts(
        self, wavelengths_nm, integration_time_s: float, dark: bool = False
    ) -> np.ndarray:
        """Mean photo-signal counts per pixel: lamp × transmission of what is in the beam.

        Noise-free expected counts of light only: no dark signal, no offset, no
        saturation (the spectrometer simulator adds those). ``dark=True`` or a
        closed lamp shutter (``world.lamp_shutter_open``): no light (zeros).
        """
        wl = np.asarray(wavelengths_nm, dtype=float)
        w = self.world
        if dark or integration_time_s <= 0 or not getattr(w, "lamp_shutter_open", True):
            return np.zeros_like(wl)
        counts = w.absorption.lamp_counts_per_s(wl) * float(integration_time_s)
        slot = w.slot_in_beam()
        if slot is None:
            return counts
        sub = float(w.params.optics["substrate_transmittance"])
        item = slot.film
        if item is None:  # an empty slot: open aperture
            return counts
        if getattr(item, "is_blank", False):
            return counts * sub
        return counts * sub * 10.0 ** (-w.absorption.film_absorbance(item, wl))

    # --- pump ---------------------------------------------------------------------
    def pump_power_w(self, wavelength_nm: float = 400.0) -> float:
        """Average power of the (unchopped) pump beam at the power-meter head, W.

        The beam is at ``pump_wavelength_nm`` whatever the meter is set to; a
        meter's wavelength correction is the meter's business.
        """
        p = self.p
        area_cm2 = math.pi * (float(p["pump_spot_diameter_mm"]) / 20.0) ** 2
        return self.world.pump_fluence_uj_cm2 * 1e-6 * area_cm2 * float(p["laser_rep_rate_hz"])
