"""Exceptions that say what went wrong and where.

Every error raised to a user names the instrument (or file) and the operation,
so a failed overnight run can be understood from its log line alone.
"""


class LabctlError(Exception):
    """Base class of every error labctl raises on purpose."""


class StationError(LabctlError):
    """A station file is malformed or names something that cannot be built."""


class InstrumentError(LabctlError):
    """An instrument answered wrongly, not at all, or refused a command."""

    def __init__(self, instrument: str, message: str):
        self.instrument = instrument
        super().__init__(f"{instrument}: {message}")


class SafetyLimitError(InstrumentError):
    """A request would take an instrument outside its configured safety limits."""


class CommunicationError(InstrumentError):
    """The link to an instrument failed: timeout, garbled reply, lost connection."""


class AnalysisError(LabctlError):
    """An analysis cannot proceed: too little data, a window with no points, a failed fit."""


class DataFileError(AnalysisError):
    """A data file is missing, malformed or physically inconsistent."""

    def __init__(self, path: object, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")


class Aborted(LabctlError):
    """The user stopped the run (Abort, Ctrl-C, SIGTERM, Stop); what was recorded is kept."""


class InterlockError(InstrumentError):
    """An interlock tripped (deviation, sensor break, over-temperature, lost instrument):
    the run stops and the instrument is put in its safe state."""


class SafeStateError(InstrumentError):
    """An instrument's safe state could not be set or was not confirmed by reading it back."""


class InvalidInputError(LabctlError):
    """A parameter, option or plan value is refused before anything moves (NaN, out of range,
    an internal parameter, a cross-field rule)."""
