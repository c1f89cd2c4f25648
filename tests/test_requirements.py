"""One source of requirements: ``requirements.txt``. pyproject.toml takes its run-time ``dependencies`` from it and
``install.py`` installs from it; every entry is already in every WebUI at a version it accepts, so the WebUI's own
packages are never upgraded or downgraded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from setuptools.config.pyprojecttoml import read_configuration

ROOT = Path(__file__).resolve().parent.parent
WEBUI_PINS = {"torch": "2.1.2", "safetensors": "0.4.2", "pillow": "9.5.0", "numpy": "1.26.2"}
"""AUTOMATIC1111 1.10.1: requirements_versions.txt, and torch as its launcher installs it."""


def installer():
    spec = importlib.util.spec_from_file_location("sd_embeddings_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_reads_its_dependencies_from_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "dependencies" not in project["project"] and "dependencies" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    expanded = read_configuration(ROOT / "pyproject.toml", expand=True)["project"]["dependencies"]
    assert expanded == [spec for _name, spec in installer().requirements()]


def test_install_py_reads_the_same_file():
    assert Path(installer().REQUIREMENTS) == ROOT / "requirements.txt"


def test_every_requirement_is_met_by_the_webuis_own_pins():
    for _name, spec in installer().requirements():
        requirement = Requirement(spec)
        pinned = WEBUI_PINS.get(requirement.name.lower())
        assert pinned is not None, f"{spec}: not something every WebUI ships"
        assert requirement.specifier.contains(pinned), f"{spec} would replace the WebUI's {pinned}"
