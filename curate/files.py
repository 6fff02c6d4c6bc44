"""Outputs published whole, by one rule: everything is written aside, under a staging name that carries its
writer's host and process id, and made visible by one atomic rename; the old output stays in place until the
new one is complete, and a later writer removes what a dead writer left.

- One file (``staged``, ``publish_text``): a hidden sibling, renamed onto it.
- One folder that readers open whole (``staged_folder``: a trained adapter, a dequantised model): a hidden
  sibling folder, renamed onto it.
- A set of files or folders (``publishing``: an export's splits, a ``datasets`` folder): each
  name ``X`` beside the anchor is a relative symlink ``X -> .A.versions/current/X``, and ``current`` is a symlink
  to the complete version folder ``v-<token>``. A new set is written into a staging folder in ``.A.versions/``,
  renamed to its version and published by replacing ``current`` (one ``os.replace`` of a symlink), so the files
  on disk are the old set or the new one, whole, never a mix, whenever a kill comes; a name the new set lacks
  dangles (reads as absent) and is removed. The version just replaced is kept until the next publish, so a
  reader that resolves ``current`` once (``os.path.realpath``) reads one whole set even while a new one lands.
  Publishing takes a lock (``flock``, released when its holder dies) on ``.A.versions/lock``.

POSIX only (symlinks, ``flock``, directory fsync)."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _host() -> str:
    """This machine and PID namespace (containers that share a host name do not share process ids)."""
    where = socket.gethostname()
    with contextlib.suppress(OSError):
        where += f"/{os.stat('/proc/self/ns/pid').st_ino}"
    return hashlib.sha256(where.encode()).hexdigest()[:8]


HOST = _host()
_OWNED = re.compile(r"([0-9a-f]{8})-(\d+)-[0-9a-f]{8}")  # host-pid-token, in every staging name


def _tag() -> str:
    return f"{HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def owner_alive(name: str) -> bool:
    """Whether the writer a staging ``name`` names may still be running: true for this process, another host's
    writer and a name without an owner; false only for a process of this host that no longer exists."""
    found = _OWNED.search(name)
    if found is None or found[1] != HOST or int(found[2]) == os.getpid():
        return True
    try:
        os.kill(int(found[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (and ``root``), so a rename never publishes unwritten data."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync(Path(folder, name))
        _fsync(Path(folder))


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A new temporary sibling of ``path`` to write (its name keeps ``path``'s suffix, which tells writers the
    format); fsynced and renamed onto ``path`` when the block ends, removed if the block raises. Temporaries of
    ``path`` left by dead writers are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead(path.parent, f".{path.stem}.", f".tmp{path.suffix}")
    # unique per process and call; created by the writer, so it gets the usual permissions (mkstemp's are 0600)
    tmp = path.with_name(f".{path.stem}.{_tag()}.tmp{path.suffix}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staged_folder(path: Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """A new staging folder beside ``path`` to write a whole folder in (a model, an adapter); put in place of
    ``path`` when the block ends, removed if it raises. A folder already at ``path`` is replaced in one atomic
    exchange (Linux ``renameat2``; elsewhere it is moved aside first, and a writer killed in between leaves it
    as ``.NAME.<owner>.old``, which the next writer puts back), or with ``keep_existing`` kept (a cache another
    writer filled first). Staging folders of ``path`` left by dead writers are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead(path.parent, f".{path.name}.", ".partial")
    for old in _dead(path.parent, f".{path.name}.", ".old"):  # moved aside by a writer killed before its rename
        if path.exists():
            _remove(old)
        else:
            os.rename(old, path)
    stage = path.with_name(f".{path.name}.{_tag()}.partial")
    stage.mkdir()
    try:
        yield stage
        _sync_tree(stage)
        try:
            if not path.exists():
                os.rename(stage, path)
            elif not keep_existing and not _exchange(stage, path):
                old = path.with_name(f".{path.name}.{_tag()}.old")
                os.rename(path, old)
                os.rename(stage, path)
                _remove(old)
        except OSError as err:  # another writer put its folder there first
            if not (keep_existing and err.errno in (errno.EEXIST, errno.ENOTEMPTY)):
                raise
        _fsync(path.parent)
    finally:
        _remove(stage)  # after an exchange: the previous folder


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # not this kernel or file system
        return False
    raise OSError(code, os.strerror(code), str(b))


def _dead(folder: Path, prefix: str, suffix: str) -> list[Path]:
    """The ``prefix<host-pid-token>suffix`` entries of ``folder`` whose writer is dead."""
    pattern = re.compile(rf"{re.escape(prefix)}{_OWNED.pattern}{re.escape(suffix)}")
    return [p for p in folder.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}")
            if pattern.fullmatch(p.name) and not owner_alive(p.name)]


def _remove_dead(folder: Path, prefix: str, suffix: str) -> None:
    """Remove ``prefix<host-pid-token>suffix`` entries of ``folder`` whose writer is dead."""
    for leftover in _dead(folder, prefix, suffix):
        _remove(leftover)


def publish_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole."""
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def versions_folder(anchor: Path) -> Path:
    """Where the versions of the set named after ``anchor`` live: ``.NAME.versions`` beside it."""
    return anchor.with_name(f".{anchor.name}.versions")


@contextmanager
def publishing(anchor: Path, *, names: Iterable[str] = ()) -> Iterator[Path]:
    """An empty staging folder for the output set named after ``anchor``: write each of its files or folders in it
    under the name it is to have beside ``anchor``. When the block ends the set replaces the previous one at once
    (see the module's rule); if the block raises or the process dies, the previous set stays as it was. ``names``:
    other names beside ``anchor`` the previous set may hold (an export's split files), removed if the new set
    lacks them."""
    store = versions_folder(anchor)
    store.mkdir(parents=True, exist_ok=True)
    stage = store / f"partial-{_tag()}"
    stage.mkdir()
    try:
        yield stage
        entries = sorted(p.name for p in stage.iterdir())
        _sync_tree(stage)
        with _locked(store):
            _adopt(store, anchor.parent, {*entries, *names})
            previous = os.readlink(store / "current") if (store / "current").is_symlink() else None
            version = store / f"v-{secrets.token_hex(8)}"
            os.rename(stage, version)
            for name in entries:  # new names dangle until current moves: a reader sees them absent, as before
                _link(anchor.parent / name, f"{store.name}/current/{name}")
            _link(store / "current", version.name)  # the one step that publishes the whole set
            _fsync(store)
            _fsync(anchor.parent)
            _tidy(store, anchor.parent, keep=previous)
    finally:
        _remove(stage)


@contextmanager
def _locked(store: Path) -> Iterator[None]:
    import fcntl

    with open(store / "lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _link(path: Path, target: str) -> None:
    """Make ``path`` a symlink to ``target`` in one step (a new link renamed over whatever file or link is there)."""
    if path.is_symlink() and os.readlink(path) == target:
        return
    tmp = path.with_name(f".{path.name}.{_tag()}.link")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _adopt(store: Path, parent: Path, names: set[str]) -> None:
    """Bring files and folders of ``names`` that are not links into this layout yet (written before it, or by
    hand) into the current version, unchanged, so the swap replaces them along with the rest of the set. A file
    is hard-linked (or copied) first, so its name never disappears; a folder is moved, its name is absent for
    the moment between the move and the link."""
    found = [n for n in sorted(names) if (parent / n).exists() and not (parent / n).is_symlink()]
    if not found:
        return
    current = store / "current"
    if not current.exists():
        version = store / f"v-{secrets.token_hex(8)}"
        version.mkdir()
        _link(current, version.name)
    folder = store / os.readlink(current)
    for name in found:
        old, kept = parent / name, folder / name
        _remove(kept)
        if old.is_dir():
            os.rename(old, kept)
        else:
            try:
                os.link(old, kept)
            except OSError:  # no hard links here
                shutil.copy2(old, kept)
        _link(old, f"{store.name}/current/{name}")


def _tidy(store: Path, parent: Path, *, keep: str | None) -> None:
    """Remove superseded versions but ``keep`` (the one just replaced, which a reader may still be reading), dead
    writers' staging and links, and names of this set that now dangle."""
    current = os.readlink(store / "current")
    for entry in store.iterdir():
        if entry.name in ("current", "lock", current, keep):
            continue
        if entry.name.startswith("v-") or not owner_alive(entry.name):
            _remove(entry)
    prefix = f"{store.name}/current/"
    for entry in parent.iterdir():
        if not entry.is_symlink():
            continue
        dangles = os.readlink(entry).startswith(prefix) and not entry.exists()
        if dangles or (entry.name.endswith(".link") and not owner_alive(entry.name)):
            entry.unlink(missing_ok=True)
