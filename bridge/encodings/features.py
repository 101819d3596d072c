"""Model inputs for events RNNs: the current event, the events one and two bars back, whether
it repeats them, and where the step sits in time (Magenta's lookback_rnn / drum_kit inputs).

Two ways to say where a step sits:
  * legacy (`meter=False`): lookbacks in steps (16 and 32: one and two 4/4 bars) and binary
    step counters, as Magenta's models: every clip is heard as 4/4;
  * meter-aware (`meter=True`): lookbacks in bars of each example's own meter and the meter
    position columns of `bridge.meter` (bar and beat starts, beat number, step in beat, beat
    length, beats per bar), so a waltz looks back one 3/4 bar and knows its downbeats.
The same function builds training batches and the serving model's inputs, so the two can
never disagree. Steps before the sequence start look back onto silence (all zeros).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge import meter as M
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.melody import MelodyEncoding

LEGACY_GRID = M.MeterGrid(4, 16, 4)  # what a legacy model assumes every clip is: 4/4 on 16ths


@dataclass(frozen=True)
class EventFeatures:
    encoding: MelodyEncoding | DrumEncoding
    lookbacks: tuple[int, ...] = (16, 32)  # steps, or bars of the meter when `meter`
    counter_bits: int = 5
    meter: bool = False

    @property
    def size(self) -> int:
        probe = np.zeros((1, 1), np.int64)
        return (self.encoding.embed(probe).shape[-1]
                + len(self.lookbacks) * (self.encoding.lookback_embed(probe).shape[-1] + 1)
                + self.counter_bits + (M.FEATURES if self.meter else 0))

    def distances(self, grids: np.ndarray | None, batch: int) -> np.ndarray:
        """Lookback distances in steps, [batch, len(lookbacks)]: per row's bar when `meter`."""
        if not self.meter:
            return np.broadcast_to(np.asarray(self.lookbacks, np.int64), (batch, len(self.lookbacks)))
        bars = np.asarray(grids, np.int64)[:, 1]
        return bars[:, None] * np.asarray(self.lookbacks, np.int64)[None, :]

    def __call__(self, events: np.ndarray, start: int = 0, grids: np.ndarray | None = None) -> np.ndarray:
        """Inputs [B, T - start, size] for steps start..T-1 of int events [B, T].

        Step t sees events[:, t] and events[:, t - k] for each lookback k; serving calls it
        with the whole history and start = the newest step. `grids` [B, 3] are the rows'
        encoded meters (`MeterGrid.encode`), needed when `meter`.
        """
        events = np.asarray(events, np.int64)
        batch, total = events.shape
        if self.meter and grids is None:
            raise ValueError("meter-aware features need each row's meter grid")
        steps = np.arange(start, total)
        rows = np.arange(batch)[:, None]
        parts = [self.encoding.embed(events[:, start:])]
        for k in self.distances(grids, batch).T:
            back = steps[None, :] - k[:, None]
            valid = back >= 0
            past = events[rows, np.maximum(back, 0)]
            embedded = self.encoding.lookback_embed(past) * valid[..., None]
            repeat = ((past == events[:, start:]) & valid).astype(np.float32)
            parts += [embedded, repeat[..., None]]
        if self.counter_bits:
            parts.append(np.broadcast_to(self.counters(steps), (batch, len(steps), self.counter_bits)))
        if self.meter:
            parts.append(M.meter_features(grids, steps))
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def counters(self, steps: np.ndarray) -> np.ndarray:
        """+1/-1 bits of each step number, lowest bit first; periodic in 2 ** counter_bits."""
        return np.where((steps[:, None] >> np.arange(self.counter_bits)) & 1, 1.0, -1.0).astype(np.float32)

    def projection(self, kernel: np.ndarray, bias: np.ndarray) -> "StepProjection":
        return StepProjection(self, np.asarray(kernel, np.float32), np.asarray(bias, np.float32))


class StepProjection:
    """`features(history, start=t)[:, 0] @ kernel + bias` by table look-ups, for sampling.

    Each input block depends on one thing (the event now, the event k steps back, whether they
    are equal, the step's position), so its share of the first layer's projection is a row of
    a precomputed table: one step costs a few gathers instead of building features and a matmul.
    The position table is one row per step of the bar (meter-aware) or of the counter period.
    """

    def __init__(self, features: EventFeatures, kernel: np.ndarray, bias: np.ndarray) -> None:
        self.features = features
        enc = features.encoding
        ids = np.arange(enc.num_classes)[None]
        current = enc.embed(ids)[0]
        self.current = current @ kernel[:current.shape[1]] + bias
        at = current.shape[1]
        self.back = []
        for _ in features.lookbacks:
            past = enc.lookback_embed(ids)[0]
            width = past.shape[1]
            self.back.append((past @ kernel[at:at + width], kernel[at + width]))
            at += width + 1
        self.counters = None
        if features.counter_bits:
            period = np.arange(2 ** features.counter_bits)
            self.counters = features.counters(period) @ kernel[at:at + features.counter_bits]
            at += features.counter_bits
        self.position_kernel = kernel[at:]
        self._positions: dict[M.MeterGrid, np.ndarray] = {}

    def positions(self, grid: M.MeterGrid | None) -> np.ndarray | None:
        """Row t % len = the position's share at step t: per bar of `grid`, or per counter period."""
        if not self.features.meter:
            return self.counters
        if grid not in self._positions:
            self._positions[grid] = grid.bar_features() @ self.position_kernel
        return self._positions[grid]

    def __call__(self, history: np.ndarray, t: int, grid: M.MeterGrid | None = None) -> np.ndarray:
        now = history[:, t]
        x = self.current[now]
        bar = grid.bar_steps if self.features.meter else 1
        for lookback, (table, repeat) in zip(self.features.lookbacks, self.back):
            k = lookback * bar
            if t >= k:
                past = history[:, t - k]
                x = x + table[past] + (past == now)[:, None] * repeat
        positions = self.positions(grid)
        if positions is not None:
            x = x + positions[t % len(positions)]
        return x
