"""The one procedure API every front end calls: parameters, validate, estimate."""

from __future__ import annotations

import math

import pytest

from labctl.checking import ParameterError
from labctl.procedures import estimate, parameters, procedure_class, validate


def test_internal_parameters_are_not_offered_and_not_accepted():
    assert "continue_program" not in parameters("anneal")
    assert "dwell_done_min" not in parameters("anneal")
    assert "anneal_c" in parameters("anneal")
    with pytest.raises(ParameterError, match="internal"):
        validate("anneal", {"dwell_done_min": 5.0})
    # the run engine (a continuation) may set them
    assert validate("anneal", {"dwell_done_min": 5.0}, internal=True) == {"dwell_done_min": 5.0}


@pytest.mark.parametrize("kind", ["anneal", "absorption", "optp", "tds"])
def test_no_float_parameter_accepts_nan_or_infinity(kind):
    from pymeasure.experiment import FloatParameter, IntegerParameter

    for name, p in parameters(kind).items():
        if isinstance(p, FloatParameter | IntegerParameter):
            for bad in (math.nan, math.inf, -math.inf):
                with pytest.raises(ParameterError, match=name):
                    validate(kind, {name: bad})


def test_estimate_is_the_procedures_own_and_pymeasures_estimator_says_the_same():
    seconds = estimate("anneal", {"anneal_c": 325.0, "dwell_min": 30.0})
    # heating 300 °C at 10 °C/min + dwell 30 + cooling 120 + ~30 natural cooling
    assert seconds == pytest.approx(60 * (30 + 30 + 120 + 30))
    proc = procedure_class("anneal")(anneal_c=325.0)
    assert proc.get_estimates() == [("Duration at real time", f"{seconds / 60:.0f} min")]
