"""Drum classes and drum maps: the 9 GM classes Magenta's drum models use, and the pitches a
user's kit really plays.

A `DrumMap` says which input pitches belong to which class and which pitch each class writes.
The default is General MIDI; a Drum Rack that starts at 36 with other sounds, or any kit,
gives its own map, and output goes back through the same map.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom", "crash", "ride")
NUM_CLASSES = len(CLASS_NAMES)

# note-seq's 9-class reduction of General MIDI drums (see docs in ../shared/docs/magenta-models.md).
GM_CLASS_PITCHES: tuple[tuple[int, ...], ...] = (
    (36, 35),
    (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22),
    (46, 67, 72, 74, 79, 81, 26),
    (45, 29, 41, 43, 61, 64, 84),
    (48, 47, 60, 63, 77, 86, 87),
    (50, 30, 62, 76, 83),
    (49, 52, 55, 57, 58),
    (51, 53, 59, 82),
)


@dataclass(frozen=True)
class DrumMap:
    """pitch -> class for reading, class -> pitch for writing."""

    pitch_to_class: dict[int, int]
    class_to_pitch: tuple[int, ...]

    def classify(self, pitch: int) -> int | None:
        """The class of a pitch, or None for a pitch the map does not know (left untouched)."""
        return self.pitch_to_class.get(pitch)

    def pitch(self, drum_class: int) -> int:
        return self.class_to_pitch[drum_class]

    @classmethod
    def parse(cls, text: str) -> "DrumMap":
        """Build a map from nine output pitches, one per class in CLASS_NAMES order.

        "36,38,42,46,45,48,50,49,51" is GM. Each given pitch reads as its class; GM pitches
        not used by the kit still read as their GM class, so a GM clip works on any kit.
        """
        try:
            pitches = tuple(int(p) for p in text.replace(" ", ",").split(",") if p)
        except ValueError:
            raise ValueError(f"drum map must be {NUM_CLASSES} comma-separated pitches, got {text!r}") from None
        if len(pitches) != NUM_CLASSES or not all(0 <= p <= 127 for p in pitches):
            raise ValueError(f"drum map must be {NUM_CLASSES} pitches 0-127 ({', '.join(CLASS_NAMES)}), got {text!r}")
        if len(set(pitches)) != NUM_CLASSES:
            raise ValueError(f"drum map pitches must all differ, got {text!r}")
        mapping = {p: c for c, group in enumerate(GM_CLASS_PITCHES) for p in group if p not in pitches}
        mapping.update({p: c for c, p in enumerate(pitches)})
        return cls(mapping, pitches)

    def to_text(self) -> str:
        return ",".join(str(p) for p in self.class_to_pitch)


GM_DRUM_MAP = DrumMap.parse(",".join(str(group[0]) for group in GM_CLASS_PITCHES))


def looks_like_drums(notes, drum_map: DrumMap) -> bool:
    """Whether notes read as a drum part: at least 80% of them are drums of the map, and they
    are short (a median of 0.3 beats or less) or, up to an 8th, struck together as a kit is (a
    third of them within a 64th note of another onset). Bass lines in the same register, whose
    pitches are General MIDI drums too, are neither. A played kit's note-offs come a fixed
    time after the hit (Groove MIDI Dataset: about 0.1 s), so in beats they grow with the
    tempo: 0.3 beats at 130 bpm, more once a 4/4 groove is stretched into 6/8."""
    notes = [n for n in notes if not n.mute]
    if not notes:
        return False
    drums = sum(drum_map.classify(n.pitch) is not None for n in notes)
    durations = sorted(n.duration for n in notes)
    median = durations[len(durations) // 2]
    onsets = np.sort([n.start for n in notes])
    close = np.diff(onsets) <= 1 / 16
    together = np.zeros(len(onsets), bool)
    together[:-1] |= close
    together[1:] |= close
    return drums >= 0.8 * len(notes) and (median <= 0.3 or (median <= 0.5 and together.mean() >= 1 / 3))
