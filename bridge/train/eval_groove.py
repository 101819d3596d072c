"""Held-out numbers for GrooVAE bundles, beside baselines, written into the MODEL_CARD.

    python -m bridge.train.eval_groove bundles/groovae_humanize --data ../shared/data/groove [--write-card]

Runs the NumPy serving model (what users hear) on windows cut from the data folder by the
bundle's own converter: the validation split (Groove MIDI Dataset "validation" files, which
chose the checkpoint) and the test split (GMD's "test" files, read by nothing else); for a
meter-aware bundle also the 3/4 and 6/8 windows made from them as in training. Baselines are
fit on the train split's windows.

humanize  encoder sees the true hits only; the decoder is given those hits and predicts timing
          and velocity. Timing-offset MAE in ms at each file's tempo and velocity MAE in MIDI
          units, over the true hits, against two baselines: "no change" (on the grid, every hit
          at the training set's mean velocity: a programmed clip) and the training set's mean
          offset and velocity per drum class and step of the bar.
tap2drum  encoder sees the tap channel; the decoder writes drums. Hit F1 per class against the
          true pattern, beside "kick on every tap, closed hat on every 8th" and "the train set's
          likely hits at that step of the bar, given a tap there or not".
Two model rows each: z = posterior mean with hits p > 0.5 (the likeliest reading), and the
tool's default (z sampled at temperature 1, Bernoulli hits), seed 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bridge.bundle import load_bundle
from bridge.data import converters, pipeline
from bridge.drums import CLASS_NAMES, NUM_CLASSES
from bridge.encodings import groove as enc
from bridge.meter import MeterGrid
from bridge.models.groovae import GrooVAE
from bridge.train.export import evaluation_command

N = NUM_CLASSES
FOUR_FOUR = (4, 16, 4)


def windows(bundle_dir: Path, data: Path, split: str) -> dict[str, np.ndarray]:
    """The split's windows as the bundle's converter cuts them: performance, bpm and grid."""
    config = load_bundle(bundle_dir).config
    converter = converters.get(config["converter"], **config["converter_args"])
    found = [e for i, (path, label, where) in enumerate(pipeline.labelled_files([Path(data)])) if where == split
             for e in pipeline.convert_file(converter, i, path, label, split, (split,)).examples]
    arrays = {k: np.stack([e[k] for e in found]) for k in found[0]}
    arrays.setdefault("grid", np.tile(np.array(FOUR_FOUR, np.int16), (len(found), 1)))
    return arrays


def groups(arrays: dict[str, np.ndarray]) -> list[tuple[MeterGrid, np.ndarray]]:
    """(grid, row indices) of each meter grid among the windows (4/4 16ths where none is stored:
    the 2-bar windows of a 4/4-only bundle)."""
    grids = arrays.get("grid")
    if grids is None:
        return [(MeterGrid(*FOUR_FOUR), np.arange(len(arrays["performance"])))]
    keys, inverse = np.unique(grids, axis=0, return_inverse=True)
    return [(MeterGrid.decode(key), np.flatnonzero(inverse.ravel() == g)) for g, key in enumerate(keys)]


def default_temperature(tool: str) -> float:
    """The tool's default temperature, from the tool table: the "default" rows measure what a
    user gets without touching a control, whatever that default is changed to."""
    from bridge.tools import TOOLS

    return next(float(p.default) for p in TOOLS[tool].params if p.name == "temperature")


def reconstruct(model: GrooVAE, arrays: dict[str, np.ndarray], temperature: float | None,
                known_hits: bool) -> np.ndarray:
    """Decode every window, a batch per meter grid: z = mean and hits p > 0.5 (temperature
    None), or as the tool samples: z from the posterior with noise scaled by the temperature,
    Bernoulli hits of logits / temperature."""
    perf = arrays["performance"]
    out = np.zeros_like(perf)
    rng = np.random.default_rng(0)
    for grid, rows in groups(arrays):
        inputs = enc.encoder_inputs(perf[rows], model.mode)
        mu, sigma = model.encode(inputs)
        sampled = temperature is not None
        z = mu + sigma * rng.standard_normal(mu.shape).astype(np.float32) * temperature if sampled else mu
        known = perf[rows, :, :N] if known_hits else None
        out[rows] = model.decode(z.astype(np.float32), rng, temperature if sampled else 1e-3, known_hits=known,
                                 sample_hits=not known_hits, grid=grid, controls=inputs)
    return out


def timing_errors(pred: np.ndarray, perf: np.ndarray, bpm: np.ndarray, steps_per_quarter: np.ndarray | int = 4
                  ) -> tuple[float, float]:
    """(offset MAE in ms, velocity MAE in MIDI units) over the true hits of perf."""
    hits = perf[..., :N] > 0.5
    spq = np.broadcast_to(np.asarray(steps_per_quarter, np.float32), bpm[:, 0].shape)
    step_ms = (60000.0 / bpm[:, 0] / spq)[:, None, None]
    offset_ms = np.abs(pred[..., 2 * N:] - perf[..., 2 * N:]) * step_ms / 2.0
    velocity = np.abs(pred[..., N:2 * N] - perf[..., N:2 * N]) * 127.0
    return float(offset_ms[hits].mean()), float(velocity[hits].mean())


def position_means(train: np.ndarray, bar: int = 16) -> np.ndarray:
    """[bar, 27]-shaped table of the mean velocity and offset per bar position and class (hits only)."""
    by_pos = train.reshape(-1, bar, enc.FEATURES)
    hits = by_pos[..., :N]
    count = np.maximum(hits.sum(axis=0), 1.0)
    table = np.zeros((bar, enc.FEATURES), np.float32)
    table[:, N:2 * N] = by_pos[..., N:2 * N].sum(axis=0) / count
    table[:, 2 * N:] = by_pos[..., 2 * N:].sum(axis=0) / count
    return table


def _per_grid(train: dict[str, np.ndarray], test: dict[str, np.ndarray], table) -> np.ndarray:
    """A baseline tensor for the test windows from a per-bar-position table of the train
    windows of the same grid (`table(train windows, bar) -> [bar, ...]`)."""
    out = np.zeros_like(test["performance"])
    known = {tuple(g.encode()): rows for g, rows in groups(train)}
    for grid, rows in groups(test):
        source = train["performance"][known.get(tuple(grid.encode()), np.arange(0))]
        if not len(source):
            continue
        window = test["performance"].shape[1]
        tiled = np.tile(table(source, grid.bar_steps), (window // grid.bar_steps + 1, 1))[:window]
        out[rows] = tiled[None]
    return out


def humanize_rows(model: GrooVAE, train: dict, test: dict) -> list[tuple[str, float, float]]:
    perf, bpm = test["performance"], test["bpm"]
    spq = test["grid"][:, 0] if "grid" in test else 4
    train_hits = train["performance"][..., :N] > 0.5
    flat = np.zeros_like(perf)
    flat[..., N:2 * N] = train["performance"][..., N:2 * N][train_hits].mean()
    means = _per_grid(train, test, position_means)
    t = default_temperature("groove")
    return [("baseline: no change (grid, mean velocity)", *timing_errors(flat, perf, bpm, spq)),
            ("baseline: train mean per class and position", *timing_errors(means, perf, bpm, spq)),
            ("model: z = mean", *timing_errors(reconstruct(model, test, None, True), perf, bpm, spq)),
            (f"model: sampled, temperature {t:g} (default)",
             *timing_errors(reconstruct(model, test, t, True), perf, bpm, spq))]


def f1_per_class(pred_hits: np.ndarray, true_hits: np.ndarray) -> list[float]:
    """F1 per class (and pooled over all classes, last), 0 where nothing is predicted or true."""
    scores = []
    for axis in [*range(N), None]:
        p = pred_hits if axis is None else pred_hits[..., axis]
        t = true_hits if axis is None else true_hits[..., axis]
        tp = float((p & t).sum())
        scores.append(2 * tp / max(float(p.sum() + t.sum()), 1.0))
    return scores


def likely_hits(train: np.ndarray, bar: int) -> np.ndarray:
    """[bar, 2 * N]: per step of the bar, which classes the train windows play there more often
    than not, without a tap (first N) and with one (last N)."""
    by_pos = train.reshape(-1, bar, enc.FEATURES)
    tapped = by_pos[..., :N].max(axis=-1, keepdims=True) > 0.5
    hits = by_pos[..., :N]
    with_tap = (hits * tapped).sum(axis=0) / np.maximum(tapped.sum(axis=0), 1)
    without = (hits * ~tapped).sum(axis=0) / np.maximum((~tapped).sum(axis=0), 1)
    return np.concatenate([without > 0.5, with_tap > 0.5], axis=-1).astype(np.float32)


def drumify_rows(model: GrooVAE, test: dict, train: dict | None = None) -> list[tuple[str, list[float]]]:
    perf = test["performance"]
    truth = perf[..., :N] > 0.5
    taps = enc.tap(perf)[..., 0] > 0.5
    baseline = np.zeros_like(truth)
    baseline[..., 0] = taps
    for grid, rows in groups(test):
        baseline[rows, ::max(1, grid.steps_per_quarter // 2), 2] = True
    rows = [("baseline: kick on taps, hat on 8ths", f1_per_class(baseline, truth))]
    if train is not None:
        table = _per_grid(train, test, lambda source, bar: np.pad(likely_hits(source, bar),
                                                                    ((0, 0), (0, enc.FEATURES - 2 * N))))
        likely = np.where(taps[..., None], table[..., N:2 * N], table[..., :N]) > 0.5
        rows.append(("baseline: train's likely hits per bar position, given the tap", f1_per_class(likely, truth)))
    t = default_temperature("drumify")
    rows += [("model: z = mean, p > 0.5", f1_per_class(reconstruct(model, test, None, False)[..., :N] > 0.5, truth)),
             (f"model: sampled, temperature {t:g} (default)",
              f1_per_class(reconstruct(model, test, t, False)[..., :N] > 0.5, truth))]
    return rows


def section(model: GrooVAE, title: str, train: dict, test: dict) -> list[str]:
    lines = [f"### {title}: {len(test['performance'])} windows of {test['performance'].shape[1]} steps", ""]
    if model.mode == "humanize":
        lines += ["| decoder given the true hits | timing MAE (ms) | velocity MAE (0-127) |", "|---|---|---|"]
        lines += [f"| {name} | {ms:.2f} | {vel:.2f} |" for name, ms, vel in humanize_rows(model, train, test)]
    else:
        lines += ["| hit F1 | " + " | ".join(CLASS_NAMES) + " | all |", "|---" * (N + 2) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{s:.3f}" for s in scores) + " |"
                  for name, scores in drumify_rows(model, test, train)]
    return lines + [""]


TEMPERATURES = (0.1, 0.25, 0.5, 0.75, 1.0)


def temperature_rows(model: GrooVAE, validation: dict) -> list[str]:
    """Drumify's hit F1 (all classes) on validation at a few temperatures: where the tool's
    default is chosen (validation, never test), and what a user trades by turning the knob."""
    truth = validation["performance"][..., :N] > 0.5
    lines = ["### Validation hit F1 (all classes) by temperature", "", "| temperature | hit F1 |", "|---|---|"]
    for t in TEMPERATURES:
        lines.append(f"| {t:g} | {f1_per_class(reconstruct(model, validation, t, False)[..., :N] > 0.5, truth)[-1]:.3f} |")
    return lines + [""]


def report(bundle_dir: Path, data: Path) -> str:
    """The markdown section for the model card: validation, then test, then test per meter."""
    model = GrooVAE.from_bundle(load_bundle(bundle_dir))
    train = windows(bundle_dir, data, "train")
    lines = ["## Evaluation (Groove MIDI Dataset validation and test files)", "",
             f"Computed by `python -m bridge.train.eval_groove {bundle_dir} --data {data}` with the NumPy model; "
             "validation chose the checkpoint, test was read by nothing else.", ""]
    for split, title in (("eval", "Validation"), ("test", "Test")):
        test = windows(bundle_dir, data, split)
        lines += section(model, title, train, test)
        if split == "eval" and model.mode == "tap":
            lines += temperature_rows(model, test)
        if split == "test" and len(groups(test)) > 1:
            for grid, rows in groups(test):
                part = {k: v[rows] for k, v in test.items()}
                lines += section(model, f"Test, {grid.bar_steps}-step bars of {grid.beat_steps}-step beats", train,
                                 part)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    evaluation_command(argv, __doc__, "## Evaluation (", report,
                       ("data", "the data folder the bundle was trained on (with its info.csv)"))


if __name__ == "__main__":
    main()
