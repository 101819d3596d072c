"""The polyphonic events RNN: its encoding, its converter, and Keras/NumPy parity."""
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.data import converters
from bridge.encodings.poly import START, PolyEncoding, PolyFeatures
from bridge.meter import FEATURES, MeterGrid
from bridge.midi_io import read_midi_tracks
from bridge.models.configs import CONFIGS

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_midi import chorale_folder, write_song  # noqa: E402

ENC = PolyEncoding(36, 84, 16)


def test_events_spell_offs_before_ons_and_shifts_between_steps():
    notes = [(60, 0, 4), (64, 0, 2), (67, 2, 4), (60, 4, 5)]  # 60 ends where 60 starts again
    events = ENC.encode(notes, 8)
    assert events == [ENC.on(60), ENC.on(64), *ENC.shifts(2), ENC.off(64), ENC.on(67), *ENC.shifts(2),
                      ENC.off(60), ENC.off(67), ENC.on(60), *ENC.shifts(1), ENC.off(60)]
    assert ENC.decode(events) == sorted(notes, key=lambda n: (n[1], n[0]))


def test_long_gaps_take_several_shifts_and_close_ends_every_note_at_the_window():
    events = ENC.encode([(48, 0, 40), (50, 37, 45)], 38, close=True)
    assert events == [ENC.on(48), *ENC.shifts(37), ENC.on(50), *ENC.shifts(1), ENC.off(48), ENC.off(50)]
    assert ENC.shifts(37) == [ENC.num_classes - 1, ENC.num_classes - 1, ENC.first_shift + 4]
    assert ENC.decode(events) == [(48, 0, 38), (50, 37, 38)]


def test_same_pitch_overlaps_are_cut_and_pitches_fold_into_range():
    events = ENC.encode([(60, 0, 8), (60, 4, 6), (60, 4, 5), (24, 0, 2), (100, 1, 2)], 8)
    assert ENC.decode(events) == [(36, 0, 2), (60, 0, 4), (76, 1, 2), (60, 4, 6)]


def test_decode_stops_at_end_step_and_skips_a_stray_note_off():
    events = [START, ENC.off(70), ENC.on(60), *ENC.shifts(3), ENC.on(62), *ENC.shifts(4), ENC.on(64)]
    assert ENC.decode(events, end_step=5) == [(60, 0, 5), (62, 3, 5)]


def test_features_carry_sounding_pitches_and_the_step_after_each_event():
    grid = MeterGrid.of("3/4")
    events = np.array([[START, ENC.on(60), ENC.on(67), *ENC.shifts(12), ENC.off(60), ENC.shifts(2)[0]]])
    features = PolyFeatures(ENC)
    histogram = features.histogram(events)
    assert histogram[0, 0] == histogram[0, 7] == 0.5 and histogram.sum() == 1.0  # C and G
    x = features(events, grid.encode()[None], histogram)
    v, p = ENC.num_classes, ENC.num_pitches
    assert x.shape == (1, 6, v + p + FEATURES + 12) and (x[0, :, -12:] == histogram).all()
    assert (x[0, np.arange(6), events[0]] == 1).all()
    sounding = x[0, :, v:v + p]
    assert sounding[:, 60 - 36].tolist() == [0, 1, 1, 1, 0, 0] and sounding[:, 67 - 36].tolist() == [0, 0, 1, 1, 1, 1]
    positions = x[0, :, v + p:-12]
    bar = grid.bar_features()
    assert (positions[:3] == bar[0]).all() and (positions[3] == bar[0]).all()  # 12 steps: the next downbeat
    assert (positions[5] == bar[2]).all()


def test_converter_merges_voices_reads_meters_and_transposes_train_windows_only(tmp_path):
    folder = chorale_folder(tmp_path, files=3, bars=8)
    converter = converters.get("poly", window_bars=4, hop_bars=2, max_events=200, voices_transpositions=3)
    path = folder / "bwv002.mid"  # 3/4
    score = read_midi_tracks(path)
    train = converter.examples(score, {"path": path.name, "file": str(path), "split": "train", "seed": 1})
    evals = converter.examples(score, {"path": path.name, "file": str(path), "split": "eval", "seed": 1})
    assert len(train) == 4 * len(evals) and len(evals) == 3  # windows at bars 0, 2, 4; each with 3 copies in train
    assert all((e["grid"] == MeterGrid.of("3/4").encode()).all() for e in train)
    first = evals[0]
    written = {(n.pitch, round(4 * n.start), round(4 * n.end)) for t in score.tracks for n in t.notes if n.start < 12}
    assert ENC.decode(first["events"][:first["length"]]) == sorted(written, key=lambda n: (n[1], n[0]))
    assert len(written) == 4 * 12  # four voices on each of 12 beats
    assert converter.stats["windows in 3/4"] == 6 and converter.stats["no PIANO track: merged 4 tracks"] == 2


def test_converter_takes_the_piano_track_when_there_is_one(tmp_path):
    chords = [(p, float(b), 1.0, 70) for b in range(16) for p in (48, 55, 64)]
    path = write_song(tmp_path / "001" / "001.mid", {"MELODY": [(79, 0.0, 16.0, 90)], "PIANO": chords})
    converter = converters.get("poly", max_events=300)
    (example,) = converter.examples(read_midi_tracks(path), {"path": "001/001.mid", "file": str(path),
                                                              "split": "eval", "seed": 0})
    assert {p for p, _, _ in ENC.decode(example["events"][:example["length"]])} == {48, 55, 64}


def test_windows_longer_than_max_events_are_cut():
    converter = converters.get("poly", max_events=20)
    example = converter._example([(60 + i % 5, i, i + 1) for i in range(30)], 64, MeterGrid.of("4/4").encode())
    assert example["events"].shape == (21,) and example["length"] == 21 and converter.stats["window cut at max_events"] == 1


keras = pytest.importorskip("keras")
family = pytest.importorskip("bridge.train.families.poly_rnn")


def _tiny():
    return CONFIGS["poly_rnn"].with_hparams({"units": 24, "dropout": 0.3})


def _batch(rng, grid: MeterGrid, rows: int = 3, length: int = 60):
    """Valid event rows (random chords on random steps) with their grid and lengths."""
    events = np.zeros((rows, length + 1), np.int64)
    for b in range(rows):
        notes = [(int(rng.integers(40, 80)), s, s + int(rng.integers(1, 6))) for s in rng.integers(0, 24, 20)]
        row = [START] + ENC.encode(notes, 24)
        events[b, :min(len(row), length + 1)] = row[:length + 1]
    return {"events": events, "grid": np.repeat(grid.encode()[None], rows, 0), "length": np.full(rows, length + 1)}


@pytest.mark.parametrize("meter", ["4/4", "3/4", "6/8"])
def test_keras_and_numpy_logits_match(meter):
    config = _tiny()
    rng = np.random.default_rng(0)
    grid = MeterGrid.of(meter)
    batch = _batch(rng, grid)
    inputs = family.prepare_batch(batch, config)
    model = family.build(config)
    model(inputs)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    keras_logits = np.asarray(model(inputs, training=False))
    serving = family.serving_model(model, config)
    events = batch["events"]
    histogram = serving.features.histogram(events)
    assert np.abs(serving.logits(events[:, :-1], batch["grid"], histogram) - keras_logits).max() <= 1e-4
    # Sampling's step path (table look-ups for the first layer, carried state) gives the same logits.
    _, states = serving.rnn.run(serving.features(events[:, :20], batch["grid"], histogram))
    time, sounding = serving.features.state(events)
    for t in range(20, 59):
        logits = serving.advance(events[:, t], sounding[:, t] > 0, time[:, t], grid, histogram, states)
        assert np.abs(logits - keras_logits[:, t]).max() <= 1e-4


def test_padding_weighs_nothing_and_metrics_split_by_event_kind():
    config = _tiny()
    batch = _batch(np.random.default_rng(1), MeterGrid.of("4/4"), rows=2, length=40)
    batch["length"] = np.array([41, 15])
    model = family.build(config)
    short = family.prepare_batch(batch, config)
    model(short)
    changed = {**batch, "events": batch["events"].copy()}
    changed["events"][1, 15:] = ENC.first_shift
    metrics = model.test_step(short)
    assert float(metrics["loss"]) == pytest.approx(float(model.test_step(family.prepare_batch(changed, config))["loss"]),
                                                   abs=1e-6)
    assert short["weights"][1].sum() == 14 and short["weights"][0].sum() == 40
    assert {"note_on_accuracy", "note_off_accuracy", "shift_accuracy", "accuracy"} <= set(metrics)


def test_numpy_nll_equals_the_keras_eval_loss():
    config = _tiny()
    batch = _batch(np.random.default_rng(2), MeterGrid.of("4/4"), rows=3, length=50)
    batch["length"] = np.array([51, 30, 44])
    model = family.build(config)
    inputs = family.prepare_batch(batch, config)
    model(inputs)
    nll, _ = family.serving_model(model, config).nll(batch["events"], batch["grid"], batch["length"])
    assert nll == pytest.approx(float(model.test_step(inputs)["loss"]), abs=1e-4)


def test_train_two_folders_export_and_continue_chords(tmp_path):
    """Chorale-like voices and a piano part trained together; the bundle lists both meters,
    the eval slice reproduces its card, and Continue with chords (type auto) picks it."""
    from bridge.clip import Clip, Note, TimeSignature
    from bridge.model_store import ModelStore
    from bridge.models.poly_rnn import PolyRNN
    from bridge.tools import TOOLS, ToolContext
    from bridge.train.export import export
    from bridge.train.trainer import train

    voices = chorale_folder(tmp_path / "chorales", files=12, bars=8)
    for i in range(10):
        comp = [(p + i % 3, b + 0.5 * k, 0.5, 70) for b in range(0, 32, 2) for k, p in enumerate((48, 55, 60, 64))]
        write_song(tmp_path / "pop" / f"{i:03d}" / f"{i:03d}.mid", {"MELODY": [(72, 0.0, 8.0, 90)], "PIANO": comp})
    hparams = "units=16,batch_size=8,eval_every=5,checkpoint_every=5"
    result = train("poly_rnn", [tmp_path / "pop", voices], tmp_path / "run", hparams, steps=10, seed=1,
                   cache_root=tmp_path / "cache", quiet=True)
    assert result["steps"] == 10 and "ngram4_loss" in result["baselines"]
    bundle = export(tmp_path / "run", tmp_path / "bundles" / "poly_rnn")
    store = ModelStore.from_dir(tmp_path / "bundles")
    assert not store.refused and store.describe()[0]["meters"] == ["3/4", "4/4"]
    model = store.loaded[0].model
    assert isinstance(model, PolyRNN)
    config = store.loaded[0].bundle.config
    with np.load(bundle / "eval_slice.npz", allow_pickle=False) as npz:
        nll, accuracy = model.nll(npz["events"], npz["grid"], npz["length"])
    assert nll == pytest.approx(config["eval"]["slice"]["loss"], abs=1e-4)
    assert accuracy == pytest.approx(config["eval"]["slice"]["accuracy"], abs=1e-6)
    assert "- meters: 3/4, 4/4" in (bundle / "MODEL_CARD.md").read_text()
    chords = Clip([Note(p, float(b), 1.0, 80) for b in range(6) for p in (50, 57, 62, 66)], 6.0,
                  time_signature=TimeSignature(3, 4))
    outs = TOOLS["continue"]([chords], {"seed": 0, "temperature": 1.5}, ToolContext(store))
    assert [o.length for o in outs] == [12.0] * 4
    assert all([n for n in o.notes if n.start < 6.0] == chords.sorted_notes() for o in outs)
