"""Where a step sits in its bar: the meter-aware grid that meter-aware models read and write.

A model that counts 16 steps to a bar hears every clip as 4/4. Here a meter decides the grid
and the positions instead:
  * The step is a quarter of the meter's beat unit, never finer than a 16th: 16ths for /4, /8
    and /16 meters, 8ths for /2 (3/2 then reads like 3/4: long-note meters keep their long
    notes) and quarters for /1. A 6/8 bar is 12 steps, 3/4 is 12, 2/2 is 8, 6/4 is 24.
  * Beats follow the meter: compound meters (6, 9, 12... of /4, /8 or /16) group three units
    into a dotted beat, so 6/8 has two beats of 6 steps; every other meter beats on its unit.
  * `features` gives each step its bar start, beat start, beat number, step in the beat, beat
    length and beats per bar as one-hot columns: the same columns for every meter, so what a
    model learns about "downbeat" or "second half of a beat" carries from one meter to another.
Meters whose bar is not a whole number of steps (e.g. 7/32) have no grid and are refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.clip import TimeSignature

MAX_BEATS = 8          # beat numbers 0..7 (later beats share the last column)
MAX_BEAT_STEPS = 12    # steps in a beat 0..11 (6/4's dotted half is 12 steps)
BEAT_LENGTHS = (1, 2, 3, 4, 6, 8, 12)  # beat lengths in steps; others share the last column
FEATURES = 2 + MAX_BEATS + MAX_BEAT_STEPS + len(BEAT_LENGTHS) + MAX_BEATS


class MeterError(ValueError):
    """A meter that has no grid; the message is shown to the user."""


@dataclass(frozen=True)
class MeterGrid:
    """A meter on its step grid: steps per quarter note, steps per bar and per beat."""

    steps_per_quarter: int
    bar_steps: int
    beat_steps: int

    @classmethod
    def of(cls, meter: TimeSignature | str) -> "MeterGrid":
        if isinstance(meter, str):
            meter = parse(meter)
        n, d = meter.numerator, meter.denominator
        spq = min(4, d)
        unit = spq * 4 / d  # steps per denominator note
        if unit != int(unit) or n < 1:
            raise MeterError(f"{n}/{d} has no whole-step grid")
        unit = int(unit)
        compound = n % 3 == 0 and n > 3 and d >= 4
        return cls(spq, n * unit, 3 * unit if compound else unit)

    @property
    def beats(self) -> int:
        return max(1, self.bar_steps // self.beat_steps)

    def features(self, steps: np.ndarray) -> np.ndarray:
        """[len(steps), FEATURES] float32 one-hot positions of absolute steps (bar 0 at step 0)."""
        steps = np.asarray(steps, np.int64)
        in_bar = np.mod(steps, self.bar_steps)
        beat, in_beat = np.divmod(in_bar, self.beat_steps)
        out = np.zeros((len(steps), FEATURES), np.float32)
        rows = np.arange(len(steps))
        out[:, 0] = in_bar == 0
        out[:, 1] = in_beat == 0
        at = 2
        out[rows, at + np.minimum(beat, MAX_BEATS - 1)] = 1.0
        at += MAX_BEATS
        out[rows, at + np.minimum(in_beat, MAX_BEAT_STEPS - 1)] = 1.0
        at += MAX_BEAT_STEPS
        length = BEAT_LENGTHS.index(self.beat_steps) if self.beat_steps in BEAT_LENGTHS else len(BEAT_LENGTHS) - 1
        out[:, at + length] = 1.0
        at += len(BEAT_LENGTHS)
        out[:, at + min(self.beats, MAX_BEATS) - 1] = 1.0
        return out

    def bar_features(self) -> np.ndarray:
        """features() of one bar's steps: row t is step t of every bar."""
        return self.features(np.arange(self.bar_steps))

    def encode(self) -> np.ndarray:
        """(steps per quarter, bar steps, beat steps) as int16, what a training example stores."""
        return np.array([self.steps_per_quarter, self.bar_steps, self.beat_steps], np.int16)

    @classmethod
    def decode(cls, row: np.ndarray) -> "MeterGrid":
        return cls(*(int(v) for v in row))


def parse(text: str) -> TimeSignature:
    """'6/8' -> TimeSignature(6, 8), or MeterError."""
    try:
        numerator, denominator = (int(x) for x in str(text).split("/"))
        meter = TimeSignature(numerator, denominator)
        meter.validate()
    except ValueError:
        raise MeterError(f"not a meter: {text!r} (expected n/d, e.g. 6/8)") from None
    return meter


def meter_features(meters: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """[B, T, FEATURES] positions of steps [T] for a batch of encoded grids [B, 3]."""
    cache: dict[tuple[int, ...], np.ndarray] = {}
    out = np.empty((len(meters), len(steps), FEATURES), np.float32)
    for b, row in enumerate(np.asarray(meters)):
        key = tuple(int(v) for v in row)
        if key not in cache:
            cache[key] = MeterGrid(*key).features(steps)
        out[b] = cache[key]
    return out


LEGACY_METERS = ("4/4",)  # what a bundle from before meter-aware models was trained on


def accepts(trained: list[str] | tuple[str, ...], meter: TimeSignature, meter_aware: bool) -> bool:
    """Whether a model trained in `trained` meters can take a clip in `meter`.

    A meter-aware model takes any meter whose grid has the bar and beat of a trained one:
    on its grid 2/2 is 2/4, 3/2 is 3/4 and 12/8 is... only 12/8. A legacy model, which counts
    16ths whatever the meter, takes any meter with its trained bar length (4/4, 2/2, 8/8).
    """
    try:
        grid = MeterGrid.of(meter)
    except MeterError:
        return False
    for text in trained:
        known = parse(text)
        if meter_aware:
            other = MeterGrid.of(known)
            if (other.bar_steps, other.beat_steps) == (grid.bar_steps, grid.beat_steps):
                return True
        elif known.beats_per_bar == meter.beats_per_bar:
            return True
    return False
