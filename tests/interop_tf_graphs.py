"""Small Magenta-layout models built as TF v1 graphs, for the import tests.

Each builder creates variables under Magenta's names with random values, saves them with TF's
own v1 Saver (V1 single file or V2 prefix) and keeps a session that computes the reference
outputs with the same graph. The LSTM step is TF's BasicLSTMCell / LSTMBlockCell arithmetic
written in TF ops (Keras 3 removed tf.compat.v1.nn.rnn_cell): one kernel over [x; h], gates
(i, j, f, o), forget_bias 1.0 added at run time, state tuple (c, h).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from note_seq.protobuf import generator_pb2

tf1 = tf.compat.v1
FORGET_BIAS = 1.0


def tf_lstm_step(x, state, kernel, bias):
    c, h = state
    i, j, f, o = tf.split(tf.matmul(tf.concat([x, h], 1), kernel) + bias, 4, axis=1)
    c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
    h = tf.tanh(c) * tf.sigmoid(o)
    return h, (c, h)


class TFModel:
    """A graph, its session, and the variables it created (name -> tf.Variable)."""

    def __init__(self, seed: int) -> None:
        self.graph = tf.Graph()
        self.rng = np.random.default_rng(seed)
        self.vars: dict[str, tf.Variable] = {}
        self.sess: tf1.Session | None = None

    def var(self, name: str, shape: tuple[int, ...], scale: float = 0.4):
        value = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        with self.graph.as_default():
            self.vars[name] = tf1.get_variable(name, initializer=value)
        return self.vars[name]

    def lstm(self, prefix: str, inputs: int, units: int, names: tuple[str, str] = ("kernel", "bias")):
        return self.var(prefix + names[0], (inputs + units, 4 * units)), self.var(prefix + names[1], (4 * units,))

    def placeholder(self, shape):
        with self.graph.as_default():
            return tf1.placeholder(tf.float32, shape)

    def start(self) -> None:
        with self.graph.as_default():
            self.sess = tf1.Session(graph=self.graph)
            self.sess.run(tf1.global_variables_initializer())

    def save(self, prefix: Path, v1: bool) -> Path:
        """Save with tf.compat.v1.train.Saver; V1 writes one file at `prefix`, V2 an .index + .data pair."""
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with self.graph.as_default():
            version = tf1.train.SaverDef.V1 if v1 else tf1.train.SaverDef.V2
            saver = tf1.train.Saver(list(self.vars.values()), write_version=version)
            saver.save(self.sess, str(prefix), write_meta_graph=False, write_state=False)
        return prefix

    def run(self, fetches, feed):
        return self.sess.run(fetches, feed)


def write_mag(path: Path, v1_checkpoint: Path, generator_id: str) -> Path:
    """A GeneratorBundle holding one V1 checkpoint file, as Magenta's generators write them."""
    bundle = generator_pb2.GeneratorBundle()
    bundle.generator_details.id = generator_id
    bundle.generator_details.description = f"test {generator_id}"
    bundle.checkpoint_file.append(v1_checkpoint.read_bytes())
    bundle.metagraph_file = b""
    path.write_bytes(bundle.SerializeToString())
    return path


class EventsRNNGraph(TFModel):
    """MelodyRNN/DrumsRNN: stacked BasicLSTMCells under rnn/multi_rnn_cell, then fully_connected.
    `names` are the cell's variable names: TF >= 1.2 kernel/bias, older weights/biases."""

    def __init__(self, inputs: int, classes: int, units: tuple[int, ...], steps: int, seed: int = 0,
                 names: tuple[str, str] = ("kernel", "bias")) -> None:
        super().__init__(seed)
        self.x = self.placeholder([None, steps, inputs])
        cells, width = [], inputs
        for k, u in enumerate(units):
            cells.append(self.lstm(f"rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell/", width, u, names))
            width = u
        weights, biases = self.var("fully_connected/weights", (width, classes)), self.var("fully_connected/biases", (classes,))
        with self.graph.as_default():
            batch = tf.shape(self.x)[0]
            states = [(tf.zeros([batch, u]), tf.zeros([batch, u])) for u in units]
            logits = []
            for t in range(steps):
                h = self.x[:, t]
                for k, (kernel, bias) in enumerate(cells):
                    h, states[k] = tf_lstm_step(h, states[k], kernel, bias)
                logits.append(tf.matmul(h, weights) + biases)
            self.logits = tf.stack(logits, axis=1)
        self.start()


class MusicVAEGraph(TFModel):
    """A flat MusicVAE: one-layer bidirectional LSTMBlockCell encoder -> mu, softplus sigma;
    decoder initial state tanh(dense(z)) split as (c, h) per layer; each step reads [previous
    output, z]. Teacher-forced: `dec_in` holds the previous outputs (zeros first)."""

    def __init__(self, enc_in: int, out: int, enc_units: int, dec_units: tuple[int, ...], z: int, steps: int,
                 seed: int = 0) -> None:
        super().__init__(seed)
        self.x = self.placeholder([None, steps, enc_in])
        self.z = self.placeholder([None, z])
        self.dec_in = self.placeholder([None, steps, out])
        enc = {d: self.lstm(f"encoder/cell_0/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/", enc_in, enc_units)
               for d in ("fw", "bw")}
        mu_w, mu_b = self.var("encoder/mu/kernel", (2 * enc_units, z)), self.var("encoder/mu/bias", (z,))
        sg_w, sg_b = self.var("encoder/sigma/kernel", (2 * enc_units, z)), self.var("encoder/sigma/bias", (z,))
        init_w = self.var("decoder/z_to_initial_state/kernel", (z, 2 * sum(dec_units)))
        init_b = self.var("decoder/z_to_initial_state/bias", (2 * sum(dec_units),))
        cells, width = [], out + z
        for k, u in enumerate(dec_units):
            cells.append(self.lstm(f"decoder/multi_rnn_cell/cell_{k}/lstm_cell/", width, u))
            width = u
        out_w = self.var("decoder/output_projection/kernel", (width, out))
        out_b = self.var("decoder/output_projection/bias", (out,))
        with self.graph.as_default():
            batch = tf.shape(self.x)[0]
            finals = {}
            for d, order in (("fw", range(steps)), ("bw", range(steps - 1, -1, -1))):
                state = (tf.zeros([batch, enc_units]), tf.zeros([batch, enc_units]))
                for t in order:
                    h, state = tf_lstm_step(self.x[:, t], state, *enc[d])
                finals[d] = h
            final = tf.concat([finals["fw"], finals["bw"]], 1)
            self.mu = tf.matmul(final, mu_w) + mu_b
            self.sigma = tf.nn.softplus(tf.matmul(final, sg_w) + sg_b)
            flat = tf.tanh(tf.matmul(self.z, init_w) + init_b)
            parts = tf.split(flat, [s for u in dec_units for s in (u, u)], axis=1)
            states = [(parts[2 * k], parts[2 * k + 1]) for k in range(len(dec_units))]  # LSTMStateTuple(c, h)
            logits = []
            for t in range(steps):
                h = tf.concat([self.dec_in[:, t], self.z], 1)
                for k, (kernel, bias) in enumerate(cells):
                    h, states[k] = tf_lstm_step(h, states[k], kernel, bias)
                logits.append(tf.matmul(h, out_w) + out_b)
            self.logits = tf.stack(logits, axis=1)
        self.start()

    def reference(self, enc_inputs: np.ndarray, z: np.ndarray, dec_inputs: np.ndarray):
        """(mu, sigma, teacher-forced logits) from the TF graph."""
        return self.run([self.mu, self.sigma, self.logits], {self.x: enc_inputs, self.z: z, self.dec_in: dec_inputs})
