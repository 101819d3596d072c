"""Latency of Groove and Drumify on a 4-bar clip at default settings: NumPy serving vs Keras.

    .venv/bin/python bench/bench_groove.py [--reps 30] [--humanize DIR] [--tap DIR]

Equal work on both sides, as `GrooVAE.perform` does it for the tool: the encoder over every
window of the clip, then the windows decoded one after another, each replaying the overlap the
window before it decoded (its prefix) and running on from there, with the tool's variations as
the batch, the clip's known hits and the tool's hit sampling. NumPy: `perform` itself; Keras:
the same on the same weights as one compiled tf.function, every window's step loop unrolled in
the graph. "tool" is the whole NumPy tool call (clip -> tensors -> perform -> clips), the time
the target is for; the three are timed in turns (common.timed_together). Before timing, both
decode with z at the posterior mean and the hits given, and the largest difference of their
outputs is printed: the same work. Both on one thread; wall p50 / p90 and CPU p50 (this
process's CPU time) in ms; ratio = Keras wall p50 / NumPy wall p50 (above 1: NumPy is faster).
Target: tool p50 < 15 ms.
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
from bridge.models.groovae import NUM_CLASSES, GrooVAE  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from common import timed_together  # noqa: E402


def four_bar_beat() -> Clip:
    notes = []
    for i in range(32):  # 8th-note hats, kick on 1 and 3, snare on 2 and 4
        notes.append(Note(42, i / 2, 0.25, 90))
        if i % 4 == 0:
            notes.append(Note(36 if i % 8 == 0 else 38, i / 2, 0.25, 110))
    return Clip(tuple(notes), 16.0, name="bench")


def keras_runner(bundle, serving: GrooVAE, performance: np.ndarray, grid: MeterGrid, variations: int,
                 temperature: float, known_hits: np.ndarray | None, sample_hits: bool):
    """A Keras GrooVAE with the bundle's weights doing what `serving.perform` does: the same
    windows on the clip's grid, decoded in order, each replaying its prefix (the overlap with
    the window before) and reading each step's bar position (a meter-aware model) and encoder
    input (a `dec_inputs` model)."""
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
    steps = len(performance)
    starts = enc.windows(steps, width, grid.bar_steps * max(1, (width // 2) // grid.bar_steps))
    padded = np.zeros((starts[-1] + width, enc.FEATURES), np.float32)
    padded[:steps] = performance
    windows = enc.encoder_inputs(np.stack([padded[s:s + width] for s in starts]), model.mode)
    inputs = tf.constant(windows)
    positions = [tf.constant(np.broadcast_to(p, (variations, *p.shape)))
                 for p in (serving.positions(grid, s, width) for s in starts)]
    controls = [tf.constant(np.broadcast_to(windows[i], (variations, *windows[i].shape))) for i in range(len(starts))]
    known = np.zeros((len(padded), NUM_CLASSES), np.float32)
    if known_hits is not None:
        known[:steps] = known_hits
    known = tf.constant(np.broadcast_to(known[None], (variations, *known.shape)))
    n = NUM_CLASSES

    @tf.function
    def run():
        mu, sigma = model.encode(inputs)
        eps = tf.random.normal([variations, serving.z_size]) * temperature
        out = {}  # step of the clip -> [variations, 27], the latest window's output
        for i, s in enumerate(starts):
            z = mu[i] + sigma[i] * eps
            flat, at, states = model.dec_init(z), 0, []
            for units in model.dec_units:
                states.append([flat[:, at:at + units], flat[:, at + units:at + 2 * units]])
                at += 2 * units
            overlap = starts[i - 1] + width - s if i else 0
            prev = tf.zeros((variations, enc.FEATURES))
            for t in range(width):
                x = tf.concat([prev, z, positions[i][:, t]] + ([controls[i][:, t]] if model.dec_inputs else []), -1)
                for k, layer in enumerate(model.dec):
                    x, states[k] = layer.cell(x, states[k])
                y = model.out(x)
                if t < overlap:  # the prefix: what the window before decoded here
                    prev = out[s + t]
                    continue
                hits = known[:, s + t]
                if sample_hits:
                    drawn = tf.random.uniform(tf.shape(y[:, :n])) < tf.sigmoid(y[:, :n] / max(temperature, 1e-3))
                    hits = tf.maximum(hits, tf.cast(drawn, tf.float32))
                prev = out[s + t] = tf.concat([hits, tf.sigmoid(y[:, n:2 * n]) * hits, tf.tanh(y[:, 2 * n:]) * hits], -1)
        return tf.stack([out[t] for t in range(steps)], axis=1)

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
    print(f"4-bar clip, default parameters, {args.reps} runs, one thread each; times in ms (wall p50 / p90, cpu p50); "
          "equal work: perform's windows, in order, each replaying its prefix")
    for tool, path in (("groove", args.humanize), ("drumify", args.tap)):
        bundle = load_bundle(path)
        model = GrooVAE.from_bundle(bundle)
        params = TOOLS[tool].resolve({"seed": 0})
        grid = model.grid_for(clip)
        spq = grid.steps_per_quarter
        steps = enc.num_steps(clip.length, spq)
        if tool == "groove":  # as GrooVAE.groove reads the clip: its hits, with ghost notes only if asked
            perf = np.zeros((steps, enc.FEATURES), np.float32)
            for note in clip.notes:
                perf[enc.grid_position(note.start, spq)[0], {36: 0, 38: 1, 42: 2}[note.pitch]] = 1.0
            known, sample = perf[:, :NUM_CLASSES], bool(params["ghost_notes"]) and float(params["amount"]) > 0
        else:  # as GrooVAE.drumify: the onsets, every hit sampled
            perf = enc.encode([enc.Hit(n.start, 0, n.velocity) for n in clip.notes], steps, spq)
            known, sample = None, True
        variations, temperature = int(params["variations"]), float(params["temperature"])
        # Same work, checked: with z at the posterior mean and the hits given, both sides decode
        # the same numbers (the prefixes, positions and controls included).
        given = perf[:, :NUM_CLASSES]
        same = np.abs(model.perform(perf, 2, 0.0, np.random.default_rng(0), given, False, None, grid)
                      - keras_runner(bundle, model, perf, grid, 2, 0.0, given, False)().numpy()).max()
        rng = np.random.default_rng(0)
        ours, theirs, whole = timed_together([
            lambda: model.perform(perf, variations, temperature, rng, known, sample, None, grid),
            keras_runner(bundle, model, perf, grid, variations, temperature, known, sample),
            lambda: getattr(model, tool)(clip, params, ctx)], args.reps)
        p50, k50 = statistics.median(ours.wall_ms), statistics.median(theirs.wall_ms)
        tool_p50 = statistics.median(whole.wall_ms)
        print(f"{tool:8s} numpy {p50:7.2f} / {np.percentile(ours.wall_ms, 90):7.2f} cpu {statistics.median(ours.cpu_ms):7.2f}"
              f"   keras {k50:8.2f} / {np.percentile(theirs.wall_ms, 90):8.2f} cpu {statistics.median(theirs.cpu_ms):7.2f}"
              f"   keras/numpy {k50 / p50:5.2f}x   tool {tool_p50:6.2f}   target tool p50 < 15: "
              f"{'yes' if tool_p50 < 15 else 'NO'}   same output (max diff) {same:.1e}")


if __name__ == "__main__":
    main()
