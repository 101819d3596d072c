"""A MusicVAE with a stacked bidirectional encoder (Magenta's stack_bidirectional_dynamic_rnn:
layer k reads both directions' outputs of layer k - 1; the final state is the last layer's
fw and bw h) and optionally a hierarchical decoder (Magenta's hierdec: a conductor under
decoder/hierarchical_level_0 reads a constant zero each step; each of its outputs restarts the
core decoder under core_decoder/decoder, and replaces z in its input), built as a TF v1 graph
for the import tests. Teacher-forced decoder as in interop_tf_graphs.MusicVAEGraph."""
from __future__ import annotations

import tensorflow as tf

from interop_tf_graphs import TFModel, tf_lstm_step


class StackedEncoderVAEGraph(TFModel):
    def __init__(self, enc_in: int, out: int, enc_units: int, enc_layers: int, dec_units: tuple[int, ...], z: int,
                 steps: int, seed: int = 0, conductor: tuple[int, ...] = (), segments: int = 1) -> None:
        super().__init__(seed)
        self.x = self.placeholder([None, steps, enc_in])
        self.z = self.placeholder([None, z])
        self.dec_in = self.placeholder([None, steps, out])
        enc = [{d: self.lstm(f"encoder/cell_{k}/bidirectional_rnn/{d}/multi_rnn_cell/cell_0/lstm_cell/",
                             enc_in if k == 0 else 2 * enc_units, enc_units) for d in ("fw", "bw")}
               for k in range(enc_layers)]
        mu_w, mu_b = self.var("encoder/mu/kernel", (2 * enc_units, z)), self.var("encoder/mu/bias", (z,))
        sg_w, sg_b = self.var("encoder/sigma/kernel", (2 * enc_units, z)), self.var("encoder/sigma/bias", (z,))
        dec = "core_decoder/decoder/" if conductor else "decoder/"
        embedding = conductor[-1] if conductor else z
        cond_cells, width = [], 1
        for k, u in enumerate(conductor):
            cond_cells.append(self.lstm(f"decoder/hierarchical_level_0/cell_{k}/lstm_cell/", width, u))
            width = u
        if conductor:
            cond_w = self.var("decoder/hierarchical_level_0/initial_state/kernel", (z, 2 * sum(conductor)))
            cond_b = self.var("decoder/hierarchical_level_0/initial_state/bias", (2 * sum(conductor),))
        init_w = self.var(dec + "z_to_initial_state/kernel", (embedding, 2 * sum(dec_units)))
        init_b = self.var(dec + "z_to_initial_state/bias", (2 * sum(dec_units),))
        cells, width = [], out + embedding
        for k, u in enumerate(dec_units):
            cells.append(self.lstm(f"{dec}multi_rnn_cell/cell_{k}/lstm_cell/", width, u))
            width = u
        out_w = self.var(dec + "output_projection/kernel", (width, out))
        out_b = self.var(dec + "output_projection/bias", (out,))
        with self.graph.as_default():
            batch = tf.shape(self.x)[0]
            xs = [self.x[:, t] for t in range(steps)]
            for layer in enc:
                outs, finals = {}, {}
                for d, order in (("fw", range(steps)), ("bw", range(steps - 1, -1, -1))):
                    state, outs[d] = (tf.zeros([batch, enc_units]), tf.zeros([batch, enc_units])), [None] * steps
                    for t in order:
                        outs[d][t], state = tf_lstm_step(xs[t], state, *layer[d])
                    finals[d] = state[1]
                xs = [tf.concat([outs["fw"][t], outs["bw"][t]], 1) for t in range(steps)]
            final = tf.concat([finals["fw"], finals["bw"]], 1)
            self.mu = tf.matmul(final, mu_w) + mu_b
            self.sigma = tf.nn.softplus(tf.matmul(final, sg_w) + sg_b)
            def initial(source, kernel, bias, units):  # LSTMStateTuple(c, h) per layer
                parts = tf.split(tf.tanh(tf.matmul(source, kernel) + bias), [s for u in units for s in (u, u)], axis=1)
                return [(parts[2 * k], parts[2 * k + 1]) for k in range(len(units))]

            embeddings = [self.z] * segments
            if conductor:
                cond_states, embeddings = initial(self.z, cond_w, cond_b, conductor), []
                for _ in range(segments):
                    h = tf.zeros([batch, 1])
                    for k, (kernel, bias) in enumerate(cond_cells):
                        h, cond_states[k] = tf_lstm_step(h, cond_states[k], kernel, bias)
                    embeddings.append(h)
            logits = []
            for t in range(steps):
                emb = embeddings[t * segments // steps]
                if t % (steps // segments) == 0:
                    states = initial(emb, init_w, init_b, dec_units)
                h = tf.concat([self.dec_in[:, t], emb], 1)
                for k, (kernel, bias) in enumerate(cells):
                    h, states[k] = tf_lstm_step(h, states[k], kernel, bias)
                logits.append(tf.matmul(h, out_w) + out_b)
            self.logits = tf.stack(logits, axis=1)
        self.start()

    def reference(self, enc_inputs, z, dec_inputs):
        return self.run([self.mu, self.sigma, self.logits], {self.x: enc_inputs, self.z: z, self.dec_in: dec_inputs})
