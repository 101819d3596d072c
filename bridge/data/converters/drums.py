"""Drum windows for DrumsRNN: every drum-channel note as one of 9 classes, 512-way per step.

Legacy configs put every meter on one 16th grid. Meter-aware configs (`meter=True`) quantize
each meter segment on its own grid and store the grid with each window; with `other_meters`
a 4/4 performance also gives 3/4 and (for shuffles) 6/8 windows (`bridge.data.drum_meters`),
since the Groove MIDI Dataset has almost no other meter.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.data import drum_meters
from bridge.data.converters import register
from bridge.data.grid import drum_hits, drum_windows, meter_segments, segments, to_step, window_starts
from bridge.encodings.drums import DrumEncoding
from bridge.meter import MeterGrid
from bridge.midi_io import MidiScore


@register("drums")
class DrumConverter:
    def __init__(self, steps_per_quarter: int = 4, window: int = 129, hop: int = 16, min_hits: int = 16,
                 meter: bool = False, other_meters: bool = False) -> None:
        self.encoding = DrumEncoding()
        self.steps_per_quarter = steps_per_quarter
        self.window = window
        self.hop = hop
        self.min_hits = min_hits
        self.meter = meter
        self.other_meters = other_meters
        self.stats: Counter = Counter()

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes, classified = drum_hits(score, self.stats)
        if not notes:
            return []
        if not self.meter:
            spq = self.steps_per_quarter
            hits = [(c, to_step(n.start, spq)) for c, n in classified]
            starts = (start for segment in segments(score, notes, spq, self.stats)
                      for start in window_starts(segment, self.window, self.hop))
            return drum_windows(self.encoding, hits, starts, self.window, self.min_hits, self.stats)
        out = []
        for segment in meter_segments(score, notes, self.stats, meta.get("file")):
            hits = [(c, n.start - segment.shift, n) for c, n in classified
                    if segment.start <= n.start - segment.shift < segment.end]
            versions = [(segment.meter, hits, "")]
            if self.other_meters:
                versions += drum_meters.variants(hits, segment.meter, segment.start, meta["seed"])
            for meter, moved, how in versions:
                grid = MeterGrid.of(meter)
                steps = [(c, to_step(start - segment.start, grid.steps_per_quarter)) for c, start, _ in moved]
                total = max((s for _, s in steps), default=0) + 1
                hop = grid.bar_steps * max(1, round(self.hop / grid.bar_steps))
                found = drum_windows(self.encoding, steps, range(0, total - self.window + 1, hop), self.window,
                                     self.min_hits, self.stats)
                for example in found:
                    example["grid"] = grid.encode()
                self.stats[f"windows in {meter}" + (f" ({how})" if how else "")] += len(found)
                out += found
        return out
