"""The keyword index rebuilt with BM25F field weights (name 3, description 2, parameters 1:
``retrieval.text``), as ``retrieval.services`` now writes it; the statement is frozen here."""

from django.db import migrations

REBUILD = r"""
    DELETE FROM retrieval_tool_terms;
    WITH line AS (
        SELECT d.tool_id, l.text, CASE WHEN l.n = 1 THEN 3 WHEN starts_with(l.text, 'Parameters: ') THEN 1
            ELSE 2 END AS weight
        FROM retrieval_tool_docs d
        CROSS JOIN LATERAL unnest(string_to_array(d.text, E'\n')) WITH ORDINALITY AS l(text, n)
    ), lex AS (
        SELECT line.tool_id, u.lexeme, sum(line.weight * coalesce(array_length(u.positions, 1), 1)) AS tf
        FROM line CROSS JOIN LATERAL unnest(to_tsvector('english'::regconfig, line.text)) AS u
        GROUP BY line.tool_id, u.lexeme
    ), len AS (
        SELECT tool_id, sum(tf) AS n FROM lex GROUP BY tool_id
    ), upd AS (
        UPDATE retrieval_tool_docs d SET length = len.n FROM len WHERE d.tool_id = len.tool_id
    )
    INSERT INTO retrieval_tool_terms (tool_id, lexeme, tf, doc_length)
    SELECT lex.tool_id, lex.lexeme, lex.tf, len.n FROM lex JOIN len USING (tool_id);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('retrieval', '0005_sentence_vectors'),
    ]

    operations = [
        migrations.RunSQL(REBUILD, migrations.RunSQL.noop, elidable=True),
    ]
