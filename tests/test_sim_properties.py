"""Property-based tests of the text-protocol simulators (SR830, ESP301, PM100).

For any byte stream, in any fragmentation: the simulator never raises, every reply is
well formed (printable ASCII lines, each terminated, bounded), and a valid query sent
after the garbage and a line terminator is answered correctly. A longer run with more
cases: ``benchmarks/fuzz_simulators.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.clock import VirtualClock
from labctl.simulators.esp301 import FIRMWARE_VERSION, ESP301Simulator
from labctl.simulators.pm100 import PM100Simulator
from labctl.simulators.sr830 import SR830Simulator
from labctl.simulators.world import World

#: (factory, identity query, check of its reply, tokens that make up plausible commands)
SIMULATORS = {
    "sr830": (
        lambda w: SR830Simulator(w, name="li"),
        b"*IDN?\n",
        lambda r: r.startswith("Stanford_Research_Systems,SR830,"),
        ["*IDN?", "*RST", "*CLS", "*ESR?", "OUTP?", "SNAP?", "PHAS", "SENS", "OFLT", "HARM",
         "FREQ", "AGAN", "APHS", "DDEF", "OEXP", "AUXV", "LIAS?", "FMOD"],
    ),
    "esp301": (
        lambda w: ESP301Simulator(w, name="stages"),
        b"VE?\r",
        lambda r: r == FIRMWARE_VERSION,
        ["1PA", "2PR", "3TP?", "1MD?", "MO", "MF", "1OR", "1DH", "1SL", "1SR", "1SN",
         "TE?", "TB?", "VE?", "RS", "AB", "1VA", "1AC", "WS", "1ID?", "ST"],
    ),
    "pm100": (
        lambda w: PM100Simulator(w, name="pm"),
        b"*IDN?\n",
        lambda r: r.startswith("THORLABS,PM100USB,"),
        ["*IDN?", "*RST", "*CLS", "SYST:ERR?", "SENS:CORR:WAV", "CORR:WAV?", "MEAS:POW?",
         "SENS:AVER:COUN", "POW:RANG:AUTO", "SENS:POW:UNIT", "FETC?", "INIT", "*ESR?"],
    ),
}  # fmt: skip

NUMBERS = ["0", "1", "-1", "3.5", "1e308", "-1e-320", "nan", "inf", "99999999999", "1_0", ""]
SEPARATORS = [";", ",", " ", "?", "\n", "\r", "\r\n", "\t"]


def new_world() -> World:
    """One world per test (building one takes ~50 ms); a fresh simulator per example."""
    return World(VirtualClock(), seed=0, noise=False)


def plausible(name: str):
    """Byte streams of command-like tokens, numbers, separators and raw bytes."""
    tokens = SIMULATORS[name][3]
    piece = st.one_of(
        st.sampled_from(tokens).map(str.encode),
        st.sampled_from(NUMBERS).map(str.encode),
        st.sampled_from(SEPARATORS).map(str.encode),
        st.binary(max_size=24),
    )
    return st.lists(piece, max_size=60).map(b"".join)


def streams(name: str):
    return st.one_of(st.binary(max_size=3000), plausible(name))


def feed(sim, data: bytes, cuts: list[int]) -> bytes:
    """``data`` in pieces cut at ``cuts`` (as TCP may deliver it); the concatenated reply."""
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return b"".join(sim.handle(data[a:b]) for a, b in zip(edges, edges[1:], strict=False))


def check_well_formed(reply: bytes) -> list[str]:
    """Reply lines: printable ASCII, non-empty, bounded, each terminated by ``\\n``."""
    if not reply:
        return []
    assert reply.endswith(b"\n"), reply[-80:]
    lines = reply[:-1].split(b"\n")
    for line in lines:
        assert line, reply[:200]
        assert len(line) <= 512, line[:80]
        assert all(32 <= b < 127 for b in line), line[:80]
    return [line.decode("ascii") for line in lines]


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("name", list(SIMULATORS))
def test_any_stream_never_crashes_and_replies_are_well_formed(name):
    world, make = new_world(), SIMULATORS[name][0]

    @PROPERTY_SETTINGS
    @given(data=streams(name), cuts=st.lists(st.integers(0, 10_000), max_size=6))
    def run(data, cuts):
        sim = make(world)
        check_well_formed(feed(sim, data, cuts))

    run()


@pytest.mark.parametrize("name", list(SIMULATORS))
def test_valid_query_after_garbage_and_terminator_is_answered(name):
    make, query, correct, _ = SIMULATORS[name]
    world = new_world()

    @PROPERTY_SETTINGS
    @given(
        garbage=streams(name),
        terminator=st.sampled_from([b"\n", b"\r", b"\r\n"]),
        cuts=st.lists(st.integers(0, 10_000), max_size=6),
    )
    def run(garbage, terminator, cuts):
        sim = make(world)
        lines = check_well_formed(feed(sim, garbage + terminator + query, cuts))
        assert lines and correct(lines[-1]), lines[-3:]

    run()


@pytest.mark.parametrize("name", list(SIMULATORS))
def test_overflowing_garbage_then_valid_line_is_answered(name):
    make, query, correct, _ = SIMULATORS[name]
    world = new_world()

    @settings(max_examples=25, deadline=None)
    @given(
        garbage=st.binary(min_size=1, max_size=64).filter(
            lambda b: b"\n" not in b and b"\r" not in b
        ),
        repeat=st.integers(20, 400),
    )
    def run(garbage, repeat):
        sim = make(world)
        long_line = garbage * repeat  # ≥ 1 kB without a terminator: overflows every model
        long_line += b"x" * max(0, sim.input_buffer_size + 1 - len(long_line))
        assert sim.handle(long_line + b";" + query) == b""  # discarded, query included
        lines = check_well_formed(sim.handle(query))
        assert lines and correct(lines[-1])

    run()
