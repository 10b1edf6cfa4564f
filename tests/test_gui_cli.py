"""``labctl gui`` as the operator starts it: a process that keeps running, no traceback."""

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time

from labctl.cli import build_parser


def test_gui_subcommand_is_registered():
    args = build_parser().parse_args(["gui", "--time-scale", "50", "--data", "d"])
    assert (args.station, args.time_scale, args.data) == ("sim", 50.0, "d")


def test_labctl_gui_keeps_running_offscreen_without_a_traceback(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "-v", "gui", "--data", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    err: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out.append), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err.put), daemon=True),
    ]
    for reader in readers:
        reader.start()
    said: list[str] = []
    try:
        # readiness, not a sleep: the GUI logs this line from inside its running event loop
        deadline = time.monotonic() + 120
        while not any("labctl gui: station" in line for line in said):
            remaining = deadline - time.monotonic()
            assert remaining > 0 and proc.poll() is None, "".join(said)
            with contextlib.suppress(queue.Empty):
                said.append(err.get(timeout=min(remaining, 1.0)))
        assert proc.poll() is None, "".join(said)  # up, and keeps running
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for reader in readers:
            reader.join(timeout=10)
    while not err.empty():
        said.append(err.get_nowait())
    text = without_debug_records("".join(said))  # -v: third-party debug tracebacks are no error
    assert "Traceback" not in text and "Traceback" not in "".join(out), text
    assert proc.returncode == 0, text  # SIGTERM closes the window the orderly way


RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def without_debug_records(text: str) -> str:
    """stderr without the DEBUG log records (a record runs to the next record's header).

    What is left is what the same run prints without ``-v``: records at INFO and above
    and any text printed outside a DEBUG record.
    """
    kept, in_debug = [], False
    for line in text.splitlines(keepends=True):
        header = RECORD.match(line)
        if header:
            in_debug = header.group(1) == "DEBUG"
        if not in_debug:
            kept.append(line)
    return "".join(kept)


def test_debug_records_are_dropped_with_their_tracebacks_and_nothing_else():
    text = (
        "2026-01-01 00:00:00,000 DEBUG root: closing\nTraceback (most recent call last):\n  x\n"
        "2026-01-01 00:00:00,001 ERROR labctl: failed\nTraceback (most recent call last):\n"
    )
    assert without_debug_records(text) == (
        "2026-01-01 00:00:00,001 ERROR labctl: failed\nTraceback (most recent call last):\n"
    )


def _drain(stream, put) -> None:
    for line in stream:
        put(line)


def test_labctl_gui_with_a_missing_station_file_says_so(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "gui", "--station", str(tmp_path / "none.yaml")],
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "none.yaml" in proc.stderr and "Traceback" not in proc.stderr
