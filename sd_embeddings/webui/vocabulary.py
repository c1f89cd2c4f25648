"""The WebUI's token table for the inspector: the token embeddings of the model loaded now.

``WebUIVocabulary(host)`` is a ``library.vectors.Vocabulary`` over ``host.token_embeddings(model)`` (A1111: every
``torch.nn.Embedding`` of the CLIP vocabulary's size under the model's text conditioning, by width: 768 CLIP-L,
1024 OpenCLIP-H, 1280 OpenCLIP-G). It never loads a model: before one is loaded ``state()`` says so. The table is
the model's own weights (no copy); lookups read it in blocks (``library.vectors.nearest_tokens``).
"""

from __future__ import annotations

from typing import Any

from ..library.vectors import TokenTable, VocabularyError
from ..prompt import tokenizer
from .host import Host


def token_text(token: int) -> str:
    return tokenizer.bundled().decode([token])


def model_name(model: Any) -> str:
    info = getattr(model, "sd_checkpoint_info", None)
    name = getattr(info, "name_for_extra", None) or getattr(info, "title", None)
    return f"the WebUI's model {name}" if isinstance(name, str) and name else "the WebUI's model"


class WebUIVocabulary:
    def __init__(self, host: Host) -> None:
        self.host = host

    def _tables(self) -> tuple[Any, dict[int, Any]]:
        model = self.host.current_model()
        if model is None:
            raise VocabularyError("no model is loaded yet")
        tables = self.host.token_embeddings(model)
        if not tables:
            raise VocabularyError("the loaded model has no CLIP token embeddings this extension knows")
        return model, tables

    def state(self) -> tuple[str, str]:
        try:
            model, _ = self._tables()
        except VocabularyError as e:
            return "none", str(e)
        return "ready", model_name(model)

    def table(self) -> TokenTable:
        model, tables = self._tables()
        return TokenTable(tables, token_text, model_name(model))
