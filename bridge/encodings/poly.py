"""Polyphonic events on a meter's grid: note-on, note-off and time-shift, as PerformanceRNN.

Why this encoding and not PolyphonyRNN's: PolyphonyRNN writes, for every grid step, one
CONTINUED_NOTE event per held note, one NEW_NOTE per onset and a STEP_END, so a four-voice
chorale costs about five events per 16th (320 for four 4/4 bars) and a held chord costs as
much as a moving one. PerformanceRNN's events (Oore et al. 2018; note_seq's
performance_lib) cost only what changes: note-ons, note-offs and a time-shift to the next
change, about 170 events for the same four bars, which is what lets a model train on one CPU
thread. Its time-shifts here count steps of the clip's meter grid (`bridge.meter`), not
10 ms ticks, so every event sits on a step and knows where in its bar that step is.

What PolyphonyRNN's continued-note events tell a model (which notes are still sounding) the
inputs give it directly: besides the event, each position sees the set of sounding pitches
after it and the meter position of its step (`PolyFeatures`). Every position also sees one
pitch-class histogram for the whole sequence, as PerformanceRNN's pitch-class histogram
control does: in training the histogram of the window's own note-ons, in Continue the
primer's, so that the continuation keeps the primer's key (without it, a model trained for
an hour drifted: 0.87 of the new notes in the primer's scale where Bach's own next bars have
0.94). Velocity is left out: the chorales have none (every note 80), and a Continue result
takes the primer's own velocity.

Classes: 0 START (the first input of every sequence, never sampled), then a note-on per
pitch, a note-off per pitch, and time-shifts of 1..max_shift steps (longer gaps take
several). Within a step, note-offs come first (low to high), then note-ons (low to high), so
a note that ends where the same pitch starts again is off-then-on, and a sequence has one
spelling. Pitches outside the range are moved by octaves into it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge import meter as M
from bridge.encodings import fold, one_hot

START = 0


@dataclass(frozen=True)
class PolyEncoding:
    min_pitch: int = 36
    max_pitch: int = 84  # inclusive
    max_shift: int = 16  # steps

    @property
    def num_pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1

    @property
    def first_off(self) -> int:
        return 1 + self.num_pitches

    @property
    def first_shift(self) -> int:
        return 1 + 2 * self.num_pitches

    @property
    def num_classes(self) -> int:
        return self.first_shift + self.max_shift

    def fold(self, pitch: int) -> int:
        return fold(pitch, self.min_pitch, self.max_pitch)

    def on(self, pitch: int) -> int:
        return 1 + self.fold(pitch) - self.min_pitch

    def off(self, pitch: int) -> int:
        return self.first_off + self.fold(pitch) - self.min_pitch

    def shifts(self, steps: int) -> list[int]:
        """Time-shift events that move `steps` steps forward (none for 0)."""
        full, rest = divmod(steps, self.max_shift)
        return [self.first_shift + self.max_shift - 1] * full + ([self.first_shift + rest - 1] if rest else [])

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per class: the step it advances time by, and +1/-1 at the pitch it turns on/off
        (as `delta` [classes, pitches]); and which classes are note-ons."""
        classes = np.arange(self.num_classes)
        advance = np.where(classes >= self.first_shift, classes - self.first_shift + 1, 0)
        delta = np.zeros((self.num_classes, self.num_pitches), np.int8)
        pitches = np.arange(self.num_pitches)
        delta[1 + pitches, pitches] = 1
        delta[self.first_off + pitches, pitches] = -1
        return advance, delta, (classes >= 1) & (classes < self.first_off)

    def encode(self, notes: list[tuple[int, int, int]], num_steps: int, close: bool = False) -> list[int]:
        """Events (without START) of (pitch, start, end) notes starting in [0, num_steps).

        Same-pitch overlaps are cut where the later note starts. Notes still sounding at
        num_steps get no note-off, unless `close`: then every note ends by num_steps and the
        events end at num_steps exactly (a primer, followed by its continuation).
        """
        by_pitch: dict[int, list[tuple[int, int]]] = {}
        for pitch, start, end in notes:
            if 0 <= start < num_steps:
                by_pitch.setdefault(self.fold(pitch), []).append((start, max(end, start + 1)))
        offs: dict[int, list[int]] = {}
        ons: dict[int, list[int]] = {}
        for pitch, spans in by_pitch.items():
            spans.sort()
            for i, (start, end) in enumerate(spans):
                if i + 1 < len(spans) and spans[i + 1][0] == start:
                    continue  # two notes of one pitch at one step: one note
                following = spans[i + 1][0] if i + 1 < len(spans) else None
                end = min(end, following) if following is not None else end
                if close:
                    end = min(end, num_steps)
                ons.setdefault(start, []).append(pitch)
                if end <= num_steps:
                    offs.setdefault(end, []).append(pitch)
        events: list[int] = []
        now = 0
        for step in sorted(set(ons) | set(offs)):
            events += self.shifts(step - now)
            now = step
            events += [self.off(p) for p in sorted(offs.get(step, []))]
            events += [self.on(p) for p in sorted(ons.get(step, []))]
        if close:
            events += self.shifts(num_steps - now)
        return events

    def decode(self, events, end_step: int | None = None) -> list[tuple[int, int, int]]:
        """(pitch, start, end) notes from events starting at step 0 (START is skipped); a note
        still sounding when the events end stops at `end_step` (default: the last step reached).
        Events past end_step are ignored."""
        sounding: dict[int, int] = {}
        notes: list[tuple[int, int, int]] = []
        now = 0
        for event in np.asarray(events).tolist():
            if event >= self.first_shift:
                now += event - self.first_shift + 1
            elif end_step is not None and now >= end_step:
                continue
            elif event >= self.first_off:
                pitch = self.min_pitch + event - self.first_off
                if pitch in sounding:
                    notes.append((pitch, sounding.pop(pitch), now))
            elif event >= 1:
                pitch = self.min_pitch + event - 1
                if pitch not in sounding:
                    sounding[pitch] = now
        stop = now if end_step is None else end_step
        notes += [(pitch, start, stop) for pitch, start in sounding.items() if start < stop]
        return sorted(notes, key=lambda n: (n[1], n[0]))


@dataclass(frozen=True)
class PolyFeatures:
    """Model inputs per event: the event, the pitches sounding after it, the meter position of
    the step it leaves the sequence at (where the next event will happen), and the sequence's
    pitch-class histogram."""

    encoding: PolyEncoding

    @property
    def size(self) -> int:
        return self.encoding.num_classes + self.encoding.num_pitches + M.FEATURES + 12

    def histogram(self, events: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """[B, 12] share of each pitch class among the note-ons of each row (its first
        `lengths` events, where given; zeros for a row without notes)."""
        events = np.asarray(events, np.int64)
        pitch = events - 1 + self.encoding.min_pitch
        ons = (events >= 1) & (events < self.encoding.first_off)
        if lengths is not None:
            ons &= np.arange(events.shape[1])[None, :] < np.asarray(lengths)[:, None]
        counts = np.stack([(ons & (pitch % 12 == pc)).sum(1) for pc in range(12)], axis=1).astype(np.float32)
        return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)

    def state(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(time [B, T] int64: the step after each event, sounding [B, T, pitches] float32)."""
        advance, delta, _ = self.encoding.tables()
        events = np.asarray(events, np.int64)
        time = np.cumsum(advance[events], axis=1)
        sounding = np.cumsum(delta[events], axis=1, dtype=np.int16) > 0
        return time, sounding.astype(np.float32)

    def __call__(self, events: np.ndarray, grids: np.ndarray, histogram: np.ndarray) -> np.ndarray:
        """Inputs [B, T, size] of int events [B, T] (each row from its start, with START) on
        each row's encoded meter grid (`MeterGrid.encode`, [B, 3]), with each row's
        pitch-class histogram [B, 12] (`histogram`: of the whole window, or of a primer)."""
        events = np.asarray(events, np.int64)
        time, sounding = self.state(events)
        positions = np.empty(events.shape + (M.FEATURES,), np.float32)
        tables: dict[tuple[int, ...], np.ndarray] = {}
        for b, row in enumerate(np.asarray(grids)):
            key = tuple(int(v) for v in row)
            if key not in tables:
                tables[key] = M.MeterGrid(*key).bar_features()
            positions[b] = tables[key][time[b] % key[1]]
        classes = np.broadcast_to(np.asarray(histogram, np.float32)[:, None], events.shape + (12,))
        return np.concatenate([one_hot(events, self.encoding.num_classes), sounding, positions, classes], axis=-1)
