"""Held-out numbers for GrooVAE bundles, beside baselines, written into the MODEL_CARD.

    python -m bridge.train.eval_groove bundles/groovae_humanize --cache cache/groove-<key> [--write-card]

Runs the NumPy serving model (what users hear) on the eval split of the training cache
(Groove MIDI Dataset "validation" files, 2-bar windows one bar apart):

humanize  encoder sees the true hits only; the decoder is given those hits and predicts timing
          and velocity. Timing-offset MAE in ms at each file's tempo and velocity MAE in MIDI
          units, over the true hits, against two baselines: "no change" (on the grid, every hit
          at the training set's mean velocity: a programmed clip) and the training set's mean
          offset and velocity per drum class and 16th position in the bar.
tap2drum  encoder sees the tap channel; the decoder writes drums. Hit F1 per class against the
          true pattern, beside "kick on every tap, closed hat on every 8th".
Two model rows each: z = posterior mean with hits p > 0.5 (the likeliest reading), and the
tool's default (z sampled at temperature 1, Bernoulli hits), seed 0.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bridge.bundle import load_bundle, save_bundle
from bridge.data import pipeline
from bridge.drums import CLASS_NAMES, NUM_CLASSES
from bridge.encodings import groove as enc
from bridge.models.groovae import GrooVAE

N = NUM_CLASSES
BAR = 16


def reconstruct(model: GrooVAE, perf: np.ndarray, sampled: bool, known_hits: bool) -> np.ndarray:
    """Decode every window [B, 32, 27] in one batch: z = mean, or sampled at temperature 1."""
    rng = np.random.default_rng(0)
    mu, sigma = model.encode(enc.encoder_inputs(perf, model.mode))
    z = mu + sigma * rng.standard_normal(mu.shape).astype(np.float32) if sampled else mu
    known = perf[..., :N] if known_hits else None
    return model.decode(z.astype(np.float32), rng, 1.0 if sampled else 1e-3, known_hits=known,
                        sample_hits=not known_hits)


def timing_errors(pred: np.ndarray, perf: np.ndarray, bpm: np.ndarray) -> tuple[float, float]:
    """(offset MAE in ms, velocity MAE in MIDI units) over the true hits of perf."""
    hits = perf[..., :N] > 0.5
    step_ms = (60000.0 / bpm[:, 0] / enc.STEPS_PER_QUARTER)[:, None, None]
    offset_ms = np.abs(pred[..., 2 * N:] - perf[..., 2 * N:]) * step_ms / 2.0
    velocity = np.abs(pred[..., N:2 * N] - perf[..., N:2 * N]) * 127.0
    return float(offset_ms[hits].mean()), float(velocity[hits].mean())


def position_means(train: np.ndarray) -> np.ndarray:
    """[16, 27]-shaped table of the mean velocity and offset per bar position and class (hits only)."""
    by_pos = train.reshape(-1, BAR, enc.FEATURES)
    hits = by_pos[..., :N]
    count = np.maximum(hits.sum(axis=0), 1.0)
    table = np.zeros((BAR, enc.FEATURES), np.float32)
    table[:, N:2 * N] = by_pos[..., N:2 * N].sum(axis=0) / count
    table[:, 2 * N:] = by_pos[..., 2 * N:].sum(axis=0) / count
    return table


def humanize_rows(model: GrooVAE, train: dict, test: dict) -> list[tuple[str, float, float]]:
    perf, bpm = test["performance"], test["bpm"]
    train_hits = train["performance"][..., :N] > 0.5
    flat = np.zeros_like(perf)
    flat[..., N:2 * N] = train["performance"][..., N:2 * N][train_hits].mean()
    means = np.tile(position_means(train["performance"]), (enc.WINDOW_STEPS // BAR, 1))[None]
    return [("baseline: no change (grid, mean velocity)", *timing_errors(flat, perf, bpm)),
            ("baseline: train mean per class and position", *timing_errors(np.broadcast_to(means, perf.shape), perf, bpm)),
            ("model: z = mean", *timing_errors(reconstruct(model, perf, False, True), perf, bpm)),
            ("model: sampled, temperature 1", *timing_errors(reconstruct(model, perf, True, True), perf, bpm))]


def f1_per_class(pred_hits: np.ndarray, true_hits: np.ndarray) -> list[float]:
    """F1 per class (and pooled over all classes, last), 0 where nothing is predicted or true."""
    scores = []
    for axis in [*range(N), None]:
        p = pred_hits if axis is None else pred_hits[..., axis]
        t = true_hits if axis is None else true_hits[..., axis]
        tp = float((p & t).sum())
        scores.append(2 * tp / max(float(p.sum() + t.sum()), 1.0))
    return scores


def drumify_rows(model: GrooVAE, test: dict) -> list[tuple[str, list[float]]]:
    perf = test["performance"]
    truth = perf[..., :N] > 0.5
    baseline = np.zeros_like(truth)
    baseline[..., 0] = enc.tap(perf)[..., 0] > 0.5
    baseline[:, ::2, 2] = True
    return [("baseline: kick on taps, hat on 8ths", f1_per_class(baseline, truth)),
            ("model: z = mean, p > 0.5", f1_per_class(reconstruct(model, perf, False, False)[..., :N] > 0.5, truth)),
            ("model: sampled, temperature 1", f1_per_class(reconstruct(model, perf, True, False)[..., :N] > 0.5, truth))]


def report(bundle_dir: Path, cache: Path) -> str:
    """The markdown section for the model card."""
    bundle = load_bundle(bundle_dir)
    model = GrooVAE.from_bundle(bundle)
    test = pipeline.load(cache, "eval")
    windows = len(test["performance"])
    lines = [f"## Evaluation (eval split: Groove MIDI Dataset validation files, {windows} 2-bar windows)", "",
             f"Computed by `python -m bridge.train.eval_groove {bundle_dir} --cache {cache}` with the NumPy model.", ""]
    if model.mode == "humanize":
        lines += ["| decoder given the true hits | timing MAE (ms) | velocity MAE (0-127) |", "|---|---|---|"]
        rows = humanize_rows(model, pipeline.load(cache, "train"), test)
        lines += [f"| {name} | {ms:.2f} | {vel:.2f} |" for name, ms, vel in rows]
    else:
        lines += ["| hit F1 | " + " | ".join(CLASS_NAMES) + " | all |", "|---" * (N + 2) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + " |" for name, scores in drumify_rows(model, test)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="the training cache folder (train.npz, eval.npz)")
    parser.add_argument("--write-card", action="store_true", help="append the table to the bundle's MODEL_CARD.md")
    args = parser.parse_args(argv)
    section = report(args.bundle, args.cache)
    print(section)
    if args.write_card:
        bundle = load_bundle(args.bundle)
        card = (args.bundle / "MODEL_CARD.md").read_text()
        card = card.split("\n## Evaluation (eval split:")[0].rstrip("\n") + "\n\n" + section
        save_bundle(args.bundle, bundle.config, bundle.weights, card)


if __name__ == "__main__":
    main()
