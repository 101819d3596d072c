"""Latency of Groove and Drumify on a 4-bar clip at default settings: NumPy serving vs Keras.

    .venv/bin/python bench/bench_groove.py [--reps 30] [--humanize DIR] [--tap DIR]

NumPy: the whole tool call (clip -> tensors -> 3 overlapping windows -> clips). Keras: the
same work on the same weights as one compiled tf.function: the encoder over all windows, then
the autoregressive decoder for all windows at once, its step loop unrolled in the graph —
without the clip handling, so the ratio favours Keras if anything. Both on one thread; wall
p50 / p90 and CPU p50 (this process's CPU time). Target: NumPy p50 < 15 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.bundle import load_bundle  # noqa: E402
from bridge.clip import Clip, Note  # noqa: E402
from bridge.encodings import groove as enc  # noqa: E402
from bridge.meter import MeterGrid  # noqa: E402
from bridge.models.groovae import GrooVAE  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from common import timed  # noqa: E402


def four_bar_beat() -> Clip:
    notes = []
    for i in range(32):  # 8th-note hats, kick on 1 and 3, snare on 2 and 4
        notes.append(Note(42, i / 2, 0.25, 90))
        if i % 4 == 0:
            notes.append(Note(36 if i % 8 == 0 else 38, i / 2, 0.25, 110))
    return Clip(tuple(notes), 16.0, name="bench")


def keras_runner(bundle, serving: GrooVAE, performance: np.ndarray, grid: MeterGrid):
    """A Keras GrooVAE with the bundle's weights, decoding the clip's windows as serving does:
    the same windows on the clip's grid, the decoder reading each step's bar position (a
    meter-aware model) and the step's encoder input (a `dec_inputs` model)."""
    import tensorflow as tf

    from bridge.models.configs import ModelConfig
    from bridge.train.families import groovae as family

    cfg = bundle.config
    config = ModelConfig(cfg["name"], "groovae", cfg["kind"], tuple(cfg["tools"]), "groove", {}, cfg["hparams"])
    width = serving.window
    model = family.build(config)
    encoded_grid = np.array([[grid.steps_per_quarter, grid.bar_steps, grid.beat_steps]])
    model(family.prepare_batch({"performance": np.zeros((1, width, enc.FEATURES), np.float32), "grid": encoded_grid},
                               config))
    w = bundle.weights
    for layer in (model.enc_fw, model.enc_bw, *model.dec):
        layer.set_weights([w[f"{layer.name}/kernel"], w[f"{layer.name}/recurrent_kernel"], w[f"{layer.name}/bias"]])
    for layer in (model.mu, model.sigma, model.dec_init, model.out):
        layer.set_weights([w[f"{layer.name}/kernel"], w[f"{layer.name}/bias"]])
    starts = enc.windows(len(performance), width, grid.bar_steps * max(1, (width // 2) // grid.bar_steps))
    padded = np.zeros((starts[-1] + width, enc.FEATURES), np.float32)
    padded[:len(performance)] = performance
    windows = enc.encoder_inputs(np.stack([padded[s:s + width] for s in starts]), model.mode)
    inputs = tf.constant(windows)
    positions = tf.constant(np.stack([serving.positions(grid, s, width) for s in starts]))
    n = enc.NUM_CLASSES

    @tf.function
    def run():
        """Encoder over every window, then all windows decoded together, the step loop
        unrolled in one graph: how Keras would serve it."""
        mu, sigma = model.encode(inputs)
        z = mu + sigma * tf.random.normal(tf.shape(mu))
        flat, at, states = model.dec_init(z), 0, []
        for units in model.dec_units:
            states.append([flat[:, at:at + units], flat[:, at + units:at + 2 * units]])
            at += 2 * units
        prev = tf.zeros((len(starts), enc.FEATURES))
        for t in range(width):
            x = tf.concat([prev, z, positions[:, t]] + ([inputs[:, t]] if model.dec_inputs else []), axis=-1)
            for k, layer in enumerate(model.dec):
                x, states[k] = layer.cell(x, states[k])
            y = model.out(x)
            hits = tf.cast(tf.random.uniform(tf.shape(y[:, :n])) < tf.sigmoid(y[:, :n]), tf.float32)
            prev = tf.concat([hits, tf.sigmoid(y[:, n:2 * n]) * hits, tf.tanh(y[:, 2 * n:]) * hits], -1)
        return prev

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--humanize", type=Path, default=ROOT / "bundles" / "groovae_humanize")
    parser.add_argument("--tap", type=Path, default=ROOT / "bundles" / "groovae_tap2drum")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    clip = four_bar_beat()
    ctx = ToolContext(models=None)
    print(f"4-bar clip, default parameters, {args.reps} runs, one thread each; times in ms (wall p50 / p90, cpu p50);"
          " Keras: one compiled call for all windows")
    for tool, path in (("groove", args.humanize), ("drumify", args.tap)):
        bundle = load_bundle(path)
        model = GrooVAE.from_bundle(bundle)
        params = TOOLS[tool].resolve({"seed": 0})
        ours = timed(lambda: getattr(model, tool)(clip, params, ctx), args.reps)
        numpy_ms = ours.wall_ms
        if tool == "groove":
            perf = np.zeros((enc.num_steps(clip.length), enc.FEATURES), np.float32)
            for note in clip.notes:
                perf[enc.grid_position(note.start)[0], {36: 0, 38: 1, 42: 2}[note.pitch]] = 1.0
        else:
            perf = enc.encode([enc.Hit(n.start, 0, n.velocity) for n in clip.notes], enc.num_steps(clip.length))
        theirs = timed(keras_runner(bundle, model, perf, model.grid_for(clip)), max(5, args.reps // 3))
        keras_ms = theirs.wall_ms
        p50, k50 = statistics.median(numpy_ms), statistics.median(keras_ms)
        ncpu, kcpu = statistics.median(ours.cpu_ms), statistics.median(theirs.cpu_ms)
        print(f"{tool:8s} numpy {p50:7.2f} / {np.percentile(numpy_ms, 90):7.2f} cpu {ncpu:7.2f}   keras {k50:8.2f} / "
              f"{np.percentile(keras_ms, 90):8.2f} cpu {kcpu:7.2f}   keras/numpy {k50 / p50:5.1f}x   target p50 < 15: "
              f"{'yes' if p50 < 15 else 'NO'}")


if __name__ == "__main__":
    main()
