"""Exceptions that say what went wrong and where.

Every error raised to a user names the instrument (or file) and the operation,
so a failed overnight run can be understood from its log line alone.
"""

#: An operator's error line is at most this long; the full text stays in the run's JSON/log.
BRIEF_CHARS = 200


def brief(text: object, limit: int = BRIEF_CHARS) -> str:
    """One line of at most ``limit`` characters: whitespace folded, the tail cut with '…'."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_os_error(exc: OSError) -> str:
    """An OSError in an operator's words: disk full is called disk full."""
    import errno

    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if exc.errno == errno.ENOSPC:
        return f"disk full{where}: no space left to record data"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded{where}: no space left to record data"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write{where}: {exc.strerror} (read-only or not permitted)"
    return f"{exc.strerror or exc}{where}"


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


class Aborted(LabctlError):
    """The user stopped the run (Abort, Ctrl-C, SIGTERM, Stop); what was recorded is kept."""


class InterlockError(InstrumentError):
    """An interlock tripped (deviation, sensor break, over-temperature, lost instrument):
    the run stops and the instrument is put in its safe state."""


class FurnaceInterlock(InterlockError):
    """A furnace interlock tripped: sensor break, over-temperature or PV far from the setpoint."""


class InvalidInputError(LabctlError):
    """A parameter, option or plan value is refused before anything moves (NaN, out of range,
    an internal parameter, a cross-field rule)."""
