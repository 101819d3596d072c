"""Latency of Generate and Interpolate at Magenta Studio's defaults, NumPy beside Keras.

    .venv/bin/python bench/bench_vae.py [--bundles bundles] [--runs 30]

Cases: generate 8 variations x 4 bars; interpolate two 4-bar clips with 3 and with 16 steps.
NumPy runs the whole tool (clip in, clips out) exactly as the server does; Keras runs the same
network math (encode, slerp, sampled decode) as a compiled tf.function on the same weights,
so the ratio is the serving engine against the training framework, not against Python glue.
Both get the same cores: the NumPy engine takes a second BLAS thread for wide batches
(bridge/engine/blas.py), so Keras runs with that many threads too (--threads). Prints wall
p50/p95 and CPU p50 (ms) for every MusicVAE bundle found;
ratio = Keras wall p50 / NumPy wall p50 (above 1: NumPy is faster). Target: NumPy p50 < 60 ms.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Small matmuls: extra BLAS threads only contend (the server runs one request at a time).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bridge.engine import blas  # noqa: E402
from bridge.model_store import DEFAULT_BUNDLES_DIR  # noqa: E402
from bridge.models import vae_clips  # noqa: E402
from bridge.models.music_vae import slerp  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from common import bundles_of, drum_clip, melody_clip, p50_p95, timed  # noqa: E402


def keras_cases(loaded, clips, threads: int):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from bridge.models.configs import CONFIGS
    from bridge.train.families import music_vae as family

    # The bundle's own hparams, not the registry's: a bundle may be trained with --hparams.
    base = CONFIGS[loaded.bundle.config["config"]]
    config = base.with_hparams({k: v for k, v in loaded.bundle.config["hparams"].items() if k in base.hparams})
    model = family.build(config)
    hp = model.hp
    model({"events": np.zeros((1, hp.steps), np.int32)})
    family.import_weights(model, loaded.bundle.weights)
    windows = -(-4 // hp.bars)
    sample = tf.function(lambda z: family.sample(model, z, 1.0, 0))
    encode = tf.function(lambda e: model.encode(e)[0])
    drums = vae_clips.drum_map({"drum_map": TOOLS["interpolate"].resolve({})["drum_map"]}) if hp.kind == "drums" else None
    events = np.stack([vae_clips.to_events(c, hp, drums) for c in clips]).astype(np.int32)

    def generate():
        sample(tf.random.normal([8 * windows, hp.z_size]))

    def interpolate(steps: int):
        mu = encode(events).numpy()
        z = slerp(np.repeat(mu[:1], steps, 0), np.repeat(mu[1:], steps, 0), np.linspace(0, 1, steps))
        sample(tf.constant(z))
    return generate, interpolate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=blas.budget(), help="Keras threads (default: the engine's budget)")
    args = parser.parse_args()
    store, vaes = bundles_of(args.bundles, "music_vae")
    if not vaes:
        return 1
    ctx = ToolContext(models=store)
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; times in ms")
    print(f"{'bundle':<22} {'case':<28} {'numpy p50':>9} {'p95':>7} {'cpu':>6} {'keras p50':>9} {'p95':>7} {'cpu':>6} {'ratio':>6}")
    for item in vaes:
        kind, name = item.bundle.config["kind"], item.name
        make = drum_clip if kind == "drums" else melody_clip
        a, b = make(4, 1), make(4, 2)
        k_generate, k_interpolate = keras_cases(item, (a, b), args.threads)
        cases = [
            ("generate 8 x 4 bars", lambda: TOOLS["generate"]([], {"variations": 8, "bars": 4, "type": kind, "bundle": name}, ctx),
             k_generate),
            ("interpolate 4 bars, 3 steps", lambda: TOOLS["interpolate"]([a, b], {"steps": 3, "type": kind, "bundle": name}, ctx),
             lambda: k_interpolate(3)),
            ("interpolate 4 bars, 16 steps", lambda: TOOLS["interpolate"]([a, b], {"steps": 16, "type": kind, "bundle": name}, ctx),
             lambda: k_interpolate(16)),
        ]
        for label, ours, theirs in cases:
            if label.split()[0] not in item.bundle.config["tools"]:
                continue  # e.g. the high-KL drums model serves interpolate only
            mine, keras = timed(ours, args.runs), timed(theirs, args.runs)
            (n50, n95), (k50, k95) = p50_p95(mine.wall_ms), p50_p95(keras.wall_ms)
            ncpu, kcpu = p50_p95(mine.cpu_ms)[0], p50_p95(keras.cpu_ms)[0]
            print(f"{name:<22} {label:<28} {n50:>9.1f} {n95:>7.1f} {ncpu:>6.1f} {k50:>9.1f} {k95:>7.1f} {kcpu:>6.1f} "
                  f"{k50 / n50:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
