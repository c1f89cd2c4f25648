"""The layers are folders; this test states which room may import which (AST check, no imports run).

Arrows point down only: records/errors <- formats <- library <- prompt <- encode, library <- tab; the adapter
(webui), the host (app) and the command line (cli) sit on top. Third-party UI packages stay in the rooms that
serve pages: fastapi in tab, app and webui; gradio in app and webui; the WebUI itself (modules, launch) only in
webui (lazily), scripts/ and install.py. There are no per-file exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "sd_embeddings"
BASE = {"records", "errors"}
# room -> the package's rooms it may import (besides itself)
ALLOWED_ROOMS: dict[str, set[str]] = {
    "records": set(),
    "errors": set(),
    "formats": BASE,
    "library": BASE | {"formats"},
    "prompt": BASE | {"formats", "library"},
    "encode": BASE | {"formats", "library", "prompt"},
    "tab": BASE | {"formats", "library"},
    "app": BASE | {"formats", "library", "prompt", "encode", "tab"},
    "cli": BASE | {"formats", "library", "prompt", "encode", "tab", "app"},
    "webui": BASE | {"formats", "library", "prompt", "tab"},
    "__init__": BASE | {"library"},
    "__main__": {"cli"},
}
THIRD_PARTY = {"fastapi": {"tab", "app", "webui"}, "gradio": {"app", "webui"}, "starlette": {"tab", "app", "webui"},
               "modules": {"webui"}, "launch": {"webui"}, "uvicorn": {"app", "cli", "tab"}}


def room_of(parts: tuple[str, ...]) -> str:
    """``('sd_embeddings', 'library', 'hashing')`` -> ``library``; ``('sd_embeddings', 'records')`` -> ``records``."""
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, ...]]:
    """Absolute module paths imported by ``path``, relative imports resolved."""
    rel = path.relative_to(root).with_suffix("")
    package = list(rel.parts[:-1])
    found: list[tuple[str, ...]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(rel))):
        if isinstance(node, ast.Import):
            found += [tuple(alias.name.split(".")) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            if node.module:
                found.append(tuple(module))
            else:
                found += [tuple(module + [alias.name]) for alias in node.names]
    return found


def package_files() -> list[Path]:
    return sorted((ROOT / PACKAGE).rglob("*.py"))


def offences(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root)
    room = room_of(rel.with_suffix("").parts)
    bad = []
    for module in imports_of(path, root):
        if module[0] == PACKAGE and len(module) > 1:
            target = room_of(module)
            if target != room and target not in ALLOWED_ROOMS[room]:
                bad.append(f"{rel.as_posix()} ({room}) imports {'.'.join(module)} ({target})")
        elif module[0] in THIRD_PARTY and room not in THIRD_PARTY[module[0]]:
            bad.append(f"{rel.as_posix()} ({room}) imports {module[0]}")
    return bad


def test_every_room_is_declared():
    rooms = {room_of(p.relative_to(ROOT).with_suffix("").parts) for p in package_files()}
    assert rooms <= set(ALLOWED_ROOMS), f"undeclared rooms: {sorted(rooms - set(ALLOWED_ROOMS))}"


def test_imports_follow_the_arrows():
    found = [line for path in package_files() for line in offences(path)]
    assert not found, "imports against the layering:\n" + "\n".join(found)


def test_outside_the_package_only_the_entry_points_import_the_webui():
    webui_only = {"modules", "launch"}
    for path in ROOT.glob("*.py"):
        if path.name != "install.py":
            assert not {m[0] for m in imports_of(path)} & webui_only, path


def test_adapter_imports_modules_lazily():
    """``sd_embeddings/webui`` may use ``modules.*`` only inside functions, so importing it needs no WebUI."""
    for path in (ROOT / PACKAGE / "webui").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        roots = {alias.name.split(".")[0] for node in top if isinstance(node, ast.Import) for alias in node.names}
        roots |= {node.module.split(".")[0] for node in top if isinstance(node, ast.ImportFrom) and node.module
                  and not node.level}
        assert not roots & {"modules", "gradio", "fastapi"}, path


def test_checker_catches_an_upward_arrow(tmp_path):
    fake = tmp_path / PACKAGE / "formats" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..library import Library\nfrom .. import webui\nimport gradio\n")
    assert len(offences(fake, tmp_path)) == 3
