"""Drum steps as a 9-class bitmask: one of 512 events per 16th step (Magenta's drum_kit).

Bit i of an event is set when drum class i (bridge.drums.CLASS_NAMES order) is hit in that
step, so event 0 is silence and event 511 is every class at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.drums import NUM_CLASSES
from bridge.encodings import one_hot

_BITS = (1 << np.arange(NUM_CLASSES)).astype(np.int64)


@dataclass(frozen=True)
class DrumEncoding:
    num_drum_classes: int = NUM_CLASSES

    @property
    def num_classes(self) -> int:
        return 1 << self.num_drum_classes

    def encode(self, hits: list[tuple[int, int]], num_steps: int) -> np.ndarray:
        """Events for `num_steps` steps from (drum_class, step) hits; hits outside are ignored."""
        events = np.zeros(num_steps, np.int16)
        for drum_class, step in hits:
            if 0 <= step < num_steps:
                events[step] |= 1 << drum_class
        return events

    def decode(self, events: np.ndarray, start_step: int = 0) -> list[tuple[int, int]]:
        """(drum_class, step) hits of each step's event, in step then class order."""
        rolls = self.bits(np.asarray(events))
        steps, classes = np.nonzero(rolls)
        return [(int(c), start_step + int(s)) for s, c in zip(steps, classes)]

    def bits(self, events: np.ndarray) -> np.ndarray:
        """Multi-hot [.., 9] float32 of events."""
        return ((np.asarray(events, np.int64)[..., None] & _BITS) > 0).astype(np.float32)

    def embed(self, events: np.ndarray) -> np.ndarray:
        """One-hot of the 512-way event plus its 9 class bits, so rare combinations still
        share what their classes mean."""
        onehot = one_hot(events, self.num_classes)
        return np.concatenate([onehot, self.bits(events)], axis=-1)

    lookback_embed = bits
