"""Benchmark: the ``openai`` backend's concurrency and the store's warm re-run.

200 chat requests against the local fake OpenAI-compatible server, which answers each one
after 200 ms, all through ``cached_generate`` (the path every stage uses). The server runs in
its own process, like a real API (``--in-process`` shares this process and its GIL instead):

1. sequential: concurrency 1, fresh run directory;
2. concurrent: concurrency 16, fresh run directory;
3. warm: the concurrent run again on its now-complete run directory.

Prints both times, their ratio (target >= 10) and how many requests the warm run sent
(target 0). Run: ``.venv/bin/python benchmarks/api_concurrency.py [--n 200 --latency 0.2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from warmbench.backends import get_backend
from warmbench.fakeserver import FakeOpenAIServer
from warmbench.generation import cached_generate
from warmbench.records import ChatRequest, SamplingParams
from warmbench.store import RunStore


class _Remote:
    """The fake server in a child process; counts come from its ``/_fake/stats`` route."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def _stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/_fake/stats", timeout=10) as r:
            return json.loads(r.read())

    def count(self) -> int:
        return self._stats()["chat_requests"]

    @property
    def max_in_flight(self) -> int:
        return self._stats()["max_in_flight"]


@contextlib.contextmanager
def _server(latency: float, in_process: bool) -> Iterator[FakeOpenAIServer | _Remote]:
    if in_process:
        with FakeOpenAIServer(latency=latency) as srv:
            yield srv
        return
    proc = subprocess.Popen([sys.executable, "-m", "warmbench.fakeserver", "--port", "0",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if " on " not in line:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield _Remote(line.split(" on ")[1].split()[0])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _timed_run(srv: FakeOpenAIServer | _Remote, run_dir: Path, requests: list[ChatRequest],
               concurrency: int) -> tuple[float, int, int]:
    """(seconds, requests the server received, completions that are answers)."""
    before = srv.count()
    store = RunStore(run_dir)
    backend = get_backend(f"openai:{srv.base_url}#bench-model", concurrency=concurrency,
                          timeout=30, env_file=None)
    try:
        t = time.perf_counter()
        out = cached_generate(store, backend, requests, SamplingParams(max_tokens=64), kind="bench")
        elapsed = time.perf_counter() - t
    finally:
        backend.close()
    return elapsed, srv.count() - before, sum(c.ok for c in out)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of chat requests")
    ap.add_argument("--latency", type=float, default=0.2, help="server answer delay, seconds")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrency of the fast run")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--in-process", action="store_true",
                    help="run the fake server in a thread of this process (shares the GIL)")
    args = ap.parse_args(argv)
    requests = [ChatRequest.from_user(f"Question {i}: what is {i} + {i}?", system="Answer briefly.")
                for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp, _server(args.latency, args.in_process) as srv:
        seq_s, seq_sent, seq_ok = _timed_run(srv, Path(tmp) / "seq", requests, 1)
        con_s, con_sent, con_ok = _timed_run(srv, Path(tmp) / "conc", requests, args.concurrency)
        warm_s, warm_sent, warm_ok = _timed_run(srv, Path(tmp) / "conc", requests, args.concurrency)
        peak = srv.max_in_flight
    res = {
        "requests": args.n, "latency_s": args.latency, "concurrency": args.concurrency,
        "sequential_s": round(seq_s, 3), "concurrent_s": round(con_s, 3),
        "ratio": round(seq_s / con_s, 2), "warm_s": round(warm_s, 3),
        "warm_requests_sent": warm_sent, "answers": [seq_ok, con_ok, warm_ok],
        "sent": [seq_sent, con_sent], "server_peak_in_flight": peak,
        "server": "in-process" if args.in_process else "separate process",
    }
    print(f"{args.n} requests, server latency {args.latency * 1000:.0f} ms")
    print(f"sequential (concurrency 1):   {seq_s:7.2f} s  ({seq_sent} sent, {seq_ok} answers)")
    print(f"concurrent (concurrency {args.concurrency}): {con_s:7.2f} s  ({con_sent} sent, {con_ok} answers)")
    print(f"ratio: {res['ratio']:.1f}x  (target >= 10)")
    print(f"warm re-run: {warm_s:.3f} s, {warm_sent} requests sent (target 0), {warm_ok} answers")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
