"""The data pipeline: beat grid from ticks, splits, converters, cache and statistics."""
import json
from collections import Counter

import mido
import numpy as np
import pytest
from synthetic_midi import drum_folder, melody_folder, write_song

from bridge.data import pipeline
from bridge.data.converters import get
from bridge.encodings.drums import DrumEncoding
from bridge.encodings.melody import NOTE_OFF, MelodyEncoding
from bridge.midi_io import read_midi_tracks
from bridge.models.configs import CONFIGS


def test_steps_come_from_ticks_not_seconds(tmp_path):
    # A tempo change at beat 4 moves later notes in seconds but not on the grid.
    meta = [(0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60))),
            (4.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(180)))]
    notes = [(60 + i % 12, i * 0.5, 0.25, 90) for i in range(64)]
    path = write_song(tmp_path / "a.mid", {"MELODY": notes}, meta)
    converter = get("melody", window=17, hop=16, min_notes=1, min_unique_pitches=1, transpositions=0)
    examples = converter.examples(read_midi_tracks(path), {"path": "a.mid", "split": "eval", "seed": 0})
    enc = MelodyEncoding()
    for k, example in enumerate(examples):
        expected = np.zeros(17, np.int64)
        for i in range(64):
            step = i * 2 - 16 * k
            if 0 <= step < 17:
                expected[step] = enc.pitch_event(60 + i % 12)
                if step + 1 < 17:
                    expected[step + 1] = NOTE_OFF
        assert (example["events"] == expected).all()
    assert len(examples) == 7  # windows at bars 0..6 of 8 (the last needs one step more)


def test_meter_change_starts_a_new_segment_on_its_own_barlines(tmp_path):
    meta = [(0.0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
            (5.0, mido.MetaMessage("time_signature", numerator=3, denominator=4))]  # after a 1-beat pickup bar
    notes = [(60 + i % 7, i * 0.25, 0.25, 90) for i in range(200)]
    path = write_song(tmp_path / "m.mid", {"MELODY": notes}, meta)
    converter = get("melody", window=13, hop=12, min_notes=1, min_unique_pitches=1, transpositions=0)
    examples = converter.examples(read_midi_tracks(path), {"path": "m.mid", "split": "eval", "seed": 0})
    # Segment 1: steps 0-20 (one 13-step window at 0); segment 2 (3/4 = 12-step bars) from step 20.
    firsts = [MelodyEncoding().event_pitch(int(e["events"][0])) for e in examples]
    assert firsts[0] == 60
    assert firsts[1] == 60 + 20 % 7 and firsts[2] == 60 + 32 % 7
    assert converter.stats["segment of 0-8 bars"] == 1


def test_top_line_and_folding():
    enc = MelodyEncoding(48, 84)
    events = enc.encode([(60, 0, 4), (64, 0, 2), (100, 4, 6), (30, 8, 9)], 12)
    assert enc.decode(events) == [(64, 0, 2), (76, 4, 6), (54, 8, 9)]  # the lower C is dropped
    assert enc.fold(100) == 76 and enc.fold(30) == 54


def test_drum_events_round_trip():
    enc = DrumEncoding()
    hits = [(0, 0), (2, 0), (8, 3), (1, 4)]
    events = enc.encode(hits, 8)
    assert events[0] == 0b101 and events[3] == 256 and events[4] == 2
    assert sorted(enc.decode(events)) == sorted(hits)


def test_melody_cache_split_and_transposition(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    config = CONFIGS["melody_rnn"]
    cache = pipeline.build(config, data, tmp_path / "cache", quiet=True)
    manifest = pipeline.manifest(cache)
    train, evaluation = pipeline.load(cache, "train"), pipeline.load(cache, "eval")
    assert train["events"].shape[1:] == (97,) and evaluation["events"].shape[1:] == (97,)
    assert (train["grid"] == [4, 16, 4]).all() and (train["length"] <= 97).all()
    held_out = manifest["files"]["skipped"].get("held out (test split)", 0)
    assert held_out == sum(pipeline.split_of(f"{i:03d}/{i:03d}.mid", None) == "test" for i in range(24)) and held_out >= 1
    assert manifest["splits"]["eval"]["files"] + manifest["splits"]["train"]["files"] + held_out == 24
    assert manifest["splits"]["eval"]["files"] >= 1
    # Eval songs are never in train: split by song path, the same on every build.
    assert set(manifest["eval_files"]) == {f for f in manifest["eval_files"] if pipeline.split_of(f, None) == "eval"}
    # Train windows come with transposed copies; eval windows never do.
    assert manifest["stats"]["examples (transposed copies)"] == len(train["events"]) - manifest["stats"]["examples"] + \
        len(evaluation["events"])
    again = pipeline.build(config, data, tmp_path / "cache", quiet=True)
    assert again == cache and json.loads((cache / "manifest.json").read_text()) == manifest
    table = pipeline.summary(manifest)
    assert "train examples" in table and "MIDI files found" in table


def test_info_csv_split_holds_out_test_files(tmp_path):
    data = drum_folder(tmp_path / "groove", files=12, bars=16)
    cache = pipeline.build(CONFIGS["drums_rnn"], data, tmp_path / "cache", quiet=True)
    manifest = pipeline.manifest(cache)
    assert manifest["files"]["skipped"] == {"held out (test split)": 3}
    assert manifest["splits"]["train"]["files"] == 6 and manifest["splits"]["eval"]["files"] == 3
    events = pipeline.load(cache, "train")["events"]
    bits = DrumEncoding().bits(events)
    assert bits[:, ::4, 2].all()  # closed hat on every beat of every window
    with np.load(cache / "train.npz", allow_pickle=False) as npz:
        assert npz["events"].dtype == np.int16


def test_unreadable_and_empty_files_are_counted(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=12)
    (data / "broken.mid").write_bytes(b"MThd nonsense")
    write_song(data / "drums_only.mid", {"kit": [(36, 0.0, 0.1, 90)]}, drums=True)
    cache = pipeline.build(CONFIGS["melody_rnn"], data, tmp_path / "cache", quiet=True)
    manifest = pipeline.manifest(cache)
    reasons = Counter(manifest["files"]["skipped"]) + Counter(manifest["stats"])
    assert reasons["file skipped: no pitched notes"] == 1
    assert sum(n for k, n in manifest["files"]["skipped"].items() if k.startswith("unreadable")) == 1


def test_quantization_agrees_with_note_seq(tmp_path):
    """note-seq quantizes from seconds through the tempo (it refuses tempo changes, which our
    tick grid handles); on a one-tempo file both grids must agree."""
    note_seq = pytest.importorskip("note_seq")
    meta = [(0.0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(75)))]
    rng = np.random.default_rng(5)
    notes = [(int(rng.integers(55, 80)), i * 0.5 + float(rng.choice([0, 0.25])), 0.25, 90) for i in range(40)]
    path = write_song(tmp_path / "t.mid", {"MELODY": notes}, meta)
    sequence = note_seq.midi_file_to_note_sequence(str(path))
    quantized = note_seq.quantize_note_sequence(sequence, 4)
    theirs = sorted((n.pitch, n.quantized_start_step) for n in quantized.notes)
    ours = sorted((n.pitch, int(np.floor(n.start * 4 + 0.5))) for t in read_midi_tracks(path).tracks for n in t.notes)
    assert ours == theirs


def _same_cache(a, b) -> None:
    """Two caches hold the same examples in the same order, split and statistics alike."""
    for split in pipeline.SPLITS:
        left, right = pipeline.load(a, split), pipeline.load(b, split)
        assert list(left) == list(right)
        for key in left:
            assert left[key].dtype == right[key].dtype and np.array_equal(left[key], right[key]), (split, key)
    drop = ("created", "shards", "shard_files")
    assert {k: v for k, v in pipeline.manifest(a).items() if k not in drop} == \
        {k: v for k, v in pipeline.manifest(b).items() if k not in drop}


def test_sharded_cache_holds_the_same_examples_and_streams(tmp_path):
    data = melody_folder(tmp_path / "songs", songs=24, bars=20)
    (data / "broken.mid").write_bytes(b"MThd nonsense")
    config = CONFIGS["melody_rnn"]
    single = pipeline.build(config, data, tmp_path / "single", quiet=True)
    sharded = pipeline.build(config, data, tmp_path / "sharded", quiet=True, shard_files=4)
    _same_cache(single, sharded)
    manifest = pipeline.manifest(sharded)
    assert manifest["shard_files"] == 4 and not (sharded / "train.npz").exists()
    # Shard k holds files 4k..4k+3 (25 files: 7 shards at most per split, none empty).
    for split in pipeline.SPLITS:
        listed = manifest["shards"][split]
        assert sum(s["examples"] for s in listed) == manifest["splits"][split]["examples"]
        assert all(s["examples"] > 0 for s in listed) and len(listed) <= 7
        assert sorted(p.name for p in sharded.glob(f"{split}-*.npz")) == [s["file"] for s in listed]
    # Chunks are cut at the same places in both layouts, reading one shard at a time.
    stream, whole = pipeline.open_split(sharded, "train"), pipeline.open_split(single, "train")
    for size, limit in ((7, None), (16, 50), (1000, None)):
        got, want = list(stream.chunks(size, limit)), list(whole.chunks(size, limit))
        assert [len(c["events"]) for c in got] == [len(c["events"]) for c in want]
        assert all((g["events"] == w["events"]).all() for g, w in zip(got, want))
    assert len(stream._loaded) <= stream.keep


def test_dataset_command_hands_beam_only_what_it_asked_for(tmp_path, capsys):
    """Options `dataset` does not know go to Beam, and only with --runner or --workers; without
    them the plain path runs, and a typo is refused rather than silently dropped."""
    from bridge.cli import main
    from bridge.train.commands import beam_options

    assert beam_options(None, 1, []) is None
    assert beam_options(None, 2, []) == ["--runner=DirectRunner", "--direct_num_workers=2",
                                         "--direct_running_mode=multi_processing"]
    assert beam_options("FlinkRunner", 1, ["--flink_master=h:8081"]) == ["--runner=FlinkRunner", "--flink_master=h:8081"]
    data = melody_folder(tmp_path / "songs", songs=6, bars=12)
    assert main(["dataset", "melody_rnn", "--data", str(data), "--cache", str(tmp_path / "c"), "--flink_master=h"]) == 2
    assert "unrecognized arguments: --flink_master=h" in capsys.readouterr().err and not (tmp_path / "c").exists()
