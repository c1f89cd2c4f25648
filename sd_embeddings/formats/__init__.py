"""Bytes -> vectors for every embedding format, the safe pickle reader, and the writers (safetensors, images)."""
