"""The clip model and the parameter table: what is accepted, what is refused, and with which message."""
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.clip import Clip, ClipError, Note, Scale, TimeSignature, quantize, unquantize
from bridge.params import Param, ParamError, resolve
from bridge.tools import TOOLS


@pytest.mark.parametrize("note, message", [
    (Note(128, 0.0, 1.0), "pitch must be an integer 0-127"),
    (Note(60.0, 0.0, 1.0), "pitch must be an integer"),
    (Note(60, 0.0, 1.0, velocity=0), "velocity must be an integer 1-127"),
    (Note(60, 0.0, 1.0, velocity=128), "velocity"),
    (Note(60, -0.5, 1.0), "start must be >= 0"),
    (Note(60, math.nan, 1.0), "start must be a finite number"),
    (Note(60, 0.0, 0.0), "duration must be > 0"),
    (Note(60, 0.0, math.inf), "duration must be a finite number"),
    (Note(60, 0.0, 1.0, probability=1.5), "probability must be 0-1"),
    (Note(60, 0.0, 1.0, velocity_deviation=-200), "velocity_deviation"),
    (Note(60, 0.0, 1.0, release_velocity=200), "release_velocity"),
])
def test_bad_notes_are_refused_by_name(note, message):
    with pytest.raises(ClipError, match=message):
        note.validate()
    with pytest.raises(ClipError, match="note 1: " + message):
        Clip([Note(60, 0.0, 1.0), note]).validate()


def test_clip_limits():
    notes = [Note(60, i / 8, 0.1) for i in range(9)]
    assert Clip(notes).validate(max_notes=9)
    with pytest.raises(ClipError, match="9 notes, more than the limit of 8"):
        Clip(notes).validate(max_notes=8)
    for clip, message in [(Clip(length=0.0), "length must be > 0"), (Clip(length=math.nan), "length must be a finite"),
                          (Clip(tempo=0.5), "tempo must be 1-999"), (Clip(tempo=math.inf), "tempo must be a finite"),
                          (Clip(scale=Scale(12)), "scale root"), (Clip(scale=Scale(0, "ionian")), "unknown scale mode")]:
        with pytest.raises(ClipError, match=message):
            clip.validate()


@pytest.mark.parametrize("meter, beats", [((4, 4), 4.0), ((3, 4), 3.0), ((6, 8), 3.0), ((7, 8), 3.5), ((5, 16), 1.25)])
def test_time_signatures_measure_bars_in_quarter_notes(meter, beats):
    ts = TimeSignature(*meter)
    ts.validate()
    clip = Clip(length=2 * beats, time_signature=ts)
    assert (clip.beats_per_bar, clip.bars, str(ts)) == (beats, 2.0, f"{meter[0]}/{meter[1]}")


@pytest.mark.parametrize("meter", [(0, 4), (100, 4), (4, 3), (4, 0), (4, 64)])
def test_bad_time_signatures_are_refused(meter):
    with pytest.raises(ClipError, match="time signature"):
        Clip(time_signature=TimeSignature(*meter)).validate()


def test_scale_and_note_order():
    assert Scale(2, "major").contains(61) and not Scale(2, "major").contains(60)
    clip = Clip([Note(64, 1.0, 1.0), Note(60, 1.0, 1.0), Note(67, 0.0, 1.0, mute=True), Note(50, 4.0, 1.0)], 4.0)
    assert [n.pitch for n in clip.sorted_notes()] == [67, 60, 64, 50]
    assert [n.pitch for n in clip.audible_notes()] == [60, 64]  # muted and past-the-end notes are not heard
    assert [n.pitch for n in clip.with_notes(reversed(clip.notes), length=8.0).notes] == [67, 60, 64, 50]


@given(st.lists(st.tuples(st.integers(0, 127), st.integers(0, 4 * 480 - 1), st.integers(1, 960)), max_size=20),
       st.sampled_from([1, 2, 4, 8]))
def test_quantize_then_unquantize_keeps_starts_exactly(raw, steps):
    notes = [Note(pitch, tick / 480, length / 480, velocity=99, probability=0.5) for pitch, tick, length in raw]
    clip = Clip(notes, 4.0)
    grid = quantize(clip, steps)
    assert all(-0.5 <= g.offset < 0.5 and g.end_step > g.step for g in grid)
    back = unquantize(grid, steps)
    assert [(n.pitch, n.start, n.velocity, n.probability) for n in back] == [
        (n.pitch, n.start, n.velocity, n.probability) for n in clip.audible_notes()]
    assert all(n.start * steps == int(n.start * steps) for n in unquantize(grid, steps, keep_offsets=False))


def test_quantize_rounds_to_the_nearest_step_and_keeps_one_step():
    (g,) = quantize(Clip([Note(60, 0.2, 0.01)]), 4)
    assert (g.step, g.end_step, g.offset) == (1, 2, pytest.approx(-0.2))
    assert quantize(Clip([Note(60, 0.0, 1.0, mute=True)]), 4, include_muted=True)[0].step == 0


@pytest.mark.parametrize("param, value, expected", [
    (Param("n", "int", 1, "", 1, 16), 3.6, 4),
    (Param("n", "int", 1, "", 1, 16), "7", 7),
    (Param("t", "float", 1.0, "", 0.1, 2.0), "0.5", 0.5),
    (Param("e", "enum", "a", "", choices=("a", "b")), 1.0, "b"),
    (Param("e", "enum", "a", "", choices=("a", "b")), "b", "b"),
    (Param("b", "bool", False, ""), 0.9, True),
    (Param("b", "bool", False, ""), "off", False),
    (Param("s", "str", None, ""), 5, "5"),
    (Param("n", "int", None, "", 0, 2**31 - 1), None, None),
])
def test_param_coerce(param, value, expected):
    assert param.coerce(value) == expected


@pytest.mark.parametrize("param, value, message", [
    (Param("n", "int", 1, "", 1, 16), 17, "n must be 1-16, got 17"),
    (Param("n", "int", 1, "", 1, 16), math.nan, "n must be 1-16"),
    (Param("seed", "int", None, "", 0, 2**31 - 1), -1, "seed must be 0-2147483647, got -1"),
    (Param("t", "float", 1.0, "", 0.1, 2.0), "warm", "t must be 0.1-2, got 'warm'"),
    (Param("t", "float", 1.0, "", 0.1, 2.0), math.inf, "t must be 0.1-2"),
    (Param("e", "enum", "a", "", choices=("a", "b")), 2, "e must be one of a, b, got 2"),
    (Param("e", "enum", "a", "", choices=("a", "b")), "c", "e must be one of a, b"),
    (Param("b", "bool", False, ""), "maybe", "b must be 0 or 1"),
])
def test_param_coerce_refuses_with_the_range(param, value, message):
    with pytest.raises(ParamError, match=message):
        param.coerce(value)


def test_resolve_fills_defaults_and_refuses_unknown_names():
    params = TOOLS["continue"].params
    resolved = resolve(params, {"variations": 2.0})
    assert resolved["variations"] == 2 and resolved["temperature"] == 1.0 and resolved["seed"] is None
    assert set(resolved) == {p.name for p in params}
    with pytest.raises(ParamError, match="unknown parameter 'temprature'; this tool takes: variations, length"):
        resolve(params, {"temprature": 1.0})


def test_param_declarations_are_checked():
    with pytest.raises(ValueError, match="unknown param kind"):
        Param("x", "list", None, "")
    with pytest.raises(ValueError, match="needs choices"):
        Param("x", "enum", None, "")
