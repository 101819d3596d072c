"""Drumify on synthetic clips with a random-weight GrooVAE tap model."""
import numpy as np

from bridge.clip import Clip, Note
from bridge.drums import DrumMap
from bridge.encodings import groove as enc
from groove_helpers import ctx, model, params

TAP = model("tap")


def bass_line(bars: int) -> Clip:
    """A syncopated, polyphonic line: any clip drumify may meet."""
    notes = [Note(36 + (i % 5), i * 0.75, 0.5, 70 + (i * 13) % 50) for i in range(int(bars * 4 / 0.75))]
    notes += [Note(48, b * 4.0, 2.0, 100) for b in range(bars)]
    return Clip(tuple(notes), length=4.0 * bars, tempo=128.0, name="bass")


def test_variations_are_drum_clips_of_the_input_length():
    clip = bass_line(7)
    outs = TAP.drumify(clip, params(variations=3, drum_map=DrumMap.parse("24,25,26,27,28,29,30,31,32").to_text()), ctx())
    assert [c.name for c in outs] == [f"drumify {i}/3 bass" for i in range(1, 4)]
    for out in outs:
        assert out.length == 28.0 and out.tempo == 128.0
        assert out.notes and all(24 <= n.pitch <= 32 for n in out.notes)
        assert all(0.0 <= n.start < clip.length for n in out.notes)
    assert any(n.start >= 24.0 for n in outs[0].notes)  # the last of 7 bars is drummed too


def test_same_seed_same_drums():
    clip = bass_line(4)
    first = TAP.drumify(clip, params(seed=11, variations=2), ctx())
    again = TAP.drumify(clip, params(seed=11, variations=2), ctx())
    other = TAP.drumify(clip, params(seed=12, variations=2), ctx())
    assert [c.notes for c in first] == [c.notes for c in again] != [c.notes for c in other]


def test_the_encoder_hears_onsets_not_pitches():
    """Transposing the input changes nothing: drumify reads rhythm only."""
    clip = bass_line(2)
    up = Clip(tuple(Note(n.pitch + 12, n.start, n.duration, n.velocity) for n in clip.notes), clip.length)
    assert [c.notes for c in TAP.drumify(clip, params(), ctx())] == [c.notes for c in TAP.drumify(up, params(), ctx())]


def test_tap_channel_takes_the_loudest_onset_per_step():
    perf = enc.encode([enc.Hit(0.0, 0, 50), enc.Hit(0.02, 3, 110), enc.Hit(1.0, 1, 90)], 8)
    taps = enc.tap(perf)
    assert taps[0, 0] == 1 and np.isclose(taps[0, 1], 110 / 127) and np.isclose(taps[0, 2], perf[0, 18 + 3])
    assert taps[4, 0] == 1 and np.isclose(taps[4, 1], 90 / 127)
    assert taps[[1, 2, 3, 5, 6, 7]].sum() == 0
