"""App accounts: argon2-hashed passwords, roles, lock-out after repeated wrong passwords, disable / enable /
remove, and the session generation that ends every session of an account when it changes."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from curate.config import AnnotateSection
from curate.errors import CurateError, RefusedError
from curate.store import Store, accounts, audit

ROLES = ("annotator", "lead")
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DUMMY_HASH: str | None = None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str


class SessionEnded(RefusedError):
    """A session that no longer counts: its account was reset, disabled or removed since it logged in."""


@dataclass(frozen=True)
class Login:
    """A successful login: the account and the session generation the new session belongs to."""

    user_id: int
    generation: int


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
        found = accounts.annotator_id(conn, name=name)
        if accounts.account_status(conn, name=name) == accounts.REMOVED:
            raise CurateError(f"user '{name}' was removed (their judgments keep the name); choose another name")
        if found is not None and not reset:
            raise CurateError(f"user '{name}' exists; use --reset to set a new password or role")
        if found is None:
            user_id = accounts.add_account(conn, name=name, role=role, password_hash=hashed)
        else:
            user_id = found
            accounts.reset_account(conn, account_id=user_id, role=role, password_hash=hashed)
        audit(conn, "user.reset" if found is not None else "user.add", entity="annotator", entity_id=name,
              details={"role": role})
    return User(user_id, name, role)


def check_login(store: Store, name: str, password: str, rule: AnnotateSection, *,
                now: datetime | None = None) -> Login | None:
    """The login if ``password`` is right for the active account ``name``, else None; counts failures and locks
    the account after too many (a lock-out refuses new logins only: sessions already open go on)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    now = now or datetime.now(timezone.utc)
    with store.read() as conn:
        found = accounts.login_hash(conn, name=name)
    if found is None or found[1] is None:
        _verify_dummy(password)  # the same work as a real check, so timing does not tell names apart
        return None
    user_id, hashed, generation = found
    try:
        ok = _hasher().verify(hashed, password)
    except (VerificationError, InvalidHashError):
        ok = False
    with store.write() as conn:  # the lock-out is read and counted in one transaction
        failed, locked_until = accounts.lockout(conn, account_id=user_id)
        if locked_until is not None and locked_until > now:
            return None
        if ok:
            accounts.set_lockout(conn, account_id=user_id, failed=0, locked_until=None)
            return Login(user_id, generation)
        failed += 1
        locked = now + timedelta(minutes=rule.lockout_minutes) if failed >= rule.max_failed_logins else None
        accounts.set_lockout(conn, account_id=user_id, failed=0 if locked else failed, locked_until=locked)
        if locked:
            audit(conn, "user.locked", entity="annotator", entity_id=name, actor=f"app:{name}",
                  details={"until": locked.isoformat(), "failures": failed})
    return None


def unlock_user(store: Store, name: str) -> None:
    """Clear a lock-out and the failure count."""
    with store.write() as conn:
        if not accounts.unlock(conn, name=name):
            raise CurateError(f"no user '{name}' (see curate user list)")
        audit(conn, "user.unlock", entity="annotator", entity_id=name)


def disable_user(store: Store, name: str) -> None:
    """Refuse the account's logins and end its sessions until :func:`enable_user`."""
    _set_status(store, name, accounts.DISABLED, "user.disable")


def enable_user(store: Store, name: str) -> None:
    """Let a disabled account log in again."""
    _set_status(store, name, accounts.ACTIVE, "user.enable")


def remove_user(store: Store, name: str) -> None:
    """Delete the account's password and end its sessions for good. The person stays in the store under their
    name, so the judgments, rewrites and decisions they gave keep their author; the name cannot be reused."""
    _set_status(store, name, accounts.REMOVED, "user.remove")


def get_user(store: Store, name: str | None, *, generation: int | None = None) -> User:
    """The logged-in app user called ``name`` (from ``gr.Request.username``); anything else is refused. With
    ``generation`` (the session's), a session opened before the account's password reset, role change, disable or
    removal is refused too. A lock-out does not end sessions already open."""
    if not name:
        raise RefusedError("not logged in")
    with store.read() as conn:
        found = accounts.app_accounts(conn, name=name)
    if not found:
        raise SessionEnded(f"no app user '{name}' (removed?): log in again")
    account = found[0]
    if account.status != accounts.ACTIVE:
        raise SessionEnded(f"the account '{name}' is {account.status}")
    if generation is not None and generation != account.generation:
        raise SessionEnded("this session has ended (new password, role or account status): log in again")
    return User(account.id, account.name, account.role or "annotator")


def list_users(store: Store, *, now: datetime | None = None) -> list[dict[str, object]]:
    """Every app account (removed ones are gone): name, role, status, whether it is locked."""
    now = now or datetime.now(timezone.utc)
    with store.read() as conn:
        rows = accounts.app_accounts(conn)
    return [{"name": r.name, "role": r.role, "status": r.status,
             "locked": r.locked_until is not None and r.locked_until > now,
             "created": r.created_at.isoformat(timespec="seconds")} for r in rows]


def _set_status(store: Store, name: str, status: str, action: str) -> None:
    with store.write() as conn:
        if not accounts.set_status(conn, name=name, status=status):
            raise CurateError(f"no user '{name}' (see curate user list)")
        audit(conn, action, entity="annotator", entity_id=name)


def _verify_dummy(password: str) -> None:
    from argon2.exceptions import VerificationError

    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher().hash("curate-dummy-password")
    with contextlib.suppress(VerificationError):
        _hasher().verify(_DUMMY_HASH, password)
