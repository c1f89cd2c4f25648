"""Pasting an infotext: compare its ``TI hashes`` with the local library (``infotext.resolve``) and tell the user.

* ``ok`` / ``unhashed``: nothing to say;
* ``changed``: the local file under that name differs from the one used;
* ``renamed``: the hash is a local file under another keyword; the keyword is rewritten in the pasted prompts
  (whole words only), as the Lora extension does for ``Lora hashes``;
* ``missing``: neither name nor hash is here.

Findings go to the console and, inside a gradio event, to a warning toast.
"""

from __future__ import annotations

import html
import re

from ..formats.logs import get_logger
from ..formats.text import printable
from ..library import Library
from ..prompt import infotext
from ..prompt.infotext import Resolved

logger = get_logger(__name__)

PROMPT_FIELDS = ("Prompt", "Negative prompt")


def message(resolved: list[Resolved]) -> str:
    """One line for the toast and the console; ``""`` when every embedding is here as it was used."""
    missing = [r.name for r in resolved if r.status == "missing"]
    changed = [r.name for r in resolved if r.status == "changed"]
    renamed = [f"{r.name} -> {r.keyword}" for r in resolved if r.status == "renamed"]
    parts = []
    if missing:
        parts.append("missing: " + ", ".join(missing))
    if changed:
        parts.append("different file with the same name: " + ", ".join(changed))
    if renamed:
        parts.append("renamed (prompt updated): " + ", ".join(renamed))
    return "Textual inversion: " + "; ".join(parts) if parts else ""


def rename_in(text: str, renamed: dict[str, str]) -> str:
    """Replace each old keyword by its new one, as a whole word (not inside ``my-old_name2``), any case."""
    for old, new in renamed.items():
        text = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", lambda _m, new=new: new, text, flags=re.IGNORECASE)
    return text


def on_infotext_pasted(library: Library, params: dict) -> list[Resolved] | None:
    """Body of the ``on_infotext_pasted`` callback: mutates ``params`` prompts for renamed embeddings."""
    value = params.get(infotext.KEY)
    if not value:
        return None
    resolved = infotext.resolve(infotext.parse_ti_hashes(str(value)), library)
    renamed = {r.name: r.keyword for r in resolved if r.status == "renamed" and r.keyword}
    if renamed:
        for key in PROMPT_FIELDS:
            if isinstance(params.get(key), str):
                params[key] = rename_in(params[key], renamed)
    text = message(resolved)
    if text:
        logger.warning("%s", text)
        _toast(text)
    return resolved


def toast_text(text: str, gradio_version: str) -> str:
    """The toast's text: pasted names are a stranger's text. Escaped controls always; HTML escaped where gradio
    shows toasts as HTML (4 and later; 3.x shows them as text, where an entity would be shown as typed)."""
    text, major = printable(text), re.match(r"\d+", gradio_version)
    return text if major and int(major.group()) < 4 else html.escape(text, quote=False)


def _toast(text: str) -> None:
    try:
        import gradio as gr

        warn = getattr(gr, "Warning", None)
        if warn is not None:
            warn(toast_text(text, getattr(gr, "__version__", "4")))
    except Exception:  # outside a gradio event there is nowhere to show it; the console has it
        logger.debug("No gradio event to show the paste warning in", exc_info=True)
