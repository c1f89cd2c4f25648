"""Plain records shared by every room: model families, statuses, decoded vectors and library entries."""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SD1_WIDTH = 768
SD2_WIDTH = 1024
SDXL_G_WIDTH = 1280
SDXL_KEYS = ("clip_l", "clip_g")



class Prefix:
    """The extension's one prefix, spelled as each place needs it. ``javascript/`` and ``style.css`` keep literal
    strings; ``tests/test_prefix.py`` checks that every spelling anywhere is one of these."""

    PACKAGE = "sd_embeddings"
    """The Python package; settings keys and WebUI callback names (``sd_embeddings_watch``)."""
    SLUG = "sd-embeddings"
    """HTTP routes (``/sd-embeddings/v1/...``), the cache folder, what the console and README call it."""
    CSS = "sdemb"
    """CSS classes and custom properties (``sdemb-card``, ``--sdemb-hue``), element ids (``sdemb_report``)."""
    JS = "sdEmbeddings"
    """The script's one global namespace, ``window.sdEmbeddings``."""
    ENV = "SD_EMBEDDINGS"
    """Environment variables (``SD_EMBEDDINGS_...``)."""
    HEADER = "SD-Embeddings"
    """HTTP headers (``X-SD-Embeddings-Token``)."""

    @classmethod
    def setting(cls, name: str) -> str:
        return f"{cls.PACKAGE}_{name}"

    @classmethod
    def route(cls, path: str = "") -> str:
        return f"/{cls.SLUG}/v1/{path}".rstrip("/")

    @classmethod
    def css(cls, name: str) -> str:
        return f"{cls.CSS}-{name}"

    @classmethod
    def element_id(cls, name: str) -> str:
        return f"{cls.CSS}_{name}"

    @classmethod
    def header(cls, name: str) -> str:
        return f"X-{cls.HEADER}-{name}"

class Family(str, enum.Enum):
    """Model family an embedding was trained for, told apart by vector width."""

    SD1 = "sd1"
    SD2 = "sd2"
    SDXL = "sdxl"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL", "unknown": "?"}[self.value]

    @property
    def long_label(self) -> str:
        return {"sd1": "SD1.5", "sd2": "SD2.x", "sdxl": "SDXL", "unknown": "unknown model"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Family:
        key = text.strip().lower().replace(".", "").replace("-", "").replace(" ", "")
        aliases = {"sd1": cls.SD1, "sd15": cls.SD1, "sd1x": cls.SD1, "sd2": cls.SD2, "sd21": cls.SD2,
                   "sd2x": cls.SD2, "sdxl": cls.SDXL, "xl": cls.SDXL}
        if key not in aliases:
            raise ValueError(f"unknown model family {text!r}; expected sd1, sd2 or sdxl")
        return aliases[key]


class Status(str, enum.Enum):
    LOADED = "loaded"
    INCOMPATIBLE = "incompatible"
    UNSAFE = "unsafe"
    CORRUPT = "corrupt"
    NOT_AN_EMBEDDING = "not-an-embedding"
    UNSUPPORTED = "unsupported"
    DUPLICATE = "duplicate"

    @property
    def is_problem(self) -> bool:
        """Broken files: what makes the CLI exit 1 and what the tab lists under "problems"."""
        return self in (Status.UNSAFE, Status.CORRUPT, Status.UNSUPPORTED, Status.NOT_AN_EMBEDDING)


def family_for_widths(widths: dict[str, int]) -> Family:
    """Family from the width of each tensor part (``""`` = single tensor, or ``clip_l``/``clip_g``)."""
    if "clip_l" in widths and "clip_g" in widths:
        if widths["clip_l"] == SD1_WIDTH and widths["clip_g"] == SDXL_G_WIDTH:
            return Family.SDXL
        return Family.UNKNOWN
    if len(widths) != 1:
        return Family.UNKNOWN
    (width,) = widths.values()
    return {SD1_WIDTH: Family.SD1, SD2_WIDTH: Family.SD2}.get(width, Family.UNKNOWN)


_SHAPES: dict[tuple, Shape] = {}


@dataclass(frozen=True)
class Shape:
    """What a file holds, known from its header without loading tensors.

    ``parts`` maps a part key to ``(rows, width)``: ``{"": (2, 768)}`` for SD1/SD2 files,
    ``{"clip_l": (8, 768), "clip_g": (8, 1280)}`` for SDXL.
    """

    parts: dict[str, tuple[int, int]]

    @classmethod
    def shared(cls, parts: dict[str, tuple[int, int]]) -> Shape:
        """One object per distinct shape: a library of 10,000 files has a few dozen (rows x width per family)."""
        key = tuple(parts.items())
        found = _SHAPES.get(key)
        if found is None:
            found = cls(dict(parts))
            if len(_SHAPES) < 4096:  # a library of odd shapes still gets its objects, just not shared
                _SHAPES[key] = found
        return found

    @property
    def vectors(self) -> int:
        if "clip_g" in self.parts:
            return self.parts["clip_g"][0]
        return max((rows for rows, _ in self.parts.values()), default=0)

    @property
    def width(self) -> int:
        """The WebUI's ``Embedding.shape``: the width, summed over SDXL's two parts."""
        if "clip_l" in self.parts and "clip_g" in self.parts:
            return self.parts["clip_l"][1] + self.parts["clip_g"][1]
        return sum(width for _, width in self.parts.values())

    @functools.cached_property
    def family(self) -> Family:
        return family_for_widths({key: width for key, (_, width) in self.parts.items()})

    def describe(self) -> str:
        return ", ".join(f"{key or 'vectors'} {rows}x{width}" for key, (rows, width) in self.parts.items())


@dataclass
class EmbeddingData:
    """Decoded content of one embedding file. ``vec`` is float32: one tensor, or SDXL's ``clip_l``/``clip_g``."""

    vec: torch.Tensor | dict[str, torch.Tensor]
    layout: str
    name: str | None = None
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> Shape:
        tensors = self.vec if isinstance(self.vec, dict) else {"": self.vec}
        return Shape({key: (int(t.shape[0]), int(t.shape[-1])) for key, t in tensors.items()})


@dataclass(frozen=True, slots=True)
class Header:
    """What scanning learns from a file without keeping its tensors."""

    shape: Shape
    layout: str
    name: str | None = None
    step: int | None = None
    sd_checkpoint: str | None = None
    sd_checkpoint_name: str | None = None


@dataclass(frozen=True, slots=True)
class Sidecars:
    """Files next to an embedding: preview image, description text, user metadata JSON."""

    preview: str | None = None
    description_file: str | None = None
    metadata_file: str | None = None
    civitai_file: str | None = None
    """``x.civitai.info`` (Civitai Helper) or ``x.api_info.json`` (Civitai Browser+), read by ``library.civitai``."""


NO_SIDECARS = Sidecars()
"""What most files have: one shared object (frozen: a change is a new ``Sidecars``)."""


def stat_stamp(info: os.stat_result) -> tuple[int, int, int, int]:
    """``Entry.stamp`` of a file as it is now on disk."""
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


@dataclass(slots=True)
class Entry:
    """One file found by a scan, whatever its state. Paths are absolute; ``folder`` is relative to its root.

    Slots, not a ``__dict__`` per object: a library holds two of these per file (the scan's record and the public
    entry), 10,000 files 20,000 objects."""

    path: str
    root: str
    folder: str
    keyword: str
    format: str
    size: int
    mtime_ns: int
    status: Status
    reason: str = ""
    header: Header | None = None
    sidecars: Sidecars = NO_SIDECARS
    sha256: str | None = None
    collides_with: Sequence[str] = ()
    """Paths of the other files with this keyword (a list on public entries that collide; else one shared ``()``)."""
    file_status: Status | None = None
    """Status from reading the file alone (before compatibility and collisions are applied)."""
    file_reason: str = ""
    verified: bool = False
    ctime_ns: int = 0
    inode: int = 0
    fingerprint: str | None = None
    """sha256 of the vectors themselves (``library.vectors.fingerprint``), known once they were decoded."""

    @property
    def stamp(self) -> tuple[int, int, int, int]:
        """What says the file is still the one scanned: a copy can keep size and mtime, never ctime and inode."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)
    """True once every value was decoded and checked (scans read headers only; a background pass verifies)."""

    @property
    def shorthash(self) -> str | None:
        return self.sha256[:12] if self.sha256 else None

    @property
    def family(self) -> Family:
        return self.header.shape.family if self.header else Family.UNKNOWN

    @property
    def vectors(self) -> int:
        return self.header.shape.vectors if self.header else 0

    @property
    def width(self) -> int:
        return self.header.shape.width if self.header else 0

    @property
    def relpath(self) -> str:
        """Path relative to the scanned root, always with ``/``."""
        return f"{self.folder}/{self.filename}" if self.folder else self.filename

    @property
    def filename(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def is_usable(self) -> bool:
        return self.status is Status.LOADED

    @property
    def is_plain_image(self) -> bool:
        """A picture with no embedding in it: listed quietly, not counted as a broken file."""
        return self.format == "image" and self.status is Status.NOT_AN_EMBEDDING

    @property
    def is_problem(self) -> bool:
        """A broken file worth telling the user about (unsafe, corrupt, unsupported, not an embedding)."""
        return self.status.is_problem and not self.is_plain_image
