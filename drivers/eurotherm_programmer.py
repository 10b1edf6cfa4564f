"""Eurotherm 2408/2416 programmer: ramp/dwell programs stored and run on the controller.

The furnace runs its anneal on the controller's own programmer, so a dead PC
leaves a furnace that finishes its program (or holds its setpoint), never one
heating without a supervisor. A program is a list of segments
(:class:`Ramp`, :class:`Dwell`, :class:`End`; :class:`Step` is refused: an
unlimited rate). Every target and rate is checked against the safety limits
and encoded before anything is written; the stored words are read back and
compared. :meth:`Programmer.program_progress` reads back where the programmer
is by its own account (segment, type, dwell time run), never from a
temperature window. Program data layout (base 8192, 136 words per program, 8 per
segment) as in ``docs/instruments/eurotherm.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from labctl.drivers.eurotherm_registers import (
    PROGRAM_BASE,
    PROGRAM_STRIDE,
    RATE_UNIT_SECONDS,
    SEGMENT_WORDS,
    ProgramStatus,
    is_number,
)
from labctl.errors import InstrumentError, SafetyLimitError

log = logging.getLogger("labctl.drivers.eurotherm")

MAX_WRITE_WORDS = 120  # 15 blocks of 8 words per function-16 request
HOLDBACK_TYPES = {"low": 1, "high": 2, "band": 3}


@dataclass(frozen=True)
class Ramp:
    """Ramp at ``rate_c_per_min`` to ``target_c`` (segment type "ramp rate")."""

    rate_c_per_min: float
    target_c: float


@dataclass(frozen=True)
class Dwell:
    """Hold the current setpoint for ``minutes``."""

    minutes: float


@dataclass(frozen=True)
class Step:
    """Jump the setpoint to ``target_c`` (refused when a maximum ramp rate is configured)."""

    target_c: float


@dataclass(frozen=True)
class End:
    """End of program: hold the last setpoint (default) or ``reset`` the programmer."""

    reset: bool = False


Segment = Ramp | Dwell | Step | End


class SegmentType(IntEnum):
    """Register 29 and word 0 of a segment block: the segment's type."""

    END = 0
    RAMP_RATE = 1
    RAMP_TIME = 2
    DWELL = 3
    STEP = 4
    CALL = 5


@dataclass(frozen=True)
class ProgramProgress:
    """Where the controller's programmer is in its program, by its own account."""

    status: ProgramStatus
    program: int
    segment: int  # 0 in reset
    segment_type: SegmentType
    segment_time_remaining_s: float
    dwell_done_s: float  # the dwell segments' time run so far (programmer's clock)
    past_dwell: bool  # a dwell segment is behind: the cooling segment (or the end) reached

    @property
    def known(self) -> bool:
        """False in reset: the programmer keeps no account of a reset program."""
        return self.status != ProgramStatus.RESET


class Programmer:
    """Load, run, hold, reset and wait for controller programs (mixin of the driver)."""

    def _program_words(
        self, segments: Sequence[Segment], holdback_c: float | None, holdback_type: int = 1
    ) -> tuple[list[int], int]:
        """Validate a program against the safety limits and encode it (nothing is sent)."""
        segs = list(segments)
        if not segs:
            raise InstrumentError(self.name, "a program needs at least one segment")
        for i, seg in enumerate(segs):
            if not isinstance(seg, Ramp | Dwell | Step | End):
                raise InstrumentError(self.name, f"segment {i + 1}: {seg!r} is not a segment")
            if isinstance(seg, End) and i != len(segs) - 1:
                raise InstrumentError(self.name, f"segment {i + 1}: End must be the last segment")
        if not isinstance(segs[-1], End):
            segs.append(End())
        if len(segs) > self.max_segments:
            raise InstrumentError(
                self.name,
                f"program has {len(segs)} segments (with End); the controller holds {self.max_segments}",
            )
        words_of: dict[int, list[int]] = {}
        for i, seg in enumerate(segs, start=1):
            if isinstance(seg, Ramp):
                self.check_ramp_rate(seg.rate_c_per_min, f"segment {i} ramp rate")
                target = self._encode_setpoint(seg.target_c, f"segment {i} target")
                rate = self._encode_rate(seg.rate_c_per_min, f"segment {i} ramp rate", 60.0)
                words_of[i] = [target, rate]
            elif isinstance(seg, Step):
                self.check_setpoint(seg.target_c, f"segment {i} step target")
                raise SafetyLimitError(
                    self.name,
                    f"segment {i}: a step is an unlimited ramp rate, above max_ramp_c_per_min = "
                    f"{self.max_ramp_c_per_min:g} °C/min; use Ramp; nothing was written",
                )
            elif isinstance(seg, Dwell):
                if not (is_number(seg.minutes) and math.isfinite(seg.minutes) and seg.minutes >= 0):
                    raise InstrumentError(self.name, f"segment {i}: dwell {seg.minutes!r} min")
            elif not isinstance(seg.reset, bool):
                raise InstrumentError(self.name, f"segment {i}: End(reset={seg.reset!r})")
        holdback_word = 0
        if holdback_c is not None:
            if not (is_number(holdback_c) and math.isfinite(holdback_c) and holdback_c > 0):
                raise SafetyLimitError(
                    self.name, f"holdback band must be a number > 0 °C, got {holdback_c!r}"
                )
            holdback_word = self.encode_word(holdback_c, "temperature", "holdback band")
            if holdback_word == 0:
                raise SafetyLimitError(
                    self.name,
                    f"holdback band {holdback_c:g} °C would be written as 0 at "
                    f"{self.decimal_places} decimal places; nothing was written",
                )
        longest_s = max((s.minutes * 60 for s in segs if isinstance(s, Dwell)), default=0.0)
        dwell_units, dwell_scale = (0, 60.0) if longest_s <= 65535 else (1, 1.0)
        if longest_s / 60.0 * dwell_scale > 65535:
            raise InstrumentError(self.name, "a dwell longer than 65535 min cannot be programmed")
        general = [
            holdback_type if holdback_c is not None else 0,  # holdback: none/low/high/band
            holdback_word,
            1,  # ramp units: per minute (the rate words above are per minute)
            dwell_units,  # dwell units: seconds or minutes
            1,  # one cycle
            0,
            0,
            0,
        ]
        words = list(general)
        for i, seg in enumerate(segs, start=1):
            block = [0] * SEGMENT_WORDS
            if isinstance(seg, Ramp):
                block[:3] = [1, *words_of[i]]
            elif isinstance(seg, Dwell):
                block[:2] = [3, int(round(seg.minutes * dwell_scale))]
            elif isinstance(seg, End):
                block[:4] = [0, 0, 0, 1 if seg.reset else 0]
            words += block
        return words, len(segs)

    def load_program(
        self,
        segments: Iterable[Segment],
        program: int = 1,
        *,
        holdback_c: float | None = None,
        holdback: str = "low",
    ) -> None:
        """Validate and store a ramp/dwell program in the controller, then read it back.

        Every target is checked against the setpoint limits and every rate
        against ``max_ramp_c_per_min`` before anything is written. An ``End``
        is appended if missing. ``holdback_c`` enables holdback: the programmer
        waits while PV is more than this below (``"low"``, the heating case),
        above (``"high"``) or either side of (``"band"``) the programmed
        setpoint, so the sample follows the programmed profile.
        """
        if not isinstance(holdback, str) or holdback not in HOLDBACK_TYPES:
            raise InstrumentError(
                self.name, f"holdback must be one of {sorted(HOLDBACK_TYPES)}, got {holdback!r}"
            )
        self._check_program_number(program)
        try:
            segments = list(segments)
        except TypeError:
            raise InstrumentError(
                self.name, f"segments must be a list of Ramp/Dwell/End, got {segments!r}"
            ) from None
        base = PROGRAM_BASE + PROGRAM_STRIDE * program
        with self.lock:
            self.refresh_scaling()
            words, n = self._program_words(segments, holdback_c, HOLDBACK_TYPES[holdback])
            state = self.program_status
            if state in (ProgramStatus.RUN, ProgramStatus.HOLD, ProgramStatus.HOLDBACK):
                if self.program_number == program:
                    raise InstrumentError(
                        self.name, f"program {program} is {state.name.lower()}; reset it first"
                    )
            for offset in range(0, len(words), MAX_WRITE_WORDS):
                self._write_words(base + offset, words[offset : offset + MAX_WRITE_WORDS])
            back: list[int] = []
            for offset in range(0, len(words), MAX_WRITE_WORDS):
                chunk = words[offset : offset + MAX_WRITE_WORDS]
                back += self._read_words(base + offset, len(chunk))
            if back != words:
                raise InstrumentError(
                    self.name, f"program {program} read back differs from written"
                )
        log.info("%s: program %d loaded (%d segments)", self.name, program, n)

    def _check_program_number(self, program: Any) -> None:
        if not (isinstance(program, int) and not isinstance(program, bool) and program >= 1):
            raise InstrumentError(self.name, f"program number must be an int >= 1, got {program!r}")

    def run_program(self, program: int = 1) -> None:
        """Run ``program`` (from reset or complete; resumes it from hold)."""
        self._check_program_number(program)
        with self.lock:
            self.refresh_scaling()  # so that what is read while it runs is scaled right
            state = self.program_status
            current = self.program_number
            if state in (ProgramStatus.RUN, ProgramStatus.HOLDBACK) and current == program:
                return
            if state == ProgramStatus.HOLD and current == program:
                self._write_word(23, ProgramStatus.RUN)
                return
            if state in (ProgramStatus.RUN, ProgramStatus.HOLD, ProgramStatus.HOLDBACK):
                raise InstrumentError(
                    self.name, f"program {current} is {state.name.lower()}; reset it first"
                )
            if state == ProgramStatus.COMPLETE:
                self._write_word(23, ProgramStatus.RESET)
            self._write_word(22, program)
            self._write_word(23, ProgramStatus.RUN)

    def hold_program(self) -> None:
        self._write_word(23, ProgramStatus.HOLD)

    def reset_program(self) -> None:
        self._write_word(23, ProgramStatus.RESET)

    @property
    def program_time_remaining_s(self) -> float:
        """Time left in the running program (register 58, whole minutes), s."""
        return self._read_word(58) * 60.0

    def wait_for_program(
        self,
        poll_s: float = 10.0,
        timeout_s: float | None = None,
        max_deviation_c: float | None = None,
        on_poll: Callable[[dict], None] | None = None,
    ) -> ProgramStatus:
        """Poll (through the clock) until the program completes or is reset.

        Interlocks are checked at every poll (:meth:`check_interlocks`); a
        trip raises :class:`FurnaceInterlock` and leaves the furnace as it is
        (the caller decides on :meth:`safe_state`).
        """
        start = self.clock.now()
        while True:
            reading = self.check_interlocks(max_deviation_c)
            state = self.program_status
            reading["program_status"] = state
            if on_poll is not None:
                on_poll(reading)
            if state in (ProgramStatus.COMPLETE, ProgramStatus.RESET):
                return state
            if timeout_s is not None and self.clock.now() - start > timeout_s:
                raise InstrumentError(
                    self.name, f"program still {state.name.lower()} after {timeout_s:g} s"
                )
            self.clock.sleep(poll_s)

    def program_progress(self) -> ProgramProgress:
        """The programmer's own account of the program it runs (nothing is written).

        Registers 23 (status), 22 (program), 56 (segment number), 29 (current
        segment type) and 36 (segment time remaining, s), and the running
        program's segment blocks up to the current one (their types and dwell
        durations, from program memory). The dwell done is the controller's
        clock, not a temperature window: the durations of the dwell segments
        passed plus the elapsed part of the current one. In reset the
        programmer has forgotten the program: segment 0, nothing known.
        """
        with self.lock:
            status = self.program_status
            program = self.program_number
            if status == ProgramStatus.RESET:
                return ProgramProgress(status, program, 0, SegmentType.END, 0.0, 0.0, False)
            segment = self.segment
            seg_type = SegmentType(self._read_word(29))
            remaining_s = float(self._read_word(36))
            base = PROGRAM_BASE + PROGRAM_STRIDE * program
            count = SEGMENT_WORDS * (segment + 1)  # general block + segments 1..current
            words: list[int] = []
            for offset in range(0, count, MAX_WRITE_WORDS):
                words += self._read_words(base + offset, min(MAX_WRITE_WORDS, count - offset))
        unit_s = RATE_UNIT_SECONDS.get(words[3], 60.0)  # general word 3: dwell units
        dwell_done_s, dwell_passed = 0.0, False
        for i in range(1, segment + 1):
            block = words[SEGMENT_WORDS * i : SEGMENT_WORDS * (i + 1)]
            if block[0] != SegmentType.DWELL:
                continue
            duration_s = block[1] * unit_s
            if i < segment or status == ProgramStatus.COMPLETE:
                dwell_done_s += duration_s
                dwell_passed = True
            else:
                dwell_done_s += max(duration_s - remaining_s, 0.0)
        past = dwell_passed and (seg_type != SegmentType.DWELL or status == ProgramStatus.COMPLETE)
        return ProgramProgress(status, program, segment, seg_type, remaining_s, dwell_done_s, past)
