"""Event encodings shared by training and serving (plain NumPy, no TensorFlow).

`melody`: Magenta's monophonic one-hot (no-event, note-off, one class per pitch).
`drums`: the 9 drum classes of a step as a bitmask, a 512-way class (drum_kit).
`features`: the lookback + binary-counter model inputs built from either.
`magenta_events`: note_seq's own lookback and key-melody inputs, for imported Magenta RNNs.
"""
from __future__ import annotations

import numpy as np


def one_hot(events: np.ndarray, size: int) -> np.ndarray:
    """float32 one-hot [.., size] of integer events (no identity matrix: serving calls this per step)."""
    events = np.asarray(events, np.int64)
    out = np.zeros((events.size, size), np.float32)
    out[np.arange(events.size), events.ravel()] = 1.0
    return out.reshape(events.shape + (size,))


def fold(pitch: int, low: int, high: int) -> int:
    """Move a pitch by octaves into [low, high] (a range of at least an octave)."""
    while pitch > high:
        pitch -= 12
    while pitch < low:
        pitch += 12
    return pitch
