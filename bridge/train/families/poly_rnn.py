"""The polyphonic events RNN in Keras: the training half of model class "poly_rnn".

The network is the events RNN's (stacked LSTMs, dropout on each layer's output, a dense
layer to the event classes); its inputs are `PolyFeatures` built in NumPy, as serving builds
them. The loss is the mean next-event cross-entropy over each window's events (padding after
`length` weighs nothing). Logged besides loss and accuracy: accuracy on note-on, note-off and
time-shift targets, which say whether the model learns what to play, when to stop, and when
to move on.
"""
from __future__ import annotations

from typing import Iterable

import keras
import numpy as np

from bridge.encodings.poly import PolyFeatures
from bridge.models.configs import ModelConfig
from bridge.models.poly_rnn import PolyRNN, poly_encoding
from bridge.train import ngram
from bridge.train.families.events_rnn import EventsRNNNet, _unpadded, export_weights  # noqa: F401 (the family's export)

LOSS_LABEL = "loss (NLL, nats per event)"
HAS_PERPLEXITY = True  # the loss is a mean next-event cross-entropy, so exp(loss) is a perplexity


class PolyRNNNet(EventsRNNNet):
    def __init__(self, first_off: int, first_shift: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.first_off, self.first_shift = first_off, first_shift

    def metrics_of(self, batch, training: bool) -> dict:
        ops = keras.ops
        logits = self(batch, training=training)
        labels, weight = batch["labels"], batch["weights"]
        nll = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), labels), "float32") * weight
        out = {"loss": ops.sum(nll * weight) / ops.maximum(ops.sum(weight), 1.0),
               "accuracy": ops.sum(correct) / ops.maximum(ops.sum(weight), 1.0)}
        kinds = {"note_on": (1, self.first_off), "note_off": (self.first_off, self.first_shift),
                 "shift": (self.first_shift, None)}
        for name, (low, high) in kinds.items():
            inside = ops.greater_equal(labels, low) if high is None else \
                ops.logical_and(ops.greater_equal(labels, low), ops.less(labels, high))
            kind = ops.cast(inside, "float32") * weight
            out[f"{name}_accuracy"] = ops.sum(correct * kind) / ops.maximum(ops.sum(kind), 1.0)
        return out


def build(config: ModelConfig) -> PolyRNNNet:
    hp, enc = config.hparams, poly_encoding(config.converter_args)
    return PolyRNNNet(enc.first_off, enc.first_shift, num_classes=enc.num_classes, layers=hp["layers"],
                      units=hp["units"], dropout=hp["dropout"])


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """Events [B, T + 1] -> inputs for events 0..T-1 on each row's grid with the window's
    pitch-class histogram, the next event as each position's label, and 1/0 weights that drop
    the padding after a row's `length`."""
    events = batch["events"].astype(np.int64)
    features = PolyFeatures(poly_encoding(config.converter_args))
    weights = (np.arange(1, events.shape[1])[None, :] < np.asarray(batch["length"])[:, None]).astype(np.float32)
    return {"inputs": features(events[:, :-1], batch["grid"], features.histogram(events, batch["length"])),
            "labels": events[:, 1:].astype(np.int32), "weights": weights}


def serving_model(model: PolyRNNNet, config: ModelConfig) -> PolyRNN:
    """The NumPy model on the current Keras weights: what a bundle of them would play."""
    spec = {"kind": config.kind, "converter_args": config.converter_args, "hparams": config.hparams}
    return PolyRNN(spec, export_weights(model, config))


def baselines(config: ModelConfig, train: Iterable[dict[str, np.ndarray]], eval: dict[str, np.ndarray]) -> dict[str, float]:
    """A Witten-Bell 4-gram on the same train windows (read part by part), scored on the same
    eval events."""
    model = ngram.WittenBell(order=4, vocab=poly_encoding(config.converter_args).num_classes).fit(
        row for part in train for row in _unpadded(part))
    nll, accuracy = model.score(_unpadded(eval))
    return {"ngram4_loss": nll, "ngram4_accuracy": accuracy}
