"""Groove windows for GrooVAE: 2-bar 4/4 windows of a drum performance, timing and velocity kept.

Each example is the real performance as a [32, 27] tensor (bridge.encodings.groove) plus the
tempo in effect at the window start, so the evaluation can state timing errors in ms. The
encoder's view (hits only, or taps) is made from the performance by the family's
`prepare_batch`, so humanize and tap2drum train from the same cache.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data.converters import register
from bridge.data.grid import drum_hits, segments, window_starts
from bridge.drums import NUM_CLASSES
from bridge.encodings import groove as enc
from bridge.midi_io import MidiScore

BAR_STEPS = 16  # the model is 4/4 only, as Magenta's GrooVAE


@register("groove")
class GrooveConverter:
    def __init__(self, hop: int = 16, min_hits: int = 4) -> None:
        self.hop = hop
        self.min_hits = min_hits
        self.stats: Counter = Counter()

    def _bpm_at(self, score: MidiScore, beat: float) -> float:
        bpm = score.tempo
        for change in score.tempos:
            if change.beat <= beat:
                bpm = change.bpm
        return bpm

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes, classified = drum_hits(score, self.stats)
        if not notes:
            return []
        hits = [enc.Hit(n.start, c, n.velocity) for c, n in classified]
        window_beats = enc.WINDOW_STEPS / enc.STEPS_PER_QUARTER
        out = []
        for segment in segments(score, notes, enc.STEPS_PER_QUARTER, self.stats):
            if segment.bar_steps != BAR_STEPS:
                self.stats["segment skipped: not 4/4"] += 1
                continue
            for start in window_starts(segment, enc.WINDOW_STEPS, self.hop):
                offset_beats = start / enc.STEPS_PER_QUARTER
                shifted = [enc.Hit(h.start - offset_beats, h.drum_class, h.velocity) for h in hits
                           if -1.0 <= h.start - offset_beats < window_beats]
                performance = enc.encode(shifted, enc.WINDOW_STEPS)
                if performance[:, :NUM_CLASSES].sum() < self.min_hits:
                    self.stats["window skipped: too few hits"] += 1
                    continue
                bpm = np.array([self._bpm_at(score, offset_beats)], np.float32)
                out.append({"performance": performance, "bpm": bpm})
                self.stats["examples"] += 1
        return out
