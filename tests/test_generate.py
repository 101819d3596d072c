"""Generate on MusicVAE: lengths, seeds, scale, meter and the tool path through a bundle folder."""
from __future__ import annotations

import numpy as np
import pytest

from bridge.bundle import save_bundle
from bridge.clip import Clip, Note, TimeSignature
from bridge.model_store import ModelStore
from bridge.params import ParamError
from bridge.tools import TOOLS, ToolContext, ToolError
from test_music_vae import random_vae

CTX = ToolContext(models=None)


def generate(model, clips=(), **given):
    return model.generate(list(clips), TOOLS["generate"].resolve(given), CTX)


@pytest.mark.parametrize("bars", [1, 2, 4, 8])
def test_exact_bar_counts(bars):
    clips = generate(random_vae(bars=2), variations=3, bars=bars, seed=1)
    assert [c.name for c in clips] == ["generate 1/3", "generate 2/3", "generate 3/3"]
    for clip in clips:
        assert clip.length == bars * 4.0 and clip.bars == bars
        assert all(0 <= n.start < clip.length and n.end <= clip.length + 1e-9 for n in clip.notes)


def test_eight_bars_chain_windows_from_one_batch():
    model = random_vae(bars=2)
    calls = []
    decode = model.decode
    model.decode = lambda z, *a, **k: calls.append(z.shape) or decode(z, *a, **k)
    generate(model, variations=5, bars=8, seed=3)
    assert calls == [(5 * 4, model.hp.z_size)]  # 5 variations x 4 windows, one batch


def test_same_seed_same_output_and_new_seed_differs():
    model = random_vae(bars=2)
    a, b = generate(model, variations=4, seed=7), generate(model, variations=4, seed=7)
    c = generate(model, variations=4, seed=8)
    assert [x.notes for x in a] == [x.notes for x in b]
    assert [x.notes for x in a] != [x.notes for x in c]


def test_refuses_other_bar_counts():
    model = random_vae(bars=2)
    with pytest.raises(ParamError, match="bars must be one of 1, 2, 4, 8, got 3"):  # the tool table's choices
        generate(model, bars=3)
    with pytest.raises(ToolError, match="bars must be one of 1, 2, 4, 8, got 3"):  # and the model's own check
        model.generate([], {**TOOLS["generate"].resolve({}), "bars": 3}, CTX)


def test_scale_masks_pitches_and_context_sets_register_and_velocity():
    model = random_vae(bars=2, seed=4)
    context = Clip([Note(40, 0.0, 1.0, 55), Note(43, 1.0, 1.0, 57)], length=4.0, tempo=93.0)
    clips = generate(model, [context], variations=6, bars=2, seed=2, scale_root=2, scale_mode="major")
    notes = [n for c in clips for n in c.notes]
    assert notes and all((n.pitch - 2) % 12 in (0, 2, 4, 5, 7, 9, 11) for n in notes)
    assert {n.velocity for n in notes} == {56}
    assert all(c.tempo == 93.0 for c in clips)
    for clip in clips:
        if clip.notes:
            assert abs(np.mean([n.pitch for n in clip.notes]) - 41.5) <= 6 + 1e-9


def test_drums_use_the_drum_map():
    model = random_vae("drums", bars=2, seed=5)
    kit = "60,61,62,63,64,65,66,67,68"
    clips = generate(model, type="drums", variations=4, bars=2, seed=1, drum_map=kit)
    pitches = {n.pitch for c in clips for n in c.notes}
    assert pitches and pitches <= set(range(60, 69))


def test_tool_serves_from_a_bundle_folder(tmp_path):
    model = random_vae(bars=2)
    config = {"name": "vae_test", "model_class": "music_vae", "kind": "melody", "tools": ["generate", "interpolate"],
              "hparams": {"enc_units": 16, "dec_units": [16], "z_size": 8, "bars": 2}}
    save_bundle(tmp_path / "vae_test", config, model.w, "test card")
    store = ModelStore.from_dir(tmp_path)
    assert not store.refused
    clips = TOOLS["generate"]([], {"variations": 2, "bars": 4, "seed": 0}, ToolContext(models=store))
    assert [c.length for c in clips] == [16.0, 16.0]
    assert [c.notes for c in clips] == [c.notes for c in generate(model, variations=2, bars=4, seed=0)]
