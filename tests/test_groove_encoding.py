"""The GrooVAE tensor encoding and the groove converter, on synthetic performances."""
import numpy as np
from hypothesis import given, settings, strategies as st

from bridge.clip import Clip, Note, TimeSignature
from bridge.data.converters.groove import GrooveConverter
from bridge.encodings import groove as enc
from bridge.midi_io import read_midi_tracks, write_midi


def test_offset_sign_early_is_positive():
    step, offset = enc.grid_position(1.0 - 0.05)  # 0.2 of a step early
    assert step == 4 and np.isclose(offset, 0.4)
    step, offset = enc.grid_position(1.0 + 0.05)
    assert step == 4 and np.isclose(offset, -0.4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 31), st.floats(-0.49, 0.49), st.integers(0, 8), st.integers(1, 127)),
                max_size=40))
def test_encode_decode_round_trip(cells):
    """One note per (step, class): decoding gives back its onset and velocity."""
    unique = {(s, k): (s, jitter, k, v) for s, jitter, k, v in cells}
    hits = [enc.Hit(max(0.0, (s + jitter) / 4), k, v) for s, jitter, k, v in unique.values()]
    tensor = enc.encode(hits, 32)
    back = {(round(h.start * 4), h.drum_class): h for h in enc.decode(tensor)}
    assert len(back) == len(hits)
    for hit in hits:
        got = back[(round(hit.start * 4), hit.drum_class)]
        assert abs(got.start - hit.start) < 1e-5 and got.velocity == hit.velocity


def test_loudest_note_of_a_class_in_a_step_wins():
    tensor = enc.encode([enc.Hit(1.0, 2, 40), enc.Hit(1.04, 2, 120), enc.Hit(0.98, 2, 80)], 8)
    hits, velocities, offsets = enc.split(tensor)
    assert hits.sum() == 1 and np.isclose(velocities[4, 2], 120 / 127) and np.isclose(offsets[4, 2], -0.32)


def test_encoder_inputs_hide_the_feel():
    tensor = enc.encode([enc.Hit(0.03, 0, 99), enc.Hit(0.5, 1, 60)], 32)
    human = enc.encoder_inputs(tensor[None], "humanize")
    assert human.shape == (1, 32, 9) and set(np.unique(human)) == {0.0, 1.0}
    assert enc.encoder_inputs(tensor[None], "tap").shape == (1, 32, 3)


def test_windows_cover_any_length_one_bar_apart():
    assert enc.windows(32) == [0] and enc.windows(20) == [0]
    for steps in (33, 64, 112, 113):
        starts = enc.windows(steps)
        assert starts[0] == 0 and starts[-1] + 32 >= steps and np.all(np.diff(starts) == 16)


def test_converter_makes_two_bar_4_4_windows_with_tempo(tmp_path):
    rng = np.random.default_rng(0)
    notes = [Note(int(rng.choice([36, 38, 42])), i / 4 + rng.uniform(-0.03, 0.03) + 0.05, 0.1, int(rng.integers(30, 127)))
             for i in range(64)]
    write_midi(tmp_path / "a.mid", [Clip(tuple(notes), 16.0, tempo=93.0)], drums=True)
    write_midi(tmp_path / "b.mid", [Clip(tuple(notes), 16.0, time_signature=TimeSignature(3, 4))], drums=True)
    converter = GrooveConverter()
    examples = converter.examples(read_midi_tracks(tmp_path / "a.mid"), {"path": "a.mid", "split": "train", "seed": 0})
    assert len(examples) == 3  # bars 1-2, 2-3, 3-4
    assert all(e["performance"].shape == (32, 27) and e["bpm"][0] == 93.0 for e in examples)
    assert examples[1]["performance"][:16].tolist() == examples[0]["performance"][16:].tolist()
    assert converter.examples(read_midi_tracks(tmp_path / "b.mid"), {"path": "b.mid", "split": "train", "seed": 0}) == []
    assert converter.stats["segment skipped: not 4/4"] == 1
