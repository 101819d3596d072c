"""Monophonic melody events on a 16th grid, as Magenta's basic/lookback MelodyRNN.

Event 0 = no event (hold or rest), 1 = note-off, 2 + (pitch - min_pitch) = note-on. A new
note-on ends the note before it, so a melody never has two notes at once. Polyphonic input
keeps its top line: at each step with onsets, the highest onset wins.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.encodings import fold, one_hot

NO_EVENT = 0
NOTE_OFF = 1
FIRST_PITCH_EVENT = 2


@dataclass(frozen=True)
class MelodyEncoding:
    min_pitch: int = 48
    max_pitch: int = 84  # inclusive

    @property
    def num_classes(self) -> int:
        return FIRST_PITCH_EVENT + self.max_pitch - self.min_pitch + 1

    def fold(self, pitch: int) -> int:
        """Move a pitch by octaves into the model's range (for conditioning only)."""
        return fold(pitch, self.min_pitch, self.max_pitch)

    def pitch_event(self, pitch: int) -> int:
        return FIRST_PITCH_EVENT + self.fold(pitch) - self.min_pitch

    def event_pitch(self, event: int) -> int:
        return self.min_pitch + event - FIRST_PITCH_EVENT

    def encode(self, notes: list[tuple[int, int, int]], num_steps: int) -> np.ndarray:
        """Events for `num_steps` steps from (pitch, start_step, end_step) notes: the top line.

        A note's note-off is written only if it ends before the next onset and inside the
        window; notes starting outside [0, num_steps) are ignored.
        """
        events = np.zeros(num_steps, np.int16)
        top: dict[int, tuple[int, int]] = {}
        for pitch, start, end in notes:
            if 0 <= start < num_steps and (start not in top or pitch > top[start][0]):
                top[start] = (pitch, end)
        onsets = sorted(top)
        for i, step in enumerate(onsets):
            pitch, end = top[step]
            events[step] = self.pitch_event(pitch)
            following = onsets[i + 1] if i + 1 < len(onsets) else num_steps
            if step < end < following:
                events[end] = NOTE_OFF
        return events

    def decode(self, events: np.ndarray, start_step: int = 0) -> list[tuple[int, int, int]]:
        """(pitch, start_step, end_step) notes; a note still sounding at the end stops there."""
        notes: list[tuple[int, int, int]] = []
        current: tuple[int, int] | None = None
        for offset, event in enumerate(np.asarray(events).tolist()):
            step = start_step + offset
            if event >= NOTE_OFF and current is not None:
                notes.append((current[0], current[1], step))
                current = None
            if event >= FIRST_PITCH_EVENT:
                current = (self.event_pitch(event), step)
        if current is not None:
            notes.append((current[0], current[1], start_step + len(events)))
        return notes

    def pitch_mask(self, allowed_pitch_classes: frozenset[int]) -> np.ndarray:
        """A boolean [num_classes] mask: True for no-event, note-off and allowed pitches."""
        mask = np.ones(self.num_classes, bool)
        for event in range(FIRST_PITCH_EVENT, self.num_classes):
            mask[event] = self.event_pitch(event) % 12 in allowed_pitch_classes
        return mask

    def embed(self, events: np.ndarray) -> np.ndarray:
        """One-hot [.., num_classes] float32 of integer events."""
        return one_hot(events, self.num_classes)

    lookback_embed = embed  # what a step N steps back contributes to the input
