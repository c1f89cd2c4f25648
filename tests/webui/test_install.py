"""install.py against a fake ``launch`` module (is_installed, run_pip, args.skip_install): what it would install."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_installer():
    spec = importlib.util.spec_from_file_location("sd_embeddings_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_launch(monkeypatch, installed: set[str], skip: bool = False) -> list[str]:
    calls: list[str] = []
    launch = types.SimpleNamespace(args=types.SimpleNamespace(skip_install=skip), is_installed=installed.__contains__,
                                   run_pip=lambda command, desc=None: calls.append(command))
    monkeypatch.setitem(sys.modules, "launch", launch)
    return calls


def test_installs_only_missing_and_honours_skip_install(monkeypatch, tmp_path):
    installer = load_installer()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nsafetensors>=0.3\n\n-c constraints.txt\n"
                            "rich[jupyter]>=13 ; python_version>'3'\n")
    monkeypatch.setattr(installer.requirements, "__defaults__", (str(requirements),))
    calls = fake_launch(monkeypatch, {"safetensors"})
    installer.main()
    assert calls == ['install "rich[jupyter]>=13 ; python_version>\'3\'"']
    calls = fake_launch(monkeypatch, {"safetensors", "rich"})
    installer.main()
    assert calls == []
    calls = fake_launch(monkeypatch, set(), skip=True)
    installer.main()
    assert calls == []


def test_shipped_requirements_add_nothing_to_the_webui(monkeypatch):
    """Every shipped requirement is something the WebUI has (tests/test_requirements.py checks the versions)."""
    installer = load_installer()
    names = [name for name, _spec in installer.requirements()]
    assert names == ["torch", "safetensors", "Pillow", "numpy"]
    calls = fake_launch(monkeypatch, set(names))
    installer.main()
    assert calls == []
