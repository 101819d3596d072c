"""Groove windows for GrooVAE: windows of a drum performance, timing and velocity kept.

Each example is the real performance as a [window, 27] tensor (bridge.encodings.groove) plus
the tempo in effect at the window start, so the evaluation can state timing errors in ms. The
encoder's view (hits only, or taps) is made from the performance by the family's
`prepare_batch`, so humanize and tap2drum train from the same cache.

Legacy configs read 2-bar 4/4 windows on 16ths, as Magenta's GrooVAE. Meter-aware configs
(`meter=True`) read each meter segment on its own grid (`bridge.meter`) in windows of
`window` steps starting on its barlines (48 steps hold whole bars of 4/4, 3/4, 6/8, 2/4 and
6/4 alike), store the grid with each window, and with `other_meters` add the 3/4 and 6/8
performances `bridge.data.drum_meters` makes from 4/4 ones.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data import drum_meters
from bridge.data.converters import register
from bridge.data.grid import drum_hits, meter_segments, segments, window_starts
from bridge.drums import NUM_CLASSES
from bridge.encodings import groove as enc
from bridge.meter import MeterGrid
from bridge.midi_io import MidiScore

BAR_STEPS = 16  # legacy models are 4/4 only, as Magenta's GrooVAE


@register("groove")
class GrooveConverter:
    def __init__(self, hop: int = 16, min_hits: int = 4, meter: bool = False, window: int = enc.WINDOW_STEPS,
                 other_meters: bool = False) -> None:
        self.hop = hop
        self.min_hits = min_hits
        self.meter, self.window, self.other_meters = meter, window, other_meters
        self.stats: Counter = Counter()

    def _bpm_at(self, score: MidiScore, beat: float) -> float:
        bpm = score.tempo
        for change in score.tempos:
            if change.beat <= beat:
                bpm = change.bpm
        return bpm

    def _window(self, score: MidiScore, hits: list[enc.Hit], origin: float, spq: int,
                extra: dict) -> dict[str, np.ndarray] | None:
        window_beats = self.window / spq
        shifted = [enc.Hit(h.start - origin, h.drum_class, h.velocity) for h in hits
                   if -1.0 <= h.start - origin < window_beats]
        performance = enc.encode(shifted, self.window, spq)
        if performance[:, :NUM_CLASSES].sum() < self.min_hits:
            self.stats["window skipped: too few hits"] += 1
            return None
        self.stats["examples"] += 1
        return {"performance": performance, "bpm": np.array([self._bpm_at(score, origin)], np.float32), **extra}

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes, classified = drum_hits(score, self.stats)
        if not notes:
            return []
        if not self.meter:
            hits = [enc.Hit(n.start, c, n.velocity) for c, n in classified]
            out = []
            for segment in segments(score, notes, enc.STEPS_PER_QUARTER, self.stats):
                if segment.bar_steps != BAR_STEPS:
                    self.stats["segment skipped: not 4/4"] += 1
                    continue
                for start in window_starts(segment, self.window, self.hop):
                    beat = start / enc.STEPS_PER_QUARTER
                    found = self._window(score, hits, beat, enc.STEPS_PER_QUARTER, {})
                    out += [found] if found else []
            return out
        out = []
        for segment in meter_segments(score, notes, self.stats, meta.get("file")):
            hits = [(c, n.start - segment.shift, n) for c, n in classified
                    if segment.start <= n.start - segment.shift < segment.end]
            versions = [(segment.meter, hits, "")]
            if self.other_meters:
                versions += drum_meters.variants(hits, segment.meter, segment.start, meta["seed"])
            for meter, moved, how in versions:
                grid = MeterGrid.of(meter)
                spq = grid.steps_per_quarter
                as_hits = [enc.Hit(start, c, note.velocity) for c, start, note in moved]
                end = max((start for _, start, _ in moved), default=segment.start)
                total = int((end - segment.start) * spq) + 1
                hop = grid.bar_steps * max(1, round(self.hop / grid.bar_steps))
                count = 0
                for start in range(0, total - self.window + 1, hop):
                    origin = segment.start + start / spq
                    found = self._window(score, as_hits, origin, spq, {"grid": grid.encode()})
                    if found:
                        out.append(found)
                        count += 1
                self.stats[f"windows in {meter}" + (f" ({how})" if how else "")] += count
        return out
