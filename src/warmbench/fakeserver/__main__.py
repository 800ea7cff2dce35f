"""``python -m warmbench.fakeserver``: serve the fake OpenAI-compatible API until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import time

from .faults import Fault, FaultPlan
from .server import FakeOpenAIServer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m warmbench.fakeserver",
                                 description="Fake OpenAI-compatible server on 127.0.0.1 for trials.")
    ap.add_argument("--port", type=int, default=8000, help="port to listen on (0 = any free port)")
    ap.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds to wait before every answer")
    ap.add_argument("--fail-rate", type=float, default=0.0,
                    help="share of chat requests answered 500 (first attempt only)")
    ap.add_argument("--rate-limit-rate", type=float, default=0.0,
                    help="share of chat requests answered 429 + Retry-After: 1 (first attempt only)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fault choice")
    ap.add_argument("--require-key", default=None, help="answer 401 unless this bearer key is sent")
    args = ap.parse_args(argv)
    plan = FaultPlan(seed=args.seed)
    if args.rate_limit_rate:
        plan.fraction(args.rate_limit_rate, Fault.rate_limit(1), max_attempt=1)
    if args.fail_rate:
        plan.fraction(args.fail_rate, Fault.server_error(), max_attempt=1)
    srv = FakeOpenAIServer(args.port, host=args.host, faults=plan, latency=args.latency,
                           require_key=args.require_key).start()
    print(f"fake OpenAI server on {srv.base_url} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    srv.stop()


if __name__ == "__main__":
    main()
