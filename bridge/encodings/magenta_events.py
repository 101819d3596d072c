"""NumPy versions of note_seq's lookback input encoder (note_seq 0.0.5), for serving.

Imported Magenta checkpoints (lookback_rnn, drum_kit) were trained on inputs built by
note_seq's LookbackEventSequenceEncoderDecoder; serving must rebuild those inputs bit for
bit without importing note_seq or TF. Events here are already one-hot class indices
(melody: 0 = no event, 1 = note-off, 2 + pitch - min_pitch; drums: the drum-class bitmask),
with index 0 the default event, so equality of indices equals equality of events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DEFAULT_EVENT = 0


@dataclass(frozen=True)
class LookbackEncoder:
    """Lookback inputs and labels: lookback_rnn uses (38, [16, 32], 5), drum_kit (512, [], 6)."""

    num_events: int
    lookback_distances: tuple[int, ...] = field(default=(16, 32))
    counter_bits: int = 5

    @property
    def input_size(self) -> int:
        n = len(self.lookback_distances)
        return self.num_events * (1 + n) + self.counter_bits + n

    @property
    def num_classes(self) -> int:
        return self.num_events + len(self.lookback_distances)

    def input_at(self, events: Sequence[int], position: int) -> np.ndarray:
        """The input vector for `position`: current event, the event *after* each lookback
        position, binary counters of the *next* step (+1/-1), and repeat flags."""
        x = np.zeros(self.input_size, np.float32)
        x[events[position]] = 1.0
        offset = self.num_events
        for distance in self.lookback_distances:
            source = position - distance + 1
            x[offset + (events[source] if source >= 0 else DEFAULT_EVENT)] = 1.0
            offset += self.num_events
        step = position + 1
        for bit in range(self.counter_bits):
            x[offset + bit] = 1.0 if (step >> bit) & 1 else -1.0
        offset += self.counter_bits
        for i, distance in enumerate(self.lookback_distances):
            source = position - distance
            if source >= 0 and events[position] == events[source]:
                x[offset + i] = 1.0
        return x

    def inputs(self, events: Sequence[int]) -> np.ndarray:
        """Inputs for every position, shape (len(events), input_size)."""
        return np.stack([self.input_at(events, p) for p in range(len(events))])

    def label_at(self, events: Sequence[int], position: int) -> int:
        """The training label: the most distant matching lookback wins over the event."""
        n = len(self.lookback_distances)
        if n and position < self.lookback_distances[-1] and events[position] == DEFAULT_EVENT:
            return self.num_events + n - 1
        for i in reversed(range(n)):
            source = position - self.lookback_distances[i]
            if source >= 0 and events[position] == events[source]:
                return self.num_events + i
        return int(events[position])

    def class_to_event(self, class_index: int, events: Sequence[int]) -> int:
        """Map a sampled class back to an event; repeat labels copy an earlier event."""
        if class_index >= self.num_events:
            distance = self.lookback_distances[class_index - self.num_events]
            return int(events[-distance]) if len(events) >= distance else DEFAULT_EVENT
        return int(class_index)


MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NO_EVENT, NOTE_OFF = 0, 1


def major_key_histogram(pitches: Sequence[int]) -> np.ndarray:
    """note_seq's Melody.get_major_key_histogram: per major key, how many notes fit it."""
    counts = np.bincount(np.asarray(pitches, int) % 12, minlength=12) if len(pitches) else np.zeros(12, int)
    keys = np.zeros(12, int)
    for key in range(12):
        keys[key] = sum(counts[(key + step) % 12] for step in MAJOR_SCALE)
    return keys


@dataclass(frozen=True)
class KeyMelodyEncoder:
    """attention_rnn's KeyMelodyEncoderDecoder over melody indices (0 none, 1 off, 2 + pitch
    - min_pitch). Its labels order differently from the events: pitches first, then no
    event, note-off and the repeat labels, so `label_at`/`class_to_event` translate."""

    min_pitch: int = 48
    max_pitch: int = 84  # exclusive, as in note_seq
    lookback_distances: tuple[int, ...] = (16, 32)
    counter_bits: int = 7
    steps_per_bar: int = 16

    @property
    def note_range(self) -> int:
        return self.max_pitch - self.min_pitch

    @property
    def input_size(self) -> int:
        return self.note_range + 4 + len(self.lookback_distances) + self.counter_bits + 1 + 24

    @property
    def num_classes(self) -> int:
        return self.note_range + 2 + len(self.lookback_distances)

    def input_at(self, events: Sequence[int], position: int) -> np.ndarray:
        """Current note, attack, direction, repeats, counters, bar start and two key sets."""
        current: int | None = None
        attack = False
        ascending: bool | None = None
        last3: list[int] = []
        onsets: list[int] = []
        for event in events[: position + 1]:
            if event == NO_EVENT:
                attack = False
            elif event == NOTE_OFF:
                current = None
            else:
                pitch = self.min_pitch + event - 2
                onsets.append(pitch)
                attack, current = True, pitch
                if last3 and pitch != last3[-1]:
                    ascending = pitch > last3[-1]
                if pitch in last3:
                    last3.remove(pitch)
                last3 = (last3 + [pitch])[-3:]
        x = np.zeros(self.input_size, np.float32)
        if current is not None:
            x[current - self.min_pitch] = 1.0
            x[self.note_range] = 1.0
        else:
            x[self.note_range + 1] = 1.0
        offset = self.note_range + 2
        x[offset] = 1.0 if attack else 0.0
        if ascending is not None:
            x[offset + 1] = 1.0 if ascending else -1.0
        offset += 2
        for i, distance in enumerate(self.lookback_distances):
            source = position - distance
            if source >= 0 and events[position] == events[source]:
                x[offset + i] = 1.0
        offset += len(self.lookback_distances)
        step = position + 1
        for bit in range(self.counter_bits):
            x[offset + bit] = 1.0 if (step >> bit) & 1 else -1.0
        offset += self.counter_bits
        x[offset] = 1.0 if step % self.steps_per_bar == 0 else 0.0
        offset += 1
        for pitches in (onsets, last3):
            hist = major_key_histogram(pitches)
            x[offset: offset + 12] = (hist == hist.max()).astype(np.float32)
            offset += 12
        return x

    def inputs(self, events: Sequence[int]) -> np.ndarray:
        return np.stack([self.input_at(events, p) for p in range(len(events))])

    def label_at(self, events: Sequence[int], position: int) -> int:
        n = len(self.lookback_distances)
        event = events[position]
        if position < self.lookback_distances[-1] and event == NO_EVENT:
            return self.note_range + n + 1
        for i in reversed(range(n)):
            source = position - self.lookback_distances[i]
            if source >= 0 and event == events[source]:
                return self.note_range + 2 + i
        if event == NOTE_OFF:
            return self.note_range + 1
        if event == NO_EVENT:
            return self.note_range
        return int(event) - 2

    def class_to_event(self, class_index: int, events: Sequence[int]) -> int:
        if class_index >= self.note_range + 2:
            distance = self.lookback_distances[class_index - self.note_range - 2]
            return int(events[-distance]) if len(events) >= distance else NO_EVENT
        if class_index == self.note_range:
            return NO_EVENT
        if class_index == self.note_range + 1:
            return NOTE_OFF
        return int(class_index) + 2
