"""Latency of Generate and Interpolate at Magenta Studio's defaults, NumPy beside Keras.

    .venv/bin/python bench/bench_vae.py [--bundles bundles] [--runs 30] [--threads 1]

Cases: generate 8 variations x 4 bars (the tool's defaults); interpolate two 4-bar clips with
3 steps (the default) and with 16. NumPy runs the whole tool (clip in, clips out) exactly as
the server does; Keras runs the same network math on the same weights as compiled
tf.functions: the encoder's bidirectional LSTM layers over whole sequences, slerp, and the
sampled decode (the autoregressive loop unrolled into one graph). Equal work: Keras encodes
the same windows (a 2-bar model reads a 4-bar clip as 2 windows, so both clips give 4 rows)
and decodes the same rows (steps x windows for interpolate, variations x windows for
generate). Both sides run on the same number of threads (--threads, default 1; the NumPy
side's BLAS is set to it). Prints wall p50/p95 and CPU p50 (this process's CPU time, which
on a shared machine says more than wall time) in ms; ratio = Keras wall p50 / NumPy wall p50
(above 1: NumPy is faster), cpu ratio the same for CPU time. Then, on the first bundle,
NumPy's wall and CPU time with 1 and with 2 BLAS threads: why serving keeps one.
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

from bridge.model_store import DEFAULT_BUNDLES_DIR  # noqa: E402
from bridge.models import vae_clips  # noqa: E402
from bridge.models.music_vae import FOUR_FOUR, slerp  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from bridge.tools.common import drum_map_of  # noqa: E402
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
    model({"events": np.zeros((1, hp.steps), np.int32), "positions": hp.positions(FOUR_FOUR)[None]})
    family.import_weights(model, loaded.bundle.weights)
    windows = -(-4 // hp.bars)
    sample = tf.function(lambda z: family.sample(model, z, 1.0, 0))
    encode = tf.function(lambda e: model.encode(e)[0])
    drums = drum_map_of(TOOLS["interpolate"].resolve({})) if hp.kind == "drums" else None
    # Both clips cut into the model's windows, as MusicVAE.interpolate reads them: [2 x windows, steps].
    events = np.stack([vae_clips.to_events(c, hp, drums, windows * hp.steps) for c in clips])
    events = events.reshape(2 * windows, hp.steps).astype(np.int32)

    def generate():
        sample(tf.random.normal([8 * windows, hp.z_size]))

    def interpolate(steps: int):
        mu = encode(events).numpy()
        ts = np.repeat(np.linspace(0, 1, steps, dtype=np.float32), windows)
        z = slerp(np.tile(mu[:windows], (steps, 1)), np.tile(mu[windows:], (steps, 1)), ts)
        sample(tf.constant(z))
    return generate, interpolate


def blas_threads(generate, runs: int) -> str:
    """NumPy's generate with 1 and 2 BLAS threads: wall and CPU p50, measured back to back."""
    from threadpoolctl import threadpool_limits

    parts = []
    for n in (1, 2):
        with threadpool_limits(limits=n, user_api="blas"):
            t = timed(generate, runs)
        parts.append(f"{n} thread{'s' * (n > 1)}: wall {p50_p95(t.wall_ms)[0]:.1f} ms, cpu {p50_p95(t.cpu_ms)[0]:.1f} ms")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES_DIR)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="threads for both sides (default 1)")
    args = parser.parse_args()
    store, vaes = bundles_of(args.bundles, "music_vae")
    if not vaes:
        return 1
    ctx = ToolContext(models=store)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads, user_api="blas")
    print(f"{args.threads} thread(s) each side; equal work: same windows encoded, same rows decoded, same weights")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; times in ms")
    print(f"{'bundle':<22} {'case':<28} {'numpy p50':>9} {'p95':>7} {'cpu':>6} {'keras p50':>9} {'p95':>7} {'cpu':>6} {'ratio':>6} {'cpu ratio':>9}")
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
                  f"{k50 / n50:>6.2f} {kcpu / ncpu:>9.2f}")
    # The widest decoder that serves generate: where a second thread would help most.
    first = max((v for v in vaes if "generate" in v.bundle.config["tools"]),
                key=lambda v: max(v.bundle.config["hparams"]["dec_units"]))
    kind = first.bundle.config["kind"]
    print(f"BLAS threads, {first.name} generate 8 x 4 bars, NumPy: " + blas_threads(
        lambda: TOOLS["generate"]([], {"variations": 8, "bars": 4, "type": kind, "bundle": first.name}, ctx), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
