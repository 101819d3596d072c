"""Polyphonic windows for the poly RNN: one part's notes as note-on / note-off / time-shift events.

The part is the track named `track` (POP909's PIANO) when the file has one, else every pitched
track merged (the chorales' S, A, T and B). Each meter stretch of a file is read on its own
grid (`bridge.data.grid.meter_segments`, with POP909's downbeats from beat_midi.txt), and cut
into windows of `window_bars` bars starting on barlines every `hop_bars`; a window holds the
notes that start in it, as events (`bridge.encodings.poly`) after a START, cut at
`max_events` and padded, with their count (`length`) and the grid stored beside them. A song
shorter than one window gives one window of its whole length.

Train windows are also transposed (`transpositions` random shifts per window, fixed per file
by its seed, among those that push no more notes out of range) so the model hears every key;
a part merged from voice tracks takes `voices_transpositions` instead (the chorales are few:
eleven of the twelve shifts within a tritone). Eval windows are never transposed.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import meter_segments
from bridge.encodings.poly import START, PolyEncoding
from bridge.clip import Note
from bridge.midi_io import MidiScore


@register("poly")
class PolyConverter:
    def __init__(self, track: str = "PIANO", min_pitch: int = 36, max_pitch: int = 84, max_shift: int = 16,
                 window_bars: int = 4, hop_bars: int = 2, max_events: int = 256, min_notes: int = 12,
                 transpositions: int = 2, voices_transpositions: int | None = None, max_transpose: int = 6) -> None:
        self.track = track
        self.encoding = PolyEncoding(min_pitch, max_pitch, max_shift)
        self.window_bars = window_bars
        self.hop_bars = hop_bars
        self.max_events = max_events
        self.min_notes = min_notes
        self.transpositions = transpositions
        self.voices_transpositions = transpositions if voices_transpositions is None else voices_transpositions
        self.max_transpose = max_transpose
        self.stats: Counter = Counter()

    def _notes(self, score: MidiScore) -> tuple[list[Note], bool]:
        """The part's notes, and whether they are several voice tracks merged."""
        pitched = [t for t in score.tracks if not t.is_drum and t.notes]
        named = [t for t in pitched if t.name.casefold() == self.track.casefold()]
        if not pitched:
            self.stats["file skipped: no pitched notes"] += 1
        elif not named:
            self.stats[f"no {self.track} track: merged {len(pitched)} tracks"] += 1
        return [n for t in (named[:1] or pitched) for n in t.notes if not n.mute], not named and len(pitched) > 1

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes, merged = self._notes(score)
        copies = self.voices_transpositions if merged else self.transpositions
        rng = np.random.default_rng(meta["seed"])
        out = []
        for segment in meter_segments(score, notes, self.stats, meta.get("file")):
            grid = segment.grid
            stepped = [(n.pitch, segment.steps(n.start), max(segment.steps(n.start) + 1, segment.steps(n.end)))
                       for n in notes if segment.start - 1e-6 <= n.start - segment.shift < segment.end]
            total = max((e for _, _, e in stepped), default=0)
            window = self.window_bars * grid.bar_steps
            for start in range(0, max(total - grid.bar_steps + 1, 1), self.hop_bars * grid.bar_steps):
                if start > 0 and start + window > total:
                    break  # only a song shorter than one window is kept whole
                inside = [(p, s - start, e - start) for p, s, e in stepped if start <= s < start + window]
                if len(inside) < self.min_notes:
                    self.stats["window skipped: too few notes"] += 1
                    continue
                self.stats[f"windows in {segment.meter}"] += 1
                for i, shift in enumerate(self._shifts(inside, meta["split"], copies, rng)):
                    out.append(self._example([(p + shift, s, e) for p, s, e in inside], window, grid.encode()))
                    self.stats["examples (transposed copies)" if i else "examples"] += 1
        return out

    def _example(self, notes: list[tuple[int, int, int]], window: int, grid: np.ndarray) -> dict[str, np.ndarray]:
        events = [START] + self.encoding.encode(notes, window)
        if len(events) > self.max_events + 1:
            self.stats["window cut at max_events"] += 1
            events = events[:self.max_events + 1]
        padded = np.zeros(self.max_events + 1, np.int16)
        padded[:len(events)] = events
        return {"events": padded, "length": np.int16(len(events)), "grid": grid}

    def _shifts(self, notes: list[tuple[int, int, int]], split: str, copies: int,
                rng: np.random.Generator) -> list[int]:
        """No shift, plus for training up to `copies` random ones that leave no more notes out of
        range (to be folded in by octaves) than the window has as it is."""
        if split != "train" or not copies:
            return [0]
        pitches = np.array([p for p, _, _ in notes])
        lo, hi = self.encoding.min_pitch, self.encoding.max_pitch

        def outside(t: int) -> int:
            return int(((pitches + t < lo) | (pitches + t > hi)).sum())

        fits = [t for t in range(-self.max_transpose, self.max_transpose + 1) if t and outside(t) <= outside(0)]
        return [0] + [int(t) for t in rng.permutation(fits)[:copies]]
