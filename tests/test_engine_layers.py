"""Keras/NumPy parity for the shared layers: same weights, same input, same outputs."""
import numpy as np
import pytest

from bridge.engine.layers import LSTM, Bidirectional, StackedLSTM, dense, gumbel, sample_categorical, softmax

keras = pytest.importorskip("keras")


def test_lstm_matches_keras_forward_and_reverse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype(np.float32)
    for backwards in (False, True):
        layer = keras.layers.LSTM(6, return_sequences=True, return_state=True, go_backwards=backwards)
        seq, h, c = layer(x)
        ours = LSTM(*layer.get_weights())
        out, (oh, oc) = ours.run(x, reverse=backwards)
        keras_seq = np.asarray(seq)
        if backwards:  # Keras returns the reversed sequence in processing order
            keras_seq = keras_seq[:, ::-1]
        assert np.abs(out - keras_seq).max() <= 1e-5
        assert np.abs(oh - np.asarray(h)).max() <= 1e-5
        assert np.abs(oc - np.asarray(c)).max() <= 1e-5


def test_lstm_keeps_keras_weights_and_halved_gates_change_no_bit():
    """The internal weights halve the sigmoid gates' columns (one tanh covers all four gates);
    halving is exact, so h and c are bit for bit the plain sigmoid formula's."""
    rng = np.random.default_rng(4)
    kernel, recurrent, bias = (rng.normal(size=s).astype(np.float32) for s in ((5, 24), (6, 24), (24,)))
    layer = LSTM(kernel, recurrent, bias)
    for ours, theirs in zip(layer.keras_weights(), (kernel, recurrent, bias)):
        assert np.array_equal(ours, theirs)
    x, h, c = (rng.normal(size=s).astype(np.float32) for s in ((3, 5), (3, 6), (3, 6)))
    z = x @ kernel + bias + h @ recurrent  # Keras' gate order i, f, c, o
    i, f, g, o = (1 / (1 + np.exp(-z[:, k * 6:(k + 1) * 6])) for k in range(4))
    g = np.tanh(z[:, 12:18])
    want_c = f * c + i * g
    got_h, (_, got_c) = layer.step(x, (h, c))
    assert np.abs(got_c - want_c).max() <= 1e-5 and np.abs(got_h - o * np.tanh(want_c)).max() <= 1e-5


def test_bidirectional_equals_two_separate_runs():
    """Both directions advance in one stacked call per step; the outputs are each direction's own."""
    rng = np.random.default_rng(5)
    fw, bw = (LSTM(rng.normal(size=(4, 32)), rng.normal(size=(8, 32)), rng.normal(size=32)) for _ in range(2))
    xs = rng.normal(size=(3, 9, 4)).astype(np.float32)
    steps = []
    out, h_fw, h_bw = Bidirectional(fw, bw).run(xs, on_step=lambda: steps.append(1))
    out_fw, (want_fw, _) = fw.run(xs)
    out_bw, (want_bw, _) = bw.run(xs, reverse=True)
    assert np.abs(out - np.concatenate([out_fw, out_bw], axis=-1)).max() <= 1e-6
    assert np.abs(h_fw - want_fw).max() <= 1e-6 and np.abs(h_bw - want_bw).max() <= 1e-6
    assert len(steps) == 9  # the progress / cancel hook runs once a step
    import bridge.engine.layers as layers

    layers.BIDIRECTIONAL_FLOATS, kept = 2 * 9 * 32, layers.BIDIRECTIONAL_FLOATS  # one row a pass
    try:
        sliced, s_fw, s_bw = Bidirectional(fw, bw).run(xs)
        none, n_fw, _ = Bidirectional(fw, bw).run(xs, outputs=False)
    finally:
        layers.BIDIRECTIONAL_FLOATS = kept
    assert np.array_equal(sliced, out) and np.array_equal(s_fw, h_fw) and np.array_equal(s_bw, h_bw)
    assert none is None and np.array_equal(n_fw, h_fw)
    layers.TOGETHER_BYTES, kept = 0, layers.TOGETHER_BYTES  # kernels too big to share the cache: one after the other
    try:
        apart, a_fw, a_bw = Bidirectional(fw, bw).run(xs)
    finally:
        layers.TOGETHER_BYTES = kept
    assert np.abs(apart - out).max() <= 1e-6 and np.abs(a_fw - h_fw).max() <= 1e-6 and np.abs(a_bw - h_bw).max() <= 1e-6


def test_gumbel_argmax_draws_the_tempered_softmax():
    logits = np.log(np.array([0.1, 0.6, 0.3], np.float32))
    for temperature in (1.0, 0.5):
        noise = gumbel(np.random.default_rng(6), (20000, 3))
        draws = (logits / temperature + noise).argmax(axis=-1)
        want = softmax(logits[None], temperature)[0]
        assert np.abs(np.bincount(draws, minlength=3) / len(draws) - want).max() < 0.015
    assert np.array_equal(gumbel(np.random.default_rng(7), (4, 5)), gumbel(np.random.default_rng(7), (4, 5)))


def test_stacked_step_equals_run():
    rng = np.random.default_rng(1)
    layers = [LSTM(rng.normal(size=(4, 32)), rng.normal(size=(8, 32)), rng.normal(size=32)),
              LSTM(rng.normal(size=(8, 32)), rng.normal(size=(8, 32)), rng.normal(size=32))]
    stack = StackedLSTM(layers)
    xs = rng.normal(size=(2, 5, 4)).astype(np.float32)
    full, _ = stack.run(xs)
    states = stack.zero_state(2)
    for t in range(5):
        y, states = stack.step(xs[:, t], states)
        assert np.abs(y - full[:, t]).max() <= 1e-5


def test_dense_and_softmax_match_keras():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    layer = keras.layers.Dense(3)
    y = np.asarray(layer(x))
    kernel, bias = layer.get_weights()
    assert np.abs(dense(x, kernel, bias) - y).max() <= 1e-5
    probs = softmax(y, 0.5)
    ref = np.asarray(keras.activations.softmax(keras.ops.convert_to_tensor(y / 0.5)))
    assert np.abs(probs - ref).max() <= 1e-6


def test_sampling_follows_probabilities_and_seed():
    probs = np.tile(np.array([[0.1, 0.6, 0.3]]), (20000, 1))
    draws = sample_categorical(probs, np.random.default_rng(3))
    freq = np.bincount(draws, minlength=3) / len(draws)
    assert np.abs(freq - probs[0]).max() < 0.02
    again = sample_categorical(probs, np.random.default_rng(3))
    assert (draws == again).all()
