"""The grids training examples live on, cut into windows that start on barlines.

Steps are counted from beats (MIDI ticks / ticks per beat), never from seconds, so tempo
changes do not move a note. A meter change starts a new segment (as Magenta splits at time
changes). `segments` puts every meter on one grid (16ths for the 4/4 models; a meter whose bar
is not a whole number of steps is skipped); `meter_segments` puts each on its own
(`bridge.meter.MeterGrid`), for meter-aware models.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from bridge.clip import ClipError, Note, TimeSignature
from bridge.data import beat_files
from bridge.drums import GM_DRUM_MAP
from bridge.meter import MeterError, MeterGrid
from bridge.midi_io import MidiScore


def drum_hits(score: MidiScore, stats: Counter) -> tuple[list[Note], list[tuple[int, Note]]]:
    """A file's unmuted drum-channel notes, and (GM class, note) for those the 9-class map
    knows; every drum converter reads drums this way, and counts what it skips the same way."""
    notes = [n for t in score.tracks if t.is_drum for n in t.notes if not n.mute]
    if not notes:
        stats["file skipped: no drum-channel notes"] += 1
    hits = [(c, n) for n in notes if (c := GM_DRUM_MAP.classify(n.pitch)) is not None]
    if len(hits) < len(notes):
        stats["notes dropped: pitch not in the 9-class map"] += len(notes) - len(hits)
    return notes, hits


def drum_windows(encoding, hits: list[tuple[int, int]], starts, window: int, min_hits: int,
                 stats: Counter) -> list[dict]:
    """One {"events"} example per window start with at least `min_hits` hits; hits are
    (class, step). Shared by the drum converters, which differ only in where windows start."""
    out = []
    for start in starts:
        events = encoding.encode([(c, s - start) for c, s in hits], window)
        if int(encoding.bits(events).sum()) < min_hits:
            stats["window skipped: too few hits"] += 1
            continue
        out.append({"events": events})
        stats["examples"] += 1
    return out


def to_step(beats: float, steps_per_quarter: int) -> int:
    return int(math.floor(beats * steps_per_quarter + 0.5))


@dataclass(frozen=True)
class Segment:
    start_step: int
    end_step: int
    bar_steps: int


def segments(score: MidiScore, notes: list[Note], steps_per_quarter: int, stats: Counter) -> list[Segment]:
    """Stretches of one meter, from the first meter change (or beat 0) to the last note end."""
    end = max((to_step(n.end, steps_per_quarter) for n in notes), default=0)
    changes = [(m.beat, m.time_signature) for m in score.time_signatures]
    if not changes or changes[0][0] > 0:
        changes.insert(0, (0.0, score.time_signature if not changes else changes[0][1]))
    out = []
    for i, (beat, meter) in enumerate(changes):
        start = to_step(beat, steps_per_quarter)
        stop = to_step(changes[i + 1][0], steps_per_quarter) if i + 1 < len(changes) else end
        bar = meter.beats_per_bar * steps_per_quarter
        if stop <= start:
            continue
        if bar != int(bar):
            stats[f"segment skipped: {meter} bar is not whole 16ths"] += 1
            continue
        out.append(Segment(start, stop, int(bar)))
        stats[f"segment of {_bars_bucket((stop - start) / bar)} bars"] += 1
    return out


def _bars_bucket(bars: float) -> str:
    for low, high in ((0, 8), (8, 16), (16, 32), (32, 64), (64, 128)):
        if bars < high:
            return f"{low}-{high}"
    return ">=128"


def window_starts(segment: Segment, window: int, hop: int, align: int | None = None) -> list[int]:
    """Starts of full windows inside a segment, about `hop` steps apart, on barlines (or on
    multiples of `align` steps from the segment start, e.g. beats for augmentation)."""
    align = align or segment.bar_steps
    hop = align * max(1, round(hop / align))
    return list(range(segment.start_step, segment.end_step - window + 1, hop))


@dataclass(frozen=True)
class MeterSegment:
    """A stretch of one meter: from a barline at `start` (beats) to `end`, on `grid`; `shift`
    (beats) is subtracted from every onset before quantizing (a file played off its beat grid)."""

    start: float
    end: float
    meter: TimeSignature
    grid: MeterGrid
    shift: float = 0.0

    def steps(self, beats: float) -> int:
        """The step (from the segment start) of a time in beats."""
        return to_step(beats - self.start - self.shift, self.grid.steps_per_quarter)

    @property
    def num_steps(self) -> int:
        return self.steps(self.end + self.shift)


def meter_segments(score: MidiScore, notes: list[Note], stats: Counter, path: str | None = None) -> list[MeterSegment]:
    """The file's stretches of one meter, each on its own grid, up to the last note's end.

    A beat annotation beside the file (POP909's `beat_midi.txt`, see `beat_files`) overrides
    the file's own meter map, whose meters are placeholders there. Meters without a grid are
    skipped and counted.
    """
    end = max((n.end for n in notes), default=0.0)
    annotated = beat_files.read(score, path, stats) if path else None
    if annotated is not None:
        meter, phase, shift = annotated
        changes = [(phase, meter)]
    else:
        if path and beat_files.annotated(path):
            return []  # an annotation that could not be used: counted by beat_files.read
        shift = 0.0
        changes = [(m.beat, m.time_signature) for m in score.time_signatures]
        if not changes or changes[0][0] > 0:
            changes.insert(0, (0.0, score.time_signature if not changes else changes[0][1]))
    out = []
    for i, (beat, meter) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end
        if stop <= beat:
            continue
        if not 2 <= meter.numerator <= 12:
            stats["segment skipped: 1 or over 12 beats a bar (Essen marks irregular bars so)"] += 1
            continue
        try:
            grid = MeterGrid.of(meter)
        except (MeterError, ClipError):
            stats[f"segment skipped: {meter} has no grid"] += 1
            continue
        out.append(MeterSegment(beat, stop, meter, grid, shift))
        stats[f"segment in {meter}"] += 1
    return out
