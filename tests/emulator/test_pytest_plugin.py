"""The pytest plugin loads in every pytest run of an environment with steadyscale
installed, so importing it must stay cheap: no moto, no emulator server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import steadyscale

_HEAVY = ("moto", "steadyscale.emulator.server", "steadyscale.emulator.dispatch")


def _modules_after_import(module: str) -> list[str]:
    """The modules a fresh interpreter holds after importing ``module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    src = str(Path(steadyscale.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    modules: list[str] = json.loads(done.stdout)
    return modules


def test_importing_the_plugin_imports_neither_moto_nor_the_server() -> None:
    loaded = _modules_after_import("steadyscale.emulator.pytest_plugin")
    assert "steadyscale.emulator.pytest_plugin" in loaded
    assert [m for m in loaded if m.startswith(_HEAVY)] == []


def test_the_check_would_see_moto_if_the_server_were_imported() -> None:
    loaded = _modules_after_import("steadyscale.emulator.server")
    assert "moto" in loaded and "steadyscale.emulator.server" in loaded
