"""Longer fuzz run of the text-protocol simulators (SR830, ESP301, PM100).

Each case builds a byte stream (random bytes, command-like tokens, overlong lines),
feeds it to a fresh simulator in random fragments, then sends a line terminator and
the instrument's identity query. A case fails if the simulator raises, a reply is not
well formed (printable ASCII lines, each ``\\n``-terminated, at most 512 characters),
the identity query is not answered correctly, or more than an input buffer's worth of
bytes is left held for the client. Prints cases tried and failures per simulator
(with the first few failing inputs); the last line is one JSON object
``{"cases": N, "seed": S, "simulators": {"sr830": {"cases": …, "failures": …}, …},
"failures": total}``. Exit code 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from labctl.clock import VirtualClock
from labctl.simulators.esp301 import FIRMWARE_VERSION, ESP301Simulator
from labctl.simulators.pm100 import PM100Simulator
from labctl.simulators.sr830 import SR830Simulator
from labctl.simulators.world import World

SIMULATORS = {
    "sr830": (
        lambda w: SR830Simulator(w, name="li"),
        b"*IDN?\n",
        lambda r: r.startswith("Stanford_Research_Systems,SR830,"),
        ["*IDN?", "*RST", "*CLS", "*ESR?", "OUTP?", "SNAP?", "PHAS", "SENS", "OFLT", "OFSL",
         "HARM", "FREQ", "AGAN", "APHS", "ARSV", "DDEF", "OEXP", "AUXV", "LIAS?", "FMOD",
         "SLVL", "RMOD", "*STB?", "ERRS?"],
    ),
    "esp301": (
        lambda w: ESP301Simulator(w, name="stages"),
        b"VE?\r",
        lambda r: r == FIRMWARE_VERSION,
        ["1PA", "2PR", "3TP?", "1MD?", "MO", "MF", "1OR", "1DH", "1SL", "1SR", "1SN", "TE?",
         "TB?", "VE?", "RS", "AB", "1VA", "1AC", "1AG", "WS", "WT", "1ID?", "ST", "1DP?"],
    ),
    "pm100": (
        lambda w: PM100Simulator(w, name="pm"),
        b"*IDN?\n",
        lambda r: r.startswith("THORLABS,PM100USB,"),
        ["*IDN?", "*RST", "*CLS", "SYST:ERR?", "SENS:CORR:WAV", "CORR:WAV?", "MEAS:POW?",
         "SENS:AVER:COUN", "POW:RANG:AUTO", "SENS:POW:UNIT", "FETC?", "INIT", "*ESR?",
         "*ESE", "*SRE?", "*STB?", "SYST:SENS:IDN?", "CONF:POW"],
    ),
}  # fmt: skip

NUMBERS = ["0", "1", "-1", "3.5", "1e308", "-1e-320", "nan", "inf", "99999999999", "1_0", ""]
SEPARATORS = [";", ",", " ", "?", "\n", "\r", "\r\n", "\t", ":"]


def make_stream(rng: random.Random, tokens: list[str]) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return rng.randbytes(rng.randrange(0, 4000))
    if kind < 0.4:  # an overlong line, possibly with a command after a ';'
        body = rng.choice([b"x", b"\xff", b"1PA10;", b"OUTP?1;"]) * rng.randrange(50, 20000)
        return body + rng.choice([b"", b";" + rng.choice(tokens).encode()])
    parts = []
    for _ in range(rng.randrange(0, 80)):
        r = rng.random()
        if r < 0.4:
            parts.append(rng.choice(tokens).encode())
        elif r < 0.6:
            parts.append(rng.choice(NUMBERS).encode())
        elif r < 0.9:
            parts.append(rng.choice(SEPARATORS).encode())
        else:
            parts.append(rng.randbytes(rng.randrange(1, 16)))
    return b"".join(parts)


def feed(sim, data: bytes, rng: random.Random) -> bytes:
    cuts = sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(rng.randrange(6)))})
    return b"".join(sim.handle(data[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))


def well_formed(reply: bytes) -> list[str]:
    if not reply:
        return []
    if not reply.endswith(b"\n"):
        raise AssertionError(f"unterminated reply {reply[-60:]!r}")
    lines = reply[:-1].split(b"\n")
    for line in lines:
        if not line or len(line) > 512 or not all(32 <= b < 127 for b in line):
            raise AssertionError(f"malformed reply line {line[:60]!r}")
    return [line.decode("ascii") for line in lines]


def one_case(world, name: str, rng: random.Random) -> str | None:
    """None if the case passed, else what went wrong."""
    make, query, correct, tokens = SIMULATORS[name]
    data = make_stream(rng, tokens)
    sim = make(world)
    try:
        well_formed(feed(sim, data, rng))
        lines = well_formed(sim.handle(rng.choice([b"\n", b"\r", b"\r\n"]) + query))
        if not lines or not correct(lines[-1]):
            return f"identity query answered {lines[-1:]!r} after {data[:60]!r}…"
        held = sum(len(s.data) for s in sim._inputs.values())
        if held > sim.input_buffer_size:
            return f"{held} bytes held after {data[:60]!r}…"
    except Exception as exc:  # the point of fuzzing: report, do not stop
        return f"{type(exc).__name__}: {exc} for {data[:60]!r}…"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=5000, help="cases per simulator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=list(SIMULATORS), nargs="+", default=list(SIMULATORS))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    summary: dict[str, dict] = {}
    for name in args.only:
        world = World(VirtualClock(), seed=args.seed, noise=False)
        failures: list[str] = []
        t0 = time.perf_counter()
        for _ in range(args.cases):
            problem = one_case(world, name, rng)
            if problem is not None:
                failures.append(problem)
        elapsed = time.perf_counter() - t0
        summary[name] = {"cases": args.cases, "failures": len(failures), "s": round(elapsed, 2)}
        print(f"{name:7s} {args.cases} cases, {len(failures)} failures, {elapsed:.1f} s")
        for problem in failures[:5]:
            print(f"    {problem}")
    total = sum(s["failures"] for s in summary.values())
    print(
        json.dumps(
            {"cases": args.cases, "seed": args.seed, "simulators": summary, "failures": total}
        )
    )
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
