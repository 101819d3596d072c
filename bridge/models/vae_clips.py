"""Clips to MusicVAE events and back, keeping the musical context of the inputs.

A model sees folded pitches at one velocity; what the user hears should still sit in the
register and dynamics of the clips they gave. `Style` carries those (mean pitch, median
velocity) and is blended along an interpolation path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.clip import Clip, Note, quantize
from bridge.drums import DrumMap
from bridge.meter import MeterGrid

FOUR_FOUR = MeterGrid.of("4/4")

DEFAULT_VELOCITY = 100


@dataclass(frozen=True)
class Style:
    mean_pitch: float | None
    velocity: float

    @classmethod
    def of(cls, clips: list[Clip], kind: str) -> "Style":
        notes = [n for c in clips for n in c.audible_notes()]
        if not notes:
            return cls(None, DEFAULT_VELOCITY)
        mean = float(np.mean([n.pitch for n in notes])) if kind == "melody" else None
        return cls(mean, float(np.median([n.velocity for n in notes])))

    @staticmethod
    def blend(a: "Style", b: "Style", t: float) -> "Style":
        if a.mean_pitch is None or b.mean_pitch is None:
            mean = a.mean_pitch if b.mean_pitch is None else b.mean_pitch
        else:
            mean = (1 - t) * a.mean_pitch + t * b.mean_pitch
        return Style(mean, (1 - t) * a.velocity + t * b.velocity)


def _looped(items: list[tuple[int, ...]], period: int, steps: int) -> list[tuple[int, ...]]:
    """Repeat (value, start, [end]) items every `period` steps to fill `steps`, as a looping clip plays."""
    out = []
    for k in range(0, steps, period):
        out += [(item[0], item[1] + k, *(min(e, period) + k for e in item[2:])) for item in items if item[1] < period]
    return out


def to_events(clip: Clip, hp, drums: DrumMap | None, steps: int | None = None,
              grid: MeterGrid | None = None) -> np.ndarray:
    """Events [steps] (default: one model window) for a clip read from beat 0 on `grid`
    (default 4/4 16ths), looped or trimmed."""
    steps = steps or hp.steps
    per_quarter = (grid or FOUR_FOUR).steps_per_quarter
    period = max(1, int(round(clip.length * per_quarter)))
    grid = quantize(clip, per_quarter)
    if drums is None:
        notes = _looped([(g.pitch, g.step, g.end_step) for g in grid], period, steps)
        return hp.encoding.encode(notes, steps).astype(np.int64)
    hits = [(cls, g.step) for g in grid if (cls := drums.classify(g.pitch)) is not None]
    return hp.encoding.encode(_looped(hits, period, steps), steps).astype(np.int64)


def to_notes(events: np.ndarray, hp, style: Style, drums: DrumMap | None, grid: MeterGrid | None = None) -> list[Note]:
    """Notes of decoded events on `grid` (default 4/4 16ths), window by window (a note never
    spans two windows).

    Melody moves by whole octaves toward the style's mean pitch; every note takes the
    style's velocity; drums go out through the user's drum map, one step long.
    """
    step = 1.0 / (grid or FOUR_FOUR).steps_per_quarter
    velocity = int(np.clip(round(style.velocity), 1, 127))
    if drums is not None:
        return [Note(drums.pitch(c), s * step, step, velocity) for c, s in hp.encoding.decode(events)]
    spans = [n for s in range(0, len(events), hp.steps) for n in hp.encoding.decode(events[s:s + hp.steps], s)]
    shift = 0
    if spans and style.mean_pitch is not None:
        low, high = min(p for p, _, _ in spans), max(p for p, _, _ in spans)
        shift = 12 * round((style.mean_pitch - np.mean([p for p, _, _ in spans])) / 12)
        shift = max(-12 * (low // 12), min(shift, 12 * ((127 - high) // 12)))
    return [Note(p + shift, s * step, (e - s) * step, velocity) for p, s, e in spans]
