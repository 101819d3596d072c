"""Continue latency: the NumPy serving model beside the same sampling run by Keras.

    .venv/bin/python bench/bench_continue.py [--bundles bundles] [--repeats 30]

For each shipped events-RNN bundle, times the Continue tool (NumPy, everything a request does)
at Magenta Studio's defaults (4 variations, 2 bars, 2-bar primer) and at 8 variations x 32
bars, then the same work with the Keras model on the same weights: the same primer events read
once in one compiled whole-sequence call (LSTM layers returning their states, as NumPy reads
it once and copies the state to every variation), then the variations sampled together, one
compiled call per step (the next input depends on the sampled event, as in NumPy). Prints wall
p50/p95 and CPU p50 (this process's CPU time) and the Keras/NumPy ratio of each. One thread
each side, as a shared machine would give it.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bridge.clip import Clip, Note, quantize  # noqa: E402
from bridge.model_store import ModelStore  # noqa: E402
from bridge.tools import ToolContext  # noqa: E402
from bridge.tools.common import drum_map_of  # noqa: E402
from common import p50_p95, timed  # noqa: E402

PRIMERS = {
    "melody": Clip([Note(p, i * 0.5, 0.45, 90) for i, p in enumerate((60, 62, 64, 67, 69, 67, 64, 62,
                                                                     60, 64, 67, 72, 71, 67, 64, 62))], length=8.0),
    "drums": Clip([Note(36 if b % 2 == 0 else 38, b, 0.1, 100) for b in range(8)]
                  + [Note(42, b / 2, 0.1, 70) for b in range(16)], length=8.0),
}
CASES = (("defaults: 4 variations x 2 bars", 4, 2), ("8 variations x 32 bars", 8, 32))


def primer_events(model, clip: Clip, params: dict) -> tuple[np.ndarray, object]:
    """The primer events and grid Continue reads from `clip` (EventsRNN.continue_clip's reading)."""
    grid = model.grid_for(clip)
    notes = quantize(clip, grid.steps_per_quarter)
    steps = max(1, round(clip.length * grid.steps_per_quarter))
    if model.kind == "drums":
        drum_map = drum_map_of(params)
        hits = [(c, g.step) for g in notes if (c := drum_map.classify(g.pitch)) is not None]
        return model.encoding.encode(hits, steps), grid
    return model.encoding.encode([(g.pitch, g.step, g.end_step) for g in notes], steps), grid


def keras_sampler(model, config: dict, weights: dict[str, np.ndarray]):
    """The Keras model with the bundle's weights, sampling exactly as the NumPy model does."""
    import tensorflow as tf
    from tensorflow import keras

    from bridge.models.configs import ModelConfig
    from bridge.train.families import events_rnn as family

    cfg = ModelConfig(config["name"], "events_rnn", config["kind"], tuple(config["tools"]), config["converter"],
                      config["converter_args"], config["hparams"])
    net = family.build(cfg)
    net({"inputs": np.zeros((1, 1, model.features.size), np.float32)})
    for layer in net.lstms:
        layer.set_weights([weights[f"{layer.name}/{p}"] for p in ("kernel", "recurrent_kernel", "bias")])
    net.out.set_weights([weights["output/kernel"], weights["output/bias"]])
    # The same layers returning their final states, for reading a whole primer in one call.
    readers = []
    for layer in net.lstms:
        reader = keras.layers.LSTM(layer.units, return_sequences=True, return_state=True)
        reader.build((None, None, layer.get_weights()[0].shape[0]))
        reader.set_weights(layer.get_weights())
        readers.append(reader)

    @tf.function
    def read(x):
        states = []
        for reader in readers:
            x, h, c = reader(x)
            states.append((h, c))
        return net.out(x[:, -1]), states

    @tf.function
    def step(x, states):
        new = []
        for layer, (h, c) in zip(net.lstms, states):
            x, (h, c) = layer.cell(x, [h, c])
            new.append((h, c))
        return net.out(x), new

    def sample(primer: np.ndarray, grid, steps: int, n: int, rng: np.random.Generator) -> np.ndarray:
        grids = model._grids(grid, 1)
        logits, states = read(tf.constant(model.features(primer[None], grids=grids)))
        logits = tf.repeat(logits, n, axis=0)
        states = [(tf.repeat(h, n, axis=0), tf.repeat(c, n, axis=0)) for h, c in states]
        grids = model._grids(grid, n)
        history = np.zeros((n, len(primer) + steps), np.int64)
        history[:, :len(primer)] = primer
        for i in range(steps):
            t = len(primer) + i
            z = logits.numpy().astype(np.float64)
            p = np.exp(z - z.max(-1, keepdims=True))
            history[:, t] = (rng.random((n, 1)) * p.sum(-1, keepdims=True) > np.cumsum(p, -1)).sum(-1)
            if i + 1 < steps:
                logits, states = step(tf.constant(model.features(history[:, :t + 1], start=t, grids=grids)[:, 0]),
                                      states)
        return history[:, len(primer):]

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=Path(__file__).resolve().parent.parent / "bundles")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    store = ModelStore.from_dir(args.bundles)
    ctx = ToolContext(store)
    print("one thread each side; same weights, same primer events; times in ms")
    print(f"{'bundle':<12} {'case':<34} {'numpy p50':>9} {'p95':>7} {'cpu':>7} {'keras p50':>9} {'p95':>7} {'cpu':>7} "
          f"{'ratio':>6} {'cpu ratio':>9}")
    for item in store.loaded:
        if item.bundle.config["model_class"] != "events_rnn":
            continue
        model, kind = item.model, item.bundle.config["kind"]
        clip = PRIMERS[kind]
        sample = keras_sampler(model, item.bundle.config, item.bundle.weights)
        for label, n, bars in CASES:
            params = {"variations": n, "length": bars, "temperature": 1.0, "seed": 0, "scale_root": None,
                      "scale_mode": "major", "include_primer": True, "drum_map": "36,38,42,46,45,48,50,49,51"}
            primer, grid = primer_events(model, clip, params)
            steps = math.ceil(bars * clip.beats_per_bar * grid.steps_per_quarter - 1e-9)
            repeats = args.repeats if bars <= 4 else max(3, args.repeats // 6)
            ours = timed(lambda: model.continue_clip(clip, params, ctx), repeats)
            theirs = timed(lambda: sample(primer, grid, steps, n, np.random.default_rng(0)), max(3, repeats // 3))
            (a50, a95), (b50, b95) = p50_p95(ours.wall_ms), p50_p95(theirs.wall_ms)
            acpu, bcpu = p50_p95(ours.cpu_ms)[0], p50_p95(theirs.cpu_ms)[0]
            print(f"{item.name:<12} {label:<34} {a50:>9.1f} {a95:>7.1f} {acpu:>7.1f} {b50:>9.1f} {b95:>7.1f} {bcpu:>7.1f} "
                  f"{b50 / a50:>5.1f}x {bcpu / acpu:>8.1f}x")


if __name__ == "__main__":
    main()
