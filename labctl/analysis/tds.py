"""THz time-domain traces → complex photoconductivity Δσ(ω) of a thin film.

Convention: fields ∝ exp(−iωt), so the spectrum is E(ω) = ∫E(t) e^{+iωt} dt.
numpy's forward FFT uses e^{−iωt}; :func:`spectrum` conjugates its output once,
here, and nothing downstream ever conjugates again.

Thin film of thickness d on a substrate of index n (Tinkham):
    E_pumped/E_ref = (1 + n)/(1 + n + Z₀ d Δσ)
    Δσ = (1 + n)/(Z₀ d)·(E_ref/E_pumped − 1)            (exact)
    Δσ ≈ −(1 + n)/(Z₀ d)·ΔE/E_ref                        (small signal)
with ΔE = E_pumped − E_ref.

Noise: per frequency, one standard deviation ``sigma_err`` that applies to the real
and to the imaginary part of Δσ separately. From ≥ 3 repeated sweeps it is the
scatter of the per-sweep Δσ divided by √n; otherwise the time-domain noise of ΔE
in the pre-pulse baseline (before E_ref's onset) is propagated: white noise of
standard deviation s gives Re and Im of ΔE(ω) a standard deviation s·dt·sqrt(Σw²/2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import get_window

from labctl.errors import AnalysisError

from .constants import TWO_PI, Z0_OHM

PS = 1e-12
MIN_SWEEPS_FOR_SCATTER = 3
#: peak |ΔE| must reach this many baseline-noise standard deviations
MIN_SIGNAL_TO_NOISE = 5.0
#: frequencies where |E_ref(ω)| is below this fraction of its peak are dropped
REF_SPECTRUM_FLOOR = 0.01
#: echo search: lags beyond this (ps), replicas above this fraction of the main pulse
ECHO_MIN_LAG_PS = 3.0
ECHO_THRESHOLD = 0.03


@dataclass
class TDSSpectrum:
    """Complex photoconductivity spectrum of a thin film (physics convention).

    ``sigma_err`` is the 1σ noise of Re Δσ and of Im Δσ (each), S/m, or ``None``.
    ``points_per_independent`` > 1 when zero padding interpolated the spectrum
    (neighbouring points are then not independent; the fit inflates its covariance by it).
    """

    freq_hz: np.ndarray
    sigma: np.ndarray
    sigma_err: np.ndarray | None
    e_ref: np.ndarray  # E_ref(ω), physics convention, V/m·s (arbitrary units · s)
    delta_e: np.ndarray  # ΔE(ω)
    thickness_m: float
    substrate_index: float
    method: str
    noise_source: str | None
    n_sweeps: int
    points_per_independent: float = 1.0
    n_dropped_low_ref: int = 0  # window frequencies dropped: |E_ref| < 1 % of its peak
    usable_band_hz: tuple[float, float] | None = None  # where |E_ref| ≥ 1 % of its peak
    echo: Echo | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def freq_thz(self) -> np.ndarray:
        return self.freq_hz / 1e12

    def select(self, fmin_hz: float | None = None, fmax_hz: float | None = None) -> TDSSpectrum:
        """The same spectrum restricted to fmin_hz ≤ f ≤ fmax_hz."""
        keep = np.ones(self.freq_hz.shape, bool)
        if fmin_hz is not None:
            keep &= self.freq_hz >= fmin_hz
        if fmax_hz is not None:
            keep &= self.freq_hz <= fmax_hz
        if not keep.any():
            raise AnalysisError(
                f"no frequency points between {fmin_hz or 0:.3g} and {fmax_hz or np.inf:.3g} Hz"
            )
        err = None if self.sigma_err is None else self.sigma_err[keep]
        return TDSSpectrum(
            self.freq_hz[keep],
            self.sigma[keep],
            err,
            self.e_ref[keep],
            self.delta_e[keep],
            self.thickness_m,
            self.substrate_index,
            self.method,
            self.noise_source,
            self.n_sweeps,
            self.points_per_independent,
            self.n_dropped_low_ref,
            self.usable_band_hz,
            self.echo,
            list(self.warnings),
        )


def time_step_s(time_ps) -> float:
    """The (uniform) time step in seconds; raises AnalysisError if the grid is unusable."""
    t = np.asarray(time_ps, float)
    if t.ndim != 1 or t.size < 4:
        raise AnalysisError("time axis needs at least 4 points")
    steps = np.diff(t)
    dt = float(np.median(steps))
    if dt <= 0 or np.any(steps <= 0):
        raise AnalysisError("time axis is not strictly increasing")
    if np.max(np.abs(steps - dt)) > 0.01 * dt:
        raise AnalysisError("time axis is not equally spaced (needed for the FFT)")
    return dt * PS


#: scipy window names usable without a parameter (``tukey``/``taylor``/``exponential``
#: take an optional one) and those that need one (``("kaiser", 8.6)``, CLI ``kaiser,8.6``).
WINDOW_NAMES = (
    "hann",
    "hamming",
    "blackman",
    "blackmanharris",
    "nuttall",
    "flattop",
    "bartlett",
    "triang",
    "boxcar",
    "cosine",
    "bohman",
    "parzen",
    "barthann",
    "lanczos",
    "tukey",
    "taylor",
    "exponential",
)
WINDOW_NAMES_WITH_PARAMETER = ("kaiser", "gaussian", "general_gaussian", "chebwin", "dpss")


def make_window(n: int, window: str | tuple | None) -> np.ndarray:
    """A window of length n (scipy names, e.g. ``"hann"``, ``("tukey", 0.2)``) or ones.

    An unknown name or a missing/bad parameter raises AnalysisError listing the names.
    """
    if window is None:
        return np.ones(n)
    try:
        w = np.asarray(get_window(window, n, fftbins=False), float)
    except (ValueError, TypeError) as exc:
        raise AnalysisError(
            f"unusable FFT window {window!r} ({exc}); valid names: {', '.join(WINDOW_NAMES)}; "
            f"with a parameter: {', '.join(WINDOW_NAMES_WITH_PARAMETER)} (e.g. kaiser,8.6)"
        ) from None
    if w.shape != (n,) or not np.all(np.isfinite(w)) or not np.any(w):
        raise AnalysisError(f"FFT window {window!r} gives no usable weights for {n} points")
    return w


MAX_PAD_FACTOR = 16.0


def check_pad_factor(pad_factor: float) -> float:
    """``pad_factor`` as a float, or AnalysisError unless finite with 1 ≤ pad_factor ≤ 16."""
    try:
        pf = float(pad_factor)
    except (TypeError, ValueError):
        raise AnalysisError(f"zero-padding factor must be a number, got {pad_factor!r}") from None
    if not (np.isfinite(pf) and 1.0 <= pf <= MAX_PAD_FACTOR):
        raise AnalysisError(
            f"zero-padding factor must be between 1 and {MAX_PAD_FACTOR:g}, got {pad_factor}"
        )
    return pf


def spectrum(
    time_ps, field, *, window: str | tuple | None = None, pad_factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Physics-convention spectrum E(ω) = ∫E(t)e^{+iωt}dt of a real trace (last axis).

    Returns (freq_hz, E(f)) for f ≥ 0. ``pad_factor`` (1 to 16) zero-pads to that many
    times the trace length (interpolates; adds no information).
    """
    t = np.asarray(time_ps, float)
    x = np.asarray(field, float)
    dt = time_step_s(t)
    n = t.size
    n_fft = int(round(n * check_pad_factor(pad_factor)))
    w = make_window(n, window)
    freq = np.fft.rfftfreq(n_fft, dt)
    # numpy: Σ x e^{−iωt_n}; physics: conjugate, and put the time origin at t = 0.
    spec = np.conj(np.fft.rfft(x * w, n_fft)) * dt * np.exp(1j * TWO_PI * freq * t[0] * PS)
    return freq, spec


def conductivity_from_fields(
    e_ref_w: np.ndarray,
    delta_e_w: np.ndarray,
    thickness_m: float,
    substrate_index: float,
    method: str = "exact",
) -> np.ndarray:
    """Δσ (S/m) from spectra E_ref(ω), ΔE(ω): ``method`` ``"exact"`` or ``"small-signal"``."""
    pref = (1.0 + substrate_index) / (Z0_OHM * thickness_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "exact":
            return pref * (e_ref_w / (e_ref_w + delta_e_w) - 1.0)
        if method == "small-signal":
            return -pref * delta_e_w / e_ref_w
    raise AnalysisError(f"unknown method {method!r} (exact or small-signal)")


def smooth_variance(var: np.ndarray, width: int = 7) -> np.ndarray:
    """Running mean of a per-frequency variance over ``width`` points (edges: shrinking
    window). Noise varies slowly with frequency; averaging neighbours turns the few
    degrees of freedom of a handful of sweeps into many, so weights do not chase noise."""
    v = np.asarray(var, float)
    if v.size < 2 or width <= 1:
        return v
    half = width // 2
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(v.size)
    lo = np.clip(i - half, 0, v.size)
    hi = np.clip(i + half + 1, 0, v.size)
    return (c[hi] - c[lo]) / (hi - lo)


def baseline_noise(time_ps, e_ref, delta_e, guard_ps: float = 0.5) -> float | None:
    """Standard deviation of ΔE before E_ref's onset (10 % of its peak) minus ``guard_ps``.

    Returns None when fewer than 8 baseline points exist.
    """
    t = np.asarray(time_ps, float)
    ref = np.asarray(e_ref, float)
    onset = int(np.argmax(np.abs(ref) > 0.1 * np.max(np.abs(ref))))
    end = int(np.searchsorted(t, t[onset] - guard_ps))
    if end < 8:
        return None
    base = np.asarray(delta_e, float)[:end]
    return float(np.std(base - base.mean(), ddof=1))


@dataclass
class Echo:
    """A delayed replica of the main pulse in a trace (e.g. a substrate reflection)."""

    delay_ps: float  # lag after the main pulse
    relative_amplitude: float  # |autocorrelation| at that lag ≈ replica/main amplitude
    arrival_ps: float  # where the replica's leading edge sits in the scan

    def warning(self) -> str:
        return (
            f"E_ref contains a delayed replica of the pulse (substrate echo?) "
            f"{self.delay_ps:.2f} ps after the main pulse, "
            f"{100 * self.relative_amplitude:.0f} % of its amplitude, inside the scan: "
            f"it puts Fabry-Pérot fringes into the spectrum; truncate the scan before "
            f"t ≈ {self.arrival_ps:.2f} ps (it was not removed)"
        )


def detect_echo(
    time_ps,
    e_ref,
    *,
    min_lag_ps: float = ECHO_MIN_LAG_PS,
    threshold: float = ECHO_THRESHOLD,
) -> Echo | None:
    """The strongest delayed replica of the pulse in ``e_ref``, or None.

    Looks for a local maximum of |autocorrelation| (normalised to 1 at zero lag) at a
    lag > ``min_lag_ps`` above ``threshold``; a replica r·E(t − L) gives ≈ r at lag L.
    One FFT of twice the trace length (~0.05 ms for 400 points): cheap enough for
    every update.
    """
    t = np.asarray(time_ps, float)
    x = np.asarray(e_ref, float)
    if x.ndim > 1:
        x = x.mean(axis=0)
    n = x.size
    if n < 8:
        return None
    dt = float(t[1] - t[0])
    x = x - np.median(x)
    power = np.abs(np.fft.rfft(x, 2 * n)) ** 2
    ac = np.fft.irfft(power, 2 * n)[:n]
    if not ac[0] > 0:
        return None
    mag = np.abs(ac / ac[0])
    start = int(np.ceil(min_lag_ps / dt))
    if start >= n - 2:
        return None
    seg = mag[start:]
    j = int(np.argmax(seg))
    # a local maximum, not the decaying tail of the main pulse at the search edge
    if j == 0 or seg[j] <= threshold or seg[j] < seg[0] * 1.5:
        return None
    lag = (start + j) * dt
    amp = np.abs(x)
    onset = int(np.argmax(amp > 0.1 * amp.max()))
    return Echo(
        delay_ps=float(lag),
        relative_amplitude=float(seg[j]),
        arrival_ps=float(t[0] + (onset * dt) + lag),
    )


def signal_to_noise(time_ps, e_ref, delta_e, noise: float, f_cut_hz: float) -> float:
    """Peak |ΔE| over the baseline noise: the larger of the raw ratio and that of ΔE
    low-passed (Gaussian, half power at ``f_cut_hz``, the top of the usable band), whose
    noise is re-measured in the baseline. White noise above the THz band then does not
    hide an in-band signal; pure noise gives ≈ 3–4 for a few hundred points."""
    t = np.asarray(time_ps, float)
    de = np.asarray(delta_e, float)
    raw = float(np.max(np.abs(de))) / noise
    dt = time_step_s(t)
    freq = np.fft.rfftfreq(de.size, dt)
    gain = np.exp(-np.log(2.0) * (freq / f_cut_hz) ** 2)
    smooth = np.fft.irfft(np.fft.rfft(de - de.mean()) * gain, de.size)
    s_smooth = baseline_noise(t, e_ref, smooth)
    if not s_smooth:
        return raw
    return max(raw, float(np.max(np.abs(smooth))) / s_smooth)


def _check_signal(t, ref_mean, de_mean, base_noise, f_cut_hz) -> None:
    """AnalysisError when ΔE is at the noise level (see :func:`signal_to_noise`)."""
    if base_noise is None or base_noise <= 0:
        return
    snr = signal_to_noise(t, ref_mean, de_mean, base_noise, f_cut_hz)
    if snr < MIN_SIGNAL_TO_NOISE:
        raise AnalysisError(
            f"no usable signal: peak |dE| = {np.max(np.abs(de_mean)):.3g} is only "
            f"{snr:.1f}× the baseline noise {base_noise:.3g} (need ≥ "
            f"{MIN_SIGNAL_TO_NOISE:g}×, also after low-passing to the "
            f"{f_cut_hz / 1e12:.2f} THz band)"
        )


def photoconductivity(
    time_ps,
    e_ref,
    delta_e,
    *,
    thickness_m: float,
    substrate_index: float,
    fmin_hz: float | None = None,
    fmax_hz: float | None = None,
    window: str | tuple | None = None,
    pad_factor: float = 1.0,
    method: str = "exact",
    noise: str = "auto",
    check_echo: bool = True,
) -> TDSSpectrum:
    """Complex photoconductivity Δσ(ω) of a thin film from E_ref(t) and ΔE(t).

    Refuses (AnalysisError) a ΔE that is zero or whose peak is below
    :data:`MIN_SIGNAL_TO_NOISE` × the baseline noise (:func:`signal_to_noise`). Drops window frequencies where
    |E_ref(ω)| < :data:`REF_SPECTRUM_FLOOR` of its peak (counted in ``n_dropped_low_ref``
    and ``warnings``). With ``check_echo``, a delayed replica of the pulse in E_ref
    (:func:`detect_echo`) is reported in ``echo`` and ``warnings`` (not removed).

    Parameters
    ----------
    time_ps : (n,) equally spaced delays, ps.
    e_ref, delta_e : (n,) one sweep, or (n_sweeps, n) repeated sweeps (averaged for Δσ).
        ``delta_e`` = E_pumped − E_ref, same units as ``e_ref``.
    thickness_m, substrate_index : film thickness (m) and substrate THz index.
    fmin_hz, fmax_hz : frequency window kept.
    window, pad_factor : optional window (scipy name) and zero-padding factor.
    method : ``"exact"`` (Tinkham) or ``"small-signal"``.
    noise : ``"auto"`` (sweeps if ≥ 3, else baseline), ``"sweeps"``, ``"baseline"`` or ``"none"``.
    """
    if not (np.isfinite(thickness_m) and thickness_m > 0):
        raise AnalysisError(f"film thickness must be finite and positive, got {thickness_m} m")
    if not (np.isfinite(substrate_index) and substrate_index > 0):
        raise AnalysisError(f"substrate index must be finite and positive, got {substrate_index}")
    ref2 = np.atleast_2d(np.asarray(e_ref, float))
    de2 = np.atleast_2d(np.asarray(delta_e, float))
    t = np.asarray(time_ps, float)
    if ref2.shape != de2.shape or ref2.shape[-1] != t.size:
        raise AnalysisError(f"shapes differ: time {t.shape}, E_ref {ref2.shape}, dE {de2.shape}")
    if not (np.all(np.isfinite(ref2)) and np.all(np.isfinite(de2))):
        raise AnalysisError("E_ref or dE contains NaN or infinite values")
    n_sweeps = ref2.shape[0]
    ref_mean = ref2.mean(axis=0)
    de_mean = de2.mean(axis=0)
    base_noise = baseline_noise(t, ref_mean, de_mean)
    warnings: list[str] = []
    echo = detect_echo(t, ref_mean) if check_echo else None
    if echo is not None:
        warnings.append(echo.warning())
    freq, e_ref_w = spectrum(t, ref_mean, window=window, pad_factor=pad_factor)
    _, de_w = spectrum(t, de_mean, window=window, pad_factor=pad_factor)
    sigma = conductivity_from_fields(e_ref_w, de_w, thickness_m, substrate_index, method)

    keep = freq > 0
    if fmin_hz is not None:
        keep &= freq >= fmin_hz
    if fmax_hz is not None:
        keep &= freq <= fmax_hz
    if not keep.any():
        raise AnalysisError(
            f"no frequency points between {(fmin_hz or 0) / 1e12:.3g} and "
            f"{(fmax_hz or np.inf) / 1e12:.3g} THz (resolution {freq[1] / 1e12:.3g} THz)"
        )
    # drop frequencies where the reference carries (almost) no field: Δσ there is noise
    ref_amp = np.abs(e_ref_w)
    i_peak = int(np.argmax(np.where(freq > 0, ref_amp, -1.0)))
    strong = ref_amp >= REF_SPECTRUM_FLOOR * ref_amp[i_peak]
    strong[0] = False  # DC is no part of the band
    weak_i = np.flatnonzero(~strong)
    lo_i = int(weak_i[weak_i < i_peak].max()) + 1  # the contiguous run around the peak
    above = weak_i[weak_i > i_peak]
    hi_i = int(above.min()) - 1 if above.size else freq.size - 1
    band = (float(freq[lo_i]), float(freq[hi_i]))
    band_text = f"{band[0] / 1e12:.2f}–{band[1] / 1e12:.2f} THz"
    if not np.any(de_mean):
        raise AnalysisError("dE is zero everywhere: no photoinduced signal to analyse")
    _check_signal(t, ref_mean, de_mean, base_noise, band[1])
    weak = keep & ~strong
    n_dropped = int(weak.sum())
    n_window = int(keep.sum())
    keep &= strong
    if not keep.any():
        raise AnalysisError(
            f"|E_ref| is below {100 * REF_SPECTRUM_FLOOR:g} % of its peak at all "
            f"{n_window} frequencies between {(fmin_hz or 0) / 1e12:.3g} and "
            f"{(fmax_hz or np.inf) / 1e12:.3g} THz; the usable band is {band_text}"
        )
    if n_dropped:
        warnings.append(
            f"dropped {n_dropped} of {n_window} frequencies in the window where |E_ref| is "
            f"below {100 * REF_SPECTRUM_FLOOR:g} % of its peak (usable band {band_text})"
        )

    sigma_err = None
    source = None
    mode = noise
    if mode == "auto":
        mode = "sweeps" if n_sweeps >= MIN_SWEEPS_FOR_SCATTER else "baseline"
    if mode == "sweeps":
        if n_sweeps < 2:
            raise AnalysisError("noise from sweeps needs at least 2 sweeps")
        _, ref_k = spectrum(t, ref2, window=window, pad_factor=pad_factor)
        _, de_k = spectrum(t, de2, window=window, pad_factor=pad_factor)
        sig_k = conductivity_from_fields(
            ref_k[:, keep], de_k[:, keep], thickness_m, substrate_index, method
        )
        var = (np.var(sig_k.real, axis=0, ddof=1) + np.var(sig_k.imag, axis=0, ddof=1)) / 2
        sigma_err = np.sqrt(smooth_variance(var) / n_sweeps)
        source = "sweeps"
    elif mode == "baseline":
        s = base_noise
        if s is not None and s > 0:
            w = make_window(t.size, window)
            dt = time_step_s(t)
            de_noise = s * dt * np.sqrt(np.sum(w**2) / 2.0)
            pref = (1.0 + substrate_index) / (Z0_OHM * thickness_m)
            er = e_ref_w[keep]
            if method == "exact":
                gain = np.abs(er) / np.abs(er + de_w[keep]) ** 2
            else:
                gain = 1.0 / np.abs(er)
            sigma_err = pref * de_noise * gain
            source = "baseline"
    elif mode != "none":
        raise AnalysisError(f"unknown noise mode {noise!r}")

    return TDSSpectrum(
        freq_hz=freq[keep],
        sigma=sigma[keep],
        sigma_err=sigma_err,
        e_ref=e_ref_w[keep],
        delta_e=de_w[keep],
        thickness_m=float(thickness_m),
        substrate_index=float(substrate_index),
        method=method,
        noise_source=source,
        n_sweeps=n_sweeps,
        points_per_independent=max(1.0, float(pad_factor)),
        n_dropped_low_ref=n_dropped,
        usable_band_hz=band,
        echo=echo,
        warnings=warnings,
    )
