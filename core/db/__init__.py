"""The database layer: engine, ORM base and core models, thread pool, migrations."""
