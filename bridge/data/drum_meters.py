"""Drum performances in meters the Groove MIDI Dataset hardly has, made from its 4/4 grooves.

GMD is 1,138 files of 4/4 and 12 of anything else, so a drum model never hears a waltz or a
jig. Two transformations of a 4/4 performance give real drumming in other meters, microtiming
and velocities untouched:
  * 3/4: drop one beat of every bar and close the gap. Dropping beat 3 turns kick-snare-kick-
    snare into kick-snare-snare (the waltz's oom-pah-pah); dropping beat 4 gives kick-snare-
    kick. Which beat is fixed per file by its seed.
  * 6/8: a shuffle or swing groove (off-beats on the triplet 8ths, as GMD's jazz, blues and
    New Orleans takes) is a 12/8 groove written in 4/4: stretching time by 3/2 puts every
    triplet 8th on a straight 8th, so one 4/4 bar becomes two bars of 6/8. Straight grooves
    are not stretched (their 16ths would fall between the 6/8 grid's steps).
Hits are (class, start in beats, note); the caller quantizes them on the new meter's grid.
"""
from __future__ import annotations

import numpy as np

from bridge.clip import Note, TimeSignature

THREE_FOUR = TimeSignature(3, 4)
SIX_EIGHT = TimeSignature(6, 8)
NEAR = 0.07  # beats: how close to a triplet or 16th position an onset must be to count for it


def triplet_feel(starts: list[float]) -> bool:
    """Whether off-beat onsets sit on triplet 8ths (1/3, 2/3 of a beat) more than on 16ths."""
    phase = np.mod(np.asarray(starts, np.float64), 1.0)
    near = lambda points: sum(int((np.abs(phase - p) < NEAR).sum()) for p in points)  # noqa: E731
    triplets, straight = near((1 / 3, 2 / 3)), near((0.25, 0.5, 0.75))
    return triplets > 2 * straight and triplets >= 0.2 * len(phase)


def drop_beat(hits: list[tuple[int, float, Note]], beat: int, origin: float = 0.0) -> list[tuple[int, float, Note]]:
    """3/4 from 4/4 bars starting at `origin`: beat `beat` (0-3) of every bar is cut out."""
    out = []
    for drum_class, start, note in hits:
        bar, at = divmod(start - origin, 4.0)
        if int(at) == beat:
            continue
        new_at = at - 1.0 if at >= beat + 1 else at
        out.append((drum_class, origin + 3.0 * bar + new_at, note))
    return out


def stretch(hits: list[tuple[int, float, Note]], factor: float, origin: float = 0.0) -> list[tuple[int, float, Note]]:
    return [(c, origin + (start - origin) * factor, note._replace(duration=note.duration * factor))
            for c, start, note in hits]


def variants(hits: list[tuple[int, float, Note]], meter: TimeSignature, origin: float, seed: int
             ) -> list[tuple[TimeSignature, list[tuple[int, float, Note]], str]]:
    """The performance in other meters, as (meter, hits, how it was made): none unless 4/4."""
    if (meter.numerator, meter.denominator) != (4, 4) or not hits:
        return []
    out = [(THREE_FOUR, drop_beat(hits, 2 + seed % 2, origin), f"4/4 without beat {3 + seed % 2}")]
    if triplet_feel([start - origin for _, start, _ in hits]):
        out.append((SIX_EIGHT, stretch(hits, 1.5, origin), "4/4 shuffle stretched 3:2"))
    return out
