"""``labctl sim measure``: synthetic measurements through the simulated instruments.

``labctl sim measure tds --anneal-c T --out FILE.csv`` and
``labctl sim measure absorption --anneal-c T --out FILE.csv`` build the
simulated station in-process on virtual time, anneal a fresh film with the
furnace controller's own programmer (ramp, dwell, 120 min controlled cooling,
then natural cooling below 30 °C), and record with the simulated instruments
exactly as an experimenter would:

* tds: find the THz peak (stage 1) and the OPTP peak (stage 2, pump lock-in),
  park the pump 0.2 ps after the OPTP peak and scan the gate, reading both
  lock-ins after 3 time constants at each point (E_ref = X_ref − X_pump,
  ΔE = 2·X_pump: the pump lock-in sees ΔE/2 of the doubly chopped signal),
  averaging sweeps. FILE.csv is ``time_ps,E_ref,dE`` — what
  ``labctl analyze tds`` reads.
* absorption: dark (shutter closed), blank fused silica (slot 0) and the film,
  ``A = −log₁₀((S − D)/(R − D))``. FILE.csv is ``wavelength_nm,absorbance``.

Beside FILE.csv, FILE.json holds thickness, substrate index, pump fluence and
the simulator's true parameters (distance, τ, c, N, …) for checking analyses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register_measure(sub) -> None:
    """Add ``measure`` (with ``tds`` and ``absorption``) to ``labctl sim``'s subparsers."""
    m = sub.add_parser(
        "measure",
        help="anneal a fresh simulated film and record synthetic data through the instruments",
        description=__doc__.split("\n\n")[1].replace("``", "") if __doc__ else None,
    )
    msub = m.add_subparsers(dest="measure_kind", metavar="KIND")
    m.set_defaults(func=lambda args: (m.print_help(), 2)[1])

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--anneal-c", type=float, required=True, help="anneal temperature, °C (≤ 30: as made)"
        )
        p.add_argument(
            "--dwell-min", type=float, default=30.0, help="dwell at the anneal temperature, min"
        )
        p.add_argument("--ramp-c-per-min", type=float, default=10.0, help="heating rate, °C/min")
        p.add_argument("--seed", type=int, default=0, help="seed of the simulated world's noise")
        p.add_argument(
            "--noise",
            choices=("realistic", "white", "off"),
            default="realistic",
            help="the world's noise: realistic table noise and drift (default), white "
            "(lock-in white noise only) or off",
        )
        p.add_argument(
            "--noise-free", action="store_true", help="no noise anywhere (same as --noise off)"
        )
        p.add_argument("--slot", type=int, default=1, help="holder slot of the fresh film (1…8)")
        p.add_argument(
            "--station", default=None, help="simulated station file (default: bundled 'sim')"
        )
        p.add_argument(
            "--out", required=True, metavar="FILE.csv", help="output CSV (FILE.json beside it)"
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    t = msub.add_parser("tds", help="THz-TDS pair 0.2 ps after the OPTP peak (time_ps,E_ref,dE)")
    common(t)
    t.add_argument("--t-start-ps", type=float, default=-4.0, help="first gate delay, ps")
    t.add_argument(
        "--t-stop-ps", type=float, default=12.0, help="last gate delay (before the 13 ps echo), ps"
    )
    t.add_argument("--step-ps", type=float, default=0.05, help="gate step, ps")
    t.add_argument("--sweeps", type=int, default=4, help="averaged sweeps")
    t.add_argument("--time-constant-s", type=float, default=0.1, help="lock-in time constant, s")
    t.set_defaults(func=run_tds)

    a = msub.add_parser("absorption", help="absorbance spectrum (wavelength_nm,absorbance)")
    common(a)
    a.add_argument(
        "--integration-ms", type=float, default=100.0, help="spectrometer integration time, ms"
    )
    a.add_argument("--averages", type=int, default=10, help="scans averaged per spectrum")
    a.add_argument("--wl-min", type=float, default=380.0, help="shortest wavelength written, nm")
    a.add_argument("--wl-max", type=float, default=850.0, help="longest wavelength written, nm")
    a.set_defaults(func=run_absorption)


# --------------------------------------------------------------------------- helpers
def _progress(quiet: bool):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=False,
    )


class _Stations:
    """The simulated station split in two over one world and clock: the furnace and stages
    first (annealing takes hours of virtual time; lock-in simulators would filter every
    second of it), the measuring instruments connected after the anneal."""

    def __init__(self, args, measure_roles: tuple[str, ...]) -> None:
        from labctl.errors import StationError
        from labctl.station import Station, load_station_spec

        spec = load_station_spec(args.station)
        optional = {"power_meter"}
        needed = ("furnace", "stages", *measure_roles)
        missing = [r for r in needed if r not in spec.instruments and r not in optional]
        if missing:
            raise StationError(
                f"{spec.source}: 'sim measure {args.measure_kind}' needs instruments {missing}"
            )
        if not all(
            spec.instruments[r].simulated_in_process for r in needed if r in spec.instruments
        ):
            raise StationError(
                f"{spec.source}: 'sim measure' needs in-process simulators (address sim://)"
            )
        self.spec = spec
        self.measure_roles = measure_roles
        noise = "off" if args.noise_free else getattr(args, "noise", "realistic")
        spec.simulation = dict(spec.simulation, seed=args.seed, noise=noise != "off" and noise)
        self.first = Station(self._subset(("furnace", "stages")), time_scale="virtual")
        self.second = None
        self.world = self.first.world
        self.clock = self.first.clock

    def _subset(self, roles):
        from dataclasses import replace

        return replace(
            self.spec, instruments={r: i for r, i in self.spec.instruments.items() if r in roles}
        )

    def connect_measurement(self) -> None:
        from labctl.station import Station

        self.second = Station(self._subset(self.measure_roles), clock=self.clock, world=self.world)

    def __contains__(self, role: str) -> bool:
        return role in self.first or (self.second is not None and role in self.second)

    def __getitem__(self, role: str):
        if role in self.first:
            return self.first[role]
        if self.second is None:
            from labctl.errors import StationError

            raise StationError(f"{role} is not connected yet")
        return self.second[role]

    def close(self) -> None:
        if self.second is not None:
            self.second.close()
        self.first.close()


def _check_out(path: str) -> Path:
    from labctl.errors import LabctlError

    out = Path(path)
    if out.suffix.lower() != ".csv":
        raise LabctlError(f"--out {path}: the data file must end in .csv")
    if not out.parent.exists():
        raise LabctlError(f"--out {path}: directory {out.parent} does not exist")
    return out


def anneal(
    station, slot: int, anneal_c: float, dwell_min: float, ramp_c_per_min: float, progress=None
) -> dict:
    """Anneal the film in ``slot`` on the furnace's programmer, with a progress bar."""
    from labctl.procedures.annealing import COOL_MINUTES, anneal_film

    clock = station.clock
    ambient = float(station.world.furnace.ambient_c)
    total_min = max(anneal_c - ambient, 0.0) / max(ramp_c_per_min, 1e-9) + dwell_min + COOL_MINUTES
    task = (
        progress.add_task(f"anneal {anneal_c:g} °C", total=round(total_min)) if progress else None
    )
    t0 = clock.now()

    def on_poll(_reading: dict) -> None:
        if task is not None:
            done = min(round((clock.now() - t0) / 60.0), round(total_min))
            progress.update(task, completed=done)

    info = anneal_film(
        station["furnace"],
        station["stages"].sample,
        clock,
        slot,
        anneal_c,
        dwell_min=dwell_min,
        ramp_c_per_min=ramp_c_per_min,
        ambient_c=ambient,
        on_poll=on_poll,
    )
    if task is not None:
        progress.update(task, completed=round(total_min))
    return info


def _film_in_slot(station, slot: int):
    from labctl.errors import LabctlError

    world = station.world
    try:
        film = world.slots[slot].film
    except IndexError:
        raise LabctlError(
            f"slot {slot} does not exist (the holder has 0…{len(world.slots) - 1})"
        ) from None
    if film is None or getattr(film, "is_blank", False):
        raise LabctlError(f"slot {slot} holds no film (slot {world.blank_slot.index} is the blank)")
    return film


def _metadata(station, film, args, extra: dict) -> dict:
    world = station.world
    return {
        "kind": args.measure_kind,
        "thickness_nm": film.thickness_nm,
        "substrate_index": float(world.params.table["substrate_index"]),
        "substrate_thickness_mm": float(world.params.table["substrate_thickness_mm"]),
        "pump_fluence_uj_cm2": world.pump_fluence_uj_cm2,
        "pump_photon_energy_ev": float(world.params.photo["pump_photon_ev"]),
        "effective_mass": float(world.params.photo["effective_mass"]),
        "seed": args.seed,
        "noise": station.world.noise,
        "slot": args.slot,
        "params_version": world.params.version,
        "true": world.true_parameters(film),
        **extra,
    }


def _write_json(out: Path, meta: dict) -> None:
    out.with_suffix(".json").write_text(
        json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n"
    )


# --------------------------------------------------------------------------- TDS
def _read_mean(lockin, n_tau: float = 3.0) -> float:
    lockin.settle(n_tau)
    x, _y = lockin.read_xy()
    return x


def _parabolic_peak(x, y) -> float:
    import numpy as np

    i = int(np.argmax(y))
    if 0 < i < len(y) - 1:
        denom = y[i - 1] - 2 * y[i] + y[i + 1]
        if denom < 0:
            return float(x[i] + 0.5 * (x[1] - x[0]) * (y[i - 1] - y[i + 1]) / denom)
    return float(x[i])


def _range_with_headroom(lockin, steps: int = 2) -> None:
    """Auto-range, then step ``steps`` ranges less sensitive: the scan sees larger signals."""
    lockin.auto_range()
    full_scales = list(lockin.SENSITIVITIES)
    i = full_scales.index(min(full_scales, key=lambda v: abs(v - lockin.sensitivity)))
    lockin.sensitivity = full_scales[min(i + steps, len(full_scales) - 1)]
    lockin.settle(5.0)


def _vertex(x, y) -> float:
    """Peak position: maximum of a cubic spline through the trace (the OPTP peak is asymmetric)."""
    import numpy as np
    from scipy.interpolate import CubicSpline

    i = int(np.argmax(y))
    lo, hi = max(0, i - 6), min(len(y), i + 7)
    spline = CubicSpline(x[lo:hi], y[lo:hi])
    fine = np.linspace(x[max(lo, i - 1)], x[min(hi - 1, i + 1)], 401)
    return float(fine[int(np.argmax(spline(fine)))])


def _optp_scan(pump_stage, lockin, delays, progress, label: str):
    """−ΔE at the THz peak vs pump delay, scanned forth and back (the lock-in's lag cancels)."""
    import numpy as np

    task = progress.add_task(label, total=2 * len(delays))
    minus_de = np.zeros(delays.size)
    for order in (range(delays.size), range(delays.size - 1, -1, -1)):
        pump_stage.move_to_ps(float(delays[order[0]]))
        lockin.settle(10.0)
        for i in order:
            pump_stage.move_to_ps(float(delays[i]))
            minus_de[i] -= _read_mean(lockin, 5.0)  # mean of two passes of ΔE/2
            progress.advance(task)
    return minus_de


def run_tds(args: argparse.Namespace) -> int:
    import numpy as np

    from labctl.errors import LabctlError

    out = _check_out(args.out)
    if args.sweeps < 1 or not args.step_ps > 0 or not args.t_stop_ps > args.t_start_ps:
        raise LabctlError("need sweeps ≥ 1, step > 0 and t-stop > t-start")
    station = _Stations(args, ("lockin_ref", "lockin_pump", "power_meter"))
    try:
        film = _film_in_slot(station, args.slot)
        stages = station["stages"]
        with _progress(args.quiet) as progress:
            anneal_info = anneal(
                station, args.slot, args.anneal_c, args.dwell_min, args.ramp_c_per_min, progress
            )
            station.connect_measurement()
            ref, pump = station["lockin_ref"], station["lockin_pump"]
            for lockin in (ref, pump):
                lockin.time_constant = args.time_constant_s
            # THz peak (gate) with the pump blocked far before zero delay
            stages.pump.move_to_ps(-5.0)
            stages.sampling.move_to_ps(0.0)
            ref.auto_range()
            gates = np.arange(-0.2, 0.2001, 0.02)
            peak_scan = []
            for g in gates:
                stages.sampling.move_to_ps(float(g))
                peak_scan.append(_read_mean(ref))
            gate_peak = _parabolic_peak(gates, np.asarray(peak_scan))
            stages.sampling.move_to_ps(gate_peak)
            # OPTP: pump delay scan at the THz peak, forth and back (the lock-in's lag cancels);
            # -ΔE is largest at the OPTP peak
            delays = np.arange(-0.6, 1.2001, 0.025)
            stages.pump.move_to_ps(1.0)
            _range_with_headroom(pump)
            optp = _optp_scan(stages.pump, pump, delays, progress, "OPTP scan")
            coarse_peak = _vertex(delays, optp)
            # fine scan around the peak with a longer time constant, fitted by a quartic
            pump.time_constant = 3 * args.time_constant_s
            fine = np.arange(coarse_peak - 0.15, coarse_peak + 0.1501, 0.01)
            fine_optp = _optp_scan(stages.pump, pump, fine, progress, "OPTP peak")
            pump.time_constant = args.time_constant_s
            poly = np.polyfit(fine - coarse_peak, fine_optp, 4)
            grid = np.linspace(-0.1, 0.1, 2001)
            optp_peak = coarse_peak + float(grid[int(np.argmax(np.polyval(poly, grid)))])
            tds_delay = optp_peak + float(station.world.params.photo["tds_delay_after_peak_ps"])
            stages.pump.move_to_ps(tds_delay)
            _range_with_headroom(pump)
            # TDS: gate scan at fixed pump delay, alternate directions
            times = np.arange(args.t_start_ps, args.t_stop_ps + 0.5 * args.step_ps, args.step_ps)
            x_ref = np.zeros((args.sweeps, times.size))
            x_pump = np.zeros((args.sweeps, times.size))
            task = progress.add_task("TDS scan", total=args.sweeps * times.size)
            ref.read_overload()
            pump.read_overload()
            for s in range(args.sweeps):
                order = range(times.size) if s % 2 == 0 else range(times.size - 1, -1, -1)
                stages.sampling.move_to_ps(float(times[order[0]]))
                ref.settle(10.0)
                for i in order:
                    stages.sampling.move_to_ps(float(times[i]))
                    ref.settle(3.0)
                    x_ref[s, i] = ref.read_xy()[0]
                    x_pump[s, i] = pump.read_xy()[0]
                    progress.advance(task)
            overloads = {"lockin_ref": ref.read_overload(), "lockin_pump": pump.read_overload()}
        xr, xp = x_ref.mean(axis=0), x_pump.mean(axis=0)
        e_ref, delta_e = xr - xp, 2.0 * xp  # the pump lock-in sees ΔE/2
        with out.open("w") as fh:
            fh.write("time_ps,E_ref,dE\n")
            for t_ps, e, de in zip(times, e_ref, delta_e, strict=True):
                fh.write(f"{t_ps:.4f},{e:.8e},{de:.8e}\n")
        power_w = None
        if "power_meter" in station:
            power_w = station["power_meter"].power_w
        meta = _metadata(
            station,
            film,
            args,
            {
                "anneal": anneal_info,
                "columns": {
                    "time_ps": "gate delay, ps",
                    "E_ref": "X_ref − X_pump, V",
                    "dE": "2·X_pump, V",
                },
                "gate_peak_ps": gate_peak,
                "optp_peak_delay_ps": optp_peak,
                "tds_pump_delay_ps": tds_delay,
                "true_optp_peak_delay_ps": station.world.optp_peak_delay_ps(),
                "sweeps": args.sweeps,
                "time_constant_s": args.time_constant_s,
                "lockin_sensitivity_v": {
                    "lockin_ref": ref.sensitivity,
                    "lockin_pump": pump.sensitivity,
                },
                "overloads": overloads,
                "pump_power_w_measured": power_w,
                "optp_trace": {"pump_delay_ps": delays.tolist(), "minus_dE_V": optp.tolist()},
            },
        )
        _write_json(out, meta)
    finally:
        station.close()
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- absorption
def run_absorption(args: argparse.Namespace) -> int:
    import numpy as np

    from labctl.errors import LabctlError

    out = _check_out(args.out)
    if args.averages < 1 or not args.integration_ms > 0:
        raise LabctlError("need averages ≥ 1 and a positive integration time")
    station = _Stations(args, ("spectrometer",))
    try:
        film = _film_in_slot(station, args.slot)
        stages = station["stages"]
        world = station.world
        it = args.integration_ms / 1000.0
        with _progress(args.quiet) as progress:
            anneal_info = anneal(
                station, args.slot, args.anneal_c, args.dwell_min, args.ramp_c_per_min, progress
            )
            station.connect_measurement()
            spec = station["spectrometer"]
            task = progress.add_task("spectra", total=3)
            # dark: the light source's shutter closed through Lamp Enable, same integration time
            dark = spec.acquire_dark(it, averages=args.averages)
            progress.advance(task)
            stages.sample.move_to_slot(world.blank_slot.index)
            reference = spec.acquire(it, averages=args.averages)
            saturated_ref = bool(np.any(spec.saturated()))
            progress.advance(task)
            stages.sample.move_to_slot(args.slot)
            sample = spec.acquire(it, averages=args.averages)
            progress.advance(task)
        wl = spec.wavelengths_nm()
        keep = (wl >= args.wl_min) & (wl <= args.wl_max)
        num = sample - dark
        den = reference - dark
        with np.errstate(divide="ignore", invalid="ignore"):
            absorbance = -np.log10(np.clip(num, 1e-9, None) / np.clip(den, 1e-9, None))
        with out.open("w") as fh:
            fh.write("wavelength_nm,absorbance\n")
            for w, a in zip(wl[keep], absorbance[keep], strict=True):
                fh.write(f"{w:.3f},{a:.6f}\n")
        meta = _metadata(
            station,
            film,
            args,
            {
                "anneal": anneal_info,
                "integration_time_s": it,
                "averages": args.averages,
                "reference": f"blank fused silica, slot {world.blank_slot.index}",
                "reference_saturated": saturated_ref,
            },
        )
        _write_json(out, meta)
    finally:
        station.close()
    print(f"wrote {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0
