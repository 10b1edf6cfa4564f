"""In-memory columns for live plots: appended in place, read as numpy views.

pymeasure's plots re-read the results file on a timer and slow down above a few
thousand points; these columns grow by doubling, so appending a point is O(1)
and a plot redraw gets a view of the filled part without copying.
"""

from __future__ import annotations

import numpy as np


class Columns:
    """Named float columns of equal length, grown by doubling."""

    def __init__(self, *names: str, capacity: int = 1024) -> None:
        if not names:
            raise ValueError("Columns needs at least one column name")
        self.names = names
        self._data = np.full((len(names), max(int(capacity), 16)), np.nan)
        self._index = {name: i for i, name in enumerate(names)}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, *values: float) -> None:
        """One row, in the order of the column names."""
        if self.size == self._data.shape[1]:
            grown = np.full((self._data.shape[0], 2 * self._data.shape[1]), np.nan)
            grown[:, : self.size] = self._data[:, : self.size]
            self._data = grown
        self._data[:, self.size] = values
        self.size += 1

    def extend(self, **columns) -> None:
        """Many rows at once: ``extend(x=array, y=array)`` (every column given)."""
        arrays = [np.asarray(columns[name], float) for name in self.names]
        n = arrays[0].size
        need = self.size + n
        if need > self._data.shape[1]:
            capacity = self._data.shape[1]
            while capacity < need:
                capacity *= 2
            grown = np.full((self._data.shape[0], capacity), np.nan)
            grown[:, : self.size] = self._data[:, : self.size]
            self._data = grown
        for i, values in enumerate(arrays):
            self._data[i, self.size : need] = values
        self.size = need

    def __getitem__(self, name: str) -> np.ndarray:
        """A view of the filled part of one column (valid until the next append)."""
        return self._data[self._index[name], : self.size]

    def clear(self) -> None:
        self.size = 0
