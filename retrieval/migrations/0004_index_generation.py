"""A generation number for the tool search index: every committed change to what search
reads (a tool's searchable columns, its keyword doc, its terms) gives it a new value.

A process that keeps the index in memory (``retrieval.memindex``) compares its copy's
generation with this one-row table before each search. The triggers are deferred
constraint triggers: the row is written at commit, after every other lock the
transaction takes, so writers of different tools never wait on each other for
long and cannot deadlock over it. Statement triggers mark the writing transaction
itself (``retrieval.pending``, a transaction-local setting) at once. Values come from
a sequence, drawn under the row's lock, so they grow in commit order; TRUNCATE (test
flushes) does not reset the sequence: a generation is never reused.
"""

from django.db import migrations

CREATE = """
CREATE SEQUENCE retrieval_index_generation_seq;
CREATE TABLE retrieval_index_state (
    id smallint PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL,
    changed_by xid8
);
INSERT INTO retrieval_index_state (id, generation) VALUES (1, nextval('retrieval_index_generation_seq'));

CREATE FUNCTION retrieval_index_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- once per transaction, however many rows it changed
    INSERT INTO retrieval_index_state AS s (id, generation, changed_by)
    VALUES (1, nextval('retrieval_index_generation_seq'), pg_current_xact_id())
    -- the new value is drawn once the row is locked: generations grow in commit order
    ON CONFLICT (id) DO UPDATE SET generation = nextval('retrieval_index_generation_seq'),
                                   changed_by = EXCLUDED.changed_by
    WHERE s.changed_by IS DISTINCT FROM EXCLUDED.changed_by;
    RETURN NULL;
END $$;

-- and at once, for the writing transaction itself: its own searches must not use a copy
CREATE FUNCTION retrieval_index_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('retrieval.pending', '1', true);  -- until this transaction ends
    RETURN NULL;
END $$;
CREATE TRIGGER tools_index_pending
    AFTER INSERT OR DELETE OR UPDATE OF name, is_active, is_system, risk, embedding, embedding_model
    OR TRUNCATE ON tools FOR EACH STATEMENT EXECUTE FUNCTION retrieval_index_pending();
CREATE TRIGGER retrieval_docs_index_pending AFTER INSERT OR DELETE OR UPDATE OF length OR TRUNCATE
    ON retrieval_tool_docs FOR EACH STATEMENT EXECUTE FUNCTION retrieval_index_pending();
CREATE TRIGGER retrieval_terms_index_pending AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE
    ON retrieval_tool_terms FOR EACH STATEMENT EXECUTE FUNCTION retrieval_index_pending();

CREATE CONSTRAINT TRIGGER tools_index_bump
    AFTER INSERT OR DELETE OR UPDATE OF name, is_active, is_system, risk, embedding, embedding_model ON tools
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retrieval_index_bump();
CREATE CONSTRAINT TRIGGER retrieval_docs_index_bump
    AFTER INSERT OR DELETE OR UPDATE OF length ON retrieval_tool_docs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retrieval_index_bump();
CREATE CONSTRAINT TRIGGER retrieval_terms_index_bump
    AFTER INSERT OR DELETE OR UPDATE ON retrieval_tool_terms
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION retrieval_index_bump();
CREATE TRIGGER tools_index_bump_truncate AFTER TRUNCATE ON tools
    FOR EACH STATEMENT EXECUTE FUNCTION retrieval_index_bump();
CREATE TRIGGER retrieval_terms_index_bump_truncate AFTER TRUNCATE ON retrieval_tool_terms
    FOR EACH STATEMENT EXECUTE FUNCTION retrieval_index_bump();
"""

DROP = """
DROP TRIGGER retrieval_terms_index_pending ON retrieval_tool_terms;
DROP TRIGGER retrieval_docs_index_pending ON retrieval_tool_docs;
DROP TRIGGER tools_index_pending ON tools;
DROP FUNCTION retrieval_index_pending();
DROP TRIGGER retrieval_terms_index_bump_truncate ON retrieval_tool_terms;
DROP TRIGGER tools_index_bump_truncate ON tools;
DROP TRIGGER retrieval_terms_index_bump ON retrieval_tool_terms;
DROP TRIGGER retrieval_docs_index_bump ON retrieval_tool_docs;
DROP TRIGGER tools_index_bump ON tools;
DROP FUNCTION retrieval_index_bump();
DROP TABLE retrieval_index_state;
DROP SEQUENCE retrieval_index_generation_seq;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0002_name_validators"),
        ("retrieval", "0003_tool_docs_length_index"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
