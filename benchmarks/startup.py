"""How fast the command line starts: `batchpay --version` and one shell-completion call (what
each Tab press runs), best of N whole processes. Issue 14: these import no heavy library.

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def best(args: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    env = dict(os.environ)
    python = [sys.executable, "-m", "batchpay"]
    bare = best([sys.executable, "-c", "pass"], env, runs)
    version = best([*python, "--version"], env, runs)
    completion = best(
        python, {**env, "_BATCHPAY_COMPLETE": "bash_complete", "COMP_WORDS": "batchpay ru",
                 "COMP_CWORD": "1"}, runs,
    )  # fmt: skip
    print(f"python -c pass          {bare * 1000:7.0f} ms")
    print(f"batchpay --version      {version * 1000:7.0f} ms")
    print(f"completion (one Tab)    {completion * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
