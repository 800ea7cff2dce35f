"""The supported-versions statement holds together: each tested combination in constraints/
satisfies the extras it is installed with, and the lowest one is the ml extra's floor."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# combination -> the extras it is installed with
COMBINATIONS = {"cpu.txt": ("ml",), "lowest.txt": ("ml",), "gpu-cu13.txt": ("ml", "gpu")}


def _extras() -> dict[str, list[Requirement]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return {k: [Requirement(r) for r in v if not r.startswith("warmbench")]
            for k, v in data["project"]["optional-dependencies"].items()}


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints" / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            assert m, f"constraints/{name}: {line!r} is not an exact pin"
            pins[canonicalize_name(m[1])] = m[2]
    return pins


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_each_combination_satisfies_its_extras(name):
    extras, pins = _extras(), _pins(name)
    checked = 0
    for extra in COMBINATIONS[name]:
        for req in extras[extra]:
            version = pins.get(canonicalize_name(req.name))
            if version is not None:
                assert req.specifier.contains(version, prereleases=True), \
                    f"constraints/{name}: {req.name}=={version} outside [{extra}] {req}"
                checked += 1
    assert checked >= 4  # torch, transformers, trl, peft at least


def test_lowest_is_the_floor_and_the_gpu_extra_pins_its_stack():
    extras = _extras()
    tf = next(r for r in extras["ml"] if r.name == "transformers")
    floor = min(s.version for s in tf.specifier if s.operator == ">=")
    assert _pins("lowest.txt")["transformers"] == floor
    gpu = {canonicalize_name(r.name): r for r in extras["gpu"]}
    for pkg in ("torch", "transformers", "trl", "peft", "vllm"):
        assert any(s.operator == "<" for s in gpu[pkg].specifier), f"[gpu] {pkg} needs an upper bound"
    # the overlay make test-lowest installs: exactly the pins that differ from "cpu"
    low, cpu = _pins("lowest.txt"), _pins("cpu.txt")
    overlay = {line.split("==")[0] for line in
               (REPO / "constraints" / "lowest.txt").read_text(encoding="utf-8").splitlines()
               if line.rstrip().endswith("# overlay")}
    assert {canonicalize_name(n) for n in overlay} == {k for k in low if low[k] != cpu.get(k)}
