"""Moving state between Phase 1 and statebridge: importers, the rollback export, backups.

Every command streams its input (ijson) and writes in bulk (COPY on PostgreSQL, batched
statements on SQLite), so a large file costs neither its size in memory nor a round trip
per row. `commands` holds the command-line layer; the other modules know nothing of it.
"""
