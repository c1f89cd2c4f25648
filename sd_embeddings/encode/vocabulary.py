"""The standalone host's token table for the inspector: the local model's text encoders (``serve --model PATH``).

``ModelVocabulary(model)`` is a ``library.vectors.Vocabulary``: ``state()`` says ``ready`` once the encoders are
loaded (by Encode or by an earlier lookup), ``loadable`` before (the first lookup loads them, as the first Encode
does) and ``none`` without a model. Token ids are shown as text by the bundled CLIP tokenizer: SD1, SD2 and SDXL
encoders share its vocabulary.
"""

from __future__ import annotations

import logging
import os
import threading

from ..library.vectors import TokenTable, VocabularyError
from ..prompt import tokenizer
from . import loading
from .text_encoders import TextEncoders

logger = logging.getLogger(__name__)
NO_MODEL = "start the host with --model PATH (a local checkpoint or diffusers folder) to see nearest tokens"


def token_text(token: int) -> str:
    return tokenizer.bundled().decode([token])


def token_table(encoders: TextEncoders, source: str) -> TokenTable:
    """Each encoder's input (token) embeddings, by width."""
    tables = {spec.width: model.get_input_embeddings().weight for spec, model in encoders.encoders}
    return TokenTable(tables, token_text, source)


class ModelVocabulary:
    def __init__(self, model: str | os.PathLike | None) -> None:
        self.model = os.fspath(model) if model else None
        self._lock = threading.Lock()
        self._table: tuple[TextEncoders, TokenTable] | None = None

    def state(self) -> tuple[str, str]:
        if not self.model:
            return "none", NO_MODEL
        if loading.loaded(self.model) is not None:
            return "ready", f"the text encoders of {os.path.basename(self.model)}"
        return "loadable", f"loads the text encoders of {self.model} first (the first Encode does too)"

    def table(self) -> TokenTable:
        if not self.model:
            raise VocabularyError(NO_MODEL)
        try:
            encoders = loading.encoders_for(None, self.model)
        except Exception as e:  # a missing, partial or foreign model file: one line for the dialog, the rest logged
            logger.warning("Cannot load the text encoders of %s for the inspector", self.model, exc_info=True)
            raise VocabularyError(f"cannot load the text encoders of {os.path.basename(self.model)} "
                                  f"({type(e).__name__})") from e
        with self._lock:
            if self._table is None or self._table[0] is not encoders:
                self._table = (encoders, token_table(encoders, f"the text encoders of {os.path.basename(self.model)}"))
            return self._table[1]
