"""Cold start, memory, and per-tool latency in-process and through the OSC server.

    .venv/bin/python bench/bench_server.py [--bundles DIR] [--runs 10] [--max-runs 3] [--startup-runs 5]

Cold start is bench_startup's measure (process start to first pong). RSS is the server's VmRSS
with every bundle in the folder loaded. Latency is measured for the same case: calling
`TOOLS[name](clips, params, ToolContext(store))` in this process, and through a server process
with the Python client (upload, request, every result chunk, `done`; on loopback the client
sends the uploads and the request as one bundle, and announces its receive buffer as `window`,
so a result of up to that many datagrams is not paced). What the server adds is given two ways:
the round trip minus the in-process p50, and per request the round trip minus the tool's own
time in the server process (its debug log line for that request id), the p50 of those pairs.
The second is what the protocol, the thread hand-offs and the loopback cost; the first also
carries how differently the same tool runs in two processes (a few percent either way: memory
layout, caches). CPU time beside wall time: in-process p50, the server process's mean per
request (its /proc counters tick every 10 ms, so a mean over the runs, warm-up included), and
the client's p50. Cases whose model is not installed are listed as such.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from bench_startup import TARGET as START_TARGET, time_to_first_pong
from common import Case, cases, installed, p50_p95, rss_mb, server_process, timed
from bridge.client import BridgeClient
from bridge.jobs import STAGES
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
    tool_in_server_ms: list[float]  # the tool's own time in the server, request by request
    added_ms: list[float]  # round trip minus that, request by request
    stage_ms: dict[str, list[float]]  # the server's other stages and OUTSIDE, request by request


def cpu_ms(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc (Linux), in ms."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cold_start(bundles: Path, runs: int) -> list[float]:
    return [time_to_first_pong(bundles) for _ in range(runs)]


# Written by bridge/worker.py at debug level once a request is done: the tool's time, then the
# server's other stages (bridge.jobs.STAGES) as "name ms" pairs.
TOOL_LINE = re.compile(r"request (\S+) \S+: tool ([0-9.]+) ms.*?(?:; stages ms: (.*))?$")
STAGE_NAMES = [name for name, _, _ in STAGES if name != "tool"]
OUTSIDE = "outside the server"  # the round trip less every server stage: the client's work and both wakes


class ToolTimes:
    """The server's per-request tool times, from its stderr.

    By default read when asked for, after the timed calls: a thread reading each line as the
    server writes it (just after `done`) woke in this process and took the GIL from the client
    reading that very result, and added 0.1-0.3 ms to what the server seemed to cost.
    `follow` reads in a thread all the same, for a run too long for the pipe to hold its log."""

    def __init__(self, stream, follow: bool = False) -> None:
        self.stream = stream
        self.times: dict[str, float] = {}  # by request id (the last of a reused id)
        self.stages: dict[str, dict[str, float]] = {}  # by request id: the other stages' ms
        self.total_ms = 0.0  # every request's, ids reused or not
        if follow:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self, until: str | None = None) -> None:
        for line in self.stream:
            if found := TOOL_LINE.search(line.rstrip("\n")):
                self.times[found.group(1)] = float(found.group(2))
                pairs = (part.rsplit(" ", 1) for part in (found.group(3) or "").split(", ") if part)
                self.stages[found.group(1)] = {name: float(ms) for name, ms in pairs}
                self.total_ms += float(found.group(2))
                if found.group(1) == until:
                    return

    def of(self, rid: str) -> float:
        """The tool time of request `rid`, reading the log up to its line (written after `done`)."""
        if rid not in self.times:
            self._read(until=rid)
        return self.times[rid]


def latencies(bundles: Path, runs: int, max_runs: int,
              labels: Collection[str] | None = None) -> tuple[list[Latency], list[Case], float, list[float]]:
    """(measured cases, cases without an installed model, server RSS in MiB with all bundles
    loaded, round trips of `ping` in ms: a request with no tool, no result and no thread).
    Every case, or those `labels` name."""
    store = ModelStore.from_dir(bundles)
    ctx = ToolContext(store)
    measured, missing = [], []
    ids = (f"bench{n}" for n in itertools.count())
    with server_process(bundles, "--log-level", "debug", stderr=True) as (proc, port, _), \
            BridgeClient(port=port, timeout=300) as client:
        tool_times = ToolTimes(proc.stderr)
        rss = rss_mb(proc.pid)
        for case in (c for c in cases() if labels is None or c.label in labels):
            if not installed(store, case.tool, case.kind):
                missing.append(case)
                continue
            n = runs if case.setting == "default" else max_runs
            local = timed(lambda: TOOLS[case.tool](list(case.clips), case.params, ctx), n)
            before = cpu_ms(proc.pid)
            rids: list[str] = []

            def remote_call() -> None:
                rids.append(next(ids))
                client.run(case.tool, case.clips, request_id=rids[-1], **case.params)

            remote = timed(remote_call, n)
            server_cpu = (cpu_ms(proc.pid) - before) / (n + 1)  # timed() makes n + 1 calls (one warm-up)
            in_server = [tool_times.of(rid) for rid in rids[1:]]  # the warm-up call is not timed
            added = [wall - tool for wall, tool in zip(remote.wall_ms, in_server)]
            stages = [tool_times.stages[rid] for rid in rids[1:]]
            stage_ms = {name: [one.get(name, math.nan) for one in stages] for name in STAGE_NAMES}
            stage_ms[OUTSIDE] = [more - sum(one.get(name, math.nan) for name in STAGE_NAMES)
                                 for more, one in zip(added, stages)]
            measured.append(Latency(case, local.wall_ms, remote.wall_ms, local.cpu_ms, server_cpu, remote.cpu_ms,
                                    in_server, added, stage_ms))
        pings = timed(client.ping, 4 * runs).wall_ms
    return measured, missing, rss, pings


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
             "| server − in-process p50 ms | % | tool in server p50 ms | server − tool in server, p50 of pairs ms | % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for item in measured:
        l50, l95 = p50_p95(item.local_ms)
        s50, s95 = p50_p95(item.server_ms)
        t50, a50 = statistics.median(item.tool_in_server_ms), statistics.median(item.added_ms)
        lines.append(f"| {item.case.label} | {len(item.local_ms)} | {l50:.1f} / {l95:.1f} | "
                     f"{statistics.median(item.local_cpu_ms):.1f} | {s50:.1f} / {s95:.1f} | {item.server_cpu_ms:.1f} | "
                     f"{statistics.median(item.client_cpu_ms):.1f} | {s50 - l50:+.1f} | {100 * (s50 - l50) / l50:+.0f}% | "
                     f"{t50:.1f} | {a50:+.2f} | {100 * a50 / t50:+.0f}% |")
    if missing:
        names = sorted({f"{c.tool} {c.kind}" for c in missing})
        lines += ["", f"Not installed (no bundle serves them, so not timed): {', '.join(names)}."]
    return "\n".join(lines)


STAGES_TEXT = (
    "The same requests, what the server adds split into its stages, from its log line for each request "
    "(bridge.jobs.STAGES): *handle* reads the request's packet, once decoded, up to the ACK; *to worker* is the "
    "hand-off to the worker thread; *check* checks the tool's clips but their notes; *send* checks each clip's "
    "notes, encodes and sends it, up to `done`; *outside the server* is the round trip less the tool and those "
    "four: the client's own work (preparing the request, reading the result), decoding the request's datagram, "
    "and the two wakes between the processes. Each column is the p50 of that stage over the timed runs, so a "
    "row's columns need not add up to its total.")


def stages_markdown(measured: list[Latency], pings: list[float]) -> str:
    """Where the added time goes, case by case, and the round trip of a ping beside it."""
    lines = [f"| case | added p50 ms | {' | '.join(STAGE_NAMES)} | {OUTSIDE} |",
             "|---|---|" + "---|" * (len(STAGE_NAMES) + 1)]
    for item in measured:
        cells = [statistics.median(item.stage_ms[name]) for name in [*STAGE_NAMES, OUTSIDE]]
        lines.append(f"| {item.case.label} | {statistics.median(item.added_ms):.2f} | "
                     + " | ".join(f"{ms:.2f}" for ms in cells) + " |")
    p50, p95 = p50_p95(pings)
    lines += ["", f"A `ping` through the same client, a request with no tool, no thread and one reply: "
                  f"{p50:.2f} ms p50, {p95:.2f} p95 ({len(pings)} runs)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case at default settings")
    parser.add_argument("--max-runs", type=int, default=3, help="timed runs per case at maximum settings")
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args()
    times = cold_start(args.bundles, args.startup_runs)
    measured, missing, rss, pings = latencies(args.bundles, args.runs, args.max_runs)
    print(startup_markdown(times, rss), latency_markdown(measured, missing), STAGES_TEXT,
          stages_markdown(measured, pings), sep="\n\n")


if __name__ == "__main__":
    main()
