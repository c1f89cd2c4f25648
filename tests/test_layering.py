"""The core never imports the WebUI, gradio or fastapi; only the adapter rooms may (AST check, no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("modules", "gradio", "fastapi", "launch")
ALLOWED = ("sd_embeddings/webui/", "sd_embeddings/app.py", "sd_embeddings/http_routes.py", "scripts/",
           "install.py", "tests/")


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files() -> list[Path]:
    skip = {".venv", ".git", "node_modules"}
    return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_only_adapter_rooms_import_the_webui():
    offenders = []
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ALLOWED):
            continue
        bad = imported_roots(ast.parse(path.read_text(encoding="utf-8"), rel)) & set(FORBIDDEN)
        if bad:
            offenders.append(f"{rel}: {', '.join(sorted(bad))}")
    assert not offenders, "WebUI/UI imports outside the adapter:\n" + "\n".join(offenders)


def test_adapter_imports_modules_lazily():
    """``sd_embeddings/webui`` may use ``modules.*`` only inside functions, so importing it needs no WebUI."""
    for path in (ROOT / "sd_embeddings" / "webui").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not imported_roots(ast.Module(body=top, type_ignores=[])) & {"modules", "gradio", "fastapi"}, path


def test_checker_catches_an_offender():
    assert imported_roots(ast.parse("from modules import shared\nimport gradio as gr")) == {"modules", "gradio"}
