"""Each doc's static sentence vector becomes the mean of its tool's views (``retrieval.text.tool_views``:
the whole doc, and the name and description alone), as ``retrieval.services`` now writes it.
Microseconds a tool (no model network); the tools' texts are read as they are now."""

from django.db import migrations


def sentence_vectors_of_views(apps, schema_editor):
    from retrieval.embedders import get_sentence_embedder, mean_vectors
    from retrieval.text import tool_views

    Doc = apps.get_model("retrieval", "ToolSearchDoc")
    static = get_sentence_embedder()
    docs = Doc.objects.select_related("tool").only("pk", "tool__name", "tool__description", "tool__parameters")
    last = 0
    while batch := list(docs.filter(pk__gt=last).order_by("pk")[:1000]):
        views = [tool_views(name=d.tool.name, description=d.tool.description, parameters=d.tool.parameters)
                 for d in batch]
        for doc, vector in zip(batch, mean_vectors(static, views), strict=True):
            doc.sentence_vector, doc.sentence_model = vector, static.name
        Doc.objects.bulk_update(batch, ["sentence_vector", "sentence_model"])
        last = batch[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0002_name_validators"),
        ("retrieval", "0007_embedded_hash_recipe"),
    ]

    operations = [
        migrations.RunPython(sentence_vectors_of_views, migrations.RunPython.noop, elidable=True),
    ]
