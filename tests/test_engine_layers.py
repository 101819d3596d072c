"""Keras/NumPy parity for the shared layers: same weights, same input, same outputs."""
import numpy as np
import pytest

from bridge.engine.layers import LSTM, StackedLSTM, dense, sample_categorical, softmax

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
