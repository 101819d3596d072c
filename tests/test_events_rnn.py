"""Events RNN: Keras/NumPy parity per model, and the lookback features both sides share."""
import numpy as np
import pytest

from bridge.encodings.features import EventFeatures
from bridge.encodings.melody import MelodyEncoding
from bridge.meter import MeterGrid
from bridge.models.configs import CONFIGS

keras = pytest.importorskip("keras")
family = pytest.importorskip("bridge.train.families.events_rnn")


def _tiny(name: str):
    return CONFIGS[name].with_hparams({"units": 24, "dropout": 0.3})


GRIDS = {"4/4": MeterGrid.of("4/4"), "6/8": MeterGrid.of("6/8"), "3/2": MeterGrid.of("3/2")}


@pytest.mark.parametrize("name,classes,meter", [("melody_rnn", 39, "6/8"), ("melody_rnn", 39, "3/2"),
                                                ("drums_rnn", 512, "4/4")])
def test_keras_and_numpy_logits_match(name, classes, meter):
    config = _tiny(name)
    rng = np.random.default_rng(0)
    events = rng.integers(0, classes, size=(3, 40))
    grid = GRIDS[meter]
    grids = np.repeat(grid.encode()[None], 3, axis=0) if config.hparams["meter"] else None
    batch = family.prepare_batch({"events": events, **({"grid": grids} if grids is not None else {})}, config)
    model = family.build(config)
    model(batch)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    keras_logits = np.asarray(model(batch, training=False))
    serving = family.serving_model(model, config)
    assert np.abs(serving.logits(events[:, :-1], grids) - keras_logits).max() <= 1e-4
    # Sampling's step path (table look-ups for the first layer, carried state) must give the
    # same logits as Keras over the whole sequence.
    _, states = serving.rnn.run(serving.features(events[:, :20], grids=grids))
    for t in range(20, 39):
        assert np.abs(serving.advance(events, t, states, grid) - keras_logits[:, t]).max() <= 1e-4


def test_padded_steps_weigh_nothing_in_the_loss():
    config = _tiny("melody_rnn")
    rng = np.random.default_rng(1)
    events = rng.integers(0, 39, size=(2, 30))
    grids = np.repeat(GRIDS["6/8"].encode()[None], 2, axis=0)
    model = family.build(config)
    short = family.prepare_batch({"events": events, "grid": grids, "length": np.array([30, 12])}, config)
    model(short)
    changed = events.copy()
    changed[1, 12:] = 0  # what lies past a row's length must not change its loss
    again = family.prepare_batch({"events": changed, "grid": grids, "length": np.array([30, 12])}, config)
    first, second = model.test_step(short), model.test_step(again)
    assert float(first["loss"]) == pytest.approx(float(second["loss"]), abs=1e-6)
    assert short["weights"][1].sum() == 11 and short["weights"][0].sum() == 29


def test_features_look_back_one_and_two_bars():
    enc = MelodyEncoding()
    features = EventFeatures(enc, (16, 32), 5)
    events = np.zeros((1, 40), np.int64)
    events[0, 3] = 10
    events[0, 19] = 10
    x = features(events)
    v = enc.num_classes
    assert x.shape == (1, 40, features.size) and features.size == v + 2 * (v + 1) + 5
    assert x[0, 19, 10] == 1 and x[0, 19, v + 10] == 1  # current event, and the same event 16 steps back
    assert x[0, 19, 2 * v] == 1  # repeat flag for one bar back
    assert x[0, 35, 2 * v + 1 + 10] == 1 and x[0, 35, v + 10] == 1  # 32 back sees step 3, 16 back sees 19
    assert not x[0, 10, v:2 * v].any()  # before the start: silence, no lookback
    counters = x[0, :, -5:]
    assert (counters[5] == [1, -1, 1, -1, -1]).all()  # step 5 = 0b00101
    assert (features(events, start=30) == x[:, 30:]).all()


def test_step_projection_equals_features_times_kernel():
    from bridge.encodings.drums import DrumEncoding

    rng = np.random.default_rng(4)
    for features, classes in ((EventFeatures(MelodyEncoding(), (16, 32), 5), 39), (EventFeatures(DrumEncoding(), (16, 32), 6), 512)):
        kernel = rng.normal(size=(features.size, 12)).astype(np.float32)
        bias = rng.normal(size=12).astype(np.float32)
        history = rng.integers(0, classes, size=(3, 80))
        history[:, 50] = history[:, 34]  # a repeat of one bar back
        project = features.projection(kernel, bias)
        for t in (0, 5, 16, 33, 50, 79):
            expected = features(history[:, :t + 1], start=t)[:, 0] @ kernel + bias
            assert np.abs(project(history, t) - expected).max() <= 1e-4
