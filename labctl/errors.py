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


class SafeStateError(InstrumentError):
    """An instrument's safe state could not be confirmed by reading it back.

    The message says exactly what is not safe (``program run, not reset``,
    ``setpoint 250.0 °C, not 25.0 °C``, ``manual mode``) or what could not be
    read; a run summary or a series stop reports it as it stands.
    """


class CommunicationError(InstrumentError):
    """The link to an instrument failed: timeout, garbled reply, lost connection."""


class AnalysisError(LabctlError):
    """An analysis cannot proceed: too little data, a window with no points, a failed fit."""


class DataFileError(AnalysisError):
    """A data file is missing, malformed or physically inconsistent."""

    def __init__(self, path: object, message: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {message}")
