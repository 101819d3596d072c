"""GrooVAE's drum tensors: hits, velocities and offsets per grid step and drum class.

Shared by the training converter and the NumPy serving class, so a performance is encoded
the same way in both. No TensorFlow here.

Steps are 16ths (Magenta's GrooveConverter and our 4/4 models) or, for meter-aware models,
the meter's grid (`bridge.meter`: `steps_per_quarter` below). Per step t and class k:
  hit[t, k]      1 if class k plays at step t, else 0
  velocity[t, k] MIDI velocity / 127 (0 where no hit)
  offset[t, k]   2 * (grid - onset) / step, in [-1, 1] (0 where no hit)

Sign: an EARLY note has a POSITIVE offset (onset before its grid step), as Magenta's doc
states; so onset = (t - offset / 2) * step. Several notes of one class in one step: the
loudest wins (the first of equal ones), because the model has one cell per class and step.

The encoder sees a transformed copy (`encoder_inputs`): "humanize" keeps only the hits, so
the model must invent velocity and timing; "tap" merges every onset into one channel (the
loudest per step, with its velocity and offset), so the model must invent the instruments.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from bridge.drums import NUM_CLASSES

STEPS_PER_QUARTER = 4
WINDOW_STEPS = 32  # two 4/4 bars of 16ths: the window of Magenta's and our 4/4-only models
FEATURES = 3 * NUM_CLASSES  # hits | velocities | offsets
MODES = {"humanize": NUM_CLASSES, "tap": 3}  # mode -> encoder input width


@dataclass(frozen=True)
class Hit:
    """One drum onset in beats, already mapped to its class."""

    start: float
    drum_class: int
    velocity: int


def grid_position(start: float, steps_per_quarter: int = STEPS_PER_QUARTER) -> tuple[int, float]:
    """(step, offset) of an onset in beats: the nearest grid step and the signed offset."""
    pos = start * steps_per_quarter
    step = int(math.floor(pos + 0.5))
    return step, min(1.0, max(-1.0, 2.0 * (step - pos)))  # not np.clip: a scalar through NumPy costs 2.6 us


def num_steps(length_beats: float, steps_per_quarter: int = STEPS_PER_QUARTER) -> int:
    """Steps covering a clip of this many beats (at least one)."""
    return max(1, int(math.ceil(length_beats * steps_per_quarter - 1e-9)))


def encode(hits: Iterable[Hit], steps: int, steps_per_quarter: int = STEPS_PER_QUARTER) -> np.ndarray:
    """A [steps, 27] float32 tensor (hits | velocities | offsets); hits past the end are dropped."""
    out = np.zeros((steps, FEATURES), np.float32)
    for hit in hits:
        step, offset = grid_position(hit.start, steps_per_quarter)
        if not 0 <= step < steps:
            continue
        k = hit.drum_class
        velocity = hit.velocity / 127.0
        if out[step, k] and out[step, NUM_CLASSES + k] >= velocity:
            continue
        out[step, k] = 1.0
        out[step, NUM_CLASSES + k] = velocity
        out[step, 2 * NUM_CLASSES + k] = offset
    return out


def split(tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits, velocities and offsets of a [..., 27] tensor."""
    n = NUM_CLASSES
    return tensor[..., :n], tensor[..., n:2 * n], tensor[..., 2 * n:]


def tap(tensor: np.ndarray) -> np.ndarray:
    """[..., T, 3]: per step the loudest onset of any class (hit, velocity, offset)."""
    hits, velocities, offsets = split(tensor)
    loudest = np.argmax(velocities + hits * 1e-6, axis=-1)[..., None]
    return np.concatenate([hits.max(axis=-1, keepdims=True),
                           np.take_along_axis(velocities, loudest, -1),
                           np.take_along_axis(offsets, loudest, -1)], axis=-1).astype(np.float32)


def encoder_inputs(tensor: np.ndarray, mode: str) -> np.ndarray:
    """What the encoder sees for a [..., T, 27] performance in this mode."""
    if mode == "humanize":
        return np.ascontiguousarray(tensor[..., :NUM_CLASSES], np.float32)
    if mode == "tap":
        return tap(tensor)
    raise ValueError(f"unknown GrooVAE mode {mode!r}; known: {', '.join(MODES)}")


def onset_beats(step: int | np.ndarray, offset: float | np.ndarray,
                steps_per_quarter: int = STEPS_PER_QUARTER) -> float | np.ndarray:
    """Inverse of grid_position: the onset in beats of a step and its offset."""
    return (step - np.asarray(offset) / 2.0) / steps_per_quarter


def decode(tensor: np.ndarray, steps_per_quarter: int = STEPS_PER_QUARTER) -> list[Hit]:
    """The hits of a [T, 27] tensor (hit where > 0.5), onsets never before beat 0."""
    hits, velocities, offsets = split(tensor)
    steps, classes = np.nonzero(hits > 0.5)
    starts = np.maximum(0.0, onset_beats(steps, offsets[steps, classes], steps_per_quarter))
    levels = np.clip(np.round(velocities[steps, classes].astype(np.float64) * 127), 1, 127).astype(int)
    out = map(Hit, starts.tolist(), classes.tolist(), levels.tolist())
    return sorted(out, key=lambda h: (h.start, h.drum_class))


def windows(steps: int, window: int = WINDOW_STEPS, hop: int = WINDOW_STEPS // 2) -> list[int]:
    """Start steps of the windows that cover `steps`, `hop` steps apart (one 4/4 bar for the
    2-bar models; whole bars of the clip's meter for meter-aware ones).

    Consecutive windows overlap; the decoder replays the overlap from the previous window, so
    a long clip has no seam at a window border.
    """
    return list(range(0, max(steps - window, 0) + hop, hop)) if steps > window else [0]
