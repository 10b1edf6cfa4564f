"""Parameter inputs generated from a Procedure's pymeasure Parameters.

pymeasure's :class:`InputsWidget` makes one input per Parameter. Its float box
cannot be left empty, so an :class:`OptionalFloatParameter` ("unset: the
procedure finds it", e.g. the THz peak) gets a text box where empty means unset.
"""

from __future__ import annotations

from pymeasure.display.inputs import StringInput
from pymeasure.display.widgets import InputsWidget

from labctl.procedures.alignment import OptionalFloatParameter


class OptionalFloatInput(StringInput):
    """A number, or empty for "unset"."""

    def setValue(self, value):
        return super().setValue("" if value is None else f"{value:g}")

    def setSuffix(self, value):
        self.setPlaceholderText(f"unset (found by the procedure){value}")

    def value(self):
        return super().value().strip()


class ParameterInputs(InputsWidget):
    """Inputs for every Parameter of ``procedure_class`` (base class first)."""

    def __init__(self, procedure_class, parent=None) -> None:
        from labctl.procedures import parameters

        self._procedure_class = procedure_class
        names = tuple(parameters(procedure_class))  # internal parameters get no input
        super().__init__(procedure_class, inputs=names, parent=parent, inputs_in_scrollarea=True)

    def _setup_ui(self):
        for parameter in self._procedure.parameter_objects().values():
            if isinstance(parameter, OptionalFloatParameter):
                parameter.ui_class = OptionalFloatInput
            # units as an operator writes them: °C, not degC. On this widget's own copies
            # of the Parameters (pymeasure's input parses its text by the units' length,
            # so the suffix alone must not change); the run files keep the procedure's.
            units = getattr(parameter, "units", None)
            if units and "degC" in units:
                parameter.units = units.replace("degC", "°C")
        super()._setup_ui()

    def limit_to(self, limits: dict) -> None:
        """Narrow the inputs to what the station allows (``labctl.cli.run.station_limits``:
        name → (lowest, highest)), as ``labctl run KIND --help`` shows them."""
        for name, (low, high) in limits.items():
            element = getattr(self, name, None) if name in self._inputs else None
            if element is None:
                continue
            if high is not None and callable(getattr(element, "setMaximum", None)):
                element.setMaximum(high)
            if low is not None and callable(getattr(element, "setMinimum", None)):
                element.setMinimum(low)

    def values(self) -> dict:
        """The entered values by parameter name, checked by :func:`labctl.procedures.validate`
        (finite, in range, cross-field rules); ValueError names a refused one."""
        from labctl.checking import ParameterError
        from labctl.procedures import validate

        out = {}
        for name in self._inputs:
            element = getattr(self, name)
            try:
                out[name] = element.parameter.value
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        try:
            return validate(self._procedure_class, out)
        except ParameterError as exc:
            raise ValueError(f"{exc.name}: {exc.problem}") from None

    def set_value(self, name: str, value) -> None:
        """Set one input (scripts and tests)."""
        getattr(self, name).setValue(value)
