"""Model-card numbers for MusicVAE, computed with the NumPy serving model (what users run).

Reconstruction: accuracy per step from the posterior mean, teacher-forced (the training
metric), free-running argmax (the harder "sampled" number of the MusicVAE paper) and sampled at
temperature 1 (what Interpolate does at its default settings).
Prior samples: how close their statistics are to held-out data, as the overlap area (0-1,
1 = identical) of normalised histograms of note density, pitch class (drum class for drums),
pitch range (distinct classes for drums) and inter-onset interval.
"""
from __future__ import annotations

import math

import numpy as np

from bridge.meter import MeterGrid
from bridge.models.music_vae import FOUR_FOUR, MusicVAE, VAEHparams

PRIOR_SAMPLES = 1024
HELD_OUT = "held-out split"  # the validation split, as the cards name it


def _notes(events: np.ndarray, hp: VAEHparams) -> list[tuple[int, int]]:
    """(pitch or drum class, onset step) of one window."""
    if hp.kind == "drums":
        return [(c, s) for c, s in hp.encoding.decode(events)]
    return [(p, s) for p, s, _ in hp.encoding.decode(events)]


def features(batch: np.ndarray, hp: VAEHparams) -> dict[str, np.ndarray]:
    """Histograms (normalised) of the four statistics over a batch of windows."""
    density, pitch, spread, ioi = [], [], [], []
    for events in batch:
        notes = _notes(events, hp)
        density.append(len(notes) / hp.bars)
        pitch += [p % 12 if hp.kind == "melody" else p for p, _ in notes]
        if notes:
            values = [p for p, _ in notes]
            spread.append(max(values) - min(values) if hp.kind == "melody" else len(set(values)))
        onsets = sorted({s for _, s in notes})
        ioi += list(np.diff(onsets))
    bins = {"note_density": (np.arange(0, 34) / 2, density), "pitch_class": (np.arange(13) - 0.5, pitch),
            "pitch_range": (np.arange(0, 50, 2) - 0.5 if hp.kind == "melody" else np.arange(11) - 0.5, spread),
            "ioi": (np.arange(1, 34) - 0.5, np.minimum(ioi, 32))}
    if hp.kind == "drums":
        bins["pitch_class"] = (np.arange(10) - 0.5, pitch)
    out = {}
    for name, (edges, values) in bins.items():
        counts = np.histogram(np.asarray(values, float), edges)[0].astype(float)
        out[name] = counts / max(counts.sum(), 1.0)
    return out


def overlap(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.minimum(p, q).sum())


def metrics(model: MusicVAE, events: np.ndarray, rng: np.random.Generator,
            grids: np.ndarray | None = None) -> dict[str, float]:
    """The card's numbers over windows [N, T]; `grids` [N, 3] are their meter grids (a
    meter-aware model decodes each group of windows on its own grid, prior samples in
    proportion to the groups)."""
    grids = np.repeat(FOUR_FOUR.encode()[None], len(events), axis=0) if grids is None else np.asarray(grids)
    keys, group = np.unique(grids, axis=0, return_inverse=True)
    teacher, free, sampled = np.zeros_like(events), np.zeros_like(events), np.zeros_like(events)
    mu, sigma = model.encode(events)
    priors = []
    budget = min(len(events), PRIOR_SAMPLES)
    for g, key in enumerate(keys):
        rows = np.flatnonzero(group.ravel() == g)
        grid = MeterGrid.decode(key)
        teacher[rows] = model.decoder_logits(mu[rows], events[rows], grid).argmax(-1)
        free[rows] = model.decode(mu[rows], rng, temperature=0.0, grid=grid)
        sampled[rows] = model.decode(mu[rows], rng, temperature=1.0, grid=grid)
        n = max(1, round(budget * len(rows) / len(events)))
        priors.append(model.decode(rng.standard_normal((n, model.hp.z_size)).astype(np.float32), rng,
                                   temperature=1.0, grid=grid))
    kl = np.sum(0.5 * (mu ** 2 + sigma ** 2 - 1.0) - np.log(sigma + 1e-8), axis=1)
    out = {"recon_accuracy_teacher_forced": float((teacher == events).mean()),
           "recon_accuracy_argmax": float((free == events).mean()),
           "recon_accuracy_sampled_t1": float((sampled == events).mean()),
           "kl_bits_per_example": float(kl.mean() / math.log(2.0))}
    real, fake = features(events, model.hp), features(np.concatenate(priors), model.hp)
    out.update({f"prior_overlap_{k}": overlap(real[k], fake[k]) for k in real})
    return out


def roll(events: np.ndarray, hp: VAEHparams) -> np.ndarray:
    """A [time, pitch-or-class] roll in {0, 1} of one window, for TensorBoard images."""
    if hp.kind == "drums":
        return hp.encoding.bits(events)
    out = np.zeros((len(events), hp.max_pitch - hp.min_pitch + 1), np.float32)
    for pitch, start, end in hp.encoding.decode(events):
        out[start:end, pitch - hp.min_pitch] = 1.0
    return out


def card_section(numbers: dict[str, float], examples: int, note: str = "", split: str = HELD_OUT) -> str:
    lines = ["", f"## MusicVAE eval (NumPy serving model, {split}, {examples} examples)", "",
             "Reconstruction from the posterior mean, per 16th step; prior samples (temperature 1) "
             "against held-out windows as histogram overlap (1 = identical):", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v:.4f} |" for k, v in numbers.items()]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def annotate_bundle(bundle_dir: str, run_dir: str, note: str = "") -> dict[str, float]:
    """Add these numbers (whole eval split of the run's cache) to an exported bundle's card and
    config, re-writing its checksums: `magenta-bridge export` does not call `evaluate_extra` yet.
    `run_dir` may also be the cache itself (`magenta-bridge dataset` rebuilds it), for a bundle
    whose run folder is gone."""
    import json
    from pathlib import Path

    from bridge.bundle import load_bundle, save_bundle
    from bridge.data import pipeline

    bundle = load_bundle(bundle_dir)
    source = Path(run_dir)
    cache = source if (source / "manifest.json").is_file() else json.loads((source / "run.json").read_text())["cache"]
    arrays = pipeline.load(cache, "eval")
    events = arrays["events"].astype(np.int64)
    model = MusicVAE.from_bundle(bundle)
    numbers = metrics(model, events, np.random.default_rng(0), arrays.get("grid"))
    config = {**bundle.config, "eval": {**bundle.config.get("eval", {}), "music_vae": numbers}}
    card = replace_section((Path(bundle_dir) / "MODEL_CARD.md").read_text(), HELD_OUT,
                           card_section(numbers, len(events), note))
    save_bundle(bundle_dir, config, bundle.weights, card)
    return numbers


def replace_section(card: str, split: str, section: str) -> str:
    """The card with its "MusicVAE eval" section of this split put in `section`'s place (at the
    end when it has none), every other section kept where it was: an evaluation rerun after
    more sections were added (the test split, quality rows) must not drop them."""
    marker = f"\n## MusicVAE eval (NumPy serving model, {split}"
    head, found, tail = card.partition(marker)
    rest = tail.split("\n## ", 1)[1] if found and "\n## " in tail else ""
    return head.rstrip("\n") + "\n" + section + (f"\n## {rest}" if rest else "")


TEST_SECTION = "test split: files never used to train or choose a checkpoint"


def annotate_test(bundle_dir: str, data: list[str], note: str = "", file_meters: bool = False) -> dict[str, float]:
    """Add the same numbers on the held-out test files of `data` (converted by the bundle's own
    converter) to the card and to config["test"]["music_vae"]. `file_meters` reads each file's
    own meters where the converter would assume one (POP909's 4/4): for test data from another
    set, such as the folk songs' 4/4 tunes for a model whose own test songs were in its training."""
    from pathlib import Path

    from bridge.bundle import load_bundle, save_bundle
    from bridge.data import converters, pipeline

    bundle = load_bundle(bundle_dir)
    cfg = bundle.config
    args = {**cfg["converter_args"], **({"assume_meter": None, "fix_offset": False} if file_meters else {})}
    converter = converters.get(cfg["converter"], **args)
    found = [e for i, (path, label) in enumerate(pipeline.test_files(data))
             for e in pipeline.convert_file(converter, i, path, label, "test", ("test",)).examples]
    events = np.stack([e["events"] for e in found]).astype(np.int64)
    grids = np.stack([e["grid"] for e in found]) if "grid" in found[0] else None
    numbers = metrics(MusicVAE.from_bundle(bundle), events, np.random.default_rng(0), grids)
    config = {**cfg, "test": {**cfg.get("test", {}), "music_vae": numbers, "music_vae_examples": len(events)}}
    card = replace_section((Path(bundle_dir) / "MODEL_CARD.md").read_text(), TEST_SECTION,
                           card_section(numbers, len(events), note, TEST_SECTION))
    save_bundle(bundle_dir, config, bundle.weights, card)
    return numbers


if __name__ == "__main__":
    # python -m bridge.train.families.music_vae_eval BUNDLE RUN-OR-CACHE [note...]
    # python -m bridge.train.families.music_vae_eval --test BUNDLE DATA [DATA...]
    # python -m bridge.train.families.music_vae_eval --test-other BUNDLE NOTE DATA [DATA...]
    import sys

    if sys.argv[1] == "--test":
        print(annotate_test(sys.argv[2], sys.argv[3:]))
    elif sys.argv[1] == "--test-other":
        print(annotate_test(sys.argv[2], sys.argv[4:], sys.argv[3], file_meters=True))
    else:
        print(annotate_bundle(sys.argv[1], sys.argv[2], " ".join(sys.argv[3:])))
