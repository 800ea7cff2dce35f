"""Data-parallel vLLM workers as real processes (spawned, as on a GPU machine), on CPU.

The stand-in ``vllm`` package below does what makes the real one need non-daemonic workers:
``LLM()`` starts its engine core in a child process (vllm-project/vllm#18308), which Python
refuses to a daemonic process. Each answer names the process that computed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from warmbench.backends import get_backend
from warmbench.backends import vllm_backend as vb
from warmbench.records import ChatRequest, SamplingParams

FAKE_VLLM = '''
"""Stand-in vllm: LLM() forks an engine-core child (daemonic, as vLLM's) and talks to it."""
import multiprocessing as mp
import os
from types import SimpleNamespace


class SamplingParams:
    def __init__(self, **kw):
        self.kw = kw


def _core(conn):
    while True:
        batch = conn.recv()
        if batch is None:
            return
        tag = f"gpu{os.environ.get('CUDA_VISIBLE_DEVICES')}:core{os.getpid()}:parent{os.getppid()}"
        conn.send([f"[{tag}] {text}" for text in batch])


class LLM:
    def __init__(self, **kw):
        ctx = mp.get_context("fork")
        self._conn, child = ctx.Pipe()
        # raises "daemonic processes are not allowed to have children" in a daemonic worker
        self._core = ctx.Process(target=_core, args=(child,), daemon=True)
        self._core.start()

    def chat(self, conversations, sampling_params=None, use_tqdm=True, lora_request=None):
        self._conn.send([c[-1]["content"] for c in conversations])
        texts = self._conn.recv()
        return [SimpleNamespace(prompt_token_ids=[1, 2],
                                outputs=[SimpleNamespace(text=t, token_ids=[1], finish_reason="stop")])
                for t in texts]
'''


@pytest.fixture()
def process_vllm(tmp_path, monkeypatch):
    """The stand-in on sys.path (spawned workers inherit sys.path), real vllm hidden."""
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text(textwrap.dedent(FAKE_VLLM))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(vb, "_ENGINES", {})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    yield
    vb.shutdown_engines()


def _pids(texts):
    """{gpu: parent pid} from the answers' tags."""
    out = {}
    for t in texts:
        gpu, _core, parent = t[1:t.index("]")].split(":")
        out[gpu] = int(parent.removeprefix("parent"))
    return out


def test_data_parallel_workers_are_processes_whose_engine_forks_and_they_answer(process_vllm):
    b = get_backend("vllm:org/base", data_parallel_size=2)
    eng = b._engine
    workers = list(eng.workers)
    assert len(workers) == 2 and all(not p.daemon and p.is_alive() for p in workers)
    out = b.generate([ChatRequest.from_user(f"q{i}") for i in range(5)], SamplingParams())
    assert all(c.error is None for c in out)
    assert [c.text.split("] ")[1] for c in out] == [f"q{i}" for i in range(5)]
    # each shard answered by its own worker, pinned to its own GPU, through its forked core
    assert _pids(c.text for c in out) == {"gpu0": workers[0].pid, "gpu1": workers[1].pid}
    b.close()  # explicit shutdown: both workers (and their cores) gone, the engine forgotten
    assert not any(p.is_alive() for p in workers) and not vb._ENGINES


def test_engines_left_open_are_shut_down_by_the_exit_hook(process_vllm):
    b = get_backend("vllm:org/base", data_parallel_size=2)
    workers = list(b._engine.workers)
    assert b.generate([ChatRequest.from_user("hi")], SamplingParams())[0].text.endswith("] hi")
    assert vb.shutdown_engines() == 1  # what atexit runs if nobody called close()
    assert not any(p.is_alive() for p in workers) and not vb._ENGINES
    b.close()  # a late close after the hook is harmless


EXIT_SCRIPT = """
import sys
from warmbench.backends import get_backend
from warmbench.records import ChatRequest, SamplingParams

b = get_backend("vllm:org/base", data_parallel_size=2)
print(*[p.pid for p in b._engine.workers], flush=True)
assert b.generate([ChatRequest.from_user("hi")], SamplingParams())[0].text.endswith("] hi")
# no close(): the interpreter must still exit, and take the workers with it
"""


def test_interpreter_exits_with_engines_left_open(tmp_path):
    """multiprocessing joins non-daemonic children at exit; the workers must be told first."""
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text(textwrap.dedent(FAKE_VLLM))
    src = str(__import__("pathlib").Path(vb.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), src]),
           "CUDA_VISIBLE_DEVICES": "0,1"}
    p = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True,
                       env=env, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    for pid in map(int, p.stdout.split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone (reaped by the exiting parent)
