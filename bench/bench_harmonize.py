"""Latency of Harmonize on an 8-bar melody: the whole tool at defaults and at other numbers of
Gibbs passes, NumPy beside Keras.

    .venv/bin/python bench/bench_harmonize.py [--bundles bundles] [--runs 20]

NumPy runs the whole tool (clip in, four voices out) exactly as the server does. Keras runs the
same Gibbs sampler (masks, sampling) with the network's logits from a compiled tf.function on
the same weights, so the ratio is the serving engine against the training framework. Both sides
on one thread (TensorFlow took both cores unasked, and spent 1.4x its wall time in CPU), their
runs taken in turns (common.timed_together). Prints wall p50/p95 and CPU p50 in ms; ratio =
Keras wall p50 / NumPy wall p50. Target: NumPy p50 < 1500 ms at the defaults.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bridge.clip import Clip, Note  # noqa: E402
from bridge.model_store import DEFAULT_BUNDLES_DIR  # noqa: E402
from bridge.models.coconet import Coconet  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from common import Timing, bundles_of, p50_p95, timed_together  # noqa: E402

TARGET_MS = 1500.0
ITERATIONS = (8, 16, 32, 64, 128)


def melody(bars: int = 8, seed: int = 0) -> Clip:
    """A soprano-like line in G major: quarters, eighths and halves, mostly by step, around D5."""
    rng = np.random.default_rng(seed)
    scale = [p for p in range(62, 80) if p % 12 in (7, 9, 11, 0, 2, 4, 6)]
    notes, t, at = [], 0.0, scale.index(74)
    while t < bars * 4:
        duration = float(rng.choice([1.0, 1.0, 0.5, 2.0]))
        at = int(np.clip(at + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(scale) - 1))
        notes.append(Note(scale[at], t, min(duration, bars * 4 - t), 90))
        t += duration
    return Clip(notes, bars * 4.0, name="bench melody")


class KerasLogits:
    """Coconet.logits computed by the Keras model on the bundle's weights."""

    def __init__(self, bundle) -> None:
        import tensorflow as tf

        from bridge.models.configs import CONFIGS
        from bridge.train.families import coconet as family

        base = CONFIGS[bundle.config["config"]]
        config = base.with_hparams({k: v for k, v in bundle.config["hparams"].items() if k in base.hparams})
        self.model = family.build(config)
        self.model(family.prepare_batch({"voices": np.zeros((1, 16, 4), np.int8), "length": np.array([16], np.int16),
                                         "meter": np.array([[16, 4, 0]], np.int16)}, config))
        for layer in (self.model.inp, *self.model.res, self.model.out):
            layer.set_weights([bundle.weights[f"{layer.name}/kernel"], bundle.weights[f"{layer.name}/bias"]])
        self.fn = tf.function(lambda c, m, p: self.model.logits(c, m, p, tf.ones(tf.shape(c)[:2])), reduce_retracing=True)
        self.tf = tf

    def __call__(self, classes: np.ndarray, mask: np.ndarray, position: np.ndarray) -> np.ndarray:
        tf = self.tf
        position = np.broadcast_to(position, classes.shape[:2] + position.shape[-1:])
        return self.fn(tf.constant(classes, tf.int32), tf.constant(mask, tf.float32), tf.constant(position, tf.float32)).numpy()


def summary(t: Timing) -> tuple[float, float, float]:
    """Wall p50, wall p95 and CPU p50 in ms."""
    return (*p50_p95(t.wall_ms), p50_p95(t.cpu_ms)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-keras", action="store_true", help="time NumPy only")
    args = parser.parse_args()
    if not args.no_keras:  # before TensorFlow runs anything: it cannot be changed after
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    store, found = bundles_of(args.bundles, "coconet")
    if not found:
        return 1
    ctx, clip = ToolContext(models=store), melody()
    defaults = TOOLS["harmonize"].resolve({})
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; 8-bar 4/4 melody "
          f"({len(clip.notes)} notes); one thread each side; times in ms")
    print(f"{'bundle':<18} {'case':<26} {'numpy p50':>9} {'p95':>7} {'cpu':>7} {'keras p50':>9} {'p95':>7} {'cpu':>7} {'ratio':>6}")
    for item in found:
        name = item.bundle.name
        keras = None if args.no_keras else Coconet(item.bundle.weights, item.model.hp, name)
        if keras is not None:
            keras.logits = KerasLogits(item.bundle)
        for iterations in sorted({defaults["iterations"], *ITERATIONS}):
            params = {"seed": 0, "iterations": iterations, "bundle": name}
            label = f"{iterations} passes" + (" (default)" if iterations == defaults["iterations"] else "")
            calls = [lambda: TOOLS["harmonize"]([clip], params, ctx)]
            if keras is not None:
                calls.append(lambda: keras.harmonize([clip], TOOLS["harmonize"].resolve(params), ctx))
            timings = timed_together(calls, args.runs)
            n50, n95, ncpu = summary(timings[0])
            line = f"{name:<18} {label:<26} {n50:>9.1f} {n95:>7.1f} {ncpu:>7.1f}"
            if keras is not None:
                k50, k95, kcpu = summary(timings[1])
                line += f" {k50:>9.1f} {k95:>7.1f} {kcpu:>7.1f} {k50 / n50:>6.2f}"
            if iterations == defaults["iterations"]:
                line += f"   target p50 < {TARGET_MS:g}: {'yes' if n50 < TARGET_MS else 'NO'}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
