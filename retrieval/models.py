"""Retrieval's own index rows. Dense vectors live on the rows they index
(``catalog.Tool.embedding`` with its HNSW index); the keyword side lives here.

``ToolSearchDoc`` is one row per tool: the indexed text, its fingerprint, its
length in lexemes (BM25's document length) and the fingerprint of what the
tool's current embedding was computed from: the text and the recipe
(``retrieval.text.embedding_digest``), what ``tool_embeddings_refresh`` compares
to stay resumable. ``ToolSearchTerm`` is the inverted index: one row per
(tool, lexeme) with the term frequency, lexemes coming from PostgreSQL's own
``to_tsvector`` so the query side is analysed by exactly the same code. BM25 is
scored in SQL from these rows (``retrieval.selectors``). The doc also holds its
static sentence vector (``retrieval.embedders.StaticEmbedder``, the mean of the tool's
``retrieval.text.tool_views``; cheap, so written with the text): search matches each
sentence of a multi-ask request against it.
"""

from django.db import models
from pgvector.django import HnswIndex, VectorField

from catalog.models import EMBEDDING_DIMENSIONS

SENTENCE_DIMENSIONS = 256  # retrieval.embedders.StaticEmbedder.dim


class ToolSearchDoc(models.Model):
    tool = models.OneToOneField(
        "catalog.Tool", on_delete=models.CASCADE, primary_key=True, related_name="search_doc"
    )
    text = models.TextField()
    text_hash = models.CharField(max_length=32)
    length = models.PositiveIntegerField(default=0, help_text="Lexeme occurrences (BM25 document length).")
    embedded_hash = models.CharField(
        max_length=32, blank=True, help_text="embedding_digest of the text_hash the tool's embedding was computed from."
    )
    sentence_vector = VectorField(dimensions=SENTENCE_DIMENSIONS, null=True, blank=True)
    sentence_model = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "retrieval_tool_docs"
        indexes = [
            # BM25's collection statistics (count, average length) by an index-only scan.
            models.Index(fields=["length"], name="retrieval_docs_length"),
            HnswIndex(name="retrieval_docs_sentence_hnsw", fields=["sentence_vector"], m=16, ef_construction=64,
                      opclasses=["vector_cosine_ops"]),
        ]

    def __str__(self) -> str:
        return f"search doc of tool {self.tool_id}"


class ToolSearchTerm(models.Model):
    pk = models.CompositePrimaryKey("doc_id", "lexeme")
    # No separate index: the primary key (tool_id, lexeme) already leads with the column.
    doc = models.ForeignKey(
        ToolSearchDoc, on_delete=models.CASCADE, related_name="terms", db_column="tool_id", db_index=False
    )
    lexeme = models.TextField()
    tf = models.PositiveSmallIntegerField()
    doc_length = models.PositiveIntegerField(help_text="Copy of the doc's length: postings scan without a join.")

    class Meta:
        db_table = "retrieval_tool_terms"
        indexes = [
            # Postings lookup by lexeme as an index-only scan.
            models.Index(fields=["lexeme"], include=["doc", "tf", "doc_length"], name="retrieval_terms_lexeme"),
        ]


class DirectoryEntry(models.Model):
    """One indexed text of a template version for the agent directory (description or an example)."""

    version = models.ForeignKey(
        "templates_app.AgentTemplateVersion", on_delete=models.CASCADE, related_name="directory_entries"
    )
    position = models.PositiveSmallIntegerField()
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=200)

    class Meta:
        db_table = "agent_directory_entries"
        ordering = ["version_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "embedding_model", "position"], name="directory_entry_unique"),
        ]
        indexes = [
            HnswIndex(name="directory_entries_hnsw", fields=["embedding"], m=16, ef_construction=64,
                      opclasses=["vector_cosine_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.version}: {self.text[:60]}"
