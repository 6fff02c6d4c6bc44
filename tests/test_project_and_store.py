"""Project directories and the store, on SQLite and on a throw-away PostgreSQL 15 cluster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from curate import init_project, open_project, project_status
from curate.errors import ConfigError, ProjectError, SchemaError
from curate.store import migrations
from curate.store.engine import open_store
from curate.store.schema import SCHEMA_VERSION, AuditEntry, Meta


def test_init_creates_the_layout(cli, tmp_path):
    code, _out, err = cli("init", tmp_path / "p")
    assert code == 0, err
    assert {p.name for p in (tmp_path / "p").iterdir()} >= {"cache", "curate.db", "curate.toml", "exports",
                                                            "instructions.md", "models", "rounds"}
    code, _, err = cli("init", tmp_path / "p")
    assert code == 1 and "already holds a curate project" in err


def test_open_outside_a_project_is_a_clear_error(cli, tmp_path):
    code, _, err = cli("status", "--project", tmp_path)
    assert code == 1 and "is not a curate project" in err and "curate init" in err


def test_config_is_strict(tmp_path):
    init_project(tmp_path / "p").close()
    toml = tmp_path / "p" / "curate.toml"
    toml.write_text(toml.read_text().replace("[database]", "[database]\nurll = 'x'"))
    with pytest.raises(ConfigError, match=r"unknown key 'urll'.*did you mean 'url'"):
        open_project(tmp_path / "p")
    toml.write_text("[project]\nname = 3\n")
    with pytest.raises(ConfigError, match="'name' must be text"):
        open_project(tmp_path / "p")
    toml.write_text("[project]\nname = 'p'\n[learner]\nfeatures = 'pixels'\n")
    with pytest.raises(ConfigError,
                       match=r"features must be one of embedding, lm, embedding\+length, lm\+length, not 'pixels'"):
        open_project(tmp_path / "p")


def test_sqlite_is_durable_by_configuration(sqlite_project):
    with sqlite_project.store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_audit_log_is_append_only(project):
    with project.store.read() as conn:
        entries = conn.execute(select(AuditEntry.action, AuditEntry.schema_version)).all()
    assert entries == [("project.init", SCHEMA_VERSION)]
    with pytest.raises(DBAPIError, match="append-only"), project.store.write() as conn:
        conn.execute(update(AuditEntry).values(action="forged"))
    with pytest.raises(DBAPIError, match="append-only"), project.store.write() as conn:
        conn.execute(AuditEntry.__table__.delete())
    if project.store.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), project.store.write() as conn:
            conn.execute(text("TRUNCATE audit_log"))


def test_newer_schema_is_refused(project):
    with project.store.write() as conn:
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="99"))
    with pytest.raises(SchemaError, match=r"newer curate .schema 99.*upgrade curate-toolkit"):
        open_project(project.root)


def test_schema_6_pairs_get_empty_metadata_and_show_their_records(project, tmp_path):
    """Schema 7 added each pair's own metadata: pairs ingested before have none of their own and show their
    record's."""
    from curate.ingest import ingest_files
    from curate.store import pool

    rows = [{"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away.", "subset": "greetings"}]
    (tmp_path / "prefs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest_files(project, [tmp_path / "prefs.jsonl"])
    with project.store.write() as conn:
        conn.execute(text("ALTER TABLE pairs DROP COLUMN meta"))
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="6"))
    with open_project(project.root) as reopened, reopened.store.read() as conn:
        assert reopened.store.schema_version(conn) == SCHEMA_VERSION
        assert conn.execute(text("SELECT meta FROM pairs")).scalars().all() in (["{}"], [{}])
        assert list(pool.pair_meta(conn).values()) == [{"subset": "greetings"}]


def test_schema_7_transcript_prompts_get_their_turns_and_keep_their_ids(project, tmp_path):
    """Schema 8 reads the turns of hh-rlhf style prompts ingested as plain text, as ingest now does; other prompts
    stay plain, no id changes, and ingesting the same file again adds nothing."""
    from sqlalchemy import select

    from curate.ingest import ingest_files
    from curate.rendering import transcript_turns
    from curate.store.schema import Record

    rows = [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A colour?\n\nAssistant: Blue.",
             "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: A colour?\n\nAssistant: No."},
            {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "Go away."}]
    for n, row in enumerate(rows):
        (tmp_path / f"{n}.jsonl").write_text(json.dumps(row) + "\n")
    ingest_files(project, [tmp_path / "0.jsonl", tmp_path / "1.jsonl"])
    with project.store.read() as conn:
        stored = sorted(conn.execute(select(Record.id, Record.prompt, Record.messages)).all())
    assert [m for _, _, m in stored if m] == [transcript_turns(stored_prompt) for _, stored_prompt, m in stored if m]
    assert sum(m is None for _, _, m in stored) == 1 and len(stored) == 2
    with project.store.write() as conn:
        conn.execute(update(Record).values(messages=None))
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="7"))
    with open_project(project.root) as reopened:
        with reopened.store.read() as conn:
            assert sorted(conn.execute(select(Record.id, Record.prompt, Record.messages)).all()) == stored
        assert sum(f.added for f in ingest_files(reopened, [tmp_path / "0.jsonl", tmp_path / "1.jsonl"]).files) == 0


def test_schema_1_project_is_upgraded_to_the_current_schema(project):
    """The real path from the first release: schema 2 added cluster and near-duplicate tables, 3 scores,
    4 the annotation app's tables, 5 generation runs (and the run of each generated completion), 6 each
    account's status and session generation, 7 each pair's metadata (a pair ingested before has none), 8 the
    turns of hh-rlhf style transcript prompts."""
    from curate.annotate.users import add_user, get_user

    app_tables = ("submissions", "assignments", "flags", "instruction_versions")
    add_user(project.store, "alice", role="lead", password="alice-password")
    with project.store.write() as conn:
        conn.execute(text("ALTER TABLE pairs DROP COLUMN meta"))
        for column in ("status", "session_generation"):
            conn.execute(text(f"ALTER TABLE annotators DROP COLUMN {column}"))
        if conn.dialect.name == "sqlite":  # SQLite cannot drop a foreign-key column: rebuild the table without it
            columns = ", ".join(c["name"] for c in inspect(conn).get_columns("completions")
                                if c["name"] != "generation_id")
            conn.execute(text(f"CREATE TABLE completions_v4 AS SELECT {columns} FROM completions"))
            conn.execute(text("DROP TABLE completions"))
            conn.execute(text("ALTER TABLE completions_v4 RENAME TO completions"))
        else:
            conn.execute(text("ALTER TABLE completions DROP COLUMN generation_id"))
        for name in ("cluster_assignments", "cluster_runs", "near_duplicates", "scores", "score_runs", *app_tables,
                     "generation_prompts", "generation_runs"):
            conn.execute(text(f"DROP TABLE {name}"))
        conn.execute(update(Meta).where(Meta.key == "schema_version").values(value="1"))
    with open_project(project.root) as reopened, reopened.store.read() as conn:
        assert reopened.store.schema_version(conn) == SCHEMA_VERSION == 8
        for name in ("cluster_runs", "cluster_assignments", "near_duplicates", "score_runs", "scores", *app_tables,
                     "generation_runs", "generation_prompts"):
            assert inspect(conn).has_table(name)
        assert "generation_id" in {c["name"] for c in inspect(conn).get_columns("completions")}
        assert "ix_completions_generation_id" in {i["name"] for i in inspect(conn).get_indexes("completions")}
        assert ("schema.upgrade", {"from": 1, "to": 8}) in conn.execute(
            select(AuditEntry.action, AuditEntry.details)).all()
        assert {"status", "session_generation"} <= {c["name"] for c in inspect(conn).get_columns("annotators")}
        assert "meta" in {c["name"] for c in inspect(conn).get_columns("pairs")}
    with open_project(project.root) as reopened:  # the account made before the upgrade is active, generation 0
        assert get_user(reopened.store, "alice", generation=0).role == "lead"


def test_a_future_upgrade_step_runs_in_one_transaction(project, monkeypatch):
    def add_column(conn):
        conn.execute(text("ALTER TABLE records ADD COLUMN language VARCHAR(16)"))

    monkeypatch.setitem(migrations.MIGRATIONS, SCHEMA_VERSION, add_column)
    monkeypatch.setattr("curate.store.engine.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    store = open_store(project.store.url)
    with store.read() as conn:
        assert store.schema_version(conn) == SCHEMA_VERSION + 1
        conn.execute(text("SELECT language FROM records"))
    store.close()


def test_failed_upgrade_leaves_the_database_as_it_was(project, monkeypatch):
    def broken(conn):
        conn.execute(text("ALTER TABLE records ADD COLUMN language VARCHAR(16)"))
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(migrations.MIGRATIONS, SCHEMA_VERSION, broken)
    monkeypatch.setattr("curate.store.engine.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError):
        open_store(project.store.url)
    monkeypatch.undo()
    with open_project(project.root) as reopened, reopened.store.read() as conn:
        assert reopened.store.schema_version(conn) == SCHEMA_VERSION
        with pytest.raises(DBAPIError):
            conn.execute(text("SELECT language FROM records"))


def test_missing_upgrade_step_is_a_clear_error(project, monkeypatch):
    monkeypatch.setattr("curate.store.engine.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(SchemaError, match=f"no upgrade from schema {SCHEMA_VERSION} to {SCHEMA_VERSION + 1}"):
        open_store(project.store.url)


@pytest.mark.postgres
def test_init_on_postgres_and_refuse_a_second_project(cli, tmp_path, pg_url):
    code, _out, err = cli("init", tmp_path / "p", "--db", pg_url)
    assert code == 0, err
    assert not (tmp_path / "p" / "curate.db").exists()
    assert "postgresql" in (tmp_path / "p" / "curate.toml").read_text()
    code, _, err = cli("init", tmp_path / "q", "--db", pg_url)
    assert code == 1 and "already holds a curate project" in err
    assert not (tmp_path / "q").exists()  # nothing half-written


def test_failed_init_leaves_nothing_behind(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "curate.toml").symlink_to(tmp_path / "missing" / "x.toml")  # writing the config will fail
    with pytest.raises(OSError):
        init_project(root, db_url=f"sqlite:///{tmp_path / 'other.db'}")
    assert not (tmp_path / "other.db").exists()
    assert sorted(p.name for p in root.iterdir()) == ["curate.toml"]  # only what was there before


def test_unreachable_postgres_is_a_one_line_error(cli, tmp_path):
    code, _, err = cli("init", tmp_path / "p", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1 and err.startswith("error: cannot create the database at postgresql") and len(
        err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_two_processes_ingest_into_one_project_at_once(project, samples, tmp_path):
    """Two `curate ingest` processes on different files at the same time: both succeed, nothing lost."""
    from conftest import SHARED_DATA

    files = ([SHARED_DATA / "ukp-convarg1-dev.jsonl.gz", SHARED_DATA / "pandalm-testset-v1.jsonl.gz"]
             if SHARED_DATA else [samples["ukp"], samples["pandalm"]])
    exe = [sys.executable, "-c", "from curate.cli import main; main()"]
    procs = [subprocess.Popen([*exe, "ingest", str(f), "--project", str(project.root), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in files]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    reports = [json.loads(out) for _, out, _ in results]
    status = project_status(project)
    assert status["pairs"] == sum(r["files"][0]["pairs"] for r in reports)
    assert status["judgments"] == sum(sum(r["files"][0]["judgments"].values()) for r in reports)
    assert status["ingested_files"] == 2
    if SHARED_DATA:
        assert status["pairs"] == 8893 + 999


def test_project_is_usable_from_python(project, samples):
    from curate import ingest_files

    report = ingest_files(project, [samples["pandalm"]])
    assert report.files[0].pairs == 300 and project_status(project)["judgments_by_source"] == {"crowd": 900}
    with pytest.raises(ProjectError):
        init_project(project.root)
