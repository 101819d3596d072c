"""Harmonize's numbers for the model card, from the NumPy serving model on whole held-out chorales.

    python -m bridge.train.eval_coconet bundles/coconet_chorales --data ../shared/data/chorales [--write-card]

For the eval (validation) chorales and, separately, the held-out test chorales of the
pipeline's hash split:
  * NLL (nats per cell) of Bach's alto, tenor and bass given his soprano, all three masked at
    once (Harmonize's first Gibbs pass), beside a voice-wise pitch-frequency baseline fit on
    the training chorales (class frequencies of each voice, silence included, add-one smoothed);
  * the model's harmonizations of the same sopranos (tool defaults, seed 0) beside Bach's own:
    parallel fifths and octaves (unisons included) between adjacent voices, voice crossings
    and the share of four-voice steps whose pitch classes fit one triad or seventh chord;
  * the same counts at several numbers of Gibbs passes, with the time each takes on an 8-bar
    4/4 melody, so a user can trade time for quality, and at several temperatures (on the
    validation chorales, which is where the tool's default temperature was chosen).
Counts are totals over the split; the harmonizations keep Bach's sopranos, so they cover the
same music and compare directly.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bridge.bundle import load_bundle, save_bundle
from bridge.data import converters, pipeline
from bridge.encodings import chorale
from bridge.midi_io import read_midi_tracks
from bridge.models.coconet import Coconet
from bridge.tools import TOOLS

Piece = tuple[np.ndarray, int, int, int]  # classes [steps, 4], bar steps, beat steps, first step's place in its bar
ITERATIONS = (1, 8, 16, 32, 64, 128)
TEMPERATURES = (0.5, 0.75, 1.0)
TEMPLATES = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8), (0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11), (0, 3, 6, 10),
             (0, 3, 6, 9))
CHORDS = [frozenset((root + i) % 12 for i in t) for t in TEMPLATES for root in range(12)]
HARMONIZE = np.array([False, True, True, True])


def split_pieces(data: str | Path | list, converter_args: dict) -> dict[str, list[Piece]]:
    """Whole chorales (each meter segment) of every split, read as the converter reads them."""
    converter = converters.get("chorale", **converter_args)
    out: dict[str, list[Piece]] = {"train": [], "eval": [], "test": []}
    for path, label, split in pipeline.labelled_files(pipeline.sources_of(data)):
        if split in out:
            out[split] += converter.pieces(read_midi_tracks(path), {"path": label, "file": str(path), "split": split})
    return out


def position(piece: Piece) -> np.ndarray:
    classes, bar, beat, phase = piece
    return chorale.position(bar, beat, phase, len(classes))


def window_pieces(arrays: dict[str, np.ndarray]) -> list[Piece]:
    """Cached training windows (voices, length, meter) as pieces, padding cut off."""
    return [(v[:n], *(int(x) for x in m)) for v, n, m in zip(arrays["voices"], arrays["length"], arrays["meter"])]


def harmonize_nll(model: Coconet, pieces: list[Piece]) -> float:
    """Mean NLL of alto, tenor and bass given the soprano, over every cell of the pieces."""
    total, cells = 0.0, 0
    for piece in pieces:
        classes = piece[0][None].astype(np.int64)
        mask = np.broadcast_to(HARMONIZE, classes.shape)
        logits = model.logits(classes, mask, position(piece))[mask]
        logits = logits - logits.max(axis=-1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        total -= float(np.take_along_axis(log_p, classes[mask][:, None], -1).sum())
        cells += int(mask.sum())
    return total / cells


def voice_frequencies(pieces: list[Piece]) -> np.ndarray:
    counts = np.ones((len(chorale.VOICES), chorale.NUM_CLASSES))
    for classes, *_ in pieces:
        for v in range(len(chorale.VOICES)):
            counts[v] += np.bincount(classes[:, v].astype(np.int64), minlength=chorale.NUM_CLASSES)
    return counts / counts.sum(axis=1, keepdims=True)


def baseline_nll(freq: np.ndarray, pieces: list[Piece]) -> float:
    nll = [-np.log(freq[v, classes[:, v].astype(np.int64)]) for classes, *_ in pieces for v in (1, 2, 3)]
    return float(np.concatenate(nll).mean())


def voice_leading(rolls: list[np.ndarray]) -> dict[str, float]:
    """Totals over [steps, 4] rolls: parallel fifths and octaves (`chorale.parallels`) and
    crossings between adjacent voices (a step where the lower voice starts to sound above the
    upper), and the share of four-voice steps that sound one triad or seventh chord."""
    fifths = octaves = crossings = chord_steps = full_steps = steps = 0
    for roll in rolls:
        steps += len(roll)
        found = chorale.parallels(roll)
        fifths, octaves = fifths + int(found[0].sum()), octaves + int(found[1].sum())
        pitch = roll.astype(np.int64)
        sounding = pitch != chorale.REST
        for upper, lower in chorale.ADJACENT:
            crossed = sounding[:, upper] & sounding[:, lower] & (pitch[:, upper] < pitch[:, lower])
            crossings += int(crossed[0] + (crossed[1:] & ~crossed[:-1]).sum())
        full = sounding.all(axis=1)
        full_steps += int(full.sum())
        classes = (roll[full].astype(np.int64) + chorale.MIN_PITCH - 1) % 12
        chord_steps += sum(any(set(row) <= chord for chord in CHORDS) for row in classes.tolist())
    return {"parallel_fifths": fifths, "parallel_octaves": octaves, "crossings": crossings,
            "chord_share": chord_steps / max(full_steps, 1), "beats": steps / chorale.STEPS_PER_QUARTER}


def harmonize(model: Coconet, pieces: list[Piece], iterations: int, temperature: float, repair: bool = True,
              seed: int = 0) -> list[np.ndarray]:
    """Alto, tenor and bass sampled anew under each piece's soprano, as the tool samples them."""
    rng = np.random.default_rng(seed)
    out = []
    for piece in pieces:
        classes = piece[0][None].astype(np.int64)
        fill = np.broadcast_to(HARMONIZE, classes.shape)
        out.append(model.gibbs(classes, fill, position(piece), iterations, temperature, rng, repair)[0])
    return out


def melody_seconds(model: Coconet, iterations: int, temperature: float, runs: int = 5) -> tuple[float, float]:
    """(median wall, median CPU) seconds to harmonize an 8-bar 4/4 melody on the grid."""
    rng = np.random.default_rng(0)
    classes = np.zeros((1, 128, 4), np.int64)
    classes[0, :, 0] = chorale.pitch_class_of(72) + np.repeat(rng.integers(-5, 5, 32), 4)
    fill = np.broadcast_to(HARMONIZE, classes.shape)
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        model.gibbs(classes, fill, chorale.position(16, 4, 0, 128), iterations, temperature, rng)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def evaluate(model: Coconet, pieces: dict[str, list[Piece]], temperature: float, iterations: int) -> dict:
    freq = voice_frequencies(pieces["train"])
    out: dict = {}
    for split in ("eval", "test"):
        model_nll, base = harmonize_nll(model, pieces[split]), baseline_nll(freq, pieces[split])
        out[split] = {"chorales": len(pieces[split]), "harmonize_nll": model_nll, "voice_frequency_nll": base,
                      "nll_reduction": 1.0 - model_nll / base,
                      "bach": voice_leading([p[0] for p in pieces[split]]),
                      "model": voice_leading(harmonize(model, pieces[split], iterations, temperature))}
    out["by_iterations"] = {}
    for n in ITERATIONS:
        wall, cpu = melody_seconds(model, n, temperature)
        out["by_iterations"][str(n)] = {**voice_leading(harmonize(model, pieces["eval"], n, temperature)),
                                        "seconds_8_bars": wall, "cpu_seconds_8_bars": cpu}
    out["by_temperature"] = {str(t): voice_leading(harmonize(model, pieces["eval"], iterations, t)) for t in TEMPERATURES}
    out["without_repair"] = voice_leading(harmonize(model, pieces["eval"], iterations, temperature, repair=False))
    out["settings"] = {"temperature": temperature, "iterations": iterations, "seed": 0}
    return out


def _row(name: str, counts: dict) -> str:
    return (f"| {name} | {counts['parallel_fifths']} | {counts['parallel_octaves']} | {counts['crossings']} | "
            f"{100 * counts['chord_share']:.1f}% |")


def card_section(numbers: dict, command: str) -> str:
    s = numbers["settings"]
    lines = ["## Harmonize evaluation (NumPy serving model, whole held-out chorales)", "",
             f"Computed by `{command}`. Validation = the eval split (chooses the checkpoint); test = the held-out "
             "test split, read by nothing else.", "",
             "NLL of Bach's alto, tenor and bass given his soprano, all three masked at once (nats per 16th-note cell), "
             "beside the voice-wise pitch-frequency baseline fit on the training chorales:", "",
             "| split | chorales | model NLL | baseline NLL | model below baseline |", "|---|---|---|---|---|"]
    for split, label in (("eval", "validation"), ("test", "test")):
        n = numbers[split]
        lines.append(f"| {label} | {n['chorales']} | {n['harmonize_nll']:.4f} | {n['voice_frequency_nll']:.4f} | "
                     f"{100 * n['nll_reduction']:.1f}% |")
    lines += ["", f"Voice leading of Harmonize on the same sopranos (temperature {s['temperature']:g}, {s['iterations']} "
              f"Gibbs passes, seed {s['seed']}; the passes after the annealing resample the cells of parallels, as the "
              "tool does) beside Bach's own harmonizations: parallel fifths and octaves between "
              "adjacent voices (both voices moving the same way at one step; unisons and compound intervals count), "
              "voice crossings between adjacent voices, and the share of four-voice 16th steps whose pitch classes fit "
              "one triad or seventh chord:", "",
              "| split | harmonization | parallel fifths | parallel octaves | crossings | chord steps |",
              "|---|---|---|---|---|---|"]
    for split, label in (("eval", "validation"), ("test", "test")):
        n = numbers[split]
        lines += [_row(f"{label} ({n['bach']['beats']:.0f} beats) | Bach", n["bach"]), _row(f"{label} | model", n["model"])]
    lines += ["", "Time for quality: Harmonize of the validation sopranos at other numbers of Gibbs passes, and the "
              "time of an 8-bar 4/4 melody on the machine that wrote this card (median wall clock and CPU time; "
              "bench/bench_harmonize.py measures the whole tool call):", "",
              "| Gibbs passes (iterations) | parallel fifths | parallel octaves | crossings | chord steps | 8 bars, s | CPU s |",
              "|---|---|---|---|---|---|---|"]
    for n, row in numbers["by_iterations"].items():
        lines.append(_row(n, row) + f" {row['seconds_8_bars']:.3f} | {row['cpu_seconds_8_bars']:.3f} |")
    lines.append(_row(f"{s['iterations']}, without the parallel repair", numbers["without_repair"]) + " | |")
    lines += ["", f"Temperature (validation sopranos, {s['iterations']} passes):", "",
              "| temperature | parallel fifths | parallel octaves | crossings | chord steps |", "|---|---|---|---|---|"]
    lines += [_row(t, row) for t, row in numbers["by_temperature"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True, help="the data folder(s) it was trained on")
    parser.add_argument("--write-card", action="store_true", help="add the section to MODEL_CARD.md and the numbers "
                        "to config.json (eval.harmonize)")
    args = parser.parse_args(argv)
    bundle = load_bundle(args.bundle)
    model = Coconet.from_bundle(bundle)
    defaults = TOOLS["harmonize"].resolve({})
    pieces = split_pieces(args.data, bundle.config["converter_args"])
    numbers = evaluate(model, pieces, defaults["temperature"], defaults["iterations"])
    command = "python -m bridge.train.eval_coconet " + " ".join([str(args.bundle), *(f"--data {d}" for d in args.data)])
    section = card_section(numbers, command)
    print(section)
    if args.write_card:
        card = (args.bundle / "MODEL_CARD.md").read_text().split("\n## Harmonize evaluation")[0].rstrip("\n")
        config = {**bundle.config, "eval": {**bundle.config["eval"], "harmonize": numbers}}
        save_bundle(args.bundle, config, bundle.weights, card + "\n\n" + section)
    else:
        print(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
