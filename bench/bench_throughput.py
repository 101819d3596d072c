"""Throughput: 16 clients on loopback sending a mix of tool requests for a fixed time.

    .venv/bin/python bench/bench_throughput.py [--duration 30] [--clients 16] [--bundles DIR]

Each client is a closed loop, as a Live device is: one request at a time, the next as soon
as the last one ended. Every request must end in `done`, an error, or an explicit `busy`;
one that the client gives up on (`no_reply`, or a result it could not assemble) is *lost*,
and the target is zero lost. A client told `busy` waits 20 ms before its next request, as a
polite device would. Tools without an installed model still take part: they answer
`model_not_installed` at once, and the table says which tools ran a real model.

Which requests find room in the queue depends on timing, so the mix of tools that ran (and
with it the count of requests done) changes from run to run: one more Harmonize (150 ms) is
ten fewer Generates. The worker's share of the time spent in tools (each done request's tool
time, from the server's debug log line, over the run's length) says whether the server kept
its worker busy, whatever the mix.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench_server import ToolTimes
from common import cases, installed, p50_p95, percentile, rss_mb, server_process
from bridge.client import AsyncBridgeClient, BridgeError
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore

BUSY_BACKOFF = 0.02
LOST = ("no_reply", "bad_reply")
CLIENT_SILENCE = 60.0  # longer than any queue wait at default settings; silence this long means lost


@dataclass
class Tally:
    """Outcomes and latencies (ms, send to final reply) per tool."""

    outcomes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latency_ms: list[float] = field(default_factory=list)
    done_ms: list[float] = field(default_factory=list)


async def client_loop(index: int, port: int, deadline: float, tally: Tally) -> None:
    """Requests round-robin over the mix, starting at a different case per client."""
    mix = cases(("default",))
    async with AsyncBridgeClient(port=port, timeout=CLIENT_SILENCE) as client:
        for case in itertools.islice(itertools.cycle(mix), index, None):
            if time.monotonic() >= deadline:
                return
            start = time.perf_counter()
            try:
                await client.run(case.tool, case.clips, **case.params)
                outcome = "done"
            except BridgeError as exc:
                outcome = exc.code
            ms = (time.perf_counter() - start) * 1000
            tally.outcomes[case.tool][outcome] += 1
            tally.latency_ms.append(ms)
            if outcome == "done":
                tally.done_ms.append(ms)
            elif outcome == "busy":
                await asyncio.sleep(BUSY_BACKOFF)


async def load(port: int, clients: int, duration: float) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    await asyncio.gather(*(client_loop(i, port, start + duration, tally) for i in range(clients)))
    return tally, time.monotonic() - start


def run(bundles: Path, clients: int, duration: float) -> str:
    """Run the load against a fresh server process; a markdown report."""
    store = ModelStore.from_dir(bundles)
    real = {tool: [c.kind for c in cases(("default",)) if c.tool == tool and installed(store, tool, c.kind)]
            for tool in dict.fromkeys(c.tool for c in cases(("default",)))}
    with server_process(bundles, "--log-level", "debug", stderr=True) as (proc, port, _):
        tool_times = ToolTimes(proc.stderr, follow=True)
        rss_before = rss_mb(proc.pid)
        tally, elapsed = asyncio.run(load(port, clients, duration))
        rss_after = rss_mb(proc.pid)
        time.sleep(0.2)  # the last requests' log lines
        in_tools = tool_times.total_ms / 1000  # each client numbers its requests from 1: ids repeat
    total = sum(sum(c.values()) for c in tally.outcomes.values())
    lost = sum(c[code] for c in tally.outcomes.values() for code in LOST)
    done = sum(c["done"] for c in tally.outcomes.values())
    p50, p95 = p50_p95(tally.latency_ms)
    p99 = percentile(tally.latency_ms, 99)
    done_ms = (f"{statistics.median(tally.done_ms):.1f} / {percentile(tally.done_ms, 99):.1f} ms"
               if tally.done_ms else "none")
    lines = [
        f"{clients} clients, {duration:g} s (ran {elapsed:.1f} s including requests in flight at the end), "
        "server defaults (1 worker, queue 8), tools at their default settings.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests ended (any final reply) | {total} ({total / elapsed:.1f}/s) |",
        f"| requests done with a result | {done} ({done / elapsed:.1f}/s) |",
        f"| worker time in tools (done requests' tool time / run length) | {100 * in_tools / elapsed:.0f}% |",
        f"| latency, all requests p50 / p95 / p99 | {p50:.1f} / {p95:.1f} / {p99:.1f} ms |",
        f"| latency, requests done p50 / p99 | {done_ms} |",
        f"| replies lost (target 0) | {lost} {'ok' if lost == 0 else 'MISSED'} |",
        f"| server RSS before / after | {rss_before:.0f} / {rss_after:.0f} MiB |",
        "",
        "| tool | real model for | outcomes |",
        "|---|---|---|",
    ]
    for tool, kinds in real.items():
        outcomes = ", ".join(f"{code} {n}" for code, n in tally.outcomes[tool].most_common())
        lines.append(f"| {tool} | {', '.join(kinds) or 'none (not installed)'} | {outcomes or 'none'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    args = parser.parse_args()
    print(run(args.bundles, args.clients, args.duration))


if __name__ == "__main__":
    main()
