"""Eurotherm 2408/2416 controller/programmer: a Modbus RTU slave over the World's furnace.

Faithful to the 2000-series communications handbook (HA026230) as far as
the register map below goes; ``docs/instruments/eurotherm.md`` lists every
register, its scaling and what is simulated.

* Modbus RTU, functions 3/4 (read), 6 (write one), 16 (write many). CRC
  errors, unknown function codes and requests for other slave addresses get
  silence; broadcast (address 0) writes are executed without a reply.
  Exception 02 for an address the instrument does not have, 03 for a value
  it refuses (outside the setpoint limits, a read-only parameter, …).
* Values are 16-bit scaled integers: temperatures with the decimal places of
  register 525 (350.0 °C at 1 dp → 3500), output powers with one decimal,
  negative values in two's complement.
* The controller itself (PID, setpoint rate limit, programmer, sensor break)
  runs in the World's virtual time through ``world.add_controller``.
"""

from __future__ import annotations

import logging
import math
import threading

from labctl.simulators import modbus_rtu as rtu
from labctl.simulators.base import ProtocolHandler
from labctl.simulators.modbus_rtu import ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, Request

log = logging.getLogger(__name__)

#: an output this small is off: the PID's arithmetic leaves ~1e-15 % while the PV falls
_OUTPUT_OFF_PCT = 1e-9

# --- register addresses (2000-series handbook tags) ---------------------------
PV = 1
TARGET_SP = 2
OUTPUT = 3
WORKING_OUTPUT = 4
WORKING_SP = 5
PROP_BAND = 6
INTEGRAL_TIME = 8
DERIVATIVE_TIME = 9
RANGE_LOW = 11
RANGE_HIGH = 12
PROGRAM_NUMBER = 22
PROGRAM_STATUS = 23
SEGMENT_TYPE = 29
HIGH_POWER_LIMIT = 30
LOW_POWER_LIMIT = 31
SENSOR_BREAK_OUTPUT = 34
SP_RATE_LIMIT = 35
SEGMENT_TIME_REMAINING_S = 36
SEGMENT_NUMBER = 56
PROGRAMMER_STATE_WRITE = 57
PROGRAM_TIME_REMAINING_MIN = 58
PROGRAM_CYCLES_REMAINING = 59
SEGMENT_TIME_REMAINING_MIN = 63
STATUS_WORD = 75
EXTENDED_STATUS = 77
INSTRUMENT_VERSION = 107
SP1_HIGH_LIMIT = 111
SP1_LOW_LIMIT = 112
INSTRUMENT_IDENT = 122
SEGMENT_TARGET_SP = 160
SEGMENT_RAMP_RATE = 161
PROGRAMMER_SP = 163
MAX_SEGMENTS = 211
SENSOR_BREAK = 258
AUTO_MANUAL = 273
DECIMAL_PLACES = 525
SP_RATE_UNITS = 531
PROGRAM_BASE = 8192
PROGRAM_STRIDE = 136  # 17 blocks of 8 words: general data + 16 segments
SEGMENT_WORDS = 8

# --- enumerations ---------------------------------------------------------------
RESET, RUN, HOLD, HOLDBACK, COMPLETE = 1, 2, 4, 8, 16
SEG_END, SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_DWELL, SEG_STEP = 0, 1, 2, 3, 4
HOLDBACK_NONE, HOLDBACK_LOW, HOLDBACK_HIGH, HOLDBACK_BAND = 0, 1, 2, 3
END_DWELL, END_RESET = 0, 1
UNIT_SECONDS = {0: 1.0, 1: 60.0, 2: 3600.0}  # ramp/dwell/rate units: sec, min, hour

# status word 75 bits
SW_MANUAL = 1 << 4
SW_SENSOR_BREAK = 1 << 5
SW_PROGRAM_COMPLETE = 1 << 9
SW_PV_OUT_OF_RANGE = 1 << 10
# extended status word 77 bits (simulator subset, see docs)
XS_PROGRAM_RUNNING = 1 << 0
XS_PROGRAM_HOLD = 1 << 1
XS_PROGRAM_HOLDBACK = 1 << 2
XS_PROGRAM_END = 1 << 3

MODELS = {"2408": 0x2480, "2416": 0x2460}  # ident >ABCD: 2000 series, 2400, size, PID


class _Refused(Exception):
    """A request the instrument answers with a Modbus exception code."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


class Eurotherm2408Simulator(ProtocolHandler):
    """Eurotherm 2408 (or 2416) controller-programmer on Modbus RTU."""

    kind = "serial"
    #: Driver options of the station file ``labctl sim serve`` writes: served, this
    #: simulator finds request frames by their length (RtuRequestFramer), not by a gap.
    served_options = {"framing": "packet"}

    def __init__(
        self,
        world,
        name: str = "",
        address: int = 1,
        decimal_places: int = 1,
        *,
        model: str = "2408",
        programs: int = 20,
        segments: int = 16,
        proportional_band_c: float = 10.0,
        integral_time_s: float = 240.0,
        derivative_time_s: float = 40.0,
        input_filter_s: float = 1.6,
        setpoint_c: float | None = None,
    ) -> None:
        super().__init__(world, name)
        if not 1 <= int(address) <= 247:
            raise ValueError(f"{self.name}: Modbus slave address must be 1..247, got {address}")
        if model not in MODELS:
            raise ValueError(f"{self.name}: model must be one of {sorted(MODELS)}, got {model!r}")
        self.address = int(address)
        self.model = model
        self.n_programs = int(programs)
        self.n_segments = min(int(segments), PROGRAM_STRIDE // SEGMENT_WORDS - 1)
        self._framers: dict[object, rtu.RtuRequestFramer] = {}
        self._framers_lock = threading.Lock()
        furnace = world.furnace
        params = getattr(furnace, "p", {}) or {}
        # type K thermocouple input range
        self.range_low_c = float(params.get("range_min_c", -200.0))
        self.range_high_c = float(params.get("range_max_c", 1372.0))
        self.decimal_places = int(decimal_places)
        if self.decimal_places not in (0, 1, 2) or not self._dp_fits(self.decimal_places):
            raise ValueError(f"{self.name}: decimal_places {decimal_places} not representable")
        ambient = float(getattr(furnace, "ambient_c", 25.0))
        # configuration (register-backed)
        self.sp_high_c = self.range_high_c
        self.sp_low_c = max(self.range_low_c, 0.0)
        self.target_sp_c = ambient if setpoint_c is None else float(setpoint_c)
        self.rate_limit = 0.0  # display units per rate unit; 0 = off
        self.rate_units = 1  # per minute
        self.manual = False
        self.manual_op_pct = 0.0
        self.op_high_pct = 100.0
        self.op_low_pct = 0.0
        self.sensor_break_op_pct = 0.0
        self.pb_c = float(proportional_band_c)
        self.ti_s = float(integral_time_s)
        self.td_s = float(derivative_time_s)
        self.input_filter_s = float(input_filter_s)
        # controller state
        self.pv_c = float(furnace.thermocouple_c)
        self.wsp_c = self.pv_c
        self.output_pct = 0.0
        self._integral = 0.0
        self._d_filtered = 0.0
        self._last_error: float | None = None
        self._last_sample_t: float | None = None  # world time of the last input sample
        self._was_manual = False
        # programmer state
        # Program words as written, with the decimal places each was written at:
        # the controller keeps programs in engineering units, so a later change
        # of register 525 rescales what is read back instead of reinterpreting it.
        self._programs = [[0] * PROGRAM_STRIDE for _ in range(self.n_programs + 1)]
        self._program_dp = [[self.decimal_places] * PROGRAM_STRIDE for _ in self._programs]
        for p in range(self.n_programs + 1):
            self._programs[p][2] = 1  # ramp units: per minute
            self._programs[p][3] = 1  # dwell units: minutes
            self._programs[p][4] = 1  # one cycle
        self.program_number = 1
        self.prog_status = RESET
        self.seg_index = 0
        self.seg_elapsed_s = 0.0
        self.seg_start_sp = self.pv_c
        self.prog_sp_c = self.pv_c
        self.cycles_remaining = 0
        world.add_controller(
            self._control, at_rest=self._at_rest, coasts_above_c=self._coasts_above_c
        )

    def program_words(self, number: int) -> list[int]:
        """A copy of program ``number``'s words as the controller holds them (0: the working
        copy the programmer runs; 1…``n_programs``: the stored programs), as its front
        panel lists them: what a client wrote, or left alone."""
        if not 0 <= number <= self.n_programs:
            raise ValueError(f"no program {number} (0…{self.n_programs})")
        with self.lock:
            return list(self._programs[number])

    # ------------------------------------------------------------------ wire
    def handle(self, data: bytes, source: object = None) -> bytes:
        # Framing runs outside the instrument lock (each framer has its own), so
        # one client's garbage never delays another client's requests.
        with self._framers_lock:
            framer = self._framers.get(source)
            if framer is None:
                framer = self._framers[source] = rtu.RtuRequestFramer(self.address)
        try:
            requests = framer.feed(bytes(data))
        except Exception:  # never crash on garbage
            log.exception("%s: framing error; input discarded", self.name)
            framer.reset()
            return b""
        out = []
        for req in requests:
            with self.lock:
                try:
                    reply = self._serve(req)
                except Exception:
                    log.exception("%s: internal error on %s", self.name, req.raw.hex(" "))
                    reply = rtu.exception_reply(req.address, req.function, rtu.SLAVE_DEVICE_FAILURE)
            if reply:
                out.append(reply)
        return b"".join(out)

    def reset_input(self, source: object = None) -> None:
        with self._framers_lock:
            self._framers.pop(source, None)

    def _serve(self, req: Request) -> bytes:
        broadcast = req.address == rtu.BROADCAST_ADDRESS
        if not broadcast and req.address != self.address:
            return b""  # another slave on the bus
        if req.function not in rtu.SUPPORTED_FUNCTIONS:
            return b""  # our spec: unknown functions are ignored
        with self.world.lock:
            self.world.advance()
            try:
                if req.function in (rtu.READ_HOLDING_REGISTERS, rtu.READ_INPUT_REGISTERS):
                    if broadcast:
                        return b""
                    return self._read(req)
                if req.function == rtu.WRITE_SINGLE_REGISTER:
                    start = int.from_bytes(req.pdu[0:2], "big")
                    word = int.from_bytes(req.pdu[2:4], "big")
                    self._write_block(start, [word])
                else:
                    start = int.from_bytes(req.pdu[0:2], "big")
                    count = int.from_bytes(req.pdu[2:4], "big")
                    nbytes = req.pdu[4]
                    if not 1 <= count <= rtu.MAX_WRITE_REGISTERS or nbytes != 2 * count:
                        raise _Refused(ILLEGAL_DATA_VALUE, "register count/byte count mismatch")
                    words = [
                        int.from_bytes(req.pdu[5 + 2 * i : 7 + 2 * i], "big") for i in range(count)
                    ]
                    self._write_block(start, words)
            except _Refused as refused:
                log.debug("%s: exception %02d: %s", self.name, refused.code, refused)
                if broadcast:
                    return b""
                return rtu.exception_reply(req.address, req.function, refused.code)
        if broadcast:
            return b""
        if req.function == rtu.WRITE_SINGLE_REGISTER:
            return req.raw  # echo
        return rtu.with_crc(bytes([req.address, req.function]) + req.pdu[:4])

    def _read(self, req: Request) -> bytes:
        start = int.from_bytes(req.pdu[0:2], "big")
        count = int.from_bytes(req.pdu[2:4], "big")
        if not 1 <= count <= rtu.MAX_READ_REGISTERS:
            raise _Refused(ILLEGAL_DATA_VALUE, f"cannot read {count} registers")
        words = [self._read_word(a) for a in range(start, start + count)]
        return rtu.read_reply(req.address, req.function, words)

    # ------------------------------------------------------------ scaling
    def _dp_fits(self, dp: int) -> bool:
        return max(abs(self.range_high_c), abs(self.range_low_c)) * 10**dp <= 32767

    @staticmethod
    def _enc(value: float, decimals: int) -> int:
        raw = int(round(value * 10**decimals))
        return rtu.to_word(max(-32768, min(32767, raw)))

    @staticmethod
    def _dec(word: int, decimals: int) -> float:
        return rtu.to_signed(word) / 10**decimals

    def _t(self, value: float) -> int:  # a temperature (display units)
        return self._enc(value, self.decimal_places)

    def _t_in(self, word: int) -> float:
        return self._dec(word, self.decimal_places)

    # ------------------------------------------------------------ registers
    def _pv_reported(self) -> float:
        return self.range_high_c if self.world.furnace.sensor_broken else self.pv_c

    def _read_word(self, a: int) -> int:
        if a >= PROGRAM_BASE:
            p, k = divmod(a - PROGRAM_BASE, PROGRAM_STRIDE)
            if p > self.n_programs or k // SEGMENT_WORDS > self.n_segments:
                raise _Refused(ILLEGAL_DATA_ADDRESS, f"no program parameter at {a}")
            if _is_temperature_field(self._programs[p], k):
                return self._t(self._program_value(p, k))
            return self._programs[p][k]
        readers = {
            PV: lambda: self._t(self._pv_reported()),
            TARGET_SP: lambda: self._t(self.target_sp_c),
            OUTPUT: lambda: self._enc(self.output_pct, 1),
            WORKING_OUTPUT: lambda: self._enc(self.output_pct, 1),
            WORKING_SP: lambda: self._t(self.wsp_c),
            PROP_BAND: lambda: self._t(self.pb_c),
            INTEGRAL_TIME: lambda: self._enc(self.ti_s, 0),
            DERIVATIVE_TIME: lambda: self._enc(self.td_s, 0),
            RANGE_LOW: lambda: self._t(self.range_low_c),
            RANGE_HIGH: lambda: self._t(self.range_high_c),
            PROGRAM_NUMBER: lambda: self.program_number,
            PROGRAM_STATUS: lambda: self.prog_status,
            PROGRAMMER_STATE_WRITE: lambda: self.prog_status,
            SEGMENT_TYPE: lambda: self._current_segment()[0] if self._program_active() else 0,
            HIGH_POWER_LIMIT: lambda: self._enc(self.op_high_pct, 1),
            LOW_POWER_LIMIT: lambda: self._enc(self.op_low_pct, 1),
            SENSOR_BREAK_OUTPUT: lambda: self._enc(self.sensor_break_op_pct, 1),
            SP_RATE_LIMIT: lambda: self._t(self.rate_limit),
            SEGMENT_TIME_REMAINING_S: lambda: min(32767, math.ceil(self._segment_remaining_s())),
            SEGMENT_TIME_REMAINING_MIN: lambda: min(
                32767, math.ceil(self._segment_remaining_s() / 60.0)
            ),
            SEGMENT_NUMBER: lambda: self.seg_index if self._program_active() else 0,
            PROGRAM_TIME_REMAINING_MIN: lambda: min(
                32767, math.ceil(self._program_remaining_s() / 60.0)
            ),
            PROGRAM_CYCLES_REMAINING: lambda: self.cycles_remaining,
            STATUS_WORD: self._status_word,
            EXTENDED_STATUS: self._extended_status,
            INSTRUMENT_VERSION: lambda: 0x0461,
            SP1_HIGH_LIMIT: lambda: self._t(self.sp_high_c),
            SP1_LOW_LIMIT: lambda: self._t(self.sp_low_c),
            INSTRUMENT_IDENT: lambda: MODELS[self.model],
            SEGMENT_TARGET_SP: lambda: self._t(self._segment_target()),
            SEGMENT_RAMP_RATE: lambda: self._t(self._segment_rate()),
            PROGRAMMER_SP: lambda: self._t(self.prog_sp_c),
            MAX_SEGMENTS: lambda: self.n_segments,
            SENSOR_BREAK: lambda: int(self.world.furnace.sensor_broken),
            AUTO_MANUAL: lambda: int(self.manual),
            DECIMAL_PLACES: lambda: self.decimal_places,
            SP_RATE_UNITS: lambda: self.rate_units,
        }
        reader = readers.get(a)
        if reader is None:
            raise _Refused(ILLEGAL_DATA_ADDRESS, f"no parameter at address {a}")
        return int(reader()) & 0xFFFF

    READ_ONLY = frozenset(
        {
            PV,
            WORKING_OUTPUT,
            WORKING_SP,
            RANGE_LOW,
            RANGE_HIGH,
            SEGMENT_TYPE,
            SEGMENT_TIME_REMAINING_S,
            SEGMENT_TIME_REMAINING_MIN,
            SEGMENT_NUMBER,
            PROGRAM_TIME_REMAINING_MIN,
            PROGRAM_CYCLES_REMAINING,
            STATUS_WORD,
            EXTENDED_STATUS,
            INSTRUMENT_VERSION,
            INSTRUMENT_IDENT,
            SEGMENT_TARGET_SP,
            SEGMENT_RAMP_RATE,
            PROGRAMMER_SP,
            MAX_SEGMENTS,
            SENSOR_BREAK,
        }
    )

    def _write_block(self, start: int, words: list[int]) -> None:
        """Validate every word first, then apply: a refused block changes nothing."""
        addresses = list(range(start, start + len(words)))
        staged = {}  # program number -> staged copy of its words
        written: dict[int, set[int]] = {}
        for a, w in zip(addresses, words, strict=True):
            if a >= PROGRAM_BASE:
                p, k = self._program_slot(a)
                staged.setdefault(p, list(self._programs[p]))[k] = w
                written.setdefault(p, set()).add(k)
        for a, w in zip(addresses, words, strict=True):
            if a >= PROGRAM_BASE:
                p, k = self._program_slot(a)
                self._check_program_word(p, k, w, staged[p])
            else:
                self._check_write(a, w)
        for p, program in staged.items():
            for k in written[p]:
                self._programs[p][k] = program[k]
                self._program_dp[p][k] = self.decimal_places
        for a, w in zip(addresses, words, strict=True):
            if a < PROGRAM_BASE:
                self._apply_write(a, w)

    def _program_slot(self, a: int) -> tuple[int, int]:
        p, k = divmod(a - PROGRAM_BASE, PROGRAM_STRIDE)
        if p > self.n_programs or k // SEGMENT_WORDS > self.n_segments:
            raise _Refused(ILLEGAL_DATA_ADDRESS, f"no program parameter at {a}")
        if p == 0:
            raise _Refused(ILLEGAL_DATA_VALUE, "program 0 is the working program (read-only)")
        return p, k

    def _check_program_word(self, p: int, k: int, w: int, words: list[int]) -> None:
        seg, field = divmod(k, SEGMENT_WORDS)
        value = rtu.to_signed(w)
        if seg == 0:  # program general data
            limits = {0: (0, 3), 1: (0, 32767), 2: (0, 2), 3: (0, 2), 4: (0, 999)}
            lo, hi = limits.get(field, (-32768, 65535))
            if not lo <= (value if field == 1 else w) <= hi:
                raise _Refused(ILLEGAL_DATA_VALUE, f"program {p} general field {field}: {w}")
            return
        seg_type = words[seg * SEGMENT_WORDS]
        if field == 0:
            if seg_type not in (SEG_END, SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_DWELL, SEG_STEP):
                raise _Refused(ILLEGAL_DATA_VALUE, f"segment type {w} not supported")
            return
        if seg_type in (SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_STEP) and field == 1:
            target = self._t_in(w)
            if not self.sp_low_c <= target <= self.sp_high_c:
                raise _Refused(ILLEGAL_DATA_VALUE, f"segment target {target} outside SP limits")
        elif seg_type == SEG_RAMP_RATE and field == 2 and value < 0:
            raise _Refused(ILLEGAL_DATA_VALUE, "negative ramp rate")
        elif seg_type in (SEG_RAMP_TIME, SEG_DWELL) and field == (2 if seg_type == 2 else 1):
            pass  # durations are unsigned 0..65535 units
        elif seg_type == SEG_END and field == 1 and not 0 <= value <= 1000:
            raise _Refused(ILLEGAL_DATA_VALUE, "end power outside 0..100 %")
        elif seg_type == SEG_END and field == 3 and w not in (END_DWELL, END_RESET):
            raise _Refused(ILLEGAL_DATA_VALUE, f"end type {w} not supported")

    def _check_write(self, a: int, w: int) -> None:
        if a in self.READ_ONLY:
            raise _Refused(ILLEGAL_DATA_VALUE, f"parameter {a} is read-only")
        value = rtu.to_signed(w)
        t = self._t_in(w)
        pct = value / 10.0
        if a == TARGET_SP:
            if not self.sp_low_c <= t <= self.sp_high_c:
                raise _Refused(ILLEGAL_DATA_VALUE, f"setpoint {t} outside SP limits")
        elif a == OUTPUT:
            if not self.manual:
                raise _Refused(ILLEGAL_DATA_VALUE, "output is alterable in manual only")
            if not self.op_low_pct <= pct <= self.op_high_pct:
                raise _Refused(ILLEGAL_DATA_VALUE, f"output {pct} % outside power limits")
        elif a == PROP_BAND:
            if t <= 0:
                raise _Refused(ILLEGAL_DATA_VALUE, "proportional band must be > 0")
        elif a in (INTEGRAL_TIME, DERIVATIVE_TIME):
            if value < 0:
                raise _Refused(ILLEGAL_DATA_VALUE, "time constants must be >= 0")
        elif a == PROGRAM_NUMBER:
            if not 1 <= w <= self.n_programs:
                raise _Refused(ILLEGAL_DATA_VALUE, f"no program {w}")
            if self.prog_status in (RUN, HOLD, HOLDBACK):
                raise _Refused(ILLEGAL_DATA_VALUE, "program number alterable in reset only")
        elif a in (PROGRAM_STATUS, PROGRAMMER_STATE_WRITE):
            if w not in (RESET, RUN, HOLD):
                raise _Refused(ILLEGAL_DATA_VALUE, f"programmer state {w} cannot be written")
            if w == HOLD and self.prog_status not in (RUN, HOLD, HOLDBACK):
                raise _Refused(ILLEGAL_DATA_VALUE, "hold needs a running program")
        elif a in (HIGH_POWER_LIMIT, LOW_POWER_LIMIT):
            lo = pct if a == LOW_POWER_LIMIT else self.op_low_pct
            hi = pct if a == HIGH_POWER_LIMIT else self.op_high_pct
            if not 0.0 <= lo < hi <= 100.0:
                raise _Refused(ILLEGAL_DATA_VALUE, f"power limits {lo}..{hi} % invalid")
        elif a == SENSOR_BREAK_OUTPUT:
            if not 0.0 <= pct <= 100.0:
                raise _Refused(ILLEGAL_DATA_VALUE, "sensor-break output outside 0..100 %")
        elif a == SP_RATE_LIMIT:
            if t < 0:
                raise _Refused(ILLEGAL_DATA_VALUE, "negative setpoint rate limit")
        elif a in (SP1_HIGH_LIMIT, SP1_LOW_LIMIT):
            lo = t if a == SP1_LOW_LIMIT else self.sp_low_c
            hi = t if a == SP1_HIGH_LIMIT else self.sp_high_c
            if not self.range_low_c <= lo < hi <= self.range_high_c:
                raise _Refused(ILLEGAL_DATA_VALUE, f"SP limits {lo}..{hi} outside range")
        elif a == AUTO_MANUAL:
            if w not in (0, 1):
                raise _Refused(ILLEGAL_DATA_VALUE, "auto/manual is 0 or 1")
        elif a == DECIMAL_PLACES:
            if w not in (0, 1, 2) or not self._dp_fits(w):
                raise _Refused(ILLEGAL_DATA_VALUE, f"{w} decimal places cannot show the range")
        elif a == SP_RATE_UNITS:
            if w not in UNIT_SECONDS:
                raise _Refused(ILLEGAL_DATA_VALUE, "rate units are 0 (s), 1 (min), 2 (h)")
        else:
            self._read_word(a)  # raises 02 for addresses we do not have

    def _apply_write(self, a: int, w: int) -> None:
        t = self._t_in(w)
        pct = rtu.to_signed(w) / 10.0
        if a == TARGET_SP:
            self.target_sp_c = t
        elif a == OUTPUT:
            self.manual_op_pct = pct
        elif a == PROP_BAND:
            self.pb_c = t
        elif a == INTEGRAL_TIME:
            self.ti_s = float(w)
        elif a == DERIVATIVE_TIME:
            self.td_s = float(w)
        elif a == PROGRAM_NUMBER:
            self.program_number = w
        elif a in (PROGRAM_STATUS, PROGRAMMER_STATE_WRITE):
            self._command_programmer(w)
        elif a == HIGH_POWER_LIMIT:
            self.op_high_pct = pct
        elif a == LOW_POWER_LIMIT:
            self.op_low_pct = pct
        elif a == SENSOR_BREAK_OUTPUT:
            self.sensor_break_op_pct = pct
        elif a == SP_RATE_LIMIT:
            self.rate_limit = t
        elif a == SP1_HIGH_LIMIT:
            self.sp_high_c = t
            self.target_sp_c = min(self.target_sp_c, t)
        elif a == SP1_LOW_LIMIT:
            self.sp_low_c = t
            self.target_sp_c = max(self.target_sp_c, t)
        elif a == AUTO_MANUAL:
            if w and not self.manual:
                self.manual_op_pct = self.output_pct  # bumpless auto → manual
            self.manual = bool(w)
        elif a == DECIMAL_PLACES:
            self.decimal_places = w
        elif a == SP_RATE_UNITS:
            self.rate_units = w

    # ------------------------------------------------------------ status
    def _status_word(self) -> int:
        sw = 0
        if self.manual:
            sw |= SW_MANUAL
        if self.world.furnace.sensor_broken:
            sw |= SW_SENSOR_BREAK
        elif not self.range_low_c <= self.pv_c <= self.range_high_c:
            sw |= SW_PV_OUT_OF_RANGE
        if self.prog_status == COMPLETE:
            sw |= SW_PROGRAM_COMPLETE
        return sw

    def _extended_status(self) -> int:
        return {
            RUN: XS_PROGRAM_RUNNING,
            HOLD: XS_PROGRAM_HOLD,
            HOLDBACK: XS_PROGRAM_RUNNING | XS_PROGRAM_HOLDBACK,
            COMPLETE: XS_PROGRAM_END,
        }.get(self.prog_status, 0)

    # ------------------------------------------------------------ programmer
    def _program_active(self) -> bool:
        return self.prog_status in (RUN, HOLD, HOLDBACK, COMPLETE)

    def _working(self) -> list[int]:
        return self._programs[0]

    def _current_segment(self) -> list[int]:
        i = min(max(self.seg_index, 1), self.n_segments)
        return self._block(0, i)

    def _program_value(self, p: int, k: int) -> float:
        """A stored temperature field in °C (scaled with the decimals it was written at)."""
        return rtu.to_signed(self._programs[p][k]) / 10 ** self._program_dp[p][k]

    def _block(self, p: int, i: int) -> list:
        """Block ``i`` of program ``p`` (0: general data), temperature fields in °C."""
        words = self._programs[p]
        return [
            self._program_value(p, k) if _is_temperature_field(words, k) else words[k]
            for k in range(i * SEGMENT_WORDS, (i + 1) * SEGMENT_WORDS)
        ]

    def _units_s(self, which: int) -> float:  # which: 2 ramp units, 3 dwell units
        return UNIT_SECONDS.get(self._working()[which], 60.0)

    def _segment_target(self) -> float:
        if not self._program_active():
            return self.target_sp_c
        seg = self._current_segment()
        if seg[0] in (SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_STEP):
            return seg[1]
        return self.prog_sp_c

    def _segment_rate(self) -> float:
        if not self._program_active():
            return 0.0
        seg = self._current_segment()
        return seg[2] if seg[0] == SEG_RAMP_RATE else 0.0

    def _segment_duration_s(self, seg: list[int]) -> float:
        if seg[0] == SEG_DWELL:
            return seg[1] * self._units_s(3)
        if seg[0] == SEG_RAMP_TIME:
            return seg[2] * self._units_s(3)
        return 0.0

    def _segment_remaining_s(self, seg: list[int] | None = None, sp: float | None = None) -> float:
        if seg is None:
            if self.prog_status not in (RUN, HOLD, HOLDBACK):
                return 0.0
            seg = self._current_segment()
            elapsed = self.seg_elapsed_s
        else:
            elapsed = 0.0
        sp = self.prog_sp_c if sp is None else sp
        if seg[0] == SEG_RAMP_RATE:
            rate_per_s = seg[2] / self._units_s(2)
            return abs(seg[1] - sp) / rate_per_s if rate_per_s > 0 else 0.0
        if seg[0] in (SEG_RAMP_TIME, SEG_DWELL):
            return max(0.0, self._segment_duration_s(seg) - elapsed)
        return 0.0

    def _program_remaining_s(self) -> float:
        if self.prog_status not in (RUN, HOLD, HOLDBACK):
            return 0.0
        total = self._segment_remaining_s()
        seg = self._current_segment()
        sp = seg[1] if seg[0] in (SEG_RAMP_RATE, SEG_RAMP_TIME) else self.prog_sp_c
        for i in range(self.seg_index + 1, self.n_segments + 1):
            nxt = self._block(0, i)
            if nxt[0] == SEG_END:
                break
            total += self._segment_remaining_s(nxt, sp)
            if nxt[0] in (SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_STEP):
                sp = nxt[1]
        return total

    def _command_programmer(self, state: int) -> None:
        if state == RESET:
            self.prog_status = RESET
            self.seg_index = 0
            self.cycles_remaining = 0
            # the working SP continues from where the programmer left it
        elif state == HOLD:
            self.prog_status = HOLD
        elif state == RUN:
            if self.prog_status == HOLD:
                self.prog_status = RUN
            elif self.prog_status in (RESET, COMPLETE):
                self._start_program()

    def _start_program(self) -> None:
        self._programs[0][:] = self._programs[self.program_number]
        self._program_dp[0][:] = self._program_dp[self.program_number]
        cycles = self._working()[4]
        self.cycles_remaining = cycles
        # servo to PV: the program starts from the measured temperature
        start = self.wsp_c if self.world.furnace.sensor_broken else self.pv_c
        self.prog_sp_c = start
        self.prog_status = RUN
        self._enter_segment(1)

    def _enter_segment(self, index: int) -> None:
        self.seg_index = index
        self.seg_elapsed_s = 0.0
        self.seg_start_sp = self.prog_sp_c

    def _finish_program(self, seg: list[int]) -> None:
        cycles = self._working()[4]
        if cycles == 0 or self.cycles_remaining > 1:  # 0 = cycle continuously
            if cycles:
                self.cycles_remaining -= 1
            self._enter_segment(1)
            return
        self.cycles_remaining = 0
        if seg[0] == SEG_END and seg[3] == END_RESET:
            self.prog_status = RESET
            self.seg_index = 0
        else:
            self.prog_status = COMPLETE  # end type "dwell": hold the last setpoint

    def _holdback_violated(self, pv: float) -> bool:
        kind, band = self._block(0, 0)[:2]
        if kind == HOLDBACK_NONE or self.world.furnace.sensor_broken:
            return False
        dev = pv - self.prog_sp_c
        return (
            (kind == HOLDBACK_LOW and dev < -band)
            or (kind == HOLDBACK_HIGH and dev > band)
            or (kind == HOLDBACK_BAND and abs(dev) > band)
        )

    def _step_programmer(self, dt: float, pv: float) -> None:
        budget = dt
        for _ in range(4 * self.n_segments + 4):  # bounded: never spin
            if self.prog_status not in (RUN, HOLDBACK) or budget <= 1e-12:
                return
            if self.seg_index > self.n_segments:
                self._finish_program([SEG_END, 0, 0, END_DWELL, 0, 0, 0, 0])
                continue
            seg = self._current_segment()
            kind = seg[0]
            if kind == SEG_END:
                self._finish_program(seg)
                continue
            if kind in (SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_DWELL) and self._holdback_violated(pv):
                self.prog_status = HOLDBACK  # programmer time stops until PV catches up
                return
            self.prog_status = RUN
            if kind == SEG_STEP:
                self.prog_sp_c = seg[1]
                self._enter_segment(self.seg_index + 1)
                continue
            if kind == SEG_RAMP_RATE:
                target = seg[1]
                rate_per_s = seg[2] / self._units_s(2)
                distance = target - self.prog_sp_c
                needed = abs(distance) / rate_per_s if rate_per_s > 0 else 0.0
                if needed <= budget:
                    self.prog_sp_c = target
                    budget -= needed
                    self._enter_segment(self.seg_index + 1)
                else:
                    self.prog_sp_c += math.copysign(rate_per_s * budget, distance)
                    self.seg_elapsed_s += budget
                    budget = 0.0
                continue
            duration = self._segment_duration_s(seg)
            remaining = duration - self.seg_elapsed_s
            if remaining <= budget:
                if kind == SEG_RAMP_TIME:
                    self.prog_sp_c = seg[1]
                budget -= max(0.0, remaining)
                self._enter_segment(self.seg_index + 1)
            else:
                self.seg_elapsed_s += budget
                if kind == SEG_RAMP_TIME:
                    frac = self.seg_elapsed_s / duration
                    self.prog_sp_c = self.seg_start_sp + (seg[1] - self.seg_start_sp) * frac
                budget = 0.0

    # ------------------------------------------------------------ control loop
    def _at_rest(self) -> bool:
        """Any step leaves the output at 0 %: no program running, the working setpoint
        settled at or below the PV (the PID's output can only fall, to its 0 % floor)."""
        if self.manual or self.world.furnace.sensor_broken:
            return False
        if self.prog_status in (RUN, HOLDBACK) or self.output_pct != 0.0 or self.op_low_pct != 0.0:
            return False
        if self._program_active():
            settled = min(max(self.prog_sp_c, self.sp_low_c), self.sp_high_c)
        else:
            settled = min(max(self.target_sp_c, self.sp_low_c), self.sp_high_c)
        return self.wsp_c == settled and self.wsp_c <= self.pv_c

    def _coasts_above_c(self) -> float | None:
        """The lowest PV above which any step leaves the output at 0 % (None: no such PV).

        Unheated by state: not manual, no program running, the low power limit at 0 and
        the working setpoint settled, the PID's output at 0 % -- it stays there while
        the PV is above the working setpoint (the error is negative). With the sensor
        broken and a 0 % sensor-break output, the output is 0 whatever the PV.
        """
        if self.manual or self.op_low_pct > 0.0:
            return None
        if self.world.furnace.sensor_broken:
            return -math.inf if self.sensor_break_op_pct <= 0.0 else None
        if self.prog_status in (RUN, HOLDBACK) or self.output_pct > _OUTPUT_OFF_PCT:
            return None
        if self._program_active():
            settled = min(max(self.prog_sp_c, self.sp_low_c), self.sp_high_c)
        else:
            settled = min(max(self.target_sp_c, self.sp_low_c), self.sp_high_c)
        if self.wsp_c != settled or self.pv_c < self.wsp_c:
            return None
        return self.wsp_c

    def _control(self, t: float, dt: float) -> None:
        """World controller: input filter, programmer, SP rate limit, PID → heater."""
        if dt <= 0:
            return
        furnace = self.world.furnace
        broken = bool(furnace.sensor_broken)
        # a sampled controller: the input filter and the PID act on the time since the last
        # sample, so that an output decided now depends on the past only, whatever the
        # length of the step to come (world.py's long steps at rest and while coasting)
        elapsed = dt if self._last_sample_t is None else max(t - self._last_sample_t, 1e-9)
        self._last_sample_t = t
        if not broken:
            alpha = min(1.0, elapsed / self.input_filter_s) if self.input_filter_s > 0 else 1.0
            self.pv_c += (float(furnace.thermocouple_c) - self.pv_c) * alpha
        pv = self.pv_c
        self._step_programmer(dt, pv)
        if self._program_active():  # SP1 limits bind the programmer too
            self.wsp_c = min(max(self.prog_sp_c, self.sp_low_c), self.sp_high_c)
        else:
            target = min(max(self.target_sp_c, self.sp_low_c), self.sp_high_c)
            if self.rate_limit > 0:
                step = self.rate_limit / UNIT_SECONDS[self.rate_units] * dt
                self.wsp_c += max(-step, min(step, target - self.wsp_c))
            else:
                self.wsp_c = target
        if self.manual:
            out = self.manual_op_pct
        elif broken:
            out = self.sensor_break_op_pct  # the configured sensor-break output
            self._last_error = None
        else:
            out = self._pid(elapsed, pv)
        self._was_manual = self.manual
        self.output_pct = max(self.op_low_pct, min(self.op_high_pct, out))
        furnace.heater_fraction = self.output_pct / 100.0

    def _pid(self, elapsed: float, pv: float) -> float:
        """Eurotherm-style PID: PB in display units, Ti/Td in seconds, anti-windup.

        Derivative acts on the error, filtered (the setpoint moves smoothly: it
        is rate-limited or programmed), so a ramp leaves no derivative offset.
        The integral is held so that P + I + D never winds up beyond the
        output limits (integrator back-calculation).
        """
        kc = 100.0 / self.pb_c
        error = self.wsp_c - pv
        if self._last_error is None:
            self._last_error = error
            self._d_filtered = 0.0
        # sampled: the error changed, and is integrated, over the ``elapsed`` time since the
        # last sample, not over the step to come: P, I and D agree on the interval
        slope = (error - self._last_error) / elapsed
        self._last_error = error
        tau_d = max(self.td_s / 8.0, elapsed)
        self._d_filtered += (slope - self._d_filtered) * min(1.0, elapsed / tau_d)
        p_term = kc * error
        d_term = kc * self.td_s * self._d_filtered
        if self._was_manual:  # bumpless manual → auto
            self._integral = self.output_pct - p_term - d_term
        if self.ti_s > 0:
            self._integral += kc * error * elapsed / self.ti_s
            u = p_term + self._integral + d_term
            if u > self.op_high_pct:
                self._integral = max(self.op_low_pct, self.op_high_pct - p_term - d_term)
            elif u < self.op_low_pct:
                self._integral = min(self.op_high_pct, self.op_low_pct - p_term - d_term)
        else:
            self._integral = 0.0
        return p_term + self._integral + d_term


def _is_temperature_field(words: list[int], k: int) -> bool:
    """Whether word ``k`` of a program holds a temperature (by its block's segment type)."""
    block, field = divmod(k, SEGMENT_WORDS)
    if block == 0:
        return field == 1  # holdback value
    seg_type = words[block * SEGMENT_WORDS]
    return (field == 1 and seg_type in (SEG_RAMP_RATE, SEG_RAMP_TIME, SEG_STEP)) or (
        field == 2 and seg_type == SEG_RAMP_RATE
    )
