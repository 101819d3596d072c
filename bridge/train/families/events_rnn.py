"""MelodyRNN / DrumsRNN in Keras: the training half of model class "events_rnn".

Stacked LSTMs with dropout on each layer's output, a dense layer to the event classes, mean
sparse softmax cross-entropy over every step of each window (meter-aware converters pad a
short song's window and store its length: padded steps weigh nothing). Inputs are built in
NumPy by the same `EventFeatures` the serving model uses.
"""
from __future__ import annotations

from typing import Iterable

import keras
import numpy as np

from bridge.encodings.features import LEGACY_GRID
from bridge.models.configs import ModelConfig
from bridge.models.events_rnn import EventsRNN, event_features
from bridge.train import ngram
from bridge.train.keras_steps import MetricsModel

LOSS_LABEL = "loss (NLL, nats per step)"
HAS_PERPLEXITY = True  # the loss is a mean next-event cross-entropy, so exp(loss) is a perplexity


class EventsRNNNet(MetricsModel):
    def __init__(self, num_classes: int, layers: int, units: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lstms = [keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{i}") for i in range(layers)]
        self.drops = [keras.layers.Dropout(dropout) for _ in range(layers)]
        self.out = keras.layers.Dense(num_classes, name="output")

    def call(self, batch, training=False):
        x = batch["inputs"]
        for lstm, drop in zip(self.lstms, self.drops):
            x = drop(lstm(x), training=training)
        return self.out(x)

    def metrics_of(self, batch, training: bool) -> dict:
        logits = self(batch, training=training)
        labels, weight = batch["labels"], batch["weights"]
        total = keras.ops.maximum(keras.ops.sum(weight), 1.0)
        nll = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = keras.ops.cast(keras.ops.equal(keras.ops.argmax(logits, axis=-1), labels), "float32") * weight
        event = keras.ops.cast(keras.ops.not_equal(labels, 0), "float32") * weight
        silent = weight - event
        return {"loss": keras.ops.sum(nll * weight) / total, "accuracy": keras.ops.sum(correct) / total,
                "event_accuracy": keras.ops.sum(correct * event) / keras.ops.maximum(keras.ops.sum(event), 1.0),
                "no_event_accuracy": keras.ops.sum(correct * silent) / keras.ops.maximum(keras.ops.sum(silent), 1.0)}


def build(config: ModelConfig) -> EventsRNNNet:
    hp = config.hparams
    num_classes = event_features(config.converter, config.converter_args, hp).encoding.num_classes
    return EventsRNNNet(num_classes, hp["layers"], hp["units"], hp["dropout"])


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """Events [B, T + 1] -> inputs for steps 0..T-1 (on each row's meter grid, where the
    converter stored one), the next event as each step's label, and 1/0 weights that drop the
    padding after a row's `length`."""
    events = batch["events"].astype(np.int64)
    features = event_features(config.converter, config.converter_args, config.hparams)
    lengths = batch.get("length", np.full(len(events), events.shape[1]))
    weights = (np.arange(1, events.shape[1])[None, :] < np.asarray(lengths)[:, None]).astype(np.float32)
    return {"inputs": features(events[:, :-1], grids=batch.get("grid")), "labels": events[:, 1:].astype(np.int32),
            "weights": weights}


def export_weights(model: EventsRNNNet, config: ModelConfig) -> dict[str, np.ndarray]:
    """Keras weights under the names bridge.models.events_rnn.EventsRNN reads."""
    out = {}
    for layer in model.lstms:
        kernel, recurrent, bias = layer.get_weights()
        out.update({f"{layer.name}/kernel": kernel, f"{layer.name}/recurrent_kernel": recurrent, f"{layer.name}/bias": bias})
    kernel, bias = model.out.get_weights()
    out.update({"output/kernel": kernel, "output/bias": bias})
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def serving_model(model: EventsRNNNet, config: ModelConfig) -> EventsRNN:
    """The NumPy model on the current Keras weights: what a bundle of them would play."""
    spec = {"kind": config.kind, "converter": config.converter, "converter_args": config.converter_args,
            "hparams": config.hparams}
    return EventsRNN(spec, export_weights(model, config))


def sample_rolls(model: EventsRNNNet, config: ModelConfig, n: int, seed: int) -> list[np.ndarray]:
    """n 4-bar samples from silence, as [64 steps, classes] rolls (pitch or drum class)."""
    serving = serving_model(model, config)
    encoding = serving.encoding
    events = serving.sample(np.zeros(1, np.int64), 64, n, 1.0, np.random.default_rng(seed), grid=LEGACY_GRID)
    rolls = []
    for row in events:
        if config.converter == "drums":
            rolls.append(encoding.bits(row))
        else:
            roll = np.zeros((64, encoding.max_pitch - encoding.min_pitch + 1), np.float32)
            for pitch, start, end in encoding.decode(row):
                roll[start:end, pitch - encoding.min_pitch] = 1.0
            rolls.append(roll)
    return rolls


def baselines(config: ModelConfig, train: Iterable[dict[str, np.ndarray]], eval: dict[str, np.ndarray]) -> dict[str, float]:
    """A Witten-Bell 4-gram on the same train windows (read part by part), scored on the same
    eval steps."""
    classes = event_features(config.converter, config.converter_args, config.hparams).encoding.num_classes
    model = ngram.WittenBell(order=4, vocab=classes).fit(row for part in train for row in _unpadded(part))
    nll, accuracy = model.score(_unpadded(eval))
    return {"ngram4_loss": nll, "ngram4_accuracy": accuracy}


def _unpadded(arrays: dict[str, np.ndarray]) -> list[list[int]]:
    """Each window's events up to its length (the whole window where none is stored)."""
    events = arrays["events"]
    lengths = arrays.get("length", np.full(len(events), events.shape[1]))
    return [row[:length] for row, length in zip(events.tolist(), np.asarray(lengths).tolist())]
