"""Series plans: malformed and impossible plans are refused before anything moves.

Each refusal is exit code 2 and one line naming the file, the line, the key and
the problem; a good plan becomes its ordered steps with a digest of what it does.
"""

import re

import pytest

from labctl.cli import main
from labctl.series.plan import load_plan

GOOD = """\
name: small
sample: NPL
films: per-temperature
slots: [1, 2]
temperatures_c: [250, 350]
anneal:
  ramp_c_per_min: 10
  dwell_min: 30
measurements:
  - absorption: {averages: 2}
  - tds: {max_sweeps: 2, min_sweeps: 1}
retries: 1
on_failure: stop
interlocks: {max_deviation_c: 15}
"""


def write(tmp_path, text, name="plan.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def refuse(tmp_path, capsys, text):
    """`labctl series check` on ``text``: exit 2 and one line; returns (line, file)."""
    path = write(tmp_path, text)
    assert main(["series", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0], str(path)


def line_of(text, needle):
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ("retries: 1", "retires: 1", "retires", "unknown key (did you mean 'retries'?)"),
        ("[250, 350]", "[250, 500]", "temperatures_c.1", "must lie in 30…400, got 500"),
        (
            "dwell_min: 30",
            "dwell_min: -30",
            "anneal.dwell_min",
            "must be a finite number in 0…1440",
        ),
        # issue 15 item 3: NaN/inf switch nothing off, internal knobs are not the plan's
        (
            "{max_deviation_c: 15}",
            "{max_deviation_c: .nan}",
            "interlocks.max_deviation_c",
            "must be a finite number in 0.1…500 degC, got nan",
        ),  # fmt: skip
        (
            "dwell_min: 30",
            "dwell_min: 30\n  record_interval_s: .nan",
            "anneal.record_interval_s",
            "must be a finite number",
        ),  # fmt: skip
        (
            "dwell_min: 30",
            "dwell_min: 30\n  continue_program: true",
            "anneal.continue_program",
            "not a parameter of anneal",
        ),  # fmt: skip
        (
            "dwell_min: 30",
            "dwell_min: 30\n  dwell_done_min: 10",
            "anneal.dwell_done_min",
            "not a parameter of anneal",
        ),  # fmt: skip
        ("dwell_min: 30", "dwell_min: half an hour", "anneal.dwell_min", "got 'half an hour'"),
        ("dwell_min: 30", 'dwell_min: "30"', "anneal.dwell_min", "got '30'"),
        ("[250, 350]", "[]", "temperatures_c", "must be a non-empty list"),
        ("[250, 350]", "250", "temperatures_c", "must be a non-empty list"),
        ("retries: 1", "retries: two", "retries", "must be a number, got 'two'"),
        ("slots: [1, 2]", "slots: [1]", "slots", "needs 2 slot(s) for 2 temperature(s), got 1"),
        ("slots: [1, 2]", "slots: [1, 1]", "slots", "a slot appears twice"),
        ("on_failure: stop", "on_failure: retry", "on_failure", "must be one of"),
        (
            "max_sweeps: 2,",
            "max_sweep: 2,",
            "measurements.1.tds.max_sweep",
            "not a parameter of tds (did you mean 'max_sweeps'?)",
        ),
        ("- absorption:", "- uvvis:", "measurements.0.uvvis", "unknown measurement"),
        ("{max_deviation_c: 15}", "{max_dev: 15}", "interlocks.max_dev", "unknown interlock"),
        ("  dwell_min: 30", "  dwell_min: 30\n  anneal_c: 300", "anneal.anneal_c", "is set by"),
        (
            "- absorption: {averages: 2}",
            "- absorption: {averages: 2, slot: 3}",
            "measurements.0.absorption.slot",
            "is set by the plan itself",
        ),
    ],
)
def test_bad_plan_refused_with_file_line_key(tmp_path, capsys, old, new, key, problem):
    assert old in GOOD
    text = GOOD.replace(old, new)
    message, path = refuse(tmp_path, capsys, text)
    deepest = [k for k in key.split(".") if not k.isdigit()][-1]
    line = line_of(text, deepest + ":")  # the line of the deepest key named
    assert message.startswith(f"labctl series: error: {path}:"), message
    assert f"{path}:{line}: {key}: " in message, (message, line)
    assert problem in message


def test_yaml_syntax_error_names_line_and_column(tmp_path, capsys):
    text = GOOD.replace("[250, 350]", "[250, 350")
    message, path = refuse(tmp_path, capsys, text)
    assert re.search(re.escape(path) + r":\d+:\d+: not valid YAML", message), message


@pytest.mark.parametrize(
    "text",
    ["- just\n- a list\n", "", "name: x\nname: y\ntemperatures_c: [250]\n"],
    ids=["list", "empty", "duplicate-key"],
)
def test_not_a_plan_refused(tmp_path, capsys, text):
    message, path = refuse(tmp_path, capsys, text)
    assert path in message


def test_missing_plan_file(tmp_path, capsys):
    assert main(["series", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_more_films_than_the_station_has_slots(tmp_path, capsys):
    """Slots the station's holder lacks are refused before anything moves (no catalog)."""
    temps = list(range(200, 300, 10))  # ten films; the simulated holder has 8 film slots
    text = GOOD.replace("slots: [1, 2]", f"slots: {list(range(1, 11))}").replace(
        "[250, 350]", str(temps)
    )
    path = write(tmp_path, text)
    out = tmp_path / "out"
    code = main(["series", "run", str(path), "--out", str(out), "--time-scale", "virtual"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path}:{line_of(text, 'slots:')}: slots: slot 9 does not exist" in err[0]
    assert not (out / "catalog.sqlite").exists()
    assert not (out / "runs").exists()


def test_good_plan_steps_and_digest(tmp_path, capsys):
    plan = load_plan(write(tmp_path, GOOD))
    assert [(s.kind, s.temperature_c, s.slot) for s in plan.steps] == [
        ("anneal", 250.0, 1),
        ("absorption", 250.0, 1),
        ("tds", 250.0, 1),
        ("anneal", 350.0, 2),
        ("absorption", 350.0, 2),
        ("tds", 350.0, 2),
    ]
    assert plan.steps[0].params["anneal_c"] == 250.0
    assert plan.steps[0].params["max_deviation_c"] == 15
    assert {s.sample_id for s in plan.steps} == {"NPL-250C", "NPL-350C"}
    # the digest is of what the plan does: comments and layout do not change it
    same = load_plan(write(tmp_path, "# a comment\n" + GOOD, "same.yaml"))
    assert same.digest == plan.digest
    other = load_plan(write(tmp_path, GOOD.replace("averages: 2", "averages: 3"), "o.yaml"))
    assert other.digest != plan.digest
    # one film through all temperatures, measured as made first
    one = GOOD.replace("films: per-temperature", "films: one").replace("[1, 2]", "[4]")
    one_plan = load_plan(write(tmp_path, one + "measure_as_made: true\n", "one.yaml"))
    assert [s.temperature_c for s in one_plan.steps] == [None, None, 250, 250, 250, 350, 350, 350]
    assert {s.slot for s in one_plan.steps} == {4}
    # `series check` prints the schedule and its estimated duration
    assert main(["series", "check", str(tmp_path / "plan.yaml")]) == 0
    out = capsys.readouterr().out
    assert "estimated duration" in out and plan.digest in out


def test_bundled_demo_plan_is_valid():
    from labctl.cli.demo import demo_plan_path

    plan = load_plan(demo_plan_path())
    anneals = [s for s in plan.steps if s.kind == "anneal"]
    assert [s.temperature_c for s in anneals] == [200, 250, 300, 325, 335, 340, 350]
    assert len({s.slot for s in anneals}) == 7
    kinds = [s.kind for s in plan.steps if s.temperature_c == 300]
    assert kinds == ["anneal", "absorption", "optp", "tds"]


def test_two_films_at_one_temperature_get_two_sample_ids(tmp_path):
    """Duplicate temperatures gave two films one sample id (one summary row, film 2
    normalised with film 1's absorbance): each film now has its own."""
    plan = load_plan(write(tmp_path, GOOD.replace("[250, 350]", "[250, 250]")))
    ids = {s.slot: s.sample_id for s in plan.steps}
    assert ids == {1: "NPL-250C", 2: "NPL-250C-2"}


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ("slots: [1, 2]", "slots: [1, 12]", "slots", "slot 12 does not exist on station 'sim'"),
        (
            "ramp_c_per_min: 10",
            "ramp_c_per_min: 30",
            "anneal.ramp_c_per_min",
            "30 °C/min is above the furnace's max_ramp_c_per_min 20",
        ),  # fmt: skip
        (
            "dwell_min: 30",
            "dwell_min: 30\n  cool_min: 10",
            "anneal.cool_min",
            "cooling from 250 °C to 25 °C in 10 min is 22.5 °C/min",
        ),  # fmt: skip
    ],
)
def test_series_check_checks_the_plan_against_its_station(tmp_path, capsys, old, new, key, problem):
    """Issue 15 item 4: these passed `series check` and failed hours into the night."""
    text = GOOD.replace(old, new)
    path = write(tmp_path, text)
    assert main(["series", "check", str(path), "--station", "sim"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    deepest = key.split(".")[-1] if not key.split(".")[-1].isdigit() else key.split(".")[0]
    assert f"{path}:{line_of(text, deepest + ':')}: {key}: {problem}" in line, line


def test_series_check_names_a_missing_station_file_at_its_line(tmp_path, capsys):
    text = GOOD + "station: nowhere.yaml\n"
    path = write(tmp_path, text)
    assert main(["series", "check", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"labctl series: error: {path}:{line_of(text, 'station:')}: station: ")
    assert "nowhere.yaml" in line


def test_tds_target_written_as_a_mapping_is_read_or_refused_by_name(tmp_path, capsys):
    """A plan's `target: {tau_fs_err: 2}` (the YAML way) is the CLI's `tau_fs_err=2`; a
    typo in it is one line naming the key — it crashed `series check` with an
    AttributeError, and a typo in the text form stopped a series hours in."""
    good = GOOD.replace(
        "{max_sweeps: 2, min_sweeps: 1}", "{max_sweeps: 4, target: {tau_fs_err: 2}}"
    )
    plan = load_plan(write(tmp_path, good))
    (tds,) = {s.params["target"].__repr__() for s in plan.steps if s.kind == "tds"}
    assert "tau_fs_err" in tds
    line, path = refuse(tmp_path, capsys, good.replace("tau_fs_err", "tau_err"))
    assert f"{path}:{line_of(good, 'tds:')}: measurements.1.tds.target: " in line, line
    assert "'tau_err=2'" in line and "tau_fs_err" in line


def test_a_plan_declares_the_simulated_world_it_assumes(tmp_path, capsys):
    """The demo runs a table quieter than a real one and says so in its plan: the plan's
    ``simulation`` options go over the station's, are part of the digest, and are checked
    like a station's (file:line:key); a station with no simulated world refuses them."""
    from labctl.cli.demo import demo_plan_path
    from labctl.series.station_fit import plan_station_spec

    demo = load_plan(demo_plan_path())
    assert demo.simulation == {"noise_floor_v_per_rthz": 2.5e-9}
    spec = plan_station_spec(demo)
    assert spec.simulation["noise_floor_v_per_rthz"] == 2.5e-9 and spec.simulation["noise"]
    plain = load_plan(write(tmp_path, GOOD))
    quiet = load_plan(write(tmp_path, GOOD + "simulation: {noise_floor_v_per_rthz: 1.0e-8}\n"))
    assert plain.simulation == {} and quiet.digest != plain.digest
    text = GOOD + "simulation: {noise_flor: 1.0e-8}\n"
    message, path = refuse(tmp_path, capsys, text)
    assert f"{path}:{line_of(text, 'simulation:')}: simulation.noise_flor: unknown key" in message
    text = GOOD + "simulation:\n  noise_floor_v_per_rthz: -1\n"
    message, path = refuse(tmp_path, capsys, text)
    assert f"{path}:{line_of(text, 'noise_floor_v_per_rthz')}: simulation.noise_floor" in message
    hardware = tmp_path / "hardware.yaml"
    hardware.write_text(
        "instruments:\n  lockin_ref:\n    driver: sr830\n"
        "    address: TCPIP0::192.0.2.1::1234::SOCKET\n"
    )
    text = GOOD.replace(
        "measurements:\n  - absorption: {averages: 2}\n  - tds: {max_sweeps: 2, min_sweeps: 1}\n",
        "measurements: []\n",
    )
    path = write(tmp_path, text + "simulation: {noise_floor_v_per_rthz: 1.0e-8}\n")
    assert main(["series", "check", str(path), "--station", str(hardware)]) == 2
    assert "no in-process simulated instrument" in capsys.readouterr().err
