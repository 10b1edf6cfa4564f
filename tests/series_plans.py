"""Series plans the GUI tests share: one text per plan, so a change to the plan format is
made once.

``two_film_plan(name)`` is two films annealed at 250 and 300 °C (one per slot), each
measured by OPTP and a 4-sweep THz-TDS; only the series name differs between the tests
that read it (it shows in the view's labels).
"""

from __future__ import annotations

_TWO_FILM = """\
name: {name}
sample: NPL
films: per-temperature
slots: [1, 2]
temperatures_c: [250, 300]
anneal: {{ramp_c_per_min: 10, dwell_min: 30, cool_min: 60}}
measurements:
  - optp: {{sweeps: 2}}
  - tds: {{max_sweeps: 4}}
"""


def two_film_plan(name: str) -> str:
    """The YAML text of the two-film plan, series ``name``."""
    return _TWO_FILM.format(name=name)
