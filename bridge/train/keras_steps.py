"""The one training and eval step every family uses: a family's Keras model only says how to
compute its metrics dict (with "loss") from a batch; taking the gradient is the same for all."""
from __future__ import annotations

import keras
import tensorflow as tf


class MetricsModel(keras.Model):
    """Subclasses define `metrics_of(batch, training) -> dict` holding at least "loss"."""

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            metrics = self.metrics_of(batch, training=True)
        grads = tape.gradient(metrics["loss"], self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return metrics

    def test_step(self, batch):
        return self.metrics_of(batch, training=False)
