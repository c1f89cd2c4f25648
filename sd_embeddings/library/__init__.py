"""Folders -> entries: the walk, collisions, sidecars, hashing, the scan cache, checks and the watcher."""

from .library import Library, ScanReport, scan

__all__ = ["Library", "ScanReport", "scan"]
