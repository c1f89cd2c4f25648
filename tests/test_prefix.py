"""One prefix, six spellings, all from ``records.Prefix``: every spelling of the extension's prefix in the package,
the WebUI shim, ``install.py``, the script and the stylesheet is one of them (the script and the stylesheet keep
literal strings, so this is what keeps them in step), and the places that build names use the helper."""

from __future__ import annotations

import re
from pathlib import Path

from sd_embeddings.records import Prefix
from sd_embeddings.webui import settings

ROOT = Path(__file__).resolve().parent.parent
ANY_SPELLING = re.compile(r"sd[-_]?emb\w*|SD_EMB\w*", re.IGNORECASE)


def sources() -> list[Path]:
    return [*sorted((ROOT / "sd_embeddings").rglob("*.py")), *sorted((ROOT / "scripts").glob("*.py")),
            ROOT / "install.py", *sorted((ROOT / "javascript").glob("*.js")), ROOT / "style.css"]


def is_known(word: str) -> bool:
    """``sdemb`` must be followed by a separator or a camel-case part (``sdemb-card``, ``sdembInit``)."""
    if word.startswith(Prefix.CSS) and (len(word) == len(Prefix.CSS) or not word[len(Prefix.CSS)].islower()):
        return True
    return any(word.startswith(spelling) for spelling in (Prefix.PACKAGE, Prefix.SLUG, Prefix.JS, Prefix.ENV,
                                                           Prefix.HEADER))


def test_every_spelling_is_one_of_the_helpers():
    odd = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in sources()
           for match in ANY_SPELLING.finditer(path.read_text(encoding="utf-8")) if not is_known(match.group(0))]
    assert odd == []


def test_the_script_and_stylesheet_use_the_helpers_literals():
    script = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "javascript").glob("*.js")))
    css = (ROOT / "style.css").read_text(encoding="utf-8")
    assert f"window.{Prefix.JS}" in script
    assert f".{Prefix.css('card')}" in css and f'"{Prefix.css("card")}"' in script
    declared = re.findall(r"(?<![\w(-])--([\w-]+)\s*:", css + script)  # our own custom properties (gradio's are read)
    assert declared and all(name.startswith(Prefix.css("")) for name in declared), declared


def test_settings_keys_and_routes_come_from_the_helper():
    assert all(name.startswith(Prefix.setting("")) for name in settings.OPTIONS)
    assert Prefix.setting("watch") == "sd_embeddings_watch" and Prefix.route("embeddings") == \
        "/sd-embeddings/v1/embeddings"
    assert Prefix.css("card") == "sdemb-card" and Prefix.element_id("report") == "sdemb_report"
    assert Prefix.header("Token") == "X-SD-Embeddings-Token"
