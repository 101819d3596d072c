"""GrooVAE in Keras: the training half of `model_class` "groovae" (serving: bridge.models.groovae).

Encoder: bidirectional LSTM over the encoder inputs (hits only for humanize, one tap channel
for tap2drum) -> mu, sigma = softplus. Decoder: initial state tanh(dense(z)); each step reads
the previous step's true output (teacher forcing) and z (and, for meter-aware configs, where
the step sits in its bar: bridge.meter's position columns; with `dec_inputs`, also the
encoder's input at that step, so tap2drum places its hits against the taps themselves rather
than against what z remembers of them); a dense layer gives 9 hit logits,
9 velocity logits (sigmoid) and 9 offset logits (tanh). Loss per window, summed over steps and
classes: hit sigmoid cross-entropy + velocity MSE + offset MSE (the last two on the true hits
only), plus beta * max(KL - free bits, 0) as in Magenta's MusicVAE, so the first free_bits of
information in z cost nothing.
"""
from __future__ import annotations

import math

import keras
import numpy as np

from bridge.drums import NUM_CLASSES
from bridge.encodings import groove as enc
from bridge.meter import meter_features
from bridge.models.configs import ModelConfig
from bridge.train.keras_steps import MetricsModel

# Per 2-bar example, summed over steps and classes: hit cross-entropy (nats) + velocity and offset
# squared errors, plus beta * KL above free bits. Not a per-step NLL, so no perplexity.
LOSS_LABEL = "loss (recon + beta * KL above free bits, per example)"


class GrooVAENet(MetricsModel):
    def __init__(self, mode: str, enc_units: int, dec_units: list[int], z_size: int, free_bits: float,
                 beta: float, dropout: float, tap_dropout: float = 0.0, dec_inputs: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.mode, self.free_nats, self.beta = mode, free_bits * math.log(2.0), beta
        self.tap_dropout, self.dec_inputs = tap_dropout, dec_inputs
        self.enc_fw = keras.layers.LSTM(enc_units, return_state=True, name="enc_fw")
        self.enc_bw = keras.layers.LSTM(enc_units, return_state=True, go_backwards=True, name="enc_bw")
        self.mu = keras.layers.Dense(z_size, name="mu")
        self.sigma = keras.layers.Dense(z_size, name="sigma")
        self.dec_init = keras.layers.Dense(2 * sum(dec_units), activation="tanh", name="dec_init")
        self.dec = [keras.layers.LSTM(u, return_sequences=True, name=f"dec_{i}") for i, u in enumerate(dec_units)]
        self.drop = keras.layers.Dropout(dropout)
        self.out = keras.layers.Dense(enc.FEATURES, name="out")
        self.dec_units = list(dec_units)
        self.noise = keras.random.SeedGenerator(0)

    def encode(self, inputs):
        _, h_fw, _ = self.enc_fw(inputs)
        _, h_bw, _ = self.enc_bw(inputs)
        h = keras.ops.concatenate([h_fw, h_bw], axis=-1)
        return self.mu(h), keras.ops.softplus(self.sigma(h))

    def decode(self, z, targets, positions, training=False, controls=None):
        """Output logits [B, T, 27] for the true previous steps (teacher forcing); positions
        [B, T, P] (P = 0 for 4/4-only configs); controls [B, T, C]: the encoder inputs, read
        at each step when `dec_inputs`."""
        steps = keras.ops.shape(targets)[1]
        prev = keras.ops.pad(targets[:, :-1], [[0, 0], [1, 0], [0, 0]])
        parts = [prev, keras.ops.repeat(z[:, None], steps, axis=1), positions]
        x = keras.ops.concatenate(parts + ([controls] if self.dec_inputs else []), axis=-1)
        flat, at = self.dec_init(z), 0
        for layer, units in zip(self.dec, self.dec_units):
            x = self.drop(layer(x, initial_state=[flat[:, at:at + units], flat[:, at + units:at + 2 * units]]),
                          training=training)
            at += 2 * units
        return self.out(x)

    def call(self, batch, training=False):
        inputs = batch["inputs"]
        if training and self.tap_dropout > 0:
            # A melody's rhythm is sparser than a drummer's loudest-hit line: drop taps at random
            # so the decoder learns to place kick, snare and hats when the taps leave gaps.
            keep = keras.ops.cast(keras.random.uniform(keras.ops.shape(inputs)[:2], seed=self.noise)
                                  >= self.tap_dropout, "float32")
            inputs = inputs * keep[..., None]
        mu, sigma = self.encode(inputs)
        z = mu + sigma * keras.random.normal(keras.ops.shape(mu), seed=self.noise) if training else mu
        return self.decode(z, batch["performance"], batch["positions"], training, inputs), mu, sigma

    def metrics_of(self, batch, training):
        logits, mu, sigma = self(batch, training=training)
        target = batch["performance"]
        n = NUM_CLASSES
        hits, vel, off = target[..., :n], target[..., n:2 * n], target[..., 2 * n:]
        x = logits[..., :n]  # stable sigmoid cross-entropy: max(x, 0) - x * y + log(1 + exp(-|x|))
        hit_loss = keras.ops.sum(keras.ops.relu(x) - x * hits + keras.ops.log1p(keras.ops.exp(-keras.ops.abs(x))), axis=[1, 2])
        # Velocity and offset are learnt where a hit is, so they mean "if this hits, how": serving
        # forces the hits it was given, and an unmasked loss would shrink them by the hit's doubt.
        vel_loss = keras.ops.sum(hits * keras.ops.square(keras.ops.sigmoid(logits[..., n:2 * n]) - vel), axis=[1, 2])
        off_loss = keras.ops.sum(hits * keras.ops.square(keras.ops.tanh(logits[..., 2 * n:]) - off), axis=[1, 2])
        kl = keras.ops.sum(0.5 * (keras.ops.square(mu) + keras.ops.square(sigma) - 1.0) - keras.ops.log(sigma + 1e-8), axis=-1)
        recon = keras.ops.mean(hit_loss + vel_loss + off_loss)
        kl_mean = keras.ops.mean(kl)
        predicted = keras.ops.cast(logits[..., :n] > 0, "float32")
        return {"loss": recon + self.beta * keras.ops.maximum(kl_mean - self.free_nats, 0.0),
                "recon": recon, "kl_bits": kl_mean / math.log(2.0),
                "hit_loss": keras.ops.mean(hit_loss), "velocity_loss": keras.ops.mean(vel_loss),
                "offset_loss": keras.ops.mean(off_loss),
                "hit_accuracy": keras.ops.mean(keras.ops.cast(keras.ops.equal(predicted, hits), "float32"))}


def build(config: ModelConfig) -> GrooVAENet:
    hp = config.hparams
    return GrooVAENet(hp["mode"], hp["enc_units"], list(hp["dec_units"]), hp["z_size"], hp["free_bits"],
                      hp["beta"], hp["dropout"], hp.get("tap_dropout", 0.0), bool(hp.get("dec_inputs", False)))


def prepare_batch(batch: dict[str, np.ndarray], config: ModelConfig) -> dict[str, np.ndarray]:
    """Add the encoder inputs for this config's mode and the decoder's step positions (none
    for 4/4-only configs); the cache holds only the performance and its meter grid."""
    performance = batch["performance"]
    steps = np.arange(performance.shape[1])
    positions = (meter_features(batch["grid"], steps) if config.hparams.get("meter")
                 else np.zeros(performance.shape[:2] + (0,), np.float32))
    return {**batch, "inputs": enc.encoder_inputs(performance, config.hparams["mode"]), "positions": positions}


def export_weights(model: GrooVAENet, config: ModelConfig) -> dict[str, np.ndarray]:
    """Keras weights under the names bridge.models.groovae.GrooVAE reads."""
    out: dict[str, np.ndarray] = {}
    for layer in (model.enc_fw, model.enc_bw, *model.dec):
        kernel, recurrent, bias = layer.get_weights()
        out.update({f"{layer.name}/kernel": kernel, f"{layer.name}/recurrent_kernel": recurrent, f"{layer.name}/bias": bias})
    for layer in (model.mu, model.sigma, model.dec_init, model.out):
        kernel, bias = layer.get_weights()
        out.update({f"{layer.name}/kernel": kernel, f"{layer.name}/bias": bias})
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def sample_rolls(model: GrooVAENet, config: ModelConfig, n: int, seed: int) -> list[np.ndarray]:
    """n hit rolls [window, 9] decoded from the prior by the NumPy serving model (what users hear)."""
    from bridge.models.groovae import GrooVAE

    hp = config.hparams
    serving = GrooVAE(export_weights(model, config), hp["mode"], window=int(hp.get("window", enc.WINDOW_STEPS)),
                      meter=bool(hp.get("meter", False)), dec_inputs=bool(hp.get("dec_inputs", False)))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, serving.z_size)).astype(np.float32)
    return list(serving.decode(z, rng, grid=serving.default_grid)[..., :NUM_CLASSES])
