"""Measure `batchpay listen`: signed status callbacks per second into a real journal.

Plans a batch with a dry run (against a sandbox config, nothing is sent), starts the real
`batchpay listen` in a subprocess on loopback, posts one signed callback per row at a fixed
concurrency, and prints callbacks/s. Then the same rate for forged callbacks (the genuine
signature, a field boundary moved: each refused and quarantined), and, with --slow-clients N,
how many of N connections that sent half a header are still open before and after the
listener's header timeout. Run: python benchmarks/callbacks.py [--rows N] [--slow-clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from batchpay.gateway.callbacks import HEADER_TIMEOUT
from batchpay.signing import sign

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_batch(folder: Path, rows: int, env: dict[str, str]) -> list[str]:
    path = folder / "p.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["First Name", "Last Name", "Account No", "Mobile", "Email", "Amount"])
        for i in range(rows):
            writer.writerow(
                [f"A{i}", "B", f"00{i:012d}", f"09{i % 10**8:08d}", f"a{i}@e.com", "1000"]
            )
    done = subprocess.run(
        [sys.executable, "-m", "batchpay", "run", str(path), "--dry-run", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = json.loads(done.stdout)
    with open(summary["result_file"], newline="", encoding="utf-8-sig") as stream:
        return [row["tradeNo"] for row in csv.DictReader(stream)]


async def fire(url: str, trade_nos: list[str], concurrency: int, *, forged: bool = False
               ) -> float:  # fmt: skip
    queue = iter(trade_nos)

    async def worker(session: aiohttp.ClientSession) -> None:
        for trade_no in queue:
            fields = {"status": "0000", "message": "Success", "tradeNo": trade_no,
                      "platFormTradeNo": "p" + trade_no, "amount": "1000",
                      "timestamp": str(int(time.time() * 1000))}  # fmt: skip
            fields["sign"] = sign(fields, SECRET)
            if forged:  # the attack: timestamp moved into status, same sign
                fields["status"] += "timestamp=" + fields.pop("timestamp")
            async with session.post(url, json=fields) as response:
                expected = 400 if forged else 200
                assert response.status == expected, await response.text()

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started


def slow_clients(port: int, count: int) -> list[tuple[float, int]]:
    """Open ``count`` connections that send half a header; (seconds, still open) samples."""
    connections = []
    started = time.monotonic()
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"POST /notify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        connection.setblocking(False)
        connections.append(connection)
    samples = []
    for at in (HEADER_TIMEOUT - 1, HEADER_TIMEOUT + 5):
        time.sleep(max(0.0, started + at - time.monotonic()))
        still_open = 0
        for connection in connections:
            try:
                still_open += connection.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        samples.append((at, still_open))
    for connection in connections:
        connection.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--slow-clients", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        port = free_port()
        env = {**os.environ, "BATCHPAY_URL": "http://127.0.0.1:9/pay", "BATCHPAY_MERCHANT_NO": "M",
               "BATCHPAY_SECRET": SECRET, "BATCHPAY_NOTIFY_URL": "http://127.0.0.1:9/n",
               "BATCHPAY_JOURNAL": str(work / "j.sqlite3")}  # fmt: skip
        trade_nos = make_batch(work, args.rows, env)
        listener = subprocess.Popen(
            [sys.executable, "-m", "batchpay", "listen", "--port", str(port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # a full pipe would stall it
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "listener did not start"
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/notify"
            seconds = asyncio.run(fire(url, trade_nos, args.concurrency))
            refused = asyncio.run(fire(url, trade_nos, args.concurrency, forged=True))
            samples = slow_clients(port, args.slow_clients) if args.slow_clients else []
        finally:
            listener.terminate()
            listener.wait(10)
        print(
            f"listener: {len(trade_nos)} callbacks in {seconds:.2f} s = "
            f"{len(trade_nos) / seconds:,.0f} callbacks/s (concurrency {args.concurrency})"
        )
        print(
            f"listener: {len(trade_nos)} forged callbacks refused and quarantined in "
            f"{refused:.2f} s = {len(trade_nos) / refused:,.0f} callbacks/s"
        )
        for at, still_open in samples:
            print(f"slow clients: {still_open} of {args.slow_clients} still open after {at:g} s")


if __name__ == "__main__":
    main()
