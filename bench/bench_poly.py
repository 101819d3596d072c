"""Continue poly latency: the NumPy polyphonic model through the Continue tool, as a request runs it.

    .venv/bin/python bench/bench_poly.py [--bundles bundles] [--repeats 30]

For each installed poly_rnn bundle, times the Continue tool at its defaults (type auto, which
picks the poly model for chords; 4 variations, 2 bars) on a 4-bar four-voice chorale, then at
8 variations x 32 bars, and prints p50/p95 with the notes added per variation (the model runs
once per note-on, note-off and time-shift, so latency follows the number of notes). Runs on one thread, as a
shared machine would give it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from common import chorale_clip, p50_p95  # noqa: E402

from bridge.model_store import ModelStore  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402

CASES = (("defaults: 4 variations x 2 bars", {}), ("8 variations x 32 bars", {"variations": 8, "length": 32}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=Path(__file__).resolve().parent.parent / "bundles")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    store = ModelStore.from_dir(args.bundles)
    clip = chorale_clip(4)
    print(f"{'bundle':<12} {'case':<34} {'p50':>9} {'p95':>9} {'notes added/variation':>22}")
    for item in store.loaded:
        if item.bundle.config["model_class"] != "poly_rnn":
            continue
        for label, params in CASES:
            repeats = args.repeats if not params else max(3, args.repeats // 6)
            request = {"seed": 0, "bundle": item.name, **params}
            TOOLS["continue"]([clip], request, ToolContext(store))  # warm-up: the grid's tables
            times, added = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                outs = TOOLS["continue"]([clip], request, ToolContext(store))
                times.append(1000 * (time.perf_counter() - start))
                added += [len(out.notes) - len(clip.notes) for out in outs]
            p50, p95 = p50_p95(times)
            print(f"{item.name:<12} {label:<34} {p50:>7.1f}ms {p95:>7.1f}ms {statistics.fmean(added):>22.0f}")


if __name__ == "__main__":
    main()
