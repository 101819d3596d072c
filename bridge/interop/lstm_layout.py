"""LSTM weights between TensorFlow's cell layout and ours (Keras').

TF's BasicLSTMCell / LSTMBlockCell / magenta.js keep one kernel [W_x; W_h] of shape [in + H, 4H]
with gates (i, j, f, o) and add forget_bias = 1.0 to f at run time. Ours (bridge.engine.layers)
keeps kernel [in, 4H] and recurrent_kernel [H, 4H] with gates (i, f, c, o), and the bias holds
the forget bias already. Both directions live here so import and export can never disagree.
"""
from __future__ import annotations

import numpy as np

FORGET_BIAS = 1.0
# Block order (i, j, f, o) -> (i, f, j, o); swapping the middle two blocks is its own inverse.
_SWAP = (0, 2, 1, 3)


def _swap_gates(array: np.ndarray) -> np.ndarray:
    blocks = np.split(np.asarray(array, np.float32), 4, axis=-1)
    return np.concatenate([blocks[k] for k in _SWAP], axis=-1)


def from_tf(kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kernel, recurrent_kernel, bias) in our layout from a TF cell's kernel and bias."""
    units = bias.shape[0] // 4
    kernel = _swap_gates(kernel)
    bias = _swap_gates(bias).copy()
    bias[units:2 * units] += FORGET_BIAS
    return kernel[:-units], kernel[-units:], bias


def to_tf(kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A TF cell's (kernel, bias) from our layout: the inverse of from_tf."""
    units = recurrent_kernel.shape[0]
    bias = np.asarray(bias, np.float32).copy()
    bias[units:2 * units] -= FORGET_BIAS
    return _swap_gates(np.concatenate([kernel, recurrent_kernel], axis=0)), _swap_gates(bias)


def swap_state_halves(units: list[int]) -> np.ndarray:
    """Column order that turns a flat initial state of per-layer (h, c) halves into TF's
    LSTMStateTuple (c, h) halves, or back: the swap is its own inverse."""
    index, at = [], 0
    for u in units:
        index += [np.arange(at + u, at + 2 * u), np.arange(at, at + u)]
        at += 2 * u
    return np.concatenate(index)
