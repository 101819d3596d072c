"""Interpolate on MusicVAE: the path, its ends, attribute mode, lengths and musical context."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bridge.bundle import load_bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.drums import GM_DRUM_MAP
from bridge.models import vae_clips
from bridge.models.music_vae import MusicVAE
from bridge.tools import TOOLS, ToolContext, ToolError
from test_music_vae import random_vae

CTX = ToolContext(models=None)
BUNDLES = Path(__file__).resolve().parent.parent / "bundles"


def interpolate(model, a, b, **given):
    return model.interpolate(a, b, TOOLS["interpolate"].resolve(given), CTX)


def melody(seed: int, bars: int = 2, velocity: int = 100, base: int = 60, name: str = "") -> Clip:
    """A random stepwise melody of 8th and quarter notes in C major."""
    rng = np.random.default_rng(seed)
    scale = [0, 2, 4, 5, 7, 9, 11, 12, 14, 16]
    notes, t, degree = [], 0.0, int(rng.integers(0, 8))
    while t < bars * 4:
        length = float(rng.choice([0.5, 1.0]))
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
        notes.append(Note(base + scale[degree], t, length, velocity))
        t += length
    return Clip(notes, bars * 4.0, name=name)


def test_path_names_lengths_and_context():
    model = random_vae(bars=2)
    a = melody(1, bars=2, velocity=40, base=48, name="verse")
    b = melody(2, bars=1, velocity=120, base=72, name="hook")
    clips = interpolate(model, a, b, steps=5, seed=0)
    assert [c.name for c in clips] == [f"interpolate {i}/5 [verse+hook]" for i in range(1, 6)]
    assert all(c.length == 4.0 for c in clips)  # trimmed to the shorter input: 1 bar
    velocities = [c.notes[0].velocity for c in clips if c.notes]
    assert velocities == sorted(velocities) and velocities[0] < 60 and velocities[-1] > 100


def test_clips_longer_than_the_model_interpolate_window_by_window():
    model = random_vae(bars=2)
    calls = []
    decode = model.decode
    model.decode = lambda z, *a, **k: calls.append(z.shape) or decode(z, *a, **k)
    four = interpolate(model, melody(7, bars=4), melody(8, bars=4), steps=3, seed=0)
    assert [c.length for c in four] == [16.0] * 3 and calls == [(3 * 2, model.hp.z_size)]
    long = interpolate(model, melody(7, bars=12), melody(8, bars=10), steps=2, seed=0)
    assert [c.length for c in long] == [32.0, 32.0]  # capped at 8 bars


def test_keep_ends_returns_the_inputs_exactly():
    model = random_vae(bars=2)
    a, b = melody(3), melody(4, base=67)
    clips = interpolate(model, a, b, steps=4, keep_ends=True, seed=0)
    assert len(clips) == 4
    assert clips[0].notes == a.notes and clips[-1].notes == b.notes
    assert clips[0].length == a.length and clips[-1].length == b.length


def test_amount_returns_one_clip_and_is_seeded():
    model = random_vae(bars=2)
    a, b = melody(5), melody(6)
    one = interpolate(model, a, b, amount=0.25, seed=3)
    assert len(one) == 1 and one[0].name == "interpolate 1/1 [A+B]"
    assert one[0].notes == interpolate(model, a, b, amount=0.25, seed=3)[0].notes


def test_drum_path_keeps_the_users_kit():
    model = random_vae("drums", bars=2, seed=9)
    kit = "60,61,62,63,64,65,66,67,68"
    a = Clip([Note(60, i * 1.0, 0.25) for i in range(8)], 8.0)
    b = Clip([Note(62, i * 0.5, 0.25) for i in range(16)], 8.0)
    clips = interpolate(model, a, b, type="drums", steps=3, drum_map=kit, seed=0)
    assert {n.pitch for c in clips for n in c.notes} <= set(range(60, 69))


def groove(seed: int, bars: int = 2) -> Clip:
    """A random rock/funk-like beat on GM pitches: kicks, backbeat snares, 8th or 16th hats."""
    rng = np.random.default_rng(seed)
    hat_every = int(rng.choice([1, 2]))  # 16ths or 8ths, in 16th steps
    kicks = {0, 8} | {int(s) for s in rng.choice([3, 6, 10, 11, 14], int(rng.integers(0, 3)), replace=False)}
    notes = []
    for bar in range(bars):
        for step in range(16):
            beat = bar * 4 + step / 4
            if step % hat_every == 0:
                notes.append(Note(42 if rng.random() > 0.1 else 46, beat, 0.25, 80))
            if step in kicks:
                notes.append(Note(36, beat, 0.25, 100))
            if step in (4, 12) or rng.random() < 0.05:
                notes.append(Note(38, beat, 0.25, 100))
    return Clip(notes, bars * 4.0)


# Per model type: the clips A and B of pair k, and the drum map events are read through.
PAIRS = {"melody": (lambda k, bars: (melody(100 + k, bars), melody(200 + k, bars, base=64)), None),
         "drums": (lambda k, bars: (groove(100 + k, bars), groove(200 + k, bars)), GM_DRUM_MAP)}


@pytest.mark.parametrize("bundle", ["musicvae_melody_2bar", "musicvae_melody_4bar",
                                    "musicvae_drums_2bar_hikl", "musicvae_drums_4bar"])
def test_distance_to_a_grows_along_the_path(bundle):
    if not (BUNDLES / bundle).is_dir():
        pytest.skip(f"bundle {bundle} is not installed")
    model = MusicVAE.from_bundle(load_bundle(BUNDLES / bundle))
    (pair_of, drums), steps, curves = PAIRS[model.hp.kind], 7, []
    for pair in range(8):
        a, b = pair_of(pair, model.hp.bars)
        target = vae_clips.to_events(a, model.hp, drums)
        path = interpolate(model, a, b, type=model.hp.kind, steps=steps, temperature=0.0)
        curves.append([int((vae_clips.to_events(c, model.hp, drums) != target).sum()) for c in path])
    mean = np.mean(curves, axis=0)
    assert mean[-1] > mean[0] + 3
    assert np.corrcoef(np.arange(steps), mean)[0, 1] > 0.8
