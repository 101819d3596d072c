"""The polyphonic events RNN served in NumPy: Continue for chords, chorales and piano parts.

A stacked LSTM over note-on / note-off / time-shift events on the clip's meter grid
(`bridge.encodings.poly`), each input also holding the sounding pitches, the step's place in
its bar and the primer's pitch-class histogram. The primer is the whole clip, every note cut
at the clip's end; the model then writes events until each variation has filled the
requested bars. Sampling keeps the event
grammar: a note-off only for a sounding pitch, a note-on only for a silent one (and none once
MAX_VOICES sound), no note-off after a note-on in the same step (training data writes offs
first, so a note never lasts zero steps). Every variation is sampled in one batch. A
variation that adds no notes is sampled again, a few times at most. The input notes come back
untouched; new notes take the primer's median velocity.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from bridge.clip import Clip, Note, Scale, quantize
from bridge.encodings.poly import START, PolyEncoding, PolyFeatures
from bridge.engine.layers import StackedLSTM, dense, sample_categorical, softmax
from bridge.meter import MeterGrid
from bridge.models import MODEL_CLASSES
from bridge.models.events_rnn import DEFAULT_VELOCITY, RESAMPLE_ROUNDS, score

MAX_VOICES = 10  # note-ons wait while this many notes sound (a piano part rarely holds more)


def poly_encoding(converter_args: dict[str, Any]) -> PolyEncoding:
    """The encoding a config's converter args name; training and serving both call this."""
    return PolyEncoding(converter_args.get("min_pitch", 36), converter_args.get("max_pitch", 84),
                        converter_args.get("max_shift", 16))


class PolyRNN:
    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        hparams = config["hparams"]
        self.kind = config["kind"]
        self.encoding = poly_encoding(config["converter_args"])
        self.features = PolyFeatures(self.encoding)
        self.rnn = StackedLSTM.from_weights(weights, hparams["layers"], ("output/kernel", "output/bias"))
        self.out_kernel = np.asarray(weights["output/kernel"], np.float32)
        self.out_bias = np.asarray(weights["output/bias"], np.float32)
        classes, pitches = self.encoding.num_classes, self.encoding.num_pitches
        first = self.rnn.layers[0]
        if first.kernel.shape[0] != self.features.size or self.out_bias.shape[0] != classes:
            raise ValueError("weights do not fit the config's encoding (input or output size differs)")
        # The first layer's input projection split by input block: a row per event (bias
        # folded in), the sounding pitches' share, a row per bar step (per grid, cached), and
        # the pitch-class histogram's share (one row per sequence).
        self.event_rows = first.kernel[:classes] + first.bias
        self.sounding_kernel = first.kernel[classes:classes + pitches]
        self.position_kernel = first.kernel[classes + pitches:-12]
        self.histogram_kernel = first.kernel[-12:]
        self._positions: dict[MeterGrid, np.ndarray] = {}
        self.advance_by, self.delta, self.is_on = self.encoding.tables()

    @classmethod
    def from_bundle(cls, bundle) -> "PolyRNN":
        return cls(bundle.config, bundle.weights)

    def logits(self, events: np.ndarray, grids: np.ndarray, histogram: np.ndarray) -> np.ndarray:
        """Teacher-forced logits [B, T, classes]: position t predicts event t + 1."""
        out, _ = self.rnn.run(self.features(events, grids, histogram))
        return dense(out, self.out_kernel, self.out_bias)

    def nll(self, events: np.ndarray, grids: np.ndarray, lengths: np.ndarray | None = None) -> tuple[float, float]:
        """Mean per-event NLL (nats) and accuracy of windows of events [B, T + 1] (the first
        `lengths` of each row), each with its own histogram, as in training."""
        weights = None if lengths is None else np.arange(1, events.shape[1])[None, :] < np.asarray(lengths)[:, None]
        logits = self.logits(events[:, :-1], grids, self.features.histogram(events, lengths))
        return score(logits, events[:, 1:], weights)

    def positions(self, grid: MeterGrid) -> np.ndarray:
        if grid not in self._positions:
            self._positions[grid] = grid.bar_features() @ self.position_kernel
        return self._positions[grid]

    def advance(self, events: np.ndarray, sounding: np.ndarray, time: np.ndarray, grid: MeterGrid,
                histogram: np.ndarray, states: list) -> np.ndarray:
        """Feed one event per row (with the sounding pitches and absolute step after it, and
        the rows' histogram [B or 1, 12]); update states in place; return the next logits.
        Equals `logits` on the same history."""
        x = self.event_rows[events] + sounding.astype(np.float32) @ self.sounding_kernel
        x += self.positions(grid)[time % grid.bar_steps] + histogram @ self.histogram_kernel
        x, states[0] = self.rnn.layers[0].step_projected(x, states[0])
        for i, layer in enumerate(self.rnn.layers[1:], 1):
            x, states[i] = layer.step(x, states[i])
        return dense(x, self.out_kernel, self.out_bias)

    def sample(self, primer: list[int], grid: MeterGrid, steps: int, n: int, temperature: float,
               rng: np.random.Generator, allowed: np.ndarray | None = None,
               report=lambda fraction, message: None) -> list[list[int]]:
        """n continuations of a primer (events from START, ending with nothing sounding), each
        the events that fill `steps` steps after it. `allowed` [pitches] bool limits note-ons."""
        enc = self.encoding
        history = np.asarray([primer], np.int64)
        histogram = self.features.histogram(history)
        out, states = self.rnn.run(self.features(history, grid.encode()[None], histogram))
        time0, sounding0 = self.features.state(history)
        logits = np.repeat(dense(out[:, -1], self.out_kernel, self.out_bias), n, axis=0)
        states = [(np.repeat(h, n, axis=0), np.repeat(c, n, axis=0)) for h, c in states]
        sounding = np.repeat(sounding0[:, -1] > 0, n, axis=0)
        start = int(time0[0, -1])
        time = np.full(n, start, np.int64)
        onset_here = np.zeros(n, bool)
        done = np.zeros(n, bool)
        rows: list[list[int]] = [[] for _ in range(n)]
        allowed = np.ones(enc.num_pitches, bool) if allowed is None else allowed
        mask = np.ones((n, enc.num_classes), bool)
        mask[:, START] = False
        report(0.1, "primer read")
        shown = 0
        while not done.all():
            mask[:, 1:enc.first_off] = ~sounding & allowed & (sounding.sum(1) < MAX_VOICES)[:, None]
            mask[:, enc.first_off:enc.first_shift] = sounding & ~onset_here[:, None]
            events = sample_categorical(softmax(np.where(mask, logits, -np.inf), temperature), rng)
            for i in np.flatnonzero(~done):
                rows[i].append(int(events[i]))
            shift = self.advance_by[events]
            time += shift
            onset_here = self.is_on[events] | (onset_here & (shift == 0))
            sounding = (sounding + self.delta[events]) > 0
            done |= time >= start + steps
            if not done.all():
                logits = self.advance(events, sounding, time, grid, histogram, states)
            progress = int(4 * (time.min() - start) / steps)
            if progress > shown:
                shown = progress
                report(0.1 + 0.85 * min(1.0, progress / 4), "sampling")
        return rows

    def sample_notes(self, primer: list[int], grid: MeterGrid, steps: int, n: int, temperature: float,
                     rng: np.random.Generator, allowed: np.ndarray | None, ctx) -> list[list[tuple[int, int, int]]]:
        """Notes (pitch, start, end) of each variation. A variation with no note is sampled again
        (at most RESAMPLE_ROUNDS more times); one still empty then is named in a notice."""
        decode = self.encoding.decode
        rows = self.sample(primer, grid, steps, n, temperature, rng, allowed, ctx.report)
        notes = [decode(row, steps) for row in rows]
        for _ in range(RESAMPLE_ROUNDS):
            empty = [i for i, row in enumerate(notes) if not row]
            if not empty:
                break
            for i, row in zip(empty, self.sample(primer, grid, steps, len(empty), temperature, rng, allowed)):
                notes[i] = decode(row, steps)
        for i in (i for i, row in enumerate(notes) if not row):
            ctx.notice(f"variation {i + 1} has no new notes: the model chose silence after this primer "
                       f"{RESAMPLE_ROUNDS + 1} times")
        return notes

    def continue_clip(self, clip: Clip, params: dict[str, Any], ctx) -> list[Clip]:
        grid = MeterGrid.of(clip.time_signature)
        spq = grid.steps_per_quarter
        primer_steps = max(1, round(clip.length * spq))
        added = params["length"] * clip.beats_per_bar
        notes = quantize(clip, spq)
        primer = [START] + self.encoding.encode([(g.pitch, g.step, g.end_step) for g in notes], primer_steps, close=True)
        velocity = round(statistics.median(g.velocity for g in notes)) if notes else DEFAULT_VELOCITY
        allowed = None
        if params.get("scale_root") is not None:
            key = Scale(params["scale_root"], params["scale_mode"]).pitch_classes
            allowed = np.array([(self.encoding.min_pitch + p) % 12 in key for p in range(self.encoding.num_pitches)])
        n = params["variations"]
        sampled = self.sample_notes(primer, grid, math.ceil(added * spq - 1e-9), n, params["temperature"],
                                    np.random.default_rng(params.get("seed")), allowed, ctx)
        primer_notes = list(clip.notes) if params["include_primer"] else []
        offset = clip.length if params["include_primer"] else 0.0
        out = [clip.with_notes(primer_notes + [Note(p, offset + s / spq, min(e / spq, added) - s / spq, velocity)
                                               for p, s, e in row if s / spq < added],
                               length=offset + added, name=f"continue {i + 1}/{n} {clip.name}".rstrip())
               for i, row in enumerate(sampled)]
        ctx.report(1.0, "done")
        return out


MODEL_CLASSES["poly_rnn"] = PolyRNN
