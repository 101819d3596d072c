"""The Continue tool on events RNNs (random weights, so these run without trained bundles)."""
from dataclasses import replace

import numpy as np
import pytest

from bridge.clip import Clip, Note, Scale, TimeSignature
from bridge.drums import GM_DRUM_MAP, DrumMap
from bridge.models.configs import CONFIGS
from bridge.models.events_rnn import EventsRNN, event_features
from bridge.params import ParamError
from bridge.tools import TOOLS, ToolContext


def random_model(kind: str, seed: int = 0, units: int = 16) -> EventsRNN:
    config = CONFIGS["melody_rnn" if kind == "melody" else "drums_rnn"]
    spec = {"kind": kind, "converter": config.converter, "converter_args": config.converter_args,
            "hparams": {**config.hparams, "units": units}}
    features = event_features(config.converter, config.converter_args, spec["hparams"])
    rng = np.random.default_rng(seed)
    weights = {}
    for i, size in enumerate((features.size, units)):
        weights.update({f"lstm_{i}/kernel": rng.normal(0, 0.3, (size, 4 * units)),
                        f"lstm_{i}/recurrent_kernel": rng.normal(0, 0.3, (units, 4 * units)),
                        f"lstm_{i}/bias": rng.normal(0, 0.1, 4 * units)})
    weights["output/kernel"] = rng.normal(0, 1.0, (units, features.encoding.num_classes))
    weights["output/bias"] = rng.normal(0, 0.5, features.encoding.num_classes)
    return EventsRNN(spec, {k: v.astype(np.float32) for k, v in weights.items()})


class Store:
    def __init__(self, model):
        self.model = model

    def require(self, tool, kind, name=None, time_signature=None):
        assert tool == "continue" and kind == self.model.kind
        return self.model


def run(model, clip, progress=None, **params):
    ctx = ToolContext(Store(model), progress or (lambda f, m: None))
    return TOOLS["continue"]([clip], {"type": model.kind, **params}, ctx)


C_MAJOR = Clip([Note(p, i * 0.5, 0.5, 80 + i) for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72))],
               length=8.0, name="scale")


def new_notes(out: Clip, primer: Clip) -> list[Note]:
    return [n for n in out.notes if n.start >= primer.length]


def test_scale_constraint_keeps_every_new_pitch_in_key():
    model = random_model("melody")
    free = run(model, C_MAJOR, seed=3, temperature=2.0, variations=4, length=4)
    assert any(not Scale(0, "major").contains(n.pitch) for clip in free for n in new_notes(clip, C_MAJOR))
    kept = run(model, C_MAJOR, seed=3, temperature=2.0, variations=4, length=4, scale_root=0, scale_mode="major")
    pitches = [n.pitch for clip in kept for n in new_notes(clip, C_MAJOR)]
    assert len(pitches) > 8 and all(Scale(0, "major").contains(p) for p in pitches)


def test_three_four_clip_grows_by_exactly_six_beats():
    clip = Clip([Note(60, 0, 1), Note(64, 1, 1), Note(67, 2, 1)], length=6.0, time_signature=TimeSignature(3, 4),
                name="waltz")
    for out in run(random_model("melody"), clip, seed=1, length=2, variations=2, temperature=1.5):
        assert out.length == 12.0 and out.time_signature == TimeSignature(3, 4)
        assert all(6.0 <= n.start and n.end <= 12.0 + 1e-9 for n in new_notes(out, clip))


def test_polyphonic_primer_comes_back_unchanged():
    notes = [Note(60, 0.02, 1.9, 37, probability=0.5), Note(64, 0.0, 2.0, 90), Note(67, -0.0 + 0.01, 2.0, 101),
             Note(100, 2.0, 0.33, 64, mute=True), Note(48, 2.5, 1.5, 12, velocity_deviation=5.0)]
    clip = Clip(notes, length=4.0, tempo=97.0, name="chords")
    for out in run(random_model("melody"), clip, seed=2, variations=3):
        assert all(n in out.notes for n in notes)
        assert [n for n in out.notes if n.start < clip.length] == clip.sorted_notes()
        assert out.tempo == 97.0 and out.length == 12.0


def test_melody_velocity_is_the_primer_median_and_names_count_variations():
    clip = replace(C_MAJOR, name="lead")
    outs = run(random_model("melody"), clip, seed=4, variations=3, temperature=1.5)
    assert [o.name for o in outs] == ["continue 1/3 lead", "continue 2/3 lead", "continue 3/3 lead"]
    velocities = {n.velocity for o in outs for n in new_notes(o, clip)}
    assert velocities == {round(np.median([n.velocity for n in clip.notes]))}


def test_same_seed_same_notes_and_another_seed_differs():
    model = random_model("melody")
    a = run(model, C_MAJOR, seed=11, variations=4, temperature=1.5)
    b = run(model, C_MAJOR, seed=11, variations=4, temperature=1.5)
    c = run(model, C_MAJOR, seed=12, variations=4, temperature=1.5)
    assert a == b and a != c
    assert len({o.notes for o in a}) > 1  # variations differ from each other


def test_temperature_zero_always_takes_the_likeliest_event():
    model = random_model("melody")
    out = run(model, C_MAJOR, seed=1, variations=3, temperature=0.0)
    assert out == run(model, C_MAJOR, seed=2, variations=3, temperature=0.0)
    assert len({o.notes for o in out}) == 1  # no randomness left: every variation is the argmax path


def test_without_primer_the_continuation_starts_at_zero():
    outs = run(random_model("melody"), C_MAJOR, seed=5, include_primer=False, length=2, temperature=1.5)
    for out in outs:
        assert out.length == 8.0 and out.notes and all(0 <= n.start < 8 for n in out.notes)
        assert not set(out.notes) & set(C_MAJOR.notes)


def test_out_of_range_primer_is_folded_for_conditioning():
    model = random_model("melody")
    high = Clip([Note(p + 36, i * 0.5, 0.5) for i, p in enumerate((60, 62, 64, 65))], length=4.0)
    folded = Clip([Note(model.encoding.fold(n.pitch), n.start, n.duration) for n in high.notes], length=4.0)
    a = run(model, high, seed=7, temperature=1.5)
    b = run(model, folded, seed=7, temperature=1.5)
    assert [new_notes(x, high) for x in a] == [new_notes(x, folded) for x in b]


def test_progress_is_reported_at_every_step_in_order():
    """Every step reports (it is where a cancelled request stops: issue #20); the server and the
    CLI thin the reports out for the user."""
    seen = []
    run(random_model("melody"), C_MAJOR, progress=lambda f, m: seen.append(f), seed=1, length=8)
    assert len(set(seen)) >= 8 * 16 and seen == sorted(seen) and seen[-1] == 1.0


DRUM_RACK = "36,37,38,39,40,41,42,43,44"


def _groove(pitch_of) -> Clip:
    notes = []
    for beat in range(8):
        notes += [Note(pitch_of(0 if beat % 2 == 0 else 1), beat, 0.25, 100 if beat % 2 == 0 else 80),
                  Note(pitch_of(2), beat + 0.5, 0.25, 50 + beat)]
    return Clip(notes, length=8.0, name="beat")


def test_drum_rack_map_reads_and_writes_through_the_same_map():
    model = random_model("drums")
    rack = DrumMap.parse(DRUM_RACK)
    rack_clip = _groove(rack.pitch)
    rack_clip = rack_clip.with_notes(list(rack_clip.notes) + [Note(100, 1.0, 1.0, 33)])  # unmapped: untouched
    gm_clip = _groove(GM_DRUM_MAP.pitch)
    rack_out = run(model, rack_clip, seed=9, drum_map=DRUM_RACK, temperature=1.5)
    gm_out = run(model, gm_clip, seed=9, temperature=1.5)
    for r, g in zip(rack_out, gm_out):
        assert Note(100, 1.0, 1.0, 33) in r.notes
        r_new, g_new = new_notes(r, rack_clip), new_notes(g, gm_clip)
        assert r_new and sorted((n.start, rack.classify(n.pitch), n.velocity) for n in r_new) == \
            sorted((n.start, GM_DRUM_MAP.classify(n.pitch), n.velocity) for n in g_new)
        assert {n.pitch for n in r_new} <= set(rack.class_to_pitch)


def test_drum_hits_keep_the_inputs_own_sounds():
    """Rim (37) on the backbeat and clap (39) on beat 4 are both "snare" to the model; a ride
    (59) is "ride": each comes back as the pitch the input played there, never as 38 or 51."""
    model = random_model("drums")
    notes = []
    for bar in range(2):
        at = 4.0 * bar
        notes += [Note(36, at, 0.25, 100), Note(37, at + 1, 0.25, 70), Note(39, at + 3, 0.25, 90)]
        notes += [Note(59, at + k / 2, 0.25, 60) for k in range(8)]
    clip = Clip(notes, length=8.0, name="kit")
    snares = set()
    for out in run(model, clip, seed=3, temperature=1.5, variations=4, length=4):
        for n in new_notes(out, clip):
            assert n.pitch in (36, 37, 39, 59) or GM_DRUM_MAP.classify(n.pitch) not in (0, 1, 8)
            if GM_DRUM_MAP.classify(n.pitch) == 1:
                snares.add((n.start % 4, n.pitch))
    assert snares and all(pitch == {1.0: 37, 3.0: 39}.get(beat, pitch) for beat, pitch in snares)


def test_drum_velocities_and_timing_come_from_the_primer():
    """Velocities are drawn from what the primer played on that drum at that step of the bar,
    and a swung off-beat (played a third of a 16th late) stays swung."""
    model = random_model("drums")
    notes = []
    for beat in range(8):
        notes += [Note(36 if beat % 2 == 0 else 38, beat, 0.25, 100 if beat % 2 == 0 else 80 + beat),
                  Note(42, beat + 0.5 + 1 / 12, 0.25, 50 + beat)]  # hats late by a third of a 16th
    clip = Clip(notes, length=8.0, name="beat")
    played = {}
    for note in notes:
        played.setdefault((GM_DRUM_MAP.classify(note.pitch), round(note.start * 4) % 16), set()).add(note.velocity)
    by_class = {}
    for note in notes:
        by_class.setdefault(GM_DRUM_MAP.classify(note.pitch), set()).add(note.velocity)
    for out in run(model, clip, seed=1, temperature=1.5, variations=2, length=4):
        for n in new_notes(out, clip):
            drum_class, step = GM_DRUM_MAP.classify(n.pitch), round(n.start * 4)
            pool = played.get((drum_class, step % 16)) or by_class.get(drum_class) or {m.velocity for m in notes}
            assert n.velocity in pool
            grid_offset = n.start * 4 - step
            # Played steps keep the primer's offset; the 16ths it never played move with its
            # swing (off-beat at 7/12 of the beat: 1/4 -> 7/24 and 3/4 -> 19/24, 1/6 of a 16th late).
            assert grid_offset == pytest.approx({0: 0.0, 1: 1 / 6, 2: 1 / 3, 3: 1 / 6}[step % 4], abs=1e-6)


def test_bad_drum_map_is_a_parameter_error():
    with pytest.raises(ParamError, match="drum map"):
        run(random_model("drums"), _groove(GM_DRUM_MAP.pitch), drum_map="36,38")


def test_meter_aware_model_continues_on_the_meters_grid():
    """3/2 is read and written on 8ths (its half-note beats hold 4 steps, as 3/4's quarters do);
    6/8 on 16ths in 12-step bars; the continuation adds whole bars of the clip's meter."""
    model = random_model("melody")
    assert model.features.meter
    for meter, bar_beats, step in (("3/2", 6.0, 0.5), ("6/8", 3.0, 0.25)):
        ts = TimeSignature(*map(int, meter.split("/")))
        clip = Clip([Note(60 + i % 7, i * 2 * step, 2 * step) for i in range(12)], 2 * bar_beats, time_signature=ts)
        for out in run(model, clip, seed=2, length=2, variations=3, temperature=1.5):
            assert out.length == 4 * bar_beats and out.time_signature == ts
            assert all(abs(n.start / step - round(n.start / step)) < 1e-9 for n in new_notes(out, clip))


def test_empty_variations_are_sampled_again_and_reported():
    """A model that only ever says "no event" cannot add notes: each variation is tried a
    bounded number of times and the reply says which came back empty."""
    model = random_model("melody")
    model.out_bias = np.where(np.arange(len(model.out_bias)) == 0, 50.0, -50.0).astype(np.float32)
    calls = []
    sample = model.sample
    model.sample = lambda *a, **k: calls.append(a[2]) or sample(*a, **k)
    ctx = ToolContext(Store(model))
    outs = TOOLS["continue"]([C_MAJOR], {"type": "melody", "variations": 3, "seed": 1}, ctx)
    assert all(not new_notes(o, C_MAJOR) for o in outs)
    assert calls == [3] * 5  # the first round and four more for the empty ones
    assert [n for n in ctx.notices if "has no new notes" in n] == [
        f"variation {i} has no new notes: the model chose silence after this primer 5 times" for i in (1, 2, 3)]


def test_chords_given_to_the_melody_model_are_named_in_a_notice():
    model = random_model("melody")
    chords = Clip([Note(p, b, 1.0) for b in range(4) for p in (60, 64, 67)], 4.0)
    ctx = ToolContext(Store(model))
    TOOLS["continue"]([chords], {"type": "melody", "seed": 1}, ctx)
    assert any("top note of each chord" in n for n in ctx.notices)
    quiet = ToolContext(Store(model))
    TOOLS["continue"]([C_MAJOR], {"type": "melody", "seed": 1}, quiet)
    assert not any("chord" in n for n in quiet.notices)


def test_a_triplet_shuffle_continues_on_its_triplets():
    """Issue #18: the model writes straight 8ths where the primer never played them; they land
    on the shuffle's triplet, and a straight 8th and a 16th after it that both land there are
    one hit."""
    from bridge import music_stats as S
    from bridge.clip import GridNote
    from bridge.drum_feel import Feel
    from bridge.meter import MeterGrid

    grid = MeterGrid.of(TimeSignature(4, 4))
    shuffle = [Note(42, b + t, 0.1, 80) for b in range(4) for t in (0.0, 2 / 3)]
    hits = [(2, GridNote(n.pitch, round(n.start * 4), round(n.start * 4) + 1, n.velocity,
                         n.start * 4 - round(n.start * 4), n)) for n in shuffle]
    feel = Feel(hits, grid, GM_DRUM_MAP)
    rng = np.random.default_rng(0)
    placed = feel.place([(2, 16 + 4 * b + s, 4.0 + b + s / 4) for b in range(4) for s in (0, 2, 3)], rng)
    assert sorted(round(n.start % 1, 3) for n in placed) == [0.0] * 4 + [0.667] * 4
    assert S.swing_ratio(placed) == pytest.approx(S.swing_ratio(shuffle), abs=1e-3)
