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
# packs w on every x @ w call, so 2-16 rows cost 2-3x what one row does. Products with a
# narrow slice of w's columns go to its small-matrix kernel, which packs nothing; so w is kept
# as contiguous blocks of BLOCK columns [N / BLOCK, K, BLOCK] and multiplied by one stacked
# np.matmul, which loops over the blocks in C. Measured ms, x @ w against the blocks, B rows:
#   [256, 1536]  B = 4: 0.101 / 0.028;  B = 8: 0.123 / 0.052;  B = 16: 0.147 / 0.096
#   [512, 2176]  B = 2: 0.464 / 0.155;  B = 4: 0.472 / 0.156;  B = 16: 0.572 / 0.297
#   [2048, 8192] B = 4: 8.0 / 2.36;     B = 16: 10.6 / 7.8;    B = 32: 13.9 / 11.9
# One row costs the same either way; from about 128 rows (a whole sequence's input projection)
# one product is 10-30% faster, but that runs once a call, not once a step.
BLOCK = 64
# From 32 rows on, with K up to 512, the same blocks multiplied as halves of 32 columns (a view:
# each half read with a row stride of 64, no second copy) are faster still; from K = 1024 on
# they are slower. Measured ms, halves against whole blocks:
#   [512, 2098]  B = 24: 0.484 / 0.474;  B = 32: 0.632 / 0.758;  B = 48: 0.866 / 0.967
#   [512, 2560]  B = 32: 0.651 / 0.943;  [256, 1536] B = 32: 0.203 / 0.198
#   [1024, 4096] B = 32: 3.31 / 3.05;    [2048, 8192] B = 32: 16.1 / 13.6
HALVES_ROWS, HALVES_MAX_K = 32, 512


class Product:
    """x [B, K] @ w [K, N] for a fixed w (an LSTM kernel, the decoder's fused recurrent and
    output kernel), in column blocks OpenBLAS multiplies without packing (see BLOCK).

    `stacked` joins equal-shaped products into one whose call takes x [S, B, K] and returns
    [S, B, N]: the two directions of a bidirectional layer advance in one call per step."""

    def __init__(self, w: np.ndarray) -> None:
        w = np.asarray(w, np.float32)
        k, self.n = w.shape
        padded = np.pad(w, ((0, 0), (0, -self.n % BLOCK)))
        self.blocks = np.ascontiguousarray(padded.reshape(k, -1, BLOCK).transpose(1, 0, 2))

    @classmethod
    def stacked(cls, products: list["Product"]) -> "Product":
        joined = cls.__new__(cls)
        joined.n = products[0].n
        joined.blocks = np.stack([p.blocks for p in products])
        return joined

    def columns(self, stop: int) -> "Product":
        """The product by w[:, :stop], sharing this one's memory (a kernel fused with others
        into one product stays one copy)."""
        view = Product.__new__(Product)
        view.n = stop
        view.blocks = self.blocks[..., :-(-stop // BLOCK), :, :]
        return view

    @property
    def matrix(self) -> np.ndarray:
        """w itself [K, N] ([S, K, N] when stacked; a copy: for building tables once, not for every step)."""
        *lead, _, k, _ = self.blocks.shape
        return np.swapaxes(self.blocks, -3, -2).reshape(*lead, k, -1)[..., :self.n]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Written block by block into a [..., B, N / BLOCK, BLOCK] buffer: read as [..., B, N], no copy.
        lead, (blocks, k) = x.shape[:-1], self.blocks.shape[-3:-1]
        if x.ndim == 2 and len(x) >= HALVES_ROWS and k <= HALVES_MAX_K:
            half = BLOCK // 2
            out = np.empty((len(x), blocks, 2, half), np.float32)
            halves = self.blocks.reshape(blocks, k, 2, half).transpose(0, 2, 1, 3)  # [N / BLOCK, 2, K, half]
            np.matmul(x, halves, out=out.transpose(1, 2, 0, 3))
        else:
            out = np.empty((*lead, blocks, BLOCK), np.float32)
            np.matmul(x[..., None, :, :], self.blocks, out=np.swapaxes(out, -2, -3))
        return out.reshape(*lead, -1)[..., :self.n]


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    y = x @ kernel
    return y if bias is None else y + bias


def _gate_order(units: int) -> np.ndarray:
    """Columns of Keras' gates (i, f, c, o) in the order (i, f, o, c): the three sigmoid gates first."""
    return np.r_[0:2 * units, 3 * units:4 * units, 2 * units:3 * units]


class LSTM:
    """One LSTM layer. `step` advances one time step; `run` a whole sequence.

    Takes Keras' weights (gates i, f, c, o) and keeps them as (i, f, o, c) with the three
    sigmoid gates' columns halved, because sigmoid(x) = 0.5 + 0.5 tanh(x / 2): one tanh call
    then covers all four gates. Sampling runs the cell once per step, and there the number of
    NumPy calls, not arithmetic, is the cost. Halving is exact in binary floating point, so the
    outputs are bit for bit those of the unscaled weights. `kernel`, `recurrent_kernel` and
    `bias` are in that internal form; code that projects inputs itself must use them (and
    `activate`), not the raw bundle arrays; `keras_weights` gives those back.
    """

    def __init__(self, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray) -> None:
        units = np.shape(recurrent_kernel)[0]
        order = _gate_order(units)
        self.scale = np.r_[np.full(3 * units, 0.5), np.ones(units)].astype(np.float32)
        self.input = Product(np.asarray(kernel, np.float32)[:, order] * self.scale)
        self.recurrent = Product(np.asarray(recurrent_kernel, np.float32)[:, order] * self.scale)
        self.bias = np.asarray(bias, np.float32)[order] * self.scale
        self.units = units

    @property
    def kernel(self) -> np.ndarray:
        return self.input.matrix

    @property
    def recurrent_kernel(self) -> np.ndarray:
        return self.recurrent.matrix

    def keras_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kernel, recurrent_kernel, bias) as Keras and a bundle store them."""
        order = _gate_order(self.units)  # swapping c and o is its own inverse
        return tuple(w[..., order] for w in (self.kernel / self.scale, self.recurrent_kernel / self.scale,
                                             self.bias / self.scale))

    def zero_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32)

    def _cell(self, x_proj: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.activate(x_proj + self.recurrent(h), c)

    def activate(self, z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New (h, c) from the whole pre-activation z = x @ kernel + bias + h @ recurrent_kernel
        [..., 4H], for callers that compute h @ recurrent_kernel themselves (fused with another
        matmul). z is overwritten: pass a fresh sum, never a table or a state."""
        u = self.units
        np.tanh(z, out=z)
        gates = z[..., :3 * u]
        gates *= 0.5
        gates += 0.5
        c = gates[..., u:2 * u] * c
        c += gates[..., :u] * z[..., 3 * u:]
        h = np.tanh(c)
        h *= gates[..., 2 * u:]
        return h, c

    def step(self, x: np.ndarray, state: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        return self.step_projected(self.input(x) + self.bias, state)

    def step_projected(self, x_proj: np.ndarray, state: tuple[np.ndarray, np.ndarray]):
        """One step from an input already projected (x @ kernel + bias), e.g. by a table look-up."""
        h, c = self._cell(x_proj, *state)
        return h, (h, c)

    def project(self, xs: np.ndarray) -> np.ndarray:
        """x @ kernel + bias for every step of xs [B, T, D] in one matmul: [B, T, 4H]."""
        batch, steps = xs.shape[:2]
        return (self.input(xs.reshape(batch * steps, -1).astype(np.float32)) + self.bias).reshape(batch, steps, -1)

    def run(self, xs: np.ndarray, state: tuple[np.ndarray, np.ndarray] | None = None,
            reverse: bool = False, on_step: Callable[[], None] | None = None
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Outputs [B, T, H] and the final state; the input projection is one matmul for all steps.

        `on_step` is called after every step: a tool passes its progress report, the point where
        a cancelled request stops, so a long sequence never runs on unchecked."""
        batch, steps = xs.shape[:2]
        h, c = state if state is not None else self.zero_state(batch)
        proj = self.project(xs)
        out = np.empty((batch, steps, self.units), np.float32)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            h, c = self._cell(proj[:, t], h, c)
            out[:, t] = h
            if on_step is not None:
                on_step()
        return out, (h, c)


# Rows a bidirectional layer advances together, so that both directions' input projections for
# a long batch (Groove reads a 10,000-note clip as hundreds of windows) stay near 16 MB.
BIDIRECTIONAL_FLOATS = 1 << 22
# The two directions advance together only while both recurrent kernels fit in a core's L2
# cache together (2 MB here): alternating between two kernels that do not fit reloads them
# every step, and running one direction after the other, as Keras does, is faster. Measured ms,
# together / one after the other, B rows x T steps:
#   192 units (1.2 MB), 2 x 48: 1.75 / 2.22;   256 units (2 MB), 2 x 64: 4.84 / 3.31
#   256 units, 4 x 32: 3.02 / 2.45;             512 units (8 MB), 4 x 32: 14.5 / 12.4
TOGETHER_BYTES = 3 << 19


class Bidirectional:
    """A bidirectional layer: a forward and a backward LSTM over the same input, from zero states.

    Small layers advance both directions together, one stacked matmul and one activation per
    step, so an encoder costs the NumPy calls of one direction (step s runs forward time s and
    backward time T - 1 - s); bigger ones run one direction after the other (TOGETHER_BYTES).
    Which of the two is decided, and the stacked kernels built, once at load."""

    def __init__(self, fw: LSTM, bw: LSTM) -> None:
        self.fw, self.bw = fw, bw
        fits = (bw.kernel.shape == fw.kernel.shape and bw.units == fw.units
                and 2 * fw.recurrent.blocks.nbytes <= TOGETHER_BYTES)
        self.together = Product.stacked([fw.recurrent, bw.recurrent]) if fits else None
        if self.together is not None:  # each direction's own kernel becomes a view of the stacked one
            fw.recurrent.blocks, bw.recurrent.blocks = self.together.blocks

    def run(self, xs: np.ndarray, on_step: Callable[[], None] | None = None,
            outputs: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Outputs [B, T, 2H] for xs [B, T, D] (forward then backward; None unless `outputs`)
        and each direction's last h [B, H]. `on_step` is called after every step, as
        `LSTM.run` calls it."""
        fw, bw = self.fw, self.bw
        if self.together is None:
            out_fw, (h_fw, _) = fw.run(xs, on_step=on_step)
            out_bw, (h_bw, _) = bw.run(xs, reverse=True, on_step=on_step)
            return np.concatenate([out_fw, out_bw], axis=-1) if outputs else None, h_fw, h_bw
        batch, steps = xs.shape[:2]
        units = fw.units
        rows = max(1, BIDIRECTIONAL_FLOATS // (2 * steps * 4 * units))
        if batch > rows:  # in slices of rows, each slice its own pass
            parts = [self.run(xs[at:at + rows], on_step, outputs) for at in range(0, batch, rows)]
            out = np.concatenate([p[0] for p in parts]) if outputs else None
            return out, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
        proj = np.empty((batch, 2, steps, 4 * units), np.float32)
        proj[:, 0] = fw.project(xs)
        proj[:, 1] = bw.project(xs)[:, ::-1]  # backward in its own time order
        h, c = np.zeros((2, batch, units), np.float32), np.zeros((2, batch, units), np.float32)
        out = np.empty((steps, 2, batch, units), np.float32) if outputs else None
        for s in range(steps):
            h, c = fw.activate(np.swapaxes(proj[:, :, s], 0, 1) + self.together(h), c)
            if out is not None:
                out[s] = h
            if on_step is not None:
                on_step()
        if out is None:
            return None, h[0], h[1]
        out[:, 1] = out[::-1, 1]
        return out.transpose(2, 0, 1, 3).reshape(batch, steps, 2 * units), h[0], h[1]


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
    z = logits if temperature == 1.0 else logits * np.float32(1.0 / max(temperature, 1e-6))
    return sample_categorical(np.exp(z - z.max(axis=-1, keepdims=True)), rng)


def gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Gumbel noise, float32: argmax(logits / temperature + noise) is one draw from
    softmax(logits / temperature). A decoder draws a whole call's noise at once, so each step's
    draw is one add and one argmax instead of an exp, a cumulative sum and a search."""
    g = rng.random(shape, dtype=np.float32)
    with np.errstate(divide="ignore"):  # u = 0 gives -inf: that class is never drawn
        np.log(g, out=g)
        np.negative(g, out=g)
        np.log(g, out=g)
    return np.negative(g, out=g)


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
