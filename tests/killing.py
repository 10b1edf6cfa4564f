"""Kill a run's process mid-flight, as a power cut or the OOM killer would."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``ready()`` while ``proc`` runs, then SIGKILL it; never leave it running.

    Fails (with the process's stderr) if it ends first or ``ready`` stays false.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"not ready within {timeout_s:g} s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
