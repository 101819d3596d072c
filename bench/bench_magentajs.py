"""Speed anchor: magenta.js (@magenta/music 1.23.1 under node, tfjs CPU backend) beside the
bridge's NumPy serving classes, on the same weights exported with `export --format magenta-js`.

    .venv/bin/python bench/bench_magentajs.py [--reps 10]

Models: random-weight bundles (weights do not change speed): events RNNs of 2 x 128, 2 x 256
and 2 x 512 LSTMs on one-hot melody (the layout magenta.js's MusicRNN runs; Magenta's
MelodyRNN configs span these sizes) and a 2-bar melody MusicVAE (bi[256] -> [256], z 64). Cases:
  continue at Magenta Studio's defaults: 4 variations of a 2-bar primer (32 steps) continued
    by 2 bars (32 steps), temperature 1. magenta.js continues one sequence a call, as Studio
    calls it once per variation: its time is 4 x the mean of one `continueSequence`; NumPy
    samples the 4 variations in one batch (`EventsRNN.sample`, primer read once).
  generate: decode one 2-bar window from a z, temperature 1 (`decodeTensors` / `MusicVAE.decode`).
Node times the model call only, mean over --reps after a warm-up; NumPy the same calls, median
over the same count, wall and CPU time, one BLAS thread. ratio = magenta.js / NumPy wall time
(above 1: NumPy is faster). magenta.js in a browser would use WebGL and be faster than node's
pure-JS CPU backend; this anchors against the CPU path only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

from bridge.bundle import load_bundle  # noqa: E402
from bridge.interop.magenta_js import export_js  # noqa: E402
from bridge.models.events_rnn import EventsRNN  # noqa: E402
from bridge.models.music_vae import MusicVAE  # noqa: E402
from interop_js.mmjs import Unavailable, ensure_magenta_js, events_bundle, run_jobs, serve, vae_bundle  # noqa: E402

PRIMER = [(60, 0, 2), (62, 2, 4), (64, 4, 8), (67, 8, 12), (64, 12, 16),
          (65, 16, 20), (64, 20, 24), (62, 24, 28), (60, 28, 32)]
PRIMER_STEPS, CONTINUE_STEPS, VARIATIONS = 32, 32, 4  # Magenta Studio's Continue defaults
RNN_UNITS = (128, 256, 512)


def numpy_seconds(fn, reps: int) -> tuple[float, float]:
    """Median wall and CPU seconds of fn after a warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    try:
        package = ensure_magenta_js()
    except Unavailable as exc:
        print(f"magenta.js unavailable: {exc}")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-mmjs-") as tmp:
        root = Path(tmp)
        rnns = {}
        for units in RNN_UNITS:
            path = events_bundle(root / "b" / f"rnn{units}", "melody", units, 2)
            export_js(path, root / "js" / f"rnn{units}")
            rnns[units] = EventsRNN.from_bundle(load_bundle(path))
        vae_path = vae_bundle(root / "b" / "vae", "melody", 256, [256], 64)
        export_js(vae_path, root / "js" / "vae")
        vae = MusicVAE.from_bundle(load_bundle(vae_path))
        z = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
        with serve(root / "js") as url:
            *js_rnns, js_vae = run_jobs(package, [
                *({"kind": "rnn", "url": f"{url}/rnn{units}", "primer": PRIMER, "primerSteps": PRIMER_STEPS,
                   "steps": CONTINUE_STEPS, "reps": args.reps, "temperature": 1.0} for units in RNN_UNITS),
                {"kind": "vae", "url": f"{url}/vae", "z": z.tolist(), "reps": args.reps, "temperature": 1.0}],
                timeout=1200)
    rng = np.random.default_rng(1)
    cases = {}
    for units, js in zip(RNN_UNITS, js_rnns):
        rnn = rnns[units]
        primer = rnn.encoding.encode(PRIMER, PRIMER_STEPS)
        cases[f"continue {VARIATIONS} x (32 + 32 steps), 2x{units} LSTM"] = (VARIATIONS * js["seconds"], numpy_seconds(
            lambda: rnn.sample(primer, CONTINUE_STEPS, VARIATIONS, 1.0, rng), args.reps))
    cases["generate 1 x 2 bars (MusicVAE [256], z 64)"] = (js_vae["seconds"],
                                                          numpy_seconds(lambda: vae.decode(z, rng, 1.0), args.reps))
    print(f"{'case':<46} {'magenta.js ms':>14} {'NumPy ms':>10} {'cpu ms':>8} {'ratio':>7}")
    for name, (js, (wall, cpu)) in cases.items():
        print(f"{name:<46} {js * 1000:>14.1f} {wall * 1000:>10.2f} {cpu * 1000:>8.2f} {js / wall:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
