"""NumPy version of tf.contrib.rnn.AttentionCellWrapper (TF 1.x), as Magenta's attention_rnn
and drum_kit use it, so imported checkpoints serve without TF.

One step: project [inputs, attns] to the inner cell's input size, run the inner cell, query
the last `attn_length` outputs with the concatenated new inner state (Bahdanau-style score
v . tanh(W_h h_i + W_q q)), then project [cell_output, new_attns] to the output, which is
also pushed onto the attention window. Weights are passed in already shaped as TF stores
them (kernel (in, out), bias (out,)); the 1x1 conv kernel attn_w is given as (attn_size,
attn_vec_size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# inner(x, state) -> (output, new_state, flat_state): flat_state is TF's nest.flatten(new_state)
# concatenated along features (c then h per layer), the attention query.
InnerCell = Callable[[np.ndarray, object], tuple[np.ndarray, object, np.ndarray]]


@dataclass
class AttentionWeights:
    input_kernel: np.ndarray   # (input_size + attn_size, input_size)
    input_bias: np.ndarray
    attn_w: np.ndarray         # (attn_size, attn_vec_size)
    attn_v: np.ndarray         # (attn_vec_size,)
    query_kernel: np.ndarray   # (flat_state_size, attn_vec_size)
    query_bias: np.ndarray
    output_kernel: np.ndarray  # (cell_output + attn_size, attn_size)
    output_bias: np.ndarray


@dataclass
class AttentionState:
    inner: object
    attns: np.ndarray    # (batch, attn_size)
    window: np.ndarray   # (batch, attn_length, attn_size), oldest first


def zero_state(inner: object, batch: int, attn_length: int, attn_size: int) -> AttentionState:
    return AttentionState(inner, np.zeros((batch, attn_size), np.float32),
                          np.zeros((batch, attn_length, attn_size), np.float32))


def attention_step(w: AttentionWeights, cell: InnerCell, x: np.ndarray,
                   state: AttentionState) -> tuple[np.ndarray, AttentionState]:
    projected = np.concatenate([x, state.attns], 1) @ w.input_kernel + w.input_bias
    cell_out, inner, query = cell(projected, state.inner)
    hidden = state.window @ w.attn_w                                   # (b, L, vec)
    y = query @ w.query_kernel + w.query_bias                          # (b, vec)
    scores = np.tanh(hidden + y[:, None, :]) @ w.attn_v                # (b, L)
    scores = np.exp(scores - scores.max(1, keepdims=True))
    weights = scores / scores.sum(1, keepdims=True)
    attns = np.einsum("bl,bls->bs", weights, state.window)
    output = np.concatenate([cell_out, attns], 1) @ w.output_kernel + w.output_bias
    window = np.concatenate([state.window[:, 1:], output[:, None, :]], 1)
    return output.astype(np.float32), AttentionState(inner, attns.astype(np.float32),
                                                     window.astype(np.float32))
