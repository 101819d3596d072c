"""A Coconet with random weights in the exported layout, and small four-voice chorales as clips
and MIDI files, for the Harmonize tests (no TensorFlow, no real data)."""
from __future__ import annotations

from pathlib import Path

import mido
import numpy as np

from bridge.bundle import save_bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.encodings import chorale
from bridge.models.coconet import Coconet, CoconetHparams
from synthetic_midi import write_song

HPARAMS = {"units": 24, "layers": 3, "dilations": [1, 2], "kernel": 3}
# A I-IV-V-I cadence in C, one chord a beat, voices from soprano down.
CHORDS = ((72, 67, 64, 48), (72, 69, 65, 53), (71, 67, 62, 55), (72, 67, 64, 48))


def random_weights(seed: int = 0, hparams: dict = HPARAMS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    units, width = hparams["units"], chorale.input_width()
    w = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)  # noqa: E731
    weights = {"input/kernel": w(3, width, units), "input/bias": w(units)}
    for k in range(hparams["layers"]):
        weights |= {f"res_{k}/kernel": w(3, units, units) * 0.3, f"res_{k}/bias": w(units)}
    return weights | {"out/kernel": w(units, len(chorale.VOICES) * chorale.NUM_CLASSES),
                      "out/bias": w(len(chorale.VOICES) * chorale.NUM_CLASSES)}


def random_coconet(seed: int = 0) -> Coconet:
    return Coconet(random_weights(seed), CoconetHparams.from_config(HPARAMS), "random_coconet")


def save_random_bundle(directory: Path, seed: int = 0) -> Path:
    config = {"name": directory.name, "model_class": "coconet", "kind": "chorale", "tools": ["harmonize"],
              "hparams": HPARAMS}
    return save_bundle(directory, config, random_weights(seed), f"# {directory.name}\n")


class Store:
    """A model store holding one model for every tool."""

    def __init__(self, model) -> None:
        self.model = model

    def require(self, *args):
        return self.model


def melody(bars: int = 2, meter: TimeSignature = TimeSignature(), low: int = 67) -> Clip:
    """Quarters and eighths stepping around G4 (an octave lower with low=55)."""
    beats = meter.beats_per_bar * bars
    notes, t, i = [], 0.0, 0
    while t < beats:
        duration = 0.5 if i % 3 == 2 else 1.0
        notes.append(Note(low + (0, 2, 4, 5, 4, 2)[i % 6], t, duration, 90))
        t, i = t + duration, i + 1
    return Clip(notes, float(beats), 96.0, meter, None, "tune")


def voices_of(chords=CHORDS, repeat: int = 2) -> dict[str, list[tuple[int, float, float, int]]]:
    """(pitch, start, duration, velocity) per voice name: the cadence `repeat` times, a beat a chord."""
    parts: dict[str, list] = {v: [] for v in chorale.VOICES}
    for i, chord in enumerate(chords * repeat):
        for voice, pitch in zip(chorale.VOICES, chord):
            parts[voice].append((pitch, float(i), 1.0, 80))
    return parts


def four_voice_clip(repeat: int = 2) -> Clip:
    notes = [Note(p, s, d, v) for part in voices_of(repeat=repeat).values() for p, s, d, v in part]
    return Clip(notes, 4.0 * repeat, 100.0, TimeSignature(), None, "chorale")


def chorale_folder(root: Path, files: int = 12, repeat: int = 12) -> Path:
    """Files like ../shared/data/chorales: tracks S, A, T, B; every third one in 3/4."""
    for i in range(files):
        meter = (3, 4) if i % 3 == 2 else (4, 4)
        meta = [(0.0, mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1]))]
        shifted = tuple(tuple(p + i % 5 - 2 for p in chord) for chord in CHORDS)
        write_song(root / f"bwv{i:03d}.mid", voices_of(shifted, repeat), meta)
    return root
