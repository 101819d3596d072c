"""Magenta events RNNs with tf.contrib's AttentionCellWrapper, built as TF v1 graphs for the
import tests (Keras 3 and TF 2 dropped tf.contrib, so the wrapper is written in TF ops here,
as TF 1.x computed it: the 1x1 conv over the window, the flattened (c, h) state as query).

`layout` None: plain stacked cells; "stack": the wrapper around the whole MultiRNNCell
(rnn/attention_cell_wrapper/..., older Magenta and magenta.js); "first": around the first
layer only (rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/..., newer Magenta).
"""
from __future__ import annotations

import tensorflow as tf

from interop_tf_graphs import TFModel, tf_lstm_step


class MagentaRNNGraph(TFModel):
    def __init__(self, inputs: int, classes: int, units: tuple[int, ...], steps: int, layout: str | None = None,
                 attn_length: int = 0, names: tuple[str, str] = ("kernel", "bias"),
                 output_scope: str = "attn_output_projection", seed: int = 0) -> None:
        super().__init__(seed)
        self.x = self.placeholder([None, steps, inputs])
        wrapper = {"stack": "rnn/attention_cell_wrapper/", "first": "rnn/multi_rnn_cell/cell_0/attention_cell_wrapper/"}
        cells, width = [], inputs
        for k, u in enumerate(units):
            if layout == "stack":
                prefix = f"{wrapper['stack']}multi_rnn_cell/cell_{k}/basic_lstm_cell/"
            elif layout == "first" and k == 0:
                prefix = f"{wrapper['first']}basic_lstm_cell/"
            else:
                prefix = f"rnn/multi_rnn_cell/cell_{k}/basic_lstm_cell/"
            cells.append(self.lstm(prefix, width, u, names))
            width = u
        wrapped = len(units) if layout == "stack" else 1 if layout == "first" else 0
        attn = None
        if layout:
            p, size = wrapper[layout], units[wrapped - 1]
            state_size = 2 * sum(units[:wrapped])
            attn = {"in": (self.var(p + names[0], (inputs + size, inputs)), self.var(p + names[1], (inputs,))),
                    "w": self.var(p + "attention/attn_w", (1, 1, size, size)),
                    "v": self.var(p + "attention/attn_v", (size,)),
                    "q": (self.var(p + "attention/" + names[0], (state_size, size)),
                          self.var(p + "attention/" + names[1], (size,))),
                    "out": (self.var(f"{p}{output_scope}/{names[0]}", (2 * size, size)),
                            self.var(f"{p}{output_scope}/{names[1]}", (size,)))}
        weights = self.var("fully_connected/weights", (width, classes))
        biases = self.var("fully_connected/biases", (classes,))
        with self.graph.as_default():
            batch = tf.shape(self.x)[0]
            states = [(tf.zeros([batch, u]), tf.zeros([batch, u])) for u in units]
            if attn:
                size = units[wrapped - 1]
                attns, window = tf.zeros([batch, size]), tf.zeros([batch, attn_length, size])
            logits = []
            for t in range(steps):
                h = self.x[:, t]
                if attn:
                    h = tf.matmul(tf.concat([h, attns], 1), attn["in"][0]) + attn["in"][1]
                for k in range(wrapped):
                    h, states[k] = tf_lstm_step(h, states[k], *cells[k])
                if attn:
                    query = tf.concat([part for c, hh in states[:wrapped] for part in (c, hh)], 1)
                    hidden = tf.reshape(window, [-1, attn_length, 1, size])
                    features = tf.nn.conv2d(hidden, attn["w"], [1, 1, 1, 1], "SAME")
                    y = tf.reshape(tf.matmul(query, attn["q"][0]) + attn["q"][1], [-1, 1, 1, size])
                    a = tf.nn.softmax(tf.reduce_sum(attn["v"] * tf.tanh(features + y), [2, 3]))
                    attns = tf.reshape(tf.reduce_sum(tf.reshape(a, [-1, attn_length, 1, 1]) * hidden, [1, 2]), [-1, size])
                    h = tf.matmul(tf.concat([h, attns], 1), attn["out"][0]) + attn["out"][1]
                    window = tf.concat([window[:, 1:], h[:, None]], 1)
                for k in range(wrapped, len(units)):
                    h, states[k] = tf_lstm_step(h, states[k], *cells[k])
                logits.append(tf.matmul(h, weights) + biases)
            self.logits = tf.stack(logits, axis=1)
        self.start()
