"""The generated documents are current, and the docs the README links to exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from steadyscale.app import docgen

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--check", "--docs", str(ROOT / "docs")]) == 0, capsys.readouterr().err


def test_check_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--docs", str(tmp_path)]) == 0
    capsys.readouterr()
    reference = tmp_path / "config-reference.md"
    reference.write_text(reference.read_text().replace("| `max_workers` |", "| `workers` |"))
    assert docgen.main(["--check", "--docs", str(tmp_path)]) == 1
    assert "config-reference.md" in capsys.readouterr().err


def test_the_reference_documents_every_key_with_its_comment() -> None:
    text = docgen.config_reference()
    assert "| `listing_interval_seconds` | number, > 0 | `30.0` | The full cluster listing" in text
    assert "## `available_node_types.<name>`" in text and "## `provider.emulator`" in text
    # Every key says what it is for, whether its description is a comment or a Field's.
    rows = [line for line in text.splitlines() if line.startswith("| `") and line.count("|") >= 5]
    assert len(rows) > 40
    undocumented = [row.split("|")[1].strip() for row in rows if row.rstrip().endswith("|  |")]
    assert undocumented == []


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)\)", readme)
    assert {
        "docs/user-guide.md",
        "docs/config-reference.md",
        "docs/troubleshooting.md",
        "docs/failure-model.md",
    } <= set(links)
    for link in links:
        assert (ROOT / link).exists(), link
