"""Groove on synthetic drum clips with a random-weight GrooVAE: what the tool promises, not what it sounds like."""
from dataclasses import replace

import numpy as np

from bridge.clip import Clip, Note
from bridge.drums import GM_DRUM_MAP, DrumMap
from bridge.encodings import groove as enc
from groove_helpers import ctx, drum_clip, model, params

HUMANIZE = model("humanize")


def cells(clip: Clip, drum_map: DrumMap = GM_DRUM_MAP) -> set[tuple[int, int]]:
    return {(enc.grid_position(n.start)[0], drum_map.classify(n.pitch)) for n in clip.notes
            if drum_map.classify(n.pitch) is not None and not n.mute}


def test_four_bars_change_feel_but_keep_every_hit_on_its_step():
    clip = drum_clip(4)
    [out] = HUMANIZE.groove(clip, params(), ctx())
    assert cells(out) == cells(clip)
    assert len(out.notes) == len(clip.notes)
    moved = sum(a.start != b.start for a, b in zip(clip.notes, out.notes))
    louder_or_softer = sum(a.velocity != b.velocity for a, b in zip(clip.notes, out.notes))
    assert moved > len(clip.notes) // 2 and louder_or_softer > len(clip.notes) // 2
    assert out.name == "groove 1/1 beat"


def test_no_note_starts_before_zero_and_none_leaves_the_clip():
    clip = drum_clip(2, extra=(Note(46, 7.97, 0.02, 100),))  # rounds to the step after the clip end
    for seed in range(5):
        for out in HUMANIZE.groove(clip, params(seed=seed, variations=8, ghost_notes=True, temperature=2.0), ctx()):
            assert all(0.0 <= n.start < clip.length for n in out.notes)


def test_seven_bars_come_back_seven_bars_long_and_the_last_bar_is_grooved():
    clip = drum_clip(7)
    [out] = HUMANIZE.groove(clip, params(), ctx())
    assert out.length == clip.length == 28.0
    assert cells(out) == cells(clip)
    last_bar = [(a, b) for a, b in zip(clip.notes, out.notes) if a.start >= 24.0]
    assert last_bar and sum(a.start != b.start for a, b in last_bar) > len(last_bar) // 2


def test_amount_zero_returns_the_input_exactly():
    clip = drum_clip(3, extra=(Note(100, 1.03, 0.5, 90),))
    outs = HUMANIZE.groove(clip, params(amount=0.0, variations=3, ghost_notes=True), ctx())
    assert all(out.notes == clip.notes and out.length == clip.length for out in outs)


def test_amount_blends_between_input_and_model():
    clip = drum_clip(2)
    [full] = HUMANIZE.groove(clip, params(amount=1.0), ctx())
    [half] = HUMANIZE.groove(clip, params(amount=0.5), ctx())
    for a, f, h in zip(clip.notes, full.notes, half.notes):
        assert abs(h.start - (a.start + f.start) / 2) < 1e-9
        assert abs(h.velocity - (a.velocity + f.velocity) / 2) <= 1.0


def test_same_seed_same_output_and_variations_differ():
    clip = drum_clip(4)
    first = HUMANIZE.groove(clip, params(seed=3, variations=4), ctx())
    again = HUMANIZE.groove(clip, params(seed=3, variations=4), ctx())
    assert [c.notes for c in first] == [c.notes for c in again]
    assert len({c.notes for c in first}) == 4
    assert [c.name for c in first] == [f"groove {i}/4 beat" for i in range(1, 5)]


def test_unmapped_and_muted_notes_stay_in_place():
    keep = (Note(100, 0.5, 1.0, 80), Note(24, 2.0, 0.25, 70), Note(36, 1.0, 0.25, 90, mute=True))
    clip = drum_clip(2, extra=keep)
    [out] = HUMANIZE.groove(clip, params(), ctx())
    assert out.notes[:3] == keep


def test_drum_map_decides_which_pitches_are_drums():
    kit = DrumMap.parse("24,25,26,27,28,29,30,31,32")  # a rack from pitch 24
    clip = Clip((Note(24, 0.0, 0.25, 100), Note(24, 1.0, 0.25, 100), Note(25, 2.0, 0.25, 100)), length=8.0)
    [gm] = HUMANIZE.groove(clip, params(), ctx())
    [mapped] = HUMANIZE.groove(clip, params(drum_map=kit.to_text()), ctx())
    assert gm.notes[1] == clip.notes[1]  # 24 is no GM drum (25 is a GM snare): untouched
    assert mapped.notes[1] != clip.notes[1]
    assert cells(mapped, kit) == cells(clip, kit)


def test_ghost_notes_keep_the_input_hits_and_add_only_mapped_pitches():
    kit = DrumMap.parse("24,25,26,27,28,29,30,31,32")
    clip = replace(drum_clip(2), notes=tuple(n._replace(pitch=kit.pitch(GM_DRUM_MAP.classify(n.pitch)))
                                              for n in drum_clip(2).notes))
    outs = HUMANIZE.groove(clip, params(ghost_notes=True, variations=8, temperature=2.0, drum_map=kit.to_text()), ctx())
    added = [n for out in outs for n in out.notes[len(clip.notes):]]
    assert added and all(n.pitch in kit.class_to_pitch for n in added)
    assert all(cells(clip, kit) <= cells(out, kit) for out in outs)


def test_progress_is_reported_in_order_up_to_done():
    seen = []
    from bridge.tools import ToolContext

    HUMANIZE.groove(drum_clip(5), params(), ToolContext(None, lambda f, m: seen.append(f)))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 4


def test_dynamics_one_keeps_each_drums_velocity_level():
    """The bossa kick played at 90 stays at 90 on average; the model only moves accents around
    that level. With dynamics 0 the model's own levels come through."""
    clip = drum_clip(4, seed=3)
    def level(notes, pitch):
        return np.mean([n.velocity for n in notes if n.pitch == pitch])
    [kept] = HUMANIZE.groove(clip, params(dynamics=1.0, seed=2), ctx())
    [model_levels] = HUMANIZE.groove(clip, params(dynamics=0.0, seed=2), ctx())
    for pitch in (36, 38, 42):
        assert abs(level(kept.notes, pitch) - level(clip.notes, pitch)) <= 1.0
    assert max(abs(level(model_levels.notes, p) - level(clip.notes, p)) for p in (36, 38, 42)) > 5
    assert [n.velocity for n in kept.notes] != [n.velocity for n in clip.notes]  # accents still move
