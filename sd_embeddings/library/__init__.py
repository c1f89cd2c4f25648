"""Folders -> entries: the walk, collisions, sidecars, hashing, the scan cache, checks and the watcher."""

from .library import Library, ScanReport, scan
from .names import display_name, display_path, shown

__all__ = ["Library", "ScanReport", "display_name", "display_path", "scan", "shown"]
