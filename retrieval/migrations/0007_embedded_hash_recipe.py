"""``embedded_hash`` now fingerprints the text and the vector recipe (``retrieval.text.embedding_digest``):
every stored hash differs, so the next ``reindex_embeddings`` re-embeds every tool. No SQL."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("retrieval", "0006_bm25f_terms"),
    ]

    operations = [
        migrations.AlterField(
            model_name="toolsearchdoc",
            name="embedded_hash",
            field=models.CharField(
                blank=True, max_length=32,
                help_text="embedding_digest of the text_hash the tool's embedding was computed from.",
            ),
        ),
    ]
