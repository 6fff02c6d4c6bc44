"""A project directory: ``curate.toml``, the database and the working folders."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from curate.config import (
    CONFIG_FILE,
    DatabaseSection,
    ProjectConfig,
    ProjectSection,
    dump_config,
    load_config,
)
from curate.errors import ProjectError
from curate.store import Store, create_store, has_password, open_store, resolve_url, sqlite_file

FOLDERS = ("cache", "rounds", "exports", "models")
SQLITE_FILE = "curate.db"
# The annotators' instructions a new project starts with, for the lead to edit (curate.annotate.instructions
# versions the file in the store when it changes).
DEFAULT_INSTRUCTIONS = """# How to judge

For each prompt you see two answers, **A** and **B** (their order is random, and which model wrote
them is hidden). Pick the one a careful expert would rather send:

- **A** or **B**: the better one; **Tie**: equally good; **Both bad**: neither is acceptable.
- Judge helpfulness, correctness and harmlessness, in that order; length is not quality.
- Confidence (optional): 1 = a guess, 5 = certain. A short reason helps the lead review.

Keys: **1** A · **2** B · **3** Tie · **4** Both bad · **Enter** submit (in a text field: Ctrl+Enter).
**Skip** an item you cannot judge; **Flag** one that is broken or offensive (say why).
"""


@dataclass
class Project:
    """An open project: its directory, configuration and database."""

    root: Path
    config: ProjectConfig
    store: Store

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exposed_files(self) -> list[str]:
        """The project's private files (the config, the SQLite database with its password hashes) that others may
        read: projects made before curate created them 0600."""
        db = sqlite_file(self.store.url)
        names = [CONFIG_FILE, *([f"{db}{s}" for s in ("", "-wal", "-shm")] if db else [])]
        return [str(Path(n).name) for n in names
                if (self.root / n).exists() and (self.root / n).stat().st_mode & 0o077]


def init_project(directory: Path | str, *, db_url: str | None = None) -> Project:
    """Create a project in ``directory`` (which may exist but must not hold a project). The folders it creates
    are the owner's only (0700), and so are curate.toml and the SQLite files (0600). ``db_url`` must hold no
    password: curate.toml keeps the URL, and the password comes from $PGPASSWORD, ~/.pgpass or
    $CURATE_DATABASE_URL."""
    root = Path(directory).resolve()
    if db_url and has_password(db_url):
        raise ProjectError("the database URL must not hold a password (it would be written to curate.toml): give "
                           "postgresql://USER@HOST/DB and the password in $PGPASSWORD, ~/.pgpass or "
                           "$CURATE_DATABASE_URL")
    if (root / CONFIG_FILE).exists() or (root / SQLITE_FILE).exists():
        raise ProjectError(f"{root} already holds a curate project; refusing to overwrite it")
    if root.exists() and not root.is_dir():
        raise ProjectError(f"{root} exists and is not a directory")
    config = ProjectConfig(project=ProjectSection(name=root.name),
                           database=DatabaseSection(url=db_url or f"sqlite:///{SQLITE_FILE}"))
    url = resolve_url(config.database.url, root)
    db_file = sqlite_file(url)
    if db_file and Path(db_file).exists():
        raise ProjectError(f"{db_file} already exists; refusing to overwrite it")
    created_root = not root.exists()
    made = [Path(f"{db_file}{suffix}") for suffix in ("", "-wal", "-shm")] if db_file else []
    store: Store | None = None
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in FOLDERS:
            if not (root / name).exists():
                (root / name).mkdir(mode=0o700)
                made.append(root / name)
        if db_file:  # SQLite gives its -wal and -shm files the database file's mode
            os.close(os.open(db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        store = create_store(url)
        instructions = root / config.annotate.instructions
        if not instructions.exists():  # the annotators' instructions, for the lead to edit
            made.append(instructions)
            instructions.write_text(DEFAULT_INSTRUCTIONS, encoding="utf-8")
        _write_private(root / CONFIG_FILE, dump_config(config))
    except BaseException:
        # Nothing half-written: remove what this call created.
        if store is not None:
            store.close()
        for path in made:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        if created_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return Project(root=root, config=config, store=store)


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` holding ``text``, readable by its owner only."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
        f.write(text)


def open_project(directory: Path | str = ".") -> Project:
    """Open the project in ``directory``."""
    root = Path(directory).resolve()
    if not (root / CONFIG_FILE).is_file():
        raise ProjectError(f"{root} is not a curate project (no {CONFIG_FILE}); create one with `curate init DIR`")
    config = load_config(root / CONFIG_FILE)
    return Project(root=root, config=config, store=open_store(resolve_url(config.database.url, root)))
