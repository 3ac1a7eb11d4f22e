"""What a packager and a type checker see: licence, metadata, py.typed, the test extra."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_license_file_matches_the_declared_license():
    assert PROJECT["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert "LICENSE" in PROJECT["license-files"]


def test_classifiers_say_typed_and_pytest_plugin():
    classifiers = PROJECT["classifiers"]
    for wanted in ("Typing :: Typed", "Framework :: Pytest", "Framework :: AsyncIO",
                   "Programming Language :: Python :: 3.11"):
        assert wanted in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX `license` says it


def test_py_typed_is_shipped_as_package_data():
    assert (REPO / "quicsim" / "py.typed").is_file()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["quicsim"]


def test_every_dependency_has_a_lower_bound_and_the_test_extra_has_xdist_and_mypy():
    deps = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]
    assert all(">=" in d for d in deps), deps
    names = {d.split(">")[0].split("<")[0] for d in PROJECT["optional-dependencies"]["test"]}
    assert {"pytest-xdist", "mypy"} <= names
