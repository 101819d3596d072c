"""Play along through OSC: Duet's pause-to-answer latency, and whether Follow's bars come in time.

    .venv/bin/python bench/bench_duet.py [--bundles DIR] [--trials 200] [--follow-bars 24]

A `magenta-bridge serve` process serves the bundles; a DuetClient in this process plays.

Duet (the mode's defaults, 120 bpm 4/4, the shipped melody model): each trial sends a one-bar
phrase of eighth notes in C major, stamped as if just played, so that its last release is "now".
The bridge decides that the phrase has ended `LEAD` before the answer's first beat; the latency
is from that moment (computed here from the same clock: both processes read CLOCK_MONOTONIC) to
the moment the whole answer is in the client. Targets: p50 <= 20 ms, p99 <= 50 ms. Also checked:
the answer starts on the beat the rule gives, and arrives before that beat. The bridge makes the
answer ahead, once the player pauses (bridge/duet/runner.py, PREPARE), so the model's own time,
reported beside it (the same call in this process), is not part of that latency.

Follow (the mode's defaults, 180 bpm): the client plays eighth notes in real time for
`--follow-bars` bars; each next bar of drums must be in the client before that bar starts.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import time
from pathlib import Path

import bridge  # noqa: F401  (first: it pins OpenBLAS to one thread before NumPy loads, as in the server)
import numpy as np

from common import machine, percentile, server_process
from bridge.clip import TimeSignature
from bridge.duet import answers
from bridge.duet.client import DuetClient
from bridge.duet.modes import DUET, LEAD
from bridge.duet.session import DuetSession
from bridge.model_store import DEFAULT_BUNDLES_DIR, ModelStore

HERE = Path(__file__).resolve().parent
P50_TARGET, P99_TARGET = 20.0, 50.0  # ms
C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)


async def duet_trials(port: int, trials: int, tempo: float = 120.0) -> tuple[list[float], int, int]:
    """(latencies in ms, answers that started on the rule's beat, answers in the client before that beat)."""
    wait = DUET.resolve({})["wait"]
    rng = np.random.default_rng(0)
    latencies, on_beat, in_time = [], 0, 0
    async with DuetClient(port=port, sid="bench", timeout=30) as client:
        await client.start(tempo=tempo)
        loop = asyncio.get_running_loop()
        for trial in range(trials):
            base = 16.0 * (trial + 1)
            pitches = rng.choice(C_MAJOR, 8)
            for i, pitch in enumerate(pitches):  # eighth notes; the last release is the newest message
                client.note(base + 0.5 * i, int(pitch), 90)
                client.note(base + 0.5 * i + 0.45, int(pitch), 0)
            sent = loop.time()
            release = base + 3.95
            start = math.ceil(release + wait + LEAD * tempo / 60.0 - 1e-9)
            decided = sent + (start - LEAD * tempo / 60.0 - release) * 60.0 / tempo
            answer = await asyncio.wait_for(client.answers.get(), 10)
            latencies.append((answer.completed_at - decided) * 1000.0)
            on_beat += answer.start == start
            in_time += answer.completed_at < sent + (start - release) * 60.0 / tempo
        await client.stop()
    return latencies, on_beat, in_time


def model_ms(bundles: Path, runs: int = 50) -> list[float]:
    """The Continue call a default Duet answer makes, on a one-bar phrase, timed in this process."""
    store = ModelStore.from_dir(bundles)
    session = DuetSession(DUET.resolve({}), TimeSignature(4, 4), 120.0)
    for i, pitch in enumerate(C_MAJOR):
        session.note(0.5 * i, pitch, 90)
        session.note(0.5 * i + 0.45, pitch, 0)
    call = session.prepare(0.2)
    answers.make(session, call, store)  # warm caches, as the session's start does
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        answers.make(session, call, store)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


async def follow_bars(port: int, bars: int, tempo: float = 180.0) -> list[float]:
    """Seconds each bar's drums were in the client before the bar started (negative: late)."""
    margins = []
    async with DuetClient(port=port, sid="bench-follow", timeout=30) as client:
        await client.start(mode="follow", tempo=tempo)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1
        wall = lambda beat: t0 + beat * 60.0 / tempo
        # eighth notes, every other one left out in each bar's second half; each sent at its time
        notes = [(0.5 * i, 48 + i % 5) for i in range(bars * 8) if i % 8 < 4 or i % 2 == 0]
        events = sorted([(beat, pitch, 90) for beat, pitch in notes] + [(beat + 0.25, pitch, 0) for beat, pitch in notes])
        for beat, pitch, velocity in events:
            await asyncio.sleep(max(0.0, wall(beat) - loop.time()))
            client.note(beat, pitch, velocity)
        await asyncio.sleep(max(0.0, wall(bars * 4.0 + 0.5) - loop.time()))
        await client.stop()
        while not client.answers.empty():
            answer = client.answers.get_nowait()
            margins.append(wall(answer.start) - answer.completed_at)
    return margins


def report(bundles: Path, trials: int, bars: int) -> str:
    with server_process(bundles) as (_, port, _):
        latencies, on_beat, in_time = asyncio.run(duet_trials(port, trials))
        margins = asyncio.run(follow_bars(port, bars))
    p50, p95, p99 = statistics.median(latencies), percentile(latencies, 95), percentile(latencies, 99)
    model = model_ms(bundles)
    ok = lambda value, target: "ok" if value <= target else "MISSED"
    late = sum(m <= 0 for m in margins)
    return "\n".join([
        f"Duet: {trials} phrases at the mode's defaults (one bar of eighths, 120 bpm 4/4, the melody model), "
        f"decided {LEAD * 1000:.0f} ms (`LEAD`) before the answer's first beat.", "",
        "| measure | value | target | |", "|---|---|---|---|",
        f"| pause detected to answer in the client, p50 | {p50:.1f} ms | <= {P50_TARGET:g} ms | {ok(p50, P50_TARGET)} |",
        f"| same, p95 / p99 / max | {p95:.1f} / {p99:.1f} / {max(latencies):.1f} ms | p99 <= {P99_TARGET:g} ms | "
        f"{ok(p99, P99_TARGET)} |",
        f"| answers starting on the rule's beat | {on_beat}/{trials} | all | {'ok' if on_beat == trials else 'MISSED'} |",
        f"| answers in the client before that beat | {in_time}/{trials} | all | {'ok' if in_time == trials else 'MISSED'} |",
        f"| the model's own time, made ahead (in-process p50 / p99) | {statistics.median(model):.1f} / "
        f"{percentile(model, 99):.1f} ms | | |",
        "",
        f"Follow: {bars} bars of eighth notes played in real time at 180 bpm; each next bar of drums made from the "
        f"last two by the drumify model.", "",
        "| measure | value | target | |", "|---|---|---|---|",
        f"| bars of drums received | {len(margins)} | {bars} (one at each bar line after the first bar) | "
        f"{'ok' if len(margins) == bars else 'MISSED'} |",
        f"| in the client before their bar, min / median margin | {min(margins) * 1000:.1f} / "
        f"{statistics.median(margins) * 1000:.1f} ms | > 0 | {'ok' if not late else f'MISSED ({late} late)'} |",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--follow-bars", type=int, default=24)
    parser.add_argument("--output", type=Path, default=HERE / "DUET_RESULTS.md")
    args = parser.parse_args()
    info = machine()
    text = "\n".join(["# Play-along benchmark", "",
                      "Generated by `.venv/bin/python bench/bench_duet.py "
                      f"--trials {args.trials} --follow-bars {args.follow_bars}`; do not edit by hand.", "",
                      "## Machine", "", *(f"- {key}: {value}" for key, value in info.items()), "",
                      "## Results", "", report(args.bundles, args.trials, args.follow_bars), ""])
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
