"""Prompt syntax, the CLIP tokenizer, 75-token chunks with embedding placements, diagnostics and infotext."""
