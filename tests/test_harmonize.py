"""Harmonize: the voices given come back exactly, new voices keep their ranges and the input's
meter and context, inpainting touches only the erased region, and the CLI runs it offline."""
from __future__ import annotations

import numpy as np
import pytest

from bridge import cli
from bridge.clip import Clip, Note, Scale, TimeSignature
from bridge.encodings import chorale
from bridge.midi_io import read_midi_tracks, write_midi
from bridge.models import chorale_clips as cc
from bridge.models.coconet import PMAX, PMIN, annealed
from bridge.tools import TOOLS, ToolContext, ToolError
from coconet_helpers import Store, four_voice_clip, melody, random_coconet, save_random_bundle

TOOL = TOOLS["harmonize"]


@pytest.fixture(scope="module")
def model():
    return random_coconet()


def run(model, clips, **params):
    ctx = ToolContext(Store(model))
    return TOOL(clips, {"seed": 3, "iterations": 8, **params}, ctx), ctx


def by_voice(clips: list[Clip]) -> dict[str, list[Note]]:
    return {c.name.split()[0]: list(c.notes) for c in clips}


def test_melody_comes_back_exactly_with_three_new_voices_in_range(model):
    tune = melody(4)
    out, _ = run(model, [tune], per_voice=True)
    voices = by_voice(out)
    assert list(voices) == ["soprano", "alto", "tenor", "bass"]
    assert voices["soprano"] == list(tune.notes)
    for name, voice in zip(("alto", "tenor", "bass"), "ATB"):
        low, high = chorale.RANGES[voice]
        assert voices[name] and all(low <= n.pitch <= high for n in voices[name])
        assert all(0 <= n.start and n.end <= tune.length + 1e-9 for n in voices[name])
    # One clip holds the same notes.
    single, _ = run(model, [tune])
    assert len(single) == 1 and sorted(single[0].notes, key=repr) == sorted(sum(voices.values(), []), key=repr)


def test_meter_tempo_scale_and_length_are_kept():
    tune = Clip(melody(3, TimeSignature(3, 4)).notes, 9.0, 72.0, TimeSignature(3, 4), Scale(7, "major"), "waltz")
    for clip in run(random_coconet(), [tune], per_voice=True)[0]:
        assert (clip.length, clip.tempo, clip.time_signature, clip.scale) == (9.0, 72.0, TimeSignature(3, 4), Scale(7, "major"))


def test_a_meter_without_a_16th_grid_is_refused(model):
    tune = Clip([Note(67, 0.0, 0.5)], 3.5 / 4, time_signature=TimeSignature(7, 32))
    with pytest.raises(ToolError, match="16th") as err:
        run(model, [tune])
    assert err.value.code == "bad_input"


def test_a_low_melody_is_heard_in_range_and_answered_in_its_own_octave(model):
    tune = melody(2, low=55)
    out, ctx = run(model, [tune], per_voice=True, voices="S")
    voices = by_voice(out)
    assert voices["soprano"] == list(tune.notes)
    assert any("octave" in n for n in ctx.notices)
    low, high = chorale.RANGES["B"]
    assert all(low - 12 <= n.pitch <= high - 12 for n in voices["bass"])


def test_same_seed_same_result_and_one_pass_at_temperature_zero_is_deterministic(model):
    tune = melody(2)
    assert run(model, [tune])[0] == run(model, [tune])[0]
    # One pass at temperature 0 takes every cell's likeliest class: no randomness left.
    assert (run(model, [tune], seed=1, temperature=0.0, iterations=1)[0]
            == run(model, [tune], seed=2, temperature=0.0, iterations=1)[0])
    assert run(model, [tune], seed=1)[0] != run(model, [tune], seed=2)[0]
    out, _ = run(model, [tune], variations=3)
    assert [c.name for c in out] == ["harmonize 1/3", "harmonize 2/3", "harmonize 3/3"]


def test_a_four_voice_clip_is_split_by_register():
    clip = four_voice_clip()
    parts = cc.assign([clip], "auto")
    assert list(parts) == list(chorale.VOICES)
    for v, voice in enumerate(chorale.VOICES):
        assert [n.pitch for n in parts[voice]] == [chord[v] for chord in ((72, 67, 64, 48), (72, 69, 65, 53),
                                                                           (71, 67, 62, 55), (72, 67, 64, 48)) * 2]


def test_voice_names_and_several_clips():
    clip = four_voice_clip()
    soprano = Clip([n for n in clip.notes if n.pitch >= 71], clip.length)
    bass = Clip([n for n in clip.notes if n.pitch <= 55], clip.length)
    assert {v: len(ns) for v, ns in cc.assign([bass, soprano], "auto").items()} == {"S": 8, "B": 8}
    assert list(cc.assign([soprano, bass], "ST")) == ["S", "T"]
    outer = Clip(soprano.notes + bass.notes, clip.length)
    assert list(cc.assign([outer], "auto")) == ["S", "B"]
    assert list(cc.assign([Clip(bass.notes, clip.length)], "auto")) == ["B"]
    with pytest.raises(ToolError, match="names 1 voice"):
        cc.assign([soprano, bass], "S")
    with pytest.raises(ToolError, match="more notes sound"):
        cc.assign([clip], "SB")


def test_legato_overlaps_do_not_make_a_second_voice():
    notes = [Note(67 + i % 3, i * 1.0, 1.05) for i in range(8)]
    assert cc.polyphony(notes) == 1
    assert list(cc.assign([Clip(notes, 8.0)], "auto")) == ["S"]


def test_inpaint_changes_only_the_erased_region(model):
    clip = four_voice_clip(repeat=4)  # 16 beats
    before = cc.assign([clip], "auto")
    out, _ = run(model, [clip], per_voice=True, erase="AT", start=4.0, end=10.0)
    after = dict(zip(chorale.VOICES, by_voice(out).values()))
    for voice in "SB":
        assert after[voice] == before[voice]
    for voice in "AT":
        kept = [n for n in after[voice] if n in before[voice]]
        new = [n for n in after[voice] if n not in before[voice]]
        assert kept == [n for n in before[voice] if n.start < 4.0 or n.start >= 10.0]
        assert new and all(4.0 <= n.start and n.end <= 10.0 + 1e-9 for n in new)
        low, high = chorale.RANGES[voice]
        assert all(low <= n.pitch <= high for n in new)


def test_inpaint_cuts_a_note_that_sounds_into_the_region():
    notes = [Note(60, 0.0, 4.0), Note(62, 4.0, 1.0), Note(64, 6.0, 3.0)]
    assert cc.erase(notes, 2.0, 5.0) == [Note(60, 0.0, 2.0), Note(64, 6.0, 3.0)]


def test_inpaint_region_outside_the_clip_is_a_bad_param(model):
    with pytest.raises(ToolError, match="outside") as err:
        run(model, [four_voice_clip()], erase="SATB", start=20.0)
    assert err.value.code == "bad_param"


def test_nothing_to_fill_says_so(model):
    clip = four_voice_clip()
    out, ctx = run(model, [clip])
    assert sorted(out[0].notes, key=repr) == sorted(clip.notes, key=repr)
    assert any("nothing to fill" in n for n in ctx.notices)


def test_gibbs_keeps_every_cell_it_is_not_told_to_fill(model):
    rng = np.random.default_rng(0)
    classes = rng.integers(0, chorale.NUM_CLASSES, (2, 40, 4))
    fill = rng.random((2, 40, 4)) < 0.4
    out = model.gibbs(classes, fill, chorale.position(16, 4, 0, 40), 6, 1.0, rng)
    assert (out[~fill] == classes[~fill]).all()
    assert model.allowed[np.arange(4)[None, None].repeat(40, 1).repeat(2, 0)[fill], out[fill]].all()


def test_repair_passes_only_touch_cells_to_fill(model):
    rng = np.random.default_rng(1)
    p = chorale.pitch_class_of
    classes = np.array([[[p(72), p(65), p(60), p(48)], [p(74), p(67), p(57), p(45)]] * 8])
    fill = np.zeros(classes.shape, bool)
    fill[:, :, 2] = True  # only the tenor may change; the soprano-alto fifths stay
    out = model.gibbs(classes, fill, chorale.position(16, 4, 0, 16), 12, 1.0, rng)
    assert (out[..., [0, 1, 3]] == classes[..., [0, 1, 3]]).all()


def test_annealed_masking_goes_from_pmax_to_pmin():
    assert annealed(1, 100) == pytest.approx(PMAX)
    assert annealed(80, 100) == pytest.approx(PMIN)
    values = [annealed(i, 100) for i in range(1, 100)]
    assert values == sorted(values, reverse=True)


def test_cli_harmonize_writes_four_voice_tracks(tmp_path, capsys):
    bundles = tmp_path / "bundles"
    save_random_bundle(bundles / "coconet_random")
    tune = melody(2)
    path = write_midi(tmp_path / "melody.mid", [tune])
    assert cli.main(["harmonize", "--input", str(path), "-o", str(tmp_path / "out.mid"), "--bundles", str(bundles),
                     "--per-voice", "--iterations", "4", "--seed", "1"]) == 0
    score = read_midi_tracks(tmp_path / "out.mid")
    assert [t.name for t in score.tracks] == ["soprano", "alto", "tenor", "bass"]
    assert [(n.pitch, n.start, n.duration) for n in score.tracks[0].notes] == [(n.pitch, n.start, n.duration) for n in tune.notes]
    assert "harmonize: 4 clip(s)" in capsys.readouterr().out
