"""App accounts: argon2-hashed passwords, roles and lock-out after repeated wrong passwords."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, select, update

from curate.config import AnnotateSection
from curate.errors import CurateError, RefusedError
from curate.store import Store, audit
from curate.store.schema import Annotator

ROLES = ("annotator", "lead")
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DUMMY_HASH: str | None = None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


def add_user(store: Store, name: str, *, role: str, password: str, reset: bool = False) -> User:
    """Create an app account (or with ``reset`` set a new password and role on an existing one)."""
    if not _NAME.match(name):
        raise CurateError(f"user name {name!r} must be 1-64 letters, digits or . _ @ - (starting with a letter "
                          "or digit)")
    if role not in ROLES:
        raise CurateError(f"--role must be annotator or lead, not '{role}'")
    if len(password) < MIN_PASSWORD:
        raise CurateError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = _hasher().hash(password)
    with store.write() as conn:
        row = conn.execute(select(Annotator.id).where(Annotator.name == name)).first()
        if row is not None and not reset:
            raise CurateError(f"user '{name}' exists; use --reset to set a new password or role")
        values = {"role": role, "password_hash": hashed, "failed_logins": 0, "locked_until": None}
        if row is None:
            user_id = conn.execute(insert(Annotator).values(name=name, kind="human", **values)).inserted_primary_key[0]
        else:
            user_id = row.id
            conn.execute(update(Annotator).where(Annotator.id == user_id).values(**values))
        audit(conn, "user.reset" if row is not None else "user.add", entity="annotator", entity_id=name,
              details={"role": role})
    return User(int(user_id), name, role)


def check_login(store: Store, name: str, password: str, rule: AnnotateSection, *,
                now: datetime | None = None) -> bool:
    """Whether ``password`` is right for ``name``; counts failures and locks the account after too many."""
    from argon2.exceptions import InvalidHashError, VerificationError

    now = now or datetime.now(timezone.utc)
    with store.read() as conn:
        row = conn.execute(select(Annotator.id, Annotator.password_hash).where(
            Annotator.name == name, Annotator.kind == "human")).first()
    if row is None or row.password_hash is None:
        _verify_dummy(password)  # the same work as a real check, so timing does not tell names apart
        return False
    try:
        ok = _hasher().verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    with store.write() as conn:  # the lock-out is read and counted in one transaction
        state = conn.execute(select(Annotator.failed_logins, Annotator.locked_until)
                             .where(Annotator.id == row.id).with_for_update()).one()
        if state.locked_until is not None and _aware(state.locked_until) > now:
            return False
        if ok:
            conn.execute(update(Annotator).where(Annotator.id == row.id).values(failed_logins=0, locked_until=None))
            return True
        failed = int(state.failed_logins or 0) + 1
        locked = now + timedelta(minutes=rule.lockout_minutes) if failed >= rule.max_failed_logins else None
        conn.execute(update(Annotator).where(Annotator.id == row.id).values(
            failed_logins=0 if locked else failed, locked_until=locked))
        if locked:
            audit(conn, "user.locked", entity="annotator", entity_id=name, actor=f"app:{name}",
                  details={"until": locked.isoformat(), "failures": failed})
    return False


def unlock_user(store: Store, name: str) -> None:
    """Clear a lock-out and the failure count."""
    with store.write() as conn:
        done = conn.execute(update(Annotator).where(Annotator.name == name, Annotator.kind == "human")
                            .values(failed_logins=0, locked_until=None)).rowcount
        if not done:
            raise CurateError(f"no user '{name}' (see curate user list)")
        audit(conn, "user.unlock", entity="annotator", entity_id=name)


def get_user(store: Store, name: str | None) -> User:
    """The logged-in app user called ``name`` (from ``gr.Request.username``); anything else is refused,
    and so is a session of an account locked since it logged in."""
    if not name:
        raise RefusedError("not logged in")
    with store.read() as conn:
        row = conn.execute(select(Annotator.id, Annotator.name, Annotator.role, Annotator.locked_until).where(
            Annotator.name == name, Annotator.kind == "human", Annotator.password_hash.is_not(None))).first()
    if row is None:
        raise RefusedError(f"no app user '{name}'")
    if row.locked_until is not None and _aware(row.locked_until) > datetime.now(timezone.utc):
        raise RefusedError(f"the account '{name}' is locked (a lead can run: curate user unlock {name})")
    return User(int(row.id), row.name, row.role or "annotator")


def list_users(store: Store, *, now: datetime | None = None) -> list[dict[str, object]]:
    """Every app account: name, role, whether it is locked."""
    now = now or datetime.now(timezone.utc)
    with store.read() as conn:
        rows = conn.execute(select(Annotator.name, Annotator.role, Annotator.locked_until, Annotator.created_at)
                            .where(Annotator.kind == "human", Annotator.password_hash.is_not(None))
                            .order_by(Annotator.name)).all()
    return [{"name": r.name, "role": r.role, "locked": r.locked_until is not None and _aware(r.locked_until) > now,
             "created": _aware(r.created_at).isoformat(timespec="seconds")} for r in rows]


def _verify_dummy(password: str) -> None:
    from argon2.exceptions import VerificationError

    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher().hash("curate-dummy-password")
    with contextlib.suppress(VerificationError):
        _hasher().verify(_DUMMY_HASH, password)


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
