"""WebUI install hook: installs what ``requirements.txt`` lists and the WebUI's environment lacks.

The WebUI runs this file on every launch (unless ``--skip-install`` or ``--skip-prepare-environment``), as a
subprocess with its own directory on ``PYTHONPATH``. It is silent when nothing is missing, never upgrades a
package that is already installed (whatever its version), and imports nothing from the extension.
"""

from __future__ import annotations

import os
import re

REQUIREMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")


def requirements(path: str = REQUIREMENTS) -> list[tuple[str, str]]:
    """``(distribution name, pip argument)`` per line; comments, blanks and options are skipped."""
    out = []
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]
        out.append((name, line))
    return out


def main() -> None:
    import launch

    if getattr(getattr(launch, "args", None), "skip_install", False):
        return
    for name, spec in requirements():
        if not launch.is_installed(name):
            launch.run_pip(f'install "{spec}"', f"sd-embeddings requirement: {spec}")


if __name__ == "__main__":
    main()
