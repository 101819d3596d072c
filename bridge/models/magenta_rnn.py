"""Imported Magenta MelodyRNN / DrumsRNN (lookback_rnn, attention_rnn, drum_kit) in NumPy.

These checkpoints were trained on note_seq's input encoders, not on our EventFeatures:
counters of the *next* step, the event *after* each lookback position, "repeat N bars ago"
labels, attention_rnn's key-aware inputs, and tf.contrib's AttentionCellWrapper around either
the whole LSTM stack (older Magenta, and magenta.js) or the first layer only (newer Magenta).
This class rebuilds exactly those inputs (bridge.encodings.magenta_events) and that cell
(bridge.engine.attention), so an imported bundle gives the logits Magenta's graph gave, and
serves `continue` through EventsRNN.continue_clip: clips, drum maps and velocities are read
and written the same way for every continue model.

Not reproduced: attention_rnn's generator transposes the primer to C by key estimate and back;
here the primer is read as played (the key inputs still describe it).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from bridge.encodings.drums import DrumEncoding
from bridge.encodings.magenta_events import KeyMelodyEncoder, LookbackEncoder
from bridge.encodings.melody import MelodyEncoding
from bridge.engine.attention import AttentionWeights, attention_step, zero_state
from bridge.engine.layers import LSTM, dense, sample_logits
from bridge.models import MODEL_CLASSES
from bridge.models.events_rnn import EventsRNN, score

ATTENTION_NAMES = ("input_kernel", "input_bias", "attn_w", "attn_v", "query_kernel", "query_bias",
                   "output_kernel", "output_bias")


def magenta_encoder(spec: dict[str, Any]) -> LookbackEncoder | KeyMelodyEncoder:
    """The note_seq input encoder a bundle's `inputs` names."""
    if spec["type"] == "lookback":
        return LookbackEncoder(int(spec["num_events"]), tuple(spec["lookback_distances"]), int(spec["counter_bits"]))
    if spec["type"] == "key_melody":
        return KeyMelodyEncoder(int(spec["min_pitch"]), int(spec["max_pitch"]) + 1)
    raise ValueError(f"unknown Magenta input encoder {spec['type']!r}")


class MagentaRNN(EventsRNN):
    def __init__(self, config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        hparams, args = config["hparams"], config["converter_args"]
        self.kind = config["kind"]
        self.encoding = (MelodyEncoding(args["min_pitch"], args["max_pitch"]) if self.kind == "melody"
                         else DrumEncoding())
        self.steps_per_quarter = int(args.get("steps_per_quarter", 4))
        self.inputs = magenta_encoder(hparams["inputs"])
        self.layers = [LSTM(*(weights[f"lstm_{k}/{p}"] for p in ("kernel", "recurrent_kernel", "bias")))
                       for k in range(int(hparams["layers"]))]
        self.out_kernel = np.asarray(weights["output/kernel"], np.float32)
        self.out_bias = np.asarray(weights["output/bias"], np.float32)
        attention = hparams.get("attention")
        self.attention_layout = attention["layout"] if attention else None  # "stack" or "first"
        self.attention_length = int(attention["length"]) if attention else 0
        self.attention = (AttentionWeights(*(np.asarray(weights[f"attention/{n}"], np.float32) for n in ATTENTION_NAMES))
                          if attention else None)
        if self.out_bias.shape[0] != self.inputs.num_classes:
            raise ValueError("weights do not fit the config's Magenta encoder (output size differs)")

    # --- the network, one step at a time (attention state is carried between steps) -----------

    def _stack(self, layers: list[LSTM], x: np.ndarray, states: list) -> tuple[np.ndarray, list, np.ndarray]:
        """Run layers; also return TF's flattened state (c, h per layer): the attention query."""
        new, flat = [], []
        for layer, state in zip(layers, states):
            x, (h, c) = layer.step(x, state)
            new.append((h, c))
            flat += [c, h]
        return x, new, (np.concatenate(flat, axis=1) if flat else None)

    def zero_state(self, batch: int):
        lstm = [layer.zero_state(batch) for layer in self.layers]
        if self.attention is None:
            return lstm
        wrapped = lstm if self.attention_layout == "stack" else lstm[:1]
        size = self.attention.output_bias.shape[0]
        return zero_state(wrapped, batch, self.attention_length, size), lstm[len(wrapped):]

    def step(self, x: np.ndarray, state) -> tuple[np.ndarray, Any]:
        """Logits for one input step [B, input_size], and the new state."""
        if self.attention is None:
            h, state, _ = self._stack(self.layers, x, state)
        else:
            wrapped_state, rest = state
            wrapped = self.layers if self.attention_layout == "stack" else self.layers[:1]
            cell = lambda inp, s: self._stack(wrapped, inp, s)  # noqa: E731
            h, wrapped_state = attention_step(self.attention, cell, x, wrapped_state)
            h, rest, _ = self._stack(self.layers[len(wrapped):], h, rest)
            state = (wrapped_state, rest)
        return dense(h, self.out_kernel, self.out_bias), state

    def logits(self, events: np.ndarray) -> np.ndarray:
        """Teacher-forced logits [B, T, classes] over Magenta's labels: position t predicts t + 1."""
        events = np.asarray(events, np.int64)
        x = np.stack([self.inputs.inputs(row.tolist()) for row in events])
        state, out = self.zero_state(len(events)), []
        for t in range(events.shape[1]):
            logits, state = self.step(x[:, t], state)
            out.append(logits)
        return np.stack(out, axis=1)

    def nll(self, events: np.ndarray) -> tuple[float, float]:
        """Mean per-step NLL (nats) and accuracy of events [B, T + 1], scored on Magenta's labels."""
        events = np.asarray(events, np.int64)
        labels = [[self.inputs.label_at(row.tolist(), t) for t in range(1, len(row))] for row in events]
        return score(self.logits(events[:, :-1]), np.array(labels))

    # --- sampling: labels back to events, inputs rebuilt from each variation's history ---------

    def _label_mask(self, event_mask: np.ndarray) -> np.ndarray:
        """An event mask (e.g. in-scale pitches) as a label mask; repeat labels stay allowed."""
        history = [0] * max(self.inputs.lookback_distances, default=1)
        return np.array([label >= self.inputs.num_classes - len(self.inputs.lookback_distances)
                         or event_mask[self.inputs.class_to_event(label, history)]
                         for label in range(self.inputs.num_classes)])

    meter_aware = False  # note_seq's encoders count 16ths: every clip is heard as 4/4

    def sample(self, primer: np.ndarray, steps: int, n: int, temperature: float, rng: np.random.Generator,
               mask: np.ndarray | None = None, report=lambda fraction, message: None, grid=None) -> np.ndarray:
        """n continuations [n, steps] of a primer [P] of events, all in one batch (`grid` is
        always 4/4 16ths here, as note_seq's encoders count)."""
        history = [list(map(int, primer)) for _ in range(n)]
        x = np.repeat(self.inputs.inputs(history[0])[None], n, axis=0)
        state = self.zero_state(n)
        for t in range(len(primer)):
            logits, state = self.step(x[:, t], state)
            report(0.1 * (t + 1) / len(primer), "reading the primer")
        label_mask = self._label_mask(mask) if mask is not None else None
        for i in range(steps):
            if label_mask is not None:
                logits = np.where(label_mask, logits, -np.inf)
            labels = sample_logits(logits, temperature, rng)
            for row, label in zip(history, labels):
                row.append(self.inputs.class_to_event(int(label), row))
            if i + 1 < steps:
                x_t = np.stack([self.inputs.input_at(row, len(row) - 1) for row in history])
                logits, state = self.step(x_t, state)
            report(0.1 + 0.85 * (i + 1) / steps, "sampling")
        return np.asarray([row[len(primer):] for row in history], np.int64)


MODEL_CLASSES["magenta_rnn"] = MagentaRNN
