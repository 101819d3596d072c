"""The NumPy lookback encoder must match note_seq's own encoders exactly."""
import numpy as np
from note_seq import drums_encoder_decoder as nd
from note_seq import encoder_decoder as ned
from note_seq import melody_encoder_decoder as nm

from bridge.encodings.magenta_events import LookbackEncoder


def _check(ours: LookbackEncoder, theirs, events, indices) -> None:
    assert ours.input_size == theirs.input_size and ours.num_classes == theirs.num_classes
    for p in range(len(events)):
        np.testing.assert_array_equal(ours.input_at(indices, p), theirs.events_to_input(events, p))
        assert ours.label_at(indices, p) == theirs.events_to_label(events, p)
    for c in range(theirs.num_classes):
        expected = theirs.class_index_to_event(c, events)
        assert ours.class_to_event(c, indices) == theirs._one_hot_encoding.encode_event(expected)


def test_lookback_melody_matches_note_seq() -> None:
    rng = np.random.default_rng(0)
    onehot = nm.MelodyOneHotEncoding(48, 84)
    theirs = ned.LookbackEventSequenceEncoderDecoder(onehot)
    ours = LookbackEncoder(38)
    for length in (5, 20, 70):
        pool = [-2, -1, 50, 60, 62]
        events = [int(rng.choice(pool)) for _ in range(length)]
        _check(ours, theirs, events, [onehot.encode_event(e) for e in events])


def test_drum_kit_matches_note_seq() -> None:
    rng = np.random.default_rng(1)
    onehot = nd.MultiDrumOneHotEncoding()
    theirs = ned.LookbackEventSequenceEncoderDecoder(onehot, [], 6)
    ours = LookbackEncoder(512, (), 6)
    pitches = [36, 38, 42, 46, 49, 51]
    events = [frozenset(int(p) for p in pitches if rng.random() < 0.3) for _ in range(80)]
    _check(ours, theirs, events, [onehot.encode_event(e) for e in events])


def test_key_melody_matches_note_seq() -> None:
    from note_seq import melodies_lib

    from bridge.encodings.magenta_events import KeyMelodyEncoder

    rng = np.random.default_rng(2)
    theirs = nm.KeyMelodyEncoderDecoder(48, 84)
    ours = KeyMelodyEncoder()
    onehot = nm.MelodyOneHotEncoding(48, 84)
    assert ours.input_size == theirs.input_size == 74 and ours.num_classes == theirs.num_classes
    for length in (5, 40, 70):
        pool = [-2, -2, -1, 50, 55, 60, 62, 64, 71]
        events = [int(rng.choice(pool)) for _ in range(length)]
        melody = melodies_lib.Melody(events)
        indices = [onehot.encode_event(e) for e in events]
        for p in range(length):
            np.testing.assert_array_equal(ours.input_at(indices, p), theirs.events_to_input(melody, p))
            assert ours.label_at(indices, p) == theirs.events_to_label(melody, p)
        for c in range(theirs.num_classes):
            assert ours.class_to_event(c, indices) == onehot.encode_event(theirs.class_index_to_event(c, melody))
