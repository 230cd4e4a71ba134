"""Renderings of the snapshot model: text and rich tables, and the diagnosis."""
