"""MelodyRNN / DrumsRNN served in NumPy: a stacked LSTM over lookback event features.

The primer is the whole input clip. A melody is conditioned on its top line (pitches folded
by octaves into the model's range); drums are read through the user's drum map. Every
variation is sampled in one batch: the primer runs once, its state is copied per variation.
The input notes come back untouched; the continuation is appended after the clip's end.

A meter-aware model (`meter` hparam) reads the clip on its meter's grid (`bridge.meter`):
a 3/2 tune on 8ths, a jig on 16ths in 12-step bars, knowing its bars and beats; a legacy
model hears 4/4 on 16ths. New drum hits take the primer's own sounds, timing and dynamics
(`bridge.drum_feel`). A variation that adds no notes is sampled again, a few times at most.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from bridge.clip import Clip, Note, Scale, quantize
from bridge.drum_feel import Feel
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.features import LEGACY_GRID, EventFeatures
from bridge.encodings.melody import MelodyEncoding
from bridge.engine.layers import LSTM, StackedLSTM, dense, sample_logits
from bridge.meter import MeterGrid
from bridge.models import MODEL_CLASSES
from bridge.tools.common import drum_map_of

DEFAULT_VELOCITY = 100
RESAMPLE_ROUNDS = 4  # extra rounds for variations that came out empty


def event_features(converter: str, converter_args: dict[str, Any], hparams: dict[str, Any]) -> EventFeatures:
    """The encoding and model inputs a config names; training and serving both call this."""
    if converter == "melody":
        encoding: MelodyEncoding | DrumEncoding = MelodyEncoding(converter_args.get("min_pitch", 48),
                                                                 converter_args.get("max_pitch", 84))
    elif converter == "drums":
        encoding = DrumEncoding()
    else:
        raise ValueError(f"events_rnn reads melody or drums events, not {converter!r}")
    lookback = int(hparams["lookback"])
    return EventFeatures(encoding, (lookback, 2 * lookback) if lookback else (), int(hparams["counter_bits"]),
                         bool(hparams.get("meter", False)))


class EventsRNN:
    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        hparams = config["hparams"]
        self.kind = config["kind"]
        self.features = event_features(config["converter"], config["converter_args"], hparams)
        self.encoding = self.features.encoding
        names = [f"lstm_{i}/{part}" for i in range(hparams["layers"]) for part in ("kernel", "recurrent_kernel", "bias")]
        missing = [n for n in names + ["output/kernel", "output/bias"] if n not in weights]
        if missing:
            raise ValueError(f"weights.npz lacks {', '.join(missing)}")
        self.rnn = StackedLSTM([LSTM(*(weights[n] for n in names[3 * i:3 * i + 3])) for i in range(hparams["layers"])])
        self.out_kernel = np.asarray(weights["output/kernel"], np.float32)
        self.out_bias = np.asarray(weights["output/bias"], np.float32)
        if self.rnn.layers[0].kernel.shape[0] != self.features.size or self.out_bias.shape[0] != self.encoding.num_classes:
            raise ValueError("weights do not fit the config's encoding (input or output size differs)")
        self.projection = self.features.projection(self.rnn.layers[0].kernel, self.rnn.layers[0].bias)

    @property
    def meter_aware(self) -> bool:
        return self.features.meter

    def grid_for(self, clip: Clip) -> MeterGrid:
        """The grid the model reads this clip on: its meter's, or 4/4 on 16ths for a legacy model."""
        return MeterGrid.of(clip.time_signature) if self.meter_aware else LEGACY_GRID

    def _grids(self, grid: MeterGrid, batch: int) -> np.ndarray | None:
        return np.repeat(grid.encode()[None], batch, axis=0) if self.meter_aware else None

    def advance(self, history: np.ndarray, t: int, states: list, grid: MeterGrid = LEGACY_GRID) -> np.ndarray:
        """Feed step t of the history; update states in place; return the next logits."""
        first = self.rnn.layers[0]
        x, states[0] = first.step_projected(self.projection(history, t, grid), states[0])
        for i, layer in enumerate(self.rnn.layers[1:], 1):
            x, states[i] = layer.step(x, states[i])
        return dense(x, self.out_kernel, self.out_bias)

    @classmethod
    def from_bundle(cls, bundle) -> "EventsRNN":
        return cls(bundle.config, bundle.weights)

    def logits(self, events: np.ndarray, grids: np.ndarray | None = None) -> np.ndarray:
        """Teacher-forced logits [B, T, classes]: position t predicts event t + 1."""
        out, _ = self.rnn.run(self.features(events, grids=grids))
        return dense(out, self.out_kernel, self.out_bias)

    def nll(self, events: np.ndarray, grids: np.ndarray | None = None,
            lengths: np.ndarray | None = None) -> tuple[float, float]:
        """Mean per-step negative log-likelihood (nats) and accuracy of events [B, T + 1]
        (only the first `lengths` events of each row, where given)."""
        weights = None if lengths is None else np.arange(1, events.shape[1])[None, :] < np.asarray(lengths)[:, None]
        return score(self.logits(events[:, :-1], grids), events[:, 1:], weights)

    def sample(self, primer: np.ndarray, steps: int, n: int, temperature: float, rng: np.random.Generator,
               mask: np.ndarray | None = None, report=lambda fraction, message: None,
               grid: MeterGrid = LEGACY_GRID) -> np.ndarray:
        """n continuations [n, steps] of a primer [P] of events, all in one batch.

        `report` is called after every step of the primer and of sampling: it is where a
        cancelled or timed-out request stops."""
        out, states = self.rnn.run(self.features(primer[None], grids=self._grids(grid, 1)),
                                   on_step=lambda: report(0.05, "reading the primer"))
        logits = np.repeat(dense(out[:, -1], self.out_kernel, self.out_bias), n, axis=0)
        states = [(np.repeat(h, n, axis=0), np.repeat(c, n, axis=0)) for h, c in states]
        history = np.zeros((n, len(primer) + steps), np.int64)
        history[:, :len(primer)] = primer
        report(0.1, "primer read")
        for i in range(steps):
            if mask is not None:
                logits = np.where(mask, logits, -np.inf)
            t = len(primer) + i
            history[:, t] = sample_logits(logits, temperature, rng)
            if i + 1 < steps:
                logits = self.advance(history, t, states, grid)
            report(0.1 + 0.85 * (i + 1) / steps, "sampling")
        return history[:, len(primer):]

    def sample_notes(self, primer: np.ndarray, steps: int, n: int, temperature: float, rng: np.random.Generator,
                     mask: np.ndarray | None, report, grid: MeterGrid) -> tuple[np.ndarray, list[int]]:
        """Like `sample`, but a row that holds no note is sampled again (at most
        RESAMPLE_ROUNDS more times); returns the rows and the indices still empty."""
        events = self.sample(primer, steps, n, temperature, rng, mask, report, grid)
        empty = [i for i, row in enumerate(events) if not self.encoding.decode(row)]
        for _ in range(RESAMPLE_ROUNDS):
            if not empty:
                break
            again = self.sample(primer, steps, len(empty), temperature, rng, mask,
                                lambda fraction, message: report(0.95, "sampling again"), grid)
            events[empty] = again
            empty = [i for i in empty if not self.encoding.decode(events[i])]
        return events, empty

    def continue_clip(self, clip: Clip, params: dict[str, Any], ctx) -> list[Clip]:
        grid = self.grid_for(clip)
        spq = grid.steps_per_quarter
        primer_steps = max(1, round(clip.length * spq))
        added = params["length"] * clip.beats_per_bar
        steps = math.ceil(added * spq - 1e-9)
        notes = quantize(clip, spq)
        mask = None
        if self.kind == "drums":
            drum_map = drum_map_of(params)
            hits = [(c, g) for g in notes if (c := drum_map.classify(g.pitch)) is not None]
            primer = self.encoding.encode([(c, g.step) for c, g in hits], primer_steps)
            feel = Feel(hits, grid, drum_map)
        else:
            primer = self.encoding.encode([(g.pitch, g.step, g.end_step) for g in notes], primer_steps)
            velocity = round(statistics.median(g.velocity for g in notes)) if notes else DEFAULT_VELOCITY
            if len({g.step for g in notes}) < len(notes):
                ctx.notice("the melody model follows one line: it heard the top note of each chord "
                           "(type poly continues chords)")
            if params.get("scale_root") is not None:
                mask = self.encoding.pitch_mask(Scale(params["scale_root"], params["scale_mode"]).pitch_classes)
        n = params["variations"]
        rng = np.random.default_rng(params.get("seed"))
        events, empty = self.sample_notes(primer, steps, n, params["temperature"], rng, mask, ctx.report, grid)
        for i in empty:
            ctx.notice(f"variation {i + 1} has no new notes: the model chose silence after this primer "
                       f"{RESAMPLE_ROUNDS + 1} times")
        keep = params["include_primer"]
        start = clip.length if keep else 0.0
        length = start + added
        out = []
        for i, row in enumerate(events):
            ctx.report(0.95 + 0.05 * i / len(events), "placing notes")
            if self.kind == "drums":
                new = feel.place([(c, primer_steps + s, start + s / spq) for c, s in self.encoding.decode(row)], rng)
            else:
                new = [Note(p, start + s / spq, (e - s) / spq, velocity) for p, s, e in self.encoding.decode(row)]
            new = [_trim(note, length) for note in new if note.start < length]
            notes_out = (list(clip.notes) if keep else []) + new
            out.append(clip.with_notes(notes_out, length=length, name=f"continue {i + 1}/{n} {clip.name}".rstrip()))
        ctx.report(1.0, "done")
        return out


def score(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Mean negative log-likelihood (nats) of int labels under logits [.., C], and accuracy,
    over the positions where `weights` is true (all by default)."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.int64)
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    correct = logits.argmax(-1) == labels
    if weights is None:
        return float(nll.mean()), float(correct.mean())
    return float(nll[weights].mean()), float(correct[weights].mean())


def _trim(note: Note, length: float) -> Note:
    if note.end <= length:
        return note
    return Note(note.pitch, note.start, length - note.start, note.velocity)


MODEL_CLASSES["events_rnn"] = EventsRNN
