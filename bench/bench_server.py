"""Cold start, memory, and per-tool latency in-process and through the OSC server.

    .venv/bin/python bench/bench_server.py [--bundles DIR] [--runs 10] [--max-runs 3] [--startup-runs 5]

Cold start is bench_startup's measure (process start to first pong). RSS is the server's
VmRSS with every bundle in the folder loaded. Latency is measured twice for the same case:
calling `TOOLS[name](clips, params, ToolContext(store))` in this process, and through a
server process with the Python client (upload, request, every result chunk, `done`), so the
difference is what the protocol and the loopback cost. CPU time beside wall time: in-process
p50, the server process's mean per request (its /proc counters tick every 10 ms, so a mean
over the runs, warm-up included), and the client's p50. Cases whose model is not installed
are listed as such.
"""
from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench_startup import TARGET as START_TARGET, time_to_first_pong
from common import Case, cases, installed, p50_p95, rss_mb, server_process, timed
from bridge.client import BridgeClient
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore
from bridge.tools import TOOLS, ToolContext

RSS_TARGET_MB = 400.0


@dataclass
class Latency:
    case: Case
    local_ms: list[float]
    server_ms: list[float]
    local_cpu_ms: list[float]
    server_cpu_ms: float  # the server process's CPU time per request (mean: /proc counts 10 ms ticks)
    client_cpu_ms: list[float]


def cpu_ms(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc (Linux), in ms."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cold_start(bundles: Path, runs: int) -> list[float]:
    return [time_to_first_pong(bundles) for _ in range(runs)]


def latencies(bundles: Path, runs: int, max_runs: int) -> tuple[list[Latency], list[Case], float]:
    """(measured cases, cases without an installed model, server RSS in MiB with all bundles loaded)."""
    store = ModelStore.from_dir(bundles)
    ctx = ToolContext(store)
    measured, missing = [], []
    with server_process(bundles) as (proc, port, _), BridgeClient(port=port, timeout=300) as client:
        rss = rss_mb(proc.pid)
        for case in cases():
            if not installed(store, case.tool, case.kind):
                missing.append(case)
                continue
            n = runs if case.setting == "default" else max_runs
            local = timed(lambda: TOOLS[case.tool](list(case.clips), case.params, ctx), n)
            before = cpu_ms(proc.pid)
            remote = timed(lambda: client.run(case.tool, case.clips, **case.params), n)
            server_cpu = (cpu_ms(proc.pid) - before) / (n + 1)  # timed() makes n + 1 calls (one warm-up)
            measured.append(Latency(case, local.wall_ms, remote.wall_ms, local.cpu_ms, server_cpu, remote.cpu_ms))
    return measured, missing, rss


def startup_markdown(times: list[float], rss: float) -> str:
    median = statistics.median(times)
    return "\n".join([
        "| measure | median | runs | target | |",
        "|---|---|---|---|---|",
        f"| process start to first pong | {median:.3f} s | {', '.join(f'{t:.3f}' for t in times)} | "
        f"< {START_TARGET} s | {'ok' if median < START_TARGET else 'MISSED'} |",
        f"| server RSS, all bundles loaded | {rss:.0f} MiB | 1 | < {RSS_TARGET_MB:.0f} MiB | "
        f"{'ok' if rss < RSS_TARGET_MB else 'MISSED'} |",
    ])


def latency_markdown(measured: list[Latency], missing: list[Case]) -> str:
    lines = ["| case | runs | in-process p50 / p95 ms | cpu ms | server p50 / p95 ms | server cpu ms | client cpu ms "
             "| server − in-process p50 ms | % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for item in measured:
        l50, l95 = p50_p95(item.local_ms)
        s50, s95 = p50_p95(item.server_ms)
        lines.append(f"| {item.case.label} | {len(item.local_ms)} | {l50:.1f} / {l95:.1f} | "
                     f"{statistics.median(item.local_cpu_ms):.1f} | {s50:.1f} / {s95:.1f} | {item.server_cpu_ms:.1f} | "
                     f"{statistics.median(item.client_cpu_ms):.1f} | {s50 - l50:+.1f} | {100 * (s50 - l50) / l50:+.0f}% |")
    if missing:
        names = sorted({f"{c.tool} {c.kind}" for c in missing})
        lines += ["", f"Not installed (no bundle serves them, so not timed): {', '.join(names)}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case at default settings")
    parser.add_argument("--max-runs", type=int, default=3, help="timed runs per case at maximum settings")
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args()
    times = cold_start(args.bundles, args.startup_runs)
    measured, missing, rss = latencies(args.bundles, args.runs, args.max_runs)
    print(startup_markdown(times, rss), latency_markdown(measured, missing), sep="\n\n")


if __name__ == "__main__":
    main()
