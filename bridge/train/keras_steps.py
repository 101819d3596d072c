"""The one training and eval step every family uses: a family's Keras model only says how to
compute its metrics dict (with "loss") from a batch; taking the gradient is the same for all."""
from __future__ import annotations

import keras
import tensorflow as tf


class MetricsModel(keras.Model):
    """Subclasses define `metrics_of(batch, training) -> dict` holding at least "loss".

    Under a tf.distribute strategy with several replicas each replica's loss is the mean over
    its slice of the batch, and Keras's optimizer sums the replicas' gradients (after clipping
    each replica's own: keras/src/backend/tensorflow/optimizer.py, _all_reduce_sum_gradients),
    so the loss is divided by the replica count. With `replica_clip_norm` set (the trainer
    does, instead of the optimizer's clipnorm) the step sums the gradients itself and clips
    the sum, as one device clips the whole batch's gradient; it passes each replica a share
    of the clipped gradient, which the optimizer's own sum puts back together."""

    replica_clip_norm = 0.0

    def train_step(self, batch):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            metrics = self.metrics_of(batch, training=True)
            loss = metrics["loss"] / replicas if replicas > 1 else metrics["loss"]
        grads = tape.gradient(loss, self.trainable_variables)
        if replicas > 1 and self.replica_clip_norm:
            present = [i for i, g in enumerate(grads) if g is not None]
            summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                                    [grads[i] for i in present])
            for i, g in zip(present, summed):
                grads[i] = tf.clip_by_norm(g, self.replica_clip_norm) / replicas
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return metrics

    def test_step(self, batch):
        return self.metrics_of(batch, training=False)
