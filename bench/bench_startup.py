"""Time from `magenta-bridge serve` starting to its first pong: median of 5 runs (target < 1.5 s).

A producer starts the bridge and immediately presses a button in Live; this measures how long
that first request waits. Run: `.venv/bin/python bench/bench_startup.py [--bundles DIR]`.
"""
from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bridge import protocol as P
from bridge.model_store import DEFAULT_BUNDLES_DIR

TARGET = 1.5


def command(port: int, bundles: Path) -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    script = Path(sys.executable).with_name("magenta-bridge")
    if not script.exists() and shutil.which("magenta-bridge"):
        script = Path(shutil.which("magenta-bridge"))
    head = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from bridge.cli import main; sys.exit(main())"]
    return [*head, "serve", "--port", str(port), "--bundles", str(bundles), "--log-level", "warning"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_pong(proc: subprocess.Popen, port: int, start: float, limit: float = 30.0) -> float:
    """Ping until the server answers; seconds since `start` (a perf_counter reading)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.02)
        ping = P.message(P.PING, "bench")
        while time.perf_counter() - start < limit:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before answering")
            sock.sendto(ping, ("127.0.0.1", port))
            try:
                if sock.recv(2048).startswith(P.PONG.encode()):
                    return time.perf_counter() - start
            except (socket.timeout, ConnectionRefusedError):  # not listening yet
                pass
    raise RuntimeError(f"no pong within {limit:g} s")


def time_to_first_pong(bundles: Path, limit: float = 30.0) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(command(port, bundles), stdout=subprocess.DEVNULL)
    try:
        return wait_for_pong(proc, port, start, limit)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = [time_to_first_pong(args.bundles) for _ in range(args.runs)]
    median = statistics.median(times)
    print("runs:", ", ".join(f"{t:.3f}" for t in times))
    print(f"median start-to-first-pong: {median:.3f} s (target < {TARGET} s): {'ok' if median < TARGET else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
