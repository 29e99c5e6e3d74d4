"""radbill: the application shell (config, database, CLI, service wiring)."""

__version__ = "0.1.0"
