"""Admin operations shared by the CLI, the HTTP API and the web pages.

Every ``thd_*`` function takes a Session first, never commits, and returns frozen dataclasses,
so it runs unchanged under ``DBPool.run`` (API, web) and ``CliContext.run`` (CLI). Modules:
``validate`` (every typed value), ``passwords`` (hashing, outside transactions), ``nas``,
``plans``, ``subscribers`` and ``importing`` (CSV bulk import).
"""
