"""The Server's versioned schema migrations, on SQLite and PostgreSQL.

* every step, run from an empty database, gives exactly the schema models.py describes;
* each step on a database at the version before it, with rows in it;
* a database made by the first release (a fixture that its own code made, see
  data/release1/make_fixtures.py) is upgraded, and every job, task and log is found;
* a database made between the first release and versioned migrations is adopted;
* a database newer than the code is refused, and two processes migrating at once apply each step once.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import peewee
import pytest

from backend import migrations
from backend.db import is_sqlite
from backend.server import admin
from backend.server import migrations as server_migrations
from backend.server import models
from backend.server.app import make_app
from backend.server.cli import main as server_cli
from tests.integration.server.server_it_helpers import Client, sleep_job, web_sign_in
from tests.unit.server.server_testdb import DB_KINDS, make_config, server_database
from shared.serving import ServiceThread

RELEASE1 = Path(__file__).parent / "data" / "release1"
STEPS = server_migrations.STEPS


@pytest.fixture(params=DB_KINDS)
def kind(request):
    return request.param


@pytest.fixture
def db(kind, tmp_path, request):
    with server_database(kind, tmp_path, request) as database:
        yield database


def _schema_name(db) -> str | None:
    return None if is_sqlite(db) else db.execute_sql("SELECT current_schema()").fetchone()[0]


def describe(db: peewee.Database) -> dict:
    """Tables -> columns (type, null, primary key), indexes (columns, unique) and foreign keys."""
    schema = _schema_name(db)
    out = {}
    with db.connection_context():
        tables = [t for t in db.get_tables(schema=schema) if t != migrations.TABLE]
        for table in tables:
            out[table] = {
                "columns": {c.name: (c.data_type.lower(), c.null, c.primary_key)
                            for c in db.get_columns(table, schema)},
                "indexes": sorted((tuple(i.columns), i.unique) for i in db.get_indexes(table, schema)),
                "foreign_keys": sorted((f.column, f.dest_table, f.dest_column)
                                       for f in db.get_foreign_keys(table, schema)),
            }
    return out


def test_every_step_from_an_empty_database_gives_the_schema_of_the_models(db, kind, tmp_path, request):
    applied = server_migrations.migrate(db)
    assert [s.version for s in applied] == [s.version for s in STEPS]
    assert server_migrations.migrate(db) == [], "a second run has nothing to do"
    with server_database(kind, tmp_path / "models", request) as reference:
        (tmp_path / "models").mkdir(exist_ok=True)
        with reference.connection_context(), reference.bind_ctx(models.ALL_MODELS):
            reference.create_tables(models.ALL_MODELS)
        want = describe(reference)
    got = describe(db)
    assert sorted(got) == sorted(want), "the same tables"
    for table in want:
        assert got[table] == want[table], f"table {table}: a model changed without a migration step"
    status = server_migrations.status(db)
    assert (status.current, status.latest, status.pending, status.unknown) == (len(STEPS), len(STEPS), [], [])


def _migrate_to(db, version: int) -> None:
    migrations.migrate(db, STEPS[:version], "test")


def _insert(db, sql: str, *params) -> None:
    if not is_sqlite(db):
        sql = sql.replace("?", "%s")
    db.execute_sql(sql, params)


def _seed_first_release(db) -> None:
    """A user, a project, a job and its task, in the first release's columns (but those dropped since)."""
    t = "2025-01-02 03:04:05"
    _insert(db, "INSERT INTO \"user\" (id, name, role, created) VALUES ('u1', 'ann', 'artist', ?)", t)
    if "last_used" in migrations.Schema(db).columns("api_token"):
        _insert(db, "INSERT INTO api_token (id, user_id, secret_hash, label, created, last_used) "
                    "VALUES ('t1', 'u1', 'h', 'cli', ?, ?)", t, t)
    else:
        _insert(db, "INSERT INTO api_token (id, user_id, secret_hash, label, created) VALUES ('t1', 'u1', 'h', "
                    "'cli', ?)", t)
    _insert(db, "INSERT INTO project (id, name, description, created) VALUES ('p1', 'film', '', ?)", t)
    _insert(db, "INSERT INTO job (id, name, job_type, status, status_reason, priority, settings, metadata, "
                "project_id, user_id, created, updated, start_paused, files_mode, blocked, task_counts, tasks_total, "
                "progress_points) VALUES ('j1', 'old', 'sleep', 'queued', '', 50, '{}', '{}', 'p1', 'u1', ?, ?, "
                "?, 'shared', ?, '{\"queued\": 1}', 1, 0)", t, t, False, False)
    columns = ("id, job_id, name, task_type, status, priority, job_priority, commands, parents, failed_by_workers, "
               "activity, log_tail, progress, current_command_idx, command_progress, created, updated")
    values = "'j1-000000', 'j1', 'sleep-1', 'sleep', 'queued', 50, 50, '[]', '[]', '[]', '', 'a tail', 0, 0, 0, ?, ?"
    if "needs" in migrations.Schema(db).columns("task"):  # added since, with no database default
        columns, values = columns + ", needs", values + ", ''"
    _insert(db, f"INSERT INTO task ({columns}) VALUES ({values})", t, t)


def _step2(db, schema):
    assert {"started", "finished"} <= schema.columns("task")
    assert db.execute_sql("SELECT log_tail, started, finished FROM task WHERE id = 'j1-000000'").fetchone() == \
        ("a tail", None, None)


def _step3(db, schema):
    assert schema.has_table("web_session")
    _insert(db, "INSERT INTO web_session (id, user_id, secret_hash, created, expires) "
                "VALUES ('s1', 'u1', 'h', '2025-01-02 03:04:05', '2025-01-03 03:04:05')")


def _step4(db, schema):
    (last,) = db.execute_sql("SELECT last FROM server_clock WHERE id = 1").fetchone()
    assert str(last).startswith("2000-01-01")


def _step5(db, schema):
    assert "last_used" not in schema.columns("api_token")
    (secret,) = db.execute_sql("SELECT secret_hash FROM api_token WHERE id = 't1'").fetchone()
    assert secret == "h", "the tokens themselves stay"


def _step6(db, schema):
    assert "expires" in schema.columns("api_token") and {"quota_bytes", "allow_scripts"} <= schema.columns("project")
    assert db.execute_sql("SELECT expires FROM api_token WHERE id = 't1'").fetchone() == (None,), "tokens live on"
    assert db.execute_sql("SELECT quota_bytes, allow_scripts FROM project WHERE id = 'p1'").fetchone() == \
        (None, None), "the Server's default quota; no scripts"
    _insert(db, "INSERT INTO blob_grant (sha256, user_id, created) VALUES ('ab', 'u1', '2025-01-02 03:04:05')")


def _step7(db, schema):
    assert "io" in schema.columns("task")
    assert db.execute_sql("SELECT log_tail, io FROM task WHERE id = 'j1-000000'").fetchone() == ("a tail", None), \
        "tasks made before upload mode declare nothing"


def _step8(db, schema):
    assert all(schema.has_table(t) for t in ("task_run", "worker_action", "job_archive"))
    assert db.execute_sql("SELECT canceled_by FROM task WHERE id = 'j1-000000'").fetchone() == (None,)
    assert "role" in schema.columns("project_member") and "queue_length" in schema.columns("manager")
    _insert(db, "INSERT INTO task_run (task, job_id, worker, started, status, activity, log_tail) "
                "VALUES ('j1-000000', 'j1', 'w1', '2025-01-02 03:04:05', 'active', '', '')")


def _step9(db, schema):
    assert "needs" in schema.columns("task") and "running_tasks" in schema.columns("worker_record")
    assert db.execute_sql("SELECT needs FROM task WHERE id = 'j1-000000'").fetchone() == ("",), \
        "a task from before needs what its type needs"


def _step10(db, schema):
    assert schema.has_table("archived_run")
    _insert(db, "INSERT INTO archived_run (job, job_name, project, project_name, user_name, manager_name, task, "
                "task_name, task_type, worker, started, finished, status) VALUES ('j0', 'old', 'p1', 'film', 'ann', "
                "NULL, 'j0-000000', 'sleep-1', 'sleep', 'w1', '2025-01-02 03:04:05', '2025-01-02 04:04:05', "
                "'completed')")
    assert db.execute_sql("SELECT job_id FROM task WHERE id = 'j1-000000'").fetchone() == ("j1",), "tasks stay"


def _step11(db, schema):
    indexes = {name for (name,) in db.execute_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'task'" if schema.sqlite else
        "SELECT indexname FROM pg_indexes WHERE tablename = 'task' AND schemaname = current_schema()")}
    assert "task_job_id_status_updated_id" in indexes and "task_job_id_status" not in indexes
    assert schema.has_table("manager_news_item")
    assert db.execute_sql("SELECT status FROM task WHERE id = 'j1-000000'").fetchone() == ("queued",)


def _step12(db, schema):
    assert "tasks_to_store" in schema.columns("job")
    assert db.execute_sql("SELECT tasks_to_store FROM job WHERE id = 'j1'").fetchone() == (0,), \
        "a job from before has all its tasks stored"
    assert db.execute_sql("SELECT count(*) FROM task WHERE job_id = 'j1'").fetchone()[0] > 0, "its tasks stay"


STEP_CHECKS = {2: _step2, 3: _step3, 4: _step4, 5: _step5, 6: _step6, 7: _step7, 8: _step8, 9: _step9, 10: _step10,
               11: _step11, 12: _step12}


def test_the_step_checks_cover_every_step_after_the_first():
    assert sorted(STEP_CHECKS) == [s.version for s in STEPS[1:]]


@pytest.mark.parametrize("version", sorted(STEP_CHECKS))
def test_each_step_on_a_database_at_the_version_before_it(db, version):
    _migrate_to(db, version - 1)
    with db.connection_context():
        _seed_first_release(db)
    _migrate_to(db, version)
    assert migrations.status(db, STEPS[:version]).current == version
    with db.connection_context():
        STEP_CHECKS[version](db, migrations.Schema(db))
        (name,) = db.execute_sql(f"SELECT name FROM {migrations.TABLE} WHERE version = {version}").fetchone()
    assert name == STEPS[version - 1].name


def _load_release1(db, kind: str, data_dir: Path) -> dict:
    """The first release's database and files, as its own code left them."""
    fixture = RELEASE1 / kind
    dump = (fixture / "dump.sql").read_text()
    with db.connection_context():
        if is_sqlite(db):
            db.connection().executescript(dump)
        else:
            with db.atomic():
                db.connection().cursor().execute(dump)
    shutil.copytree(fixture / "files", data_dir / "files")
    return json.loads((fixture / "expected.json").read_text())


def test_a_first_release_database_is_upgraded_and_keeps_every_job_task_and_log(db, kind, tmp_path):
    cfg = make_config(tmp_path)
    expected = _load_release1(db, kind, cfg.data_dir)
    assert server_migrations.status(db).current == 0, "the first release kept no migrations table"
    app = make_app(cfg, db)
    status = server_migrations.status(db)
    assert (status.current, status.pending) == (len(STEPS), [])
    with db.connection_context():
        (adopted,) = db.execute_sql(f"SELECT name FROM {migrations.TABLE} WHERE version = 1").fetchone()
        assert adopted == "first release (adopted)"
        _, token = admin.new_token(db, "boss")
        _, mtoken = admin.reset_manager_token(db, "m1")
        manager_id = admin.find_manager("m1").id
    with ServiceThread(app, threads=4) as service:
        boss = Client(service.url, token)
        listed = {j["id"] for j in boss.get("/api/jobs").json()["jobs"]}
        assert listed == set(expected["jobs"])
        for jid, want in expected["jobs"].items():
            job = boss.get(f"/api/jobs/{jid}").json()
            assert (job["name"], job["status"], job["priority"]) == (want["name"], want["status"], want["priority"])
            tasks = {t["id"] if "id" in t else t["_id"]: t for t in boss.get(f"/api/jobs/{jid}/tasks").json()["tasks"]}
            assert set(tasks) == set(want["tasks"])
            for tid, task in want["tasks"].items():
                doc = boss.get(f"/api/tasks/{tid}").json()
                assert (doc["status"], doc.get("log_tail", "")) == (task["status"], task["log_tail"])
                assert doc["started"] is None and doc["finished"] is None, "run times came after this run"
            log = [{k: e[k] for k in ("who", "what", "reason")} for e in boss.get(f"/api/jobs/{jid}/log").json()["entries"]]
            assert log == want["log"]
        for tid, text in expected["task_logs"].items():
            r = boss.get(f"/api/tasks/{tid}/log")
            assert r.status_code == 200 and r.text == text

        # The upgraded farm works on: the artist signs in on the web pages (a later table), and a
        # new job goes to the old Manager, whose task run times are kept (later columns).
        ann = Client(service.url)
        r = web_sign_in(service.url, "ann", "ann-secret-pw", ann.session)
        assert r.status_code == 303 and ann.session.cookies.get("flamenco_session"), r.text
        assert ann.get("/api/me").json()["name"] == "ann"
        r = ann.post("/api/auth/login", json={"username": "ann", "password": "ann-secret-pw"})
        assert r.status_code == 200, r.text
        ann = Client(service.url, r.json()["token"])
        job = ann.post("/api/jobs", json=sleep_job()).json()
        manager = Client(service.url, mtoken)
        graph = manager.get(f"/api/managers/{manager_id}/depsgraph").json()["depsgraph"]
        new = sorted(t["_id"] for t in graph if t["job"] == job["id"])
        assert len(new) == 4
        r = manager.post(f"/api/managers/{manager_id}/task-update-batch", json={"updates": [
            {"_id": f"n{i}", "task_id": tid, "received_on_manager": "2030-01-01T00:00:00Z", "worker": "w1",
             "task_status": status} for i, (tid, status) in enumerate([(new[0], "active"), (new[0], "completed")])]})
        assert r.status_code == 200, r.text
        done = boss.get(f"/api/tasks/{new[0]}").json()
        assert done["status"] == "completed" and done["started"] and done["finished"]


def test_a_database_made_before_versioned_migrations_is_adopted(db):
    """Servers between the first release and versioned migrations (up to commit 4ca9913) created their
    models' tables and added missing columns: the schema of steps 1-3, with no migrations table."""
    with db.connection_context(), db.atomic():
        for step in STEPS[:3]:
            step.apply(migrations.Schema(db))
        _seed_first_release(db)
    applied = server_migrations.migrate(db)
    assert [s.name for s in applied] == [s.name for s in STEPS[1:]]
    with db.connection_context():
        STEP_CHECKS[2](db, migrations.Schema(db))
        STEP_CHECKS[4](db, migrations.Schema(db))


def test_a_database_newer_than_the_code_is_refused_and_left_alone(db, tmp_path, capsys):
    server_migrations.migrate(db)
    with db.connection_context():
        _insert(db, f"INSERT INTO {migrations.TABLE} (version, name, applied) VALUES (99, 'future', "
                    f"'2031-01-01 00:00:00')")
    with pytest.raises(migrations.MigrationError, match="schema version 99, newer than this flamenco-server "
                                                        "knows"):
        server_migrations.migrate(db)
    if is_sqlite(db):
        assert server_cli(["migrate", "--data-dir", str(tmp_path)]) == 2
        assert "newer than this flamenco-server knows" in capsys.readouterr().err


def test_two_processes_migrating_at_once_apply_each_step_once(kind, tmp_path, request):
    """Two Servers started together on one empty database: separate connections, one lock."""
    with server_database(kind, tmp_path, request) as first:
        second = type(first)(first.database, **first.connect_params)
        if is_sqlite(first):
            second = type(first)(first.database, pragmas=dict(first._pragmas), **first.connect_params)
        results, errors = [], []

        def run(database):
            try:
                results.append(len(migrations.migrate(database, STEPS, "test")))
            except Exception as ex:  # noqa: BLE001 - reported below
                errors.append(ex)

        threads = [threading.Thread(target=run, args=(d,)) for d in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        second.close()
        assert errors == []
        assert sum(results) == len(STEPS), results
        with first.connection_context():
            rows = first.execute_sql(f"SELECT version FROM {migrations.TABLE} ORDER BY version").fetchall()
        assert [v for (v,) in rows] == [s.version for s in STEPS]


def test_the_cli_shows_and_applies_migrations(tmp_path, capsys):
    data = str(tmp_path / "d")
    assert server_cli(["migrate", "--status", "--data-dir", data, "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert (before["current"], before["latest"]) == (0, len(STEPS))
    assert [p["version"] for p in before["pending"]] == [s.version for s in STEPS]
    assert server_cli(["migrate", "--data-dir", data]) == 0
    assert f"schema version {len(STEPS)}" in capsys.readouterr().out
    assert server_cli(["migrate", "--status", "--data-dir", data, "--json"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert (after["current"], after["pending"]) == (len(STEPS), [])
