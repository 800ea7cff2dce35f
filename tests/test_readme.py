"""The README is a short landing page; the docs are a MkDocs site that builds strictly; the config
reference in the docs matches the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from warmbench.config_reference import reference_markdown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def test_readme_opens_with_the_two_commands():
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:8])
    assert "make quickstart" in head and "make test" in head


def test_readme_is_a_landing_page():
    size = len(README.read_bytes())
    assert size <= 12 * 1024, f"README.md is {size} bytes; move detail into docs/"
    text = README.read_text(encoding="utf-8")
    assert "git clone …" not in text and "clone … " not in text, "an elided clone URL does not work"
    # Every relative link of the README points at a file that exists.
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (REPO / target).exists(), f"README.md links to missing {target}"


def test_every_docs_page_is_in_the_site_nav():
    import yaml

    cfg = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav):
        for entry in nav:
            for value in entry.values():
                yield from (pages(value) if isinstance(value, list) else [value])

    in_nav = set(pages(cfg["nav"]))
    on_disk = {p.name for p in (REPO / "docs").glob("*.md")}
    assert on_disk == in_nav, f"docs pages not in mkdocs.yml nav: {sorted(on_disk - in_nav)}"


def test_license_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_config_reference_is_current():
    assert (REPO / "docs" / "config.md").read_text(encoding="utf-8") == reference_markdown(), \
        "config reference is stale: run `make docs`"


def test_mkdocs_build_strict(tmp_path):
    """The site builds with no warning: every nav entry exists, every link and anchor resolves."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    cmd = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    proc = subprocess.run(
        [*cmd, "build", "--strict", "--quiet", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "benchmarks" / "index.html").exists()


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci


ARCH_PAGE = REPO / "docs" / "architecture.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else None]


@pytest.mark.parametrize("source", ["README.md", "docs/architecture.md"])
def test_architecture_text_matches_the_code(source):
    """The README's architecture section and the architecture page name only stages, records,
    types and modules that exist, and their diagrams draw every pipeline stage."""
    import importlib
    import inspect

    from warmbench import records
    from warmbench.pipeline import STAGES

    text = (REPO / source).read_text(encoding="utf-8")
    if source == "README.md":
        text = _section(text, "Architecture")
    diagram = re.search(r"```text\n(.*?)```", text, re.S).group(1)
    for stage in STAGES:
        assert f"─{stage.name}" in diagram, f"{source}: the diagram lacks the {stage.name} stage"
        # ... and each stage's entry point has the one signature the text states.
        # (keyword-only test hooks aside: eval's backend_factory, judge's backend/embedder)
        params = [p.name for p in inspect.signature(stage.load()).parameters.values()
                  if p.kind is not p.KEYWORD_ONLY]
        assert params == ["cfg", "store", "progress"], f"{stage.target}: {params}"
    entry_points = {s.target.split(":")[1] for s in STAGES}
    for named in set(re.findall(r"`(run_\w+)`", text)) - {"run_pipeline"}:
        assert named in entry_points, f"{source}: {named} is not a stage entry point"
    drawn = set(re.findall(r"\b[A-Z][a-z]+[A-Za-z]*\b", diagram)) - {"LoRA", "SocioT"}
    for name in drawn:
        assert hasattr(records, name) or name == "ModelSpec", f"{source}: no record {name}"
    # Every dotted name in backticks resolves: `warmbench.x.y` (a module or an attribute).
    for dotted in set(re.findall(r"`(warmbench(?:\.\w+)+)`", text)):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            break
        else:
            raise AssertionError(f"{source}: {dotted} does not exist")
