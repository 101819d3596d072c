"""Latency of Generate and Interpolate at Magenta Studio's defaults, NumPy beside Keras.

    .venv/bin/python bench/bench_vae.py [--bundles bundles] [--runs 30] [--threads 1]

Cases: generate 8 variations x 4 bars (the tool's defaults); interpolate two 4-bar clips with
3 steps (the default) and with 16. Equal work: both sides run the same network math on the
same weights, from the same events to sampled events: NumPy through MusicVAE.encode / decode,
Keras as compiled tf.functions (the encoder's bidirectional LSTM layers over whole sequences,
and the sampled decode with its autoregressive loop unrolled into one graph); slerp is the
same NumPy code on both sides. Both encode the same windows (a clip is cut into windows on its
meter's grid, as the tool cuts it: a 2-bar model reads a 4-bar clip as 2 windows, a 48-step
meter model a 4/4 one as 2) and decode the same rows (steps x windows for interpolate,
variations x windows for generate). Both sides run on the same number of threads (--threads,
default 1; the NumPy side's BLAS is set to it), their runs taken in turns so that a slow
spell of the machine slows both (common.timed_together). Prints wall p50/p95 and CPU p50 (this
process's CPU time, which on a shared machine says more than wall time) in ms; ratio = Keras
wall p50 / NumPy wall p50 (above 1: NumPy is faster), cpu ratio the same for CPU time; "work",
Keras's multiply-adds over NumPy's (NumPy reads the first decoder layer's input from tables,
so it has fewer): the ratio both sides would show running each one equally fast, so a ratio
near it says NumPy's products run as fast as Keras's, and one above it that they run faster;
then "tool", the whole NumPy tool (clip in, clips out, as the server runs it: the network plus
reading and writing clips), and "gemm", the time the decode's per-step matmuls alone would take
at this machine's measured single-thread SGEMM peak: a floor neither side can go under in
float32. Then, on the widest bundle, NumPy's wall and CPU time with 1 and with 2 BLAS
threads: why serving keeps one.
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
from bridge.models.music_vae import MusicVAE, slerp  # noqa: E402
from bridge.tools import TOOLS, ToolContext  # noqa: E402
from bridge.tools.common import drum_map_of  # noqa: E402
from common import bundles_of, drum_clip, melody_clip, p50_p95, timed, timed_together  # noqa: E402


def inputs(model: MusicVAE, clips) -> tuple[np.ndarray, int, object]:
    """Both clips cut into the model's windows, as MusicVAE.interpolate reads them:
    events [2 x windows, steps], windows per 4-bar clip, and the clips' grid."""
    hp = model.hp
    grid = hp.grid_for(clips[0].time_signature)
    windows = -(-4 * grid.bar_steps // hp.steps)
    drums = drum_map_of(TOOLS["interpolate"].resolve({})) if hp.kind == "drums" else None
    events = np.stack([vae_clips.to_events(c, hp, drums, windows * hp.steps, grid) for c in clips])
    return events.reshape(2 * windows, hp.steps), windows, grid


def path(mu: np.ndarray, windows: int, steps: int) -> np.ndarray:
    """Latents on the slerp path between A's windows and B's, `steps` points: [steps x windows, Z]."""
    ts = np.repeat(np.linspace(0, 1, steps, dtype=np.float32), windows)
    return slerp(np.tile(mu[:windows], (steps, 1)), np.tile(mu[windows:], (steps, 1)), ts)


def numpy_cases(model: MusicVAE, events: np.ndarray, windows: int, grid):
    rng = np.random.default_rng(0)

    def generate():
        model.decode(rng.standard_normal((8 * windows, model.hp.z_size)).astype(np.float32), rng, 1.0, grid=grid)

    def interpolate(steps: int):
        mu, _ = model.encode(events)
        model.decode(path(mu, windows, steps), rng, 1.0, grid=grid)
    return generate, interpolate


def keras_cases(loaded, events: np.ndarray, windows: int, grid, threads: int):
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
    model({"events": np.zeros((1, hp.steps), np.int32), "positions": hp.positions(grid)[None]})
    family.import_weights(model, loaded.bundle.weights)
    sample = tf.function(lambda z: family.sample(model, z, 1.0, 0, grid))
    encode = tf.function(lambda e: model.encode(e)[0])
    events = tf.constant(events.astype(np.int32))

    def generate():
        sample(tf.random.normal([8 * windows, hp.z_size]))

    def interpolate(steps: int):
        sample(tf.constant(path(encode(events).numpy(), windows, steps)))
    return generate, interpolate


def sgemm_peak() -> float:
    """This machine's single-thread float32 matmul rate, FLOP/s (a large square product)."""
    a = np.ones((1024, 1024), np.float32)
    t = timed(lambda: a @ a, 10)
    return 2 * 1024 ** 3 / (p50_p95(t.wall_ms)[0] / 1000)


def gemm_floor_ms(hp, rows: int, peak: float) -> float:
    """The decode's per-step matmuls at `peak`: every layer's recurrent product, the input
    products of the layers above the first, and the output layer; `rows` rows, every step."""
    # The first layer's input (fed-back event, z, position) is a table look-up plus one product a call.
    below = [0, *hp.dec_units[:-1]]
    flops = sum(2 * rows * 4 * u * (u + w) for u, w in zip(hp.dec_units, below))
    flops += 2 * rows * hp.dec_units[-1] * hp.num_classes
    return flops * hp.steps / peak * 1000


def work_ratio(model: MusicVAE, rows: int, encoded: int) -> float:
    """Keras's multiply-adds for a call over NumPy's: the ratio the two sides would show if each
    ran every multiply-add equally fast. Both encode `encoded` windows alike and both multiply
    each step's h by every layer's recurrent kernel and the top one's by the output kernel;
    only Keras also multiplies the first layer's input (fed-back event, z, position) by its
    kernel every step, where NumPy reads rows of tables and projects z once a call."""
    hp, layers = model.hp, model.decoder.layers
    rec = sum(layer.units * 4 * layer.units for layer in layers)
    inputs = [layer.input.matrix.shape[0] * 4 * layer.units for layer in layers]
    out = layers[-1].units * len(model.out_bias)
    encode = encoded * hp.steps * sum(d.input.matrix.shape[0] * 4 * d.units + d.units * 4 * d.units
                                      for layer in model.encoder for d in (layer.fw, layer.bw))
    z_once = model.embedding_kernel.shape[0] * 4 * layers[0].units
    keras = encode + rows * hp.steps * (rec + sum(inputs) + out)
    ours = encode + rows * (hp.steps * (rec + sum(inputs[1:]) + out) + z_once)
    return keras / ours


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
    peak = sgemm_peak()
    print(f"{args.threads} thread(s) each side; equal work: same events encoded, same rows decoded, same weights")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; times in ms; "
          f"single-thread SGEMM peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'bundle':<24} {'case':<28} {'numpy p50':>9} {'p95':>6} {'cpu':>6} {'keras p50':>9} {'p95':>6} {'cpu':>6} "
          f"{'ratio':>6} {'cpu ratio':>9} {'work':>6} {'tool':>6} {'gemm':>6}")
    for item in vaes:
        kind, name = item.bundle.config["kind"], item.name
        make = drum_clip if kind == "drums" else melody_clip
        a, b = make(4, 1), make(4, 2)
        events, windows, grid = inputs(item.model, (a, b))  # the model the store serves, as the tool uses it
        n_generate, n_interpolate = numpy_cases(item.model, events, windows, grid)
        k_generate, k_interpolate = keras_cases(item, events, windows, grid, args.threads)
        cases = [
            ("generate 8 x 4 bars", 8, 0, n_generate, k_generate,
             lambda: TOOLS["generate"]([], {"variations": 8, "bars": 4, "type": kind, "bundle": name}, ctx)),
            ("interpolate 4 bars, 3 steps", 3, 2, lambda: n_interpolate(3), lambda: k_interpolate(3),
             lambda: TOOLS["interpolate"]([a, b], {"steps": 3, "type": kind, "bundle": name}, ctx)),
            ("interpolate 4 bars, 16 steps", 16, 2, lambda: n_interpolate(16), lambda: k_interpolate(16),
             lambda: TOOLS["interpolate"]([a, b], {"steps": 16, "type": kind, "bundle": name}, ctx)),
        ]
        for label, rows, clips_encoded, ours, theirs, tool in cases:
            if label.split()[0] not in item.bundle.config["tools"]:
                continue  # e.g. the high-KL drums model serves interpolate only
            mine, keras, whole = timed_together([ours, theirs, tool], args.runs)
            (n50, n95), (k50, k95) = p50_p95(mine.wall_ms), p50_p95(keras.wall_ms)
            ncpu, kcpu = p50_p95(mine.cpu_ms)[0], p50_p95(keras.cpu_ms)[0]
            work = work_ratio(item.model, rows * windows, clips_encoded * windows)
            print(f"{name:<24} {label:<28} {n50:>9.1f} {n95:>6.1f} {ncpu:>6.1f} {k50:>9.1f} {k95:>6.1f} {kcpu:>6.1f} "
                  f"{k50 / n50:>6.2f} {kcpu / ncpu:>9.2f} {work:>6.2f} {p50_p95(whole.wall_ms)[0]:>6.1f} "
                  f"{gemm_floor_ms(item.model.hp, rows * windows, peak):>6.1f}")
    # The widest decoder that serves generate: where a second thread would help most.
    first = max((v for v in vaes if "generate" in v.bundle.config["tools"]),
                key=lambda v: max(v.bundle.config["hparams"]["dec_units"]))
    kind = first.bundle.config["kind"]
    print(f"BLAS threads, {first.name} generate 8 x 4 bars, NumPy: " + blas_threads(
        lambda: TOOLS["generate"]([], {"variations": 8, "bars": 4, "type": kind, "bundle": first.name}, ctx), args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
