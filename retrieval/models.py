"""Retrieval keeps its vectors on the rows it indexes (tools, template versions)."""
