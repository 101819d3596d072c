"""The model-card metrics on hand-made tensors, so the numbers in the card mean what they say."""
import numpy as np

from bridge.train.eval_groove import f1_per_class, position_means, timing_errors


def test_timing_error_is_in_ms_at_the_window_tempo_over_true_hits_only():
    truth = np.zeros((2, 32, 27), np.float32)
    truth[:, 0, 0], truth[:, 0, 9], truth[:, 0, 18] = 1.0, 0.5, 0.2
    pred = truth.copy()
    pred[:, 0, 18] = 0.7  # half a step late-ward of the truth: 0.5 * step / 2
    pred[:, 0, 9] = 0.5 + 10 / 127
    pred[:, 5, 9:] = 0.9  # where nothing is played, nothing is scored
    ms, vel = timing_errors(pred, truth, np.array([[120.0], [60.0]], np.float32))
    assert np.isclose(ms, (31.25 + 62.5) / 2) and np.isclose(vel, 10.0, atol=1e-4)


def test_f1_per_class_and_pooled():
    truth = np.zeros((1, 4, 9), bool)
    truth[0, :, 0] = True
    pred = np.zeros_like(truth)
    pred[0, :2, 0] = True
    pred[0, 0, 1] = True
    scores = f1_per_class(pred, truth)
    assert np.isclose(scores[0], 2 * 2 / (2 + 4)) and scores[1] == 0.0 and scores[2] == 0.0
    assert np.isclose(scores[-1], 2 * 2 / (3 + 4))


def test_position_means_average_hits_only_per_bar_position():
    train = np.zeros((2, 32, 27), np.float32)
    train[0, 4, 1], train[0, 4, 10], train[0, 4, 19] = 1.0, 0.4, 0.2
    train[1, 20, 1], train[1, 20, 10], train[1, 20, 19] = 1.0, 0.8, -0.4
    table = position_means(train)
    assert table.shape == (16, 27)
    assert np.isclose(table[4, 10], 0.6) and np.isclose(table[4, 19], -0.1) and table[5].sum() == 0


def test_likely_hits_baseline_reads_what_the_train_windows_play_with_and_without_a_tap():
    from bridge.train.eval_groove import likely_hits

    train = np.zeros((4, 16, 27), np.float32)
    train[:, 0, 0] = 1.0  # a kick on every downbeat: tapped there
    train[:, 2, 2] = 1.0  # a hat on every second step of the first beat
    table = likely_hits(train, 16)
    assert table.shape == (16, 18)
    assert table[0, 9 + 0] == 1.0 and table[0, 0] == 0.0  # kick when a tap is there
    assert table[2, 9 + 2] == 1.0 and table[5].sum() == 0.0
