"""A drum clip's own sounds, timing and dynamics, so new hits sound like the player's.

Drum models see 9 classes on a grid; a player's clip has more: a rim click (37) or a clap (39)
where the model only knows "snare", a swing that pushes every off-beat late, accents that
differ per drum and per beat. `Feel` reads those from the input and gives them back to each
new hit:
  * pitch: the pitch the input used for that class at that step of the bar, else the one it
    used most for the class, else the drum map's (so a rim stays a rim, a ride a ride);
  * timing: the input's mean offset from the grid at that step of the beat (a shuffle's late
    off-beats, a laid-back snare), so a swung primer continues swung;
  * velocity: drawn from the input's velocities of that class at that step of the bar, else of
    that class, else of all hits, so accents and their spread carry over.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from bridge.clip import GridNote, Note
from bridge.drums import DrumMap
from bridge.meter import MeterGrid

DEFAULT_VELOCITY = 100


class Feel:
    def __init__(self, hits: list[tuple[int, GridNote]], grid: MeterGrid, drum_map: DrumMap) -> None:
        """`hits` are (class, grid note) of the input on `grid`."""
        self.grid, self.drum_map = grid, drum_map
        self.pitches: dict[tuple[int, int], Counter] = defaultdict(Counter)
        self.class_pitches: dict[int, Counter] = defaultdict(Counter)
        self.velocities: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.class_velocities: dict[int, list[int]] = defaultdict(list)
        offsets: dict[int, list[float]] = defaultdict(list)
        self.all_velocities: list[int] = []
        for drum_class, note in hits:
            in_bar = note.step % grid.bar_steps
            self.pitches[drum_class, in_bar][note.pitch] += 1
            self.class_pitches[drum_class][note.pitch] += 1
            self.velocities[drum_class, in_bar].append(note.velocity)
            self.class_velocities[drum_class].append(note.velocity)
            self.all_velocities.append(note.velocity)
            offsets[note.step % grid.beat_steps].append(note.offset)
        self.offsets = {k: float(np.mean(v)) for k, v in offsets.items()}

    def pitch(self, drum_class: int, step: int) -> int:
        for counts in (self.pitches.get((drum_class, step % self.grid.bar_steps)), self.class_pitches.get(drum_class)):
            if counts:
                return counts.most_common(1)[0][0]
        return self.drum_map.pitch(drum_class)

    def offset(self, step: int) -> float:
        """Offset from the grid in steps, as the input plays that step of the beat."""
        return self.offsets.get(step % self.grid.beat_steps, 0.0)

    def velocity(self, drum_class: int, step: int, rng: np.random.Generator) -> int:
        for pool in (self.velocities.get((drum_class, step % self.grid.bar_steps)),
                     self.class_velocities.get(drum_class), self.all_velocities):
            if pool:
                return int(pool[rng.integers(len(pool))])
        return DEFAULT_VELOCITY

    def note(self, drum_class: int, step: int, start_beats: float, rng: np.random.Generator) -> Note:
        """A new hit of `drum_class` at `step` of the grid, `start_beats` being that step's time
        in the output clip; it lasts one step."""
        spq = self.grid.steps_per_quarter
        start = max(0.0, start_beats + self.offset(step) / spq)
        return Note(self.pitch(drum_class, step), start, 1.0 / spq, self.velocity(drum_class, step, rng))
