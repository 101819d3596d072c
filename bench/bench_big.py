"""Generate, interpolate and continue with Magenta's published model sizes, NumPy beside Keras.

    .venv/bin/python bench/bench_big.py [--runs 3] [--vae-units 2048] [--vae-layers 3] [--rnn-units 512]

Magenta's largest 2-bar melody MusicVAE (cat-mel_2bar_big) has a 2048-unit bidirectional
encoder, a 3 x 2048 decoder and a 512-dimensional latent; its MelodyRNN configs go up to
2 x 512. No such checkpoint ships here (nor can be downloaded offline), so both models are
built from random weights: Keras initialises them, and the NumPy serving models get the very
same arrays through the families' export (what bridge/interop does for a Magenta checkpoint),
so both sides do the same arithmetic. Work per case, equal on both sides:
  generate: 4 latents decoded for one 2-bar window (32 sampled steps), Studio's Generate;
  interpolate: 2 windows encoded, 3 latents on the slerp path decoded;
  continue: a 2-bar primer read once, 4 variations sampled for 2 bars (Studio's defaults),
            then 8 variations for 8 bars.
Keras: compiled tf.functions (decoder loop unrolled in the graph; the RNN's primer read in one
whole-sequence call, then a call per sampled step). One thread each side. Prints wall p50 and
CPU p50 (this process's CPU time) in ms and Keras / NumPy ratios.

Weights as float16 were considered for the memory-bound big products and rejected: NumPy's
float16 to float32 cast runs about 1.4 ns an element here (22 ms for one [2048, 8192] kernel),
so a step cost 15-19 ms from float16 blocks against 2.4-3.9 ms in float32.
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

from bench_continue import PRIMERS, keras_sampler, primer_events  # noqa: E402
from common import p50_p95, timed  # noqa: E402
from bridge.models.configs import CONFIGS  # noqa: E402
from bridge.models.events_rnn import EventsRNN, event_features  # noqa: E402
from bridge.models.music_vae import FOUR_FOUR, MusicVAE, VAEHparams, slerp  # noqa: E402


def row(label: str, ours, theirs) -> str:
    n50, k50 = p50_p95(ours.wall_ms)[0], p50_p95(theirs.wall_ms)[0]
    ncpu, kcpu = p50_p95(ours.cpu_ms)[0], p50_p95(theirs.cpu_ms)[0]
    return (f"{label:<44} {n50:>9.1f} {ncpu:>7.1f} {k50:>9.1f} {kcpu:>7.1f} {k50 / n50:>6.2f} {kcpu / ncpu:>9.2f}")


def vae_rows(units: int, layers: int, runs: int) -> list[str]:
    import tensorflow as tf

    from bridge.train.families import music_vae as family

    config = CONFIGS["musicvae_melody_2bar"].with_hparams(
        {"enc_units": units, "dec_units": [units] * layers, "z_size": 512})
    keras_model = family.build(config)
    hp = keras_model.hp
    keras_model({"events": np.zeros((1, hp.steps), np.int32), "positions": hp.positions(FOUR_FOUR)[None]})
    ours = MusicVAE(family.export_weights(keras_model, config), VAEHparams.from_config(config.kind, config.hparams))
    sample = tf.function(lambda z: family.sample(keras_model, z, 1.0, 0))
    encode = tf.function(lambda e: keras_model.encode(e)[0])
    rng = np.random.default_rng(0)
    events = rng.integers(0, hp.num_classes, (2, hp.steps))
    z4 = rng.standard_normal((4, hp.z_size)).astype(np.float32)
    ts = np.linspace(0, 1, 3, dtype=np.float32)

    def np_interpolate():
        mu, _ = ours.encode(events)
        ours.decode(slerp(np.repeat(mu[:1], 3, 0), np.repeat(mu[1:], 3, 0), ts), rng)

    def keras_interpolate():
        mu = encode(tf.constant(events, tf.int32)).numpy()
        sample(tf.constant(slerp(np.repeat(mu[:1], 3, 0), np.repeat(mu[1:], 3, 0), ts)))

    name = f"MusicVAE {units} enc, {layers} x {units} dec, z 512:"
    return [row(f"{name} generate 4 x 2 bars", timed(lambda: ours.decode(z4, rng), runs),
                timed(lambda: sample(tf.constant(z4)), runs)),
            row(f"{name} interpolate 3", timed(np_interpolate, runs), timed(keras_interpolate, runs))]


def rnn_rows(units: int, layers: int, runs: int) -> list[str]:
    from bridge.train.families import events_rnn as family

    config = CONFIGS["melody_rnn"].with_hparams({"units": units, "layers": layers})
    net = family.build(config)
    spec = {"name": config.name, "kind": config.kind, "tools": list(config.tools), "converter": config.converter,
            "converter_args": config.converter_args, "hparams": config.hparams}
    net({"inputs": np.zeros((1, 1, event_features(config.converter, config.converter_args, config.hparams).size),
                            np.float32)})
    weights = family.export_weights(net, config)
    model = EventsRNN(spec, weights)
    sample = keras_sampler(model, spec, weights)
    clip = PRIMERS["melody"]
    primer, grid = primer_events(model, clip, {})
    out = []
    for n, bars in ((4, 2), (8, 8)):
        steps = bars * grid.bar_steps
        ours = timed(lambda: model.sample(primer, steps, n, 1.0, np.random.default_rng(0), grid=grid), runs)
        theirs = timed(lambda: sample(primer, grid, steps, n, np.random.default_rng(0)), runs)
        out.append(row(f"MelodyRNN {layers} x {units}: continue {n} x {bars} bars", ours, theirs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vae-units", type=int, default=2048)
    parser.add_argument("--vae-layers", type=int, default=3)
    parser.add_argument("--rnn-units", type=int, default=512)
    parser.add_argument("--rnn-layers", type=int, default=2)
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print("random weights, the same arrays on both sides; one thread each; times in ms")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'case':<44} {'numpy p50':>9} {'cpu':>7} {'keras p50':>9} {'cpu':>7} {'ratio':>6} {'cpu ratio':>9}")
    for line in rnn_rows(args.rnn_units, args.rnn_layers, max(args.runs, 5)):
        print(line, flush=True)
    for line in vae_rows(args.vae_units, args.vae_layers, args.runs):
        print(line, flush=True)


if __name__ == "__main__":
    main()
