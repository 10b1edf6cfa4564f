"""``labctl sim measure``: synthetic measurements through the simulated instruments.

``labctl sim measure tds --anneal-c T --out FILE.csv`` and
``labctl sim measure absorption --anneal-c T --out FILE.csv`` build the
simulated station in-process on virtual time and run the lab's procedures on
it, as ``labctl run`` would: ``Anneal`` (the paper's recipe on the furnace
controller's own programmer) on a fresh film, then ``TDS`` (THz peak, OPTP
peak, pump parked 0.2 ps after it, gate scanned sweep by sweep) or
``Absorption`` (dark, blank, film). Their run files are kept beside FILE:
``FILE.anneal.csv`` and ``FILE.tds.csv`` (or ``FILE.absorption.csv``), each
with its ``.json`` run summary; FILE.csv is made from the measurement's run file,
and FILE.json holds the simulator's truth.

* tds: FILE.csv ``time_ps,E_ref,dE,sweep``, the complete sweeps one after another —
  what ``labctl analyze tds`` reads, with errors from the sweeps' scatter (one trace
  has only its baseline: a lower bound);
* absorption: FILE.csv ``wavelength_nm,absorbance`` (saturated pixels left out).

Beside FILE.csv, FILE.json holds thickness, substrate index, pump fluence, what
the procedures concluded and the simulator's true parameters (distance, τ, c,
N, …) for checking analyses. A rerun replaces FILE.csv, FILE.json and the run
files. The measurement itself lives in ``labctl.procedures`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Run files beside FILE.csv: FILE.<kind>.csv with FILE.<kind>.json.
ANNEAL, TDS, ABSORPTION = "anneal", "tds", "absorption"
#: Anneal rows (PV, SP, OP, segment) every this many virtual seconds.
ANNEAL_RECORD_S = 600.0


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
            "--out",
            required=True,
            metavar="FILE.csv",
            help="output CSV (FILE.json and the run files FILE.anneal.csv, FILE.KIND.csv beside it)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    t = msub.add_parser("tds", help="THz-TDS pair 0.2 ps after the OPTP peak (time_ps,E_ref,dE)")
    common(t)
    t.add_argument("--t-start-ps", type=float, default=-4.0, help="first gate delay, ps")
    t.add_argument(
        "--t-stop-ps", type=float, default=12.0, help="last gate delay (before the 13 ps echo), ps"
    )
    t.add_argument("--step-ps", type=float, default=0.05, help="gate step, ps")
    t.add_argument(
        "--sweeps", type=int, default=4, help="sweeps, each kept in FILE.csv (default 4)"
    )
    t.add_argument("--time-constant-s", type=float, default=0.1, help="lock-in time constant, s")
    t.add_argument(
        "--optp-peak-ps",
        type=float,
        default=None,
        help="pump delay of the OPTP peak, ps (default: found by the alignment, which refuses "
        "a peak not above the noise — on a real floor, films below ~350 °C)",
    )
    t.set_defaults(func=measure_tds)

    a = msub.add_parser("absorption", help="absorbance spectrum (wavelength_nm,absorbance)")
    common(a)
    a.add_argument(
        "--integration-ms", type=float, default=100.0, help="spectrometer integration time, ms"
    )
    a.add_argument("--averages", type=int, default=10, help="scans averaged per spectrum")
    a.add_argument("--wl-min", type=float, default=380.0, help="shortest wavelength written, nm")
    a.add_argument("--wl-max", type=float, default=850.0, help="longest wavelength written, nm")
    a.set_defaults(func=measure_absorption)


# --------------------------------------------------------------------------- station and runs
def _check_out(path: str) -> Path:
    from labctl.errors import LabctlError

    out = Path(path)
    if out.suffix.lower() != ".csv":
        raise LabctlError(f"--out {path}: the data file must end in .csv")
    if not out.parent.exists():
        raise LabctlError(f"--out {path}: directory {out.parent} does not exist")
    return out


def run_file(out: Path, kind: str) -> Path:
    """``FILE.csv`` → ``FILE.<kind>.csv``, the run file of procedure ``kind``."""
    return out.with_suffix(f".{kind}.csv")


def _sim_station(args, measure_roles: tuple[str, ...]):
    """One in-process simulated station on virtual time: furnace, stages and the measuring
    instruments (the lock-in simulators idle cheaply through the anneal)."""
    from dataclasses import replace

    from labctl.errors import StationError
    from labctl.station import Station, load_station_spec

    spec = load_station_spec(args.station)
    needed = ("furnace", "stages", *measure_roles)
    missing = [r for r in needed if r not in spec.instruments]
    if missing:
        raise StationError(
            f"{spec.source}: 'sim measure {args.measure_kind}' needs instruments {missing}"
        )
    if not all(spec.instruments[r].simulated_in_process for r in needed):
        raise StationError(
            f"{spec.source}: 'sim measure' needs in-process simulators (address sim://)"
        )
    noise = "off" if args.noise_free else getattr(args, "noise", "realistic")
    spec = replace(
        spec,
        instruments={r: spec.instruments[r] for r in needed},
        simulation=dict(spec.simulation, seed=args.seed, noise=noise != "off" and noise),
    )
    return Station(spec, time_scale="virtual")


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


def _run(procedure, path: Path, station, quiet: bool):
    """Run one procedure into ``path`` (replacing an earlier run there); a failure is a
    one-line LabctlError that names the kept data."""
    from labctl.cli.run import _Display
    from labctl.errors import LabctlError
    from labctl.runs import run_procedure, summary_path

    for old in (path, summary_path(path)):
        old.unlink(missing_ok=True)
    with _Display(procedure.KIND, quiet=quiet) as display:
        outcome = run_procedure(procedure, path, station=station, on_emit=display.on_emit)
    if not outcome.ok:
        raise LabctlError(
            f"{procedure.KIND} {outcome.status}: {outcome.message} "
            f"(data kept: {path}, {outcome.points} rows)"
        )
    return outcome


def _anneal(station, args, out: Path) -> dict:
    """The Anneal procedure on the film of ``args.slot``; its run results."""
    from labctl.procedures.anneal import Anneal

    procedure = Anneal(
        slot=args.slot,
        sample_id=f"sim slot {args.slot}",
        anneal_c=args.anneal_c,
        dwell_min=args.dwell_min,
        ramp_c_per_min=args.ramp_c_per_min,
        ambient_c=float(station.world.furnace.ambient_c),
        # a row every 10 virtual minutes: each Modbus exchange waits its silent interval in
        # real time (minimalmodbus), which rows every minute would add up to seconds
        record_interval_s=ANNEAL_RECORD_S,
    )
    return _run(procedure, run_file(out, ANNEAL), station, args.quiet).results


def _metadata(station, film, args, extra: dict) -> dict:
    """The simulated sample and table, and the simulator's truth (read from the world)."""
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
        "noise": world.noise,
        "slot": args.slot,
        "params_version": world.params.version,
        "true": world.true_parameters(film),
        **extra,
    }


def _write_json(out: Path, meta: dict) -> None:
    from labctl.runs import _finite

    out.with_suffix(".json").write_text(
        json.dumps(_finite(meta), indent=2, sort_keys=True, default=float) + "\n"
    )


# --------------------------------------------------------------------------- TDS
def measure_tds(args: argparse.Namespace) -> int:
    from labctl.cli.run import _quiet_logs

    with _quiet_logs():
        return _run_tds(args)


def _run_tds(args: argparse.Namespace) -> int:
    from labctl.analysis.io import load_tds_csv, write_tds_csv
    from labctl.errors import LabctlError
    from labctl.procedures.tds import TDS as TDSProcedure

    out = _check_out(args.out)
    if args.sweeps < 1 or not args.step_ps > 0 or not args.t_stop_ps > args.t_start_ps:
        raise LabctlError("need sweeps ≥ 1, step > 0 and t-stop > t-start")
    station = _sim_station(args, ("lockin_ref", "lockin_pump"))
    try:
        world = station.world
        film = _film_in_slot(station, args.slot)
        anneal = _anneal(station, args, out)
        procedure = TDSProcedure(
            slot=args.slot,
            sample_id=f"sim slot {args.slot}",
            t_start_ps=args.t_start_ps,
            t_stop_ps=args.t_stop_ps,
            step_ps=args.step_ps,
            min_sweeps=args.sweeps,
            max_sweeps=args.sweeps,
            time_constant_s=args.time_constant_s,
            optp_peak_ps=args.optp_peak_ps,
            # the sample and table as the operator would enter them (here: the world's)
            film_thickness_nm=film.thickness_nm,
            substrate_index=float(world.params.table["substrate_index"]),
            effective_mass=float(world.params.photo["effective_mass"]),
            pump_offset_ps=float(world.params.photo["tds_delay_after_peak_ps"]),
        )
        tds_file = run_file(out, TDS)
        r = _run(procedure, tds_file, station, args.quiet).results
        data = load_tds_csv(tds_file)
        sweeps = data.e_ref_sweeps is not None
        write_tds_csv(
            out,
            data.time_ps,
            data.e_ref_sweeps if sweeps else data.e_ref,
            data.delta_e_sweeps if sweeps else data.delta_e,
        )
        meta = _metadata(
            station,
            film,
            args,
            {
                "runs": {ANNEAL: run_file(out, ANNEAL).name, TDS: tds_file.name},
                "anneal": anneal,
                "columns": {
                    "time_ps": "gate delay, ps",
                    "E_ref": "X_ref − X_pump, V (one complete sweep per 'sweep')",
                    "dE": "2·X_pump, V (one complete sweep per 'sweep')",
                    "sweep": "sweep number, 1 … n (absent for a single sweep)",
                },
                "gate_peak_ps": r.get("thz_peak_ps"),
                "optp_peak_delay_ps": r.get("optp_peak_ps"),
                "tds_pump_delay_ps": r.get("tds_pump_delay_ps"),
                "true_optp_peak_delay_ps": world.optp_peak_delay_ps(),
                "sweeps": data.n_sweeps,
                "time_constant_s": args.time_constant_s,
                "overloads": r.get("overloads", []),
                "optp_scan": r.get("optp_peak_search"),
                "live_fit": r.get("fit"),
                "live_fit_noise_source": r.get("noise_source"),
            },
        )
        _write_json(out, meta)
    finally:
        station.close()
    print(f"wrote {out} and {out.with_suffix('.json')} (runs: {tds_file.name})", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- absorption
def measure_absorption(args: argparse.Namespace) -> int:
    from labctl.cli.run import _quiet_logs

    with _quiet_logs():
        return _run_absorption(args)


def _run_absorption(args: argparse.Namespace) -> int:
    import pandas as pd  # pymeasure's own dependency

    from labctl.analysis.io import write_absorption_csv
    from labctl.errors import LabctlError
    from labctl.procedures.absorption import Absorption

    out = _check_out(args.out)
    if args.averages < 1 or not args.integration_ms > 0:
        raise LabctlError("need averages ≥ 1 and a positive integration time")
    station = _sim_station(args, ("spectrometer",))
    try:
        world = station.world
        film = _film_in_slot(station, args.slot)
        anneal = _anneal(station, args, out)
        procedure = Absorption(
            slot=args.slot,
            sample_id=f"sim slot {args.slot}",
            integration_time_ms=args.integration_ms,
            averages=args.averages,
            reference_slot=world.blank_slot.index,
            wavelength_min_nm=args.wl_min,
            wavelength_max_nm=args.wl_max,
        )
        abs_file = run_file(out, ABSORPTION)
        r = _run(procedure, abs_file, station, args.quiet).results
        # the run file's rows (pymeasure writes unmeasurable points as nan)
        rows = pd.read_csv(abs_file, comment="#")
        left_out = write_absorption_csv(out, rows["wavelength_nm"], rows["absorbance"])
        meta = _metadata(
            station,
            film,
            args,
            {
                "runs": {ANNEAL: run_file(out, ANNEAL).name, ABSORPTION: abs_file.name},
                "anneal": anneal,
                "integration_time_s": args.integration_ms / 1000.0,
                "averages": args.averages,
                "reference": f"blank fused silica, slot {world.blank_slot.index}",
                "reference_saturated": bool(r.get("saturated_pixels", {}).get("reference")),
                "points_without_absorbance": left_out,
                "results": {k: r.get(k) for k in ("hh_nm", "lh_nm", "tauc_gap_ev", "warnings")},
            },
        )
        _write_json(out, meta)
    finally:
        station.close()
    print(f"wrote {out} and {out.with_suffix('.json')} (runs: {abs_file.name})", file=sys.stderr)
    return 0
