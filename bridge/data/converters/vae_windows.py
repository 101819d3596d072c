"""MusicVAE windows: every 2- or 4-bar 4/4 window (one bar apart) as melody or drum events.

Windows start on barlines of 16-step bars; other meters are skipped. Meter-aware melody
configs (`meter=True`) instead cut each meter segment, on its own grid (`bridge.meter`), into
windows of `window` steps (whole bars: 48 steps are 3 bars of 4/4, 4 of 3/4 or 6/8) and store
the grid with each window; meters whose bar does not divide the window are skipped. POP909 writes a
placeholder meter (1/4 or 2/4) and plays on a grid offset from the file's beats by a constant
fraction of a 16th, so `assume_meter` replaces the file's meter and `fix_offset` moves every
note by the circular mean of the onsets' positions inside a 16th before quantizing. Its bar
phase cannot be read from the MIDI alone; windows then start on every 4th beat from beat 0.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from bridge.clip import TimeSignature
from bridge.data.converters import register
from bridge.data.grid import Segment, drum_hits, drum_windows, meter_segments, segments, to_step, window_starts
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.melody import MelodyEncoding
from bridge.midi_io import MidiScore

STEPS_PER_QUARTER = 4
BAR = 16


def _grid_offset(starts: list[float]) -> float:
    """The onsets' common offset from the 16th grid, in beats (circular mean)."""
    phase = np.angle(np.exp(2j * np.pi * np.asarray(starts) * STEPS_PER_QUARTER).mean())
    return float(phase / (2 * np.pi) / STEPS_PER_QUARTER)


def _bars(score: MidiScore, notes: list, assume_meter: str | None, stats: Counter) -> list[Segment]:
    """4/4 stretches: the whole file under `assume_meter`, else the file's 16-step meters."""
    if assume_meter:
        numerator, denominator = (int(x) for x in assume_meter.split("/"))
        if TimeSignature(numerator, denominator).beats_per_bar * STEPS_PER_QUARTER != BAR:
            raise ValueError(f"assume_meter must have 16-step bars, got {assume_meter}")
        end = max((to_step(n.end, STEPS_PER_QUARTER) for n in notes), default=0)
        return [Segment(0, end, BAR)]
    found = segments(score, notes, STEPS_PER_QUARTER, stats)
    for segment in found:
        if segment.bar_steps != BAR:
            stats["segment skipped: not 4/4"] += 1
    return [s for s in found if s.bar_steps == BAR]


@register("vae_melody")
class VAEMelodyConverter:
    def __init__(self, bars: int = 2, track: str = "MELODY", min_pitch: int = 48, max_pitch: int = 95,
                 min_notes: int = 4, max_transpose: int = 5, assume_meter: str | None = None,
                 fix_offset: bool = False, meter: bool = False, window: int = 0) -> None:
        self.meter = meter
        self.window, self.track = (window if meter else bars * BAR), track
        self.encoding = MelodyEncoding(min_pitch, max_pitch)
        self.min_notes, self.max_transpose = min_notes, max_transpose
        self.assume_meter, self.fix_offset = assume_meter, fix_offset
        self.stats: Counter = Counter()

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        tracks = [t for t in score.tracks if not t.is_drum and t.name.casefold() == self.track.casefold()]
        if not tracks or not tracks[0].notes:
            self.stats[f"file skipped: no {self.track} track"] += 1
            return []
        notes = list(tracks[0].notes)
        if self.meter:
            return self._meter_examples(score, notes, meta)
        shift = _grid_offset([n.start for n in notes]) if self.fix_offset else 0.0
        grid = [(n.pitch, to_step(n.start - shift, STEPS_PER_QUARTER),
                 max(to_step(n.start - shift, STEPS_PER_QUARTER) + 1, to_step(n.end - shift, STEPS_PER_QUARTER)))
                for n in notes]
        rng = np.random.default_rng(meta["seed"])
        out = []
        for segment in _bars(score, notes, self.assume_meter, self.stats):
            for start in window_starts(segment, self.window, BAR):
                example = self._example(grid, start, meta, rng)
                out += [example] if example else []
        return out

    def _example(self, grid: list[tuple[int, int, int]], start: int, meta: dict, rng: np.random.Generator,
                 extra: dict | None = None) -> dict[str, np.ndarray] | None:
        window = [(p, s - start, e - start) for p, s, e in grid if start <= s < start + self.window]
        if len(window) < self.min_notes:
            self.stats["window skipped: too few notes"] += 1
            return None
        transpose = self._transpose([p for p, _, _ in window], meta["split"] == "train", rng)
        if transpose is None:
            self.stats["window skipped: pitch range wider than the model's"] += 1
            return None
        self.stats["examples"] += 1
        return {"events": self.encoding.encode([(p + transpose, s, e) for p, s, e in window], self.window),
                **(extra or {})}

    def _meter_examples(self, score: MidiScore, notes: list, meta: dict) -> list[dict[str, np.ndarray]]:
        rng = np.random.default_rng(meta["seed"])
        out = []
        for segment in meter_segments(score, notes, self.stats, meta.get("file")):
            bar = segment.grid.bar_steps
            if self.window % bar:
                self.stats[f"segment skipped: {segment.meter} bars do not fill {self.window} steps"] += 1
                continue
            grid = [(n.pitch, segment.steps(n.start), max(segment.steps(n.start) + 1, segment.steps(n.end)))
                    for n in notes if segment.start - 1e-6 <= n.start - segment.shift < segment.end]
            total = max((e for _, _, e in grid), default=0)
            hop = bar * max(1, round(BAR / bar))
            for start in range(0, total - self.window + 1, hop):
                example = self._example(grid, start, meta, rng, {"grid": segment.grid.encode()})
                if example:
                    out.append(example)
                    self.stats[f"windows in {segment.meter}"] += 1
        return out

    def _transpose(self, pitches: list[int], augment: bool, rng: np.random.Generator) -> int | None:
        """A shift that keeps every pitch in range: the octave nearest to none, plus for training
        a random shift of up to max_transpose semitones (Magenta's key augmentation)."""
        lo, hi = min(pitches), max(pitches)
        fits = lambda k: self.encoding.min_pitch <= lo + k and hi + k <= self.encoding.max_pitch
        octave = min((k for k in (0, -12, 12, -24, 24) if fits(k)), key=abs, default=None)
        if octave is None:
            return None
        if not augment:
            return octave
        choices = [octave + t for t in range(-self.max_transpose, self.max_transpose + 1) if fits(octave + t)]
        return int(rng.choice(choices))


@register("vae_drums")
class VAEDrumConverter:
    def __init__(self, bars: int = 2, min_hits: int = 8, assume_meter: str | None = None,
                 train_hop: int = BAR) -> None:
        """`train_hop` < 16 adds training windows that start off the barline (4: on every beat),
        drum grooves being mostly beat-periodic; eval windows always start on barlines, as
        users' clips do."""
        self.window, self.min_hits, self.assume_meter = bars * BAR, min_hits, assume_meter
        self.train_hop = train_hop
        self.encoding = DrumEncoding()
        self.stats: Counter = Counter()

    def examples(self, score: MidiScore, meta: dict) -> list[dict[str, np.ndarray]]:
        notes, classified = drum_hits(score, self.stats)
        if not notes:
            return []
        hits = [(c, to_step(n.start, STEPS_PER_QUARTER)) for c, n in classified]
        hop = self.train_hop if meta["split"] == "train" else BAR
        starts = (start for segment in _bars(score, notes, self.assume_meter, self.stats)
                  for start in window_starts(segment, self.window, hop, STEPS_PER_QUARTER))
        return drum_windows(self.encoding, hits, starts, self.window, self.min_hits, self.stats)
