"""The one service layer the CLI, the HTTP API and the web pages call.

Each operation is a ``thd_*`` function taking ``(session, caller, ...)``: it
checks the caller's permission (``webadmin.roles``) and reseller scope, calls
the domain packages' own ``thd_*`` functions (which validate), and, for a
change, writes the audit row in the same transaction (``audit.record``). No
face reaches the database any other way. Modules by concern: ``audit``,
``scope``, ``resellers``, ``operators``, ``tokens``, ``logins``,
``subscribers``, ``catalog`` (NAS, plans, prices, pools), ``money`` (accounts,
ledger, payments), ``usage`` (sessions, calls, rating, disconnect),
``selfcare``.
"""
