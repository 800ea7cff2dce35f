"""The README opens with the two commands, and its config reference matches the code."""

from __future__ import annotations

from pathlib import Path

from warmbench.config_reference import reference_markdown

REPO = Path(__file__).resolve().parents[1]


def test_readme_opens_with_the_two_commands():
    head = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:8])
    assert "make quickstart" in head and "make test" in head


def test_readme_is_the_assembled_sections():
    parts = sorted((REPO / "docs" / "readme").glob("*.md"))
    assembled = "".join(p.read_text(encoding="utf-8").rstrip("\n") + "\n\n" for p in parts)
    assert (REPO / "README.md").read_text(encoding="utf-8") == assembled, \
        "README.md is stale: run `make readme`"


def test_config_reference_is_current():
    assert (REPO / "docs" / "readme" / "80-config.md").read_text(encoding="utf-8") == reference_markdown(), \
        "config reference is stale: run `make readme`"


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
