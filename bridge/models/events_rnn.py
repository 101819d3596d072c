"""MelodyRNN / DrumsRNN served in NumPy: a stacked LSTM over lookback event features.

The primer is the whole input clip. A melody is conditioned on its top line (pitches folded
by octaves into the model's range); drums are read through the user's drum map. Every
variation is sampled in one batch: the primer runs once, its state is copied per variation.
The input notes come back untouched; the continuation is appended after the clip's end.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np

from bridge.clip import Clip, Note, Scale, quantize
from bridge.drums import DrumMap
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.features import EventFeatures
from bridge.encodings.melody import MelodyEncoding
from bridge.engine.layers import LSTM, StackedLSTM, dense, sample_categorical, softmax
from bridge.models import MODEL_CLASSES
from bridge.params import ParamError

DEFAULT_VELOCITY = 100


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
    return EventFeatures(encoding, (lookback, 2 * lookback) if lookback else (), int(hparams["counter_bits"]))


class EventsRNN:
    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        hparams = config["hparams"]
        self.kind = config["kind"]
        self.features = event_features(config["converter"], config["converter_args"], hparams)
        self.encoding = self.features.encoding
        self.steps_per_quarter = int(config["converter_args"].get("steps_per_quarter", 4))
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

    def advance(self, history: np.ndarray, t: int, states: list) -> np.ndarray:
        """Feed step t of the history; update states in place; return the next logits."""
        first = self.rnn.layers[0]
        x, states[0] = first.step_projected(self.projection(history, t), states[0])
        for i, layer in enumerate(self.rnn.layers[1:], 1):
            x, states[i] = layer.step(x, states[i])
        return dense(x, self.out_kernel, self.out_bias)

    @classmethod
    def from_bundle(cls, bundle) -> "EventsRNN":
        return cls(bundle.config, bundle.weights)

    def logits(self, events: np.ndarray) -> np.ndarray:
        """Teacher-forced logits [B, T, classes]: position t predicts event t + 1."""
        out, _ = self.rnn.run(self.features(events))
        return dense(out, self.out_kernel, self.out_bias)

    def nll(self, events: np.ndarray) -> tuple[float, float]:
        """Mean per-step negative log-likelihood (nats) and accuracy of events [B, T + 1]."""
        return score(self.logits(events[:, :-1]), events[:, 1:])

    def sample(self, primer: np.ndarray, steps: int, n: int, temperature: float, rng: np.random.Generator,
               mask: np.ndarray | None = None, report=lambda fraction, message: None) -> np.ndarray:
        """n continuations [n, steps] of a primer [P] of events, all in one batch."""
        out, states = self.rnn.run(self.features(primer[None]))
        logits = np.repeat(dense(out[:, -1], self.out_kernel, self.out_bias), n, axis=0)
        states = [(np.repeat(h, n, axis=0), np.repeat(c, n, axis=0)) for h, c in states]
        history = np.zeros((n, len(primer) + steps), np.int64)
        history[:, :len(primer)] = primer
        report(0.1, "primer read")
        marks = {steps * k // 4 for k in (1, 2, 3)}
        for i in range(steps):
            if mask is not None:
                logits = np.where(mask, logits, -np.inf)
            t = len(primer) + i
            history[:, t] = sample_categorical(softmax(logits, temperature), rng)
            if i + 1 < steps:
                logits = self.advance(history, t, states)
            if i + 1 in marks:
                report(0.1 + 0.85 * (i + 1) / steps, "sampling")
        return history[:, len(primer):]

    def continue_clip(self, clip: Clip, params: dict[str, Any], ctx) -> list[Clip]:
        spq = self.steps_per_quarter
        primer_steps = max(1, round(clip.length * spq))
        added = params["length"] * clip.beats_per_bar
        steps = math.ceil(added * spq - 1e-9)
        grid = quantize(clip, spq)
        if self.kind == "drums":
            try:
                drum_map = DrumMap.parse(params["drum_map"])
            except ValueError as exc:
                raise ParamError(str(exc)) from None
            hits = [(drum_map.classify(g.pitch), g) for g in grid]
            hits = [(c, g) for c, g in hits if c is not None]
            primer = self.encoding.encode([(c, g.step) for c, g in hits], primer_steps)
            velocities = _class_velocities(hits)
            mask = None
        else:
            primer = self.encoding.encode([(g.pitch, g.step, g.end_step) for g in grid], primer_steps)
            velocity = round(statistics.median(g.velocity for g in grid)) if grid else DEFAULT_VELOCITY
            mask = None
            if params.get("scale_root") is not None:
                mask = self.encoding.pitch_mask(Scale(params["scale_root"], params["scale_mode"]).pitch_classes)
        n = params["variations"]
        rng = np.random.default_rng(params.get("seed"))
        events = self.sample(primer, steps, n, params["temperature"], rng, mask, ctx.report)
        keep = params["include_primer"]
        start = clip.length if keep else 0.0
        length = start + added
        out = []
        for i, row in enumerate(events):
            if self.kind == "drums":
                new = [Note(drum_map.pitch(c), start + s / spq, 1 / spq, velocities[c]) for c, s in self.encoding.decode(row)]
            else:
                new = [Note(p, start + s / spq, (e - s) / spq, velocity) for p, s, e in self.encoding.decode(row)]
            new = [_trim(note, length) for note in new if note.start < length]
            notes = (list(clip.notes) if keep else []) + new
            out.append(clip.with_notes(notes, length=length, name=f"continue {i + 1}/{n} {clip.name}".rstrip()))
        ctx.report(1.0, "done")
        return out


def score(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean negative log-likelihood (nats) of int labels under logits [.., C], and accuracy."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.int64)
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1).mean()
    return float(nll), float((logits.argmax(-1) == labels).mean())


def _class_velocities(hits) -> list[int]:
    """Per class: the median primer velocity of that class, else of all hits, else 100."""
    overall = round(statistics.median(g.velocity for _, g in hits)) if hits else DEFAULT_VELOCITY
    by_class: dict[int, list[int]] = {}
    for c, g in hits:
        by_class.setdefault(c, []).append(g.velocity)
    return [round(statistics.median(by_class[c])) if c in by_class else overall for c in range(9)]


def _trim(note: Note, length: float) -> Note:
    if note.end <= length:
        return note
    return Note(note.pitch, note.start, length - note.start, note.velocity)


MODEL_CLASSES["events_rnn"] = EventsRNN
