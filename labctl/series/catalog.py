"""The series catalog: every step's state in SQLite, one transaction per change.

``catalog.sqlite`` in the output directory is in WAL mode, so ``labctl series
status`` in another process reads it while the runner writes; the runner
checkpoints the WAL at each step's end, so a copy of the file alone is at most
one step behind. A step's row says what it is (kind, temperature, slot, sample,
parameters) and how it stands; every attempt keeps its own row, so a partial
file from an interrupted measurement stays on record beside the redo.

The rules the file itself enforces (a bug cannot break them):

* states are the enums of :mod:`labctl.series.states`; every change is checked
  against their transition table (``done`` is final), and the columns carry
  SQL ``CHECK`` constraints and foreign keys (an attempt belongs to a step);
* every change is one :meth:`Catalog.atomic` transaction (``BEGIN IMMEDIATE``),
  durable (``synchronous=FULL``) before the next instrument command;
* timestamps are UTC, ISO 8601 with their offset (``2026-03-29T01:30:00+00:00``):
  a daylight-saving night neither repeats nor skips an hour;
* an anneal attempt records the furnace programmer's own account as it runs
  (program started, dwell done, cooling segment reached): resume decides from
  it, never from a temperature window (``docs/series.md``);
* the schema has a version (``PRAGMA user_version``); an older catalog is
  upgraded in place on opening (one transaction), a newer one is refused.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError
from labctl.series.states import (
    AttemptState,
    SeriesState,
    StepState,
    check_sql,
    check_transition,
)

CATALOG_NAME = "catalog.sqlite"
SCHEMA_VERSION = 1  # 0: the catalogs written before the version existed (upgraded on open)
PENDING, RUNNING, DONE, FAILED, SKIPPED = (
    StepState.PENDING,
    StepState.RUNNING,
    StepState.DONE,
    StepState.FAILED,
    StepState.SKIPPED,
)

_TABLES = f"""
CREATE TABLE series (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL, plan_path TEXT, plan_digest TEXT NOT NULL, plan_text TEXT,
    station TEXT, station_identity TEXT, created TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN {check_sql(SeriesState)}),
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE steps (
    idx INTEGER PRIMARY KEY CHECK (idx >= 0), kind TEXT NOT NULL, temperature_c REAL,
    slot INTEGER, sample_id TEXT, params TEXT NOT NULL DEFAULT '{{}}',
    state TEXT NOT NULL CHECK (state IN {check_sql(StepState)}),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0), started TEXT, ended TEXT,
    run_file TEXT, results TEXT, message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE attempts (
    step INTEGER NOT NULL REFERENCES steps (idx), attempt INTEGER NOT NULL CHECK (attempt >= 1),
    started TEXT, ended TEXT,
    state TEXT NOT NULL CHECK (state IN {check_sql(AttemptState)}),
    run_file TEXT, message TEXT NOT NULL DEFAULT '',
    program_started INTEGER NOT NULL DEFAULT 0 CHECK (program_started IN (0, 1)),
    program_attempt INTEGER, dwell_done_s REAL CHECK (dwell_done_s >= 0),
    cooling_reached INTEGER NOT NULL DEFAULT 0 CHECK (cooling_reached IN (0, 1)),
    progress_at TEXT,
    PRIMARY KEY (step, attempt)
);
CREATE TABLE events (
    t TEXT NOT NULL, level TEXT NOT NULL, step INTEGER REFERENCES steps (idx), message TEXT
);
"""


class CatalogError(LabctlError):
    """A catalog that cannot be used as it is (damaged, newer, not a catalog)."""


def utc_now() -> str:
    """Now, UTC, ISO 8601 with its offset (seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _utc_from_local(text: str | None) -> str | None:
    """A version-0 timestamp (naive local time of the machine) as UTC with its offset."""
    if not text:
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.astimezone()  # naive: the machine's local time, as it was written
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Catalog:
    """The SQLite record of one series directory."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self._held: list[Any] = []  # released on close (the series directory's lock)
        if not create and not self.path.exists():
            raise CatalogError(f"{self.path}: no series catalog here")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._schema(create)
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise CatalogError(f"{self.path}: not a readable series catalog: {exc}") from None
        except BaseException:
            self.db.close()
            raise

    @classmethod
    def in_directory(cls, directory: str | Path, *, create: bool = False) -> Catalog:
        return cls(Path(directory) / CATALOG_NAME, create=create)

    def hold(self, resource) -> None:
        """Keep ``resource`` (anything with ``release()``) until this catalog closes."""
        self._held.append(resource)

    @classmethod
    def read_only(cls, directory: str | Path) -> Catalog:
        """The catalog of ``directory`` opened so that nothing in the directory changes.

        A ``mode=ro`` connection still creates ``-wal``/``-shm`` files when no writer
        has them open (measured: SQLite 3.40 leaves both behind), so a catalog whose
        writer is gone (no ``-wal`` file) is opened ``immutable`` instead. Open one per
        read: a series resumed later is seen at the next open.
        """
        path = Path(directory) / CATALOG_NAME
        if not path.exists():
            raise CatalogError(f"{Path(directory)}: no series catalog here")
        live = path.with_name(path.name + "-wal").exists()
        uri = path.resolve().as_uri() + "?mode=ro" + ("" if live else "&immutable=1")
        catalog = cls.__new__(cls)
        catalog.path = path
        catalog._held = []
        try:
            catalog.db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
            catalog.db.row_factory = sqlite3.Row
            catalog.db.execute("SELECT 1 FROM series LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise CatalogError(f"{path}: not a readable series catalog: {exc}") from None
        return catalog

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            while self._held:
                self._held.pop().release()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is durable, or none of it (rolled back)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (the runner calls this at each step's end)."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits for a reader

    # ------------------------------------------------------------------ schema
    def _tables(self) -> set[str]:
        rows = self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {r[0] for r in rows}

    def _schema(self, create: bool) -> None:
        (version,) = self.db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: catalog schema version {version} is newer than this labctl "
                f"understands ({SCHEMA_VERSION}); use the labctl that wrote it"
            )
        if version == SCHEMA_VERSION:
            return
        tables = self._tables()
        if not tables:
            if create:
                with self.atomic() as db:
                    for statement in _TABLES.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            raise CatalogError(f"{self.path} is damaged: it holds no tables (emptied?)")
        self._upgrade_from_0(tables)

    def _upgrade_from_0(self, tables: set[str]) -> None:
        """Version 0 → 1: constraints, UTC timestamps, anneal progress columns.

        SQLite cannot add CHECK constraints to a table, so each table is rebuilt
        and its rows copied, in one transaction (a failure leaves version 0 intact).
        """
        missing = {"series", "steps", "attempts", "events"} - tables
        if missing:
            raise CatalogError(f"{self.path} is damaged: tables {sorted(missing)} are missing")
        old = {
            name: [dict(r) for r in self.db.execute(f"SELECT * FROM {name}")]  # noqa: S608
            for name in ("series", "steps", "attempts", "events")
        }
        stamps = ("created", "started", "ended", "t")
        for rows in old.values():
            for row in rows:
                for key in stamps:
                    if key in row:
                        row[key] = _utc_from_local(row[key])
                if row.get("message") is None and "message" in row:
                    row["message"] = ""
        self.db.execute("PRAGMA foreign_keys=OFF")  # tables are dropped and rebuilt
        try:
            with self.atomic() as db:
                for name in ("events", "attempts", "steps", "series"):
                    db.execute(f"DROP TABLE {name}")
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        db.execute(statement)
                for name in ("series", "steps", "attempts", "events"):
                    for row in old[name]:
                        cols = ", ".join(row)
                        marks = ", ".join("?" for _ in row)
                        db.execute(
                            f"INSERT INTO {name} ({cols}) VALUES ({marks})", tuple(row.values())
                        )  # noqa: S608,E501
                # an old anneal attempt's progress was never recorded: unknown, not "none"
                db.execute(
                    "UPDATE attempts SET program_started = 1 WHERE run_file IS NOT NULL AND"
                    " step IN (SELECT idx FROM steps WHERE kind = 'anneal')"
                )
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def damage(self) -> str | None:
        """What is wrong with this catalog as the record of a series, or None."""
        missing = {"series", "steps", "attempts", "events"} - self._tables()
        if missing:
            return f"tables {', '.join(sorted(missing))} are missing"
        if self.series() is None:
            return "its series row is missing"
        if self.db.execute("SELECT count(*) FROM steps").fetchone()[0] == 0:
            return "it records no steps"
        return None

    # ------------------------------------------------------------------ series
    def initialise(self, plan, station: str, identity: dict | None = None) -> None:
        """Record a new series: the plan (text and digest), the station and pending steps."""
        with self.atomic() as db:
            db.execute(
                "INSERT INTO series (id, name, plan_path, plan_digest, plan_text, station,"
                " station_identity, created, state, message) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                (
                    plan.name,
                    plan.path,
                    plan.digest,
                    plan.text,
                    station,
                    json.dumps(identity, sort_keys=True) if identity is not None else None,
                    utc_now(),
                    SeriesState.PENDING,
                ),
            )
            for s in plan.steps:
                db.execute(
                    "INSERT INTO steps (idx, kind, temperature_c, slot, sample_id, params, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        s.index,
                        s.kind,
                        s.temperature_c,
                        s.slot,
                        s.sample_id,
                        json.dumps(s.params, sort_keys=True),
                        PENDING,
                    ),
                )

    def adopt_plan(self, plan, first_new: int) -> None:
        """A changed plan on resume: its digest and text, new parameters of steps not yet
        done, and its steps from ``first_new`` on added as pending."""
        with self.atomic() as db:
            db.execute(
                "UPDATE series SET plan_digest = ?, plan_text = ? WHERE id = 1",
                (plan.digest, plan.text),
            )
            for s in plan.steps:
                params = json.dumps(s.params, sort_keys=True)
                if s.index < first_new:
                    db.execute(
                        "UPDATE steps SET params = ? WHERE idx = ? AND state != ?",
                        (params, s.index, DONE),
                    )
                else:
                    db.execute(
                        "INSERT INTO steps (idx, kind, temperature_c, slot, sample_id, params,"
                        " state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (s.index, s.kind, s.temperature_c, s.slot, s.sample_id, params, PENDING),
                    )

    def series(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM series WHERE id = 1").fetchone()
        if row is None:
            return None
        d = dict(row)
        d["station_identity"] = json.loads(d.get("station_identity") or "null")
        return d

    def set_series_state(self, state: str, message: str = "") -> None:
        with self.atomic() as db:
            row = db.execute("SELECT state FROM series WHERE id = 1").fetchone()
            if row is None:
                raise CatalogError(f"{self.path}: damaged series catalog: no series row")
            new = check_transition(SeriesState, row["state"], state, f"{self.path}: series")
            db.execute("UPDATE series SET state = ?, message = ? WHERE id = 1", (new, message))

    # ------------------------------------------------------------------ steps
    @staticmethod
    def _step_dict(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["params"] = json.loads(d["params"] or "{}")
        d["results"] = json.loads(d["results"]) if d["results"] else None
        return d

    def steps(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM steps ORDER BY idx").fetchall()
        return [self._step_dict(row) for row in rows]

    def step(self, idx: int) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM steps WHERE idx = ?", (idx,)).fetchone()
        if row is None:
            raise CatalogError(f"{self.path}: no step {idx}")
        return self._step_dict(row)

    def attempts(self, idx: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM attempts ORDER BY step, attempt", ()
        if idx is not None:
            sql, args = "SELECT * FROM attempts WHERE step = ? ORDER BY attempt", (idx,)
        return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def _step_state(self, db, idx: int) -> sqlite3.Row:
        row = db.execute("SELECT state, attempts FROM steps WHERE idx = ?", (idx,)).fetchone()
        if row is None:
            raise CatalogError(f"{self.path}: no step {idx}")
        return row

    def start_step(self, idx: int, run_file: str) -> int:
        """Mark a step running with a new attempt writing ``run_file``; returns the attempt."""
        with self.atomic() as db:
            row = self._step_state(db, idx)
            check_transition(StepState, row["state"], RUNNING, f"{self.path}: step {idx}")
            attempt = row["attempts"] + 1
            now = utc_now()
            db.execute(
                "UPDATE steps SET state = ?, attempts = ?, started = ?, ended = NULL,"
                " run_file = ?, message = '' WHERE idx = ?",
                (RUNNING, attempt, now, run_file, idx),
            )
            db.execute(
                "INSERT INTO attempts (step, attempt, started, state, run_file)"
                " VALUES (?, ?, ?, ?, ?)",
                (idx, attempt, now, AttemptState.RUNNING, run_file),
            )
        return attempt

    def end_step(
        self,
        idx: int,
        state: str,
        *,
        results: dict | None = None,
        message: str = "",
        dwell_done_s: float | None = None,
    ) -> None:
        """Close a step's current attempt as ``state`` with its results (and, for an
        anneal, the dwell the film has had in this attempt's program)."""
        with self.atomic() as db:
            row = self._step_state(db, idx)
            new = check_transition(StepState, row["state"], state, f"{self.path}: step {idx}")
            now = utc_now()
            db.execute(
                "UPDATE steps SET state = ?, ended = ?, results = ?, message = ? WHERE idx = ?",
                (new, now, json.dumps(results) if results is not None else None, message, idx),
            )
            self._end_attempt(db, idx, row["attempts"], AttemptState(new.value), message, now)
            if dwell_done_s is not None:
                db.execute(
                    "UPDATE attempts SET dwell_done_s = max(coalesce(dwell_done_s, 0), ?)"
                    " WHERE step = ? AND attempt = ?",
                    (dwell_done_s, idx, row["attempts"]),
                )

    def _end_attempt(self, db, idx: int, attempt: int, state, message: str, now) -> None:
        current = db.execute(
            "SELECT state FROM attempts WHERE step = ? AND attempt = ?", (idx, attempt)
        ).fetchone()
        if current is None:
            return
        check_transition(
            AttemptState, current["state"], state, f"{self.path}: step {idx} attempt {attempt}"
        )
        db.execute(
            "UPDATE attempts SET state = ?, ended = ?, message = ? WHERE step = ? AND attempt = ?",
            (state, now, message, idx, attempt),
        )

    def interrupted(self, idx: int, message: str) -> None:
        """An attempt found 'running' at resume: the process died; its file is kept."""
        with self.atomic() as db:
            for row in db.execute(
                "SELECT attempt FROM attempts WHERE step = ? AND state = ?",
                (idx, AttemptState.RUNNING),
            ).fetchall():
                self._end_attempt(db, idx, row["attempt"], AttemptState.INTERRUPTED, message, None)

    def skip(self, idx: int, message: str) -> None:
        with self.atomic() as db:
            row = self._step_state(db, idx)
            check_transition(StepState, row["state"], SKIPPED, f"{self.path}: step {idx}")
            db.execute(
                "UPDATE steps SET state = ?, message = ?, ended = ? WHERE idx = ?",
                (SKIPPED, message, utc_now(), idx),
            )

    # ------------------------------------------------------------------ anneal progress
    def record_anneal_progress(
        self,
        idx: int,
        attempt: int,
        *,
        program_started: bool,
        dwell_done_s: float | None,
        cooling_reached: bool,
        program_attempt: int | None = None,
    ) -> None:
        """The furnace programmer's account of an attempt's program, as it runs.

        ``program_attempt`` is the attempt whose program this is (an attempt that
        attached to a program still running names the attempt that started it).
        Dwell and cooling never go backwards within one program.
        """
        with self.atomic() as db:
            db.execute(
                "UPDATE attempts SET program_started = max(program_started, ?),"
                " program_attempt = coalesce(?, program_attempt, attempt),"
                " dwell_done_s = max(coalesce(dwell_done_s, 0), coalesce(?, 0)),"
                " cooling_reached = max(cooling_reached, ?), progress_at = ?"
                " WHERE step = ? AND attempt = ?",
                (
                    int(program_started),
                    program_attempt,
                    dwell_done_s,
                    int(cooling_reached),
                    utc_now(),
                    idx,
                    attempt,
                ),
            )

    def anneal_history(self, idx: int) -> dict[str, Any]:
        """What the catalog knows of the heating a step's film has had, over all attempts.

        ``dwell_done_s``: the programmers' dwell, summed over distinct programs (an
        attempt that attached to a running program adds nothing of its own);
        ``cooling_reached``: some program reached its cooling segment;
        ``unknown``: attempts whose program started but whose progress is not
        recorded (a catalog from before progress was recorded, or a kill in between).
        """
        attempts = self.attempts(idx)
        started = [a for a in attempts if a["program_started"]]
        per_program: dict[int, float] = {}
        cooling = False
        for a in started:
            if a["progress_at"] is None:
                continue
            program = a["program_attempt"] or a["attempt"]
            per_program[program] = max(per_program.get(program, 0.0), a["dwell_done_s"] or 0.0)
            cooling = cooling or bool(a["cooling_reached"])
        # a program whose own attempt left no account, unless a later attempt attached to it
        unknown = [
            a["attempt"]
            for a in started
            if a["progress_at"] is None and a["attempt"] not in per_program
        ]
        return {
            "program_started": bool(started),
            "dwell_done_s": sum(per_program.values()),
            "cooling_reached": cooling,
            "unknown_attempts": unknown,
            "attempts": len(attempts),
            "last_program_attempt": max((a["attempt"] for a in started), default=None),
        }

    # ------------------------------------------------------------------ log
    def event(self, level: str, message: str, step: int | None = None) -> None:
        with self.atomic() as db:
            db.execute(
                "INSERT INTO events (t, level, step, message) VALUES (?, ?, ?, ?)",
                (utc_now(), level, step, message),
            )

    def events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM events ORDER BY rowid")]
