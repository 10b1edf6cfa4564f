"""``labctl gui`` as the operator starts it: a process that keeps running, no traceback."""

import os
import subprocess
import sys
import time

from labctl.cli import build_parser


def test_gui_subcommand_is_registered():
    args = build_parser().parse_args(["gui", "--time-scale", "50", "--data", "d"])
    assert (args.station, args.time_scale, args.data) == ("sim", 50.0, "d")


def test_labctl_gui_keeps_running_offscreen_without_a_traceback(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "gui", "--data", str(tmp_path / "runs")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(5.0)
        assert proc.poll() is None, proc.communicate(timeout=10)
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
    assert "Traceback" not in err and "Traceback" not in out, err
    # SIGTERM closes the window the orderly way and says so: 128 + SIGTERM (issue 15)
    assert proc.returncode == 143, err


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
