"""The recorded git revision says when the code had uncommitted changes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from warmbench import manifest


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_revision_marks_uncommitted_changes(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    pkg = repo / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "init"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(manifest, "__file__", str(pkg / "manifest.py"))
    assert manifest.git_revision() == head
    (pkg / "mod.py").write_text("x = 2\n")
    assert manifest.git_revision() == head + "+dirty"
    (pkg / "new.py").write_text("")  # untracked files (e.g. run outputs) do not count
    subprocess.run(git + ["checkout", "-q", "--", "pkg/mod.py"], check=True)
    assert manifest.git_revision() == head


def test_git_revision_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "__file__", str(Path(tmp_path) / "manifest.py"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert manifest.git_revision() is None
