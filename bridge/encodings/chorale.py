"""Four voices (soprano, alto, tenor, bass) on a 16th grid: what the Coconet-style model reads.

A chorale is a [steps, 4] array of classes: 0 = the voice is silent, 1 + (pitch - MIN_PITCH) a
sounding pitch, as Coconet's piano roll (Huang et al. 2017, "Counterpoint by Convolution":
one pitch per voice per 16th, pitches 36-81). As there, a run of one pitch is one held note:
the roll does not tell a repeated note from a held one. Steps are 16ths in every meter; the
meter enters as three position channels per step (bar start, beat start, 8th start) that mean
the same in 4/4, 3/4 or 3/2, so what the model learns about downbeats carries across meters.
"""
from __future__ import annotations

import itertools

import numpy as np

VOICES = ("S", "A", "T", "B")
NAMES = {"S": "soprano", "A": "alto", "T": "tenor", "B": "bass"}
MIN_PITCH, MAX_PITCH = 36, 81  # Coconet's range; every note of the chorales in ../shared/data lies in it
NUM_CLASSES = 1 + MAX_PITCH - MIN_PITCH + 1
REST = 0
# Every set of voices, top down, as a parameter names it: "S", "SB", "SATB"...
VOICE_SETS = tuple("".join(c) for k in range(1, 5) for c in itertools.combinations(VOICES, k))
STEPS_PER_QUARTER = 4
POSITION_CHANNELS = 3
# Lowest and highest pitch each voice sings in the 327 chorales of ../shared/data/chorales
# (music21 corpus); generated voices stay inside them.
RANGES = {"S": (57, 81), "A": (53, 74), "T": (48, 69), "B": (36, 64)}


def pitch_class_of(pitch: int) -> int:
    """The class of a pitch, folded by octaves into MIN_PITCH..MAX_PITCH (for conditioning only)."""
    while pitch > MAX_PITCH:
        pitch -= 12
    while pitch < MIN_PITCH:
        pitch += 12
    return 1 + pitch - MIN_PITCH


def class_pitch(cls: np.ndarray | int) -> np.ndarray | int:
    """The MIDI pitch of a sounding class (callers keep rests apart)."""
    return cls + MIN_PITCH - 1


def roll(voices: list[list[tuple[int, int, int]]], steps: int) -> np.ndarray:
    """[steps, len(voices)] int8 classes from (pitch, start step, end step) notes per voice.

    A later note of a voice overwrites an earlier one from its start on (a voice sings one
    pitch at a time); parts of notes outside [0, steps) are left out.
    """
    out = np.zeros((steps, len(voices)), np.int8)
    for v, notes in enumerate(voices):
        for pitch, start, end in sorted(notes, key=lambda n: n[1]):
            out[max(start, 0):min(end, steps), v] = pitch_class_of(pitch)
    return out


def runs(column: np.ndarray) -> list[tuple[int, int, int]]:
    """(class, start step, end step) of each run of one sounding class in a voice's column."""
    out = []
    start = 0
    for t in range(1, len(column) + 1):
        if t == len(column) or column[t] != column[start]:
            if column[start] != REST:
                out.append((int(column[start]), start, t))
            start = t
    return out


def position(bar_steps: int, beat_steps: int, phase: int, steps: int) -> np.ndarray:
    """[steps, 3] float32: bar start, beat start, 8th start, for a window whose first step is
    step `phase` of its bar."""
    at = (np.arange(steps) + phase) % bar_steps
    in_beat = at % beat_steps
    return np.stack([at == 0, in_beat == 0, in_beat % 2 == 0], axis=-1).astype(np.float32)


def model_input(classes: np.ndarray, mask: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[B, T, V * NUM_CLASSES + V + 3] float32: the one-hot roll with masked cells zeroed, the
    mask, and the position channels (Coconet's input: roll * (1 - mask) concatenated with mask).

    classes [B, T, V] ints, mask [B, T, V] (1 = to predict), pos [B, T, 3] or [T, 3]."""
    batch, steps, voices = classes.shape
    keep = 1.0 - mask.astype(np.float32)
    hot = np.zeros((batch, steps, voices, NUM_CLASSES), np.float32)
    np.put_along_axis(hot, classes[..., None].astype(np.int64), keep[..., None], axis=-1)
    pos = np.broadcast_to(pos, (batch, steps, POSITION_CHANNELS))
    return np.concatenate([hot.reshape(batch, steps, -1), mask.astype(np.float32), pos], axis=-1)


def input_width(voices: int = len(VOICES)) -> int:
    return voices * NUM_CLASSES + voices + POSITION_CHANNELS


ADJACENT = ((0, 1), (1, 2), (2, 3))  # pairs of adjacent voices, upper first


def parallels(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parallel fifths and parallel octaves (unisons included) between adjacent voices:
    two bool arrays [..., steps - 1, 3], True at (step t - 1 -> t, pair).

    A parallel: both voices of a pair sound at both steps and both move, the same way, from a
    fifth to a fifth or from an octave to an octave (compound intervals included): the
    consecutive fifths and octaves of the part-writing rules. classes [..., steps, 4]."""
    x = classes.astype(np.int64)
    upper, lower = x[..., [u for u, _ in ADJACENT]], x[..., [v for _, v in ADJACENT]]
    both = (upper != REST) & (lower != REST)
    interval = (upper - lower) % 12
    up, down = np.diff(upper, axis=-2), np.diff(lower, axis=-2)
    similar = both[..., 1:, :] & both[..., :-1, :] & (up != 0) & (down != 0) & (np.sign(up) == np.sign(down))
    fifths = similar & (interval[..., 1:, :] == 7) & (interval[..., :-1, :] == 7)
    octaves = similar & (interval[..., 1:, :] == 0) & (interval[..., :-1, :] == 0)
    return fifths, octaves


def parallel_cells(classes: np.ndarray) -> np.ndarray:
    """[..., steps, 4] bool: the cells (both voices, both steps) of every parallel fifth or octave."""
    fifths, octaves = parallels(classes)
    hit = fifths | octaves
    out = np.zeros(classes.shape, bool)
    for k, (u, v) in enumerate(ADJACENT):
        for voice in (u, v):
            out[..., 1:, voice] |= hit[..., k]
            out[..., :-1, voice] |= hit[..., k]
    return out
