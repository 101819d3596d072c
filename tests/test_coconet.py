"""The Coconet-style model: chorale converter, Keras/NumPy parity, the card's voice-leading
counts, and the shipped bundle's held-out quality (when the bundle is there)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bridge.bundle import load_bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.data import converters, pipeline
from bridge.encodings import chorale
from bridge.engine.layers import conv1d
from bridge.midi_io import read_midi_tracks
from bridge.models.coconet import Coconet
from bridge.models.configs import CONFIGS
from bridge.tools import TOOLS, ToolContext
from bridge.train import eval_coconet
from coconet_helpers import CHORDS, Store, chorale_folder, melody

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "coconet_chorales"


def test_converter_reads_the_four_voices_on_the_16th_grid(tmp_path):
    folder = chorale_folder(tmp_path / "chorales", files=3, repeat=12)  # 48 beats = 192 steps
    converter = converters.get("chorale", window=128, train_hop=16, eval_hop=64)
    score = read_midi_tracks(folder / "bwv000.mid")
    pieces = converter.pieces(score, {"split": "train", "file": str(folder / "bwv000.mid")})
    (classes, bar, beat, phase), = pieces
    assert classes.shape == (192, 4) and (bar, beat, phase) == (16, 4, 0)
    first = [chorale.pitch_class_of(p - 2) for p in CHORDS[0]]  # file 0 is shifted down 2 semitones
    assert classes[:4].tolist() == [first] * 4 and classes[4].tolist() == [chorale.pitch_class_of(p - 2) for p in CHORDS[1]]
    train = converter.examples(score, {"split": "train", "file": ""})
    assert len(train) == 5 and {e["voices"].shape for e in train} == {(128, 4)}
    assert [int(e["meter"][2]) for e in train] == [0, 0, 0, 0, 0]  # 16-step hops stay on barlines
    assert (train[1]["voices"] == classes[16:144]).all()
    waltz = converter.examples(read_midi_tracks(folder / "bwv002.mid"), {"split": "eval", "file": ""})
    assert [e["meter"].tolist() for e in waltz] == [[12, 4, 0], [12, 4, 4]]


def test_converter_pads_a_short_piece_and_skips_files_without_four_voices(tmp_path):
    folder = chorale_folder(tmp_path / "chorales", files=1, repeat=10)  # 40 beats = 160 steps
    converter = converters.get("chorale", window=256)
    (only,) = converter.examples(read_midi_tracks(folder / "bwv000.mid"), {"split": "train", "file": ""})
    assert int(only["length"]) == 160 and (only["voices"][160:] == 0).all() and (only["voices"][:160] > 0).all()
    from synthetic_midi import write_song

    write_song(tmp_path / "trio.mid", {"S": [(72, 0, 1, 80)], "A": [(67, 0, 1, 80)], "B": [(48, 0, 1, 80)]})
    assert converter.examples(read_midi_tracks(tmp_path / "trio.mid"), {"split": "train", "file": ""}) == []
    assert converter.stats["file skipped: not four voices"] == 1


def test_pipeline_builds_the_chorale_cache(tmp_path):
    folder = chorale_folder(tmp_path / "chorales", files=30)
    cache = pipeline.build(CONFIGS["coconet_chorales"], folder, tmp_path / "cache", quiet=True)
    train = pipeline.load(cache, "train")
    assert train["voices"].dtype == np.int8 and train["voices"].shape[1:] == (128, 4)
    assert train["meter"].shape[1:] == (3,) and set(train["meter"][:, 0]) == {12, 16}
    assert pipeline.manifest(cache)["splits"]["eval"]["files"] > 0


def test_conv1d_matches_a_direct_sum():
    rng = np.random.default_rng(0)
    x, kernel, bias = rng.normal(size=(2, 9, 3)), rng.normal(size=(3, 3, 4)), rng.normal(size=4)
    for dilation in (1, 2, 4):
        padded = np.pad(x, ((0, 0), (dilation, dilation), (0, 0)))
        direct = sum(padded[:, k * dilation:k * dilation + 9] @ kernel[k] for k in range(3)) + bias
        assert np.allclose(conv1d(x.astype(np.float32), kernel.astype(np.float32), bias.astype(np.float32), dilation),
                           direct, atol=1e-4)


def test_numpy_logits_match_keras():
    tf = pytest.importorskip("tensorflow")
    from bridge.models.coconet import CoconetHparams
    from bridge.train.families import coconet as family

    config = CONFIGS["coconet_chorales"].with_hparams({"units": 16, "layers": 5})
    rng = np.random.default_rng(1)
    batch = {"voices": rng.integers(0, chorale.NUM_CLASSES, (3, 40, 4)).astype(np.int8),
             "length": np.array([40, 40, 31], np.int16), "meter": np.array([[16, 4, 0], [12, 4, 4], [24, 12, 6]], np.int16)}
    batch = family.prepare_batch(batch, config)
    model = family.build(config)
    model(batch)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    mask = (rng.random((3, 40, 4)) < 0.5).astype(np.float32)
    keras_logits = model.logits(tf.constant(batch["voices"], tf.int32), tf.constant(mask), tf.constant(batch["position"]),
                                tf.ones((3, 40))).numpy()
    ours = Coconet(family.export_weights(model, config), CoconetHparams.from_config(config.hparams))
    logits = ours.logits(batch["voices"], mask, batch["position"])
    assert np.abs(logits - keras_logits).max() <= 1e-4 * max(1.0, np.abs(keras_logits).max())
    # The trainer's eval loss is the card's NLL (alto, tenor and bass given the soprano), the
    # shorter window scored over its length only, and so is the baseline's.
    pieces = eval_coconet.window_pieces(batch)
    assert len(pieces[2][0]) == 31
    assert float(model.test_step(batch)["loss"]) == pytest.approx(eval_coconet.harmonize_nll(ours, pieces), rel=1e-4)
    freq = eval_coconet.voice_frequencies(pieces)
    cells = np.concatenate([freq[v, p[0][:, v].astype(np.int64)] for p in pieces for v in (1, 2, 3)])
    assert family.baselines(config, batch, batch)["voice_frequency_nll"] == pytest.approx(-np.log(cells).mean())


def test_voice_leading_counts():
    p = chorale.pitch_class_of
    # S-A: a fifth to a fifth, both rising: one parallel fifth; T-B: octave to octave, both falling.
    roll = np.array([[p(72), p(65), p(60), p(48)],
                     [p(74), p(67), p(57), p(45)],
                     [p(74), p(67), p(57), p(45)],
                     [p(72), p(67), p(69), p(45)]])  # tenor rises above the alto: one crossing
    counts = eval_coconet.voice_leading([roll])
    assert (counts["parallel_fifths"], counts["parallel_octaves"], counts["crossings"]) == (1, 1, 1)
    assert counts["beats"] == 1.0
    # The sampler's repair re-masks exactly the cells of those two parallels.
    cells = chorale.parallel_cells(roll[None])[0]
    assert cells.tolist() == [[True, True, True, True], [True, True, True, True], [False] * 4, [False] * 4]
    # Contrary motion from an octave to a unison is not a parallel; a held voice is not motion.
    contrary = np.array([[p(72), p(67), p(60), p(48)], [p(72), p(67), p(55), p(55)]])
    assert eval_coconet.voice_leading([contrary]) | {"chord_share": 0} == {
        "parallel_fifths": 0, "parallel_octaves": 0, "crossings": 0, "chord_share": 0, "beats": 0.5}
    chords = np.array([[p(72), p(67), p(64), p(48)], [p(73), p(67), p(64), p(48)]])
    assert eval_coconet.voice_leading([chords])["chord_share"] == 0.5


@pytest.fixture(scope="module")
def shipped():
    bundle = load_bundle(BUNDLE)
    with np.load(BUNDLE / "eval_slice.npz", allow_pickle=False) as npz:
        windows = {k: npz[k] for k in npz.files}
    return bundle, Coconet.from_bundle(bundle), windows


@pytest.mark.skipif(not BUNDLE.is_dir(), reason="no coconet_chorales bundle shipped")
class TestShippedBundle:

    def test_the_card_numbers_meet_the_issue(self, shipped):
        bundle, _, _ = shipped
        numbers = bundle.config["eval"]["harmonize"]
        for split in ("eval", "test"):
            assert numbers[split]["nll_reduction"] >= 0.25
            assert numbers[split]["harmonize_nll"] < 0.75 * numbers[split]["voice_frequency_nll"]

    def test_eval_slice_nll_is_the_exported_models_and_beats_the_baseline(self, shipped):
        bundle, model, windows = shipped
        nll = eval_coconet.harmonize_nll(model, eval_coconet.window_pieces(windows))
        assert nll == pytest.approx(bundle.config["eval"]["slice"]["loss"], abs=1e-3)
        assert nll < 0.75 * bundle.config["eval"]["baselines"]["voice_frequency_nll"]

    def test_a_held_out_soprano_comes_back_unchanged_under_three_voices_in_range(self, shipped):
        _, model, windows = shipped
        soprano = windows["voices"][0][:int(windows["length"][0]), 0]
        notes = [Note(int(chorale.class_pitch(c)), s / 4, (e - s) / 4, 80) for c, s, e in chorale.runs(soprano)]
        tune = Clip(notes, len(soprano) / 4, time_signature=TimeSignature(int(windows["meter"][0][0]) // 4, 4))
        out = TOOLS["harmonize"]([tune], {"seed": 0, "per_voice": True}, ToolContext(Store(model)))
        assert list(out[0].notes) == notes
        for clip, voice in zip(out[1:], "ATB"):
            low, high = chorale.RANGES[voice]
            assert clip.notes and all(low <= n.pitch <= high for n in clip.notes)
            sounding = sum(n.duration for n in clip.notes) / tune.length
            assert sounding > 0.8

    def test_a_long_clip_reaches_the_cancellation_point_every_100_ms(self, shipped):
        _, model, _ = shipped
        stamps = [time.thread_time()]
        ctx = ToolContext(Store(model), progress=lambda fraction, message: stamps.append(time.thread_time()))
        TOOLS["harmonize"]([melody(75)], {"seed": 0, "variations": 4, "iterations": 6}, ctx)  # 300 beats
        stamps.append(time.thread_time())
        assert len(stamps) > 20 and np.diff(stamps).max() < 0.1
