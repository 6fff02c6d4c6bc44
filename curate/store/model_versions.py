"""The model registry: every model a project used or trained, by content fingerprint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from curate.models import ResolvedModel
from curate.store.bulk import insert_new
from curate.store.rounds import round_id
from curate.store.schema import ModelVersion, Round


def register_model(conn: Connection, model: ResolvedModel, *, kind: str) -> str:
    """Record ``model`` once (by name and fingerprint); the name it is registered under."""
    name = f"{model.name}@{model.short}"
    insert_new(conn, ModelVersion.__table__, [{
        "name": name, "kind": kind, "path": str(model.path), "fingerprint": model.fingerprint, "metrics": {}}],
        key="name")
    return name


def version_path(conn: Connection, name: str) -> str | None:
    """The folder of the model version registered as ``name`` (e.g. an adapter ``curate train`` made), if any."""
    return conn.scalar(select(ModelVersion.path).where(ModelVersion.name == name))


def version_kind(conn: Connection, name: str) -> tuple[int, str] | None:
    """(id, kind) of the model version registered as ``name``, or None."""
    row = conn.execute(select(ModelVersion.id, ModelVersion.kind).where(ModelVersion.name == name)).first()
    return None if row is None else (int(row.id), row.kind)


def version_id(conn: Connection, name: str) -> int | None:
    """The id of the model version registered as ``name``, if any."""
    return conn.scalar(select(ModelVersion.id).where(ModelVersion.name == name))


def names_starting(conn: Connection, *, stem: str) -> set[str]:
    """The names of the model versions that start with ``stem``."""
    return set(conn.scalars(select(ModelVersion.name).where(ModelVersion.name.startswith(stem))))


def add_version(conn: Connection, *, name: str, kind: str, base: str | None, path: str, fingerprint: str,
                round_number: int | None, metrics: dict[str, Any]) -> None:
    """Register a model version the project trained (on round ``round_number``, if given)."""
    trained_on = None if round_number is None else round_id(conn, number=round_number)
    conn.execute(insert(ModelVersion).values(name=name, kind=kind, base=base, path=path, fingerprint=fingerprint,
                                             round_id=trained_on, metrics=metrics))


def versions_of_kind(conn: Connection, *, kind: str) -> list[tuple[str, int | None]]:
    """(name, number of the round it was trained on or None) of every version of ``kind``, newest first."""
    return [(name, number) for name, number in conn.execute(
        select(ModelVersion.name, Round.number).join(Round, Round.id == ModelVersion.round_id, isouter=True)
        .where(ModelVersion.kind == kind).order_by(ModelVersion.id.desc()))]
