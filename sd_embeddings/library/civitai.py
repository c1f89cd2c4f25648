"""Civitai sidecars: what Civitai Helper and Civitai Browser+ leave beside an embedding, read and never written.

Beside ``x.safetensors`` (names compared case-insensitively, found by ``sidecars.find_sidecars``):

- ``x.civitai.info``: Civitai Helper (and older Civitai Browser+) store the Civitai API's answer for the file, a
  *model version* (``baseModel``, ``trainedWords``, ``description`` in HTML, ``model: {name}``, ``name``,
  ``images: [{url, ...}]``; Civitai Helper from 1.7.2 adds the model's ``description`` to ``model``) or, from
  older Browser+, the *model* (``name``, ``description``, ``modelVersions``).
- ``x.api_info.json``: Civitai Browser+ ("save API info"): the model, as above.
- ``x.json``: the WebUI's own user metadata (``description``, ``notes``; its LoRA page adds ``sd version``,
  ``activation text``, ``preferred weight``, ``negative text``), into which Civitai Browser+ merges ``activation
  text``, a plain-text ``description``, ``sd version`` (``SD1``/``SD2``/``SDXL``/``Other``), ``modelId``,
  ``modelVersionId`` and ``sha256``. Read here through ``summary(entry, metadata)``; writes of our own keys keep
  every other key (``Library.save_user_metadata`` merges).

``summary`` combines them into a ``CivitaiSummary``: the base model label (``SD 1.5``, ``SDXL 1.0``, ``Pony``,
``Illustrious``: vectors tell the family, not these), a plain-text description, trigger words, names, and the
reason a sidecar was ignored. A sidecar comes from strangers: it is read within ``LIMITS`` (a FIFO or folder is
refused at once), only strings of bounded length are taken from it, HTML becomes plain text, and anything wrong
costs only that sidecar, with one warning line and the reason kept for the dialog. Parsed files are cached by
their stamp, so listing cards costs one ``stat`` per sidecar.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import unicodedata
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from ..errors import CorruptFileError
from ..formats import json_limits
from ..formats.logs import get_logger
from ..formats.text import clean_json
from ..records import Entry, Family
from .containment import OutsideError, Root

logger = get_logger(__name__)

INFO_SUFFIXES = (".civitai.info", ".api_info.json")
"""Sidecar names after the stem, in the order they are looked for."""
LIMITS = json_limits.JsonLimits(size=2 * 1024 * 1024, values=200_000, containers=50_000, strings=400_000)
"""A Civitai answer with twenty images and their prompts is some 100 KB; a bigger file is refused unparsed."""
LABEL_LIMIT = 40
DESCRIPTION_LIMIT = 4000
HTML_LIMIT = 200_000
"""HTML beyond this many characters is not parsed (the text kept is at most ``DESCRIPTION_LIMIT``)."""
TRIGGER_LIMIT = 20
CACHE_SIZE = 16_384
COARSE_LABELS = frozenset({"", "sd1", "sd2", "sdxl", "other", "unknown"})
"""``sd version`` values that say no more than the vectors' own family (Browser+ and the WebUI write these)."""
SDXL_BASES = ("sdxl", "pony", "illustrious", "noobai", "playground")


@dataclass(frozen=True)
class CivitaiFile:
    """What one ``.civitai.info``/``.api_info.json`` file says, or why it was ignored (``problem``)."""

    base_model: str = ""
    description: str = ""
    trigger_words: tuple[str, ...] = ()
    model_name: str = ""
    version_name: str = ""
    images: int = 0
    problem: str = ""


@dataclass(frozen=True)
class CivitaiSummary:
    """Everything the card and the dialog show from Civitai sidecars (empty strings when nothing is known)."""

    base_model: str = ""
    specific: bool = False
    """The label says more than SD1/SD2/SDXL (``SD 1.5``, ``Pony``): the card shows it."""
    description: str = ""
    trigger_words: tuple[str, ...] = ()
    model_name: str = ""
    version_name: str = ""
    images: int = 0
    sources: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    family: Family | None = None
    """The model family the label names, when it names one (to compare with the vectors' family)."""

    def as_dict(self) -> dict[str, Any]:
        return {"base_model": self.base_model, "specific": self.specific, "description": self.description,
                "trigger_words": list(self.trigger_words), "model_name": self.model_name,
                "version_name": self.version_name, "images": self.images, "sources": list(self.sources),
                "problems": list(self.problems), "family": self.family.value if self.family else ""}


def label(value: object, limit: int = LABEL_LIMIT) -> str:
    """A short one-line text from a stranger's value: strings only, control and format characters dropped."""
    if not isinstance(value, str):
        return ""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in value[: limit * 4])
    return " ".join(text.split())[:limit]


def base_model_family(base_model: str) -> Family | None:
    """``SD 1.5`` -> SD1, ``SD 2.1 768`` -> SD2, ``SDXL 1.0``/``Pony``/``Illustrious`` -> SDXL, others None."""
    key = base_model.casefold().replace(" ", "")
    if key.startswith("sd1"):
        return Family.SD1
    if key.startswith("sd2"):
        return Family.SD2
    if key.startswith(SDXL_BASES):
        return Family.SDXL
    return None


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; script and style bodies are dropped, blocks become line breaks."""

    BLOCKS = frozenset({"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "hr", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style"):
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: object, limit: int = DESCRIPTION_LIMIT) -> str:
    """The readable text of Civitai's HTML description (never HTML: the page escapes it again when it shows it)."""
    if not isinstance(html, str) or not html:
        return ""
    parser = _TextOnly()
    parser.feed(html[:HTML_LIMIT])
    parser.close()
    lines = (" ".join(label(line, limit).split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)[:limit]


def _words(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    words = (label(word, 100) for word in value[: TRIGGER_LIMIT * 2])
    return tuple(dict.fromkeys(word for word in words if word))[:TRIGGER_LIMIT]


def _version_for(model: dict, filename: str) -> dict:
    """The model's version that lists ``filename`` among its files, else its first version."""
    versions = [v for v in model.get("modelVersions") or [] if isinstance(v, dict)] \
        if isinstance(model.get("modelVersions"), list) else []
    for version in versions:
        files = version.get("files") if isinstance(version.get("files"), list) else []
        if any(isinstance(f, dict) and f.get("name") == filename for f in files):
            return version
    return versions[0] if versions else {}


def extract(data: object, filename: str) -> CivitaiFile:
    """The fields we show, from a Civitai model version or model (see the module docstring)."""
    if not isinstance(data, dict):
        return CivitaiFile(problem="not a JSON object")
    is_model = "modelVersions" in data
    version = _version_for(data, filename) if is_model else data
    model = data if is_model else (data.get("model") if isinstance(data.get("model"), dict) else {})
    # the model's own description first: the model form has it at the top; Civitai Helper from 1.7.2 (zixaphir)
    # moves it into ``model`` and keeps the version's notes at the top, where older files had the model's
    description = html_to_text(model.get("description")) or html_to_text(version.get("description"))
    images = version.get("images")
    return CivitaiFile(base_model=label(version.get("baseModel")), description=description,
                       trigger_words=_words(version.get("trainedWords")), model_name=label(model.get("name"), 120),
                       version_name=label(version.get("name"), 80),
                       images=len(images) if isinstance(images, list) else 0)


def _read_json(path: str, root: Root) -> object:
    raw = root.read(path, LIMITS.size)  # a plain file inside the embeddings folder only (containment)
    json_limits.check(raw, LIMITS, path, "the Civitai sidecar")
    return clean_json(json.loads(raw.decode("utf-8", errors="replace")))


def _parse(path: str, filename: str, root: Root) -> CivitaiFile:
    try:
        found = extract(_read_json(path, root), filename)
    except (CorruptFileError, OutsideError) as e:
        found = CivitaiFile(problem=e.reason)
    except (OSError, ValueError, RecursionError, MemoryError) as e:  # UnicodeError is a ValueError
        found = CivitaiFile(problem=f"unreadable ({type(e).__name__}: {label(str(e), 100)})")
    if found.problem:
        logger.warning("Ignoring Civitai sidecar %s: %s", path, found.problem)
    return found


@dataclass
class _Cache:
    items: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache = _Cache()


def read_file(path: str, filename: str, root: Root | None = None) -> CivitaiFile:
    """``extract`` of the sidecar at ``path`` for the embedding file ``filename``, cached by the sidecar's stamp;
    read only inside ``root`` (the entry's embeddings folder; default: the folder the sidecar sits in)."""
    try:
        info = os.stat(path)
    except OSError as e:
        return CivitaiFile(problem=f"cannot be read ({e.strerror or type(e).__name__})")
    key, stamp = (path, filename), (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
    with _cache.lock:
        hit = _cache.items.get(key)
        if hit is not None and hit[0] == stamp:
            _cache.items.move_to_end(key)
            return hit[1]
    parsed = _parse(path, filename, root or Root.of(os.path.dirname(path)))
    with _cache.lock:
        _cache.items[key] = (stamp, parsed)
        while len(_cache.items) > CACHE_SIZE:
            _cache.items.popitem(last=False)
    return parsed


def _from_metadata(metadata: dict) -> CivitaiFile:
    """The Civitai-like keys of ``x.json`` (the WebUI's LoRA keys, Browser+'s, or a pasted API answer)."""
    nested = extract(metadata, "") if ("modelVersions" in metadata or "baseModel" in metadata) else CivitaiFile()
    return CivitaiFile(base_model=nested.base_model or label(metadata.get("sd version")),
                       trigger_words=nested.trigger_words or _words(metadata.get("activation text")),
                       model_name=nested.model_name, version_name=nested.version_name, images=nested.images)


def summary(entry: Entry, path: str | None, metadata: dict, metadata_name: str = "") -> CivitaiSummary:
    """What the Civitai sidecar at ``path`` (None: none) and the user metadata ``metadata`` (read from the file
    ``metadata_name``) say about ``entry``. The Civitai file comes first for every field; ``x.json`` fills what it
    leaves empty."""
    own = read_file(path, entry.filename, Root.known(entry.root)) if path else CivitaiFile()
    local = _from_metadata(metadata) if metadata else CivitaiFile()
    base = own.base_model or local.base_model
    sources = tuple(name for name, used in ((os.path.basename(path or ""), bool(path) and not own.problem),
                                            (metadata_name, local != CivitaiFile())) if used and name)
    return CivitaiSummary(
        base_model=base, specific=base.casefold().replace(" ", "") not in COARSE_LABELS,
        description=own.description, trigger_words=own.trigger_words or local.trigger_words,
        model_name=own.model_name or local.model_name, version_name=own.version_name or local.version_name,
        images=own.images or local.images, sources=sources,
        problems=(f"{os.path.basename(path or '')}: {own.problem}",) if own.problem else (),
        family=base_model_family(base))
