"""Queries of annotator accounts: app logins (password hashes, roles, lock-outs, status, session generations) and
simulated annotators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select, update

from curate.store.bulk import insert_new
from curate.store.schema import Annotator

HUMAN = "human"  # Annotator.kind of people; an app account is a human with a password
ACTIVE, DISABLED, REMOVED = "active", "disabled", "removed"  # Annotator.status


@dataclass(frozen=True)
class Account:
    """An app account: a human annotator with a password. Times are in UTC."""

    id: int
    name: str
    role: str | None
    locked_until: datetime | None
    created_at: datetime
    status: str
    generation: int


def aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def app_accounts(conn: Connection, *, name: str | None = None, account_id: int | None = None) -> list[Account]:
    """Every app account by name (only the one called ``name`` or with id ``account_id``, if given)."""
    query = (select(Annotator.id, Annotator.name, Annotator.role, Annotator.locked_until, Annotator.created_at,
                    Annotator.status, Annotator.session_generation)
             .where(Annotator.kind == HUMAN, Annotator.password_hash.is_not(None)).order_by(Annotator.name))
    if name is not None:
        query = query.where(Annotator.name == name)
    if account_id is not None:
        query = query.where(Annotator.id == account_id)
    return [Account(int(i), n, role, None if locked is None else aware(locked), aware(created), status, int(gen))
            for i, n, role, locked, created, status, gen in conn.execute(query)]


def account_status(conn: Connection, *, name: str) -> str | None:
    """The status of the human annotator ``name`` (active, disabled, removed), or None if there is none."""
    return conn.scalar(select(Annotator.status).where(Annotator.name == name, Annotator.kind == HUMAN))


def annotator_id(conn: Connection, *, name: str) -> int | None:
    """The id of the annotator called ``name`` (of any kind), if any."""
    found = conn.scalar(select(Annotator.id).where(Annotator.name == name))
    return None if found is None else int(found)


def lead_id(conn: Connection, *, name: str) -> int | None:
    """The id of the annotator called ``name`` if they are a lead, else None."""
    row = conn.execute(select(Annotator.id, Annotator.role).where(Annotator.name == name)).first()
    return int(row.id) if row is not None and row.role == "lead" else None


def add_account(conn: Connection, *, name: str, role: str, password_hash: str) -> int:
    """Create the human account ``name`` with a password, unlocked; its id."""
    return int(conn.execute(insert(Annotator).values(
        name=name, kind=HUMAN, role=role, password_hash=password_hash, failed_logins=0, locked_until=None,
    )).inserted_primary_key[0])


def reset_account(conn: Connection, *, account_id: int, role: str, password_hash: str) -> None:
    """Give account ``account_id`` a new password and role, clear its lock-out and end its sessions."""
    conn.execute(update(Annotator).where(Annotator.id == account_id).values(
        role=role, password_hash=password_hash, failed_logins=0, locked_until=None,
        session_generation=Annotator.session_generation + 1))


def set_status(conn: Connection, *, name: str, status: str) -> bool:
    """Set the status of app account ``name`` and end its sessions; whether there is such an account. Removing one
    also deletes its password hash and lock-out (the row stays: judgments name it)."""
    values: dict[str, object] = {"status": status, "session_generation": Annotator.session_generation + 1}
    if status == REMOVED:
        values |= {"password_hash": None, "failed_logins": 0, "locked_until": None}
    account = (Annotator.name == name) & (Annotator.kind == HUMAN) & Annotator.password_hash.is_not(None)
    return bool(conn.execute(update(Annotator).where(account).values(**values)).rowcount)


def login_hash(conn: Connection, *, name: str) -> tuple[int, str | None, int] | None:
    """(id, password hash or None, session generation) of the active human annotator ``name``, or None."""
    row = conn.execute(select(Annotator.id, Annotator.password_hash, Annotator.session_generation).where(
        Annotator.name == name, Annotator.kind == HUMAN, Annotator.status == ACTIVE)).first()
    return None if row is None else (int(row.id), row.password_hash, int(row.session_generation))


def lockout(conn: Connection, *, account_id: int) -> tuple[int, datetime | None]:
    """(failed logins in a row, locked until) of account ``account_id``; the row stays locked (PostgreSQL) to the
    end of the transaction, so a lock-out is read and counted in one step."""
    failed, locked = conn.execute(select(Annotator.failed_logins, Annotator.locked_until)
                                  .where(Annotator.id == account_id).with_for_update()).one()
    return int(failed or 0), None if locked is None else aware(locked)


def set_lockout(conn: Connection, *, account_id: int, failed: int, locked_until: datetime | None) -> None:
    """Store account ``account_id``'s failure count and lock-out."""
    conn.execute(update(Annotator).where(Annotator.id == account_id).values(
        failed_logins=failed, locked_until=locked_until))


def unlock(conn: Connection, *, name: str) -> bool:
    """Clear the lock-out and failure count of the human annotator ``name``; whether there is one."""
    return bool(conn.execute(update(Annotator).where(Annotator.name == name, Annotator.kind == HUMAN)
                             .values(failed_logins=0, locked_until=None)).rowcount)


def ensure_annotators(conn: Connection, *, names: Sequence[str], kind: str, role: str) -> dict[str, tuple[int, str]]:
    """Create the annotators ``names`` that do not exist yet (of ``kind`` and ``role``, no password);
    name -> (id, kind) of each, the kind an existing one already had."""
    insert_new(conn, Annotator.__table__, [{"name": n, "kind": kind, "role": role} for n in names], key="name")
    return {n: (int(i), k) for i, n, k in conn.execute(select(Annotator.id, Annotator.name, Annotator.kind)
                                                       .where(Annotator.name.in_(names)))}
