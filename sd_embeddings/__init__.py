"""Textual Inversion embeddings: safe decoding, a scanned library, prompt matching and conditioning.

The core never imports the WebUI; ``sd_embeddings.webui`` adapts it to AUTOMATIC1111 and ``sd_embeddings.app``
is the standalone host.
"""

from .errors import EmbeddingError
from .library import Library, scan
from .records import EmbeddingData, Entry, Family, Status

__all__ = ["EmbeddingData", "EmbeddingError", "Entry", "Family", "Library", "Status", "scan"]
__version__ = "0.1.0"
