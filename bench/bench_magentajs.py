"""Speed anchor: magenta.js (@magenta/music 1.23.1 under node, tfjs CPU backend) beside the
bridge's NumPy serving classes, on the same weights exported with `export --format magenta-js`.

    .venv/bin/python bench/bench_magentajs.py [--reps 10]

Models: random-weight bundles at the shipped configs' sizes (weights do not change speed):
an events RNN 2 x 128 one-hot melody (the layout magenta.js's MusicRNN runs) and a 2-bar
melody MusicVAE (bi[256] -> [256], z 64). Cases, one variation each, as magenta.js runs them:
  continue: a 1-bar primer continued by 4 bars (64 steps), temperature 1
  generate: decode one 2-bar window from a z, temperature 1
Node times the model call only (`continueSequence`, `decodeTensors`), mean over --reps after a
warm-up; NumPy times `EventsRNN.sample` and `MusicVAE.decode`, median over the same count.
ratio = magenta.js / NumPy (above 1: NumPy is faster). magenta.js in a browser would use WebGL
and be faster than node's pure-JS CPU backend; this anchors against the CPU path only.
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

PRIMER = [(60, 0, 2), (62, 2, 4), (64, 4, 8), (67, 8, 12), (64, 12, 16)]
CONTINUE_STEPS = 64


def numpy_seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
        rnn_path = events_bundle(root / "b" / "rnn", "melody", 128, 2)
        vae_path = vae_bundle(root / "b" / "vae", "melody", 256, [256], 64)
        export_js(rnn_path, root / "js" / "rnn")
        export_js(vae_path, root / "js" / "vae")
        rnn = EventsRNN.from_bundle(load_bundle(rnn_path))
        vae = MusicVAE.from_bundle(load_bundle(vae_path))
        z = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
        with serve(root / "js") as url:
            js_rnn, js_vae = run_jobs(package, [
                {"kind": "rnn", "url": f"{url}/rnn", "primer": PRIMER, "primerSteps": 16, "steps": CONTINUE_STEPS,
                 "reps": args.reps, "temperature": 1.0},
                {"kind": "vae", "url": f"{url}/vae", "z": z.tolist(), "reps": args.reps, "temperature": 1.0}],
                timeout=600)
    primer = rnn.encoding.encode(PRIMER, 16)
    rng = np.random.default_rng(1)
    cases = {
        "continue 1 x 64 steps (2x128 LSTM)": (js_rnn["seconds"],
                                                numpy_seconds(lambda: rnn.sample(primer, CONTINUE_STEPS, 1, 1.0, rng), args.reps)),
        "generate 1 x 2 bars (MusicVAE [256], z 64)": (js_vae["seconds"],
                                                      numpy_seconds(lambda: vae.decode(z, rng, 1.0), args.reps)),
    }
    print(f"{'case':<46} {'magenta.js ms':>14} {'NumPy ms':>10} {'ratio':>7}")
    for name, (js, ours) in cases.items():
        print(f"{name:<46} {js * 1000:>14.1f} {ours * 1000:>10.2f} {js / ours:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
