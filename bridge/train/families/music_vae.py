"""MusicVAE in Keras: the training half of `model_class = "music_vae"`.

Bidirectional LSTM encoder (final forward and backward h concatenated) -> mu and
sigma = softplus(dense); z = mu + sigma * eps; decoder LSTM stack whose initial state is
tanh(dense(z)) and whose input at each step is the previous event (through the same input
table the encoder reads) concatenated with z. The decoder loop is unrolled by hand so that
scheduled sampling (inverse sigmoid in the step) can feed the model's own samples back.
The serving twin is `bridge.models.music_vae.MusicVAE`; names in `export_weights` are the
ones it reads.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from bridge.meter import MeterGrid, meter_features
from bridge.models.configs import ModelConfig
from bridge.models.music_vae import MusicVAE, VAEHparams, input_table
from bridge.train.families import music_vae_eval
from bridge.train.keras_steps import MetricsModel


class MusicVAEModel(MetricsModel):
    def __init__(self, hp: VAEHparams, free_bits: float, max_beta: float, beta_rate: float,
                 sampling_rate: float, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hp, self.dropout = hp, dropout
        self.free_nats = free_bits * math.log(2.0)
        self.max_beta, self.beta_rate, self.sampling_rate = max_beta, beta_rate, sampling_rate
        self.table = tf.constant(input_table(hp.kind, hp.num_classes))
        self.enc_fw = keras.layers.LSTM(hp.enc_units, name="enc_fw")
        self.enc_bw = keras.layers.LSTM(hp.enc_units, go_backwards=True, name="enc_bw")
        self.mu = keras.layers.Dense(hp.z_size, name="mu")
        self.sigma = keras.layers.Dense(hp.z_size, name="sigma")
        self.z_to_state = keras.layers.Dense(2 * sum(hp.dec_units), activation="tanh", name="z_to_state")
        self.cells = [keras.layers.LSTMCell(u, name=f"dec_{k}") for k, u in enumerate(hp.dec_units)]
        self.out = keras.layers.Dense(hp.num_classes, name="out")

    def encode(self, events: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.gather(self.table, events)
        h = tf.concat([self.enc_fw(x), self.enc_bw(x)], axis=-1)
        return self.mu(h), tf.math.softplus(self.sigma(h))

    def initial_states(self, z: tf.Tensor) -> list[list[tf.Tensor]]:
        """tanh(dense(z)) cut into [h, c] per decoder layer (the order serving reads)."""
        flat, states, offset = self.z_to_state(z), [], 0
        for u in self.hp.dec_units:
            states.append([flat[:, offset:offset + u], flat[:, offset + u:offset + 2 * u]])
            offset += 2 * u
        return states

    def decode(self, z: tf.Tensor, targets: tf.Tensor, positions: tf.Tensor, p_sample: tf.Tensor | float = 0.0,
               training: bool = False) -> tf.Tensor:
        """Logits [B, T, C]; with probability p_sample a step's next input is the model's own sample.
        `positions` [B, T, P] is each step's position input (P = 0 when the config has none).

        In training, `dropout` drops decoder layer outputs (Magenta's DropoutWrapper on each
        decoder cell): with few, varied grooves the decoder otherwise memorises the training
        windows instead of reading the latent."""
        states = self.initial_states(z)
        prev = tf.zeros([tf.shape(z)[0], self.table.shape[1]])
        logits = []
        for t in range(targets.shape[1]):
            x = tf.concat([prev, z, positions[:, t]], axis=-1)
            for k, cell in enumerate(self.cells):
                x, states[k] = cell(x, states[k])
                if training and self.dropout > 0:
                    x = tf.nn.dropout(x, self.dropout)
            step_logits = self.out(x)
            logits.append(step_logits)
            prev = tf.gather(self.table, targets[:, t])
            if self.sampling_rate > 0:
                sampled = tf.gather(self.table, tf.random.categorical(step_logits, 1)[:, 0])
                use = tf.random.uniform([tf.shape(z)[0], 1]) < p_sample
                prev = tf.where(use, tf.stop_gradient(sampled), prev)
        return tf.stack(logits, axis=1)

    def call(self, batch, training: bool = False):
        events = tf.cast(batch["events"], tf.int32)
        mu, _ = self.encode(events)
        return self.decode(mu, events, batch["positions"])

    def metrics_of(self, batch, training: bool) -> dict[str, tf.Tensor]:
        events = tf.cast(batch["events"], tf.int32)
        mu, sigma = self.encode(events)
        # Uncompiled (export scores the best checkpoint): count as fully annealed.
        optimizer = getattr(self, "optimizer", None)
        step = tf.cast(optimizer.iterations, tf.float32) if optimizer is not None else tf.constant(1e9)
        if training:
            z = mu + sigma * tf.random.normal(tf.shape(mu))
            k = self.sampling_rate
            p_sample = 1.0 - k / (k + tf.exp(tf.minimum(step / k, 80.0))) if k > 0 else 0.0
        else:  # held-out numbers from the posterior mean, teacher forced: stable across evals
            z, p_sample = mu, 0.0
        logits = self.decode(z, events, batch["positions"], p_sample, training)
        recon = tf.reduce_mean(tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=events, logits=logits), axis=1))
        kl = tf.reduce_sum(0.5 * (tf.square(mu) + tf.square(sigma) - 1.0) - tf.math.log(sigma + 1e-8), axis=1)
        beta = self.max_beta * (1.0 - tf.pow(self.beta_rate, step))
        kl_cost = tf.reduce_mean(tf.maximum(kl - self.free_nats, 0.0))
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), events), tf.float32)
        return {"loss": recon + beta * kl_cost, "recon": recon, "kl_bits": tf.reduce_mean(kl) / math.log(2.0),
                "accuracy": tf.reduce_mean(hits), "beta": beta, "p_sample": tf.convert_to_tensor(p_sample)}


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """The decoder's position input per example: meter columns on each window's grid
    (meter-aware configs), the step counter (`dec_position`), or nothing."""
    hp = VAEHparams.from_config(config.kind, config.hparams)
    events = batch["events"]
    if hp.meter:
        positions = meter_features(batch["grid"], np.arange(events.shape[1]))
    else:
        positions = np.broadcast_to(hp.position_table(), (len(events),) + hp.position_table().shape)
    return {**batch, "positions": np.ascontiguousarray(positions, np.float32)}


def build(config: ModelConfig) -> MusicVAEModel:
    hp = config.hparams
    return MusicVAEModel(VAEHparams.from_config(config.kind, hp), hp["free_bits"], hp["max_beta"],
                         hp["beta_rate"], hp["sampling_rate"], hp.get("dropout", 0.0), name=config.name)


def export_weights(model: MusicVAEModel, config: ModelConfig) -> dict[str, np.ndarray]:
    """The arrays `bridge.models.music_vae.MusicVAE` reads, in Keras' own layouts."""
    weights: dict[str, np.ndarray] = {}
    for prefix, layer in (("encoder/fw", model.enc_fw.cell), ("encoder/bw", model.enc_bw.cell),
                          *((f"decoder/lstm_{k}", cell) for k, cell in enumerate(model.cells))):
        kernel, recurrent, bias = (np.asarray(w) for w in layer.get_weights())
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/recurrent_kernel": recurrent, f"{prefix}/bias": bias})
    for prefix, layer in (("encoder/mu", model.mu), ("encoder/sigma", model.sigma),
                          ("decoder/z_to_state", model.z_to_state), ("decoder/out", model.out)):
        kernel, bias = (np.asarray(w) for w in layer.get_weights())
        weights.update({f"{prefix}/kernel": kernel, f"{prefix}/bias": bias})
    return weights


def import_weights(model: MusicVAEModel, weights: dict[str, np.ndarray]) -> None:
    """Put bundle arrays back into a built Keras model (the inverse of export_weights)."""
    layers = [("encoder/fw", model.enc_fw.cell), ("encoder/bw", model.enc_bw.cell),
              *((f"decoder/lstm_{k}", cell) for k, cell in enumerate(model.cells))]
    for prefix, layer in layers:
        layer.set_weights([weights[f"{prefix}/{n}"] for n in ("kernel", "recurrent_kernel", "bias")])
    for prefix, layer in (("encoder/mu", model.mu), ("encoder/sigma", model.sigma),
                          ("decoder/z_to_state", model.z_to_state), ("decoder/out", model.out)):
        layer.set_weights([weights[f"{prefix}/kernel"], weights[f"{prefix}/bias"]])


def sample(model: MusicVAEModel, z: tf.Tensor, temperature: float, seed: int,
           grid: MeterGrid | None = None) -> tf.Tensor:
    """Events [B, T] decoded from z in Keras, step by step (the bench's reference path); a
    meter-aware model decodes on `grid` (default 4/4)."""
    states = model.initial_states(z)
    prev = tf.zeros([tf.shape(z)[0], model.table.shape[1]])
    positions = model.hp.positions(grid or MeterGrid.of("4/4"))
    events = []
    for t in range(model.hp.steps):
        x = tf.concat([prev, z, tf.tile(positions[t:t + 1], [tf.shape(z)[0], 1])], axis=-1)
        for k, cell in enumerate(model.cells):
            x, states[k] = cell(x, states[k])
        step = tf.random.stateless_categorical(model.out(x) / temperature, 1, [seed, t])[:, 0]
        events.append(step)
        prev = tf.gather(model.table, step)
    return tf.stack(events, axis=1)


def sample_rolls(model: MusicVAEModel, config: ModelConfig, n: int, seed: int) -> list[np.ndarray]:
    """Prior samples as rolls [time, class]: melody pitches, or the 9 drum classes."""
    z = tf.random.stateless_normal([n, model.hp.z_size], [seed, 0])
    events = sample(model, z, 1.0, seed).numpy()
    return [music_vae_eval.roll(e, model.hp) for e in events]


def evaluate_extra(model: MusicVAEModel, config: ModelConfig, eval_batches) -> dict[str, float]:
    """Held-out numbers for the model card, computed by the NumPy serving model itself."""
    batches = [eval_batches] if isinstance(eval_batches, dict) else list(eval_batches)
    events = np.concatenate([np.asarray(b["events"]) for b in batches]).astype(np.int64)
    grids = np.concatenate([np.asarray(b["grid"]) for b in batches]) if "grid" in batches[0] else None
    serving = MusicVAE(export_weights(model, config), model.hp)
    return music_vae_eval.metrics(serving, events, np.random.default_rng(0), grids)
