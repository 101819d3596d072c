"""MelodyRNN / DrumsRNN in Keras: the training half of model class "events_rnn".

Stacked LSTMs with dropout on each layer's output, a dense layer to the event classes, mean
sparse softmax cross-entropy over every step (windows are fixed-size, nothing is padded).
Inputs are built in NumPy by the same `EventFeatures` the serving model uses.
"""
from __future__ import annotations

import keras
import numpy as np

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
        labels = batch["labels"]
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        correct = keras.ops.cast(keras.ops.equal(keras.ops.argmax(logits, axis=-1), labels), "float32")
        event = keras.ops.cast(keras.ops.not_equal(labels, 0), "float32")
        return {"loss": loss, "accuracy": keras.ops.mean(correct),
                "event_accuracy": keras.ops.sum(correct * event) / keras.ops.maximum(keras.ops.sum(event), 1.0),
                "no_event_accuracy": keras.ops.sum(correct * (1 - event)) / keras.ops.maximum(keras.ops.sum(1 - event), 1.0)}


def build(config: ModelConfig) -> EventsRNNNet:
    hp = config.hparams
    num_classes = event_features(config.converter, config.converter_args, hp).encoding.num_classes
    return EventsRNNNet(num_classes, hp["layers"], hp["units"], hp["dropout"])


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """Events [B, T + 1] -> inputs for steps 0..T-1 and the next event as each step's label."""
    events = batch["events"].astype(np.int64)
    features = event_features(config.converter, config.converter_args, config.hparams)
    return {"inputs": features(events[:, :-1]), "labels": events[:, 1:].astype(np.int32)}


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
    events = serving.sample(np.zeros(1, np.int64), 64, n, 1.0, np.random.default_rng(seed))
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


def baselines(config: ModelConfig, train: dict[str, np.ndarray], eval: dict[str, np.ndarray]) -> dict[str, float]:
    """A Witten-Bell 4-gram on the same train windows, scored on the same eval steps."""
    classes = event_features(config.converter, config.converter_args, config.hparams).encoding.num_classes
    model = ngram.WittenBell(order=4, vocab=classes).fit(train["events"])
    nll, accuracy = model.score(eval["events"])
    return {"ngram4_loss": nll, "ngram4_accuracy": accuracy}
