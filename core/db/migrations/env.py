"""Alembic environment: migrations run on the engine radbill hands in (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from core.db.base import Base

config = context.config
engine = config.attributes["engine"]
target_metadata = Base.metadata

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
