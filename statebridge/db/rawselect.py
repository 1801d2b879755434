"""SELECTs (and UPDATEs with RETURNING) on the embedded file's hot path, compiled once by
SQLAlchemy and run on the `sqlite3` connection itself.

A request's session and cart reads are each one SELECT by key that SQLite answers in a few
microseconds; through SQLAlchemy's `Connection.execute` the same SELECT costs several times
that in Python (connection checkout, execution options, the compiled-cache lookup, the
execution context, the result object). Here the statement is compiled once, with the
engine's own dialect, into its SQL text, the order of its parameters and the type
processors SQLAlchemy would apply (datetimes to and from text, JSON through the engine's
deserializer); each call is then `cursor.execute` and those processors.

The SQL, the bound values and the decoded rows are SQLAlchemy's own: nothing here is
hand-written SQL or a copy of a type's encoding. What this leans on is SQLAlchemy's compiler
API (`positiontup`, `binds`, each type's `bind_processor`/`result_processor`):
tests/unit/test_rawselect.py runs every statement used this way both ways on a real file
and fails when the answers differ, or when the API is gone.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Dialect, Select, UpdateBase

Processor = Callable[[Any], Any] | None


class RawSelect:
    """`statement` for `dialect`: `rows(conn, params)` -> the rows SQLAlchemy would give,
    as named tuples (attribute and index access, like its `Row`). A SELECT, or a statement
    with RETURNING (its returned columns are the rows)."""

    def __init__(self, statement: Select[Any] | UpdateBase, dialect: Dialect) -> None:
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            raise TypeError(f"RawSelect runs on sqlite3 only, not {dialect.name}")
        compiled = statement.compile(dialect=dialect)
        assert compiled.positiontup is not None  # qmark: the parameters in order
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup)
        binds = compiled.binds
        # values fixed in the statement (`version + 1`): SQLAlchemy binds them too
        self.fixed = {
            name: binds[name].effective_value for name in self.names if not binds[name].required
        }
        self.bind_processors: list[Processor] = [
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
        ]
        columns = list(statement.exported_columns)
        self.result_processors: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.row_type = namedtuple("RawRow", [column.key for column in columns])  # type: ignore[misc]
        self._decode = any(p is not None for p in self.result_processors)

    def _args(self, params: dict[str, Any]) -> list[Any]:
        args = []
        for name, process in zip(self.names, self.bind_processors, strict=True):
            value = params[name] if name in params else self.fixed[name]
            args.append(value if process is None or value is None else process(value))
        return args

    def _row(self, values: Sequence[Any]) -> Any:
        if self._decode:
            values = [
                value if process is None or value is None else process(value)
                for value, process in zip(values, self.result_processors, strict=True)
            ]
        return self.row_type(*values)

    def rows(self, conn: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
        return [self._row(values) for values in conn.execute(self.sql, self._args(params))]

    def each(self, conn: sqlite3.Connection, params: list[dict[str, Any]]) -> None:
        """The statement once per set of parameters (`executemany`); no rows."""
        conn.executemany(self.sql, [self._args(one) for one in params])

    def first(self, conn: sqlite3.Connection, params: dict[str, Any]) -> Any:
        """The first row, or None; the statement runs to its end (a write's every row)."""
        found = conn.execute(self.sql, self._args(params)).fetchall()
        return self._row(found[0]) if found else None
