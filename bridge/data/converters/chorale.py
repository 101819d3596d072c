"""Four-voice chorale windows for the Coconet-style model: [window, 4] voice classes per example.

A file needs four pitched tracks: named S, A, T, B (or soprano, alto, tenor, bass), else
exactly four tracks, ordered by mean pitch. Each meter segment is quantized on a 16th grid
(`bridge.encodings.chorale`) and cut into windows `train_hop` 16ths apart for training (many
overlapping crops, as Coconet trains on random crops) and `eval_hop` apart for eval; a
segment shorter than a window gives one window of its whole length, padded, with `length`
saying where the music ends. Each window stores its meter as (bar steps, beat steps, the
bar step it starts on), from which `chorale.position` makes the position channels.
Transposition is not done here but in training, a fresh random shift per batch.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import meter_segments, to_step
from bridge.encodings import chorale
from bridge.midi_io import MidiScore, TrackNotes

_NAMES = {name: i for i, voice in enumerate(chorale.VOICES) for name in (voice.casefold(), chorale.NAMES[voice])}


def voice_tracks(score: MidiScore, stats: Counter) -> list[TrackNotes] | None:
    """The S, A, T, B tracks of a file (by name, else four tracks by mean pitch), or None."""
    pitched = [t for t in score.tracks if not t.is_drum and t.notes]
    named = {_NAMES[t.name.casefold()]: t for t in pitched if t.name.casefold() in _NAMES}
    if len(named) == len(chorale.VOICES):
        return [named[i] for i in range(len(chorale.VOICES))]
    if len(pitched) == len(chorale.VOICES):
        stats["voices ordered by mean pitch (tracks not named S, A, T, B)"] += 1
        return sorted(pitched, key=lambda t: -np.mean([n.pitch for n in t.notes]))
    stats["file skipped: not four voices"] += 1
    return None


@register("chorale")
class ChoraleConverter:
    def __init__(self, window: int = 128, train_hop: int = 8, eval_hop: int = 64, min_window: int = 32) -> None:
        self.window, self.train_hop, self.eval_hop, self.min_window = window, train_hop, eval_hop, min_window
        self.stats: Counter = Counter()

    def pieces(self, score: MidiScore, meta: dict) -> list[tuple[np.ndarray, int, int, int]]:
        """Each meter segment of a file whole: (classes [steps, 4], bar steps, beat steps, 0),
        the last being the bar step the piece starts on, as windows store it."""
        tracks = voice_tracks(score, self.stats)
        if tracks is None:
            return []
        notes = [n for t in tracks for n in t.notes]
        if any(not chorale.MIN_PITCH <= n.pitch <= chorale.MAX_PITCH for n in notes):
            self.stats[f"file skipped: a note outside {chorale.MIN_PITCH}-{chorale.MAX_PITCH}"] += 1
            return []
        out = []
        for segment in meter_segments(score, notes, self.stats, meta.get("file")):
            bar = segment.meter.beats_per_bar * chorale.STEPS_PER_QUARTER
            if bar != int(bar):
                self.stats[f"segment skipped: {segment.meter} bar is not whole 16ths"] += 1
                continue
            beat = segment.grid.beat_steps * chorale.STEPS_PER_QUARTER // segment.grid.steps_per_quarter
            step = lambda beats: to_step(beats - segment.start - segment.shift, chorale.STEPS_PER_QUARTER)  # noqa: E731
            voices = [[(n.pitch, step(n.start), max(step(n.start) + 1, step(n.end))) for n in t.notes
                       if segment.start - 1e-6 <= n.start - segment.shift < segment.end] for t in tracks]
            total = max((e for v in voices for _, _, e in v), default=0)
            if total < self.min_window:
                self.stats["segment skipped: shorter than min_window"] += 1
                continue
            out.append((chorale.roll(voices, total), int(bar), beat, 0))
        return out

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        hop = self.train_hop if meta["split"] == "train" else self.eval_hop
        out = []
        for rolled, bar, beat, _ in self.pieces(score, meta):
            total = len(rolled)
            for start in range(0, max(total - self.window, 0) + 1, hop):
                length = min(self.window, total - start)
                window = np.zeros((self.window, len(chorale.VOICES)), np.int8)
                window[:length] = rolled[start:start + length]
                out.append({"voices": window, "length": np.int16(length), "meter": np.array([bar, beat, start % bar], np.int16)})
                self.stats["windows"] += 1
        return out
