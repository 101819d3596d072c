"""A drum clip's own sounds, timing and dynamics, so new hits sound like the player's.

Drum models see 9 classes on a grid; a player's clip has more: a rim click (37) or a clap (39)
where the model only knows "snare", a swing that pushes every off-beat late, accents that
differ per drum and per beat. `Feel` reads those from the input and gives them back to each
new hit:
  * pitch: the pitch the input used for that class at that step of the bar, else the one it
    used most for the class, else the drum map's (so a rim stays a rim, a ride a ride);
  * timing: the input's mean offset from the grid at that step of the beat (a shuffle's late
    off-beats, a laid-back snare), so a swung primer continues swung; a step of the beat the
    input never played is put on the input's swing (the straight 8th moved to where the
    input's off-beats sit, the 16ths around it in proportion, as a DAW's swing does), since a
    model trained on mostly straight grooves also writes the straight 8th after a shuffle;
  * velocity: drawn from the input's velocities of that class at that step of the bar, else of
    that class, else of all hits, so accents and their spread carry over.
"""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from bridge.clip import GridNote, Note
from bridge.drums import DrumMap
from bridge.meter import MeterGrid
from bridge.music_stats import offbeat_phase

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
        self.swing = _swing_phase(hits, grid)

    def place(self, hits: list[tuple[int, int, float]], rng: np.random.Generator) -> list[Note]:
        """Notes for new hits (class, step, the step's time in beats in the output clip); two
        hits of one sound that the feel puts at the same time are one hit (a shuffle's swung
        8th and its 16th after it land together)."""
        notes: dict[tuple[int, float], Note] = {}
        for drum_class, step, start in hits:
            note = self.note(drum_class, step, start, rng)
            notes.setdefault((note.pitch, round(note.start, 3)), note)
        return list(notes.values())

    def pitch(self, drum_class: int, step: int) -> int:
        for counts in (self.pitches.get((drum_class, step % self.grid.bar_steps)), self.class_pitches.get(drum_class)):
            if counts:
                return counts.most_common(1)[0][0]
        return self.drum_map.pitch(drum_class)

    def offset(self, step: int) -> float:
        """Offset from the grid in steps, as the input plays that step of the beat, else as its
        swing puts that step."""
        within = step % self.grid.beat_steps
        if within in self.offsets:
            return self.offsets[within]
        beat = self.grid.beat_steps
        phase = within / beat
        swung = 2 * phase * self.swing if phase <= 0.5 else self.swing + 2 * (phase - 0.5) * (1 - self.swing)
        return (swung - phase) * beat

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


def _swing_phase(hits: list[tuple[int, GridNote]], grid: MeterGrid) -> float:
    """Where in the beat the input's off-beat 8ths sit, read as `music_stats.swing_ratio` reads
    it (0.5 when straight or unknown). Only beats of four 16ths swing this way; compound beats
    (three 8ths) stay as played."""
    beat = grid.beat_steps
    if beat % 4:
        return 0.5
    phase = offbeat_phase([((note.step + note.offset) % beat) / beat for _, note in hits])
    return 0.5 if phase is None else phase
