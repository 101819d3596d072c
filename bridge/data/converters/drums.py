"""Drum windows for DrumsRNN: every drum-channel note as one of 9 classes, 512-way per step."""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import drum_hits, drum_windows, segments, to_step, window_starts
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
        notes, classified = drum_hits(score, self.stats)
        if not notes:
            return []
        spq = self.steps_per_quarter
        hits = [(c, to_step(n.start, spq)) for c, n in classified]
        starts = (start for segment in segments(score, notes, spq, self.stats)
                  for start in window_starts(segment, self.window, self.hop))
        return drum_windows(self.encoding, hits, starts, self.window, self.min_hits, self.stats)
