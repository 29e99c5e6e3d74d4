"""The floor every radbill package stands on: config, errors, logging, database engine and models.

Nothing here imports a domain package (aaa, accounting, billing, pools, webadmin) or the shell
(radbill); those import it.
"""
