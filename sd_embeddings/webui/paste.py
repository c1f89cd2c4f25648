"""Pasting an infotext: compare its ``TI hashes`` with the local library and tell the user what differs.

* same name, same hash: nothing to say;
* same name, other hash: "changed" (the local file differs from the one used);
* name unknown but the hash is a local file under another keyword: "renamed"; the keyword is rewritten in the
  pasted prompts (whole words only), as the Lora extension does for ``Lora hashes``;
* neither: "missing".

Findings go to the console and, inside a gradio event, to a warning toast.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ..library import Library
from ..records import Entry

logger = logging.getLogger(__name__)


def parse_ti_hashes(value: str) -> list[tuple[str, str]]:
    """``"a: 0123456789ab, b: ..."`` -> ``[("a", "0123456789ab"), ...]`` (names never hold ``:`` or ``,``)."""
    pairs: list[tuple[str, str]] = []
    for item in str(value or "").split(","):
        name, sep, short = item.partition(":")
        if sep and name.strip():
            pairs.append((name.strip(), short.strip().lower()))
    return pairs


@dataclass
class PasteReport:
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.missing or self.changed or self.renamed)

    def message(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing: " + ", ".join(self.missing))
        if self.changed:
            parts.append("different file with the same name: " + ", ".join(self.changed))
        if self.renamed:
            parts.append("renamed (prompt updated): " + ", ".join(f"{a} -> {b}" for a, b in self.renamed.items()))
        return "Textual inversion: " + "; ".join(parts)


def _by_shorthash(library: Library) -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for entry in library.entries:
        if entry.shorthash:
            table.setdefault(entry.shorthash, entry)
    return table


def check(library: Library, pairs: list[tuple[str, str]]) -> PasteReport:
    report = PasteReport()
    hashes = None
    for name, short in pairs:
        entry = library.get(name)
        if entry is not None:
            local = library.ensure_hash(entry) or ""
            if short and local and not local.startswith(short):
                report.changed.append(name)
            continue
        hashes = hashes if hashes is not None else _by_shorthash(library)
        other = hashes.get(short) if short else None
        if other is not None:
            report.renamed[name] = other.keyword
        else:
            report.missing.append(name)
    return report


def rename_in(text: str, renamed: dict[str, str]) -> str:
    for old, new in renamed.items():
        text = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", lambda _m, new=new: new, text, flags=re.IGNORECASE)
    return text


def on_infotext_pasted(library: Library, params: dict) -> PasteReport | None:
    """Body of the ``on_infotext_pasted`` callback: mutates ``params`` prompts for renamed embeddings."""
    value = params.get("TI hashes")
    if not value:
        return None
    report = check(library, parse_ti_hashes(value))
    if report.renamed:
        for key in ("Prompt", "Negative prompt"):
            if isinstance(params.get(key), str):
                params[key] = rename_in(params[key], report.renamed)
    if report.any:
        message = report.message()
        logger.warning("%s", message)
        _toast(message)
    return report


def _toast(message: str) -> None:
    try:
        import gradio as gr

        warn = getattr(gr, "Warning", None)
        if warn is not None:
            warn(message)
    except Exception:  # outside a gradio event there is nowhere to show it; the console has it
        logger.debug("No gradio event to show the paste warning in", exc_info=True)
