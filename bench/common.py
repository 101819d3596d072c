"""What the server benchmarks share: the machine's description, percentiles, input clips, the
tool cases (Magenta Studio's defaults and the maximum settings), and a bridge in its own process.

The server runs as a separate process, started exactly as `magenta-bridge serve` starts, so its
numbers include the real receive loop and no GIL shared with the measuring client.
"""
from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

# As the server runs (bridge/__init__.py sets it, but NumPy is imported here first): the
# in-process side must run the tools on one BLAS thread too, or it measures another engine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bench_startup import command, free_port, wait_for_pong  # noqa: E402
from bridge.clip import Clip, Note  # noqa: E402
from bridge.model_store import ModelStore  # noqa: E402
from bridge.saving import DRUM_TOOLS  # noqa: E402
from bridge.tools import TOOLS, ModelNotInstalled  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Parameters that choose what to make, not how much: left at their defaults in "max" cases.
NOT_SIZE = ("seed", "scale_root")


def _first_line(path: str, prefix: str) -> str | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict[str, str]:
    """What a reader needs to compare these numbers with theirs; load matters on a shared box."""
    mem_kb = _first_line("/proc/meminfo", "MemTotal")
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _first_line("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable by this process",
        "ram": f"{int(mem_kb.split()[0]) / 1024**2:.1f} GiB" if mem_kb else "unknown",
        "load average (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "commit": commit or "unknown",
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation between runs."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def p50_p95(values: Sequence[float]) -> tuple[float, float]:
    return statistics.median(values), percentile(values, 95)


@dataclass(frozen=True)
class Timing:
    wall_ms: list[float]
    cpu_ms: list[float]  # this process's CPU time: on a box shared with training jobs the wall
    # time also holds the time spent waiting for a core, which says more about the box than the code


def timed(fn: Callable[[], object], runs: int) -> Timing:
    """Milliseconds per call, wall and CPU, after one untimed warm-up call (first calls fill
    caches and trace graphs)."""
    return timed_together([fn], runs)[0]


def timed_together(fns: Sequence[Callable[[], object]], runs: int) -> list[Timing]:
    """`timed` for calls compared with each other, taken in turns (A B C, then B C A, ...)
    rather than all of A's runs before B's: a slow spell of a shared machine (on this 2-core
    VM, one case's NumPy p50 once read 28 ms against 19 the run before and after) then slows
    every side alike instead of one, and a ratio of p50s measures the code."""
    for fn in fns:
        fn()
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    for run in range(runs):
        for k in range(len(fns)):
            i = (run + k) % len(fns)
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[i]()
            wall[i].append((time.perf_counter() - start) * 1000)
            cpu[i].append((time.process_time() - start_cpu) * 1000)
    return [Timing(w, c) for w, c in zip(wall, cpu)]


def melody_clip(bars: int = 4, seed: int = 0) -> Clip:
    """Eighth notes wandering around middle C: a busy but ordinary lead line."""
    rng = np.random.default_rng(seed)
    return Clip([Note(60 + int(rng.integers(-7, 8)), i * 0.5, 0.5, 100) for i in range(bars * 8)],
                bars * 4.0, name=f"melody {seed}")


def drum_clip(bars: int = 4, seed: int = 0) -> Clip:
    """Eighth-note hats, kick on 1 and 3, snare on 2 and 4, a varying ghost snare per seed."""
    notes = []
    for i in range(bars * 8):
        notes.append(Note(42, i * 0.5, 0.25, 80))
        if i % 4 in (0, 2):
            notes.append(Note(36 if i % 4 == 0 else 38, i * 0.5, 0.25, 110))
        if i % 8 == 5 + seed % 3:
            notes.append(Note(38, i * 0.5 + 0.25, 0.25, 40))
    return Clip(notes, bars * 4.0, name=f"drums {seed}")


def chorale_clip(bars: int = 4, seed: int = 0) -> Clip:
    """Four voices (bass 44-55, tenor 56-67, alto 59-70, soprano 65-76: the chorales' registers)
    on a C major chord a beat, each bar ending on the tonic: what a chorale or a block-chord
    part sends Continue."""
    rng = np.random.default_rng(seed)
    chords = ((0, 4, 7), (5, 9, 0), (7, 11, 2), (9, 0, 4), (2, 5, 9))
    notes = []
    for beat in range(bars * 4):
        chord = chords[0] if beat % 4 == 3 else chords[int(rng.integers(len(chords)))]
        turn = int(rng.integers(3))
        for low, pc in ((44, chord[0]), (56, chord[turn]), (59, chord[(turn + 1) % 3]), (65, chord[(turn + 2) % 3])):
            notes.append(Note(low + (pc - low) % 12, float(beat), 1.0, 80))
    return Clip(notes, bars * 4.0, name=f"chorale {seed}")


def inputs(tool: str, kind: str) -> list[Clip]:
    """Four-bar inputs, as many as the tool takes: drums for drum tools, the rhythm of a lead for
    drumify, four voices for the polyphonic model."""
    make = melody_clip if tool == "drumify" else {"drums": drum_clip, "poly": chorale_clip}.get(kind, melody_clip)
    return [make(4, seed) for seed in range(TOOLS[tool].min_inputs)]


@dataclass(frozen=True)
class Case:
    tool: str
    kind: str
    setting: str  # "default" or "max"
    params: dict[str, Any]
    clips: tuple[Clip, ...]

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items() if k not in ("type", "seed"))
        return f"{self.tool} {self.kind} {self.setting}" + (f" ({shown})" if shown else "")


def kinds(tool: str) -> tuple[str, ...]:
    """The model families a tool can run: its `type` choices (less "auto", which picks one of
    them), chorale for Harmonize, or drums for the drum-only tools."""
    for param in TOOLS[tool].params:
        if param.name == "type":
            return tuple(c for c in param.choices if c != "auto")
    return ("drums",) if tool in DRUM_TOOLS else ("chorale",)


def cases(settings: Sequence[str] = ("default", "max")) -> list[Case]:
    """Every tool and family at the parameter table's defaults (Magenta Studio's) and at the largest sizes."""
    out = []
    for name, tool in TOOLS.items():
        for kind in kinds(name):
            for setting in settings:
                params: dict[str, Any] = {"seed": 0}
                if any(p.name == "type" for p in tool.params):
                    params["type"] = kind
                if setting == "max":
                    params.update({p.name: int(p.max) for p in tool.params
                                   if p.kind == "int" and p.max is not None and p.name not in NOT_SIZE})
                out.append(Case(name, kind, setting, params, tuple(inputs(name, kind))))
    return out


def bundles_of(folder: Path, model_class: str) -> tuple[ModelStore, list]:
    """The models of a bundles folder, and those of one model class (a message when there are none)."""
    store = ModelStore.from_dir(folder)
    found = [item for item in store.loaded if item.bundle.config["model_class"] == model_class]
    if not found:
        print(f"no {model_class} bundles in {folder}")
    return store, found


def installed(store: ModelStore, tool: str, kind: str) -> bool:
    try:
        store.require(tool, kind)
    except ModelNotInstalled:
        return False
    return True


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux), in MiB."""
    value = _first_line(f"/proc/{pid}/status", "VmRSS")
    if value is None:
        raise RuntimeError(f"no VmRSS for process {pid}: not Linux, or the process is gone")
    return int(value.split()[0]) / 1024


@contextmanager
def server_process(bundles: Path, *extra: str, stderr: bool = False) -> Iterator[tuple[subprocess.Popen, int, float]]:
    """`magenta-bridge serve` on a free loopback port: (process, port, seconds to first pong);
    with `stderr`, its log comes back as text on `process.stderr` (read it, or the pipe fills)."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([*command(port, bundles), *extra], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE if stderr else None, text=stderr)
    try:
        yield proc, port, wait_for_pong(proc, port, start, limit=120.0)
    finally:
        proc.terminate()
        proc.wait(10)
