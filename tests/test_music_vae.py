"""MusicVAE serving core: Keras/NumPy parity, slerp, and the clip <-> event round trips."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.clip import Clip, Note
from bridge.drums import GM_DRUM_MAP
from bridge.models.music_vae import MusicVAE, VAEHparams, input_table, slerp
from bridge.models import vae_clips
from bridge.tools.common import drum_map_of


def random_vae(kind: str = "melody", bars: int = 2, seed: int = 0, enc: int = 16,
               dec: tuple[int, ...] = (16,), z: int = 8) -> MusicVAE:
    """A MusicVAE with random weights in the exported layout (no TensorFlow needed)."""
    hp = VAEHparams(kind, enc, dec, z, bars)
    rng = np.random.default_rng(seed)
    w = lambda *shape: rng.normal(0, 0.3, shape).astype(np.float32)
    d_in = input_table(kind, hp.num_classes).shape[1]
    weights = {}
    for side in ("fw", "bw"):
        weights |= {f"encoder/{side}/kernel": w(d_in, 4 * enc), f"encoder/{side}/recurrent_kernel": w(enc, 4 * enc),
                    f"encoder/{side}/bias": w(4 * enc)}
    for head in ("mu", "sigma"):
        weights |= {f"encoder/{head}/kernel": w(2 * enc, z), f"encoder/{head}/bias": w(z)}
    weights |= {"decoder/z_to_state/kernel": w(z, 2 * sum(dec)), "decoder/z_to_state/bias": w(2 * sum(dec))}
    width = d_in + z
    for k, units in enumerate(dec):
        weights |= {f"decoder/lstm_{k}/kernel": w(width, 4 * units),
                    f"decoder/lstm_{k}/recurrent_kernel": w(units, 4 * units), f"decoder/lstm_{k}/bias": w(4 * units)}
        width = units
    weights |= {"decoder/out/kernel": w(width, hp.num_classes) * 5, "decoder/out/bias": w(hp.num_classes)}
    return MusicVAE(weights, hp, f"random_{kind}_{bars}bar")


@pytest.mark.parametrize("name,position", [("musicvae_melody_2bar", False), ("musicvae_drums_2bar", False),
                                           ("musicvae_drums_2bar_hikl", True), ("musicvae_melody_meter", False)])
def test_numpy_encoder_and_decoder_match_keras(name, position):
    """Flat 4/4 models, one with the step counter, and a meter-aware one whose windows are in
    6/8 and 3/4 (bar positions differ per window)."""
    pytest.importorskip("tensorflow")
    from bridge.meter import FEATURES, MeterGrid
    from bridge.models.configs import CONFIGS
    from bridge.train.families import music_vae as family

    config = CONFIGS[name].with_hparams({"enc_units": 12, "dec_units": [10, 6], "z_size": 5, "dec_position": position})
    model = family.build(config)
    rng = np.random.default_rng(1)
    hp = VAEHparams.from_config(config.kind, config.hparams)
    events = rng.integers(0, hp.num_classes, (3, hp.steps))
    grids = [MeterGrid.of(m) for m in ("6/8", "3/4", "6/8")]
    batch = family.prepare_batch({"events": events, "grid": np.stack([g.encode() for g in grids])}, config)
    model(batch)
    # Random, larger-than-init weights so that a wrong gate order or state split cannot hide.
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    ours = MusicVAE(family.export_weights(model, config), hp)
    extra_inputs = FEATURES if hp.meter else 5 if position else 0  # 32 steps: 5 counter bits
    assert ours.decoder.layers[0].kernel.shape[0] == ours.feedback.shape[1] + 5 + extra_inputs
    mu, sigma = (np.asarray(t) for t in model.encode(events))
    our_mu, our_sigma = ours.encode(events)
    assert np.abs(our_mu - mu).max() <= 1e-4 and np.abs(our_sigma - sigma).max() <= 1e-4
    logits = np.asarray(model.decode(mu, events, batch["positions"]))
    for row, grid in enumerate(grids):
        ours_row = ours.decoder_logits(our_mu[row:row + 1], events[row:row + 1], grid)
        assert np.abs(ours_row - logits[row:row + 1]).max() <= 1e-4
    # The model card's NumPy numbers agree with the trainer's Keras eval.
    extra = family.evaluate_extra(model, config, [batch])
    assert extra["recon_accuracy_teacher_forced"] == pytest.approx(float(model.test_step(batch)["accuracy"]))


def test_slerp_keeps_ends_and_norm():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 16)), rng.normal(size=(4, 16))
    assert np.allclose(slerp(a, b, 0.0), a, atol=1e-5) and np.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    unit_a, unit_b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    assert np.allclose(np.linalg.norm(slerp(unit_a, unit_b, 0.3), axis=1), 1.0, atol=1e-5)
    assert np.allclose(slerp(a, a, 0.5), a, atol=1e-5)  # parallel rows fall back to linear


def test_melody_round_trip_and_looping():
    hp = VAEHparams("melody", 4, (4,), 2, bars=2)
    clip = Clip([Note(60, 0.0, 1.0, 90), Note(64, 1.0, 0.5, 90), Note(67, 2.0, 2.0, 90)], length=4.0)
    events = vae_clips.to_events(clip, hp, None)
    notes = vae_clips.to_notes(events, hp, vae_clips.Style(None, 90), None)
    # A 1-bar clip fills the 2-bar window by looping, as Live plays it.
    assert [(n.pitch, n.start, n.duration) for n in notes] == [
        (60, 0.0, 1.0), (64, 1.0, 0.5), (67, 2.0, 2.0), (60, 4.0, 1.0), (64, 5.0, 0.5), (67, 6.0, 2.0)]


def test_register_follows_the_style_by_octaves():
    hp = VAEHparams("melody", 4, (4,), 2, bars=2)
    events = vae_clips.to_events(Clip([Note(60, 0.0, 1.0)], length=8.0), hp, None)
    low = vae_clips.to_notes(events, hp, vae_clips.Style(37.0, 64), None)
    assert [(n.pitch, n.velocity) for n in low] == [(36, 64)]


def test_drum_map_round_trip():
    kit = "36,37,38,39,40,41,42,43,44"
    hp = VAEHparams("drums", 4, (4,), 2, bars=2)
    kit_map = drum_map_of({"drum_map": kit})
    clip = Clip([Note(36, 0.0, 0.25), Note(37, 1.0, 0.25), Note(42, 0.5, 0.25)], length=8.0)
    notes = vae_clips.to_notes(vae_clips.to_events(clip, hp, kit_map), hp, vae_clips.Style(None, 100), kit_map)
    assert sorted((n.pitch, n.start) for n in notes) == [(36, 0.0), (37, 1.0), (42, 0.5)]
    gm = vae_clips.to_notes(vae_clips.to_events(clip, hp, kit_map), hp, vae_clips.Style(None, 100), GM_DRUM_MAP)
    assert sorted(n.pitch for n in gm) == [36, 38, 50]  # kit 42 is its high tom: GM 50


def test_prior_statistics_overlap():
    from bridge.train.families.music_vae_eval import features, overlap

    hp = VAEHparams("melody", 4, (4,), 2, bars=2)
    rng = np.random.default_rng(3)
    busy = np.where(rng.random((50, 32)) < 0.4, rng.integers(2, hp.num_classes, (50, 32)), 0)
    quiet = np.zeros_like(busy)
    quiet[:, 0] = 2 + 12  # one C4... C5 per window
    same = features(busy, hp)
    assert all(abs(overlap(same[k], features(busy.copy(), hp)[k]) - 1.0) < 1e-9 for k in same)
    other = features(quiet, hp)
    assert overlap(same["note_density"], other["note_density"]) < 0.05
    assert overlap(same["pitch_class"], other["pitch_class"]) < 0.2


def test_decoder_dropout_acts_in_training_only():
    pytest.importorskip("tensorflow")
    from bridge.models.configs import CONFIGS
    from bridge.train.families import music_vae as family

    config = CONFIGS["musicvae_drums_2bar_hikl"].with_hparams(
        {"enc_units": 8, "dec_units": [8], "z_size": 4, "dropout": 0.5})
    model = family.build(config)
    events = np.random.default_rng(2).integers(0, 512, (2, 32))
    positions = family.prepare_batch({"events": events}, config)["positions"]
    mu, _ = model.encode(events)
    held_out = [np.asarray(model.decode(mu, events, positions)) for _ in range(2)]
    trained = [np.asarray(model.decode(mu, events, positions, training=True)) for _ in range(2)]
    assert np.array_equal(*held_out) and not np.allclose(*trained)
    assert not np.allclose(held_out[0], trained[0])
