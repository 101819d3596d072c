"""MusicVAE converters on synthetic MIDI: 4/4 windows one bar apart, offsets, augmentation."""
from __future__ import annotations

import numpy as np

from bridge.clip import Clip, Note, TimeSignature
from bridge.data.converters import get
from bridge.encodings.melody import FIRST_PITCH_EVENT
from bridge.midi_io import read_midi_tracks, write_midi


def score(tmp_path, notes, meter=(4, 4), drums=False, name="MELODY"):
    clip = Clip(notes, 32.0, 120.0, TimeSignature(*meter), name=name)
    return read_midi_tracks(write_midi(tmp_path / "x.mid", [clip], drums=drums))


def quarter_melody(offset: float = 0.0) -> list[Note]:
    return [Note(60 + (i % 5), i + offset, 0.9) for i in range(32)]  # 8 bars of quarter notes


def test_melody_windows_start_on_bars_and_eval_is_not_transposed(tmp_path):
    converter = get("vae_melody", bars=2)
    examples = converter.examples(score(tmp_path, quarter_melody()), {"split": "eval", "seed": 1})
    assert len(examples) == 7  # 8 bars, 2-bar windows, one bar apart
    first = examples[0]["events"]
    assert first.shape == (32,) and first[0] == FIRST_PITCH_EVENT + 60 - 48
    assert first[4] == FIRST_PITCH_EVENT + 61 - 48  # the next quarter note, 4 steps later


def test_train_windows_are_transposed_within_range(tmp_path):
    midi = score(tmp_path, quarter_melody())
    train = get("vae_melody", bars=2, max_transpose=5).examples(midi, {"split": "train", "seed": 3})
    plain = get("vae_melody", bars=2).examples(midi, {"split": "eval", "seed": 3})
    shifts = {int(t["events"][0]) - int(p["events"][0]) for t, p in zip(train, plain)}
    assert len(shifts) > 1 and all(-5 <= k <= 5 for k in shifts)
    for t, p in zip(train, plain):  # the rhythm is untouched
        assert np.array_equal(t["events"] > 0, p["events"] > 0)


def test_other_meters_are_skipped_unless_assumed(tmp_path):
    waltz = score(tmp_path, quarter_melody(), meter=(3, 4))
    assert get("vae_melody", bars=2).examples(waltz, {"split": "eval", "seed": 0}) == []
    assert len(get("vae_melody", bars=2, assume_meter="4/4").examples(waltz, {"split": "eval", "seed": 0})) == 7


def test_fix_offset_snaps_a_shifted_grid_back(tmp_path):
    # Quarter notes played 0.45 of a 16th late, +-0.1: plain rounding splits them over two steps.
    notes = [Note(60, i + (0.45 + (0.1 if i % 2 else -0.1)) / 4, 0.5) for i in range(32)]
    midi = score(tmp_path, notes)
    onsets = lambda events: np.flatnonzero(events >= FIRST_PITCH_EVENT)
    plain = get("vae_melody", bars=2).examples(midi, {"split": "eval", "seed": 0})[0]["events"]
    fixed = get("vae_melody", bars=2, fix_offset=True).examples(midi, {"split": "eval", "seed": 0})[0]["events"]
    assert set(np.diff(onsets(plain))) == {3, 5}
    assert list(onsets(fixed)) == list(range(0, 32, 4))


def test_drum_windows_need_enough_hits(tmp_path):
    hits = [Note(36 if i % 2 == 0 else 42, i * 0.5, 0.25) for i in range(64)]  # the last bar ends early: 6 windows
    converter = get("vae_drums", bars=2, min_hits=8)
    examples = converter.examples(score(tmp_path, hits, drums=True), {"split": "train", "seed": 0})
    assert len(examples) == 6 and examples[0]["events"][0] == 1 and examples[0]["events"][2] == 1 << 2
    sparse = get("vae_drums", bars=2, min_hits=40)
    assert sparse.examples(score(tmp_path, hits, drums=True), {"split": "train", "seed": 0}) == []
    assert sparse.stats["window skipped: too few hits"] == 6


def test_drum_train_windows_can_start_on_every_beat(tmp_path):
    hits = [Note(36 if i % 4 == 0 else 42, i * 0.5, 0.25) for i in range(64)]  # kick on beats 1 and 3
    midi = score(tmp_path, hits, drums=True)
    converter = get("vae_drums", bars=2, min_hits=8, train_hop=4)
    train = converter.examples(midi, {"split": "train", "seed": 0})
    held_out = converter.examples(midi, {"split": "eval", "seed": 0})
    assert len(held_out) == 6 and len(train) == 24  # starts 0, 4, ..., 92 steps: every beat
    assert all(w["events"][0] == 1 for w in held_out)  # eval windows open on the barline's kick
    assert [int(w["events"][0]) for w in train[:4]] == [1, 1 << 2, 1, 1 << 2]  # kick, hat (beat 2), kick, hat
    assert np.array_equal(train[4]["events"], held_out[1]["events"])  # beat 4 of 4 steps = bar 2
