"""Continue latency: the NumPy serving model beside the same sampling run by Keras.

    .venv/bin/python bench/bench_continue.py [--bundles bundles] [--repeats 30]

For each shipped events-RNN bundle, times the Continue tool (NumPy, everything a request does)
at Magenta Studio's defaults (4 variations, 2 bars, 2-bar primer) and at 8 variations x 32
bars, then the same batched sampling with the Keras model (a tf.function per step), and prints
p50/p95 and the Keras/NumPy ratio. Runs on one thread, as a shared machine would give it.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bridge.clip import Clip, Note  # noqa: E402
from bridge.model_store import ModelStore  # noqa: E402
from bridge.tools import ToolContext  # noqa: E402
from common import p50_p95, timed  # noqa: E402

PRIMERS = {
    "melody": Clip([Note(p, i * 0.5, 0.45, 90) for i, p in enumerate((60, 62, 64, 67, 69, 67, 64, 62,
                                                                     60, 64, 67, 72, 71, 67, 64, 62))], length=8.0),
    "drums": Clip([Note(36 if b % 2 == 0 else 38, b, 0.1, 100) for b in range(8)]
                  + [Note(42, b / 2, 0.1, 70) for b in range(16)], length=8.0),
}
CASES = (("defaults: 4 variations x 2 bars", 4, 2), ("8 variations x 32 bars", 8, 32))


def keras_sampler(model, config: dict, weights: dict[str, np.ndarray]):
    """The Keras model with the bundle's weights, sampling exactly as the NumPy model does."""
    import tensorflow as tf

    from bridge.models.configs import ModelConfig
    from bridge.train.families import events_rnn as family

    cfg = ModelConfig(config["name"], "events_rnn", config["kind"], tuple(config["tools"]), config["converter"],
                      config["converter_args"], config["hparams"])
    net = family.build(cfg)
    net({"inputs": np.zeros((1, 1, model.features.size), np.float32)})
    for layer in net.lstms:
        layer.set_weights([weights[f"{layer.name}/{p}"] for p in ("kernel", "recurrent_kernel", "bias")])
    net.out.set_weights([weights["output/kernel"], weights["output/bias"]])

    @tf.function
    def step(x, states):
        new = []
        for layer, (h, c) in zip(net.lstms, states):
            x, (h, c) = layer.cell(x, [h, c])
            new.append((h, c))
        return net.out(x), new

    def sample(primer: np.ndarray, steps: int, n: int, rng: np.random.Generator) -> np.ndarray:
        units = net.lstms[0].units
        states = [(tf.zeros((n, units)), tf.zeros((n, units))) for _ in net.lstms]
        history = np.zeros((n, len(primer) + steps), np.int64)
        history[:, :len(primer)] = primer
        for t in range(len(primer) + steps - 1):
            logits, states = step(tf.constant(model.features(history[:, :t + 1], start=t)[:, 0]), states)
            if t + 1 >= len(primer):
                z = logits.numpy().astype(np.float64)
                p = np.exp(z - z.max(-1, keepdims=True))
                p /= p.sum(-1, keepdims=True)
                history[:, t + 1] = (rng.random((n, 1)) > np.cumsum(p, -1)).sum(-1)
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
    print(f"{'bundle':<12} {'case':<34} {'numpy p50':>10} {'p95':>8} {'keras p50':>10} {'p95':>8} {'ratio':>6}")
    for item in store.loaded:
        if item.bundle.config["model_class"] != "events_rnn":
            continue
        model, kind = item.model, item.bundle.config["kind"]
        clip = PRIMERS[kind]
        sample = keras_sampler(model, item.bundle.config, item.bundle.weights)
        primer_steps = round(clip.length * model.steps_per_quarter)
        for label, n, bars in CASES:
            params = {"variations": n, "length": bars, "temperature": 1.0, "seed": 0, "scale_root": None,
                      "scale_mode": "major", "include_primer": True, "drum_map": "36,38,42,46,45,48,50,49,51"}
            repeats = args.repeats if bars <= 4 else max(3, args.repeats // 6)
            ours = timed(lambda: model.continue_clip(clip, params, ctx), repeats).wall_ms
            primer = np.zeros(primer_steps, np.int64)
            theirs = timed(lambda: sample(primer, bars * 16, n, np.random.default_rng(0)), max(3, repeats // 3)).wall_ms
            (a50, a95), (b50, b95) = p50_p95(ours), p50_p95(theirs)
            print(f"{item.name:<12} {label:<34} {a50:>8.1f}ms {a95:>6.1f}ms {b50:>8.1f}ms {b95:>6.1f}ms {b50 / a50:>5.1f}x")


if __name__ == "__main__":
    main()
