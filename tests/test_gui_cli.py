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
    # SIGTERM closes the window the orderly way and says so: 128 + SIGTERM (issue 15)
    assert proc.returncode == 143, text


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


LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibQt6Gui.so.6 => /venv/PySide6/Qt/lib/libQt6Gui.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibfoo-unknown.so.3 => not found
"""


def test_missing_qt_libraries_are_named_with_their_packages(tmp_path):
    from labctl.gui.qt_check import qt_start_problem

    (tmp_path / "libqxcb.so").write_bytes(b"")
    message = qt_start_problem(
        env={"DISPLAY": ":0"},
        platform="linux",
        plugin_dir=tmp_path,
        ldd=lambda path: LDD_MISSING,
        find_library=lambda name: None,  # no libxcb-cursor either
    )
    assert "libxcb-icccm.so.4, libxkbcommon-x11.so.0, libfoo-unknown.so.3" in message
    assert "libxcb-cursor.so.0" in message
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxkbcommon-x11-0" in message
    assert "apt-file search" in message and "docs/gui.md" in message
    everything_there = qt_start_problem(
        env={"DISPLAY": ":0"}, platform="linux", plugin_dir=tmp_path,
        ldd=lambda path: "\tlibc.so.6 => /lib/libc.so.6\n", find_library=lambda name: "x",
    )  # fmt: skip
    assert everything_there is None
    # other platforms and headless Qt are Qt's own business
    for env in ({"QT_QPA_PLATFORM": "offscreen"}, {"WAYLAND_DISPLAY": "wayland-0"}):
        assert qt_start_problem(env=env, platform="linux", plugin_dir=tmp_path) is None
    assert qt_start_problem(env={}, platform="win32") is None


def test_labctl_gui_without_a_display_says_so_in_one_line(tmp_path):
    """Not Qt's abort ('Reinstalling the application may fix this problem')."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    result = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "gui", "--data", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("labctl gui: error: no display: DISPLAY is not set")
    assert "Reinstalling" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_gui_serves_its_simulated_world_so_a_series_shares_it(tmp_path):
    """A program given the GUI's station name (as the series process is) drives the same
    simulated world the GUI's instrument panel shows."""
    from labctl.gui.app import open_station
    from labctl.station import Station

    opened = open_station("sim", 50.0, tmp_path)
    try:
        assert opened.served is not None and opened.station.world is None
        assert opened.name == str(tmp_path / "gui-served-station.yaml")
        with Station.from_file(opened.name) as series_side:
            series_side["furnace"].setpoint_c = 123.0
            assert opened.station["furnace"].setpoint_c == 123.0
            assert series_side.clock.scale == opened.station.clock.scale == 50.0
    finally:
        opened.close()
    virtual = open_station("sim", "virtual", tmp_path)
    try:
        assert virtual.served is None and virtual.station.world is not None
    finally:
        virtual.close()
