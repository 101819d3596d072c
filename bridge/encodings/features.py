"""Model inputs for events RNNs: the current event, the events one and two bars back, whether
it repeats them, and binary step counters (Magenta's lookback_rnn / drum_kit inputs).

The same function builds training batches and the serving model's inputs, so the two can
never disagree. Steps before the sequence start look back onto silence (all zeros).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge.encodings.drums import DrumEncoding
from bridge.encodings.melody import MelodyEncoding


@dataclass(frozen=True)
class EventFeatures:
    encoding: MelodyEncoding | DrumEncoding
    lookbacks: tuple[int, ...] = (16, 32)
    counter_bits: int = 5

    @property
    def size(self) -> int:
        probe = np.zeros((1, 1), np.int64)
        return (self.encoding.embed(probe).shape[-1]
                + len(self.lookbacks) * (self.encoding.lookback_embed(probe).shape[-1] + 1)
                + self.counter_bits)

    def __call__(self, events: np.ndarray, start: int = 0) -> np.ndarray:
        """Inputs [B, T - start, size] for steps start..T-1 of int events [B, T].

        Step t sees events[:, t] and events[:, t - k] for each lookback k; serving calls it
        with the whole history and start = the newest step.
        """
        events = np.asarray(events, np.int64)
        batch, total = events.shape
        steps = np.arange(start, total)
        parts = [self.encoding.embed(events[:, start:])]
        for k in self.lookbacks:
            back = steps - k
            valid = back >= 0
            past = events[:, np.maximum(back, 0)]
            embedded = self.encoding.lookback_embed(past) * valid[None, :, None]
            repeat = ((past == events[:, start:]) & valid[None, :]).astype(np.float32)
            parts += [embedded, repeat[..., None]]
        if self.counter_bits:
            parts.append(np.broadcast_to(self.counters(steps), (batch, len(steps), self.counter_bits)))
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def counters(self, steps: np.ndarray) -> np.ndarray:
        """+1/-1 bits of each step number, lowest bit first; periodic in 2 ** counter_bits."""
        return np.where((steps[:, None] >> np.arange(self.counter_bits)) & 1, 1.0, -1.0).astype(np.float32)

    def projection(self, kernel: np.ndarray, bias: np.ndarray) -> "StepProjection":
        return StepProjection(self, np.asarray(kernel, np.float32), np.asarray(bias, np.float32))


class StepProjection:
    """`features(history, start=t)[:, 0] @ kernel + bias` by table look-ups, for sampling.

    Each input block depends on one thing (the event now, the event k steps back, whether they
    are equal, the step number), so its share of the first layer's projection is a row of a
    precomputed table: one step costs a few gathers instead of building features and a matmul.
    """

    def __init__(self, features: EventFeatures, kernel: np.ndarray, bias: np.ndarray) -> None:
        enc = features.encoding
        ids = np.arange(enc.num_classes)[None]
        current = enc.embed(ids)[0]
        self.current = current @ kernel[:current.shape[1]] + bias
        at = current.shape[1]
        self.back = []
        for k in features.lookbacks:
            past = enc.lookback_embed(ids)[0]
            width = past.shape[1]
            self.back.append((k, past @ kernel[at:at + width], kernel[at + width]))
            at += width + 1
        period = np.arange(2 ** features.counter_bits)
        self.counters = features.counters(period) @ kernel[at:] if features.counter_bits else None

    def __call__(self, history: np.ndarray, t: int) -> np.ndarray:
        now = history[:, t]
        x = self.current[now]
        for k, table, repeat in self.back:
            if t >= k:
                past = history[:, t - k]
                x = x + table[past] + (past == now)[:, None] * repeat
        if self.counters is not None:
            x = x + self.counters[t % len(self.counters)]
        return x
