"""NumPy layers matching Keras exactly, so a bundle exported from Keras plays the same notes.

Weights keep Keras' layout: LSTM kernel [in, 4H], recurrent kernel [H, 4H], bias [4H] with
gate order (i, f, c, o) and sigmoid/tanh activations. Everything is batched over the first
axis, because variations are sampled together in one batch, never one call each.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    # The tanh form never overflows and is one ufunc pass: the sampling loop calls this per step.
    return 0.5 + 0.5 * np.tanh(0.5 * x)


# x @ w for a few rows through a fixed w: OpenBLAS (0.3.31 on this 2-core EPYC, one thread)
# packs w on every x @ w call, so 2-16 rows cost 2-3x what one row does, while its small-matrix
# kernel, which packs nothing, takes calls of up to about 2^18 multiply-adds per output block.
# So w is kept transposed [N, K] and multiplied in blocks of rows of w.T small enough for that
# kernel. Measured ms, x @ w against blocks, B rows:
#   [256, 1536] B = 4: 0.099 / 0.038; B = 8: 0.129 / 0.073
#   [512, 2048] B = 2: 0.360 / 0.154; B = 4: 0.374 / 0.163; B = 8: 0.415 / 0.244
#   [2048, 8192] B = 4: 7.98 / 2.58; B = 16: 10.3 / 7.2; B = 32: 12.2 / 23.5
# (one row: the same either way). Past BLOCKED_MAX rows x K the blocks get too thin and one
# product wins again.
BLOCK_MACS = 1 << 18
BLOCKED_MAX = 1 << 15


class Product:
    """x [B, K] @ w [K, N] for a fixed w (a recurrent kernel, an output layer), multiplied the
    way measured fastest for the number of rows (see BLOCK_MACS). Returns a [B, N] view of an
    [N, B] array: element-wise NumPy works on it as on any other."""

    def __init__(self, w: np.ndarray) -> None:
        self.wt = np.ascontiguousarray(np.asarray(w, np.float32).T)

    @property
    def matrix(self) -> np.ndarray:
        """w itself [K, N] (a view, no copy)."""
        return self.wt.T

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, k = self.wt.shape
        rows = len(x)
        if rows * k > BLOCKED_MAX:
            return (self.wt @ x.T).T
        block = max(16, BLOCK_MACS // (rows * k) // 16 * 16)
        out = np.empty((n, rows), np.float32)
        xt = x.T
        for i in range(0, n, block):
            np.matmul(self.wt[i:i + block], xt, out=out[i:i + block])
        return out.T


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    y = x @ kernel
    return y if bias is None else y + bias


class LSTM:
    """One LSTM layer. `step` advances one time step; `run` a whole sequence.

    Takes Keras' weights (gates i, f, c, o) and keeps them as (i, f, o, c), so that one
    sigmoid call covers three gates: sampling runs the cell once per step, and there the
    number of NumPy calls, not arithmetic, is the cost. `kernel`, `recurrent_kernel` and `bias`
    are in that internal order; code that projects inputs itself must use them, not the raw
    bundle arrays.
    """

    def __init__(self, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray) -> None:
        units = np.shape(recurrent_kernel)[0]
        order = np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]
        self.input = Product(np.asarray(kernel, np.float32)[:, order])
        self.recurrent = Product(np.asarray(recurrent_kernel, np.float32)[:, order])
        self.bias = np.asarray(bias, np.float32)[order]
        self.units = units

    @property
    def kernel(self) -> np.ndarray:
        return self.input.matrix

    @property
    def recurrent_kernel(self) -> np.ndarray:
        return self.recurrent.matrix

    def zero_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32)

    def _cell(self, x_proj: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.activate(x_proj + self.recurrent(h), c)

    def activate(self, z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New (h, c) from the whole pre-activation z = x @ kernel + bias + h @ recurrent_kernel,
        for callers that compute h @ recurrent_kernel themselves (fused with another matmul)."""
        u = self.units
        gates = sigmoid(z[:, :3 * u])
        c = gates[:, u:2 * u] * c + gates[:, :u] * np.tanh(z[:, 3 * u:])
        return gates[:, 2 * u:] * np.tanh(c), c

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        return self.step_projected(self.input(x) + self.bias, state)

    def step_projected(self, x_proj: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        """One step from an input already projected (x @ kernel + bias), e.g. by a table look-up."""
        h, c = self._cell(x_proj, *state)
        return h, (h, c)

    def run(self, xs: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None,
            reverse: bool = False, on_step: Callable[[], None] | None = None
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Outputs [B, T, H] and the final state; the input projection is one matmul for all steps.

        `on_step` is called after every step: a tool passes its progress report, the point where
        a cancelled request stops, so a long sequence never runs on unchecked."""
        batch, steps = xs.shape[:2]
        h, c = state if state is not None else self.zero_state(batch)
        proj = (self.input(xs.reshape(batch * steps, -1).astype(np.float32)) + self.bias).reshape(batch, steps, -1)
        out = np.empty((batch, steps, self.units), np.float32)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            h, c = self._cell(proj[:, t], h, c)
            out[:, t] = h
            if on_step is not None:
                on_step()
        return out, (h, c)


class StackedLSTM:
    """Layers of LSTMs fed one into the next, as Magenta's MultiRNNCell."""

    def __init__(self, layers: list[LSTM]) -> None:
        self.layers = layers

    @classmethod
    def from_weights(cls, weights: dict[str, np.ndarray], layers: int, extra: tuple[str, ...] = ()) -> "StackedLSTM":
        """Layers `lstm_<i>/{kernel,recurrent_kernel,bias}` of a bundle's weights; a ValueError
        names every missing array, those of the `extra` names (e.g. the output layer) too."""
        parts = ("kernel", "recurrent_kernel", "bias")
        names = [f"lstm_{i}/{part}" for i in range(layers) for part in parts]
        missing = [n for n in names + list(extra) if n not in weights]
        if missing:
            raise ValueError(f"weights.npz lacks {', '.join(missing)}")
        return cls([LSTM(*(weights[f"lstm_{i}/{part}"] for part in parts)) for i in range(layers)])

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [layer.zero_state(batch) for layer in self.layers]

    def run(self, xs: np.ndarray, states=None, on_step: Callable[[], None] | None = None):
        states = states or self.zero_state(xs.shape[0])
        new_states = []
        for layer, state in zip(self.layers, states):
            xs, state = layer.run(xs, state, on_step=on_step)
            new_states.append(state)
        return xs, new_states

    def step(self, x: np.ndarray, states):
        new_states = []
        for layer, state in zip(self.layers, states):
            x, state = layer.step(x, state)
            new_states.append(state)
        return x, new_states


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / max(temperature, 1e-6)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sample_logits(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One draw per row from softmax(logits / temperature), as sample_categorical(softmax(...))
    draws, without the normalising sum and division: the draw scales by the total anyway, and
    a decoder samples once per step."""
    z = logits * np.float32(1.0 / max(temperature, 1e-6))
    return sample_categorical(np.exp(z - z.max(axis=-1, keepdims=True)), rng)


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a [B, K] probability matrix (rows need not sum to 1), vectorised
    over the batch."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((u > cdf).sum(axis=-1), probs.shape[-1] - 1)


def conv1d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, dilation: int = 1) -> np.ndarray:
    """Keras Conv1D with padding "same": x [B, T, C], kernel [K, C, H] (Keras' layout), bias [H].

    im2col: the K shifted copies of the zero-padded input side by side, then one matmul with
    the kernel read as [K * C, H], so a layer is one BLAS call however long the clip is.
    """
    taps, channels, units = kernel.shape
    batch, steps, _ = x.shape
    left = dilation * (taps - 1) // 2
    padded = np.zeros((batch, steps + dilation * (taps - 1), channels), np.float32)
    padded[:, left:left + steps] = x
    cols = np.concatenate([padded[:, k * dilation:k * dilation + steps] for k in range(taps)], axis=-1)
    return (cols.reshape(batch * steps, taps * channels) @ kernel.reshape(taps * channels, units)
            ).reshape(batch, steps, units) + bias
