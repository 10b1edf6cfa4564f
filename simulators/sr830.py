"""Stanford Research SR830 DSP lock-in amplifier, simulated over the World.

Speaks the SR830's ASCII command set (manual ch. 5, "Remote Programming"):
four-letter mnemonics, ``?`` for queries, comma-separated parameters,
several commands per line separated by ``;``, case and spaces ignored,
numbers in any format (``5``, ``5.0``, ``.5E1``). Replies are ASCII numbers
with up to 6 significant digits, one line (``\\n``) per query.

Wrong input does what the real unit does: an unknown or malformed command
sets the CMD bit (5, value 32) of the standard event status byte, a parameter
out of range sets the EXE bit (4, value 16); neither produces a reply, so the
client's read times out. ``*ESR?`` reads and clears.

Input buffer (manual ch. 5, "Communicating with GPIB/RS232" and "Status byte
definitions"): the SR830 holds 256 characters of input; on an overflow it
clears its buffers and sets the INP bit (0, value 1) of the standard event
status byte, "input queue overflow". The simulator discards the whole
overflowing command line, so nothing after its next ``;`` runs either.

Signal chain (per query, lazily over virtual time):

* input ``u`` = ``world.lockin_input_v(channel)`` — the chopped signal's
  fundamental (V rms, phase 0); at harmonic ``n`` a square-wave chopper gives
  ``u/n`` for odd ``n`` and nothing for even ``n``;
* demodulation against the reference phase ``PHAS`` = θ:
  ``X_in = u cos θ``, ``Y_in = −u sin θ``;
* the output filter: 1–4 cascaded identical RC stages with time constant τ
  (``OFLT``/``OFSL``), integrated exactly (matrix exponential) over each
  interval with the input varying linearly between samples. Samples are taken
  at every world step (a World controller) and at every query, so a stage that
  moves while another instrument polls is seen at the times it moved;
* white input noise of density ``e_n`` (``world.lockin_noise_v_per_rthz``)
  enters the filter as exact discrete-time noise (covariance
  ``P∞ − Φ P∞ Φᵀ``), so each output's std is ``e_n·√ENBW`` with
  ENBW = 1/(4τ), 1/(8τ), 3/(32τ), 5/(64τ) for 6/12/18/24 dB/oct, and
  readings closer than τ are correlated;
* overload: an input above full scale latches LIAS bit 0 (INPUT), an output
  above full scale bit 2 (OUTPT); the outputs clip at ±1.09 × full scale
  (:data:`OUTPUT_CLIP`), an approximation of the real unit's saturation.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import zlib

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from labctl.simulators.base import TextProtocolHandler

log = logging.getLogger(__name__)

SENSITIVITIES_V = [
    2e-9, 5e-9, 10e-9, 20e-9, 50e-9, 100e-9, 200e-9, 500e-9,
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6,
    1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1.0,
]  # fmt: skip
TIME_CONSTANTS_S = [
    10e-6, 30e-6, 100e-6, 300e-6, 1e-3, 3e-3, 10e-3, 30e-3, 100e-3, 300e-3,
    1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 10e3, 30e3,
]  # fmt: skip
SLOPES_DB_OCT = [6, 12, 18, 24]
#: ENBW × τ of 1..4 cascaded RC stages.
ENBW_TIMES_TAU = {1: 1 / 4, 2: 1 / 8, 3: 3 / 32, 4: 5 / 64}
#: The outputs saturate a little above full scale.
OUTPUT_CLIP = 1.09
FIRMWARE = "ver1.07"

# Status bits
ESR_INP = 1 << 0  # input queue overflow
ESR_EXE = 1 << 4
ESR_CMD = 1 << 5
ESR_PON = 1 << 7
LIAS_INPUT = 1 << 0
LIAS_OUTPUT = 1 << 2
LIAS_UNLOCK = 1 << 3
STB_SCN, STB_IFC, STB_ERR, STB_LIA, STB_MAV, STB_ESB = (1 << i for i in range(6))

_MNEMONIC = re.compile(r"^(\*?[A-Z]{3,4})(\??)(.*)$")
_FORGET_AFTER_TAU = 40.0  # a filter forgets its past after this many τ (e^-40)


class ParameterError(Exception):
    """Out-of-range parameter: EXE bit."""


class CommandError(Exception):
    """Unknown/malformed command: CMD bit."""


def format_value(value: float) -> str:
    """SR830-style ASCII number: up to 6 significant digits."""
    if not math.isfinite(value):
        return "0"
    return f"{value:.6g}"


class _RCFilter:
    """``n`` identical cascaded RC stages per output (X, Y), exact discretisation."""

    def __init__(self, tau_s: float, n: int) -> None:
        self.state = np.zeros((2, 4))
        self.configure(tau_s, n)

    def configure(self, tau_s: float, n: int) -> None:
        if getattr(self, "n", n) < n:  # added stages start charged like the last one
            self.state[:, self.n :] = self.state[:, self.n - 1 : self.n]
        self.tau = float(tau_s)
        self.n = int(n)
        a = (-np.eye(n) + np.eye(n, k=-1)) / self.tau
        b = np.zeros(n)
        b[0] = 1.0 / self.tau
        self.a, self.b = a, b
        # Stationary covariance for unit two-sided white-noise PSD at the input.
        self.p_inf = solve_continuous_lyapunov(a, -np.outer(b, b))

    @property
    def output(self) -> np.ndarray:
        return self.state[:, self.n - 1].copy()

    def settle_to(self, u_xy: np.ndarray, noise_psd: float, rng) -> None:
        """Set the filter to its stationary state for a constant input."""
        self.state[:, :] = u_xy[:, None]
        if noise_psd > 0:
            chol = _psd_sqrt(self.p_inf * noise_psd)
            self.state[:, : self.n] += rng.standard_normal((2, self.n)) @ chol.T

    def propagate(self, dt: float, u0: np.ndarray, u1: np.ndarray, noise_psd: float, rng) -> None:
        """Advance by ``dt`` with the input going linearly from ``u0`` to ``u1``."""
        if dt <= 0:
            return
        horizon = _FORGET_AFTER_TAU * self.tau
        if dt > horizon:  # the distant past is forgotten: restart in steady state
            frac = 1.0 - horizon / dt
            self.settle_to(u0 + (u1 - u0) * frac, noise_psd, rng)
            u0 = u0 + (u1 - u0) * frac
            dt = horizon
        n = self.n
        phi, g_u, g_r, noise_sqrt = _step_matrices(n, dt, self.tau)
        slope = (u1 - u0) / dt
        new = self.state[:, :n] @ phi.T + np.outer(u0, g_u) + np.outer(slope, g_r)
        if noise_psd > 0:
            new += math.sqrt(noise_psd) * (rng.standard_normal((2, n)) @ noise_sqrt.T)
        self.state[:, :n] = new


@functools.lru_cache(maxsize=256)
def _step_matrices(n: int, dt: float, tau: float) -> tuple[np.ndarray, ...]:
    """Step matrices and the unit-PSD noise square root, cached: the world steps the
    filters with the same ``dt`` for hours of virtual time."""
    phi, g_u, g_r = _rc_chain_response(n, dt, tau)
    a = (-np.eye(n) + np.eye(n, k=-1)) / tau
    b = np.zeros(n)
    b[0] = 1.0 / tau
    p_inf = solve_continuous_lyapunov(a, -np.outer(b, b))
    return phi, g_u, g_r, _psd_sqrt(p_inf - phi @ p_inf @ phi.T)


def _rc_chain_response(n: int, dt: float, tau: float) -> tuple[np.ndarray, ...]:
    """Exact step of ``n`` identical cascaded RC stages over ``dt`` (x = dt/τ).

    Returns ``Φ`` (state transition, ``Φ[i,j] = e^-x x^(i-j)/(i-j)!``), the
    response to a constant unit input (``1 − e^-x Σ_{k≤i} x^k/k!``) and to a
    unit-slope ramp starting at zero (``dt − (i+1)τ + τ e^-x Σ_{k≤i} (i+1−k) x^k/k!``).
    """
    x = dt / tau
    ex = math.exp(-x)
    terms = [ex * x**k / math.factorial(k) for k in range(n)]  # e^-x x^k/k!
    phi = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            phi[i, j] = terms[i - j]
    g_u = np.array([1.0 - sum(terms[: i + 1]) for i in range(n)])
    g_r = np.array(
        [
            dt - (i + 1) * tau + tau * sum((i + 1 - k) * terms[k] for k in range(i + 1))
            for i in range(n)
        ]
    )
    return phi, g_u, g_r


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A matrix square root ``L`` (``L Lᵀ = cov``) robust to rounding."""
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return v * np.sqrt(np.clip(w, 0.0, None))


class SR830Simulator(TextProtocolHandler):
    """An SR830 observing ``world.lockin_input_v(channel)``."""

    kind = "visa"
    input_buffer_size = 256

    def __init__(self, world, name: str = "", channel: str = "ref") -> None:
        super().__init__(world, name or f"SR830({channel})")
        self.channel = channel
        self.serial_number = 10000 + zlib.crc32(self.name.encode()) % 90000
        self._reset_settings()
        # The lab leaves the lock-in locked to its chopper (external reference).
        self.reference_internal = 0
        self.esr = ESR_PON
        self.ese = self.sre = 0
        self.lias = 0
        self.liae = self.erre = 0
        self.errs = 0
        self._pending_auto: tuple[float, str] | None = None
        self.power_on_clear = 1
        self._table = self._commands()
        with world.lock:
            world.advance()
            self._t_last = self._t_observed = world.t
            self._u_last = self._input_v()
            self.filter = _RCFilter(self.time_constant_s, self.slope_stages)
            self.filter.settle_to(self._demodulated(self._u_last), self._noise_psd(), world.rng)
            world.add_controller(
                self._on_world_step, at_rest=self._forgotten, coasts_above_c=self._coasts_above_c
            )

    # --- settings -----------------------------------------------------------
    def _reset_settings(self) -> None:
        """*RST defaults (manual: "Reset the unit to its default configurations")."""
        self.reference_internal = 1
        self.internal_frequency_hz = 1000.0
        self.phase_deg = 0.0
        self.harmonic = 1
        self.sine_level_v = 1.0
        self.ref_trigger = 0
        self.input_source = 0
        self.input_ground = 0
        self.input_coupling = 0
        self.line_notch = 0
        self.sensitivity_index = 26
        self.reserve_mode = 1
        self.time_constant_index = 8
        self.slope_index = 1
        self.sync_filter = 0
        self.display = {1: [0, 0], 2: [0, 0]}
        self.offset_expand = {1: [0.0, 0], 2: [0.0, 0], 3: [0.0, 0]}
        self.aux_out_v = [0.0, 0.0, 0.0, 0.0]
        self.output_interface = 1
        self.sample_rate_index = 4
        self.buffer_mode = 1
        self.trigger_start = 0
        self.fast_mode = 0
        self.local_mode = 0
        self.override_remote = 0

    @property
    def sensitivity_v(self) -> float:
        return SENSITIVITIES_V[self.sensitivity_index]

    @property
    def time_constant_s(self) -> float:
        return TIME_CONSTANTS_S[self.time_constant_index]

    @property
    def slope_stages(self) -> int:
        return self.slope_index + 1

    def reference_hz(self) -> float:
        """The reference frequency (FREQ?): the chopper's if external, else the set one."""
        if self.reference_internal:
            return self.internal_frequency_hz
        return float(self.world.lockin_reference_hz(self.channel))

    # --- signal chain ---------------------------------------------------------
    def _input_v(self) -> float:
        return float(self.world.lockin_input_v(self.channel))

    def _noise_psd(self) -> float:
        """Two-sided white-noise PSD (V²/Hz) that gives std = e_n·√ENBW at the output."""
        e_n = float(self.world.lockin_noise_v_per_rthz(self.channel))
        return 0.5 * e_n * e_n

    def _detection_gain(self) -> float:
        """Fraction of the chopped signal's fundamental seen at the detection frequency."""
        n = self.harmonic
        if n % 2 == 0:
            return 0.0  # a square-wave chopper has no even harmonics
        gain = 1.0 / n
        if self.reference_internal:
            # Not locked to the chopper: the beat note is averaged by the filter.
            chopper_hz = float(self.world.lockin_reference_hz(self.channel))
            beat_hz = abs(n * self.internal_frequency_hz - n * chopper_hz)
            if beat_hz > 0:
                w_tau = 2 * math.pi * beat_hz * self.time_constant_s
                gain *= (1 + w_tau * w_tau) ** (-self.slope_stages / 2)
        return gain

    def _demodulated(self, u: float) -> np.ndarray:
        theta = math.radians(self.phase_deg)
        g = self._detection_gain() * u
        return np.array([g * math.cos(theta), -g * math.sin(theta)])

    def _integrate(self, t: float, u: float) -> None:
        """Filter from the last sample to ``(t, u)``; call under ``world.lock``."""
        dt = t - self._t_last
        u0 = self._demodulated(self._u_last)
        u1 = self._demodulated(u)
        if dt > 0:
            self.filter.propagate(dt, u0, u1, self._noise_psd(), self.world.rng)
            self._t_last = t
        if max(abs(u0).max(), abs(u1).max()) > self.sensitivity_v:
            self.lias |= LIAS_INPUT
        self._u_last = u

    def _forgotten(self) -> bool:
        """Unqueried for longer than the filter remembers: world steps do not touch it."""
        return self.world.t - self._t_observed > _FORGET_AFTER_TAU * self.filter.tau

    def _coasts_above_c(self) -> float | None:
        """Long world steps leave a forgotten filter as it is (it heats nothing): any PV."""
        return -math.inf if self._forgotten() else None

    def _on_world_step(self, t: float, dt: float) -> None:
        """World controller: sample the input at each world step (world.lock held).

        Idling cheaply (hours of an anneal with nobody reading the unit): once the
        unit has not been queried for longer than its filter remembers
        (:data:`_FORGET_AFTER_TAU` time constants), the filter is not stepped; the
        next query integrates the gap in one step (:meth:`_RCFilter.propagate`
        restarts a forgotten past in steady state). What a reading shows depends
        only on the last few time constants, which are integrated as before.
        """
        if t - self._t_observed > _FORGET_AFTER_TAU * self.filter.tau:
            return
        try:
            self._integrate(t, self._input_v())
        except Exception:  # never break the world for other instruments
            log.exception("%s: lock-in filter update failed", self.name)

    def _sync(self) -> None:
        """Bring the outputs up to the clock's now (takes world.lock)."""
        with self.world.lock:
            self.world.advance()
            self._integrate(self.world.t, self._input_v())
            self._t_observed = self.world.t
            if self._pending_auto is not None and self.world.t >= self._pending_auto[0]:
                self._finish_auto(self._pending_auto[1])
                self._pending_auto = None
            x, y = self.filter.output
            if max(abs(x), abs(y)) > self.sensitivity_v:
                self.lias |= LIAS_OUTPUT

    def outputs(self) -> tuple[float, float]:
        """X and Y (V) as the unit reports them (clipped near full scale)."""
        limit = OUTPUT_CLIP * self.sensitivity_v
        x, y = self.filter.output
        return float(np.clip(x, -limit, limit)), float(np.clip(y, -limit, limit))

    def _parameter(self, index: int) -> float:
        """SNAP?/OUTP? parameter ``index`` (1 X, 2 Y, 3 R, 4 θ, 5–8 aux in, 9 f, 10/11 CH1/2)."""
        x, y = self.outputs()
        if index == 1:
            return x
        if index == 2:
            return y
        if index == 3:
            return math.hypot(x, y)
        if index == 4:
            return math.degrees(math.atan2(y, x))
        if 5 <= index <= 8:
            return 0.0  # nothing connected to the aux inputs
        if index == 9:
            return self.reference_hz()
        if index in (10, 11):
            ch = index - 9
            return self._display_value(ch)
        raise ParameterError(index)

    def _display_value(self, ch: int) -> float:
        kind = self.display[ch][0]
        if kind == 0:
            return self._parameter(ch)  # X or Y
        if kind == 1:
            return self._parameter(ch + 2)  # R or θ
        if kind == 2:  # X/Y noise: e_n·√ENBW
            e_n = float(self.world.lockin_noise_v_per_rthz(self.channel))
            return e_n * math.sqrt(ENBW_TIMES_TAU[self.slope_stages] / self.time_constant_s)
        return 0.0  # aux inputs

    # --- auto functions -------------------------------------------------------
    def _start_auto(self, what: str) -> None:
        tau = self.time_constant_s
        duration = {"AGAN": 10 * tau + 0.5, "ARSV": 5 * tau + 0.5, "APHS": 5 * tau + 0.2}[what]
        if what == "AGAN" and tau > 1.0:
            return  # the manual: AGAN does nothing if the time constant is longer than 1 s
        self._pending_auto = (self.world.t + duration, what)

    def _finish_auto(self, what: str) -> None:
        x, y = self.filter.output
        r = math.hypot(x, y)
        if what == "AGAN":
            fitting = [i for i, s in enumerate(SENSITIVITIES_V) if r < 0.9 * s]
            self.sensitivity_index = fitting[0] if fitting else len(SENSITIVITIES_V) - 1
        elif what == "APHS":
            self.phase_deg = _wrap_phase(self.phase_deg + math.degrees(math.atan2(y, x)))
        elif what == "ARSV":
            self.reserve_mode = 2  # low noise is enough without an overload

    def _busy(self) -> bool:
        return self._pending_auto is not None

    # --- protocol -------------------------------------------------------------
    def handle_line(self, line: str) -> str | None:
        replies: list[str] = []
        for command in line.split(";"):
            command = "".join(command.split()).upper()
            if not command:
                continue
            try:
                reply = self._execute(command)
            except CommandError:
                self.esr |= ESR_CMD
                continue
            except ParameterError:
                self.esr |= ESR_EXE
                continue
            if reply is not None:
                replies.append(reply)
        if not replies:
            return None
        return self.reply_termination.join(replies)

    def on_internal_error(self, line: str) -> str | None:
        self.esr |= ESR_EXE
        return None

    def on_input_overflow(self) -> str | None:
        self.esr |= ESR_INP
        return None

    def _execute(self, command: str) -> str | None:
        m = _MNEMONIC.match(command)
        if not m:
            raise CommandError(command)
        mnemonic, query, rest = m.group(1), m.group(2) == "?", m.group(3)
        params = _parse_params(rest)
        handler = self._table.get(mnemonic)
        if handler is None:
            raise CommandError(command)
        # Settings change the filter the world's steps integrate: hold world.lock
        # (order: self.lock → world.lock; the world-step hook takes world.lock only).
        with self.world.lock:
            self._sync()
            return handler(query, params)

    def _commands(self) -> dict:
        s = self
        return {
            "*IDN": s._idn,
            "*RST": s._rst,
            "*CLS": s._cls,
            "*ESR": s._esr,
            "*ESE": lambda q, p: s._register(q, p, "ese"),
            "*SRE": lambda q, p: s._register(q, p, "sre"),
            "*STB": s._stb,
            "*PSC": lambda q, p: s._setting(q, p, "power_on_clear", 0, 1),
            "LIAS": s._lias,
            "LIAE": lambda q, p: s._register(q, p, "liae"),
            "ERRS": s._errs,
            "ERRE": lambda q, p: s._register(q, p, "erre"),
            "OUTP": s._outp,
            "OUTR": s._outr,
            "SNAP": s._snap,
            "OAUX": s._oaux,
            "AUXV": s._auxv,
            "SENS": lambda q, p: s._setting(q, p, "sensitivity_index", 0, 26),
            "OFLT": s._oflt,
            "OFSL": s._ofsl,
            "SYNC": lambda q, p: s._setting(q, p, "sync_filter", 0, 1),
            "RMOD": lambda q, p: s._setting(q, p, "reserve_mode", 0, 2),
            "FREQ": s._freq,
            "PHAS": s._phas,
            "HARM": s._harm,
            "SLVL": s._slvl,
            "FMOD": s._fmod,
            "RSLP": lambda q, p: s._setting(q, p, "ref_trigger", 0, 2),
            "ISRC": lambda q, p: s._setting(q, p, "input_source", 0, 3),
            "IGND": lambda q, p: s._setting(q, p, "input_ground", 0, 1),
            "ICPL": lambda q, p: s._setting(q, p, "input_coupling", 0, 1),
            "ILIN": lambda q, p: s._setting(q, p, "line_notch", 0, 3),
            "OUTX": lambda q, p: s._setting(q, p, "output_interface", 0, 1),
            "OVRM": lambda q, p: s._setting(q, p, "override_remote", 0, 1),
            "LOCL": lambda q, p: s._setting(q, p, "local_mode", 0, 2),
            "SRAT": lambda q, p: s._setting(q, p, "sample_rate_index", 0, 14),
            "SEND": lambda q, p: s._setting(q, p, "buffer_mode", 0, 1),
            "TSTR": lambda q, p: s._setting(q, p, "trigger_start", 0, 1),
            "FAST": lambda q, p: s._setting(q, p, "fast_mode", 0, 2),
            "DDEF": s._ddef,
            "OEXP": s._oexp,
            "AOFF": s._aoff,
            "AGAN": lambda q, p: s._action(q, p, "AGAN"),
            "ARSV": lambda q, p: s._action(q, p, "ARSV"),
            "APHS": lambda q, p: s._action(q, p, "APHS"),
            "STRT": lambda q, p: s._action(q, p, None),
            "PAUS": lambda q, p: s._action(q, p, None),
            "REST": lambda q, p: s._action(q, p, None),
            "TRIG": lambda q, p: s._action(q, p, None),
            "SPTS": s._spts,
        }

    # generic forms -------------------------------------------------------------
    def _setting(self, query, params, attr, lo, hi) -> str | None:
        if query:
            _expect(params, 0)
            return str(getattr(self, attr))
        _expect(params, 1)
        value = _int_in(params[0], lo, hi)
        setattr(self, attr, value)
        return None

    def _register(self, query, params, attr) -> str | None:
        value = getattr(self, attr)
        if query:
            if params:
                _expect(params, 1)
                return str((value >> _int_in(params[0], 0, 7)) & 1)
            return str(value)
        if len(params) == 1:
            setattr(self, attr, _int_in(params[0], 0, 255))
        elif len(params) == 2:
            bit, on = _int_in(params[0], 0, 7), _int_in(params[1], 0, 1)
            setattr(self, attr, (value | (1 << bit)) if on else (value & ~(1 << bit)))
        else:
            raise CommandError(params)
        return None

    def _action(self, query, params, auto: str | None) -> None:
        if query or params:
            raise CommandError(auto)
        if auto:
            self._start_auto(auto)
        return None

    # specific commands --------------------------------------------------------
    def _idn(self, query, params):
        if not query or params:
            raise CommandError("*IDN")
        return f"Stanford_Research_Systems,SR830,s/n{self.serial_number},{FIRMWARE}"

    def _rst(self, query, params):
        if query or params:
            raise CommandError("*RST")
        self._reset_settings()
        self._pending_auto = None
        self.filter.configure(self.time_constant_s, self.slope_stages)
        return None

    def _cls(self, query, params):
        if query or params:
            raise CommandError("*CLS")
        self.esr = self.lias = self.errs = 0
        return None

    def _esr(self, query, params):
        if not query:
            raise CommandError("*ESR")  # query only
        if params:
            _expect(params, 1)
            bit = _int_in(params[0], 0, 7)
            value = (self.esr >> bit) & 1
            self.esr &= ~(1 << bit)
            return str(value)
        value, self.esr = self.esr, 0
        return str(value)

    def _lias(self, query, params):
        if not query:
            raise CommandError("LIAS")
        if params:
            _expect(params, 1)
            bit = _int_in(params[0], 0, 7)
            value = (self.lias >> bit) & 1
            self.lias &= ~(1 << bit)
            return str(value)
        value, self.lias = self.lias, 0
        return str(value)

    def _errs(self, query, params):
        if not query:
            raise CommandError("ERRS")
        if params:
            _expect(params, 1)
            bit = _int_in(params[0], 0, 7)
            value = (self.errs >> bit) & 1
            self.errs &= ~(1 << bit)
            return str(value)
        value, self.errs = self.errs, 0
        return str(value)

    def _stb(self, query, params):
        if not query:
            raise CommandError("*STB")
        stb = STB_SCN
        if not self._busy():
            stb |= STB_IFC
        if self.errs & self.erre:
            stb |= STB_ERR
        if self.lias & self.liae:
            stb |= STB_LIA
        if self.esr & self.ese:
            stb |= STB_ESB
        if stb & self.sre & 0xBF:
            stb |= 1 << 6
        if params:
            _expect(params, 1)
            return str((stb >> _int_in(params[0], 0, 7)) & 1)
        return str(stb)

    def _outp(self, query, params):
        if not query:
            raise CommandError("OUTP")
        _expect(params, 1)
        return format_value(self._parameter(_int_in(params[0], 1, 4)))

    def _outr(self, query, params):
        if not query:
            raise CommandError("OUTR")
        _expect(params, 1)
        return format_value(self._display_value(_int_in(params[0], 1, 2)))

    def _snap(self, query, params):
        if not query:
            raise CommandError("SNAP")
        if not 2 <= len(params) <= 6:
            raise CommandError("SNAP")
        indices = [_int_in(p, 1, 11) for p in params]
        return ",".join(format_value(self._parameter(i)) for i in indices)

    def _oaux(self, query, params):
        if not query:
            raise CommandError("OAUX")
        _expect(params, 1)
        _int_in(params[0], 1, 4)
        return format_value(0.0)

    def _auxv(self, query, params):
        if query:
            _expect(params, 1)
            return format_value(self.aux_out_v[_int_in(params[0], 1, 4) - 1])
        _expect(params, 2)
        i = _int_in(params[0], 1, 4)
        self.aux_out_v[i - 1] = round(_float_in(params[1], -10.5, 10.5), 3)
        return None

    def _oflt(self, query, params):
        if query:
            return self._setting(True, params, "time_constant_index", 0, 19)
        _expect(params, 1)
        i = _int_in(params[0], 0, 19)
        if i > 13 and self.harmonic * self.reference_hz() > 200.0:
            raise ParameterError("time constants above 30 s need f < 200 Hz")
        self.time_constant_index = i
        self.filter.configure(self.time_constant_s, self.slope_stages)
        return None

    def _ofsl(self, query, params):
        if query:
            return self._setting(True, params, "slope_index", 0, 3)
        _expect(params, 1)
        self.slope_index = _int_in(params[0], 0, 3)
        self.filter.configure(self.time_constant_s, self.slope_stages)
        return None

    def _freq(self, query, params):
        if query:
            _expect(params, 0)
            return format_value(self.reference_hz())
        _expect(params, 1)
        f = _float_in(params[0], 0.001, 102000.0)
        if not self.reference_internal or self.harmonic * f > 102000.0:
            raise ParameterError("FREQ needs the internal reference, n·f ≤ 102 kHz")
        self.internal_frequency_hz = float(f"{f:.5g}") if f < 1 else round(f, 4)
        return None

    def _phas(self, query, params):
        if query:
            _expect(params, 0)
            return format_value(self.phase_deg)
        _expect(params, 1)
        self.phase_deg = _wrap_phase(round(_float_in(params[0], -360.0, 729.99), 2))
        return None

    def _harm(self, query, params):
        if query:
            return self._setting(True, params, "harmonic", 1, 19999)
        _expect(params, 1)
        n = _int_in(params[0], 1, 19999)
        if n * self.reference_hz() > 102000.0:
            raise ParameterError("n·f above 102 kHz")
        self.harmonic = n
        return None

    def _slvl(self, query, params):
        if query:
            _expect(params, 0)
            return format_value(self.sine_level_v)
        _expect(params, 1)
        self.sine_level_v = round(_float_in(params[0], 0.004, 5.0), 3)
        return None

    def _fmod(self, query, params):
        if query:
            return self._setting(True, params, "reference_internal", 0, 1)
        _expect(params, 1)
        internal = _int_in(params[0], 0, 1)
        if internal and not self.reference_internal:
            self.internal_frequency_hz = self.reference_hz()  # keeps the last frequency
        self.reference_internal = internal
        return None

    def _ddef(self, query, params):
        if query:
            _expect(params, 1)
            ch = _int_in(params[0], 1, 2)
            return ",".join(str(v) for v in self.display[ch])
        if len(params) not in (2, 3):
            raise CommandError("DDEF")
        ch = _int_in(params[0], 1, 2)
        kind = _int_in(params[1], 0, 4)
        ratio = _int_in(params[2], 0, 2) if len(params) == 3 else 0
        self.display[ch] = [kind, ratio]
        return None

    def _oexp(self, query, params):
        if query:
            _expect(params, 1)
            i = _int_in(params[0], 1, 3)
            off, exp = self.offset_expand[i]
            return f"{off:.2f},{exp}"
        _expect(params, 3)
        i = _int_in(params[0], 1, 3)
        self.offset_expand[i] = [
            round(_float_in(params[1], -105.0, 105.0), 2),
            _int_in(params[2], 0, 2),
        ]
        return None

    def _aoff(self, query, params):
        if query:
            raise CommandError("AOFF")
        _expect(params, 1)
        _int_in(params[0], 1, 3)
        return None

    def _spts(self, query, params):
        if not query or params:
            raise CommandError("SPTS")
        return "0"


def _wrap_phase(deg: float) -> float:
    """The SR830 keeps the phase in −180…+180 °."""
    wrapped = (deg + 180.0) % 360.0 - 180.0
    return 180.0 if wrapped == -180.0 and deg > 0 else wrapped


def _parse_params(rest: str) -> list[float]:
    if not rest:
        return []
    out = []
    for p in rest.split(","):
        try:
            value = float(p)
        except ValueError:
            raise CommandError(rest) from None
        if not math.isfinite(value):
            raise CommandError(rest)
        out.append(value)
    return out


def _expect(params: list, n: int) -> None:
    if len(params) != n:
        raise CommandError(params)


def _int_in(value: float, lo: int, hi: int) -> int:
    i = int(round(value))
    if not lo <= i <= hi:
        raise ParameterError(value)
    return i


def _float_in(value: float, lo: float, hi: float) -> float:
    if not lo <= value <= hi:
        raise ParameterError(value)
    return float(value)
