"""Newport ESP301 3-axis motion controller: the ASCII protocol over the world's stages.

Axes 1..3 are ``world.stages[0..2]`` (THz sampling delay, pump delay, sample
translation). Positions live in the world in physical millimetres; the
controller shows *user* positions ``(physical - origin)`` converted to the
axis's display units (``SN``), so ``DH``/``OR`` redefine the origin without
moving anything physical.

Syntax (ESP301 manual, "Command syntax"): ``[xx]AA[nn]`` — optional axis
number, two-letter command, optional parameter(s); ``AA?`` queries; several
commands on one line separated by ``;``; blanks ignored; case-insensitive.
Replies to several queries on one line are returned on one line separated by
commas. A wrong command is not answered: the controller puts an error code in
its error buffer (read with ``TE?`` or ``TB?``, oldest first). Codes are plain
for general errors (``6`` COMMAND DOES NOT EXIST) and ``axis*100 + code`` for
axis errors (``107`` axis 1 NEGATIVE SOFTWARE LIMIT DETECTED, ``113`` axis 1
MOTOR NOT ENABLED).

Input: "the maximum number of characters allowed on a command line is 80"
(ESP300-series manual, "Command syntax"). The manual names no error for a longer
line; the simulator discards the whole line (no command of it runs, not even one
after the next ``;``) and queues ``6`` COMMAND DOES NOT EXIST, as a line cut short
at 80 characters would be read.

Motion is constant-velocity over virtual time (World.Stage): ``MD?`` reads 0
while an axis moves and ``TP`` reads the intermediate position.

Injected ``stage_stall`` (:mod:`labctl.simulators.faults`): a move of a stalled
axis stops half-way to its target, and when it stops the controller logs
``axis*100 + 3`` (FOLLOWING ERROR THRESHOLD EXCEEDED), as the real one does when
the stage cannot follow its trajectory.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from labctl.simulators.base import TextProtocolHandler

FIRMWARE_VERSION = "ESP301 Version 3.0.2 7/28/11"

#: General error codes (ESP301 manual, "Error messages").
GENERAL_ERRORS: dict[int, str] = {
    0: "NO ERROR DETECTED",
    1: "PCI COMMUNICATION TIME-OUT",
    4: "EMERGENCY STOP ACTIVATED",
    6: "COMMAND DOES NOT EXIST",
    7: "PARAMETER OUT OF RANGE",
    8: "CABLE INTERLOCK ERROR",
    9: "AXIS NUMBER OUT OF RANGE",
    13: "GROUP NUMBER MISSING",
    27: "COMMAND NOT ALLOWED",
    37: "AXIS NUMBER MISSING",
    38: "COMMAND PARAMETER MISSING",
}

#: Axis error codes: reported as ``axis * 100 + code``.
AXIS_ERRORS: dict[int, str] = {
    0: "MOTOR TYPE NOT DEFINED",
    1: "PARAMETER OUT OF RANGE",
    2: "AMPLIFIER FAULT DETECTED",
    3: "FOLLOWING ERROR THRESHOLD EXCEEDED",
    4: "POSITIVE HARDWARE LIMIT DETECTED",
    5: "NEGATIVE HARDWARE LIMIT DETECTED",
    6: "POSITIVE SOFTWARE LIMIT DETECTED",
    7: "NEGATIVE SOFTWARE LIMIT DETECTED",
    8: "MOTOR / STAGE NOT CONNECTED",
    9: "FEEDBACK SIGNAL FAULT DETECTED",
    10: "MAXIMUM VELOCITY EXCEEDED",
    11: "MAXIMUM ACCELERATION EXCEEDED",
    13: "MOTOR NOT ENABLED",
    20: "HOMING ABORTED",
    30: "COMMAND NOT ALLOWED DURING HOMING",
}

# General errors
ERR_COMMAND_DOES_NOT_EXIST = 6
ERR_AXIS_OUT_OF_RANGE = 9
ERR_AXIS_MISSING = 37
ERR_PARAMETER_MISSING = 38
# Axis errors (added to axis * 100)
AX_PARAMETER_OUT_OF_RANGE = 1
AX_POSITIVE_HARDWARE_LIMIT = 4
AX_NEGATIVE_HARDWARE_LIMIT = 5
AX_POSITIVE_SOFTWARE_LIMIT = 6
AX_NEGATIVE_SOFTWARE_LIMIT = 7
AX_MAX_VELOCITY_EXCEEDED = 10
AX_MAX_ACCELERATION_EXCEEDED = 11
AX_MOTOR_NOT_ENABLED = 13
AX_FOLLOWING_ERROR = 3

ERROR_BUFFER_DEPTH = 10  # oldest errors are dropped beyond this

#: Display units (``SN``) that a linear stage accepts: units per millimetre.
LINEAR_UNITS_PER_MM: dict[int, float] = {
    2: 1.0,  # millimetre
    3: 1e3,  # micrometre
    4: 1 / 25.4,  # inch
    5: 1e3 / 25.4,  # milli-inch
    6: 1e6 / 25.4,  # micro-inch
}

#: Stage models reported by ``xxID?`` (travel matches the world's default axes).
STAGE_MODELS = ("ILS100CC", "IMS300CC", "IMS400CC")

_COMMAND = re.compile(r"^(?P<axis>\d+)?(?P<cmd>[A-Z]{2})(?P<query>\?)?(?P<param>.*)$")


class _CommandError(Exception):
    """Raised inside a command handler: the code goes to the error buffer."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _AxisSettings:
    """Controller-side settings of one axis (positions in user mm)."""

    origin_mm: float = 0.0  # physical mm that reads as user position 0
    home_preset_mm: float = 0.0  # DH value
    left_limit_mm: float = 0.0
    right_limit_mm: float = 0.0
    max_velocity_mm_s: float = 1.0
    acceleration_mm_s2: float = 20.0
    deceleration_mm_s2: float = 20.0
    max_acceleration_mm_s2: float = 80.0
    units: int = 2
    homing: bool = False
    serial: int = 0


class ESP301Simulator(TextProtocolHandler):
    """Protocol-faithful ESP301 over ``world.stages`` (see module docstring)."""

    kind = "visa"
    input_buffer_size = 80  # characters per command line
    fault_kinds = ("stage_stall",)

    def __init__(self, world, name: str = "") -> None:
        super().__init__(world, name)
        self._errors: deque[tuple[int, int]] = deque(maxlen=ERROR_BUFFER_DEPTH)
        self._stalls: dict[int, float] = {}  # axis index -> virtual time it stalls
        self._t0 = self._clock_now()
        self._rated_velocity_mm_s = [float(st.velocity_mm_s) for st in world.stages[:3]]
        self._settings: list[_AxisSettings] = []
        self._reset_settings()
        a = "AXIS"  # handler takes an axis index
        g = "GENERAL"  # handler ignores any axis prefix
        o = "OPTIONAL"  # without an axis prefix: every axis
        self._commands: dict[str, tuple[str, Callable]] = {
            "PA": (a, self._cmd_pa),
            "PR": (a, self._cmd_pr),
            "TP": (a, self._cmd_tp),
            "DP": (a, self._cmd_dp),
            "DV": (a, self._cmd_dv),
            "MD": (a, self._cmd_md),
            "VA": (a, self._cmd_va),
            "VU": (a, self._cmd_vu),
            "AC": (a, self._cmd_ac),
            "AG": (a, self._cmd_ag),
            "AU": (a, self._cmd_au),
            "MO": (o, self._cmd_mo),
            "MF": (o, self._cmd_mf),
            "OR": (a, self._cmd_or),
            "DH": (a, self._cmd_dh),
            "SL": (a, self._cmd_sl),
            "SR": (a, self._cmd_sr),
            "SN": (a, self._cmd_sn),
            "ST": (o, self._cmd_st),
            "MV": (a, self._cmd_mv),
            "WS": (o, self._cmd_wait),
            "WP": (a, self._cmd_wait),
            "WT": (g, self._cmd_wait),
            "ID": (a, self._cmd_id),
            "VE": (g, self._cmd_ve),
            "TE": (g, self._cmd_te),
            "TB": (g, self._cmd_tb),
            "AB": (g, self._cmd_ab),
            "RS": (g, self._cmd_rs),
        }

    # --- plumbing -----------------------------------------------------------
    def _clock_now(self) -> float:
        return float(self.world.clock.now())

    @property
    def n_axes(self) -> int:
        return min(3, len(self.world.stages))

    def _reset_settings(self) -> None:
        self._settings = []
        for i, stage in enumerate(self.world.stages[:3]):
            self._settings.append(
                _AxisSettings(
                    left_limit_mm=float(stage.min_mm),
                    right_limit_mm=float(stage.max_mm),
                    max_velocity_mm_s=self._rated_velocity_mm_s[i],
                    serial=11400 + 17 * (i + 1),
                )
            )

    def _error(self, code: int) -> None:
        ms = int(round((self._clock_now() - self._t0) * 1000.0))
        self._errors.append((code, ms))

    def _axis_error(self, ax: int, code: int) -> _CommandError:
        return _CommandError((ax + 1) * 100 + code)

    def handle_line(self, line: str) -> str | None:
        replies: list[str] = []
        with self.world.lock:
            self.world.advance()
            self._report_stalls()
            for raw in line.split(";"):
                command = "".join(raw.split()).upper()
                if not command:
                    continue
                reply = self._execute(command)
                if reply is not None:
                    replies.append(reply)
        return ",".join(replies) if replies else None

    def on_input_overflow(self) -> str | None:
        self._error(ERR_COMMAND_DOES_NOT_EXIST)
        return None

    def _execute(self, command: str) -> str | None:
        m = _COMMAND.match(command)
        entry = self._commands.get(m.group("cmd")) if m else None
        if m is None or entry is None:
            self._error(ERR_COMMAND_DOES_NOT_EXIST)
            return None
        scope, handler = entry
        axis_text, query, param = m.group("axis"), bool(m.group("query")), m.group("param")
        if query and param:
            self._error(ERR_COMMAND_DOES_NOT_EXIST)
            return None
        axes: list[int | None]
        if scope == "GENERAL":
            axes = [None]
        elif axis_text is None:
            if scope == "AXIS":
                self._error(ERR_AXIS_MISSING)
                return None
            axes = list(range(self.n_axes))
        else:
            n = int(axis_text)
            if not 1 <= n <= self.n_axes:
                self._error(ERR_AXIS_OUT_OF_RANGE)
                return None
            axes = [n - 1]
        replies = []
        for ax in axes:
            try:
                reply = handler(ax, query, param)
            except _CommandError as exc:
                self._error(exc.code)
                continue
            if reply is not None:
                replies.append(reply)
        return ",".join(replies) if replies else None

    # --- helpers ------------------------------------------------------------
    def _stage(self, ax: int):
        return self.world.stages[ax]

    def _t(self) -> float:
        return self.world.t

    def _per_mm(self, ax: int) -> float:
        return LINEAR_UNITS_PER_MM[self._settings[ax].units]

    def _fmt_mm(self, ax: int, value_mm: float) -> str:
        return f"{value_mm * self._per_mm(ax) + 0.0:.6f}"

    def _user_mm(self, ax: int) -> float:
        return self._stage(ax).position_mm(self._t()) - self._settings[ax].origin_mm

    def _param_float(self, ax: int | None, param: str, *, required: bool = True) -> float | None:
        if not param:
            if required:
                raise _CommandError(ERR_PARAMETER_MISSING)
            return None
        try:
            value = float(param)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise _CommandError(7 if ax is None else (ax + 1) * 100 + AX_PARAMETER_OUT_OF_RANGE)
        return value

    def _param_mm(self, ax: int, param: str) -> float:
        return self._param_float(ax, param) / self._per_mm(ax)

    def _moving(self, ax: int) -> bool:
        return self._stage(ax).is_moving(self._t())

    def _update_homing(self, ax: int) -> None:
        if self._settings[ax].homing and not self._moving(ax):
            self._settings[ax].homing = False

    def _start_move(self, ax: int, target_user_mm: float, *, check_soft_limits: bool = True):
        stage, s = self._stage(ax), self._settings[ax]
        if not stage.motor_on:
            raise self._axis_error(ax, AX_MOTOR_NOT_ENABLED)
        self._update_homing(ax)
        if s.homing:
            raise self._axis_error(ax, 30)
        if check_soft_limits:
            if target_user_mm > s.right_limit_mm + 1e-9:
                raise self._axis_error(ax, AX_POSITIVE_SOFTWARE_LIMIT)
            if target_user_mm < s.left_limit_mm - 1e-9:
                raise self._axis_error(ax, AX_NEGATIVE_SOFTWARE_LIMIT)
        physical = target_user_mm + s.origin_mm
        if physical > stage.max_mm + 1e-9:
            raise self._axis_error(ax, AX_POSITIVE_HARDWARE_LIMIT)
        if physical < stage.min_mm - 1e-9:
            raise self._axis_error(ax, AX_NEGATIVE_HARDWARE_LIMIT)
        here = stage.position_mm(self._t())
        faults = getattr(self.world, "faults", None)
        if faults is not None and faults.stall_axis(self.name, ax + 1) and physical != here:
            physical = here + 0.5 * (physical - here)  # stalls half-way
            self._stalls[ax] = self._t() + abs(physical - here) / max(stage.velocity_mm_s, 1e-12)
        else:
            self._stalls.pop(ax, None)
        stage.move_to(physical, self._t())

    def _report_stalls(self) -> None:
        """Log the following error of every axis that has stalled by now."""
        for ax, t_stall in sorted(self._stalls.items()):
            if t_stall <= self._t():
                del self._stalls[ax]
                self._error((ax + 1) * 100 + AX_FOLLOWING_ERROR)

    # --- motion -------------------------------------------------------------
    def _cmd_pa(self, ax: int, query: bool, param: str) -> str | None:
        if query:  # destination position
            return self._fmt_mm(ax, self._stage(ax).target_mm - self._settings[ax].origin_mm)
        self._start_move(ax, self._param_mm(ax, param))
        return None

    def _cmd_pr(self, ax: int, query: bool, param: str) -> str | None:
        destination = self._stage(ax).target_mm - self._settings[ax].origin_mm
        if query:
            return self._fmt_mm(ax, destination)
        self._start_move(ax, destination + self._param_mm(ax, param))
        return None

    def _cmd_mv(self, ax: int, query: bool, param: str) -> str | None:
        if query or param not in ("+", "-"):
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        s = self._settings[ax]
        self._start_move(ax, s.right_limit_mm if param == "+" else s.left_limit_mm)
        return None

    def _cmd_tp(self, ax: int, query: bool, param: str) -> str | None:
        if param:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        return self._fmt_mm(ax, self._user_mm(ax))

    def _cmd_dp(self, ax: int, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        return self._fmt_mm(ax, self._stage(ax).target_mm - self._settings[ax].origin_mm)

    def _cmd_dv(self, ax: int, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        v = self._stage(ax).velocity_mm_s if self._moving(ax) else 0.0
        return self._fmt_mm(ax, v)

    def _cmd_md(self, ax: int, query: bool, param: str) -> str | None:
        if param:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        self._update_homing(ax)
        return "0" if self._moving(ax) else "1"

    def _cmd_st(self, ax: int, query: bool, param: str) -> str | None:
        if query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        self._stage(ax).stop(self._t())
        self._stalls.pop(ax, None)  # stopped before it could stall
        if self._settings[ax].homing:
            self._settings[ax].homing = False
            raise self._axis_error(ax, 20)  # HOMING ABORTED
        return None

    def _cmd_ab(self, ax: None, query: bool, param: str) -> str | None:
        if query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        for i in range(self.n_axes):
            self._stage(i).stop(self._t())
            self._settings[i].homing = False
        self._stalls.clear()
        return None

    def _cmd_wait(self, ax: int | None, query: bool, param: str) -> str | None:
        # WS/WP/WT hold the controller's command queue; motion needs no help here.
        if query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        return None

    # --- velocity / acceleration -------------------------------------------
    def _set_velocity(self, ax: int, v_mm_s: float) -> None:
        stage = self._stage(ax)
        t = self._t()
        # Re-anchor first: a Stage's position is computed from its velocity since t_start.
        if stage.is_moving(t):
            stage.move_to(stage.target_mm, t)
        else:
            stage.stop(t)
        stage.velocity_mm_s = v_mm_s

    def _cmd_va(self, ax: int, query: bool, param: str) -> str | None:
        if query:
            return self._fmt_mm(ax, self._stage(ax).velocity_mm_s)
        v = self._param_mm(ax, param)
        if v <= 0:
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        if v > self._settings[ax].max_velocity_mm_s * (1 + 1e-9):
            raise self._axis_error(ax, AX_MAX_VELOCITY_EXCEEDED)
        self._set_velocity(ax, v)
        return None

    def _cmd_vu(self, ax: int, query: bool, param: str) -> str | None:
        s = self._settings[ax]
        if query:
            return self._fmt_mm(ax, s.max_velocity_mm_s)
        v = self._param_mm(ax, param)
        if v <= 0:
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        s.max_velocity_mm_s = v
        if self._stage(ax).velocity_mm_s > v:  # the working velocity never exceeds VU
            self._set_velocity(ax, v)
        return None

    def _accel(self, ax: int, query: bool, param: str, attr: str) -> str | None:
        s = self._settings[ax]
        if query:
            return self._fmt_mm(ax, getattr(s, attr))
        a = self._param_mm(ax, param)
        if a <= 0:
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        if attr != "max_acceleration_mm_s2" and a > s.max_acceleration_mm_s2 * (1 + 1e-9):
            raise self._axis_error(ax, AX_MAX_ACCELERATION_EXCEEDED)
        setattr(s, attr, a)
        return None

    def _cmd_ac(self, ax: int, query: bool, param: str) -> str | None:
        return self._accel(ax, query, param, "acceleration_mm_s2")

    def _cmd_ag(self, ax: int, query: bool, param: str) -> str | None:
        return self._accel(ax, query, param, "deceleration_mm_s2")

    def _cmd_au(self, ax: int, query: bool, param: str) -> str | None:
        return self._accel(ax, query, param, "max_acceleration_mm_s2")

    # --- motor, home, limits, units ----------------------------------------
    def _cmd_mo(self, ax: int, query: bool, param: str) -> str | None:
        if param:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        if query:
            return "1" if self._stage(ax).motor_on else "0"
        self._stage(ax).motor_on = True
        return None

    def _cmd_mf(self, ax: int, query: bool, param: str) -> str | None:
        if query or param:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        stage = self._stage(ax)
        stage.stop(self._t())  # no servo, no motion
        stage.motor_on = False
        self._settings[ax].homing = False
        return None

    def _cmd_or(self, ax: int, query: bool, param: str) -> str | None:
        """Home search. Modes (manual): 0 zero position count, 1 home + index,
        2 home switch, 3/5 positive limit (+index), 4/6 negative limit (+index).
        The position found reads as the DH preset (0 unless defined)."""
        if query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        mode = 0 if not param else self._param_float(ax, param)
        if mode not in (0, 1, 2, 3, 4, 5, 6):
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        stage, s = self._stage(ax), self._settings[ax]
        if not stage.motor_on:
            raise self._axis_error(ax, AX_MOTOR_NOT_ENABLED)
        if mode == 0:
            self._start_move(ax, 0.0, check_soft_limits=False)
            return None
        if mode in (1, 2):
            switch_mm = min(max(0.0, stage.min_mm), stage.max_mm)  # home switch
        elif mode in (3, 5):
            switch_mm = stage.max_mm
        else:
            switch_mm = stage.min_mm
        s.origin_mm = switch_mm - s.home_preset_mm
        self._start_move(ax, s.home_preset_mm, check_soft_limits=False)
        s.homing = True
        return None

    def _cmd_dh(self, ax: int, query: bool, param: str) -> str | None:
        s = self._settings[ax]
        if query:
            return self._fmt_mm(ax, s.home_preset_mm)
        preset = 0.0 if not param else self._param_mm(ax, param)
        stage = self._stage(ax)
        s.origin_mm = stage.position_mm(self._t()) - preset
        s.home_preset_mm = preset
        return None

    def _cmd_sl(self, ax: int, query: bool, param: str) -> str | None:
        s = self._settings[ax]
        if query:
            return self._fmt_mm(ax, s.left_limit_mm)
        value = self._param_mm(ax, param)
        if value > s.right_limit_mm:
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        s.left_limit_mm = value
        return None

    def _cmd_sr(self, ax: int, query: bool, param: str) -> str | None:
        s = self._settings[ax]
        if query:
            return self._fmt_mm(ax, s.right_limit_mm)
        value = self._param_mm(ax, param)
        if value < s.left_limit_mm:
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        s.right_limit_mm = value
        return None

    def _cmd_sn(self, ax: int, query: bool, param: str) -> str | None:
        s = self._settings[ax]
        if query:
            return str(s.units)
        units = self._param_float(ax, param)
        if units not in LINEAR_UNITS_PER_MM:  # steps/encoder counts/angles: not for these stages
            raise self._axis_error(ax, AX_PARAMETER_OUT_OF_RANGE)
        s.units = int(units)
        return None

    # --- identification and status ------------------------------------------
    def _cmd_id(self, ax: int, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        model = STAGE_MODELS[ax] if ax < len(STAGE_MODELS) else "UNKNOWN"
        return f"{model}, {self._settings[ax].serial}"

    def _cmd_ve(self, ax: None, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        return FIRMWARE_VERSION

    def _pop_error(self) -> tuple[int, int]:
        if self._errors:
            return self._errors.popleft()
        return 0, int(round((self._clock_now() - self._t0) * 1000.0))

    def _cmd_te(self, ax: None, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        return str(self._pop_error()[0])

    def _cmd_tb(self, ax: None, query: bool, param: str) -> str | None:
        if not query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        code, ms = self._pop_error()
        return f"{code}, {ms}, {error_message(code)}"

    def _cmd_rs(self, ax: None, query: bool, param: str) -> str | None:
        if query:
            raise _CommandError(ERR_COMMAND_DOES_NOT_EXIST)
        for i in range(self.n_axes):
            self._stage(i).stop(self._t())
            self._stage(i).motor_on = True
            self._stage(i).velocity_mm_s = self._rated_velocity_mm_s[i]
        self._reset_settings()
        self._errors.clear()
        self._stalls.clear()
        return None


def error_message(code: int) -> str:
    """The controller's message for an error code (plain or ``axis*100 + code``)."""
    if code < 100:
        return GENERAL_ERRORS.get(code, "UNKNOWN ERROR")
    return AXIS_ERRORS.get(code % 100, "UNKNOWN ERROR")
