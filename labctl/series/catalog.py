"""The series catalog: every step's state in SQLite, one transaction per change.

``catalog.sqlite`` in the output directory is in WAL mode, so ``labctl series
status`` in another process reads it while the runner writes. A step's row
says what it is (kind, temperature, slot, sample, parameters) and how it
stands (pending → running → done | failed | skipped, attempts, start/end, run
file, results); every attempt keeps its own row, so a partial file from an
interrupted measurement stays on record beside the redo.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from labctl.errors import LabctlError

CATALOG_NAME = "catalog.sqlite"
PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT, plan_path TEXT, plan_digest TEXT, plan_text TEXT, station TEXT,
    created TEXT, state TEXT, message TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    idx INTEGER PRIMARY KEY, kind TEXT, temperature_c REAL, slot INTEGER, sample_id TEXT,
    params TEXT, state TEXT, attempts INTEGER DEFAULT 0, started TEXT, ended TEXT,
    run_file TEXT, results TEXT, message TEXT
);
CREATE TABLE IF NOT EXISTS attempts (
    step INTEGER, attempt INTEGER, started TEXT, ended TEXT, state TEXT, run_file TEXT,
    message TEXT, PRIMARY KEY (step, attempt)
);
CREATE TABLE IF NOT EXISTS events (t TEXT, level TEXT, step INTEGER, message TEXT);
"""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class Catalog:
    """The SQLite record of one series directory."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise LabctlError(f"{self.path}: no series catalog here")
        try:
            self.db = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            if create:
                self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise LabctlError(f"{self.path}: not a readable series catalog: {exc}") from None

    @classmethod
    def in_directory(cls, directory: str | Path, *, create: bool = False) -> Catalog:
        return cls(Path(directory) / CATALOG_NAME, create=create)

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
            raise LabctlError(f"{Path(directory)}: no series catalog here")
        live = path.with_name(path.name + "-wal").exists()
        uri = path.resolve().as_uri() + "?mode=ro" + ("" if live else "&immutable=1")
        catalog = cls.__new__(cls)
        catalog.path = path
        try:
            catalog.db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
            catalog.db.row_factory = sqlite3.Row
            catalog.db.execute("SELECT 1 FROM series LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise LabctlError(f"{path}: not a readable series catalog: {exc}") from None
        return catalog

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self, sql: str, args: tuple = ()) -> None:
        """One statement, one transaction (durable before the next instrument command)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(sql, args)
            self.db.execute("COMMIT")

    # ------------------------------------------------------------------ series
    def initialise(self, plan, station: str) -> None:
        """Record a new series: the plan (text and digest) and its pending steps."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO series VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                (plan.name, plan.path, plan.digest, plan.text, station, _now(), PENDING, ""),
            )
            for s in plan.steps:
                self.db.execute(
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
            self.db.execute("COMMIT")

    def adopt_plan(self, plan, first_new: int) -> None:
        """A changed plan on resume: its digest and text, new parameters of steps not yet
        done, and its steps from ``first_new`` on added as pending."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE series SET plan_digest = ?, plan_text = ? WHERE id = 1",
                (plan.digest, plan.text),
            )
            for s in plan.steps:
                params = json.dumps(s.params, sort_keys=True)
                if s.index < first_new:
                    self.db.execute(
                        "UPDATE steps SET params = ? WHERE idx = ? AND state != ?",
                        (params, s.index, DONE),
                    )
                else:
                    self.db.execute(
                        "INSERT INTO steps (idx, kind, temperature_c, slot, sample_id, params,"
                        " state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (s.index, s.kind, s.temperature_c, s.slot, s.sample_id, params, PENDING),
                    )
            self.db.execute("COMMIT")

    def series(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM series WHERE id = 1").fetchone()
        return dict(row) if row else None

    def set_series_state(self, state: str, message: str = "") -> None:
        self._tx("UPDATE series SET state = ?, message = ? WHERE id = 1", (state, message))

    # ------------------------------------------------------------------ steps
    def steps(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM steps ORDER BY idx").fetchall()
        out = []
        for row in rows:
            d = dict(row)
            d["params"] = json.loads(d["params"] or "{}")
            d["results"] = json.loads(d["results"]) if d["results"] else None
            out.append(d)
        return out

    def step(self, idx: int) -> dict[str, Any]:
        for s in self.steps():
            if s["idx"] == idx:
                return s
        raise LabctlError(f"{self.path}: no step {idx}")

    def attempts(self, idx: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM attempts ORDER BY step, attempt", ()
        if idx is not None:
            sql, args = "SELECT * FROM attempts WHERE step = ? ORDER BY attempt", (idx,)
        return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def start_step(self, idx: int, run_file: str) -> int:
        """Mark a step running with a new attempt writing ``run_file``; returns the attempt."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (attempts,) = self.db.execute(
                "SELECT attempts FROM steps WHERE idx = ?", (idx,)
            ).fetchone()
            attempt = attempts + 1
            now = _now()
            self.db.execute(
                "UPDATE steps SET state = ?, attempts = ?, started = ?, ended = NULL,"
                " run_file = ?, message = '' WHERE idx = ?",
                (RUNNING, attempt, now, run_file, idx),
            )
            self.db.execute(
                "INSERT INTO attempts VALUES (?, ?, ?, NULL, ?, ?, '')",
                (idx, attempt, now, RUNNING, run_file),
            )
            self.db.execute("COMMIT")
        return attempt

    def end_step(
        self, idx: int, state: str, *, results: dict | None = None, message: str = ""
    ) -> None:
        """Close a step's current attempt as ``state`` with its results."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            now = _now()
            self.db.execute(
                "UPDATE steps SET state = ?, ended = ?, results = ?, message = ? WHERE idx = ?",
                (state, now, json.dumps(results) if results is not None else None, message, idx),
            )
            self.db.execute(
                "UPDATE attempts SET state = ?, ended = ?, message = ? WHERE step = ? AND"
                " attempt = (SELECT attempts FROM steps WHERE idx = ?)",
                (state, now, message, idx, idx),
            )
            self.db.execute("COMMIT")

    def interrupted(self, idx: int, message: str) -> None:
        """An attempt found 'running' at resume: the process died; its file is kept."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE attempts SET state = 'interrupted', message = ? WHERE step = ? AND"
                " state = ?",
                (message, idx, RUNNING),
            )
            self.db.execute("COMMIT")

    def skip(self, idx: int, message: str) -> None:
        self._tx(
            "UPDATE steps SET state = ?, message = ?, ended = ? WHERE idx = ?",
            (SKIPPED, message, _now(), idx),
        )

    # ------------------------------------------------------------------ log
    def event(self, level: str, message: str, step: int | None = None) -> None:
        self._tx("INSERT INTO events VALUES (?, ?, ?, ?)", (_now(), level, step, message))

    def events(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM events ORDER BY rowid")]
