"""The extension's settings: own section in the WebUI's settings page, keys share the ``sd_embeddings_`` prefix."""

from __future__ import annotations

from typing import Any

from ..records import Prefix

key = Prefix.setting
SECTION = (Prefix.PACKAGE, f"Textual Inversion ({Prefix.SLUG})")
OWN_FOLDER = key("own_folder")
FOLDER_ORDER = ("WebUI embeddings folder first", "Extension folder first")

# key: (default, label, info); a tuple default means "radio with these choices, first is the default"
OPTIONS: dict[str, tuple[Any, str, str]] = {
    key("fix_comma_backtrack"): (
        True, "Fix: keep embeddings when a long prompt is split at a comma",
        "The WebUI turns an embedding right after the last comma of a full 75-token chunk into '!' tokens "
        "(comma_padding_backtrack). Off = the WebUI's exact behaviour."),
    key("fix_cond_cache"): (
        True, "Fix: regenerate conditioning when an embedding file changes",
        "Adds the embeddings' state to the WebUI's conditioning cache key. Off = a changed file is ignored until "
        "the prompt changes."),
    key("watch"): (
        True, "Pick up new, changed and deleted files in every sub-folder before each generation",
        "inotify on Linux, a polling thread elsewhere. Off = only added/removed files (one stat per folder); "
        "overwritten files need Refresh."),
    key("auto_negative"): (
        True, "Clicking a negative embedding's card puts it into the negative prompt",
        "Negative = a 'negative'/'neg' folder, 'negative' in the name, or the card's own setting."),
    key("collision_order"): (
        FOLDER_ORDER, "When two files at the same folder depth share a keyword, prefer",
        "Files in shallower folders always win first; every other duplicate is listed in the tab with the reason."),
    key("extra_folders"): (
        "", "Extra embedding folders (one per line or separated by ';')",
        "Scanned with sub-folders, in addition to --embeddings-dir."),
    OWN_FOLDER: (
        False, "Also use the extension's own embeddings/ folder",
        "That folder is for the standalone host. Off = only --embeddings-dir and the extra folders, as other "
        "extensions that read the embedding database (tag autocomplete) expect."),
    key("bare_keywords"): (
        True, "Bare keywords trigger embeddings",
        "On (the WebUI's way): typing an embedding's name anywhere uses it. Off: only embedding:name (ComfyUI's "
        "syntax, always accepted) does, so an embedding named like a common word ('style') leaves that word alone; "
        "clicking a card then inserts embedding:name."),
    key("diagnostics"): (
        True, "Warn under the generation info about embedding names that were not applied",
        "For example an SDXL embedding on an SD1.5 model, an unsafe file, or Easy_Negative for EasyNegative."),
}


def option(name: str) -> Any:
    """The current value of one of our options (its default while the WebUI has none stored)."""
    from modules import shared

    default = OPTIONS[name][0]
    value = getattr(shared.opts, "data", {}).get(name)
    if value is None:
        return default[0] if isinstance(default, tuple) else default
    return value


def webui_option(name: str, default: Any) -> Any:
    """One of the WebUI's own options (its default on a WebUI that does not have it)."""
    from modules import shared

    return getattr(shared.opts, name, default)


def bare_keywords() -> bool:
    """Whether a keyword typed alone uses its embedding (else only ``embedding:name`` does)."""
    return bool(option(key("bare_keywords")))


def auto_negative() -> bool:
    """Whether negative-looking embeddings (name or folder) are inserted into the negative prompt by themselves."""
    return bool(option(key("auto_negative")))


WEBUI_SORT_FIELDS = {"Path": "path", "Name": "name", "Date Created": "mtime", "Date Modified": "mtime"}
"""The WebUI's ``extra_networks_card_order_field`` -> our sort key (we keep one file time: modified)."""


def tab_options() -> dict[str, str]:
    """The WebUI's own extra-networks settings that shape our tab: hidden entries and the initial order.

    ``extra_networks_hidden_models`` -> ``hidden_models``; ``extra_networks_card_order_field`` and
    ``extra_networks_card_order`` -> ``sort``/``sort_dir``. Older WebUIs without a setting get its default.
    """
    from modules import shared

    from ..tab import cards

    opts = shared.opts
    hidden = getattr(opts, "extra_networks_hidden_models", cards.HIDDEN_DEFAULT)
    field = getattr(opts, "extra_networks_card_order_field", "Path")
    order = getattr(opts, "extra_networks_card_order", "Ascending")
    return {"hidden_models": hidden if hidden in cards.HIDDEN_MODES else cards.HIDDEN_DEFAULT,
            "sort": WEBUI_SORT_FIELDS.get(field, "name"),
            "sort_dir": "desc" if order == "Descending" else "asc"}


def extra_folders() -> list[str]:
    text = str(option(key("extra_folders")) or "")
    return [part.strip() for part in text.replace(";", "\n").splitlines() if part.strip()]


def add_settings(on_change: dict[str, Any]) -> None:
    """``on_ui_settings`` callback body; ``on_change`` maps keys to functions run when a value changes."""
    import gradio as gr
    from modules import shared

    for name, (default, label, info) in OPTIONS.items():
        common = {"onchange": on_change.get(name), "section": SECTION}
        if isinstance(default, tuple):
            item = shared.OptionInfo(default[0], label, gr.Radio, {"choices": list(default)}, **common)
        elif name == key("extra_folders"):
            item = shared.OptionInfo(default, label, gr.Textbox, {"lines": 2}, **common)
        else:
            item = shared.OptionInfo(default, label, **common)
        shared.opts.add_option(name, item.info(info))
