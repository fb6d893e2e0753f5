"""The schema on the test database: migrations applied, extensions present, versions immutable."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from templates_app.models import AgentTemplateVersion
from tests.factories import make_template

pytestmark = pytest.mark.django_db


def test_all_migrations_are_applied():
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    assert plan == []


def test_models_match_migrations():
    out = StringIO()
    # Exits with status 1 (SystemExit) if a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", stdout=out)


def test_vector_and_trigram_extensions_exist():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        names = {row[0] for row in cursor.fetchall()}
    assert {"vector", "pg_trgm"} <= names


def test_hnsw_indexes_exist():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN (%s, %s)",
            ["tools_embedding_hnsw", "template_versions_emb_hnsw"],
        )
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {"tools_embedding_hnsw", "template_versions_emb_hnsw"}
    assert all("hnsw" in d and "vector_cosine_ops" in d for d in indexes.values())


@pytest.mark.parametrize(
    "change",
    [
        {"prompt_pack": {"system_prompt": "changed"}},
        {"description": "changed"},
        {"version": 7},
        {"rules": [{"when": {}, "then": {}}]},
        {"tags": ["changed"]},
    ],
)
def test_trigger_refuses_update_of_version_content(change):
    version = make_template(description="original").active_version
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        AgentTemplateVersion.objects.filter(pk=version.pk).update(**change)
    version.refresh_from_db()
    assert version.description == "original"
    assert version.version == 1


def test_trigger_refuses_save_of_changed_version():
    version = make_template().active_version
    version.note = "sneaky edit"
    with pytest.raises(DatabaseError), transaction.atomic():
        version.save()


def test_trigger_allows_embedding_refresh():
    version = make_template().active_version
    vector = [0.0] * 383 + [1.0]
    AgentTemplateVersion.objects.filter(pk=version.pk).update(embedding=vector, embedding_model="test-model")
    version.refresh_from_db()
    assert list(version.embedding) == vector
    assert version.embedding_model == "test-model"
    # Saving an unchanged row (every column written, none different) is allowed too.
    version.save()


_REDUNDANT_INDEXES = """
    SELECT c.relname, a.relname, b.relname
    FROM pg_index x
    JOIN pg_index y ON y.indrelid = x.indrelid AND y.indexrelid <> x.indexrelid
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
    JOIN pg_class a ON a.oid = x.indexrelid
    JOIN pg_class b ON b.oid = y.indexrelid
    WHERE a.relam = b.relam AND NOT x.indisunique AND x.indexprs IS NULL AND y.indexprs IS NULL
      AND x.indpred IS NULL AND y.indpred IS NULL
      -- x's columns (and operator classes) are y's leading ones: y serves every lookup x does
      AND (string_to_array(y.indkey::text, ' '))[1:cardinality(string_to_array(x.indkey::text, ' '))]
          = string_to_array(x.indkey::text, ' ')
      AND (string_to_array(y.indclass::text, ' '))[1:cardinality(string_to_array(x.indclass::text, ' '))]
          = string_to_array(x.indclass::text, ' ')
      AND (cardinality(string_to_array(y.indkey::text, ' ')) > cardinality(string_to_array(x.indkey::text, ' '))
           OR x.indexrelid > y.indexrelid)
      AND (%(tables)s::text[] IS NULL OR c.relname = ANY(%(tables)s::text[]))
"""


def _redundant_indexes(tables: list[str] | None = None, *, exact: bool = False) -> list[tuple]:
    sql = _REDUNDANT_INDEXES
    if exact:  # same columns, not a prefix
        sql += (" AND cardinality(string_to_array(y.indkey::text, ' '))"
                " = cardinality(string_to_array(x.indkey::text, ' '))")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tables": tables})
        return cursor.fetchall()


def test_no_index_duplicates_another():
    assert _redundant_indexes(exact=True) == []


def test_tables_written_on_every_step_carry_no_index_another_covers():
    """Each step writes messages, tool executions and the session row: an index that another one
    already covers would only cost writes."""
    assert _redundant_indexes(["session_messages", "tool_executions", "sessions", "agent_instances"]) == []
    with connection.cursor() as cursor:  # the check itself finds what it should
        cursor.execute("CREATE INDEX redundant_probe ON session_messages (session_id)")
        try:
            assert [row[1] for row in _redundant_indexes(["session_messages"])] == ["redundant_probe"]
        finally:
            cursor.execute("DROP INDEX redundant_probe")


def test_rate_buckets_are_unlogged():
    """A take's commit does not wait for the WAL; a crash only refills the buckets (access 0003)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'rate_buckets'")
        assert cursor.fetchone() == ("u",)
