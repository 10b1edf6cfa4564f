"""The series catalog as a file that can evolve: schema version and upgrade, UTC
timestamps, constraints, one atomic() helper, state transitions, anneal progress."""

import sqlite3
from types import SimpleNamespace

import pytest

from labctl.series.catalog import SCHEMA_VERSION, Catalog, CatalogError
from labctl.series.states import ForbiddenTransition

V0_SCHEMA = """
CREATE TABLE series (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT, plan_path TEXT,
    plan_digest TEXT, plan_text TEXT, station TEXT, created TEXT, state TEXT, message TEXT);
CREATE TABLE steps (idx INTEGER PRIMARY KEY, kind TEXT, temperature_c REAL, slot INTEGER,
    sample_id TEXT, params TEXT, state TEXT, attempts INTEGER DEFAULT 0, started TEXT,
    ended TEXT, run_file TEXT, results TEXT, message TEXT);
CREATE TABLE attempts (step INTEGER, attempt INTEGER, started TEXT, ended TEXT, state TEXT,
    run_file TEXT, message TEXT, PRIMARY KEY (step, attempt));
CREATE TABLE events (t TEXT, level TEXT, step INTEGER, message TEXT);
"""


def plan(n=2):
    steps = [
        SimpleNamespace(
            index=i,
            kind="anneal" if i == 0 else "absorption",
            temperature_c=250.0,
            slot=1,
            sample_id="F-250C",
            params={"anneal_c": 250.0},
        )
        for i in range(n)
    ]
    return SimpleNamespace(name="t", path="plan.yaml", digest="abc", text="x", steps=steps)


@pytest.fixture
def catalog(tmp_path):
    c = Catalog(tmp_path / "catalog.sqlite", create=True)
    c.initialise(plan(), "sim")
    yield c
    c.close()


def write_v0(path):
    db = sqlite3.connect(path)
    db.executescript(V0_SCHEMA)
    db.execute(
        "INSERT INTO series VALUES (1, 'old', 'p.yaml', 'abc', 'x', 'sim',"
        " '2026-03-29T01:30:00', 'running', '')"
    )
    db.execute(
        "INSERT INTO steps VALUES (0, 'anneal', 250, 1, 'F', '{}', 'running', 1,"
        " '2026-03-29T01:31:00', NULL, 'runs/a.csv', NULL, '')"
    )
    db.execute(
        "INSERT INTO attempts VALUES (0, 1, '2026-03-29T01:31:00', NULL, 'running',"
        " 'runs/a.csv', '')"
    )
    db.execute("INSERT INTO events VALUES ('2026-03-29T01:30:00', 'info', NULL, 'started')")
    db.commit()
    db.close()


def test_new_catalog_has_the_schema_version_and_utc_timestamps(catalog):
    assert catalog.version == SCHEMA_VERSION >= 1
    catalog.event("info", "hello")
    assert catalog.series()["created"].endswith("+00:00")
    assert catalog.events()[-1]["t"].endswith("+00:00")


def test_todays_catalog_upgrades_in_place_keeping_every_row(tmp_path):
    path = tmp_path / "catalog.sqlite"
    write_v0(path)
    with Catalog(path) as c:
        assert c.version == SCHEMA_VERSION
        assert c.series()["name"] == "old"
        step = c.step(0)
        assert (step["state"], step["attempts"], step["run_file"]) == ("running", 1, "runs/a.csv")
        assert step["started"].endswith("+00:00")  # naive local time → UTC with its offset
        assert len(c.events()) == 1
        # the old attempt started a program whose progress nobody recorded: unknown
        history = c.anneal_history(0)
        assert history["program_started"] and history["unknown_attempts"] == [1]
    with Catalog(path) as c:  # a second open does not upgrade again
        assert c.version == SCHEMA_VERSION and len(c.attempts()) == 1


def test_a_newer_catalog_is_refused(tmp_path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path, create=True).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(CatalogError, match="newer than this labctl"):
        Catalog(path)


def test_states_are_checked_by_constraints_and_foreign_keys(catalog):
    with pytest.raises(sqlite3.IntegrityError):
        catalog.db.execute("UPDATE steps SET state = 'finished' WHERE idx = 0")
    with pytest.raises(sqlite3.IntegrityError):
        catalog.db.execute("INSERT INTO attempts (step, attempt, state) VALUES (99, 1, 'running')")


def test_done_is_final_a_finished_step_never_starts_again(catalog):
    catalog.start_step(0, "runs/a.csv")
    catalog.end_step(0, "done", results={})
    with pytest.raises(ForbiddenTransition, match="done is final"):
        catalog.start_step(0, "runs/b.csv")
    with pytest.raises(ForbiddenTransition):
        catalog.skip(0, "no")
    assert catalog.step(0)["attempts"] == 1 and len(catalog.attempts(0)) == 1


def test_forbidden_series_transition_raises(catalog):
    with pytest.raises(ForbiddenTransition):
        catalog.set_series_state("done")  # pending → done: it never ran
    catalog.set_series_state("running")
    catalog.set_series_state("done")
    assert catalog.series()["state"] == "done"


def test_atomic_rolls_back_all_of_a_failed_change(catalog):
    with pytest.raises(RuntimeError), catalog.atomic() as db:
        db.execute("UPDATE steps SET message = 'half' WHERE idx = 0")
        raise RuntimeError("in the middle")
    assert catalog.step(0)["message"] == ""


def test_single_row_read_by_key(catalog):
    assert catalog.step(1)["kind"] == "absorption"
    with pytest.raises(CatalogError, match="no step 7"):
        catalog.step(7)


def test_anneal_history_sums_programs_not_attempts(catalog):
    a1 = catalog.start_step(0, "runs/a1.csv")
    catalog.record_anneal_progress(
        0, a1, program_started=True, dwell_done_s=600.0, cooling_reached=False
    )
    catalog.interrupted(0, "runner died")
    a2 = catalog.start_step(0, "runs/a2.csv")  # attached to attempt 1's program
    catalog.record_anneal_progress(
        0, a2, program_started=True, dwell_done_s=1800.0, cooling_reached=True, program_attempt=a1
    )
    catalog.end_step(0, "failed", message="sensor break", dwell_done_s=1800.0)
    h = catalog.anneal_history(0)
    assert h["dwell_done_s"] == 1800.0  # one program: its dwell once, not 600 + 1800
    assert h["cooling_reached"] and not h["unknown_attempts"]
    assert [a["state"] for a in catalog.attempts(0)] == ["interrupted", "failed"]


def test_damage_is_named(tmp_path):
    c = Catalog(tmp_path / "catalog.sqlite", create=True)
    assert c.damage() == "its series row is missing"
    c.close()


def test_an_attempt_that_attached_accounts_for_a_program_whose_starter_left_none(catalog):
    a1 = catalog.start_step(0, "runs/a1.csv")
    catalog.record_anneal_progress(
        0, a1, program_started=True, dwell_done_s=None, cooling_reached=False
    )
    with catalog.atomic() as db:  # killed before its first row: started, no account
        db.execute("UPDATE attempts SET progress_at = NULL")
    assert catalog.anneal_history(0)["unknown_attempts"] == [a1]
    catalog.interrupted(0, "runner died")
    assert catalog.anneal_history(0)["last_program_attempt"] == a1
    a2 = catalog.start_step(0, "runs/a2.csv")
    catalog.record_anneal_progress(
        0, a2, program_started=True, dwell_done_s=900.0, cooling_reached=False, program_attempt=a1
    )
    h = catalog.anneal_history(0)
    assert h["unknown_attempts"] == [] and h["dwell_done_s"] == 900.0
