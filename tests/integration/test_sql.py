"""``platform_site.sql.fetch``: the hot path's statements are server-side prepared statements on
the connection (Django turns psycopg's preparing off; the settings turn it back on)."""

from __future__ import annotations

import pytest

from platform_site.sql import fetch

pytestmark = pytest.mark.django_db


def _prepared() -> list[str]:
    return [row[0] for row in fetch("SELECT statement FROM pg_prepared_statements", prepare=False)]


def test_a_statement_is_prepared_once_and_reused():
    sql = "SELECT %(n)s::int + 41 AS prepared_probe"
    assert fetch(sql, {"n": 1}) == [(42,)]
    assert fetch(sql, {"n": 2}) == [(43,)]
    assert sum("prepared_probe" in statement for statement in _prepared()) == 1


def test_prepare_false_leaves_no_prepared_statement():
    assert fetch("SELECT 1 AS unprepared_probe", prepare=False) == [(1,)]
    assert not any("unprepared_probe" in statement for statement in _prepared())


def test_a_statement_without_rows_gives_an_empty_list():
    assert fetch("SET LOCAL statement_timeout = 0", prepare=False) == []


def test_a_query_that_matches_nothing_gives_an_empty_list():
    assert fetch("SELECT 1 AS nothing_probe WHERE %(n)s::int > 1", {"n": 1}) == []
