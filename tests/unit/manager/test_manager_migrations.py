"""The Manager's versioned schema migrations (backend/manager/persistence/migrations.py) on real SQLite files."""

from __future__ import annotations

import peewee
import pytest

from backend import migrations
from backend.manager.persistence import Persistence, open_sqlite
from backend.manager.persistence import migrations as manager_migrations
from backend.manager.persistence.models import Models
from backend.manager.persistence.store import IN_PROGRESS_SQL, RUNNABLE_SQL

STEPS = manager_migrations.STEPS


def describe(db: peewee.Database) -> dict:
    """Every table's columns and indexes (with their partial WHERE clauses), as SQLite has them."""
    out = {}
    for (table,) in db.execute_sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "AND name NOT IN ('schema_migrations', 'sqlite_sequence')").fetchall():
        cols = sorted((c[1], c[2].upper(), bool(c[3]), c[5]) for c in db.execute_sql(f'PRAGMA table_info("{table}")'))
        indexes = sorted((name, " ".join((sql or "").split()).split(" ON ", 1)[-1]) for name, sql in db.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,)).fetchall())
        out[table] = {"columns": cols, "indexes": indexes}
    return out


def test_every_step_gives_the_schema_of_the_models_and_the_stores_indexes(tmp_path):
    db = open_sqlite(tmp_path / "m.sqlite")
    assert [s.version for s in manager_migrations.migrate(db)] == [s.version for s in STEPS]
    assert manager_migrations.migrate(db) == [], "a second run has nothing to do"
    reference = open_sqlite(tmp_path / "reference.sqlite")
    with reference.connection_context():
        reference.create_tables(Models(reference).all)
        reference.execute_sql("CREATE INDEX task_runnable_order ON task (job_priority DESC, priority DESC, seq ASC) "
                              f"WHERE status IN {RUNNABLE_SQL}")
        reference.execute_sql("CREATE INDEX task_active_by_worker ON task (worker, updated) WHERE status = 'active'")
        reference.execute_sql("CREATE INDEX task_in_progress_by_worker ON task (worker, updated) "
                              f"WHERE status IN {IN_PROGRESS_SQL}")
        want = describe(reference)
    with db.connection_context():
        got = describe(db)
    assert sorted(got) == sorted(want), "the same tables"
    for table in want:
        assert got[table] == want[table], f"table {table}: a model changed without a migration step"


def _first_release_database(path):
    """What the first release made (its SQL, no migrations table), with a worker, a task and a queued update."""
    db = open_sqlite(path)
    with db.connection_context():
        for sql in manager_migrations._RELEASE_1:
            db.execute_sql(sql)
        db.execute_sql("INSERT INTO worker (id, secret_hash, nickname, platform, supported_task_types, tags, status, "
                       "lazy_status_request, last_seen, last_activity, software, address, created, sleep_active, "
                       "sleep_days, sleep_start, sleep_end, last_output_produced) VALUES ('w1', 'sha256$x$y', "
                       "'node1', 'linux', '[\"sleep\"]', '[]', 'awake', 0, 1, '', '', '', 1, 0, '', '', '', 0)")
        db.execute_sql("INSERT INTO task (id, seq, job, name, status, task_type, priority, job_priority, job_type, "
                       "manager, project, user, commands, parents, failed_by_workers, server_updated, local, "
                       "activity, current_command_idx, task_progress_percentage, command_progress_percentage, "
                       "updated) VALUES ('t1', 1, 'j1', 'sleep-1', 'claimed-by-manager', 'sleep', 50, 50, 'sleep', "
                       "'m', 'p', 'u', '[]', '[]', '[]', '2025-01-01', 0, '', 0, 0, 0, 1)")
        db.execute_sql("INSERT INTO upstream_item (kind, key, payload, created, attempts) "
                       "VALUES ('task-update', 't1', '{\"_id\": \"u1\"}', 1, 0)")
    return db


def test_a_first_release_database_is_adopted_upgraded_and_keeps_its_rows(tmp_path):
    _first_release_database(tmp_path / "m.sqlite").close()
    db = open_sqlite(tmp_path / "m.sqlite")
    persistence = Persistence(db)  # what a Manager does when it opens its database
    status = manager_migrations.status(db)
    assert (status.current, status.pending) == (len(STEPS), [])
    with db.connection_context():
        names = dict(db.execute_sql("SELECT version, name FROM schema_migrations").fetchall())
    assert names[1].endswith("(adopted)") and not names[2].endswith("(adopted)")
    persistence.ensure_connected()
    assert persistence.workers.get("w1").nickname == "node1"
    assert persistence.tasks.get("t1").status == "claimed-by-manager"
    assert persistence.tasks.get("t1").needs == "light", "a held sleep task needs what its type needs"
    assert persistence.upstream.has_task_update("t1")
    assert persistence.tasks.has_runnable(), "the respelled runnable index serves the scheduler's query"


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    db = open_sqlite(tmp_path / "m.sqlite")
    newer = [*STEPS, migrations.Step(len(STEPS) + 1, "from the future", lambda schema: None)]
    migrations.migrate(db, newer, "test")
    with pytest.raises(migrations.MigrationError, match="newer than this flamenco-manager knows"):
        manager_migrations.migrate(db)


def test_the_dispatch_paths_lookups_by_worker_use_the_partial_indexes(tmp_path):
    """What a worker runs is looked up through the few tasks in progress, not through every
    task it ever ran (with the plain worker index, dispatch slowed as the farm's history grew)."""
    from backend.manager.persistence import tasks, workers

    db = open_sqlite(tmp_path / "m.sqlite")
    manager_migrations.migrate(db)
    with db.connection_context():
        plans = {
            name: " | ".join(row[3] for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            for name, sql, params in [
                ("release", workers._RELEASE_SQL, ("t1", "w1", "t1")),
                ("own active", tasks._OWN_ACTIVE_SQL.format(columns="id"), ("w1",)),
                ("all own active", tasks._ALL_OWN_ACTIVE_SQL.format(columns="id"), ("w1",)),
            ]}
    assert "USING INDEX task_in_progress_by_worker (worker=?)" in plans["release"], plans["release"]
    assert "TEMP B-TREE" not in plans["release"], plans["release"]
    assert "USING INDEX task_active_by_worker (worker=?)" in plans["own active"], plans["own active"]
    assert "USING INDEX task_active_by_worker (worker=?)" in plans["all own active"], plans["all own active"]
