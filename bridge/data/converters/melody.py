"""Melody windows for MelodyRNN: the top line of one track as one-hot events.

Legacy configs put every meter on one 16th grid with fixed-length windows. Meter-aware
configs (`meter=True`) quantize each meter segment on its own grid (`bridge.meter`) and store
the grid with each window, so the model learns where bars and beats fall in 3/4, 6/8 or 3/2;
a song shorter than a window gives one window of its whole length (at least `min_window`
steps), padded, with its length stored so the loss skips the padding.

Train windows are also transposed (a few shifts per window, fixed per file by its seed) so
the model hears every key; eval windows are never transposed.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import meter_segments, segments, to_step, window_starts
from bridge.encodings.melody import MelodyEncoding
from bridge.midi_io import MidiScore, TrackNotes


@register("melody")
class MelodyConverter:
    def __init__(self, track: str = "MELODY", min_pitch: int = 48, max_pitch: int = 84,
                 steps_per_quarter: int = 4, window: int = 129, hop: int = 64, min_notes: int = 8,
                 min_unique_pitches: int = 5, transpositions: int = 2, max_transpose: int = 6,
                 meter: bool = False, min_window: int = 33) -> None:
        self.track = track
        self.encoding = MelodyEncoding(min_pitch, max_pitch)
        self.steps_per_quarter = steps_per_quarter
        self.window = window
        self.hop = hop
        self.min_notes = min_notes
        self.min_unique_pitches = min_unique_pitches
        self.transpositions = transpositions
        self.max_transpose = max_transpose
        self.meter = meter
        self.min_window = min_window
        self.stats: Counter = Counter()

    def _pick(self, score: MidiScore) -> TrackNotes | None:
        """The named track; failing that, the busiest non-drum track (for unnamed files)."""
        pitched = [t for t in score.tracks if not t.is_drum and t.notes]
        named = [t for t in pitched if t.name.casefold() == self.track.casefold()]
        if named:
            return named[0]
        if pitched:
            self.stats[f"no {self.track} track: used the busiest track"] += 1
            return max(pitched, key=lambda t: len(t.notes))
        self.stats["file skipped: no pitched notes"] += 1
        return None

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        track = self._pick(score)
        if track is None:
            return []
        windows = self._meter_windows(score, track, meta) if self.meter else self._windows(score, track)
        rng = np.random.default_rng(meta["seed"])
        out = []
        for notes, length, extra in windows:
            if len(notes) < self.min_notes or len({p for p, _, _ in notes}) < self.min_unique_pitches:
                self.stats["window skipped: too few notes"] += 1
                continue
            for i, shift in enumerate(self._shifts(notes, meta["split"], rng)):
                moved = [(p + shift, s, e) for p, s, e in notes]
                events = self._padded(moved, length) if self.meter else self.encoding.encode(moved, self.window)
                out.append({"events": events, **extra})
                self.stats["examples (transposed copies)" if i else "examples"] += 1
        return out

    def _padded(self, notes: list[tuple[int, int, int]], length: int) -> np.ndarray:
        events = np.zeros(self.window, np.int16)
        events[:length] = self.encoding.encode(notes, length)
        return events

    def _windows(self, score: MidiScore, track: TrackNotes):
        """Legacy: every meter on the 16th grid, full windows only."""
        spq = self.steps_per_quarter
        grid = [(n.pitch, to_step(n.start, spq), max(to_step(n.start, spq) + 1, to_step(n.end, spq)))
                for n in track.notes]
        for segment in segments(score, list(track.notes), spq, self.stats):
            for start in window_starts(segment, self.window, self.hop):
                yield [(p, s - start, e - start) for p, s, e in grid if start <= s < start + self.window], self.window, {}

    def _meter_windows(self, score: MidiScore, track: TrackNotes, meta: dict):
        """Each meter segment on its own grid; windows start on its barlines."""
        for segment in meter_segments(score, list(track.notes), self.stats, meta.get("file")):
            grid = segment.grid
            notes = [(n.pitch, segment.steps(n.start), max(segment.steps(n.start) + 1, segment.steps(n.end)))
                     for n in track.notes if segment.start - 1e-6 <= n.start - segment.shift < segment.end]
            total = max((e for _, _, e in notes), default=0)
            hop = grid.bar_steps * max(1, round(self.hop / grid.bar_steps))
            extra = {"grid": grid.encode()}
            for start in range(0, max(total - self.min_window + 1, 0), hop):
                length = min(self.window, total - start)
                if length < self.window and start > 0:
                    break  # only a song shorter than one window is kept whole
                window = [(p, s - start, e - start) for p, s, e in notes if start <= s < start + length]
                self.stats[f"windows in {segment.meter}"] += 1
                yield window, length, {**extra, "length": np.int16(length)}

    def _octave(self, notes: list[tuple[int, int, int]]) -> int:
        """The octave shift that leaves the fewest notes outside the range (ties: no shift)."""
        pitches = np.array([p for p, _, _ in notes])
        lo, hi = self.encoding.min_pitch, self.encoding.max_pitch
        return min((-24, -12, 0, 12, 24), key=lambda k: (((pitches + k < lo) | (pitches + k > hi)).sum(), abs(k)))

    def _shifts(self, notes: list[tuple[int, int, int]], split: str, rng: np.random.Generator) -> list[int]:
        """The window as it is (octave-fitted) plus, for training, random in-range transpositions."""
        base = self._octave(notes)
        if split != "train" or not self.transpositions:
            return [base]
        pitches = [p + base for p, _, _ in notes]
        fits = [t for t in range(-self.max_transpose, self.max_transpose + 1)
                if t and self.encoding.min_pitch <= min(pitches) + t and max(pitches) + t <= self.encoding.max_pitch]
        chosen = rng.permutation(fits)[:self.transpositions] if fits else []
        return [base] + [base + int(t) for t in chosen]
