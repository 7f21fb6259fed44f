"""Habits of the project itself: rooms that stay small, one source for the version, a
license that matches what the package declares."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import steadyscale

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "steadyscale"
# The sizes CONTRIBUTING.md promises a newcomer, counted on ruff-formatted code.
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60


def _rooms_over_their_size() -> list[str]:
    over: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(ROOT)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            over.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if size > limit:
                over.append(f"{name}:{node.lineno} {node.name}: {size} lines")
    return over


def test_no_module_class_or_function_outgrows_its_room() -> None:
    assert _rooms_over_their_size() == []


def test_the_version_has_one_source() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert steadyscale.__version__ == importlib.metadata.version("steadyscale") == declared
    printed = subprocess.run(
        [sys.executable, "-m", "steadyscale", "--version"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert printed.strip() == f"steadyscale {declared}"


def test_the_license_file_is_the_license_the_package_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
