"""Schema versions through Alembic: upgrade, and refuse to serve an outdated schema.

Each package keeps its tables on its own Alembic branch rooted at the core
revision (``0001``), so accounting, billing and pools migrate independently;
"up to date" means every branch head is applied.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from core.errors import SchemaOutdated

UPGRADE_HINT = "run 'radbill db upgrade'"


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location",
                        str(resources.files("core.db").joinpath("migrations")))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def describe(revisions: set[str]) -> str:
    return ",".join(sorted(revisions)) or "empty"


def upgrade(engine: Engine, revision: str = "heads") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def check_current(engine: Engine) -> None:
    """Raise SchemaOutdated with the fixing command unless every branch is at its head."""
    current = current_revisions(engine)
    heads = head_revisions()
    if not current:
        raise SchemaOutdated(f"the database has no radbill schema: {UPGRADE_HINT}")
    if current == heads:
        return
    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = current - known
    if unknown:
        raise SchemaOutdated(
            f"the database schema ({describe(unknown)}) is newer than this radbill "
            f"(which knows up to {describe(heads)}): upgrade radbill")
    raise SchemaOutdated(
        f"the database schema is at {describe(current)}, this radbill needs "
        f"{describe(heads)}: {UPGRADE_HINT}")
