"""Running moments over repeated sweeps, so that no sweep need be kept.

Rule: everything the TDS analysis takes from the scatter of n sweeps is a mean, a
variance or a covariance over sweeps, and those are updated one sweep at a time
(Welford's algorithm: numerically stable, O(1) per sweep in the number of sweeps done).

- :class:`TraceMoments` — per time point of a trace: mean, sum of squared deviations,
  and the co-moment of neighbouring points (the time-domain noise model and its
  neighbour correlation, :func:`labctl.analysis.tds.fit_time_domain_noise_moments`).
- :class:`VectorMoments` — mean and full co-moment matrix of a vector per sweep (the
  per-sweep [Re Δσ, Im Δσ] over a frequency window: the scatter errors and their
  covariance between frequencies).

``from_sweeps`` gives the same numbers (to rounding) from an (n_sweeps, …) array at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TraceMoments:
    """Mean, Σ(x − mean)² and Σ(x_i − mean_i)(x_{i+1} − mean_{i+1}) over sweeps, per point."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    lag1: np.ndarray

    @classmethod
    def empty(cls, size: int) -> TraceMoments:
        return cls(0, np.zeros(size), np.zeros(size), np.zeros(max(size - 1, 0)))

    @classmethod
    def from_sweeps(cls, sweeps) -> TraceMoments:
        x = np.atleast_2d(np.asarray(sweeps, float))
        mean = x.mean(axis=0)
        dev = x - mean
        return cls(
            x.shape[0], mean, np.sum(dev**2, axis=0), np.sum(dev[:, 1:] * dev[:, :-1], axis=0)
        )

    def add(self, trace) -> None:
        x = np.asarray(trace, float)
        self.n += 1
        before = x - self.mean
        self.mean = self.mean + before / self.n
        after = x - self.mean
        self.m2 = self.m2 + before * after
        self.lag1 = self.lag1 + before[1:] * after[:-1]

    @property
    def variance(self) -> np.ndarray:
        """Sample variance per point (ddof = 1)."""
        return self.m2 / (self.n - 1)

    def copy(self) -> TraceMoments:
        return TraceMoments(self.n, self.mean.copy(), self.m2.copy(), self.lag1.copy())


@dataclass
class VectorMoments:
    """Mean and co-moment matrix Σ(x − mean)(x − mean)ᵀ of a real vector over sweeps."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, size: int) -> VectorMoments:
        return cls(0, np.zeros(size), np.zeros((size, size)))

    @classmethod
    def from_sweeps(cls, rows) -> VectorMoments:
        x = np.atleast_2d(np.asarray(rows, float))
        mean = x.mean(axis=0)
        dev = x - mean
        return cls(x.shape[0], mean, dev.T @ dev)

    def add(self, row) -> None:
        x = np.asarray(row, float)
        self.n += 1
        before = x - self.mean
        self.mean = self.mean + before / self.n
        self.m2 = self.m2 + np.outer(before, x - self.mean)

    @property
    def covariance(self) -> np.ndarray:
        """Sample covariance (ddof = 1), symmetrised."""
        c = self.m2 / (self.n - 1)
        return (c + c.T) / 2

    def copy(self) -> VectorMoments:
        return VectorMoments(self.n, self.mean.copy(), self.m2.copy())
