"""The one place that opens databases: engines, transactions, schema creation and version checks."""

from __future__ import annotations

import getpass
import os
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from curate import __version__
from curate.errors import ProjectError, SchemaError
from curate.store import migrations
from curate.store.schema import SCHEMA_VERSION, AuditEntry, Base, Meta

SQLITE_BUSY_TIMEOUT_S = 60.0
# The project's PostgreSQL URL with its password; curate.toml holds it without one (libpq itself also reads
# $PGPASSWORD, $PGPASSFILE and ~/.pgpass when a URL has no password).
DATABASE_URL_ENV = "CURATE_DATABASE_URL"
_DEFAULT_PORT = 5432

_APPEND_ONLY_SQLITE = [
    f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
    for op in ("UPDATE", "DELETE")
]
_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION curate_audit_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION curate_audit_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION curate_audit_append_only()",
]


def resolve_url(url: str, root: Path) -> str:
    """Make a project's database URL absolute (SQLite paths are relative to the project) and pick drivers; a
    PostgreSQL URL without a password takes the one ``$CURATE_DATABASE_URL`` gives for the same database."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if not db or db == ":memory:":
            raise ProjectError(f"invalid database URL {url!r}: a project needs a SQLite file")
        return str(parsed.set(database=str((root / db).resolve())))
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.password is None:
            parsed = parsed.set(password=_password_from_env(parsed))
        return parsed.render_as_string(hide_password=False)
    raise ProjectError(f"unsupported database {parsed.get_backend_name()!r} in {redact(url)!r}: use sqlite or "
                       "postgresql")


def has_password(url: str) -> bool:
    """Whether database ``url`` holds a password."""
    parsed = _parse(url)
    return parsed.password is not None or "password" in parsed.query


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite ``url`` (as ``resolve_url`` made it), or None for a server database."""
    return make_url(url).database if url.startswith("sqlite") else None


def redact(url: str) -> str:
    """``url`` with its password masked, in the user part or the query (also when it cannot be parsed)."""
    try:
        parsed = make_url(url)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "xxx"})
        return parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        masked = re.sub(r"(?i)(password=)[^&\s]*", r"\1xxx", url)
        return re.sub(r"((?:://)?[^\s:/@]*:)\S*@" if "://" not in url else r"(://[^\s:/@]*:)\S*@", r"\1***@", masked)


def _parse(url: str) -> Any:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as err:
        raise ProjectError(f"invalid database URL {redact(url)!r}: {_first_line(err)}") from None


def _password_from_env(url: Any) -> str | None:
    """The password ``$CURATE_DATABASE_URL`` gives if it names the same user, server and database as ``url``."""
    given = os.environ.get(DATABASE_URL_ENV)
    if not given:
        return None
    other = _parse(given)

    def key(u: Any) -> tuple[Any, ...]:
        return u.get_backend_name(), u.username, u.host, u.port or _DEFAULT_PORT, u.database

    return other.password if key(other) == key(url) else None


class Store:
    """A project's database. Reads with :meth:`read`, writes with :meth:`write` (one transaction each)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _create_engine(url)
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time; threads of this process queue here, in order, instead of in
        # SQLite's busy handler (which sleeps and retries, so under load some writers wait for seconds).
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext())

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front (``BEGIN IMMEDIATE``)."""
        with self._write_lock, self.engine.connect().execution_options(curate_write=True) as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def schema_version(self, conn: Connection) -> int | None:
        if not inspect(conn).has_table("meta"):
            return None
        value = conn.scalar(select(Meta.value).where(Meta.key == "schema_version"))
        return int(value) if value is not None else None


def audit(conn: Connection, action: str, *, entity: str | None = None, entity_id: str | None = None,
          details: dict[str, Any] | None = None, actor: str | None = None) -> None:
    """Append one entry to the audit log."""
    conn.execute(insert(AuditEntry).values(
        actor=actor or f"cli:{_os_user()}", action=action, entity=entity, entity_id=entity_id,
        details=details or {}, curate_version=__version__, schema_version=SCHEMA_VERSION,
    ))


@contextmanager
def _closed_on_error(store: Store, verb: str) -> Iterator[None]:
    """Close ``store`` if setting it up fails; a database that cannot be reached is a ProjectError."""
    try:
        yield
    except DBAPIError as err:  # unreachable server, corrupt file, missing permissions, ...
        store.close()
        reason = _first_line(err)
        if "password" in reason:
            given = os.environ.get(DATABASE_URL_ENV)
            unused = f"; ${DATABASE_URL_ENV} is set but names another user, server or database: {redact(given)}" \
                if given and make_url(store.url).password is None else ""
            reason += f" (curate reads the password from $PGPASSWORD, ~/.pgpass or ${DATABASE_URL_ENV}{unused})"
        raise ProjectError(f"cannot {verb} the database at {redact(store.url)}: {reason}") from None
    except BaseException:
        store.close()
        raise


def create_store(url: str) -> Store:
    """Create the schema in an empty database; refuse one that already holds a project."""
    store = Store(url)
    with _closed_on_error(store, "create"), store.write() as conn:
        if store.schema_version(conn) is not None:
            raise ProjectError(f"{redact(url)} already holds a curate project; refusing to overwrite it")
        Base.metadata.create_all(conn)
        for statement in _APPEND_ONLY_POSTGRES if store.dialect == "postgresql" else _APPEND_ONLY_SQLITE:
            conn.exec_driver_sql(statement)
        conn.execute(insert(Meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        audit(conn, "project.init", details={"schema_version": SCHEMA_VERSION})
    return store


def open_store(url: str) -> Store:
    """Open a project database, upgrading an older schema and refusing a newer one."""
    store = Store(url)
    with _closed_on_error(store, "open"):
        with store.read() as conn:
            version = store.schema_version(conn)
        if version is None:
            raise ProjectError(f"{redact(url)} holds no curate project (no schema version)")
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{redact(url)} was written by a newer curate (schema {version}; this curate-toolkit "
                f"{__version__} reads up to schema {SCHEMA_VERSION}): upgrade curate-toolkit"
            )
        if version < SCHEMA_VERSION:
            with store.write() as conn:
                version = store.schema_version(conn) or version  # another process may have upgraded meanwhile
                if version < SCHEMA_VERSION:
                    migrations.upgrade(conn, version, SCHEMA_VERSION)
                    conn.execute(Meta.__table__.update().where(Meta.key == "schema_version")
                                 .values(value=str(SCHEMA_VERSION)))
                    audit(conn, "schema.upgrade", details={"from": version, "to": SCHEMA_VERSION})
    return store


def _create_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as err:
        raise ProjectError(f"cannot open the database at {redact(url)}: {_first_line(err)}") from None


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own BEGIN is deferred and implicit).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("curate_write") else "BEGIN")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _first_line(err: BaseException) -> str:
    msg = str(getattr(err, "orig", None) or err).strip()
    return msg.splitlines()[0] if msg else type(err).__name__
