"""``agent_template_tools`` become derived from each version's ``tool_policy``.

Before, the links were edited by hand in the admin and the runtime never read them (it reads
``tool_policy``). They are rebuilt here from the policies: each catalog tool a version's policy
names, ``required`` (``required_tools``) or ``allowed`` (``allowlist``).
"""

from django.db import migrations


def rebuild(apps, schema_editor):
    Version = apps.get_model("templates_app", "AgentTemplateVersion")
    Link = apps.get_model("templates_app", "AgentTemplateTool")
    Tool = apps.get_model("catalog", "Tool")
    Link.objects.all().delete()
    tool_ids = dict(Tool.objects.values_list("name", "id"))
    links = []
    for version_id, policy in Version.objects.values_list("id", "tool_policy").iterator():
        required = set((policy or {}).get("required_tools") or [])
        for name in sorted(required | set((policy or {}).get("allowlist") or [])):
            if name in tool_ids:
                links.append(Link(version_id=version_id, tool_id=tool_ids[name],
                                  role="required" if name in required else "allowed"))
    Link.objects.bulk_create(links, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("templates_app", "0003_name_validators"), ("catalog", "0002_name_validators")]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
