"""The warmth benchmark and the prepared GPU-machine scripts still run (tiny sizes, CPU)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_warmth_speed_prints_its_ratios_and_bound(capsys):
    pytest.importorskip("torch")
    bench = _load("warmth_speed")
    assert bench.main(["--model", "tiny-byte", "--n-texts", "3", "--block", "2", "--repeats", "3",
                       "--bound", "2", "--threads", "1", "--texts", str(REPO / "no-such-folder")]) == 0
    out = capsys.readouterr().out
    assert "ratio exact / reference:" in out and "ratio compat / reference:" in out
    assert "compat vs reference on 3 texts: per-text within 3 SE" in out
    assert "bound on the first 2 texts: compat with dropout's random numbers free" in out


@pytest.mark.parametrize("script", ["prepare.sh", "gpu_check.sh", "gpu_smoke.sh"])
def test_device_scripts_parse(script):
    if not shutil.which("bash"):
        pytest.skip("no bash")
    subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "device" / script)], check=True)
