"""The database refuses edits of a template version's content (versions are immutable).

Only the directory embedding (``embedding``, ``embedding_model``) may be refreshed.
"""

from django.db import migrations

CONTENT_COLUMNS = [
    "template_id", "version", "agent_kind", "prompt_pack", "llm_config", "execution_policy",
    "tool_policy", "rules", "description", "tags", "examples", "note", "created_at",
]

_changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CONTENT_COLUMNS)

CREATE = f"""
CREATE OR REPLACE FUNCTION agent_template_versions_immutable() RETURNS trigger AS $$
BEGIN
    IF {_changed} THEN
        RAISE EXCEPTION 'agent template version % is immutable; create a new version', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER agent_template_versions_immutable
    BEFORE UPDATE ON agent_template_versions
    FOR EACH ROW EXECUTE FUNCTION agent_template_versions_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS agent_template_versions_immutable ON agent_template_versions;
DROP FUNCTION IF EXISTS agent_template_versions_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
