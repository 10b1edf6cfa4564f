"""The watch page over HTTP: token and loopback policy, what it serves, live events, and a
series directory left exactly as it was (the page only reads)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import httpx
import pytest
from small_series import run_small_series, write_plan

from labctl.series.catalog import Catalog
from labctl.series.watch import WatchRefused, WatchServer, check_exposure

TOKEN = "s3cret-night"


@pytest.fixture(scope="module")
def finished_series(tmp_path_factory):
    return run_small_series(tmp_path_factory.mktemp("watch") / "series")


def tree(directory):
    """Every file under ``directory`` with its size, mtime and content digest — except the
    content of SQLite's ``-shm`` wal-index while a writer has it: shared memory where every
    reader, read-only ones too, takes its read mark (no data lives there)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            st = path.stat()
            if path.name.endswith("-shm"):
                out[str(path.relative_to(directory))] = st.st_size
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(directory))] = (st.st_size, st.st_mtime_ns, digest)
    return out


def test_loopback_by_default_and_exposure_needs_a_token():
    check_exposure("127.0.0.1", None)
    check_exposure("::1", None)
    check_exposure("localhost", None)
    check_exposure("0.0.0.0", TOKEN)
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(WatchRefused, match="--token"):
            check_exposure(host, None)


def test_cli_refuses_a_non_loopback_host_without_token_in_one_line(finished_series):
    env = {k: v for k, v in os.environ.items() if k != "LABCTL_WATCH_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "series", "watch", str(finished_series),
         "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--token" in lines[0] and "Traceback" not in proc.stderr


def test_cli_serves_on_loopback_and_prints_its_address(finished_series):
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "series", "watch", str(finished_series),
         "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # readiness: the socket listens before this line
        assert line.startswith("watch http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]
        state = httpx.get(url + "api/state", timeout=30).json()
        assert state["series"]["name"] == "night-test"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_cli_exposed_with_the_token_from_the_environment(finished_series):
    env = {**os.environ, "LABCTL_WATCH_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.cli", "series", "watch", str(finished_series),
         "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("watch http://") and line.endswith("(token required)\n"), (
            line + proc.stderr.read()
        )
        port = line.split()[1].rsplit(":", 1)[1].strip("/")
        url = f"http://127.0.0.1:{port}/api/state"
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, params={"token": TOKEN}, timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_every_request_without_the_token_gets_401(finished_series):
    with WatchServer(finished_series, token=TOKEN) as server:
        for path in ("", "api/state", "events", "plots/furnace.png"):
            r = httpx.get(server.url + path, timeout=30)
            assert r.status_code == 401, path
            assert r.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(server.url + "api/state", params={"token": "nope"}, timeout=30)
        assert wrong.status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(server.url + "api/state", headers=bearer, timeout=30).status_code == 200
        query = httpx.get(server.url, params={"token": TOKEN}, timeout=30)
        assert query.status_code == 200 and "EventSource" in query.text


def test_state_plots_and_events_of_a_finished_series(finished_series):
    with WatchServer(finished_series) as server:
        state = httpx.get(server.url + "api/state", timeout=30).json()
        assert state["series"]["state"] == "done"
        assert [s["kind"] for s in state["steps"]] == ["anneal", "absorption", "optp", "tds"]
        assert {s["state"] for s in state["steps"]} == {"done"}
        assert state["eta"] == {"done": 4, "total": 4, "remaining_s": None, "text": "ended: done"}
        assert [v["key"] for v in state["fit"]["values"]] == [
            "tau_fs", "c", "N_m3", "mobility_cm2_Vs",
        ]  # fmt: skip
        assert "±" in state["fit"]["values"][0]["text"]
        assert "INFO series 'night-test' started on" in state["log"][0]  # no series.log: events
        assert state["log"][-1].endswith("INFO series finished")
        for name in ("furnace", "absorption", "optp", "conductivity"):
            assert state["plots"][name], name
            png = httpx.get(server.url + f"plots/{name}.png", timeout=60)
            assert png.status_code == 200 and png.content.startswith(b"\x89PNG"), name
        assert httpx.get(server.url + "plots/nothing.png", timeout=30).status_code == 404
        assert httpx.post(server.url + "api/state", timeout=30).status_code == 405
        with httpx.stream("GET", server.url + "events", timeout=30) as stream:
            event = data = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = json.loads(line.split(":", 1)[1])
                    break
        assert event == "state" and data["version"] == state["version"]


def test_events_follow_the_catalog_and_the_directory_is_never_written(finished_series, tmp_path):
    series = shutil.copytree(finished_series, tmp_path / "series")
    with Catalog.in_directory(series) as writer:  # a runner, live: the catalog in WAL mode
        writer.set_series_state("running")
        before = tree(series)
        with WatchServer(series, poll_s=0.05) as server:
            states = []
            with httpx.stream("GET", server.url + "events", timeout=30) as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    doc = json.loads(line.split(":", 1)[1])
                    if "series" not in doc:
                        continue  # an ETA update
                    states.append(doc["series"]["state"])
                    if len(states) == 1:
                        writer.set_series_state("stopped", "furnace interlock: sensor break")
                        before = tree(series)  # the runner's write, not the page's
                    else:
                        assert doc["series"]["message"] == "furnace interlock: sensor break"
                        break
            httpx.get(server.url + "api/state", timeout=30)
            httpx.get(server.url + "plots/furnace.png", timeout=60)
        assert states == ["running", "stopped"]
        assert tree(series) == before
    finished = tree(series)  # the writer gone: a reader must not leave -wal/-shm behind
    assert not any(name.endswith(("-wal", "-shm")) for name in finished)
    (series / "series.log").write_text("".join(f"line {i}\n" for i in range(1000)))
    finished = tree(series)
    with WatchServer(series) as server:
        state = httpx.get(server.url + "api/state", timeout=30).json()
        assert state["log"] == [f"line {i}" for i in range(960, 1000)]  # the tail of the file
        assert httpx.get(server.url + "plots/optp.png", timeout=60).status_code == 200
    assert tree(series) == finished


def test_a_series_about_to_start_is_served_and_waits(tmp_path):
    with WatchServer(tmp_path, require_series=False) as server:
        r = httpx.get(server.url + "api/state", timeout=30)
        assert r.status_code == 503 and "no series catalog" in r.json()["error"]
    with pytest.raises(WatchRefused, match="no series here"):
        WatchServer(tmp_path)


@pytest.mark.slow
def test_series_run_serves_the_page_alongside(tmp_path):
    plan = write_plan(tmp_path)
    out = tmp_path / "out"
    base = [sys.executable, "-m", "labctl.cli", "series", "run", str(plan), "--out", str(out)]
    env = {**os.environ, "LABCTL_CONFIG": str(tmp_path)}  # no notify.yaml: desktop only
    env.pop("LABCTL_WATCH_TOKEN", None)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    exposed = subprocess.run(
        [*base, "--watch-port", "0", "--watch-host", "0.0.0.0"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert exposed.returncode == 2 and "--token" in exposed.stderr
    assert not out.exists()  # refused before anything ran
    proc = subprocess.Popen(
        [*base, "--watch-port", "0", "--time-scale", "virtual", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        seen = []
        for line in proc.stderr:  # readiness: the line comes once the socket listens
            seen.append(line)
            if line.startswith("watch http://127.0.0.1:"):
                url = line.split()[1]
                r = httpx.get(url + "api/state", timeout=60)
                assert r.status_code in (200, 503), r.text  # 503: the catalog not yet made
                break
        else:
            pytest.fail("no watch line: " + "".join(seen))
        proc.stderr.read()
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    with pytest.raises(httpx.ConnectError):  # the page ended with the series
        httpx.get(url + "api/state", timeout=10)


def test_watch_of_a_directory_without_a_series_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "series", "watch", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"labctl series: error: {tmp_path}: no series here (no catalog.sqlite)"
    )


def test_eta_is_learned_from_how_long_the_finished_steps_took():
    from datetime import datetime, timedelta

    from labctl.series.estimate import step_duration_s
    from labctl.series.plan import Step
    from labctl.series.watch_state import eta

    def step(idx, kind, state, started=None, took_s=None):
        ended = None if took_s is None else started + timedelta(seconds=took_s)
        params = {"anneal_c": 300.0} if kind == "anneal" else {}
        return {
            "idx": idx, "kind": kind, "temperature_c": 300.0, "slot": 1, "sample_id": "W",
            "params": params, "state": state, "run_file": None, "results": None,
            "started": started and started.isoformat(timespec="seconds"),
            "ended": ended and ended.isoformat(timespec="seconds"),
        }  # fmt: skip

    def estimate_s(row):  # the planner's real-time estimate of the step a row records
        keys = ("idx", "kind", "temperature_c", "slot", "sample_id", "params")
        return step_duration_s(Step(*(row[k] for k in keys)))

    t0 = datetime(2026, 12, 6, 1, 0, 0)
    anneal = step(0, "anneal", "done", t0, None)
    estimate = estimate_s(anneal)
    anneal = step(0, "anneal", "done", t0, estimate / 10)  # ran 10× faster than estimated
    left = [step(1, "absorption", "pending"), step(2, "tds", "pending")]
    doc = eta({"state": "running"}, [anneal, *left])
    expected = sum(estimate_s(s) for s in left) / 10
    assert doc["remaining_s"] == pytest.approx(expected, abs=1.0)
    assert (doc["done"], doc["total"]) == (1, 3)
    assert "0.1× their real-time estimate" in doc["text"]
    fresh = eta({"state": "running"}, [step(0, "anneal", "pending"), *left])
    assert fresh["remaining_s"] is None and "at real time (no step finished yet)" in fresh["text"]
    assert eta({"state": "stopped"}, [anneal, *left])["text"] == "ended: stopped"
