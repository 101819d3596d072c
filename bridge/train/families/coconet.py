"""Coconet in Keras: the training half of `model_class = "coconet"` (serving: bridge.models.coconet).

Training is Coconet's orderless NADE: each example gets a fresh random transposition (within
the pitch range, up to `max_transpose` semitones) and a random mask, and the loss is the
cross-entropy of the masked cells only, averaged per example over its masked cells. Masks mix
the ways the tool masks: random cells at a random rate within a random set of voices (what
Gibbs passes re-mask), whole voices (harmonizing given voices), a time span of some voices
(inpainting), and alto, tenor and bass (harmonizing a melody).

Eval is deterministic: "loss" is the NLL (nats per cell) of alto, tenor and bass given the
soprano, all three masked at once: what Harmonize's first pass predicts, and the number the
issue's done-criterion compares with the voice-wise pitch-frequency baseline (`baselines`).
So the trainer keeps the checkpoint that harmonizes best. "random_mask_nll" scores a fixed
random half of all cells.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from bridge.encodings import chorale
from bridge.models.coconet import CoconetHparams
from bridge.models.configs import ModelConfig
from bridge.train import eval_coconet
from bridge.train.keras_steps import MetricsModel

LOSS_LABEL = "loss (NLL of alto, tenor and bass given the soprano, nats per cell)"
V, C = len(chorale.VOICES), chorale.NUM_CLASSES
MASK_KINDS = (0.4, 0.2, 0.2, 0.2)  # cells, whole voices, time span, alto-tenor-bass
HARMONIZE = tf.constant([0.0, 1.0, 1.0, 1.0])


class CoconetNet(MetricsModel):
    def __init__(self, hp: CoconetHparams, dropout: float, max_transpose: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hp, self.max_transpose = hp, max_transpose
        self.inp = keras.layers.Conv1D(hp.units, hp.kernel, padding="same", name="input")
        self.res = [keras.layers.Conv1D(hp.units, hp.kernel, padding="same", dilation_rate=hp.dilation(k), name=f"res_{k}")
                    for k in range(hp.layers)]
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(V * C, name="out")

    def logits(self, classes: tf.Tensor, mask: tf.Tensor, position: tf.Tensor, valid: tf.Tensor,
               training: bool = False) -> tf.Tensor:
        """[B, T, V, C] logits; the input is chorale.model_input's. Every layer's input is zero
        after the example's end, so a padded window gives the logits that NumPy gives the piece
        alone (whose convolutions pad with zeros)."""
        hot = tf.one_hot(classes, C) * (1.0 - mask)[..., None]
        shape = tf.shape(classes)
        x = tf.concat([tf.reshape(hot, [shape[0], shape[1], V * C]), mask, position], axis=-1)
        valid = valid[..., None]
        h = self.inp(x * valid)
        for conv in self.res:
            h = h + self.drop(conv(tf.nn.relu(h) * valid), training=training)
        return tf.reshape(self.out(tf.nn.relu(h)), [shape[0], shape[1], V, C])

    def call(self, batch, training: bool = False):
        classes, position, valid = _inputs(batch)
        return self.logits(classes, harmonize_mask(valid), position, valid, training)

    def transpose(self, classes: tf.Tensor) -> tf.Tensor:
        """Every example moved by a random shift that keeps its pitches in the model's range."""
        sounding = classes > 0
        lo = tf.reduce_min(tf.where(sounding, classes, C), axis=[1, 2])
        hi = tf.reduce_max(tf.where(sounding, classes, 0), axis=[1, 2])
        low = tf.maximum(-self.max_transpose, 1 - lo)
        high = tf.minimum(self.max_transpose, C - 1 - hi)
        u = tf.random.uniform(tf.shape(lo))
        shift = low + tf.cast(tf.floor(u * tf.cast(high - low + 1, tf.float32)), tf.int32)
        return tf.where(sounding, classes + shift[:, None, None], 0)

    def metrics_of(self, batch, training: bool) -> dict[str, tf.Tensor]:
        classes, position, valid = _inputs(batch)
        if training:
            classes = self.transpose(classes)
            mask = random_mask(tf.shape(classes)[0], tf.shape(classes)[1]) * valid[..., None]
            ce = _cross_entropy(classes, self.logits(classes, mask, position, valid, True))
            per_example = tf.reduce_sum(ce * mask, [1, 2]) / tf.maximum(tf.reduce_sum(mask, [1, 2]), 1.0)
            return {"loss": tf.reduce_mean(per_example)}
        mask = harmonize_mask(valid)
        logits = self.logits(classes, mask, position, valid)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), classes), tf.float32)
        half = tf.cast(tf.random.stateless_uniform(tf.shape(classes), [17, 0]) < 0.5, tf.float32) * valid[..., None]
        return {"loss": _masked_mean(_cross_entropy(classes, logits), mask),
                "accuracy": _masked_mean(hits, mask),
                "random_mask_nll": _masked_mean(_cross_entropy(classes, self.logits(classes, half, position, valid)), half)}


def _inputs(batch) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    classes = tf.cast(batch["voices"], tf.int32)
    valid = tf.sequence_mask(tf.cast(batch["length"], tf.int32), tf.shape(classes)[1], tf.float32)
    return classes, tf.cast(batch["position"], tf.float32), valid


def _cross_entropy(classes: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=classes, logits=logits)


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(values * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def harmonize_mask(valid: tf.Tensor) -> tf.Tensor:
    """[B, T, V]: alto, tenor and bass over each example's length."""
    return valid[..., None] * HARMONIZE


def random_mask(batch: tf.Tensor, steps: tf.Tensor) -> tf.Tensor:
    """[B, T, V] float masks of the four kinds in MASK_KINDS (see the module docstring)."""
    kind = tf.random.categorical(tf.math.log([list(MASK_KINDS)]), batch)[0][:, None, None]
    # A random non-empty set of voices: the k lowest of a random ranking.
    ranks = tf.argsort(tf.argsort(tf.random.uniform([batch, V])))
    k = tf.random.uniform([batch, 1], 1, V + 1, tf.int32)
    voices = tf.cast(ranks < k, tf.float32)[:, None, :]
    cells = tf.cast(tf.random.uniform([batch, steps, V]) < tf.random.uniform([batch, 1, 1]), tf.float32) * voices
    t = tf.cast(tf.range(steps), tf.float32)[None, :]
    first = tf.random.uniform([batch, 1]) * tf.cast(steps, tf.float32)
    span = 1.0 + tf.random.uniform([batch, 1]) * tf.cast(steps, tf.float32)
    block = tf.cast((t >= first) & (t < first + span), tf.float32)[..., None] * voices
    harmonize = tf.ones([batch, steps, 1]) * HARMONIZE
    whole = tf.ones([batch, steps, 1]) * voices
    return tf.where(kind == 0, cells, tf.where(kind == 1, whole, tf.where(kind == 2, block, harmonize)))


def build(config: ModelConfig) -> CoconetNet:
    hp = config.hparams
    return CoconetNet(CoconetHparams.from_config(hp), hp["dropout"], hp["max_transpose"], name=config.name)


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """Adds the position channels [B, T, 3] from each window's stored meter."""
    steps = batch["voices"].shape[1]
    position = np.stack([chorale.position(*(int(v) for v in row), steps) for row in batch["meter"]])
    return {**batch, "position": position}


def export_weights(model: CoconetNet, config: ModelConfig) -> dict[str, np.ndarray]:
    """The arrays bridge.models.coconet.Coconet reads, in Keras' layouts (conv kernels [K, in, out])."""
    weights = {}
    for layer in (model.inp, *model.res, model.out):
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        weights.update({f"{layer.name}/kernel": kernel, f"{layer.name}/bias": bias})
    return weights


def baselines(config: ModelConfig, train: dict[str, np.ndarray], eval: dict[str, np.ndarray]) -> dict[str, float]:
    """The voice-wise pitch-frequency model's NLL of alto, tenor and bass on the eval windows."""
    freq = eval_coconet.voice_frequencies(eval_coconet.window_pieces(train))
    return {"voice_frequency_nll": eval_coconet.baseline_nll(freq, eval_coconet.window_pieces(eval))}
