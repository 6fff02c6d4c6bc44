"""The model registry: every model a project used or trained, by content fingerprint."""

from __future__ import annotations

from sqlalchemy import Connection, select

from curate.models import ResolvedModel
from curate.store.bulk import insert_new
from curate.store.schema import ModelVersion


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
