"""Prepared statements on Django's own connection, for the few reads on every request's path.

Django binds parameters client-side and compiles a query per call; for a statement run on
every chat request, step or search (the hot reads, and a run's start, step and end writes),
a psycopg cursor on the same connection with server-side binding lets PostgreSQL keep the
plan (``prepare=True``) and skips both the ORM's compiler and quoting every value into the
SQL text (for a step's JSON messages, most of the client's work).
The statement runs inside whatever transaction Django's connection is in; database errors
come out as Django's (``django.db.DatabaseError`` …), as from a Django cursor.

Django opens its connections with psycopg's preparing turned off (``prepare_threshold`` None,
under which ``prepare=True`` is silently ignored); the settings turn it on
(``DB_PREPARED_STATEMENTS``), and ``tests/integration/test_sql.py`` checks that it happens.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connection
from psycopg import pq


def fetch(sql: str, params: dict[str, Any] | None = None, *, prepare: bool = True) -> list[tuple]:
    """All rows of ``sql`` (``%(name)s`` parameters), as a server-side prepared statement; a
    statement that returns no rows (an UPDATE without RETURNING) gives ``[]``."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params or {}, prepare=prepare)
        # the result's status, not ``description``: that builds a Column object per column
        return cursor.fetchall() if cursor.pgresult.status == pq.ExecStatus.TUPLES_OK else []
