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

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats
from scipy.signal import get_window

from labctl.errors import AnalysisError

from .constants import TWO_PI, Z0_OHM
from .sweep_moments import TraceMoments, VectorMoments

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
    #: per-sweep Δσ (n_sweeps, n_freq) when ≥ 2 sweeps exist (their scatter, with its
    #: covariance between frequencies, gives the parameter errors)
    sweep_sigma: np.ndarray | None = None
    #: covariance (2F × 2F) of [Re Δσ, Im Δσ] of the mean, from the time-domain noise model
    sigma_cov: np.ndarray | None = None
    #: the noise model's variance of the band average of Re Δσ whenever ≥ 2 sweeps exist,
    #: whatever ``noise_source`` (the significance test's many-degrees-of-freedom floor)
    model_band_var: float | None = None
    #: per-sweep Δσ (n_sweeps, n_freq) whenever ≥ 2 sweeps exist (the significance test's
    #: scatter, drift between sweeps included)
    per_sweep_sigma: np.ndarray | None = None
    #: covariance (2F × 2F, ddof 1) of the per-sweep [Re Δσ, Im Δσ] when the sweeps were
    #: summed as they came (:class:`SweepSums`, the live fit) instead of kept: it stands
    #: for ``sweep_sigma`` and ``per_sweep_sigma`` (their scatter is all that is used)
    sweep_cov: np.ndarray | None = None

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
        sweeps = None if self.sweep_sigma is None else self.sweep_sigma[:, keep]
        both = np.concatenate([keep, keep])

        def square(m):
            return None if m is None else m[np.ix_(both, both)]

        return replace(
            self,
            freq_hz=self.freq_hz[keep],
            sigma=self.sigma[keep],
            sigma_err=err,
            e_ref=self.e_ref[keep],
            delta_e=self.delta_e[keep],
            warnings=list(self.warnings),
            sweep_sigma=sweeps,
            sigma_cov=square(self.sigma_cov),
            model_band_var=None,  # a band average over other frequencies
            per_sweep_sigma=None if self.per_sweep_sigma is None else self.per_sweep_sigma[:, keep],
            sweep_cov=square(self.sweep_cov),
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
    method="exact",
    freq_hz=None,
) -> np.ndarray:
    """Δσ (S/m) from spectra E_ref(ω), ΔE(ω): ``method`` ``"exact"`` or ``"small-signal"``,
    or a callable ``(freq_hz, E_ref(ω), ΔE(ω)) → Z₀·Δσ·d`` (another geometry, see
    :mod:`labctl.analysis.reflection`)."""
    if callable(method):
        return method(freq_hz, e_ref_w, delta_e_w) / (Z0_OHM * thickness_m)
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


class SweepSums:
    """Running sums of THz-TDS sweeps on one time grid, for :func:`photoconductivity`
    with ``sums=``: the per-point moments of E_ref and ΔE (the averages and the
    time-domain noise model) and the mean and covariance of each sweep's own
    [Re Δσ, Im Δσ] over every positive frequency in [fmin_hz, fmax_hz] (the scatter
    errors; the usable band, chosen from the average at analysis time, is a subset).
    Adding a sweep costs one FFT and one outer product, whatever the sweeps done."""

    def __init__(
        self,
        time_ps,
        *,
        thickness_m: float,
        substrate_index: float,
        fmin_hz: float | None = None,
        fmax_hz: float | None = None,
        window: str | tuple | None = None,
        method: str = "exact",
    ):
        self.time_ps = np.asarray(time_ps, float)
        self.thickness_m, self.substrate_index = float(thickness_m), float(substrate_index)
        self.window, self.method = window, method
        freq, _ = spectrum(self.time_ps, np.zeros(self.time_ps.size), window=window)
        band = freq > 0
        if fmin_hz is not None:
            band &= freq >= fmin_hz
        if fmax_hz is not None:
            band &= freq <= fmax_hz
        self.band = band
        self.freq_hz = freq[band]
        self.ref = TraceMoments.empty(self.time_ps.size)
        self.de = TraceMoments.empty(self.time_ps.size)
        self.spectra = VectorMoments.empty(2 * self.freq_hz.size)

    @property
    def n(self) -> int:
        return self.ref.n

    def add(self, e_ref, delta_e) -> None:
        """One sweep (arrays on ``time_ps``); AnalysisError for NaN or infinite values."""
        ref = np.asarray(e_ref, float)
        de = np.asarray(delta_e, float)
        if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(de))):
            raise AnalysisError("E_ref or dE contains NaN or infinite values")
        _, ref_w = spectrum(self.time_ps, ref, window=self.window)
        _, de_w = spectrum(self.time_ps, de, window=self.window)
        sig = conductivity_from_fields(
            ref_w[self.band], de_w[self.band], self.thickness_m, self.substrate_index,
            self.method, self.freq_hz,
        )  # fmt: skip
        self.ref.add(ref)
        self.de.add(de)
        self.spectra.add(np.concatenate([sig.real, sig.imag]))

    def copy(self) -> SweepSums:
        out = object.__new__(SweepSums)
        out.__dict__.update(self.__dict__)
        out.ref, out.de, out.spectra = self.ref.copy(), self.de.copy(), self.spectra.copy()
        return out


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
    require_signal: bool = True,
    sums: SweepSums | None = None,
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
    method : ``"exact"`` (Tinkham), ``"small-signal"``, or a geometry callable
        (:class:`labctl.analysis.reflection.Geometry`; ``thickness_m`` then scales Δσ·d).
    noise : ``"auto"`` (scatter of ≥ 3 sweeps; the fitted time-domain noise model with 2;
        the pre-pulse baseline with 1), ``"sweeps"``, ``"model"`` (≥ 2 sweeps: many degrees
        of freedom, what a precision target is judged on), ``"baseline"`` or ``"none"``.
        The source used is ``noise_source``: ``"sweep-scatter"``, ``"noise-model"`` or
        ``"baseline"``.
    require_signal : refuse a ΔE at the noise level (AnalysisError); with False it is
        analysed and :func:`significance` decides (the CLI and the live fit do this).
    sums : ≥ 3 sweeps as :class:`SweepSums` (``e_ref``/``delta_e`` are then ignored and
        its averages used): the same result, to rounding, as the sweeps themselves, with
        ``sweep_cov`` in place of the per-sweep Δσ (the live fit, whose sweeps are not kept).
    """
    if sums is not None:
        if sums.n < MIN_SWEEPS_FOR_SCATTER or noise not in ("auto", "sweeps"):
            raise AnalysisError(
                f"running sums need ≥ {MIN_SWEEPS_FOR_SCATTER} sweeps and the scatter noise"
            )
        if pad_factor != 1.0 or window != sums.window or method != sums.method:
            raise AnalysisError("running sums were made with another window or method")
        e_ref, delta_e = sums.ref.mean, sums.de.mean
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
    n_sweeps = ref2.shape[0] if sums is None else sums.n
    ref_mean = ref2.mean(axis=0)
    de_mean = de2.mean(axis=0)
    base_noise = baseline_noise(t, ref_mean, de_mean)
    warnings: list[str] = []
    echo = detect_echo(t, ref_mean) if check_echo else None
    if echo is not None:
        warnings.append(echo.warning())
    freq, e_ref_w = spectrum(t, ref_mean, window=window, pad_factor=pad_factor)
    _, de_w = spectrum(t, de_mean, window=window, pad_factor=pad_factor)
    sigma = conductivity_from_fields(e_ref_w, de_w, thickness_m, substrate_index, method, freq)

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
    if require_signal:
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
    sweep_sigma = None
    sigma_cov = None
    mode = noise
    if mode == "auto":
        if n_sweeps >= MIN_SWEEPS_FOR_SCATTER:
            mode = "sweeps"
        elif n_sweeps == 2 and not callable(method):
            mode = "model"
        else:
            mode = "baseline"
    sweep_cov = None
    if sums is not None:  # the scatter from running sums: a subset of their band
        idx = np.searchsorted(sums.freq_hz, freq[keep])
        if np.any(idx >= sums.freq_hz.size) or not np.array_equal(sums.freq_hz[idx], freq[keep]):
            raise AnalysisError("running sums do not cover the frequencies analysed")
        both = np.concatenate([idx, idx + sums.freq_hz.size])
        sweep_cov = sums.spectra.covariance[np.ix_(both, both)]
    elif n_sweeps >= 2 and mode != "none":
        _, ref_k = spectrum(t, ref2, window=window, pad_factor=pad_factor)
        _, de_k = spectrum(t, de2, window=window, pad_factor=pad_factor)
        sweep_sigma = conductivity_from_fields(
            ref_k[:, keep], de_k[:, keep], thickness_m, substrate_index, method, freq[keep]
        )
    model_band_var = None
    if n_sweeps >= 2 and mode != "none":
        model_band_var = noise_model_band_variance(
            t, ref2 if sums is None else sums.ref, de2 if sums is None else sums.de, e_ref_w[keep], de_w[keep], freq[keep], thickness_m,
            substrate_index, method, window=window,
        )  # fmt: skip
    per_sweep_sigma = sweep_sigma
    if mode == "sweeps":
        if n_sweeps < 2:
            raise AnalysisError("noise from sweeps needs at least 2 sweeps")
        if sweep_cov is not None:
            nf = int(keep.sum())
            var = (np.diag(sweep_cov)[:nf] + np.diag(sweep_cov)[nf:]) / 2
        else:
            var = (
                np.var(sweep_sigma.real, axis=0, ddof=1) + np.var(sweep_sigma.imag, axis=0, ddof=1)
            ) / 2
        sigma_err = np.sqrt(smooth_variance(var) / n_sweeps)
        source = "sweep-scatter"
    elif mode == "model":
        if n_sweeps < 2:
            raise AnalysisError("the time-domain noise model needs at least 2 sweeps")
        if callable(method):
            raise AnalysisError("the time-domain noise model needs the transmission formula")
        sigma_cov = noise_model_covariance(
            t, ref2, de2, e_ref_w[keep], de_w[keep], freq[keep], thickness_m,
            substrate_index, method, window=window,
        )  # fmt: skip
        nf = int(keep.sum())
        var = (np.diag(sigma_cov)[:nf] + np.diag(sigma_cov)[nf:]) / 2
        sigma_err = np.sqrt(np.maximum(var, np.finfo(float).tiny))
        source = "noise-model"
        sweep_sigma = None
    elif mode == "baseline":
        s = base_noise
        if s is not None and s > 0:
            w = make_window(t.size, window)
            dt = time_step_s(t)
            de_noise = s * dt * np.sqrt(np.sum(w**2) / 2.0)
            pref = (1.0 + substrate_index) / (Z0_OHM * thickness_m)
            er = e_ref_w[keep]
            if callable(method):  # another geometry: its own small-signal gain
                pref = method.small_signal_gain(freq[keep]) / (Z0_OHM * thickness_m)
                gain = 1.0 / np.abs(er)
            elif method == "exact":
                gain = np.abs(er) / np.abs(er + de_w[keep]) ** 2
            else:
                gain = 1.0 / np.abs(er)
            sigma_err = pref * de_noise * gain
            source = "baseline"
        sweep_sigma = None
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
        method=f"exact ({method.kind})" if callable(method) else method,
        noise_source=source,
        n_sweeps=n_sweeps,
        points_per_independent=max(1.0, float(pad_factor)),
        n_dropped_low_ref=n_dropped,
        usable_band_hz=band,
        echo=echo,
        warnings=warnings,
        sweep_sigma=sweep_sigma if source == "sweep-scatter" else None,
        sigma_cov=sigma_cov,
        model_band_var=model_band_var,
        per_sweep_sigma=per_sweep_sigma,
        sweep_cov=sweep_cov,
    )


# ---------------------------------------------------------------- noise model


def fit_time_domain_noise(time_ps, sweeps, probe=None) -> tuple[np.ndarray, tuple[float, ...]]:
    """Per-point noise variance of one sweep, σ²(t) = σ_α² + σ_β²·x(t)² + σ_τ²·x'(t)²
    (additive, multiplicative, timebase jitter; the model of thztools' ``noisefit``),
    fitted (non-negative least squares) to the scatter of ≥ 2 sweeps ``(n, N)``.

    ``probe`` (the mean reference trace, for ΔE): two more terms, σ_p²·E_ref(t)² and
    σ_q²·E_ref'(t)² — the pump lock-in demodulates the same detector as the reference
    one, so the probe's intensity noise and jitter reach ΔE even where ΔE itself is
    zero (a pump-blocked null's noise sits on the pulse, correlated across frequencies;
    without these terms the model put it at 0.77 of its true standard deviation).

    With ``probe`` a last term ∝ |E_ref(t)| takes the cross term of a noise whose standard
    deviation, not variance, is floor + k·|E_ref| (without it the model's sd of the
    band-average Re Δσ was 6 % low on nulls: p < 0.05 on 7–8 % of them).

    Returns (σ²(t), (σ_α, σ_β, σ_τ in ps[, σ_p, σ_q in ps, √coefficient of |E_ref|])).
    Point-to-point independence is assumed (:func:`neighbour_correlation` corrects it).
    """
    x = np.atleast_2d(np.asarray(sweeps, float))
    return fit_time_domain_noise_moments(time_ps, x.mean(axis=0), np.var(x, axis=0, ddof=1), probe)


def fit_time_domain_noise_moments(
    time_ps, mean, var, probe=None
) -> tuple[np.ndarray, tuple[float, ...]]:
    """:func:`fit_time_domain_noise` from the sweeps' mean and variance (ddof 1) per point
    (all it uses: running sums serve as well as the sweeps)."""
    from scipy.optimize import nnls

    mean = np.asarray(mean, float)
    var = np.asarray(var, float)
    t = np.asarray(time_ps, float)
    deriv = np.gradient(mean, t)
    columns = [np.ones_like(mean), mean**2, deriv**2]
    if probe is not None:
        e = np.asarray(probe, float)
        # |E_ref|: a noise whose standard deviation is floor + k·|E_ref| (the lock-ins' own
        # noise grows with the signal at the detector) has the cross term 2·floor·k·|E_ref|
        columns += [e**2, np.gradient(e, t) ** 2, np.abs(e)]
    basis = np.column_stack(columns)
    # weight each point by its expected scale, so the pulse does not dominate the fit
    scale = np.sqrt(np.mean(basis**2, axis=0))
    scale[scale == 0] = 1.0
    coef, _ = nnls(basis / scale, var)
    coef = coef / scale
    model_var = basis @ coef
    return model_var, tuple(float(np.sqrt(c)) for c in coef)


#: noise components of the pair (E_ref, ΔE) at a gate point, as the vector (u_ref, u_de)
#: whose amplitude is drawn independently per point: what one detector and one gate put
#: into both traces, and what each channel has alone (:func:`fit_joint_noise`)
JOINT_NOISE_COMPONENTS = (
    "reference floor",  # (1, 0): the reference lock-in's floor
    "pump-channel floor",  # (−½, 1): the pump lock-in's floor (E_ref = X_ref − X_pump, ΔE = 2 X_pump)
    "probe intensity",  # (E, ΔE): one detector, both traces
    "gate jitter",  # (E', ΔE'): one gate, both traces
    "reference-only intensity",  # (E, 0): the reference lock-in's own relative noise
    "pump energy",  # (0, ΔE)
    "probe in the pump channel",  # (0, E)
    "jitter in the pump channel",  # (0, E')
    "reference floor × intensity",  # (√|E|, 0): cross term of a sd floor + k·|E|
    "pump-channel floor × intensity",  # (0, √|E|)
)


def joint_noise_vectors(time_ps, ref_mean, de_mean) -> tuple[np.ndarray, np.ndarray]:
    """(u_ref, u_de), each (K, N): :data:`JOINT_NOISE_COMPONENTS` at every gate point."""
    t = np.asarray(time_ps, float)
    e = np.asarray(ref_mean, float)
    d = np.asarray(de_mean, float)
    de_dt, e_dt = np.gradient(d, t), np.gradient(e, t)
    one, zero, root = np.ones_like(e), np.zeros_like(e), np.sqrt(np.abs(e))
    u_ref = np.array([one, -0.5 * one, e, e_dt, e, zero, zero, zero, root, zero])
    u_de = np.array([zero, one, d, de_dt, zero, d, e, e_dt, zero, root])
    return u_ref, u_de


def fit_joint_noise(time_ps, ref_sweeps, de_sweeps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Variances (K,) of :data:`JOINT_NOISE_COMPONENTS`, fitted (non-negative least squares)
    to the per-point variances of E_ref and ΔE and their covariance over ≥ 2 sweeps
    ``(n, N)``: every point of every sweep, so a handful of parameters with many degrees of
    freedom. Returns (variances, u_ref, u_de).

    Why jointly: one detector and one gate feed both lock-ins, so the probe's intensity
    noise and gate errors reach E_ref and ΔE together and cancel to first order in
    Δσ ∝ ΔE/E_ref. Fitted per trace (:func:`fit_time_domain_noise`), they count twice and
    independently: the noise model's τ error was 2.4× too large on the simulated table
    (docs/analysis.md "How errors are estimated")."""
    from scipy.optimize import nnls

    t = np.asarray(time_ps, float)
    ref = np.atleast_2d(np.asarray(ref_sweeps, float))
    de = np.atleast_2d(np.asarray(de_sweeps, float))
    n = ref.shape[0]
    ref_mean, de_mean = ref.mean(axis=0), de.mean(axis=0)
    u_ref, u_de = joint_noise_vectors(t, ref_mean, de_mean)
    dr, dd = ref - ref_mean, de - de_mean
    if n >= 2:  # a sweep's own amplitude and delay, the same in both traces: Δσ ignores them
        common = u_ref[[2, 3]].T  # E, E'
        coef, *_ = np.linalg.lstsq(common, dr.T, rcond=None)
        dr = dr - (common @ coef).T
        dd = dd - (u_de[[2, 3]].T @ coef).T
    data = np.concatenate([np.sum(dr * dr, 0), np.sum(dd * dd, 0), np.sum(dr * dd, 0)]) / max(
        n - 1, 1
    )
    design = np.concatenate([(u_ref**2).T, (u_de**2).T, (u_ref * u_de).T])
    # rows weighted by their expected scale (the sample variance smoothed over neighbours:
    # positive wherever there is noise), so neither the pulse nor the baseline dominates
    tiny = np.finfo(float).tiny
    s_ref = np.maximum(smooth_variance(data[: t.size]), tiny)
    s_de = np.maximum(smooth_variance(data[t.size : 2 * t.size]), tiny)
    weight = 1.0 / np.concatenate([s_ref, s_de, np.sqrt(s_ref * s_de)])
    a = design * weight[:, None]
    scale = np.sqrt(np.mean(a**2, axis=0))
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale, data * weight)
    return coef / scale, u_ref, u_de


def noise_model_covariance(
    time_ps,
    ref_sweeps,
    de_sweeps,
    e_ref_w,
    de_w,
    freq_hz,
    thickness_m,
    substrate_index,
    method="exact",
    window=None,
) -> np.ndarray:
    """Covariance (2F × 2F) of [Re Δσ, Im Δσ] of the sweep average, from the time-domain
    noise of the pair (E_ref, ΔE) fitted jointly (:func:`fit_joint_noise`), each
    component propagated linearly through the FFT and the thin-film formula — what the
    two traces share cancels where it cancels in Δσ."""
    t = np.asarray(time_ps, float)
    n = np.atleast_2d(ref_sweeps).shape[0]
    variances, u_ref, u_de = fit_joint_noise(t, ref_sweeps, de_sweeps)
    d_ref, d_de, rows = _linear_maps(
        t, e_ref_w, de_w, freq_hz, thickness_m, substrate_index, method, window
    )
    cos_m, sin_m = rows(freq_hz)

    def lin(deriv):
        a, b = deriv.real[:, None], deriv.imag[:, None]
        return np.vstack([a * cos_m - b * sin_m, b * cos_m + a * sin_m])

    lin_ref, lin_de = lin(d_ref), lin(d_de)
    cov = np.zeros((2 * freq_hz.size, 2 * freq_hz.size))
    for var, ur, ud in zip(variances, u_ref, u_de, strict=True):
        if var > 0:
            m = lin_ref * ur + lin_de * ud
            cov += (var / n) * (m @ m.T)
    return cov


def _linear_maps(time_ps, e_ref_w, de_w, freq_hz, thickness_m, substrate_index, method, window):
    """Per frequency: ∂Δσ/∂E_ref(ω), ∂Δσ/∂ΔE(ω), and the FFT's cos/sin rows (dt·w folded in)."""
    t = np.asarray(time_ps, float)
    dt = time_step_s(t)
    w = make_window(t.size, window)
    pref = (1.0 + substrate_index) / (Z0_OHM * thickness_m)
    if method == "exact":
        ep = e_ref_w + de_w
        d_ref, d_de = pref * de_w / ep**2, -pref * e_ref_w / ep**2
    else:
        d_ref, d_de = pref * de_w / e_ref_w**2, -pref / e_ref_w

    def rows(f):
        arg = TWO_PI * np.outer(f, t * PS)
        return dt * w * np.cos(arg), dt * w * np.sin(arg)

    return d_ref, d_de, rows


def noise_model_band_variance(
    time_ps,
    ref_sweeps,
    de_sweeps,
    e_ref_w,
    de_w,
    freq_hz,
    thickness_m,
    substrate_index,
    method="exact",
    window=None,
    chunk: int = 256,
) -> float:
    """Variance of the band average of Re Δσ of the sweep average, from the fitted
    time-domain noise (as :func:`noise_model_covariance`, projected first: memory
    O(chunk × points), not O(frequencies × points)). ``ref_sweeps``/``de_sweeps``: the
    sweeps (n, N), or their :class:`~labctl.analysis.sweep_moments.TraceMoments`."""
    t = np.asarray(time_ps, float)
    if isinstance(ref_sweeps, TraceMoments):
        n = ref_sweeps.n
        v_ref, _ = fit_time_domain_noise_moments(t, ref_sweeps.mean, ref_sweeps.variance)
        v_de, _ = fit_time_domain_noise_moments(
            t, de_sweeps.mean, de_sweeps.variance, probe=ref_sweeps.mean
        )
    else:
        n = np.atleast_2d(ref_sweeps).shape[0]
        v_ref, _ = fit_time_domain_noise(t, ref_sweeps)
        v_de, _ = fit_time_domain_noise(
            t, de_sweeps, probe=np.mean(np.atleast_2d(ref_sweeps), axis=0)
        )
    d_ref, d_de, rows = _linear_maps(
        t, e_ref_w, de_w, freq_hz, thickness_m, substrate_index, method, window
    )
    nf = freq_hz.size
    proj_ref = np.zeros(t.size)
    proj_de = np.zeros(t.size)
    for lo in range(0, nf, chunk):
        sl = slice(lo, lo + chunk)
        cos_m, sin_m = rows(freq_hz[sl])
        for deriv, proj in ((d_ref[sl], proj_ref), (d_de[sl], proj_de)):
            # Re Δσ_f = Re(deriv)·Re E(ω) − Im(deriv)·Im E(ω), E(ω) = Σ_t x_t (cos + i sin)
            proj += (deriv.real[:, None] * cos_m - deriv.imag[:, None] * sin_m).sum(axis=0) / nf
    total = 0.0
    for proj, v, x in ((proj_ref, v_ref, ref_sweeps), (proj_de, v_de, de_sweeps)):
        rho = neighbour_correlation(x, v)
        total += correlated_quadratic_form(proj * np.sqrt(v), rho) / n
    return float(total)


#: lags over which the neighbour correlation of the noise is summed (ρ^k below 1e-6 beyond)
MAX_NOISE_LAG = 12


def neighbour_correlation(sweeps, model_var) -> float:
    """Correlation ρ of the noise of neighbouring points, pooled over every sweep: the
    lock-in's output filter remembers e^{−settle/τ} of the last reading (3 τ settling:
    ≈ 5 %), and noise correlated at that level puts ~10 % more variance in the THz band
    than white noise of the same per-point variance (measured: the model's z had sd 1.07
    on nulls without it). Clipped to [0, 0.5]; 0 with fewer than 2 sweeps. ``sweeps``:
    (n, N), or their :class:`~labctl.analysis.sweep_moments.TraceMoments`."""
    if isinstance(sweeps, TraceMoments):
        if sweeps.n < 2:
            return 0.0
        scale = 1.0 / np.sqrt(np.maximum(model_var, np.finfo(float).tiny))
        num = float(np.sum(sweeps.lag1 * scale[1:] * scale[:-1]))
        den = float(np.sum(sweeps.m2 * scale**2))
        return float(np.clip(num / den, 0.0, 0.5)) if den > 0 else 0.0
    x = np.atleast_2d(np.asarray(sweeps, float))
    if x.shape[0] < 2:
        return 0.0
    dev = (x - x.mean(axis=0)) / np.sqrt(np.maximum(model_var, np.finfo(float).tiny))
    num = float(np.sum(dev[:, 1:] * dev[:, :-1]))
    den = float(np.sum(dev**2))
    return float(np.clip(num / den, 0.0, 0.5)) if den > 0 else 0.0


def correlated_quadratic_form(p, rho: float) -> float:
    """pᵀΣp for unit-variance noise with correlation ρ^|i−j| between points i, j (AR(1))."""
    out = float(p @ p)
    k, weight = 1, rho
    while weight > 1e-6 and k <= MAX_NOISE_LAG and k < p.size:
        out += 2.0 * weight * float(p[k:] @ p[:-k])
        k, weight = k + 1, weight * rho
    return out


# ---------------------------------------------------------------- significance

#: ΔE counts as measured when the null hypothesis Re Δσ = 0 has a p-value below this
SIGNIFICANCE_P = 1e-3
#: the sweeps' scatter replaces the noise model when it exceeds it with a p-value below this
EXCESS_SCATTER_P = 0.05
SIGN_WARNING = (
    "Re Δσ < 0 across the band (a photoexcited film has Re Δσ ≥ 0): check the sign of dE, "
    "the lock-in phase, or the geometry"
)
#: the text of a single trace whose baseline test rejects Δσ = 0 (what it cannot show)
NOT_ASSESSABLE = (
    "one trace without sweeps: its errors come from the pre-pulse baseline and are lower "
    "bounds (no amplitude drift, timebase jitter or pump drift shows there); whether Δσ "
    "differs from zero is not assessable (significant: null) — record ≥ 2 sweeps"
)


@dataclass
class Significance:
    """Is Re Δσ distinguishable from zero against the noise (drift between sweeps included)?

    ``significant`` is None when it cannot be assessed (one trace whose baseline-only
    test rejects Δσ = 0: that noise is a lower bound, so its p-value would be too small).
    """

    significant: bool | None
    p_value: float | None
    statistic: float
    n_components: int
    method: str
    negative_real: bool  # Re Δσ significantly < 0 across the band (sign mistake)
    warnings: list[str] = field(default_factory=list)
    dof: float = float("inf")  # degrees of freedom of the noise estimate

    def to_dict(self) -> dict:
        return {
            "significant": self.significant,
            "significance_p_value": self.p_value,
            "significance_z": self.statistic,
            "significance_test": self.method,
        }


def _smooth_basis(freq_hz: np.ndarray, k: int) -> np.ndarray:
    """(2F, k): Legendre polynomials over the band on Re, then Im (Re P0, Im P0, Re P1, …)."""
    f = np.asarray(freq_hz, float)
    x = (2 * f - f.min() - f.max()) / max(f.max() - f.min(), 1e-30)
    nf = f.size
    cols = []
    for deg in range(3):
        p = np.polynomial.legendre.Legendre.basis(deg)(x) / nf
        cols.append(np.concatenate([p, np.zeros(nf)]))
        cols.append(np.concatenate([np.zeros(nf), p]))
    return np.array(cols[:k]).T


def band_average_variance(spec: TDSSpectrum) -> tuple[float | None, float, str]:
    """Variance of the band average of Re Δσ, its degrees of freedom and where it is from.

    With ≥ 2 sweeps: the time-domain noise model's variance (additive, multiplicative
    and jitter noise fitted to every point of every sweep, the probe's noise in ΔE
    included: many degrees of freedom) — unless the scatter of the per-sweep band
    averages (n − 1 degrees of freedom) exceeds it significantly (χ² test, p <
    :data:`EXCESS_SCATTER_P`): then there is drift between sweeps that the model, fitted
    point by point, cannot see, and the scatter is used with Welch-Satterthwaite degrees
    of freedom for model + excess (n − 1 when the excess dominates), so a few drifting
    sweeps are judged with Student's t, not a normal law. The pre-test is what buys
    power at 3–4 sweeps; what it lets through is a drift below its sensitivity (at 3
    sweeps a variance up to ~3× the model's), measured as the false-positive rate on the
    simulated table's nulls in ``benchmarks/significance_power.py``. With one trace: the
    baseline errors (a lower bound) and infinite degrees of freedom.
    """
    b = _smooth_basis(spec.freq_hz, 1)[:, 0]
    scattered = spec.per_sweep_sigma is not None or spec.sweep_cov is not None
    if spec.model_band_var is not None or scattered:
        model = spec.model_band_var
        scatter = None
        nf = spec.freq_hz.size
        if spec.per_sweep_sigma is not None and spec.per_sweep_sigma.shape[0] >= 2:
            n = spec.per_sweep_sigma.shape[0]
            per = spec.per_sweep_sigma.real @ b[:nf]
            scatter = float(np.var(per, ddof=1) / n)
        elif spec.sweep_cov is not None and spec.n_sweeps >= 2:  # from running sums
            n = spec.n_sweeps
            scatter = float(b[:nf] @ spec.sweep_cov[:nf, :nf] @ b[:nf] / n)
        if model is None and scatter is None:
            return None, float("inf"), "none"
        if scatter is None:
            return model, float("inf"), "noise model"
        if model is not None and float(stats.chi2.sf(scatter / model * (n - 1), n - 1)) >= (
            EXCESS_SCATTER_P
        ):
            return model, float("inf"), "noise model"
        excess = scatter - (model or 0.0)
        dof = scatter**2 / (excess**2 / (n - 1)) if excess > 0 else float("inf")
        return scatter, float(dof), "sweep scatter"
    if spec.sigma_err is not None:
        var = float(np.sum(b[: spec.freq_hz.size] ** 2 * spec.sigma_err**2))
        return var, float("inf"), "baseline"
    return None, float("inf"), "none"


def significance(spec: TDSSpectrum, p_threshold: float = SIGNIFICANCE_P) -> Significance:
    """Test of Re Δσ = 0 on the band average of Re Δσ (two-sided, so a flipped sign is
    seen too and flagged).

    A photoexcited film has Re Δσ > 0 at every frequency (free carriers absorb), so the
    band average carries the signal's power in one component, and its noise comes from a
    model with many degrees of freedom; the earlier two-component Hotelling T² on a
    covariance from the n sweeps alone needed ~55σ at 4 sweeps.
    The noise is :func:`band_average_variance` (the false-positive rate stays ≤
    ``p_threshold`` on nulls, measured in ``benchmarks/significance_power.py``).
    One trace (baseline noise, a lower bound): a trace that the lower bound cannot
    separate from zero is not significant; one it can is *not assessable* (None).

    Also flags a negative Re Δσ across the band (wrong sign of ΔE, lock-in phase,
    geometry) when the band average of Re Δσ is below zero by > 3σ and Re Δσ < 0 at
    ≥ 80 % of the frequencies.
    """
    sig = np.asarray(spec.sigma, complex)
    warnings: list[str] = []
    var, dof, source = band_average_variance(spec)
    y = float(np.mean(sig.real))
    if var is None or not var > 0:
        return Significance(None, None, float("nan"), 1, "none (no noise estimate)", False)
    sd = float(np.sqrt(var))
    z = y / sd
    tail = stats.norm.sf(abs(z)) if not np.isfinite(dof) else stats.t.sf(abs(z), dof)
    p = float(2.0 * tail)
    dof_text = "∞" if not np.isfinite(dof) else f"{dof:.1f}"
    method = (
        f"z on band-average Re Δσ, two-sided ({source} noise, {dof_text} dof, "
        f"{spec.n_sweeps} sweep{'s' if spec.n_sweeps != 1 else ''})"
    )
    significant: bool | None = bool(p < p_threshold)
    p_out: float | None = p
    if source == "baseline" and significant:
        significant, p_out = None, None
        warnings.append(NOT_ASSESSABLE)
    negative = bool(z < -3 and np.mean(sig.real < 0) >= 0.8)
    if significant is False:
        warnings.append(
            f"ΔE is not significant against the noise (p = {p:.2g} for Re Δσ = 0, "
            f"{method}): no photoconductivity measured; the fitted values describe noise"
        )
    if negative:
        warnings.append(SIGN_WARNING)
    return Significance(significant, p_out, z, 1, method, negative, warnings, dof)
