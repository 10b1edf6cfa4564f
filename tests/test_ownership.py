"""One owner per instrument and per series directory (labctl.ownership): refused at once,
naming the holder; released by the OS when the holder dies, however it dies."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from labctl.ownership import (
    Busy,
    claim_instruments,
    claim_series_directory,
    instrument_lock_path,
    owner_scope,
)

ADDRESS = "socket://127.0.0.1:65001"
HOLDER = textwrap.dedent(
    """
    import sys
    from labctl.ownership import claim_instruments
    claim = claim_instruments([("furnace", sys.argv[1])])
    print("held", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"


@pytest.fixture
def holder(lock_dir):
    """Another process holding the furnace's address."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, ADDRESS, "holder-tag"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LABCTL_LOCK_DIR": str(lock_dir)},
    )
    try:
        assert proc.stdout.readline().strip() == "held"  # readiness, not a sleep
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_a_claim_held_by_another_process_is_refused_naming_it(holder):
    with pytest.raises(Busy) as info:
        claim_instruments([("furnace", ADDRESS)])
    text = str(info.value)
    assert f"pid {holder.pid}" in text and "furnace" in text and "since" in text


def test_the_os_releases_the_claim_when_the_holder_is_killed(holder):
    with pytest.raises(Busy):
        claim_instruments([("furnace", ADDRESS)])
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with claim_instruments([("furnace", ADDRESS)]):
        pass  # no stale lock left behind


def test_all_or_nothing_a_refused_claim_keeps_nothing(holder):
    other = "socket://127.0.0.1:65002"
    with pytest.raises(Busy):
        claim_instruments([("stages", other), ("furnace", ADDRESS)])
    with claim_instruments([("stages", other)]):  # the first was given back
        pass


def test_in_one_process_reentrant_for_its_owner_refused_for_another_run():
    series = object()
    with claim_instruments([("furnace", ADDRESS)], owner=series):
        with owner_scope(series), claim_instruments([("furnace", ADDRESS)]):
            pass  # the series' own procedure
        with pytest.raises(Busy, match="another run in this process"):
            claim_instruments([("furnace", ADDRESS)])  # a GUI queue run in the same process
        with claim_instruments([("furnace", ADDRESS)], owner=series):
            pass
    with claim_instruments([("furnace", ADDRESS)]):  # released once the outer claim ends
        pass


def test_in_process_simulators_are_not_claimed():
    with claim_instruments([("furnace", "sim://furnace")]):
        with claim_instruments([("furnace", "sim://furnace")]):
            pass


def test_a_released_lock_file_names_nobody(lock_dir):
    with claim_instruments([("furnace", ADDRESS)]):
        assert str(os.getpid()) in instrument_lock_path(ADDRESS).read_text()
    assert instrument_lock_path(ADDRESS).read_text() == ""


def test_one_runner_per_series_directory(tmp_path):
    with claim_series_directory(tmp_path):
        with pytest.raises(Busy, match=f"series {tmp_path}"):
            claim_series_directory(tmp_path)
    claim_series_directory(tmp_path).release()


# --- a refused program touches no instrument ----------------------------------------
PLAN = """\
name: refused
sample: R
slots: [1]
temperatures_c: [250]
anneal: {ramp_c_per_min: 20, dwell_min: 5, cool_min: 30}
measurements: []
"""


@pytest.fixture
def listened_station(tmp_path, lock_dir):
    """A station whose every instrument address is a loopback listener of this test (so a
    connection attempt is seen), with the furnace's address claimed by another process."""
    import socket

    import yaml

    from labctl.station import station_path

    data = yaml.safe_load(station_path("sim").read_text())
    data.pop("simulation")
    listeners = {}
    for role, inst in data["instruments"].items():
        sock = socket.create_server(("127.0.0.1", 0))
        sock.setblocking(False)
        port = sock.getsockname()[1]
        listeners[role] = sock
        visa = inst["driver"] in ("sr830", "esp301", "pm100")
        inst["address"] = (
            f"TCPIP0::127.0.0.1::{port}::SOCKET" if visa else f"socket://127.0.0.1:{port}"
        )
        inst.pop("simulator", None)
    path = tmp_path / "listened.yaml"
    path.write_text(yaml.safe_dump(data))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, data["instruments"]["furnace"]["address"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LABCTL_LOCK_DIR": str(lock_dir)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield path, listeners, holder
    finally:
        holder.kill()
        holder.wait(timeout=30)
        for sock in listeners.values():
            sock.close()


def untouched(listeners) -> list[str]:
    """The roles whose listener was never connected to (a refused program left exited)."""
    roles = []
    for role, sock in listeners.items():
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            roles.append(role)
        else:
            conn.close()
    return roles


def test_a_refused_series_runner_connects_to_no_instrument(listened_station, tmp_path, capsys):
    from labctl.cli import main

    station, listeners, holder = listened_station
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "series"
    rc = main(["series", "run", str(plan), "--out", str(out), "--station", str(station),
               "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "refusing to start" in err[0] and f"pid {holder.pid}" in err[0]
    assert untouched(listeners) == list(listeners)
    assert not (out / "catalog.sqlite").exists()


def test_a_refused_run_connects_to_no_instrument_and_records_nothing(
    listened_station, tmp_path, capsys
):
    from labctl.cli import main

    station, listeners, holder = listened_station
    out = tmp_path / "runs"
    rc = main(["run", "anneal", "--station", str(station), "--anneal-c", "250", "--out",
               str(out), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    assert "anneal refused" in err and f"pid {holder.pid}" in err and "Traceback" not in err
    assert untouched(listeners) == list(listeners)
    assert not out.exists() or not any(out.iterdir())


def test_station_check_names_an_instrument_in_use_and_does_not_connect_it(
    listened_station, tmp_path, capsys
):
    import yaml

    from labctl.cli import main

    station, listeners, holder = listened_station
    data = yaml.safe_load(station.read_text())
    data["instruments"] = {"furnace": data["instruments"]["furnace"]}
    alone = tmp_path / "furnace-only.yaml"
    alone.write_text(yaml.safe_dump(data))
    rc = main(["station", "check", str(alone)])
    out = capsys.readouterr().out
    assert rc == 1
    (line,) = [ln for ln in out.splitlines() if ln.startswith("furnace:")]
    assert "NOT CHECKED" in line and f"pid {holder.pid}" in line
    assert "furnace" in untouched(listeners)
