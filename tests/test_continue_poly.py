"""Continue with the polyphonic model: random weights here (so these run without a trained
bundle), `type auto`, and the chorale measures of `bridge.train.eval_poly`; the shipped
bundle's Done-when check runs when bundles/poly_rnn exists."""
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.clip import Clip, Note, Scale, TimeSignature
from bridge.drums import GM_DRUM_MAP, looks_like_drums
from bridge.model_store import ModelStore
from bridge.models.configs import CONFIGS
from bridge.models import poly_rnn
from bridge.models.poly_rnn import MAX_VOICES, PolyRNN, poly_encoding
from bridge.tools import TOOLS, ModelNotInstalled, ToolContext
from bridge.tools.continuation import sounds_together
from bridge.train import eval_poly

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_midi import chorale_voices  # noqa: E402

BUNDLE = Path(__file__).resolve().parent.parent / "bundles" / "poly_rnn"


def random_poly(seed: int = 0, units: int = 16, silence: float = 0.0) -> PolyRNN:
    """A PolyRNN with random weights; `silence` raises the time-shift logits (an empty-prone model)."""
    config = CONFIGS["poly_rnn"]
    spec = {"kind": "poly", "converter_args": config.converter_args, "hparams": {**config.hparams, "units": units}}
    enc = poly_encoding(config.converter_args)
    from bridge.encodings.poly import PolyFeatures

    rng = np.random.default_rng(seed)
    weights = {}
    for i, size in enumerate((PolyFeatures(enc).size, units)):
        weights.update({f"lstm_{i}/kernel": rng.normal(0, 0.3, (size, 4 * units)),
                        f"lstm_{i}/recurrent_kernel": rng.normal(0, 0.3, (units, 4 * units)),
                        f"lstm_{i}/bias": rng.normal(0, 0.1, 4 * units)})
    weights["output/kernel"] = rng.normal(0, 1.0, (units, enc.num_classes))
    weights["output/bias"] = rng.normal(0, 0.5, enc.num_classes)
    weights["output/bias"][enc.first_shift:] += silence
    return PolyRNN(spec, {k: v.astype(np.float32) for k, v in weights.items()})


class Store:
    """Models by kind, answering as ModelStore.require does."""

    def __init__(self, **models):
        self.models = models
        self.asked = []

    def require(self, tool, kind, name=None, time_signature=None):
        self.asked.append(kind)
        if kind not in self.models:
            raise ModelNotInstalled(f"no {kind} model")
        return self.models[kind]


def run(store, clip, **params):
    ctx = ToolContext(store)
    return TOOLS["continue"]([clip], params, ctx), ctx.notices


def chorale(bars: int = 4, beats: int = 4, seed: int = 0) -> Clip:
    voices = chorale_voices(np.random.default_rng(seed), bars, beats)
    notes = [Note(p, s, d, v) for line in voices.values() for p, s, d, v in line]
    return Clip(notes, float(bars * beats), time_signature=TimeSignature(beats, 4), name="chorale")


CHORDS = Clip([Note(p, b * 2.0, 2.0, 70 + b) for b in range(4) for p in (48, 55, 64, 67)], 8.0, name="chords")


def new_notes(out: Clip, primer: Clip) -> list[Note]:
    return [n for n in out.notes if n.start >= primer.length]


def test_primer_comes_back_untouched_and_new_notes_follow_it():
    notes = [Note(60, 0.02, 1.9, 37, probability=0.5), Note(64, 0.0, 2.0, 90), Note(67, 0.01, 2.0, 101),
             Note(100, 2.0, 0.33, 64, mute=True), Note(30, 2.5, 1.5, 12, velocity_deviation=5.0)]
    clip = Clip(notes, length=4.0, tempo=97.0, name="chords")
    outs, _ = run(Store(poly=random_poly()), clip, type="poly", seed=2, variations=3, temperature=1.5)
    for out in outs:
        assert [n for n in out.notes if n.start < clip.length] == clip.sorted_notes()
        assert out.tempo == 97.0 and out.length == 12.0
        assert new_notes(out, clip) and all(4.0 <= n.start and n.end <= 12.0 + 1e-9 for n in new_notes(out, clip))


def test_new_notes_are_well_formed_in_range_and_velocity_is_the_primer_median():
    outs, _ = run(Store(poly=random_poly(1)), CHORDS, type="poly", seed=3, variations=4, length=4, temperature=1.5)
    for out in outs:
        new = new_notes(out, CHORDS)
        assert {n.velocity for n in new} == {72}  # median of 70..73
        assert all(36 <= n.pitch <= 84 and n.duration >= 0.25 - 1e-9 for n in new)
        for t in np.arange(8.0, 24.0, 0.25):  # no pitch sounds twice at once, never more than MAX_VOICES
            sounding = [n.pitch for n in new if n.start <= t < n.end]
            assert len(sounding) == len(set(sounding)) <= MAX_VOICES
        assert len({n.start for n in new}) < len(new)  # chords: several notes start together


def test_three_four_clip_grows_by_six_beats_on_its_grid():
    clip = chorale(2, 3)
    for out in run(Store(poly=random_poly()), clip, type="poly", seed=1, temperature=1.5)[0]:
        assert out.length == 12.0 and out.time_signature == TimeSignature(3, 4)
        assert all(6.0 <= n.start and n.end <= 12.0 + 1e-9 for n in new_notes(out, clip))
        assert all(abs(n.start * 4 - round(n.start * 4)) < 1e-9 for n in new_notes(out, clip))


def test_scale_constraint_keeps_every_new_pitch_in_key():
    model = random_poly(2)
    free, _ = run(Store(poly=model), CHORDS, type="poly", seed=3, temperature=2.0, length=4)
    assert any(not Scale(2, "major").contains(n.pitch) for o in free for n in new_notes(o, CHORDS))
    kept, _ = run(Store(poly=model), CHORDS, type="poly", seed=3, temperature=2.0, length=4, scale_root=2)
    pitches = [n.pitch for o in kept for n in new_notes(o, CHORDS)]
    assert len(pitches) > 8 and all(Scale(2, "major").contains(p) for p in pitches)


def test_same_seed_same_notes_another_differs_and_temperature_zero_is_deterministic():
    store = Store(poly=random_poly(3))
    a, b, c = (run(store, CHORDS, type="poly", seed=s, temperature=1.5)[0] for s in (5, 5, 6))
    assert a == b and a != c and len({o.notes for o in a}) > 1
    cold = run(store, CHORDS, type="poly", seed=1, temperature=0.0)[0]
    assert cold == run(store, CHORDS, type="poly", seed=2, temperature=0.0)[0] and len({o.notes for o in cold}) == 1


def test_without_primer_the_continuation_starts_at_zero():
    for out in run(Store(poly=random_poly()), CHORDS, type="poly", seed=5, include_primer=False, temperature=1.5)[0]:
        assert out.length == 8.0 and out.notes and all(0 <= n.start < 8 for n in out.notes)


def test_empty_variations_are_sampled_again_a_bounded_number_of_times(monkeypatch):
    def filled(rounds: int) -> tuple[int, list[str], int]:
        monkeypatch.setattr(poly_rnn, "RESAMPLE_ROUNDS", rounds)
        quiet = random_poly(4, silence=4.0)  # time-shifts nearly certain: most samples are empty
        calls = []
        sample = quiet.sample
        monkeypatch.setattr(quiet, "sample", lambda *a, **k: calls.append(a[3]) or sample(*a, **k))
        outs, notices = run(Store(poly=quiet), CHORDS, type="poly", seed=0, variations=8, length=1)
        return sum(bool(new_notes(o, CHORDS)) for o in outs), notices, calls

    once, _, _ = filled(0)
    again, notices, calls = filled(4)
    assert again > once and len(calls) == 5 and calls[0] == 8 and calls[1] == 8 - once  # only the empty ones
    assert len(notices) == 8 - again and all("has no new notes" in n for n in notices)


def test_progress_is_reported_in_order_and_ends_at_one():
    seen = []
    ctx = ToolContext(Store(poly=random_poly()), lambda f, m: seen.append(f))
    TOOLS["continue"]([CHORDS], {"type": "poly", "seed": 1, "length": 8}, ctx)
    assert 3 <= len(seen) <= 10 and seen == sorted(seen) and seen[-1] == 1.0


def test_sounds_together_tells_chords_from_a_legato_line():
    legato = Clip([Note(60 + i, i * 0.5, 0.55) for i in range(8)], 4.0)  # overlaps of a 20th of a beat
    assert not sounds_together(legato) and not sounds_together(Clip([], 4.0))
    assert sounds_together(CHORDS) and sounds_together(chorale())
    one_chord = Clip([Note(60 + i, float(i), 1.0) for i in range(7)] + [Note(48, 7.0, 1.0)] + [Note(64, 7.0, 1.0)], 8.0)
    assert not sounds_together(one_chord)  # one chord in a line: a melody (1 of 8 beats)


def test_auto_takes_poly_for_chords_and_melody_for_a_line():
    from test_continue import random_model

    store = Store(poly=random_poly(), melody=random_model("melody"))
    line = Clip([Note(60 + 2 * i, i * 0.5, 0.5) for i in range(8)], 4.0)
    run(store, CHORDS, seed=1)
    run(store, line, seed=1)
    assert store.asked == ["poly", "poly", "melody"]  # chords: poly checked, then served; the line: melody


def test_auto_without_a_poly_model_uses_melody_and_says_it_took_the_top_line():
    from test_continue import random_model

    store = Store(melody=random_model("melody"))
    outs, notices = run(store, CHORDS, seed=1)
    assert store.asked == ["poly", "melody"] and len(outs) == 4
    assert any("top note of each chord" in n for n in notices)


def test_auto_falls_back_to_melody_when_no_poly_model_takes_the_meter(tmp_path):
    """Through the real ModelStore: a poly bundle trained in 4/4 only does not take 6/8."""
    from bridge.bundle import Bundle
    from bridge.model_store import Loaded
    from test_continue import random_model

    def loaded(name, kind, model, meters):
        config = {"name": name, "kind": kind, "tools": ["continue"], "model_class": "x", "hparams": {"meter": True},
                  "meters": meters}
        return Loaded(Bundle(Path(name), config, {}), model)

    store = ModelStore([loaded("poly", "poly", random_poly(), ["4/4"]),
                        loaded("melody", "melody", random_model("melody"), ["6/8", "4/4"])])
    jig = Clip([Note(p, b * 1.5, 1.5) for b in range(4) for p in (50, 57, 66)], 6.0,
               time_signature=TimeSignature(6, 8))
    outs, notices = run(store, jig, seed=1)
    assert any("top note" in n for n in notices) and len(outs) == 4
    outs, notices = run(store, CHORDS, seed=1)
    assert not notices and len({n.start for n in new_notes(outs[0], CHORDS)}) < len(new_notes(outs[0], CHORDS))


def test_chorale_score_reads_voices_key_and_register():
    primer = chorale(4)

    def continued(shift: int, until: float = 16.0) -> Clip:
        """The primer, then its first `until` beats again `shift` semitones higher: 4 bars in all."""
        again = [Note(n.pitch + shift, n.start + 16.0, n.duration) for n in primer.notes if n.start < until]
        return primer.with_notes(list(primer.notes) + again, length=32.0)

    same = eval_poly.score(primer, continued(0))
    assert same.three_voices == 1.0 and same.in_key == same.primer_in_key > 0.9  # V/V brings an F sharp
    assert max(same.register_error.values()) == 0.0 and same.ok
    assert eval_poly.score(primer, continued(0, until=8.0)).three_voices == 0.5  # half the time: not "most"
    assert not eval_poly.score(primer, continued(0, until=8.0)).voices_ok
    up = eval_poly.score(primer, continued(12))
    assert up.key_ok and not up.register_ok and up.register_error["tenor"] == 12.0
    sharp = eval_poly.score(primer, continued(1))
    assert sharp.register_ok and not sharp.key_ok and sharp.in_key < 0.5
    line = eval_poly.score(primer, primer.with_notes(list(primer.notes) + [Note(72, 16.0, 8.0)], length=24.0))
    assert line.three_voices == 0.0 and line.register_error["alto"] == float("inf") and not line.ok


@pytest.mark.skipif(not BUNDLE.is_dir(), reason="bundles/poly_rnn is not installed")
def test_shipped_bundle_continues_a_chorale_in_voices_key_and_register():
    """Issue #17's Done-when on synthetic chorales at Continue's defaults, over 32 continuations:
    three or more voices most of the time, in-key share at least the primer's minus 5 points,
    each voice's mean pitch within a fourth of the primer's (the card measures the same on
    held-out Bach chorales)."""
    store = ModelStore.from_dir(BUNDLE.parent)
    assert "poly_rnn" not in store.refused
    scores = []
    for seed in range(8):
        primer = chorale(4, seed=seed)
        outs, notices = run(store, primer, seed=seed)
        assert not notices and len(outs) == 4
        for out in outs:
            assert [n for n in out.notes if n.start < primer.length] == primer.sorted_notes()
            scores.append(eval_poly.score(primer, out))
    assert np.mean([s.three_voices for s in scores]) > 0.5 and np.mean([s.voices_ok for s in scores]) >= 0.9
    assert np.mean([s.in_key for s in scores]) >= np.mean([s.primer_in_key for s in scores]) - 0.05
    for voice in eval_poly.VOICES:
        assert np.mean([s.register_error[voice] for s in scores]) <= eval_poly.REGISTER_TOLERANCE


@pytest.mark.skipif(not BUNDLE.is_dir(), reason="bundles/poly_rnn is not installed")
def test_shipped_bundle_eval_slice_reproduces_its_card():
    from bridge.bundle import load_bundle

    bundle = load_bundle(BUNDLE)
    with np.load(BUNDLE / "eval_slice.npz", allow_pickle=False) as npz:
        nll, accuracy = PolyRNN.from_bundle(bundle).nll(npz["events"], npz["grid"], npz["length"])
    stated = bundle.config["eval"]["slice"]
    assert nll == pytest.approx(stated["loss"], abs=1e-4) and accuracy == pytest.approx(stated["accuracy"], abs=1e-6)
    card = (BUNDLE / "MODEL_CARD.md").read_text()
    assert f"exported model scores loss {nll:.4f}, accuracy {accuracy:.4f}" in card
    assert bundle.config["meters"] == ["3/4", "4/4"] and eval_poly.TITLE in card and "MIT License" in card


def test_chorale_report_scores_the_model_beside_bachs_own_bars(tmp_path):
    from bridge.bundle import save_bundle
    from bridge.data import pipeline
    from synthetic_midi import chorale_folder

    data = chorale_folder(tmp_path / "chorales", files=40, bars=8)
    tested = [p for p, _ in pipeline.test_files(data)]
    assert tested  # the path hash holds some files out
    model = random_poly(5)
    config = CONFIGS["poly_rnn"]
    weights = {f"lstm_{i}/{part}": w for i, layer in enumerate(model.rnn.layers)
               for part, w in zip(("kernel", "recurrent_kernel", "bias"), layer.keras_weights())}
    weights.update({"output/kernel": model.out_kernel, "output/bias": model.out_bias})
    save_bundle(tmp_path / "bundles" / "poly_rnn", {"name": "poly_rnn", "model_class": "poly_rnn", "kind": "poly",
                                                    "tools": ["continue"], "converter_args": config.converter_args,
                                                    "hparams": {**config.hparams, "units": 16}, "meters": ["3/4", "4/4"]},
                weights, "card\n")
    section = eval_poly.report(tmp_path / "bundles" / "poly_rnn", data)
    lines = section.splitlines()
    assert lines[0] == eval_poly.TITLE and f"{len(tested)} held-out test chorales" in section
    assert f"{4 * len(tested)} continuations" in section
    voices = next(line for line in lines if line.startswith("| 3+ voices"))
    assert voices.endswith("| 1.000 (median 1.000) |")  # Bach's (synthetic) bars: four voices throughout
    in_key = next(line for line in lines if line.startswith("| in-key share")).split("|")
    assert float(in_key[2]) < 0.9 < float(in_key[3])  # random weights wander off the key; the written bars do not


def test_auto_hears_a_drum_clip_as_drums():
    """A beat's kick and hat sound together, yet it is no chord: auto reads short hits on drum
    pitches as drums, and a bass line in the same register (long notes) as melody."""
    beat = Clip([Note(p, b / 2, 0.1, 90) for b in range(16) for p in ((36, 42) if b % 4 == 0 else (42,))], 8.0)
    bass = Clip([Note(36 + i % 5, i * 0.5, 0.5, 90) for i in range(16)], 8.0)
    assert looks_like_drums(beat.notes, GM_DRUM_MAP) and not looks_like_drums(bass.notes, GM_DRUM_MAP)
    chosen = []

    class Store:
        def require(self, tool, kind, name=None, time_signature=None):
            chosen.append(kind)
            return self

        def continue_clip(self, clip, params, ctx):
            return [clip]

    TOOLS["continue"]([beat], {}, ToolContext(Store()))
    TOOLS["continue"]([bass], {}, ToolContext(Store()))
    assert chosen == ["drums", "melody"]
