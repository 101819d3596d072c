"""Drum windows for DrumsRNN: every drum-channel note as one of 9 classes, 512-way per step."""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import segments, to_step, window_starts
from bridge.drums import GM_DRUM_MAP
from bridge.encodings.drums import DrumEncoding
from bridge.midi_io import MidiScore


@register("drums")
class DrumConverter:
    def __init__(self, steps_per_quarter: int = 4, window: int = 129, hop: int = 16, min_hits: int = 16) -> None:
        self.encoding = DrumEncoding()
        self.steps_per_quarter = steps_per_quarter
        self.window = window
        self.hop = hop
        self.min_hits = min_hits
        self.stats: Counter = Counter()

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes = [n for t in score.tracks if t.is_drum for n in t.notes]
        if not notes:
            self.stats["file skipped: no drum-channel notes"] += 1
            return []
        spq = self.steps_per_quarter
        hits = []
        for note in notes:
            drum_class = GM_DRUM_MAP.classify(note.pitch)
            if drum_class is None:
                self.stats["notes dropped: pitch not in the 9-class map"] += 1
            else:
                hits.append((drum_class, to_step(note.start, spq)))
        out = []
        for segment in segments(score, notes, spq, self.stats):
            for start in window_starts(segment, self.window, self.hop):
                events = self.encoding.encode([(c, s - start) for c, s in hits], self.window)
                if int(self.encoding.bits(events).sum()) < self.min_hits:
                    self.stats["window skipped: too few hits"] += 1
                    continue
                out.append({"events": events})
                self.stats["examples"] += 1
        return out
